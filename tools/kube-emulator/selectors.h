// Label and field selectors as the API server parses them from `labelSelector=` and
// `fieldSelector=` query parameters.
//
//   DL_ASSIGN_OR_RETURN(LabelSelector s, ParseLabelSelector("app in (a,b),!legacy"));
//   bool m = s.Matches(labels_json);
//
// Supported label operators: =, ==, !=, in, notin, exists (`key`), !exists (`!key`).
// Field selectors: metadata.name and metadata.namespace with =, ==, !=.
// Thread-safety: values are immutable after parsing.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"

namespace driftless::kube_emulator {

struct Requirement {
  enum class Op { kEquals, kNotEquals, kIn, kNotIn, kExists, kNotExists };
  std::string key;
  Op op = Op::kEquals;
  std::vector<std::string> values;
};

class LabelSelector {
 public:
  // True when every requirement holds for `labels` (a JSON object of strings, or null).
  bool Matches(const nlohmann::json& labels) const;
  bool Empty() const { return requirements_.empty(); }
  std::vector<Requirement> requirements_;
};

// Errors: kInvalidArgument naming the offending part of `text`.
absl::StatusOr<LabelSelector> ParseLabelSelector(std::string_view text);

class FieldSelector {
 public:
  // True when every requirement holds for the object.
  bool Matches(const nlohmann::json& object) const;
  std::vector<Requirement> requirements_;  // keys: metadata.name / metadata.namespace
};

// Errors: kInvalidArgument for unsupported fields ("field label not supported: spec.x").
absl::StatusOr<FieldSelector> ParseFieldSelector(std::string_view text);

// A label selector object ({matchLabels, matchExpressions}) as `k=v,k2 in (a)` text.
std::string SelectorToString(const nlohmann::json& selector);

}  // namespace driftless::kube_emulator
