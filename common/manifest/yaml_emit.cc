// Json -> block-style YAML in the layout kubectl prints (indentless sequences under keys,
// literal blocks for multi-line strings), quoting every string the parser would otherwise
// read as another type.
#include <cstdio>

#include "common/manifest/internal/scalar.h"
#include "common/manifest/manifest.h"

namespace driftless::manifest {
namespace {

bool NeedsQuotes(std::string_view s) {
  if (s.empty()) return true;
  if (internal::ResolvePlain(s).kind != internal::PlainKind::kString) return true;
  if (s == "<<" || s.substr(0, 3) == "...") return true;
  const unsigned char first = static_cast<unsigned char>(s[0]);
  switch (first) {
    case '-':
    case '?':
    case ':':
    case ',':
    case '[':
    case ']':
    case '{':
    case '}':
    case '#':
    case '&':
    case '*':
    case '!':
    case '|':
    case '>':
    case '\'':
    case '"':
    case '%':
    case '@':
    case '`':
    case ' ':
    case '\t':
      return true;
    default:
      break;
  }
  const char last = s.back();
  if (last == ' ' || last == ':' || last == '\t') return true;
  for (size_t i = 0; i < s.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7F) return true;
    if (c == ':' && i + 1 < s.size() && (s[i + 1] == ' ' || s[i + 1] == '\t')) return true;
    if (c == '#' && i > 0 && (s[i - 1] == ' ' || s[i - 1] == '\t')) return true;
  }
  return false;
}

void AppendDoubleQuoted(std::string& out, std::string_view s) {
  out.push_back('"');
  for (char ch : s) {
    const unsigned char c = static_cast<unsigned char>(ch);
    switch (c) {
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
        if (c < 0x20 || c == 0x7F) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\x%02X", c);
          out += buf;
        } else {
          out.push_back(ch);
        }
    }
  }
  out.push_back('"');
}

// A literal block keeps multi-line text readable; it cannot hold control characters or a
// first line that starts with a space (that would need an indentation indicator).
bool UseLiteralBlock(std::string_view s) {
  if (s.find('\n') == std::string_view::npos) return false;
  if (s[0] == ' ' || s[0] == '\t' || s[0] == '\n') return false;
  for (char ch : s) {
    const unsigned char c = static_cast<unsigned char>(ch);
    if ((c < 0x20 && c != '\n') || c == 0x7F) return false;
  }
  // Lines made only of spaces would be read back as empty lines.
  size_t start = 0;
  while (start <= s.size()) {
    size_t end = s.find('\n', start);
    if (end == std::string_view::npos) end = s.size();
    std::string_view line = s.substr(start, end - start);
    if (!line.empty() && line.find_first_not_of(' ') == std::string_view::npos) return false;
    start = end + 1;
  }
  return true;
}

void AppendLiteralBlock(std::string& out, std::string_view s, int indent) {
  size_t trailing = 0;
  while (trailing < s.size() && s[s.size() - 1 - trailing] == '\n') ++trailing;
  out += trailing == 0 ? "|-" : (trailing == 1 ? "|" : "|+");
  out.push_back('\n');
  std::string_view body = s.substr(0, s.size() - trailing);
  size_t start = 0;
  while (start <= body.size()) {
    size_t end = body.find('\n', start);
    if (end == std::string_view::npos) end = body.size();
    std::string_view line = body.substr(start, end - start);
    if (!line.empty()) {
      out.append(static_cast<size_t>(indent), ' ');
      out.append(line);
    }
    out.push_back('\n');
    start = end + 1;
  }
  for (size_t i = 1; i < trailing; ++i) out.push_back('\n');
}

void AppendString(std::string& out, std::string_view s) {
  if (NeedsQuotes(s)) {
    AppendDoubleQuoted(out, s);
  } else {
    out.append(s);
  }
}

// Appends a scalar or an empty collection on the current line; returns false for a
// non-empty collection (which goes on the following lines).
bool AppendInline(std::string& out, const Json& v) {
  switch (v.type()) {
    case Json::value_t::null:
      out += "null";
      return true;
    case Json::value_t::boolean:
      out += v.get<bool>() ? "true" : "false";
      return true;
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned:
    case Json::value_t::number_float:
      out += v.dump();
      return true;
    case Json::value_t::string:
      AppendString(out, v.get_ref<const std::string&>());
      return true;
    case Json::value_t::object:
      if (v.empty()) {
        out += "{}";
        return true;
      }
      return false;
    case Json::value_t::array:
      if (v.empty()) {
        out += "[]";
        return true;
      }
      return false;
    default:
      out += "null";
      return true;
  }
}

void EmitNode(std::string& out, const Json& v, int indent);

// Emits `v` as the value after "key:" or "- " (the caller wrote that prefix).
void EmitValueAfterPrefix(std::string& out, const Json& v, int child_indent, bool in_sequence) {
  if (v.is_string() && UseLiteralBlock(v.get_ref<const std::string&>())) {
    out.push_back(' ');
    AppendLiteralBlock(out, v.get_ref<const std::string&>(), child_indent);
    return;
  }
  if (v.is_primitive() || v.empty()) {
    out.push_back(' ');
    AppendInline(out, v);
    out.push_back('\n');
    return;
  }
  if (in_sequence) {
    // "- key: value" / "- - item": the first entry shares the dash's line.
    out.push_back(' ');
    EmitNode(out, v, child_indent);
    return;
  }
  out.push_back('\n');
  // Sequences under a key are not indented further (kubectl style).
  EmitNode(out, v, v.is_array() ? child_indent - 2 : child_indent);
}

// Emits a non-empty collection whose first line continues the current line (already
// indented) and whose following lines are indented by `indent`.
void EmitNode(std::string& out, const Json& v, int indent) {
  bool first = true;
  auto pad = [&] {
    if (!first) out.append(static_cast<size_t>(indent), ' ');
    first = false;
  };
  // The very first line of a nested node shares the line when in a sequence; callers that
  // start a fresh line pass content that begins at column `indent`.
  if (out.empty() || out.back() == '\n') first = false;
  if (v.is_object()) {
    for (auto it = v.begin(); it != v.end(); ++it) {
      pad();
      AppendString(out, it.key());
      out.push_back(':');
      EmitValueAfterPrefix(out, it.value(), indent + 2, false);
    }
  } else {
    for (const Json& item : v) {
      pad();
      out.push_back('-');
      EmitValueAfterPrefix(out, item, indent + 2, true);
    }
  }
}

}  // namespace

std::string ToYaml(const Json& value) {
  std::string out;
  if (value.is_string() && UseLiteralBlock(value.get_ref<const std::string&>())) {
    AppendLiteralBlock(out, value.get_ref<const std::string&>(), 2);
    return out;
  }
  if (AppendInline(out, value)) {
    out.push_back('\n');
    return out;
  }
  EmitNode(out, value, 0);
  return out;
}

}  // namespace driftless::manifest
