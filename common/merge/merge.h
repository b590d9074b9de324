// Structured merge for Kubernetes objects: server-side apply with field ownership
// (metadata.managedFields, FieldsV1), and the three PATCH formats (JSON merge patch,
// JSON patch, strategic merge patch).
//
// Used by the Kubernetes API emulator (tools/kube-emulator) to serve PATCH and apply, and
// later by the planner to predict the object a server-side apply would produce.
//
//   merge::ApplyRequest req{.live = live, .applied = desired, .manager = "driftless",
//                           .force = false, .now = "2026-11-28T10:00:00Z"};
//   DL_ASSIGN_OR_RETURN(merge::ApplyOutcome out, merge::ServerSideApply(req));
//   if (!out.conflicts.empty()) { ... 409 with out.conflicts ... }
//
// All functions are pure (no I/O, no clock: the caller passes `now`) and thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status/status.h"

namespace driftless::merge {

using Json = nlohmann::json;

// How a list at some field path merges.
enum class ListType {
  kAtomic,  // replaced whole; owned as one field
  kSet,     // list of scalars merged as a set (e.g. finalizers)
  kMap,     // list of objects keyed by `keys` (e.g. containers by name)
};

struct ListInfo {
  ListType type = ListType::kAtomic;
  std::vector<std::string> keys;  // for kMap: e.g. {"containerPort", "protocol"}
};

// Which lists are maps/sets, looked up by apiVersion/kind and field path, e.g.
// ("apps/v1", "Deployment", {"spec","template","spec","containers"}) -> kMap by "name".
// The built-in table covers the common built-in kinds: containers/initContainers/
// ephemeralContainers by name, ports by containerPort+protocol (Service ports by
// port+protocol), env/volumes/imagePullSecrets by name, volumeMounts by mountPath,
// finalizers as a set, conditions by type, ownerReferences by uid; other lists are atomic.
// Custom resources: lists are atomic unless the CRD schema says otherwise (x-kubernetes-
// list-type / x-kubernetes-list-map-keys), which callers may register.
class Schema {
 public:
  // The built-in table. Never null; lives forever.
  static const Schema& BuiltIn();

  // Type of the list at `path` (field names only; list elements are not part of the path)
  // in objects of `api_version`/`kind`.
  ListInfo ListAt(std::string_view api_version, std::string_view kind,
                  const std::vector<std::string>& path) const;
};

// One entry of metadata.managedFields.
struct ManagedFieldsEntry {
  std::string manager;
  std::string operation;    // "Apply" or "Update"
  std::string api_version;  // of the object as the manager wrote it
  std::string time;         // RFC 3339
  std::string subresource;  // "" or "status"
  Json fields_v1;           // FieldsV1: {"f:metadata":{"f:labels":{"f:app":{}}}, ...}
};

// A field owned by another manager with a different value.
struct Conflict {
  std::string manager;     // current owner
  std::string field_path;  // ".spec.replicas", ".spec.template.spec.containers[name=\"web\"].image"
};

struct ApplyRequest {
  const Json& live;     // the current object, or null when it does not exist yet
  const Json& applied;  // the apply configuration sent by `manager` (fully specified intent)
  std::string manager;  // fieldManager; required
  bool force = false;   // take ownership of conflicting fields instead of failing
  std::string now;      // RFC 3339 time recorded in the managedFields entry
  std::string subresource;  // "" or "status"
  const Schema* schema = nullptr;  // nullptr means Schema::BuiltIn()
};

struct ApplyOutcome {
  Json object;                      // the merged object, metadata.managedFields updated
  std::vector<Conflict> conflicts;  // non-empty iff the apply was refused (object = live)
  bool changed = false;             // object differs from live (ignoring managedFields times)
};

// Server-side apply as the API server does it: merges `applied` into `live`; the manager
// comes to own exactly the fields in `applied`; fields it owned before and no longer applies
// are removed unless another manager also owns them; a field owned by another manager with a
// different value is a conflict unless `force` (then ownership moves to `manager`).
// Errors: kInvalidArgument when `applied` is not an object, lacks apiVersion/kind, or has a
// value of the wrong shape where the schema expects a list map (message names the field).
absl::StatusOr<ApplyOutcome> ServerSideApply(const ApplyRequest& request);

// Records an "Update" by `manager` (create, PUT, non-apply PATCH): the manager comes to own
// every leaf field whose value differs between `old_object` (null on create) and
// `new_object`; other managers lose ownership of those fields. Returns `new_object` with
// metadata.managedFields updated. An empty manager leaves managedFields untouched.
Json RecordUpdate(const Json& old_object, const Json& new_object, std::string_view manager,
                  std::string_view now, const Schema* schema = nullptr);

// Parses/serializes metadata.managedFields.
absl::StatusOr<std::vector<ManagedFieldsEntry>> ParseManagedFields(const Json& object);
Json ManagedFieldsToJson(const std::vector<ManagedFieldsEntry>& entries);

// RFC 7386. Never fails.
Json JsonMergePatch(const Json& target, const Json& patch);

// RFC 6902 (add, remove, replace, move, copy, test). Errors: kInvalidArgument for a
// malformed patch, a missing path or a failed test, naming the operation index and path.
absl::StatusOr<Json> JsonPatch(const Json& target, const Json& patch);

// Strategic merge patch, close enough for kubectl: list maps merge by their key
// (from `schema`), `$patch: delete|replace`, `$retainKeys`, `$deleteFromPrimitiveList/<f>`,
// `$setElementOrder/<f>` (order honoured, directive dropped), null deletes a field.
absl::StatusOr<Json> StrategicMergePatch(const Json& target, const Json& patch,
                                         const Schema* schema = nullptr);

}  // namespace driftless::merge
