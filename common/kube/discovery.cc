#include "common/kube/discovery.h"

#include "absl/strings/str_cat.h"
#include "common/kube/kube_paths.h"

namespace driftless::kube {
namespace {

std::string Str(const Json& j, const char* key) {
  if (!j.is_object()) return "";
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

std::vector<std::string> Strings(const Json& j, const char* key) {
  std::vector<std::string> out;
  if (!j.is_object()) return out;
  auto it = j.find(key);
  if (it == j.end() || !it->is_array()) return out;
  for (const Json& v : *it) {
    if (v.is_string()) out.push_back(v.get<std::string>());
  }
  return out;
}

const Json* Array(const Json& j, const char* key) {
  if (!j.is_object()) return nullptr;
  auto it = j.find(key);
  return it != j.end() && it->is_array() ? &*it : nullptr;
}

}  // namespace

bool IsAggregatedDiscovery(const Json& doc) {
  return doc.is_object() && Str(doc, "kind") == "APIGroupDiscoveryList";
}

absl::StatusOr<std::vector<ResourceInfo>> ParseAggregatedDiscovery(const Json& doc) {
  if (!IsAggregatedDiscovery(doc)) {
    return absl::InvalidArgumentError("discovery: not an APIGroupDiscoveryList");
  }
  std::vector<ResourceInfo> out;
  const Json* items = Array(doc, "items");
  if (items == nullptr) return out;
  for (const Json& group : *items) {
    std::string group_name;
    if (group.is_object() && group.contains("metadata"))
      group_name = Str(group["metadata"], "name");
    const Json* versions = Array(group, "versions");
    if (versions == nullptr) continue;
    for (const Json& version : *versions) {
      std::string version_name = Str(version, "version");
      if (version_name.empty()) {
        return absl::InvalidArgumentError(
            absl::StrCat("discovery: group \"", group_name, "\" has a version without a name"));
      }
      const Json* resources = Array(version, "resources");
      if (resources == nullptr) continue;
      for (const Json& r : *resources) {
        ResourceInfo info;
        info.group = group_name;
        info.version = version_name;
        info.resource = Str(r, "resource");
        if (r.is_object() && r.contains("responseKind")) info.kind = Str(r["responseKind"], "kind");
        info.namespaced = Str(r, "scope") == "Namespaced";
        info.verbs = Strings(r, "verbs");
        if (info.resource.empty() || info.kind.empty()) continue;
        out.push_back(std::move(info));
      }
    }
  }
  return out;
}

absl::StatusOr<std::vector<std::string>> ParseLegacyGroupVersions(const Json& doc) {
  std::vector<std::string> out;
  std::string kind = Str(doc, "kind");
  if (kind == "APIVersions") return Strings(doc, "versions");
  if (kind != "APIGroupList") {
    return absl::InvalidArgumentError(
        absl::StrCat("discovery: expected APIVersions or APIGroupList, got \"", kind, "\""));
  }
  const Json* groups = Array(doc, "groups");
  if (groups == nullptr) return out;
  for (const Json& g : *groups) {
    std::string preferred;
    if (g.is_object() && g.contains("preferredVersion")) {
      preferred = Str(g["preferredVersion"], "groupVersion");
    }
    if (!preferred.empty()) out.push_back(preferred);
    const Json* versions = Array(g, "versions");
    if (versions == nullptr) continue;
    for (const Json& v : *versions) {
      std::string gv = Str(v, "groupVersion");
      if (!gv.empty() && gv != preferred) out.push_back(gv);
    }
  }
  return out;
}

absl::StatusOr<std::vector<ResourceInfo>> ParseApiResourceList(const Json& doc) {
  std::string gv = Str(doc, "groupVersion");
  if (gv.empty())
    return absl::InvalidArgumentError("discovery: APIResourceList without groupVersion");
  DL_ASSIGN_OR_RETURN(auto split, SplitApiVersion(gv));
  std::vector<ResourceInfo> out;
  const Json* resources = Array(doc, "resources");
  if (resources == nullptr) return out;
  for (const Json& r : *resources) {
    ResourceInfo info;
    info.resource = Str(r, "name");
    if (info.resource.empty() || info.resource.find('/') != std::string::npos) continue;
    info.group = Str(r, "group").empty() ? split.first : Str(r, "group");
    info.version = Str(r, "version").empty() ? split.second : Str(r, "version");
    info.kind = Str(r, "kind");
    info.namespaced = r.is_object() && r.value("namespaced", false);
    info.verbs = Strings(r, "verbs");
    if (info.kind.empty()) continue;
    out.push_back(std::move(info));
  }
  return out;
}

const ResourceInfo* FindResource(const std::vector<ResourceInfo>& resources,
                                 std::string_view api_version, std::string_view kind) {
  for (const ResourceInfo& r : resources) {
    if (r.kind != kind) continue;
    if (r.group.empty() ? r.version == api_version
                        : api_version.size() == r.group.size() + 1 + r.version.size() &&
                              api_version.substr(0, r.group.size()) == r.group &&
                              api_version[r.group.size()] == '/' &&
                              api_version.substr(r.group.size() + 1) == r.version) {
      return &r;
    }
  }
  return nullptr;
}

}  // namespace driftless::kube
