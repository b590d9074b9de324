#include "common/merge/internal/walk.h"

#include <algorithm>
#include <unordered_map>
#include <unordered_set>
#include <utility>

namespace driftless::merge::internal {

using Json = nlohmann::json;

namespace {

bool IsEmptyContainer(const Json* v) {
  return v == nullptr || ((v->is_object() || v->is_array()) && v->empty()) || v->is_null();
}

struct Frame {
  Frame(Walker& w, const std::string& field) : w_(w), display_size_(w.display.size()) {
    w.path.push_back(field);
    w.display += '.';
    w.display += field;
  }
  ~Frame() {
    w_.path.pop_back();
    w_.display.resize(display_size_);
  }
  Walker& w_;
  size_t display_size_;
};

absl::Status FieldsOfValue(const Json& v, Walker& w, FieldSet& node) {
  if (v.is_object()) {
    if (w.List().type != ListType::kAtomic) {
      return absl::InvalidArgumentError(w.display + ": expected a list, got object");
    }
    if (v.empty() || w.AtomicMap()) {
      node.member = true;
      return absl::OkStatus();
    }
    return FieldsOf(v, w, node);
  }
  ListInfo list = w.List();
  if (list.type != ListType::kAtomic && !v.is_array() && !v.is_null()) {
    return absl::InvalidArgumentError(w.display + ": expected a list, got " +
                                      std::string(v.type_name()));
  }
  if (!v.is_array() || v.empty() || list.type == ListType::kAtomic) {
    node.member = true;
    return absl::OkStatus();
  }
  for (size_t i = 0; i < v.size(); ++i) {
    const Json& item = v[i];
    size_t n = w.display.size();
    w.display.append("[").append(std::to_string(i)).append("]");
    absl::StatusOr<std::string> key = ItemKey(list, item);
    if (!key.ok()) {
      absl::Status s = Annotate(key.status(), w.display);
      w.display.resize(n);
      return s;
    }
    if (node.children.count(*key) > 0) {
      std::string msg = w.display + ": duplicate entries for key " + PathElementString(*key);
      w.display.resize(n);
      return absl::InvalidArgumentError(msg);
    }
    FieldSet& child = node.Child(*key);
    child.member = true;
    if (list.type == ListType::kMap) {
      absl::Status s = FieldsOf(item, w, child);
      if (!s.ok()) {
        w.display.resize(n);
        return s;
      }
    }
    w.display.resize(n);
  }
  return absl::OkStatus();
}

// Index of list items by key, first occurrence wins; later duplicates (live objects may
// have them, e.g. env written by PUT) go to `dups` when given. False when an item cannot be
// keyed.
bool IndexList(const Json& list, const ListInfo& info, std::vector<std::string>& order,
               std::unordered_map<std::string, size_t>& index,
               std::unordered_map<std::string, std::vector<size_t>>* dups = nullptr) {
  order.reserve(list.size());
  index.reserve(list.size());
  for (size_t i = 0; i < list.size(); ++i) {
    absl::StatusOr<std::string> key = ItemKey(info, list[i]);
    if (!key.ok()) return false;
    if (index.emplace(*key, i).second) {
      order.push_back(std::move(*key));
    } else if (dups != nullptr) {
      (*dups)[*key].push_back(i);
    }
  }
  return true;
}

void MergeList(Json& dst, const Json& src, const ListInfo& info, Walker& w) {
  std::vector<std::string> lorder, rorder;
  std::unordered_map<std::string, size_t> lindex, rindex;
  std::unordered_map<std::string, std::vector<size_t>> ldups;
  if (!IndexList(dst, info, lorder, lindex, &ldups) || !IndexList(src, info, rorder, rindex)) {
    dst = WithoutNulls(src);
    return;
  }
  std::vector<const std::string*> shared;
  for (const auto& k : rorder) {
    if (lindex.count(k)) shared.push_back(&k);
  }
  size_t next_shared = 0;
  auto is_next_shared = [&](const std::string& k) {
    return next_shared < shared.size() && *shared[next_shared] == k;
  };
  Json out = Json::array();
  std::unordered_set<std::string> emitted;
  auto emit = [&](const std::string& key) {
    if (!emitted.insert(key).second) return;
    auto l = lindex.find(key);
    auto r = rindex.find(key);
    if (l != lindex.end()) {
      Json item = std::move(dst[l->second]);
      if (r != rindex.end() && info.type == ListType::kMap) MergeInto(item, src[r->second], w);
      out.push_back(std::move(item));
      // Duplicates the configuration does not mention stay; one it mentions becomes one item.
      if (auto d = ldups.find(key); d != ldups.end() && r == rindex.end()) {
        for (size_t i : d->second) out.push_back(std::move(dst[i]));
      }
    } else {
      out.push_back(WithoutNulls(src[r->second]));
    }
  };
  size_t li = 0, ri = 0;
  while (li < lorder.size() || ri < rorder.size()) {
    if (li < lorder.size() && emitted.count(lorder[li])) {
      ++li;
      continue;
    }
    if (li < lorder.size() && ri < rorder.size()) {
      const std::string& lk = lorder[li];
      if (lk == rorder[ri]) {
        emit(lk);
        ++li;
        ++ri;
        if (next_shared < shared.size()) ++next_shared;
        continue;
      }
      if (rindex.count(lk) && next_shared < shared.size() && !is_next_shared(lk)) {
        ++li;  // a shared item, placed when the configuration reaches it
        continue;
      }
    }
    if (li < lorder.size() && !rindex.count(lorder[li])) {
      emit(lorder[li]);
      ++li;
      continue;
    }
    if (ri < rorder.size()) {
      const std::string& rk = rorder[ri];
      emit(rk);
      ++ri;
      if (is_next_shared(rk)) ++next_shared;
      continue;
    }
    ++li;  // only shared items already emitted remain
  }
  dst = std::move(out);
}

}  // namespace

absl::StatusOr<std::string> ItemKey(const ListInfo& list, const Json& item) {
  if (list.type == ListType::kSet) {
    if (item.is_object() || item.is_array()) {
      return absl::InvalidArgumentError("set items must be scalars, got " +
                                        std::string(item.type_name()));
    }
    return "v:" + item.dump();
  }
  if (!item.is_object()) {
    return absl::InvalidArgumentError("associative list items must be objects, got " +
                                      std::string(item.type_name()));
  }
  // "k:" + the key fields as a compact JSON object with sorted names (what json.Marshal of
  // a Go map produces), built by hand: this runs for every list item of every walk.
  const Json* values[8];
  const size_t n = list.keys.size();
  if (n == 0 || n > 8) return absl::InvalidArgumentError("list map without usable keys");
  for (size_t i = 0; i < n; ++i) {
    const std::string& name = list.keys[i];
    auto it = item.find(name);
    if (it != item.end() && !it->is_null()) {
      if (it->is_object() || it->is_array()) {
        return absl::InvalidArgumentError("key field \"" + name + "\" must be a scalar");
      }
      values[i] = &*it;
    } else if (i < list.key_defaults.size() && !list.key_defaults[i].is_null()) {
      values[i] = &list.key_defaults[i];
    } else {
      return absl::InvalidArgumentError(
          "associative list with keys has an element that omits key field \"" + name +
          "\" (and doesn't have default value)");
    }
  }
  size_t order[8];
  for (size_t i = 0; i < n; ++i) order[i] = i;
  std::sort(order, order + n, [&](size_t a, size_t b) { return list.keys[a] < list.keys[b]; });
  std::string key = "k:{";
  for (size_t j = 0; j < n; ++j) {
    if (j) key += ',';
    key += '"';
    key += list.keys[order[j]];
    key += "\":";
    key += values[order[j]]->dump();
  }
  key += '}';
  return key;
}

absl::Status FieldsOf(const Json& obj, Walker& w, FieldSet& node) {
  for (auto it = obj.begin(); it != obj.end(); ++it) {
    if (w.Skip(it.key())) continue;
    Frame f(w, it.key());
    DL_RETURN_IF_ERROR(FieldsOfValue(it.value(), w, node.Child("f:" + it.key())));
  }
  return absl::OkStatus();
}

Json WithoutNulls(const Json& v) {
  if (v.is_object()) {
    Json out = Json::object();
    for (auto it = v.begin(); it != v.end(); ++it) {
      if (!it.value().is_null()) out[it.key()] = WithoutNulls(it.value());
    }
    return out;
  }
  if (v.is_array()) {
    Json out = Json::array();
    for (const auto& item : v) out.push_back(WithoutNulls(item));
    return out;
  }
  return v;
}

void MergeInto(Json& dst, const Json& src, Walker& w) {
  if (src.is_object() && dst.is_object() && !w.AtomicMap()) {
    for (auto it = src.begin(); it != src.end(); ++it) {
      if (it.value().is_null()) {
        dst.erase(it.key());
        continue;
      }
      auto d = dst.find(it.key());
      if (d == dst.end()) {
        dst[it.key()] = WithoutNulls(it.value());
      } else {
        w.path.push_back(it.key());
        MergeInto(*d, it.value(), w);
        w.path.pop_back();
      }
    }
    return;
  }
  if (src.is_array() && dst.is_array() && !(src.empty() && dst.empty())) {
    ListInfo info = w.List();
    if (info.type != ListType::kAtomic) {
      MergeList(dst, src, info, w);
      return;
    }
  }
  dst = WithoutNulls(src);
}

void RemoveItems(Json& v, const FieldSet& remove, Walker& w) {
  if (v.is_object()) {
    for (const auto& [key, child] : remove.children) {
      if (key.size() < 2 || key[0] != 'f') continue;
      std::string name = key.substr(2);
      auto it = v.find(name);
      if (it == v.end()) continue;
      if (child.member) {
        v.erase(it);
      } else {
        const bool was_empty = it->is_object() && it->empty();
        w.path.push_back(name);
        RemoveItems(*it, child, w);
        w.path.pop_back();
        if (it->is_object() && it->empty() && !was_empty) v.erase(it);
      }
    }
    return;
  }
  if (!v.is_array()) return;
  ListInfo info = w.List();
  if (info.type == ListType::kAtomic) return;
  for (size_t i = v.size(); i-- > 0;) {
    absl::StatusOr<std::string> key = ItemKey(info, v[i]);
    if (!key.ok()) continue;
    auto it = remove.children.find(*key);
    if (it == remove.children.end()) continue;
    if (it->second.member) {
      v.erase(v.begin() + static_cast<std::ptrdiff_t>(i));
    } else {
      RemoveItems(v[i], it->second, w);
    }
  }
}

namespace {

void NonLeaf(const Json* l, const Json* r, Walker& w, Comparison& out) {
  if (w.keys.empty()) return;
  if (l == nullptr) {
    out.added.Insert(w.keys);
  } else if (r == nullptr) {
    out.removed.Insert(w.keys);
  }
}

void CompareField(const std::string& name, const Json* l, const Json* r, Walker& w,
                  Comparison& out) {
  w.path.push_back(name);
  w.keys.push_back("f:" + name);
  Compare(l, r, w, out);
  w.keys.pop_back();
  w.path.pop_back();
}

}  // namespace

void Compare(const Json* l, const Json* r, Walker& w, Comparison& out) {
  const Json* rep = r != nullptr ? r : l;
  if (rep == nullptr) return;
  const bool both_empty = IsEmptyContainer(l) && IsEmptyContainer(r);
  const bool objects =
      rep->is_object() && (l == nullptr || l->is_object()) && (r == nullptr || r->is_object());
  if (objects && !both_empty && !w.AtomicMap()) {
    if (l != nullptr) {
      for (auto it = l->begin(); it != l->end(); ++it) {
        if (w.Skip(it.key())) continue;
        const Json* rv = nullptr;
        if (r != nullptr) {
          auto f = r->find(it.key());
          if (f != r->end()) rv = &*f;
        }
        CompareField(it.key(), &it.value(), rv, w, out);
      }
    }
    if (r != nullptr) {
      for (auto it = r->begin(); it != r->end(); ++it) {
        if (w.Skip(it.key())) continue;
        if (l != nullptr && l->contains(it.key())) continue;
        CompareField(it.key(), nullptr, &it.value(), w, out);
      }
    }
    NonLeaf(l, r, w, out);
    return;
  }
  const bool arrays =
      rep->is_array() && (l == nullptr || l->is_array()) && (r == nullptr || r->is_array());
  if (arrays && !both_empty) {
    ListInfo info = w.List();
    std::vector<std::string> lorder, rorder;
    std::unordered_map<std::string, size_t> lindex, rindex;
    if (info.type != ListType::kAtomic && (l == nullptr || IndexList(*l, info, lorder, lindex)) &&
        (r == nullptr || IndexList(*r, info, rorder, rindex))) {
      auto item = [&](const std::string& key, const Json* lv, const Json* rv) {
        w.keys.push_back(key);
        if (info.type == ListType::kSet) {
          if (lv == nullptr) {
            out.added.Insert(w.keys);
          } else if (rv == nullptr) {
            out.removed.Insert(w.keys);
          }
        } else {
          Compare(lv, rv, w, out);
        }
        w.keys.pop_back();
      };
      for (const auto& k : lorder) {
        auto ri = rindex.find(k);
        item(k, &(*l)[lindex[k]], ri == rindex.end() ? nullptr : &(*r)[ri->second]);
      }
      for (const auto& k : rorder) {
        if (lindex.count(k)) continue;
        item(k, nullptr, &(*r)[rindex[k]]);
      }
      NonLeaf(l, r, w, out);
      return;
    }
  }
  if (w.keys.empty()) return;
  if (l == nullptr) {
    out.added.Insert(w.keys);
  } else if (r == nullptr) {
    out.removed.Insert(w.keys);
  } else if (*l != *r) {
    out.modified.Insert(w.keys);
  }
}

}  // namespace driftless::merge::internal
