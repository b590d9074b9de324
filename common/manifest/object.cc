#include "common/manifest/object.h"

namespace driftless::manifest {
namespace {

std::string StringAt(const Json& o, const char* a, const char* b = nullptr) {
  if (!o.is_object()) return "";
  auto it = o.find(a);
  if (it == o.end()) return "";
  if (b == nullptr) return it->is_string() ? it->get<std::string>() : "";
  if (!it->is_object()) return "";
  auto jt = it->find(b);
  return jt != it->end() && jt->is_string() ? jt->get<std::string>() : "";
}

std::string MapEntry(const Json& o, const char* section, std::string_view key) {
  if (!o.is_object()) return "";
  auto md = o.find("metadata");
  if (md == o.end() || !md->is_object()) return "";
  auto s = md->find(section);
  if (s == md->end() || !s->is_object()) return "";
  auto it = s->find(std::string(key));
  return it != s->end() && it->is_string() ? it->get<std::string>() : "";
}

}  // namespace

GroupVersion ParseApiVersion(std::string_view api_version) {
  const size_t slash = api_version.find('/');
  if (slash == std::string_view::npos) return {"", std::string(api_version)};
  return {std::string(api_version.substr(0, slash)), std::string(api_version.substr(slash + 1))};
}

std::string ApiVersionOf(const Json& o) { return StringAt(o, "apiVersion"); }
std::string KindOf(const Json& o) { return StringAt(o, "kind"); }
std::string NameOf(const Json& o) { return StringAt(o, "metadata", "name"); }
std::string NamespaceOf(const Json& o) { return StringAt(o, "metadata", "namespace"); }
std::string GroupOf(const Json& o) { return ParseApiVersion(ApiVersionOf(o)).group; }
std::string AnnotationOf(const Json& o, std::string_view key) {
  return MapEntry(o, "annotations", key);
}
std::string LabelOf(const Json& o, std::string_view key) { return MapEntry(o, "labels", key); }

std::string ObjectKey(const Json& o) {
  return GroupOf(o) + "/" + KindOf(o) + "/" + NamespaceOf(o) + "/" + NameOf(o);
}

std::string Describe(const Json& o) {
  const std::string api_version = ApiVersionOf(o);
  const std::string ns = NamespaceOf(o);
  const std::string kind = KindOf(o);
  const std::string name = NameOf(o);
  return (api_version.empty() ? "" : api_version + " ") + (kind.empty() ? "object" : kind) + " " +
         (ns.empty() ? "" : ns + "/") + (name.empty() ? "<unnamed>" : name);
}

std::string KindAndName(const Json& o) {
  const std::string kind = KindOf(o);
  const std::string name = NameOf(o);
  return (kind.empty() ? "object" : kind) + " " + (name.empty() ? "<unnamed>" : name);
}

}  // namespace driftless::manifest
