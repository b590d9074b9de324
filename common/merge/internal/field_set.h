// Internal: a set of field paths in FieldsV1 shape, as structured-merge-diff's fieldpath.Set.
//
// A node is one path; `member` says the path itself is in the set ("." in FieldsV1, or a
// leaf `{}`), `children` are keyed by the FieldsV1 path element text: "f:<name>",
// "k:{<key fields as compact JSON>}", "v:<value as JSON>", "i:<index>".
// Not part of the public API; used by merge.cc and its tests.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status/status.h"

namespace driftless::merge::internal {

struct FieldSet {
  bool member = false;
  std::map<std::string, FieldSet, std::less<>> children;

  // True when no path (at any depth) is a member.
  bool Empty() const;
  // Get-or-create the child node.
  FieldSet& Child(std::string_view key);
  // Adds the path given as element keys ("f:spec", "f:replicas").
  void Insert(const std::vector<std::string>& keys);
  bool Has(const std::vector<std::string>& keys) const;

  void UnionWith(const FieldSet& other);
  // Member-wise set algebra; empty nodes are dropped from the result.
  FieldSet Difference(const FieldSet& other) const;
  FieldSet Intersection(const FieldSet& other) const;
  // Removes every path of `other` and, when a path of `other` is a member, its subtree.
  FieldSet RecursiveDifference(const FieldSet& other) const;
  // Every "f:" node that has children becomes a member too (SMD's
  // EnsureNamedFieldsAreMembers, with every field treated as a struct field).
  FieldSet EnsureNamedFieldsAreMembers() const;
  // Drops nodes with no members below them.
  void Compact();

  bool operator==(const FieldSet& other) const;

  static absl::StatusOr<FieldSet> FromFieldsV1(const nlohmann::json& fields);
  nlohmann::json ToFieldsV1() const;

  // Member paths as Kubernetes prints them: ".spec.containers[name=\"web\"].image".
  std::vector<std::string> MemberPaths() const;
};

// ".name", "[name=\"web\",port=80]", "[=\"value\"]", "[3]" for one path element key.
std::string PathElementString(std::string_view key);

}  // namespace driftless::merge::internal
