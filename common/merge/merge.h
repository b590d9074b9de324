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

#include <functional>
#include <map>
#include <set>
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
  // For kMap: default value of a key field an item may omit (parallel to `keys`; null or
  // missing = no default, the item must carry the key). Ports default "protocol" to "TCP",
  // as the Kubernetes OpenAPI schema does, so `k:{"containerPort":80,"protocol":"TCP"}`.
  std::vector<Json> key_defaults;
};

// Which lists are maps/sets, looked up by apiVersion/kind and field path, e.g.
// ("apps/v1", "Deployment", {"spec","template","spec","containers"}) -> kMap by "name".
// The built-in table covers the common built-in kinds: containers/initContainers/
// ephemeralContainers by name, ports by containerPort+protocol (Service ports by
// port+protocol), env/volumes/imagePullSecrets by name, volumeMounts by mountPath,
// finalizers as a set, conditions by type, ownerReferences by uid; other lists are atomic.
// Custom resources: lists are atomic unless the CRD schema says otherwise (x-kubernetes-
// list-type / x-kubernetes-list-map-keys), which callers may register.
//
// A default-constructed Schema holds the built-in table; Register* adds custom resource
// rules (an exact apiVersion/kind/path match wins over the built-in table). Registration is
// not thread-safe; lookups on a Schema nobody registers into any more are.
class Schema {
 public:
  Schema() = default;

  // The built-in table. Never null; lives forever.
  static const Schema& BuiltIn();

  // Type of the list at `path` (field names only; list elements are not part of the path)
  // in objects of `api_version`/`kind`.
  ListInfo ListAt(std::string_view api_version, std::string_view kind,
                  const std::vector<std::string>& path) const;

  // True when the object (map) at `path` is atomic: replaced whole and owned as one field,
  // like LabelSelector (`spec.selector`) or `valueFrom.secretKeyRef`.
  bool IsAtomicMap(std::string_view api_version, std::string_view kind,
                   const std::vector<std::string>& path) const;

  // Custom resources (x-kubernetes-list-type / x-kubernetes-list-map-keys,
  // x-kubernetes-map-type: atomic). `path` as for ListAt.
  void RegisterList(std::string_view api_version, std::string_view kind,
                    const std::vector<std::string>& path, ListInfo info);
  void RegisterAtomicMap(std::string_view api_version, std::string_view kind,
                         const std::vector<std::string>& path);
  // Registers every list and atomic map a CRD version's `openAPIV3Schema` declares
  // (x-kubernetes-list-type: map|set with x-kubernetes-list-map-keys and key defaults,
  // x-kubernetes-map-type: atomic). Fields under additionalProperties are not reachable by
  // a fixed path and are skipped. Ignores what it does not understand.
  void RegisterCrdSchema(std::string_view api_version, std::string_view kind,
                         const Json& open_api_v3_schema);

 private:
  std::map<std::string, ListInfo, std::less<>> lists_;  // "apiVersion|kind|a.b.c"
  std::set<std::string, std::less<>> atomic_maps_;
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
  // The owner's managedFields entry, for the message Kubernetes prints
  // ("conflict with \"kubectl-edit\" using apps/v1").
  std::string operation;
  std::string api_version;
  std::string time;
  std::string subresource;
};

// Kubernetes' 409 message for a refused apply: "Apply failed with 1 conflict: conflict with
// \"mgr\" using apps/v1: .spec.replicas" (several conflicts: grouped by manager, one
// "- <path>" line each).
std::string ConflictMessage(const std::vector<Conflict>& conflicts);

// The message of one `details.causes[]` entry (type FieldManagerConflict, field =
// conflict.field_path): "conflict with \"mgr\" using apps/v1" ("using" only for Update
// owners; " with subresource \"status\"" when the owner wrote a subresource).
std::string ConflictCauseMessage(const Conflict& conflict);

struct ApplyRequest {
  const Json& live;         // the current object, or null when it does not exist yet
  const Json& applied;      // the apply configuration sent by `manager` (fully specified intent)
  std::string manager;      // fieldManager; required
  bool force = false;       // take ownership of conflicting fields instead of failing
  std::string now;          // RFC 3339 time recorded in the managedFields entry
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
// Main resource: `status` of `applied` is ignored (live's is kept, nobody gains ownership of
// it); subresource "status": everything but `status` (and metadata) is ignored.
// `metadata.managedFields` of `applied` is ignored, and so are the server-set metadata
// fields (creationTimestamp, uid, resourceVersion, generation, deletionTimestamp, ...):
// the result keeps live's (the caller checks resourceVersion preconditions itself). apiVersion,
// kind, metadata.name/namespace/uid/... are never recorded as owned (Kubernetes strips them).
// Like the API server, manager "kubectl" (kubectl apply --server-side) may take fields whose
// live value still matches the kubectl.kubernetes.io/last-applied-configuration annotation
// without conflict, and keeps that annotation in sync when it exists.
// Errors: kInvalidArgument when `applied` is not an object, lacks apiVersion/kind, has a
// kind different from live's, or has a value of the wrong shape where the schema expects a
// list map, a list-map item without its key, or duplicate keys (message names the field).
absl::StatusOr<ApplyOutcome> ServerSideApply(const ApplyRequest& request);

// Records an "Update" by `manager` (create, PUT, non-apply PATCH): the manager comes to own
// every leaf field whose value differs between `old_object` (null on create) and
// `new_object`; other managers lose ownership of those fields. Returns `new_object` with
// metadata.managedFields updated. An empty manager leaves managedFields untouched.
// The manager keeps what it owned before (minus fields that were removed). If `new_object`
// carries a non-empty metadata.managedFields (and this is not a subresource write), those
// entries are the starting point instead of old_object's, as in Kubernetes; `[{}]` resets.
// Entries are identified by (manager, operation, subresource, apiVersion for Update).
Json RecordUpdate(const Json& old_object, const Json& new_object, std::string_view manager,
                  std::string_view now, const Schema* schema = nullptr,
                  std::string_view subresource = {});

// Parses/serializes metadata.managedFields. Errors: kInvalidArgument for a malformed entry
// (message names the index). A missing or null managedFields is an empty list.
absl::StatusOr<std::vector<ManagedFieldsEntry>> ParseManagedFields(const Json& object);
Json ManagedFieldsToJson(const std::vector<ManagedFieldsEntry>& entries);

// RFC 7386 (null deletes; a non-object patch replaces the target). Never fails.
Json JsonMergePatch(const Json& target, const Json& patch);

// RFC 6902 (add, remove, replace, move, copy, test). Errors: kInvalidArgument for a
// malformed patch, a missing path or a failed test, naming the operation index and path.
absl::StatusOr<Json> JsonPatch(const Json& target, const Json& patch);

// Strategic merge patch, close enough for kubectl: list maps merge by their patch merge key
// (the first key from `schema`: containers by name, container ports by containerPort,
// Service ports by port), sets merge as unions, other lists are replaced;
// `$patch: delete|replace|merge` on maps and list items, `$retainKeys`,
// `$deleteFromPrimitiveList/<f>`, `$setElementOrder/<f>` (order honoured, items the order
// does not name stay after their predecessor, directive dropped), null deletes a field.
// Errors: kInvalidArgument for a non-object patch, a list-map item without its merge key or
// an unknown `$patch` value (message names the field).
absl::StatusOr<Json> StrategicMergePatch(const Json& target, const Json& patch,
                                         const Schema* schema = nullptr);

}  // namespace driftless::merge
