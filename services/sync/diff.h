// Desired vs live for one object, with server-side-apply semantics: the live object is
// "in sync" when applying the desired object with driftless's field manager would not change
// it. The prediction is merge::ServerSideApply(live, desired, force=true), so fields the
// server defaulted or other managers own never show up as drift, and fields driftless applied
// before but that left git do.
//
// Pure and thread-safe.
#pragma once

#include <string>
#include <vector>

#include "common/manifest/manifest.h"
#include "common/merge/merge.h"
#include "common/status/status.h"

namespace driftless::sync {

inline constexpr std::string_view kFieldManager = "driftless";

// Application.spec.ignoreDifferences[]: empty selectors match any object.
struct IgnoreRule {
  std::string group;
  std::string kind;
  std::string name;
  std::string ns;
  std::vector<std::string> json_pointers;            // "/spec/replicas"
  std::vector<std::string> managed_fields_managers;  // fields owned by these managers
};

struct DiffOptions {
  std::string manager = std::string(kFieldManager);
  std::vector<IgnoreRule> ignore;
  const merge::Schema* schema = nullptr;  // nullptr: built-in table
};

struct ObjectDiff {
  bool in_sync = false;
  bool exists = false;                     // live was not null
  manifest::Json predicted;                // live after the apply (null when !exists)
  std::vector<std::string> changed_paths;  // JSON pointers that differ, "" for the whole object
};

// Compares `desired` (as rendered and prepared) with `live` (null when absent).
// Errors: kInvalidArgument when the desired object cannot be applied (wrong shapes).
absl::StatusOr<ObjectDiff> DiffObject(const manifest::Json& desired, const manifest::Json& live,
                                      const DiffOptions& options);

// Removes what the server owns or generates (managedFields, resourceVersion, uid,
// creationTimestamp, generation, selfLink, status) for display and comparison.
manifest::Json StripServerFields(const manifest::Json& object);

// Secret values replaced by "++++++++" (changed) or "--------" (unchanged) markers that never
// reveal the value, in both objects, like Argo CD; other kinds are returned unchanged.
void MaskSecretValues(manifest::Json& live, manifest::Json& desired);

// A unified diff (3 lines of context) between the YAML of two objects; "" when equal.
// `from_label`/`to_label` are the ---/+++ headers.
std::string UnifiedYamlDiff(const manifest::Json& from, const manifest::Json& to,
                            std::string_view from_label, std::string_view to_label);

}  // namespace driftless::sync
