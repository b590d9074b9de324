#include "common/health/internal/fields.h"

#include <cmath>
#include <cstdio>
#include <limits>

namespace driftless::health::internal {

const Json* Member(const Json* object, std::string_view key) {
  if (object == nullptr || !object->is_object()) return nullptr;
  auto it = object->find(key);
  if (it == object->end()) return nullptr;
  return &*it;
}

const Json* Find(const Json& root, std::string_view path) {
  const Json* cur = &root;
  size_t pos = 0;
  if (!path.empty() && path[0] == '/') pos = 1;
  while (pos <= path.size() && cur != nullptr) {
    size_t next = path.find('/', pos);
    if (next == std::string_view::npos) next = path.size();
    std::string_view key = path.substr(pos, next - pos);
    if (key.empty() && next == path.size()) break;  // trailing '/' or empty path
    cur = Member(cur, key);
    pos = next + 1;
  }
  return cur;
}

std::optional<int64_t> AsInt(const Json* value) {
  if (value == nullptr) return std::nullopt;
  if (value->is_number_integer() && !value->is_number_unsigned()) {
    return value->get<int64_t>();
  }
  if (value->is_number_unsigned()) {
    uint64_t u = value->get<uint64_t>();
    if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return std::nullopt;
    return static_cast<int64_t>(u);
  }
  if (value->is_number_float()) {
    double d = value->get<double>();
    // 2^63 is exactly representable; anything at or beyond it does not fit.
    if (!std::isfinite(d) || d != std::trunc(d) || d >= 9223372036854775808.0 ||
        d < -9223372036854775808.0) {
      return std::nullopt;
    }
    return static_cast<int64_t>(d);
  }
  return std::nullopt;
}

std::optional<int64_t> GetInt(const Json& root, std::string_view path) {
  return AsInt(Find(root, path));
}

std::optional<std::string> AsString(const Json* value) {
  if (value == nullptr || !value->is_string()) return std::nullopt;
  return value->get<std::string>();
}

std::optional<std::string> GetString(const Json& root, std::string_view path) {
  return AsString(Find(root, path));
}

std::optional<bool> GetBool(const Json& root, std::string_view path) {
  const Json* v = Find(root, path);
  if (v == nullptr || !v->is_boolean()) return std::nullopt;
  return v->get<bool>();
}

const Json* GetObject(const Json& root, std::string_view path) {
  const Json* v = Find(root, path);
  return v != nullptr && v->is_object() ? v : nullptr;
}

const Json* GetArray(const Json& root, std::string_view path) {
  const Json* v = Find(root, path);
  return v != nullptr && v->is_array() ? v : nullptr;
}

std::string StringOr(const Json& root, std::string_view path, std::string_view fallback) {
  std::optional<std::string> s = GetString(root, path);
  return s ? *std::move(s) : std::string(fallback);
}

int64_t IntOr(const Json& root, std::string_view path, int64_t fallback) {
  return GetInt(root, path).value_or(fallback);
}

bool IsTrue(const Json& root, std::string_view path) { return GetBool(root, path).value_or(false); }

bool Present(const Json& root, std::string_view path) {
  const Json* v = Find(root, path);
  return v != nullptr && !v->is_null();
}

std::vector<Condition> ConditionsFromArray(const Json* array) {
  std::vector<Condition> out;
  if (array == nullptr || !array->is_array()) return out;
  out.reserve(array->size());
  for (const Json& entry : *array) {
    if (!entry.is_object()) continue;
    Condition c;
    c.type = AsString(Member(&entry, "type")).value_or("");
    c.status = AsString(Member(&entry, "status")).value_or("");
    c.reason = AsString(Member(&entry, "reason")).value_or("");
    c.message = AsString(Member(&entry, "message")).value_or("");
    c.last_transition_time = AsString(Member(&entry, "lastTransitionTime")).value_or("");
    c.observed_generation = AsInt(Member(&entry, "observedGeneration"));
    out.push_back(std::move(c));
  }
  return out;
}

std::vector<Condition> Conditions(const Json& root, std::string_view path) {
  return ConditionsFromArray(Find(root, path));
}

const Condition* FindCondition(const std::vector<Condition>& conditions, std::string_view type) {
  for (const Condition& c : conditions) {
    if (c.type == type) return &c;
  }
  return nullptr;
}

std::string Quote(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  out.push_back('"');
  for (char ch : s) {
    switch (ch) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        if (static_cast<unsigned char>(ch) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\x%02x", static_cast<unsigned char>(ch));
          out += buf;
        } else {
          out.push_back(ch);
        }
    }
  }
  out.push_back('"');
  return out;
}

}  // namespace driftless::health::internal
