// The three PATCH formats of the Kubernetes API: JSON merge patch (RFC 7386), JSON patch
// (RFC 6902) and strategic merge patch (apimachinery's strategicpatch, the subset kubectl
// sends: list maps by their merge key, $patch, $retainKeys, $deleteFromPrimitiveList,
// $setElementOrder).
#include <algorithm>
#include <limits>
#include <map>
#include <string>
#include <utility>

#include "common/merge/internal/walk.h"
#include "common/merge/merge.h"

namespace driftless::merge {
namespace {

using internal::Walker;

// ---- RFC 6902 -------------------------------------------------------------------------

absl::StatusOr<std::vector<std::string>> ParsePointer(const std::string& pointer) {
  std::vector<std::string> tokens;
  if (pointer.empty()) return tokens;
  if (pointer[0] != '/') {
    return absl::InvalidArgumentError("JSON pointer \"" + pointer + "\" must start with '/'");
  }
  std::string token;
  for (size_t i = 1; i <= pointer.size(); ++i) {
    if (i == pointer.size() || pointer[i] == '/') {
      tokens.push_back(std::move(token));
      token.clear();
      continue;
    }
    if (pointer[i] == '~') {
      if (i + 1 < pointer.size() && pointer[i + 1] == '0') {
        token += '~';
      } else if (i + 1 < pointer.size() && pointer[i + 1] == '1') {
        token += '/';
      } else {
        return absl::InvalidArgumentError("JSON pointer \"" + pointer + "\": bad escape");
      }
      ++i;
      continue;
    }
    token += pointer[i];
  }
  return tokens;
}

// Array index token: digits without leading zeros. -1 when not one.
long ArrayIndex(const std::string& token) {
  if (token.empty() || token.size() > 9) return -1;
  if (token.size() > 1 && token[0] == '0') return -1;
  for (char c : token) {
    if (c < '0' || c > '9') return -1;
  }
  return std::stol(token);
}

// The value the pointer names, or nullptr.
Json* Resolve(Json& doc, const std::vector<std::string>& tokens, size_t count) {
  Json* cur = &doc;
  for (size_t i = 0; i < count; ++i) {
    if (cur->is_object()) {
      auto it = cur->find(tokens[i]);
      if (it == cur->end()) return nullptr;
      cur = &*it;
    } else if (cur->is_array()) {
      long idx = ArrayIndex(tokens[i]);
      if (idx < 0 || static_cast<size_t>(idx) >= cur->size()) return nullptr;
      cur = &(*cur)[static_cast<size_t>(idx)];
    } else {
      return nullptr;
    }
  }
  return cur;
}

absl::Status Add(Json& doc, const std::vector<std::string>& tokens, Json value) {
  if (tokens.empty()) {
    doc = std::move(value);
    return absl::OkStatus();
  }
  Json* parent = Resolve(doc, tokens, tokens.size() - 1);
  if (parent == nullptr) return absl::InvalidArgumentError("parent path does not exist");
  const std::string& last = tokens.back();
  if (parent->is_object()) {
    (*parent)[last] = std::move(value);
    return absl::OkStatus();
  }
  if (parent->is_array()) {
    if (last == "-") {
      parent->push_back(std::move(value));
      return absl::OkStatus();
    }
    long idx = ArrayIndex(last);
    if (idx < 0 || static_cast<size_t>(idx) > parent->size()) {
      return absl::InvalidArgumentError("array index " + last + " out of range");
    }
    parent->insert(parent->begin() + idx, std::move(value));
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError("parent is not an object or a list");
}

absl::StatusOr<Json> Remove(Json& doc, const std::vector<std::string>& tokens) {
  if (tokens.empty()) return absl::InvalidArgumentError("cannot remove the whole document");
  Json* parent = Resolve(doc, tokens, tokens.size() - 1);
  if (parent == nullptr) return absl::InvalidArgumentError("path does not exist");
  const std::string& last = tokens.back();
  if (parent->is_object()) {
    auto it = parent->find(last);
    if (it == parent->end()) return absl::InvalidArgumentError("path does not exist");
    Json old = std::move(*it);
    parent->erase(it);
    return old;
  }
  if (parent->is_array()) {
    long idx = ArrayIndex(last);
    if (idx < 0 || static_cast<size_t>(idx) >= parent->size()) {
      return absl::InvalidArgumentError("path does not exist");
    }
    Json old = std::move((*parent)[static_cast<size_t>(idx)]);
    parent->erase(parent->begin() + idx);
    return old;
  }
  return absl::InvalidArgumentError("path does not exist");
}

absl::Status ApplyOperation(Json& doc, const Json& op) {
  if (!op.is_object()) return absl::InvalidArgumentError("operation must be an object");
  auto op_it = op.find("op");
  auto path_it = op.find("path");
  if (op_it == op.end() || !op_it->is_string()) {
    return absl::InvalidArgumentError("missing \"op\"");
  }
  if (path_it == op.end() || !path_it->is_string()) {
    return absl::InvalidArgumentError("missing \"path\"");
  }
  const std::string name = op_it->get<std::string>();
  DL_ASSIGN_OR_RETURN(std::vector<std::string> path, ParsePointer(path_it->get<std::string>()));
  auto value = [&]() -> absl::StatusOr<Json> {
    auto it = op.find("value");
    if (it == op.end()) return absl::InvalidArgumentError("missing \"value\"");
    return *it;
  };
  auto from = [&]() -> absl::StatusOr<std::vector<std::string>> {
    auto it = op.find("from");
    if (it == op.end() || !it->is_string()) return absl::InvalidArgumentError("missing \"from\"");
    return ParsePointer(it->get<std::string>());
  };
  if (name == "add") {
    DL_ASSIGN_OR_RETURN(Json v, value());
    return Add(doc, path, std::move(v));
  }
  if (name == "remove") return Remove(doc, path).status();
  if (name == "replace") {
    DL_ASSIGN_OR_RETURN(Json v, value());
    Json* target = Resolve(doc, path, path.size());
    if (target == nullptr) return absl::InvalidArgumentError("path does not exist");
    *target = std::move(v);
    return absl::OkStatus();
  }
  if (name == "move") {
    DL_ASSIGN_OR_RETURN(std::vector<std::string> src, from());
    if (src == path) return absl::OkStatus();
    if (path.size() > src.size() && std::equal(src.begin(), src.end(), path.begin())) {
      return absl::InvalidArgumentError("cannot move a value into itself");
    }
    DL_ASSIGN_OR_RETURN(Json v, Remove(doc, src));
    return Add(doc, path, std::move(v));
  }
  if (name == "copy") {
    DL_ASSIGN_OR_RETURN(std::vector<std::string> src, from());
    Json* v = Resolve(doc, src, src.size());
    if (v == nullptr) return absl::InvalidArgumentError("\"from\" path does not exist");
    Json copy = *v;
    return Add(doc, path, std::move(copy));
  }
  if (name == "test") {
    DL_ASSIGN_OR_RETURN(Json v, value());
    Json* target = Resolve(doc, path, path.size());
    if (target == nullptr) return absl::InvalidArgumentError("path does not exist");
    if (*target != v) return absl::InvalidArgumentError("test failed: value differs");
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError("unknown op \"" + name + "\"");
}

// ---- strategic merge patch ------------------------------------------------------------

constexpr std::string_view kDeleteFromPrimitiveList = "$deleteFromPrimitiveList/";
constexpr std::string_view kSetElementOrder = "$setElementOrder/";

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && s.substr(0, prefix.size()) == prefix;
}

bool IsDirective(std::string_view key) {
  return key == "$patch" || key == "$retainKeys" || StartsWith(key, kDeleteFromPrimitiveList) ||
         StartsWith(key, kSetElementOrder);
}

absl::Status SmpList(Json& dst, const Json& patch, Walker& w);

// apimachinery's normalizeElementOrder: the items `order` names, in that order, interleaved
// with the others (in their live order) so that an unnamed item precedes a named one when
// it did in the live list.
void ReorderList(Json& list, const Json& order, const Json& live, const std::string& merge_key) {
  auto identity = [&](const Json& item) -> Json {
    if (merge_key.empty()) return item;
    if (!item.is_object()) return Json();
    auto k = item.find(merge_key);
    return k == item.end() ? Json() : *k;
  };
  auto index_in = [&](const Json& items, const Json& id) -> long {
    if (id.is_null()) return -1;
    for (size_t i = 0; i < items.size(); ++i) {
      if (identity(items[i]) == id) return static_cast<long>(i);
    }
    return -1;
  };
  std::vector<std::pair<long, size_t>> named, unnamed;  // (rank, index in list)
  for (size_t i = 0; i < list.size(); ++i) {
    Json id = identity(list[i]);
    long rank = -1;
    for (size_t j = 0; j < order.size() && !id.is_null(); ++j) {
      if (identity(order[j]) == id) {
        rank = static_cast<long>(j);
        break;
      }
    }
    if (rank >= 0) {
      named.emplace_back(rank, i);
    } else {
      unnamed.emplace_back(index_in(live, id), i);
    }
  }
  std::stable_sort(named.begin(), named.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  // Not in the live list (the patch added it without naming it): last.
  auto live_rank = [](long i) { return i < 0 ? std::numeric_limits<long>::max() : i; };
  std::stable_sort(unnamed.begin(), unnamed.end(), [&](const auto& a, const auto& b) {
    return live_rank(a.first) < live_rank(b.first);
  });
  Json sorted = Json::array();
  size_t l = 0, r = 0;
  while (l < unnamed.size() || r < named.size()) {
    bool take_left = r >= named.size();
    if (!take_left && l < unnamed.size()) {
      long li = unnamed[l].first;
      long ri = index_in(live, identity(list[named[r].second]));
      take_left = li >= 0 && ri >= 0 && li < ri;
    }
    if (take_left) {
      sorted.push_back(std::move(list[unnamed[l++].second]));
    } else {
      sorted.push_back(std::move(list[named[r++].second]));
    }
  }
  list = std::move(sorted);
}

// Merges patch map `patch` into `dst` (an object). Sets *deleted when the patch says
// `$patch: delete` for this map.
absl::Status SmpMap(Json& dst, const Json& patch, Walker& w, bool* deleted) {
  *deleted = false;
  if (!dst.is_object()) dst = Json::object();
  if (auto p = patch.find("$patch"); p != patch.end()) {
    const std::string directive = p->is_string() ? p->get<std::string>() : "";
    if (directive == "delete") {
      *deleted = true;
      return absl::OkStatus();
    }
    if (directive == "replace") {
      Json fresh = Json::object();
      Json rest = patch;
      rest.erase("$patch");
      dst = Json::object();
      return SmpMap(dst, rest, w, deleted);
    }
    if (directive != "merge") {
      return absl::InvalidArgumentError(w.display + ": unknown $patch directive \"" + p->dump() +
                                        "\"");
    }
  }
  if (auto rk = patch.find("$retainKeys"); rk != patch.end()) {
    if (!rk->is_array()) {
      return absl::InvalidArgumentError(w.display + ".$retainKeys: expected a list");
    }
    for (auto it = dst.begin(); it != dst.end();) {
      if (std::find(rk->begin(), rk->end(), Json(it.key())) == rk->end()) {
        it = dst.erase(it);
      } else {
        ++it;
      }
    }
  }
  // The live order of lists the patch reorders, before the merge changes them.
  std::map<std::string, Json> server_order;
  for (auto it = patch.begin(); it != patch.end(); ++it) {
    if (!StartsWith(it.key(), kSetElementOrder)) continue;
    std::string field = it.key().substr(kSetElementOrder.size());
    auto target = dst.find(field);
    if (target != dst.end() && target->is_array()) server_order[field] = *target;
  }
  // Deletions from primitive lists come before the merge of the same field.
  for (auto it = patch.begin(); it != patch.end(); ++it) {
    if (!StartsWith(it.key(), kDeleteFromPrimitiveList)) continue;
    std::string field = it.key().substr(kDeleteFromPrimitiveList.size());
    if (!it.value().is_array()) {
      return absl::InvalidArgumentError(w.display + "." + it.key() + ": expected a list");
    }
    auto target = dst.find(field);
    if (target == dst.end() || !target->is_array()) continue;
    Json kept = Json::array();
    for (auto& v : *target) {
      if (std::find(it.value().begin(), it.value().end(), v) == it.value().end()) {
        kept.push_back(std::move(v));
      }
    }
    *target = std::move(kept);
  }
  for (auto it = patch.begin(); it != patch.end(); ++it) {
    const std::string& key = it.key();
    if (IsDirective(key)) continue;
    const Json& value = it.value();
    if (value.is_null()) {
      dst.erase(key);
      continue;
    }
    size_t n = w.display.size();
    w.display += "." + key;
    w.path.push_back(key);
    absl::Status s;
    auto d = dst.find(key);
    if (value.is_object()) {
      Json child = d != dst.end() && d->is_object() ? std::move(*d) : Json::object();
      bool child_deleted = false;
      s = SmpMap(child, value, w, &child_deleted);
      if (child_deleted) {
        dst.erase(key);
      } else {
        dst[key] = std::move(child);
      }
    } else if (value.is_array()) {
      Json child = d != dst.end() && d->is_array() ? std::move(*d) : Json::array();
      s = SmpList(child, value, w);
      dst[key] = std::move(child);
    } else {
      dst[key] = value;
    }
    w.path.pop_back();
    w.display.resize(n);
    DL_RETURN_IF_ERROR(s);
  }
  // $setElementOrder/<field>: the order the client wants for the items it knows about.
  for (auto it = patch.begin(); it != patch.end(); ++it) {
    if (!StartsWith(it.key(), kSetElementOrder)) continue;
    std::string field = it.key().substr(kSetElementOrder.size());
    if (!it.value().is_array()) {
      return absl::InvalidArgumentError(w.display + "." + it.key() + ": expected a list");
    }
    auto target = dst.find(field);
    if (target == dst.end() || !target->is_array()) continue;
    w.path.push_back(field);
    ListInfo info = w.List();
    w.path.pop_back();
    auto orig = server_order.find(field);
    ReorderList(*target, it.value(), orig == server_order.end() ? Json::array() : orig->second,
                info.type == ListType::kMap ? info.keys.front() : "");
  }
  return absl::OkStatus();
}

absl::Status SmpList(Json& dst, const Json& patch, Walker& w) {
  ListInfo info = w.List();
  // A `{"$patch": "replace"}` item replaces the whole list with the other items.
  bool replace = false;
  for (const auto& item : patch) {
    if (item.is_object() && item.value("$patch", "") == "replace") replace = true;
  }
  if (info.type == ListType::kAtomic || replace) {
    Json out = Json::array();
    for (const auto& item : patch) {
      if (item.is_object() && item.contains("$patch")) continue;
      if (item.is_object()) {
        Json fresh = Json::object();
        bool deleted = false;
        DL_RETURN_IF_ERROR(SmpMap(fresh, item, w, &deleted));
        if (!deleted) out.push_back(std::move(fresh));
      } else {
        out.push_back(item);
      }
    }
    dst = std::move(out);
    return absl::OkStatus();
  }
  if (info.type == ListType::kSet) {
    for (const auto& item : patch) {
      if (std::find(dst.begin(), dst.end(), item) == dst.end()) dst.push_back(item);
    }
    return absl::OkStatus();
  }
  const std::string& key = info.keys.front();
  for (size_t i = 0; i < patch.size(); ++i) {
    const Json& item = patch[i];
    const std::string where =
        std::string(w.display).append("[").append(std::to_string(i)).append("]");
    if (!item.is_object()) {
      return absl::InvalidArgumentError(where + ": expected an object");
    }
    auto k = item.find(key);
    if (k == item.end() || k->is_null()) {
      return absl::InvalidArgumentError(where + ": does not contain declared merge key: " + key);
    }
    auto match = std::find_if(dst.begin(), dst.end(), [&](const Json& d) {
      if (!d.is_object()) return false;
      auto dk = d.find(key);
      return dk != d.end() && *dk == *k;
    });
    if (item.value("$patch", "") == "delete") {
      dst.erase(std::remove_if(dst.begin(), dst.end(),
                               [&](const Json& d) {
                                 if (!d.is_object()) return false;
                                 auto dk = d.find(key);
                                 return dk != d.end() && *dk == *k;
                               }),
                dst.end());
      continue;
    }
    size_t n = w.display.size();
    w.display = where;
    bool deleted = false;
    absl::Status s;
    if (match != dst.end()) {
      s = SmpMap(*match, item, w, &deleted);
      if (deleted) dst.erase(match);
    } else {
      Json fresh = Json::object();
      s = SmpMap(fresh, item, w, &deleted);
      if (!deleted) dst.push_back(std::move(fresh));
    }
    w.display.resize(n);
    DL_RETURN_IF_ERROR(s);
  }
  return absl::OkStatus();
}

}  // namespace

Json JsonMergePatch(const Json& target, const Json& patch) {
  if (!patch.is_object()) return patch;
  Json out = target.is_object() ? target : Json::object();
  for (auto it = patch.begin(); it != patch.end(); ++it) {
    if (it.value().is_null()) {
      out.erase(it.key());
      continue;
    }
    auto cur = out.find(it.key());
    if (cur == out.end()) {
      out[it.key()] = JsonMergePatch(Json(), it.value());
    } else {
      *cur = JsonMergePatch(*cur, it.value());
    }
  }
  return out;
}

absl::StatusOr<Json> JsonPatch(const Json& target, const Json& patch) {
  if (!patch.is_array()) {
    return absl::InvalidArgumentError("JSON patch must be a list of operations");
  }
  Json doc = target;
  for (size_t i = 0; i < patch.size(); ++i) {
    absl::Status s = ApplyOperation(doc, patch[i]);
    if (!s.ok()) {
      const Json& op = patch[i];
      std::string what = std::string("JSON patch operation ").append(std::to_string(i));
      if (op.is_object()) {
        what += " (" + op.value("op", std::string("?")) + " " + op.value("path", std::string("?")) +
                ")";
      }
      return Annotate(s, what);
    }
  }
  return doc;
}

absl::StatusOr<Json> StrategicMergePatch(const Json& target, const Json& patch,
                                         const Schema* schema) {
  if (!patch.is_object()) {
    return absl::InvalidArgumentError("strategic merge patch must be a JSON object");
  }
  const Json& typed = target.is_object() ? target : patch;
  Walker w{schema != nullptr ? *schema : Schema::BuiltIn(),
           typed.value("apiVersion", std::string()),
           typed.value("kind", std::string()),
           {},
           {},
           {}};
  Json out = target.is_object() ? target : Json::object();
  bool deleted = false;
  DL_RETURN_IF_ERROR(SmpMap(out, patch, w, &deleted));
  if (deleted) return Json::object();
  return out;
}

}  // namespace driftless::merge
