#include "tools/kube-emulator/selectors.h"

#include <cctype>

#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace driftless::kube_emulator {
namespace {

std::string Trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return std::string(s.substr(b, e - b));
}

// Splits on commas that are not inside parentheses.
std::vector<std::string> SplitTop(std::string_view text) {
  std::vector<std::string> out;
  int depth = 0;
  std::string cur;
  for (char c : text) {
    if (c == '(') depth++;
    if (c == ')') depth--;
    if (c == ',' && depth == 0) {
      out.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  out.push_back(cur);
  return out;
}

bool ValidKey(std::string_view k) {
  if (k.empty() || k.size() > 316) return false;
  for (char c : k) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' ||
          c == '/')) {
      return false;
    }
  }
  return true;
}

absl::StatusOr<Requirement> ParseOne(std::string_view raw) {
  std::string s = Trim(raw);
  Requirement r;
  if (s.empty()) return absl::InvalidArgumentError("found '', expected: identifier");
  if (s[0] == '!') {
    r.key = Trim(s.substr(1));
    r.op = Requirement::Op::kNotExists;
    if (!ValidKey(r.key)) return absl::InvalidArgumentError("invalid label key \"" + r.key + "\"");
    return r;
  }
  size_t pos;
  // Set-based: "key in (a,b)" / "key notin (a,b)".
  for (const auto& [word, op] : {std::pair{std::string(" notin "), Requirement::Op::kNotIn},
                                 std::pair{std::string(" in "), Requirement::Op::kIn}}) {
    pos = s.find(word);
    if (pos == std::string::npos) continue;
    r.key = Trim(s.substr(0, pos));
    r.op = op;
    std::string rest = Trim(s.substr(pos + word.size()));
    if (rest.size() < 2 || rest.front() != '(' || rest.back() != ')') {
      return absl::InvalidArgumentError("found '" + rest + "', expected: '('");
    }
    for (auto v : absl::StrSplit(rest.substr(1, rest.size() - 2), ',')) {
      std::string t = Trim(std::string(v));
      if (!t.empty()) r.values.push_back(t);
    }
    if (!ValidKey(r.key)) return absl::InvalidArgumentError("invalid label key \"" + r.key + "\"");
    return r;
  }
  if ((pos = s.find("!=")) != std::string::npos) {
    r.op = Requirement::Op::kNotEquals;
    r.key = Trim(s.substr(0, pos));
    r.values = {Trim(s.substr(pos + 2))};
  } else if ((pos = s.find("==")) != std::string::npos) {
    r.key = Trim(s.substr(0, pos));
    r.values = {Trim(s.substr(pos + 2))};
  } else if ((pos = s.find('=')) != std::string::npos) {
    r.key = Trim(s.substr(0, pos));
    r.values = {Trim(s.substr(pos + 1))};
  } else {
    r.key = s;
    r.op = Requirement::Op::kExists;
  }
  if (!ValidKey(r.key)) return absl::InvalidArgumentError("invalid label key \"" + r.key + "\"");
  return r;
}

bool Holds(const Requirement& r, bool present, const std::string& value) {
  switch (r.op) {
    case Requirement::Op::kEquals:
      return present && value == r.values[0];
    case Requirement::Op::kNotEquals:
      return !present || value != r.values[0];
    case Requirement::Op::kIn:
      if (!present) return false;
      for (const auto& v : r.values) {
        if (v == value) return true;
      }
      return false;
    case Requirement::Op::kNotIn:
      if (!present) return true;
      for (const auto& v : r.values) {
        if (v == value) return false;
      }
      return true;
    case Requirement::Op::kExists:
      return present;
    case Requirement::Op::kNotExists:
      return !present;
  }
  return false;
}

}  // namespace

bool LabelSelector::Matches(const nlohmann::json& labels) const {
  for (const auto& r : requirements_) {
    bool present = labels.is_object() && labels.contains(r.key) && labels[r.key].is_string();
    std::string value = present ? labels[r.key].get<std::string>() : "";
    if (!Holds(r, present, value)) return false;
  }
  return true;
}

absl::StatusOr<LabelSelector> ParseLabelSelector(std::string_view text) {
  LabelSelector sel;
  if (Trim(text).empty()) return sel;
  for (const auto& part : SplitTop(text)) {
    auto r = ParseOne(part);
    if (!r.ok()) {
      return absl::InvalidArgumentError("unable to parse requirement: " +
                                        std::string(r.status().message()));
    }
    sel.requirements_.push_back(*r);
  }
  return sel;
}

bool FieldSelector::Matches(const nlohmann::json& object) const {
  if (requirements_.empty()) return true;
  static const nlohmann::json kEmpty = nlohmann::json::object();
  auto it = object.find("metadata");
  const nlohmann::json& meta = it != object.end() ? *it : kEmpty;  // no copy
  for (const auto& r : requirements_) {
    std::string field = r.key == "metadata.name" ? "name" : "namespace";
    std::string value = meta.is_object() ? meta.value(field, "") : "";
    if (!Holds(r, true, value)) return false;
  }
  return true;
}

absl::StatusOr<FieldSelector> ParseFieldSelector(std::string_view text) {
  FieldSelector sel;
  if (Trim(text).empty()) return sel;
  for (const auto& part : SplitTop(text)) {
    Requirement r;
    std::string s = Trim(part);
    size_t pos;
    if ((pos = s.find("!=")) != std::string::npos) {
      r.op = Requirement::Op::kNotEquals;
      r.key = Trim(s.substr(0, pos));
      r.values = {Trim(s.substr(pos + 2))};
    } else if ((pos = s.find("==")) != std::string::npos) {
      r.key = Trim(s.substr(0, pos));
      r.values = {Trim(s.substr(pos + 2))};
    } else if ((pos = s.find('=')) != std::string::npos) {
      r.key = Trim(s.substr(0, pos));
      r.values = {Trim(s.substr(pos + 1))};
    } else {
      return absl::InvalidArgumentError("invalid selector: '" + s + "'; can't understand '" + s +
                                        "'");
    }
    if (r.key != "metadata.name" && r.key != "metadata.namespace") {
      return absl::InvalidArgumentError("field label not supported: " + r.key);
    }
    sel.requirements_.push_back(r);
  }
  return sel;
}

std::string SelectorToString(const nlohmann::json& selector) {
  std::vector<std::string> parts;
  if (!selector.is_object()) return "";
  if (selector.contains("matchLabels") && selector["matchLabels"].is_object()) {
    for (const auto& [k, v] : selector["matchLabels"].items()) {
      parts.push_back(k + "=" + (v.is_string() ? v.get<std::string>() : v.dump()));
    }
  }
  if (selector.contains("matchExpressions") && selector["matchExpressions"].is_array()) {
    for (const auto& e : selector["matchExpressions"]) {
      std::string key = e.value("key", "");
      std::string op = e.value("operator", "");
      std::vector<std::string> vals;
      if (e.contains("values") && e["values"].is_array()) {
        for (const auto& v : e["values"]) {
          if (v.is_string()) vals.push_back(v.get<std::string>());
        }
      }
      if (op == "In")
        parts.push_back(key + " in (" + absl::StrJoin(vals, ",") + ")");
      else if (op == "NotIn")
        parts.push_back(key + " notin (" + absl::StrJoin(vals, ",") + ")");
      else if (op == "Exists")
        parts.push_back(key);
      else if (op == "DoesNotExist")
        parts.push_back("!" + key);
    }
  }
  return absl::StrJoin(parts, ",");
}

}  // namespace driftless::kube_emulator
