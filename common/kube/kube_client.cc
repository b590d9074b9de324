#include "common/kube/kube_client.h"

#include "absl/strings/str_cat.h"

namespace driftless::kube {
namespace {

std::string StringAt(const Json& object, const char* a, const char* b = nullptr) {
  if (!object.is_object()) return "";
  auto it = object.find(a);
  if (it == object.end()) return "";
  if (b == nullptr) return it->is_string() ? it->get<std::string>() : "";
  if (!it->is_object()) return "";
  auto jt = it->find(b);
  return jt != it->end() && jt->is_string() ? jt->get<std::string>() : "";
}

}  // namespace

std::string ResourceInfo::ApiVersion() const {
  return group.empty() ? version : absl::StrCat(group, "/", version);
}

ObjectRef ObjectRef::Of(const Json& object) {
  return ObjectRef{.api_version = StringAt(object, "apiVersion"),
                   .kind = StringAt(object, "kind"),
                   .namespace_ = StringAt(object, "metadata", "namespace"),
                   .name = StringAt(object, "metadata", "name")};
}

std::string ObjectRef::ToString() const {
  std::string out = absl::StrCat(api_version, " ", kind);
  if (!namespace_.empty() || !name.empty()) absl::StrAppend(&out, " ");
  if (!namespace_.empty()) absl::StrAppend(&out, namespace_, "/");
  absl::StrAppend(&out, name);
  return out;
}

}  // namespace driftless::kube
