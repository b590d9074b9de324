// Internal: schema-aware walks over Kubernetes objects (nlohmann::json) shared by server-side
// apply and strategic merge patch: list item keys, field sets, merge, compare, removal.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/merge/internal/field_set.h"
#include "common/merge/merge.h"
#include "common/status/status.h"

namespace driftless::merge::internal {

// The schema position of a walk: object type and the field-name path of the current value.
struct Walker {
  const Schema& schema;
  std::string api_version;
  std::string kind;
  std::vector<std::string> path;  // field names (list elements are not part of it)
  std::vector<std::string> keys;  // FieldsV1 element keys of the current value (Compare)
  std::string display;            // ".spec.containers[0]" for error messages

  ListInfo List() const { return schema.ListAt(api_version, kind, path); }
  bool AtomicMap() const { return !path.empty() && schema.IsAtomicMap(api_version, kind, path); }
  // metadata.managedFields is never walked.
  bool Skip(std::string_view field) const {
    return path.size() == 1 && path[0] == "metadata" && field == "managedFields";
  }
};

// "k:{...}" for a list-map item, "v:<json>" for a set item. kInvalidArgument when the item
// has the wrong shape or lacks a key without default.
absl::StatusOr<std::string> ItemKey(const ListInfo& list, const nlohmann::json& item);

// The fields of object `obj` (the walker positioned at it) added into `node`: leaves, list
// items, empty maps/lists as leaves. Validates list shapes and keys (kInvalidArgument naming
// the field).
absl::Status FieldsOf(const nlohmann::json& obj, Walker& w, FieldSet& node);

// Merges `src` into `dst` as SMD does for apply (list maps by key with SMD's ordering, sets
// as union, atomic lists and scalars replaced, null removes). `src` must have passed FieldsOf.
void MergeInto(nlohmann::json& dst, const nlohmann::json& src, Walker& w);

// Removes from `v` every path that is a member of `remove` (with its subtree).
void RemoveItems(nlohmann::json& v, const FieldSet& remove, Walker& w);

struct Comparison {
  FieldSet added, removed, modified;
  bool Same() const { return added.Empty() && removed.Empty() && modified.Empty(); }
};
// SMD's Compare: leaves added/removed/modified from `l` to `r`; non-leaf nodes that appear
// or disappear as a whole are added/removed themselves too. Either side may be null (absent).
void Compare(const nlohmann::json* l, const nlohmann::json* r, Walker& w, Comparison& out);

// Copy of `v` without null-valued object fields (at any depth).
nlohmann::json WithoutNulls(const nlohmann::json& v);

}  // namespace driftless::merge::internal
