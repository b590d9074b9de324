// Placeholder definitions of the common/merge entry points, linked ONLY while the real
// driftless_merge library is not part of the build (see CMakeLists.txt). Every operation
// that needs structured merge answers kUnimplemented; RecordUpdate leaves managedFields
// untouched and JsonMergePatch is the one RFC 7386 step the emulator cannot do without.
// This is not a merge implementation: it exists so the emulator builds before common/merge.
#include "common/merge/merge.h"

namespace driftless::merge {

const Schema& Schema::BuiltIn() {
  static const Schema s;
  return s;
}

ListInfo Schema::ListAt(std::string_view, std::string_view, const std::vector<std::string>&) const {
  return {};
}

absl::StatusOr<ApplyOutcome> ServerSideApply(const ApplyRequest&) {
  return absl::UnimplementedError("server-side apply needs common/merge (not built)");
}

Json RecordUpdate(const Json&, const Json& new_object, std::string_view, std::string_view,
                  const Schema*) {
  return new_object;
}

absl::StatusOr<std::vector<ManagedFieldsEntry>> ParseManagedFields(const Json&) {
  return std::vector<ManagedFieldsEntry>{};
}

Json ManagedFieldsToJson(const std::vector<ManagedFieldsEntry>&) { return Json::array(); }

Json JsonMergePatch(const Json& target, const Json& patch) {
  Json out = target;
  out.merge_patch(patch);
  return out;
}

absl::StatusOr<Json> JsonPatch(const Json&, const Json&) {
  return absl::UnimplementedError("JSON patch needs common/merge (not built)");
}

absl::StatusOr<Json> StrategicMergePatch(const Json&, const Json&, const Schema*) {
  return absl::UnimplementedError("strategic merge patch needs common/merge (not built)");
}

}  // namespace driftless::merge
