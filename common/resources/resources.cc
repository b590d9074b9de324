// Schema-driven validation of driftless resources. See resources.h.
#include "common/resources/resources.h"

#include <algorithm>
#include <cctype>
#include <set>

#include "common/config/units.h"
#include "common/manifest/object.h"
#include "common/resources/schema_text.h"

namespace driftless::resources {
namespace {

using manifest::Json;

constexpr size_t kMaxErrors = 20;

// Loads schema.yaml once and inlines every {$ref: name}.
struct Schemas {
  Json kinds = Json::object();
  std::vector<std::string> order;
};

Json Inline(const Json& node, const Json& definitions, int depth) {
  if (depth > 32) return node;
  if (node.is_object()) {
    if (auto it = node.find("$ref"); it != node.end()) {
      return Inline(definitions.at(it->get<std::string>()), definitions, depth + 1);
    }
    Json out = Json::object();
    for (auto it = node.begin(); it != node.end(); ++it) {
      out[it.key()] = Inline(it.value(), definitions, depth + 1);
    }
    return out;
  }
  if (node.is_array()) {
    Json out = Json::array();
    for (const Json& e : node) out.push_back(Inline(e, definitions, depth + 1));
    return out;
  }
  return node;
}

const Schemas& GetSchemas() {
  static const Schemas* schemas = [] {
    auto* s = new Schemas;
    auto doc = manifest::ParseYaml(internal::kSchemaYaml, "common/resources/schema.yaml");
    // The schema is compiled in and covered by tests; failing to parse it is a build defect.
    if (!doc.ok()) std::abort();
    const Json& defs = (*doc)["definitions"];
    const Json& metadata = defs.at("metadata");
    for (auto it = (*doc)["kinds"].begin(); it != (*doc)["kinds"].end(); ++it) {
      Json kind = Inline(it.value(), defs, 0);
      kind["properties"]["apiVersion"] = Json{{"type", "string"}};
      kind["properties"]["kind"] = Json{{"type", "string"}};
      kind["properties"]["metadata"] = metadata;
      kind["required"].push_back("metadata");
      s->kinds[it.key()] = std::move(kind);
    }
    s->order = {"Repository", "Cluster",  "Project",    "NotificationProvider",
                "Alert",      "Receiver", "Application"};
    return s;
  }();
  return *schemas;
}

size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t sub = prev[j - 1] + (std::tolower(a[i - 1]) == std::tolower(b[j - 1]) ? 0 : 1);
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, sub});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

bool IsDnsLabel(std::string_view s) {
  if (s.empty() || s.size() > 63) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    const bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
    if (!alnum && !(c == '-' && i > 0 && i + 1 < s.size())) return false;
  }
  return true;
}

bool IsDnsSubdomain(std::string_view s) {
  if (s.empty() || s.size() > 253) return false;
  size_t start = 0;
  while (true) {
    size_t dot = s.find('.', start);
    if (!IsDnsLabel(s.substr(start, dot == std::string_view::npos ? s.npos : dot - start))) {
      return false;
    }
    if (dot == std::string_view::npos) return true;
    start = dot + 1;
  }
}

bool IsCron(std::string_view s) {
  if (!s.empty() && s[0] == '@') {
    return s == "@yearly" || s == "@annually" || s == "@monthly" || s == "@weekly" ||
           s == "@daily" || s == "@midnight" || s == "@hourly";
  }
  int fields = 0;
  bool in_field = false;
  for (char c : s) {
    if (c == ' ' || c == '\t') {
      in_field = false;
      continue;
    }
    if (!(std::isdigit(static_cast<unsigned char>(c)) ||
          std::isalpha(static_cast<unsigned char>(c)) || c == '*' || c == ',' || c == '-' ||
          c == '/' || c == '?')) {
      return false;
    }
    if (!in_field) ++fields;
    in_field = true;
  }
  return fields == 5;
}

bool IsUrl(std::string_view s) {
  if (s.find("://") != std::string_view::npos) {
    const size_t scheme_end = s.find("://");
    return scheme_end > 0 && scheme_end + 3 < s.size();
  }
  // scp-like git address: user@host:path
  const size_t at = s.find('@');
  const size_t colon = s.find(':');
  return at != std::string_view::npos && colon != std::string_view::npos && at < colon &&
         colon + 1 < s.size();
}

std::string TypeName(const Json& v) {
  switch (v.type()) {
    case Json::value_t::null:
      return "null";
    case Json::value_t::boolean:
      return "boolean";
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned:
      return "integer";
    case Json::value_t::number_float:
      return "number";
    case Json::value_t::string:
      return "string";
    case Json::value_t::array:
      return "array";
    case Json::value_t::object:
      return "object";
    default:
      return "value";
  }
}

bool TypeMatches(const std::string& type, const Json& v) {
  if (type == "string") return v.is_string();
  if (type == "integer") return v.is_number_integer();
  if (type == "number") return v.is_number();
  if (type == "boolean") return v.is_boolean();
  if (type == "array") return v.is_array();
  if (type == "object") return v.is_object();
  return true;
}

// Appends rather than `"\"" + std::string(s)`: GCC 12 at -O3 reports a bogus -Wrestrict on
// operator+(const char*, string&&).
std::string Quote(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  out.push_back('"');
  out.append(s);
  out.push_back('"');
  return out;
}

class Validator {
 public:
  std::vector<std::string> errors;

  void Check(const Json& schema, const Json& value, const std::string& path) {
    if (errors.size() >= kMaxErrors) return;
    if (schema.value("x-preserve-unknown-fields", false)) return;
    if (value.is_null()) return;  // null means "not set" for every optional field
    const std::string type = schema.value("type", "");
    if (!type.empty() && !TypeMatches(type, value)) {
      Add(path,
          "must be " +
              std::string(type == "integer" || type == "array" || type == "object" ? "an " : "a ") +
              type + ", not " + TypeName(value));
      return;
    }
    if (auto e = schema.find("enum"); e != schema.end()) {
      if (std::find(e->begin(), e->end(), value) == e->end()) {
        std::string allowed;
        for (const Json& a : *e) allowed += (allowed.empty() ? "" : ", ") + a.get<std::string>();
        Add(path, "unsupported value " + value.dump() + " (allowed: " + allowed + ")");
      }
    }
    if (value.is_string()) CheckFormat(schema, value.get_ref<const std::string&>(), path);
    if (value.is_array()) {
      if (auto items = schema.find("items"); items != schema.end()) {
        for (size_t i = 0; i < value.size(); ++i) {
          Check(*items, value[i], path + "[" + std::to_string(i) + "]");
        }
      }
    }
    if (value.is_object()) CheckObject(schema, value, path);
  }

 private:
  void Add(const std::string& path, const std::string& what) {
    if (errors.size() < kMaxErrors)
      errors.push_back((path.empty() ? "<root>" : path) + ": " + what);
  }

  static std::string Join(const std::string& path, const std::string& key) {
    return path.empty() ? key : path + "." + key;
  }

  void CheckFormat(const Json& schema, const std::string& s, const std::string& path) {
    const std::string format = schema.value("x-format", "");
    if (format.empty() || (s.empty() && format != "dns-label" && format != "dns-subdomain")) return;
    if (format == "dns-label" && !IsDnsLabel(s)) {
      Add(path, Quote(s) +
                    " is not a valid name: lower-case letters, digits and '-', at most "
                    "63 characters, starting and ending with a letter or digit");
    } else if (format == "dns-subdomain" && !IsDnsSubdomain(s)) {
      Add(path, Quote(s) +
                    " is not a valid name: lower-case letters, digits, '-' and '.', "
                    "at most 253 characters, starting and ending with a letter or digit");
    } else if (format == "duration" && !config::ParseDuration(s).ok()) {
      Add(path, Quote(s) + " is not a duration (examples: 30s, 5m, 1h30m)");
    } else if (format == "cron" && !IsCron(s)) {
      Add(path, Quote(s) + " is not a cron schedule (five fields, e.g. \"0 22 * * *\")");
    } else if (format == "url" && !IsUrl(s)) {
      Add(path, Quote(s) + " is not a URL");
    }
  }

  void CheckObject(const Json& schema, const Json& value, const std::string& path) {
    const auto props = schema.find("properties");
    const auto additional = schema.find("additionalProperties");
    for (auto it = value.begin(); it != value.end(); ++it) {
      const std::string& key = it.key();
      const std::string child = Join(path, key);
      if (props != schema.end() && props->contains(key)) {
        Check((*props)[key], it.value(), child);
        continue;
      }
      // `<secret>File: path` stands for a secret field (read by the CLI).
      if (props != schema.end() && key.size() > 4 && key.ends_with("File")) {
        const std::string base = key.substr(0, key.size() - 4);
        if (props->contains(base) && (*props)[base].value("x-secret-file", false)) {
          if (!it.value().is_string()) Add(child, "must be a string (a file path)");
          continue;
        }
      }
      if (additional != schema.end()) {
        Check(*additional, it.value(), child);
        continue;
      }
      if (key == "true" && props != schema.end() && props->contains("on")) {
        Add(child, "unknown field; YAML 1.1 reads an unquoted `on:` as true: write \"on\":");
        continue;
      }
      std::string hint;
      if (props != schema.end()) {
        size_t best = 3;
        for (auto p = props->begin(); p != props->end(); ++p) {
          const size_t d = EditDistance(key, p.key());
          if (d < best) {
            best = d;
            hint = " (did you mean " + Quote(p.key()) + "?)";
          }
        }
      }
      Add(child, "unknown field" + hint);
    }
    auto is_set = [&](const std::string& k) {
      return (value.contains(k) && !value[k].is_null()) ||
             (value.contains(k + "File") && !value[k + "File"].is_null());
    };
    if (auto req = schema.find("required"); req != schema.end()) {
      for (const Json& r : *req) {
        if (!is_set(r.get<std::string>())) Add(Join(path, r.get<std::string>()), "required");
      }
    }
    for (const char* rule : {"x-one-of", "x-at-most-one-of"}) {
      auto group = schema.find(rule);
      if (group == schema.end()) continue;
      std::vector<std::string> set;
      std::string names;
      for (const Json& k : *group) {
        const std::string name = k.get<std::string>();
        names += (names.empty() ? "" : ", ") + name;
        if (is_set(name)) set.push_back(name);
      }
      const bool exactly = std::string_view(rule) == "x-one-of";
      if (set.size() > 1 || (exactly && set.empty())) {
        Add(path, std::string(exactly ? "exactly" : "at most") + " one of " + names +
                      " must be set" +
                      (set.empty() ? "" : " (found " + std::to_string(set.size()) + ")"));
      }
    }
  }
};

void CollectSecrets(const Json& schema, const Json& value, const std::string& pointer,
                    std::vector<std::string>& out) {
  if (!value.is_object()) {
    if (value.is_array()) {
      if (auto items = schema.find("items"); items != schema.end()) {
        for (size_t i = 0; i < value.size(); ++i) {
          CollectSecrets(*items, value[i], pointer + "/" + std::to_string(i), out);
        }
      }
    }
    return;
  }
  auto props = schema.find("properties");
  if (props == schema.end()) return;
  for (auto it = value.begin(); it != value.end(); ++it) {
    if (!props->contains(it.key())) continue;
    const Json& child = (*props)[it.key()];
    const std::string p = pointer + "/" + it.key();
    if (child.value("x-secret", false)) {
      if (!it.value().is_null()) out.push_back(p);
    } else {
      CollectSecrets(child, it.value(), p, out);
    }
  }
}

}  // namespace

const std::vector<std::string>& Kinds() { return GetSchemas().order; }

const Json& SchemaFor(std::string_view kind) {
  static const Json kNull;
  const Schemas& s = GetSchemas();
  auto it = s.kinds.find(std::string(kind));
  return it == s.kinds.end() ? kNull : *it;
}

absl::Status Validate(const Json& object) {
  if (!object.is_object()) {
    return absl::InvalidArgumentError("a resource must be a mapping, not " + TypeName(object));
  }
  const std::string prefix = manifest::KindAndName(object) + ": ";
  const std::string api_version = object.value("apiVersion", "");
  if (api_version != kApiVersion) {
    return absl::InvalidArgumentError(prefix + "apiVersion: must be \"" + std::string(kApiVersion) +
                                      "\", not \"" + api_version + "\"");
  }
  const std::string kind = object.value("kind", "");
  const Json& schema = SchemaFor(kind);
  if (schema.is_null()) {
    std::string kinds;
    for (const auto& k : Kinds()) kinds += (kinds.empty() ? "" : ", ") + k;
    return absl::InvalidArgumentError(prefix + "kind: unknown kind \"" + kind +
                                      "\" (known: " + kinds + ")");
  }
  Validator v;
  v.Check(schema, object, "");
  if (v.errors.empty()) return absl::OkStatus();
  std::string message = prefix;
  for (size_t i = 0; i < v.errors.size(); ++i) message += (i ? "; " : "") + v.errors[i];
  return absl::InvalidArgumentError(message);
}

absl::StatusOr<std::vector<Resource>> ParseResources(std::string_view text, std::string_view file) {
  DL_ASSIGN_OR_RETURN(std::vector<manifest::Document> docs,
                      manifest::ParseYamlDocuments(text, file));
  std::vector<Resource> out;
  for (manifest::Document& d : docs) {
    if (d.value.is_null()) continue;
    std::vector<Json> items;
    if (d.value.is_object() && d.value.value("kind", "") == "List" && d.value.contains("items") &&
        d.value["items"].is_array()) {
      for (Json& item : d.value["items"]) items.push_back(std::move(item));
    } else {
      items.push_back(std::move(d.value));
    }
    for (Json& item : items) {
      absl::Status s = Validate(item);
      if (!s.ok()) return Annotate(s, d.location.ToString());
      Resource r;
      r.kind = item["kind"].get<std::string>();
      r.name = item["metadata"]["name"].get<std::string>();
      r.location = d.location;
      r.object = std::move(item);
      out.push_back(std::move(r));
    }
  }
  return out;
}

absl::Status ResolveSecretFiles(Json& object, const FileReader& read_file) {
  // Walk the schema for secret fields that have a `<field>File` sibling.
  struct Walker {
    const FileReader& read;
    std::string describe;
    absl::Status Walk(const Json& schema, Json& value, const std::string& path) {
      if (value.is_array()) {
        if (auto items = schema.find("items"); items != schema.end()) {
          for (size_t i = 0; i < value.size(); ++i) {
            DL_RETURN_IF_ERROR(Walk(*items, value[i], path + "[" + std::to_string(i) + "]"));
          }
        }
        return absl::OkStatus();
      }
      if (!value.is_object()) return absl::OkStatus();
      auto props = schema.find("properties");
      if (props == schema.end()) return absl::OkStatus();
      for (auto p = props->begin(); p != props->end(); ++p) {
        const std::string file_key = p.key() + "File";
        const std::string child = path.empty() ? p.key() : path + "." + p.key();
        if (p.value().value("x-secret-file", false) && value.contains(file_key)) {
          if (value.contains(p.key()) && !value[p.key()].is_null()) {
            return absl::InvalidArgumentError(describe + ": " + child + ": set either " + p.key() +
                                              " or " + file_key + ", not both");
          }
          auto content = read(value[file_key].get<std::string>());
          if (!content.ok()) {
            return Annotate(content.status(), describe + ": " + child + "File");
          }
          value[p.key()] = *std::move(content);
          value.erase(file_key);
        } else if (value.contains(p.key())) {
          DL_RETURN_IF_ERROR(Walk(p.value(), value[p.key()], child));
        }
      }
      return absl::OkStatus();
    }
  };
  const Json& schema = SchemaFor(object.value("kind", ""));
  if (schema.is_null()) return absl::OkStatus();
  Walker w{read_file, manifest::KindAndName(object)};
  return w.Walk(schema, object, "");
}

std::vector<std::string> SecretPointers(const Json& object) {
  std::vector<std::string> out;
  if (!object.is_object()) return out;
  const Json& schema = SchemaFor(object.value("kind", ""));
  if (!schema.is_null()) CollectSecrets(schema, object, "", out);
  return out;
}

Json Redact(const Json& object) {
  Json copy = object;
  for (const std::string& p : SecretPointers(object)) copy[Json::json_pointer(p)] = kRedacted;
  return copy;
}

}  // namespace driftless::resources
