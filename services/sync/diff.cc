#include "services/sync/diff.h"

#include <algorithm>
#include <array>

#include "common/manifest/object.h"

namespace driftless::sync {
namespace {

using manifest::Json;

bool RuleMatches(const IgnoreRule& r, const Json& o) {
  const std::string group = manifest::GroupOf(o);
  return (r.group.empty() || r.group == group || (r.group == "core" && group.empty())) &&
         (r.kind.empty() || r.kind == manifest::KindOf(o)) &&
         (r.name.empty() || r.name == manifest::NameOf(o)) &&
         (r.ns.empty() || r.ns == manifest::NamespaceOf(o));
}

// Makes `predicted` agree with `live` at `pointer` (the difference there is ignored).
void CopyAt(const Json& live, Json& predicted, const std::string& pointer) {
  try {
    const Json::json_pointer p(pointer);
    if (live.contains(p)) {
      predicted[p] = live[p];
    } else if (predicted.contains(p)) {
      predicted.at(p.parent_pointer()).erase(p.back());
    }
  } catch (const Json::exception&) {
    // A pointer that does not fit the object's shape ignores nothing.
  }
}

// Leaf paths ("f:spec" -> "/spec/...") owned by `manager` in live's managedFields, as JSON
// pointers; list-map keys ("k:{...}") stop the walk there (the whole item is ignored).
void OwnedPointers(const Json& fields, const std::string& prefix, std::vector<std::string>& out) {
  if (!fields.is_object()) return;
  for (auto it = fields.begin(); it != fields.end(); ++it) {
    const std::string& k = it.key();
    if (k == ".") continue;
    if (k.rfind("f:", 0) == 0) {
      std::string escaped;
      for (char c : k.substr(2)) {
        if (c == '~')
          escaped += "~0";
        else if (c == '/')
          escaped += "~1";
        else
          escaped += c;
      }
      const std::string p = prefix + "/" + escaped;
      if (it.value().empty()) {
        out.push_back(p);
      } else {
        OwnedPointers(it.value(), p, out);
      }
    } else {
      out.push_back(prefix);  // an item of a list: ignore the list as a whole
    }
  }
}

void ChangedPaths(const Json& a, const Json& b, const std::string& prefix,
                  std::vector<std::string>& out) {
  if (a == b) return;
  if (a.is_object() && b.is_object()) {
    for (auto it = a.begin(); it != a.end(); ++it) {
      std::string key;
      for (char c : it.key()) key += c == '~' ? "~0" : (c == '/' ? "~1" : std::string(1, c));
      auto other = b.find(it.key());
      if (other == b.end()) {
        out.push_back(prefix + "/" + key);
      } else {
        ChangedPaths(it.value(), *other, prefix + "/" + key, out);
      }
    }
    for (auto it = b.begin(); it != b.end(); ++it) {
      if (!a.contains(it.key())) {
        std::string key;
        for (char c : it.key()) key += c == '~' ? "~0" : (c == '/' ? "~1" : std::string(1, c));
        out.push_back(prefix + "/" + key);
      }
    }
    return;
  }
  out.push_back(prefix);
}

std::vector<std::string> Lines(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start < s.size()) {
    size_t nl = s.find('\n', start);
    if (nl == std::string::npos) nl = s.size();
    out.push_back(s.substr(start, nl - start));
    start = nl + 1;
  }
  return out;
}

}  // namespace

Json StripServerFields(const Json& object) {
  if (!object.is_object()) return object;
  // A selective copy: status and managedFields are often most of the object.
  static constexpr std::array<std::string_view, 6> kServerMetadata = {
      "managedFields", "resourceVersion", "uid", "creationTimestamp", "generation", "selfLink"};
  Json out = Json::object();
  for (auto it = object.begin(); it != object.end(); ++it) {
    if (it.key() == "status") continue;
    if (it.key() != "metadata" || !it->is_object()) {
      out.emplace(it.key(), *it);
      continue;
    }
    Json md = Json::object();
    for (auto m = it->begin(); m != it->end(); ++m) {
      if (std::find(kServerMetadata.begin(), kServerMetadata.end(), m.key()) !=
          kServerMetadata.end()) {
        continue;
      }
      if (m.key() == "annotations" && m->is_object()) {
        Json annotations = *m;
        annotations.erase("kubectl.kubernetes.io/last-applied-configuration");
        if (!annotations.empty()) md.emplace("annotations", std::move(annotations));
        continue;
      }
      md.emplace(m.key(), *m);
    }
    out.emplace("metadata", std::move(md));
  }
  return out;
}

absl::StatusOr<ObjectDiff> DiffObject(const Json& desired, const Json& live,
                                      const DiffOptions& options) {
  ObjectDiff d;
  if (live.is_null()) {
    d.changed_paths.push_back("");
    return d;
  }
  d.exists = true;
  merge::ApplyRequest req{.live = live,
                          .applied = desired,
                          .manager = options.manager,
                          .force = true,
                          .now = "1970-01-01T00:00:00Z",
                          .subresource = "",
                          .schema = options.schema};
  DL_ASSIGN_OR_RETURN(merge::ApplyOutcome out, merge::ServerSideApply(req));
  Json predicted = StripServerFields(out.object);
  const Json live_view = StripServerFields(live);
  for (const IgnoreRule& rule : options.ignore) {
    if (!RuleMatches(rule, desired)) continue;
    for (const std::string& p : rule.json_pointers) CopyAt(live_view, predicted, p);
    if (!rule.managed_fields_managers.empty()) {
      auto entries = merge::ParseManagedFields(live);
      if (!entries.ok()) continue;
      for (const auto& e : *entries) {
        if (std::find(rule.managed_fields_managers.begin(), rule.managed_fields_managers.end(),
                      e.manager) == rule.managed_fields_managers.end()) {
          continue;
        }
        std::vector<std::string> pointers;
        OwnedPointers(e.fields_v1, "", pointers);
        for (const std::string& p : pointers) CopyAt(live_view, predicted, p);
      }
    }
  }
  ChangedPaths(live_view, predicted, "", d.changed_paths);
  std::sort(d.changed_paths.begin(), d.changed_paths.end());
  d.in_sync = d.changed_paths.empty();
  d.predicted = std::move(predicted);
  return d;
}

void MaskSecretValues(Json& live, Json& desired) {
  auto is_secret = [](const Json& o) {
    return o.is_object() && o.value("kind", "") == "Secret" && o.value("apiVersion", "") == "v1";
  };
  if (!is_secret(live) && !is_secret(desired)) return;
  for (const char* section : {"data", "stringData"}) {
    Json* a = live.is_object() && live.contains(section) && live[section].is_object()
                  ? &live[section]
                  : nullptr;
    Json* b = desired.is_object() && desired.contains(section) && desired[section].is_object()
                  ? &desired[section]
                  : nullptr;
    std::vector<std::string> keys;
    if (a)
      for (auto it = a->begin(); it != a->end(); ++it) keys.push_back(it.key());
    if (b)
      for (auto it = b->begin(); it != b->end(); ++it) keys.push_back(it.key());
    for (const std::string& k : keys) {
      const bool in_a = a && a->contains(k);
      const bool in_b = b && b->contains(k);
      const bool same = in_a && in_b && (*a)[k] == (*b)[k];
      if (in_a) (*a)[k] = same ? "--------" : "++++++++";
      if (in_b) (*b)[k] = same ? "--------" : "+++++++++";
    }
  }
}

std::string UnifiedYamlDiff(const Json& from, const Json& to, std::string_view from_label,
                            std::string_view to_label) {
  const std::vector<std::string> a =
      from.is_null() ? std::vector<std::string>{} : Lines(manifest::ToYaml(from));
  const std::vector<std::string> b =
      to.is_null() ? std::vector<std::string>{} : Lines(manifest::ToYaml(to));
  if (a == b) return "";
  // LCS table; manifests are small (hundreds of lines), so O(n*m) is fine. Beyond a cap, fall
  // back to "everything changed" rather than spending quadratic memory.
  const size_t n = a.size(), m = b.size();
  std::vector<char> ops;  // ' ', '-', '+', in order
  if (n * m <= 4'000'000) {
    std::vector<std::vector<uint32_t>> lcs(n + 1, std::vector<uint32_t>(m + 1, 0));
    for (size_t i = n; i-- > 0;) {
      for (size_t j = m; j-- > 0;) {
        lcs[i][j] = a[i] == b[j] ? lcs[i + 1][j + 1] + 1 : std::max(lcs[i + 1][j], lcs[i][j + 1]);
      }
    }
    size_t i = 0, j = 0;
    while (i < n || j < m) {
      if (i < n && j < m && a[i] == b[j]) {
        ops.push_back(' ');
        ++i;
        ++j;
      } else if (i < n && (j == m || lcs[i + 1][j] >= lcs[i][j + 1])) {
        ops.push_back('-');
        ++i;
      } else {
        ops.push_back('+');
        ++j;
      }
    }
  } else {
    ops.assign(n, '-');
    ops.insert(ops.end(), m, '+');
  }
  // Emit hunks with 3 lines of context.
  std::string out = "--- " + std::string(from_label) + "\n+++ " + std::string(to_label) + "\n";
  constexpr size_t kContext = 3;
  size_t k = 0;
  while (k < ops.size()) {
    while (k < ops.size() && ops[k] == ' ') ++k;
    if (k == ops.size()) break;
    size_t start = k >= kContext ? k - kContext : 0;
    size_t end = k;
    size_t last_change = k;
    while (end < ops.size()) {
      if (ops[end] != ' ') last_change = end;
      if (end - last_change > 2 * kContext) break;
      ++end;
    }
    end = std::min(ops.size(), last_change + kContext + 1);
    // Line numbers of the hunk start.
    size_t ai = 0, bi = 0;
    for (size_t x = 0; x < start; ++x) {
      if (ops[x] != '+') ++ai;
      if (ops[x] != '-') ++bi;
    }
    size_t a_len = 0, b_len = 0;
    for (size_t x = start; x < end; ++x) {
      if (ops[x] != '+') ++a_len;
      if (ops[x] != '-') ++b_len;
    }
    out += "@@ -" + std::to_string(a_len ? ai + 1 : ai) + "," + std::to_string(a_len) + " +" +
           std::to_string(b_len ? bi + 1 : bi) + "," + std::to_string(b_len) + " @@\n";
    size_t x_a = ai, x_b = bi;
    for (size_t x = start; x < end; ++x) {
      if (ops[x] == ' ') {
        out += " " + a[x_a++] + "\n";
        ++x_b;
      } else if (ops[x] == '-') {
        out += "-" + a[x_a++] + "\n";
      } else {
        out += "+" + b[x_b++] + "\n";
      }
    }
    k = end;
  }
  return out;
}

}  // namespace driftless::sync
