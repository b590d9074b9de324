#include "services/renderer/substitute.h"

#include "common/manifest/object.h"

namespace driftless::renderer {
namespace {

bool IsNameStart(char c) { return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool IsNameChar(char c) { return IsNameStart(c) || (c >= '0' && c <= '9'); }

bool SubstitutionDisabled(const manifest::Json& o) {
  for (std::string_view key :
       {"driftless.dev/substitute", "kustomize.toolkit.fluxcd.io/substitute"}) {
    if (manifest::AnnotationOf(o, key) == "disabled" || manifest::LabelOf(o, key) == "disabled") {
      return true;
    }
  }
  return false;
}

}  // namespace

absl::StatusOr<std::string> SubstituteText(std::string_view text, const Variables& vars,
                                           bool strict) {
  std::string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    const size_t dollar = text.find('$', i);
    if (dollar == std::string_view::npos) {
      out.append(text.substr(i));
      break;
    }
    out.append(text.substr(i, dollar - i));
    i = dollar;
    // $${ -> literal ${
    if (text.substr(i, 3) == "$${") {
      out.append("${");
      i += 3;
      continue;
    }
    if (text.substr(i, 2) != "${" || i + 2 >= text.size() || !IsNameStart(text[i + 2])) {
      out.push_back('$');
      ++i;
      continue;
    }
    size_t j = i + 2;
    while (j < text.size() && IsNameChar(text[j])) ++j;
    const std::string_view name = text.substr(i + 2, j - (i + 2));
    std::string_view op;
    if (text.substr(j, 2) == ":=" || text.substr(j, 2) == ":-") {
      op = text.substr(j, 2);
      j += 2;
    } else if (j < text.size() && (text[j] == '=' || text[j] == '-')) {
      op = text.substr(j, 1);
      j += 1;
    } else if (j >= text.size()) {
      return absl::InvalidArgumentError("unterminated \"${" + std::string(name) + "\"");
    } else if (text[j] != '}') {
      // Not one of our forms (e.g. "${a.b}"): keep the text as it is.
      out.push_back('$');
      ++i;
      continue;
    }
    const size_t close = text.find('}', j);
    if (close == std::string_view::npos) {
      return absl::InvalidArgumentError("unterminated \"${" + std::string(name) + "\"");
    }
    const std::string_view fallback = text.substr(j, close - j);
    auto it = vars.find(name);
    const bool unset = it == vars.end();
    const bool empty = unset || it->second.empty();
    if (op.empty()) {
      if (unset && strict) {
        return absl::InvalidArgumentError(
            "variable ${" + std::string(name) +
            "} is not set (set it in spec.source.substitute or give a default: ${" +
            std::string(name) + ":=value})");
      }
      if (!unset) out.append(it->second);
    } else if ((op.size() == 2 && empty) || (op.size() == 1 && unset)) {
      out.append(fallback);
    } else {
      out.append(it->second);
    }
    i = close + 1;
  }
  return out;
}

absl::StatusOr<manifest::Json> SubstituteObject(const manifest::Json& object, const Variables& vars,
                                                bool strict) {
  if (SubstitutionDisabled(object)) return object;
  const std::string yaml = manifest::ToYaml(object);
  if (yaml.find('$') == std::string::npos) return object;
  auto text = SubstituteText(yaml, vars, strict);
  if (!text.ok()) return Annotate(text.status(), manifest::KindAndName(object));
  auto parsed = manifest::ParseYaml(*text, manifest::KindAndName(object) + " after substitution");
  if (!parsed.ok()) return parsed.status();
  return *std::move(parsed);
}

}  // namespace driftless::renderer
