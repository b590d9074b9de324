#include "common/kube/kube_paths.h"

#include "absl/strings/str_cat.h"
#include "common/kube/internal/strings.h"

using driftless::kube::internal::Av;

namespace driftless::kube {

absl::StatusOr<std::pair<std::string, std::string>> SplitApiVersion(std::string_view api_version) {
  if (api_version.empty()) return absl::InvalidArgumentError("apiVersion is empty");
  size_t slash = api_version.find('/');
  if (slash == std::string_view::npos)
    return std::make_pair(std::string(), std::string(api_version));
  if (api_version.find('/', slash + 1) != std::string_view::npos || slash == 0 ||
      slash + 1 == api_version.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("apiVersion \"", Av(api_version), "\" is not GROUP/VERSION or VERSION"));
  }
  return std::make_pair(std::string(api_version.substr(0, slash)),
                        std::string(api_version.substr(slash + 1)));
}

std::string GroupVersionPath(std::string_view group, std::string_view version) {
  if (group.empty()) return absl::StrCat("/api/", EscapeComponent(version));
  return absl::StrCat("/apis/", EscapeComponent(group), "/", EscapeComponent(version));
}

std::string ResourcePath(const ResourceInfo& resource, std::string_view namespace_,
                         std::string_view name, std::string_view subresource) {
  std::string path = GroupVersionPath(resource.group, resource.version);
  if (resource.namespaced && !namespace_.empty()) {
    absl::StrAppend(&path, "/namespaces/", EscapeComponent(namespace_));
  }
  absl::StrAppend(&path, "/", EscapeComponent(resource.resource));
  if (!name.empty()) absl::StrAppend(&path, "/", EscapeComponent(name));
  if (!name.empty() && !subresource.empty()) {
    absl::StrAppend(&path, "/", EscapeComponent(subresource));
  }
  return path;
}

std::string EscapeComponent(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) {
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '.' || c == '_' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xF]);
    }
  }
  return out;
}

std::string QueryString(const std::vector<std::pair<std::string, std::string>>& params) {
  std::string out;
  for (const auto& [key, value] : params) {
    if (value.empty()) continue;
    absl::StrAppend(&out, out.empty() ? "?" : "&", EscapeComponent(key), "=",
                    EscapeComponent(value));
  }
  return out;
}

}  // namespace driftless::kube
