// Defensive, never-throwing accessors over manifest::Json for the health rules.
//
// nlohmann::json throws on a wrong-type access (`j["a"]` on an array, `get<int>()` on a
// string). Health rules run on whatever the API server or a user's file holds, so every
// read goes through these helpers: a missing field and a field of the wrong type both read
// as "absent" (std::nullopt / nullptr).
//
//   std::optional<int64_t> r = GetInt(obj, "/status/replicas");
//   for (const Condition& c : Conditions(obj)) { ... c.type ... c.status ... }
//
// Paths are '/'-separated object keys (no array indexes, no escaping): use Member() for keys
// that themselves contain '/', such as annotation names.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/manifest/manifest.h"

namespace driftless::health::internal {

using manifest::Json;

// The member `key` of `object`, or nullptr when `object` is null, not a JSON object, or has
// no such key.
const Json* Member(const Json* object, std::string_view key);

// The value at `path` ("/status/replicas"), or nullptr when any step is missing or is not
// a JSON object. A JSON null at the end of the path is returned as is.
const Json* Find(const Json& root, std::string_view path);

// Integer at `path`. Integral floating-point numbers (3.0) are accepted; strings, booleans,
// fractions and out-of-range values are not.
std::optional<int64_t> AsInt(const Json* value);
std::optional<int64_t> GetInt(const Json& root, std::string_view path);

// String / boolean at `path` (no conversions: "true" is not a boolean).
std::optional<std::string> AsString(const Json* value);
std::optional<std::string> GetString(const Json& root, std::string_view path);
std::optional<bool> GetBool(const Json& root, std::string_view path);

// Object / array at `path`, or nullptr when absent or of another type.
const Json* GetObject(const Json& root, std::string_view path);
const Json* GetArray(const Json& root, std::string_view path);

// Shorthands with defaults.
std::string StringOr(const Json& root, std::string_view path, std::string_view fallback = "");
int64_t IntOr(const Json& root, std::string_view path, int64_t fallback = 0);
bool IsTrue(const Json& root, std::string_view path);  // boolean true only

// True when `path` holds anything other than JSON null (like Lua's `x ~= nil`).
bool Present(const Json& root, std::string_view path);

// One entry of a status.conditions list. Fields of the wrong type read as empty.
struct Condition {
  std::string type;
  std::string status;  // "True", "False", "Unknown"
  std::string reason;
  std::string message;
  std::string last_transition_time;
  std::optional<int64_t> observed_generation;
};

// The conditions at `path` in list order; entries that are not objects are skipped, and a
// value that is not an array gives an empty list.
std::vector<Condition> Conditions(const Json& root, std::string_view path = "/status/conditions");
std::vector<Condition> ConditionsFromArray(const Json* array);

// The first condition of `type`, or nullptr. The result points into `conditions`, so a
// temporary list is refused at compile time.
const Condition* FindCondition(const std::vector<Condition>& conditions, std::string_view type);
const Condition* FindCondition(std::vector<Condition>&& conditions, std::string_view type) = delete;

// Go's %q for the strings we format: double quotes, with \ " and control characters escaped.
std::string Quote(std::string_view s);

}  // namespace driftless::health::internal
