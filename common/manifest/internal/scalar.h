// Resolution of plain (unquoted) YAML scalars, shared by the parser and the emitter so that
// the emitter quotes exactly the strings the parser would read as something else.
#pragma once

#include <optional>
#include <string_view>

#include <nlohmann/json.hpp>

namespace driftless::manifest::internal {

enum class PlainKind { kString, kNull, kBool, kInt, kFloat, kSpecialFloat };

struct Resolved {
  PlainKind kind = PlainKind::kString;
  nlohmann::json value;  // set unless kind is kString or kSpecialFloat
};

// Resolves a plain scalar the way sigs.k8s.io/yaml (go-yaml v2, YAML 1.1) does, except that
// floats with an integral value that fits int64 become integers (as they do once Go's
// encoding/json has turned them into JSON for the API server).
Resolved ResolvePlain(std::string_view text);

}  // namespace driftless::manifest::internal
