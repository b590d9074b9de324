// Server-side apply and managedFields bookkeeping, after structured-merge-diff's Updater
// (Apply/Update) and the API server's field manager chain (strip metadata fields, one
// entry per manager identity, timestamps, the kubectl last-applied upgrade path). Written
// for driftless: no Go library exists for C++ and the API emulator needs the same behavior.
#include <algorithm>
#include <utility>

#include "common/merge/internal/field_set.h"
#include "common/merge/internal/walk.h"
#include "common/merge/merge.h"

namespace driftless::merge {
namespace {

using internal::Comparison;
using internal::FieldSet;
using internal::Walker;

constexpr std::string_view kLastApplied = "kubectl.kubernetes.io/last-applied-configuration";

struct Entry {
  ManagedFieldsEntry meta;
  FieldSet set;
};

std::string StringField(const Json& obj, std::string_view key) {
  if (!obj.is_object()) return "";
  auto it = obj.find(key);
  if (it == obj.end() || !it->is_string()) return "";
  return it->get<std::string>();
}

// The API server never records these as owned (stripMetaManager).
void StripMeta(FieldSet& set) {
  set.children.erase("f:apiVersion");
  set.children.erase("f:kind");
  auto it = set.children.find("f:metadata");
  if (it != set.children.end()) {
    FieldSet& md = it->second;
    md.member = false;
    for (const char* f :
         {"f:name", "f:namespace", "f:creationTimestamp", "f:selfLink", "f:uid", "f:clusterName",
          "f:generation", "f:managedFields", "f:resourceVersion"}) {
      md.children.erase(f);
    }
  }
  set.Compact();
}

const Json& ManagedFieldsOf(const Json& object);

// Parses metadata.managedFields once, FieldsV1 decoded.
// `keep_json` also copies each fieldsV1 into meta.fields_v1 (apply re-encodes instead).
absl::StatusOr<std::vector<Entry>> ParseEntries(const Json& object, bool keep_json = false) {
  std::vector<Entry> out;
  const Json& mf = ManagedFieldsOf(object);
  if (mf.is_null()) return out;
  if (!mf.is_array()) {
    return absl::InvalidArgumentError("metadata.managedFields: expected a list");
  }
  out.reserve(mf.size());
  for (size_t i = 0; i < mf.size(); ++i) {
    const Json& e = mf[i];
    auto where = [i] {
      return std::string("metadata.managedFields[").append(std::to_string(i)).append("]");
    };
    if (!e.is_object()) return absl::InvalidArgumentError(where() + ": expected an object");
    for (const char* f :
         {"manager", "operation", "apiVersion", "time", "subresource", "fieldsType"}) {
      auto it = e.find(f);
      if (it != e.end() && !it->is_string() && !it->is_null()) {
        return absl::InvalidArgumentError(where() + "." + f + ": expected a string");
      }
    }
    Entry entry;
    ManagedFieldsEntry& m = entry.meta;
    m.manager = StringField(e, "manager");
    m.operation = StringField(e, "operation");
    m.api_version = StringField(e, "apiVersion");
    m.time = StringField(e, "time");
    m.subresource = StringField(e, "subresource");
    std::string type = StringField(e, "fieldsType");
    if (!type.empty() && type != "FieldsV1") {
      return absl::InvalidArgumentError(where() + ".fieldsType: unsupported \"" + type + "\"");
    }
    if (!m.operation.empty() && m.operation != "Apply" && m.operation != "Update") {
      return absl::InvalidArgumentError(where() + ".operation: must be Apply or Update, got \"" +
                                        m.operation + "\"");
    }
    auto fv = e.find("fieldsV1");
    if (fv != e.end() && !fv->is_null()) {
      absl::StatusOr<FieldSet> set = FieldSet::FromFieldsV1(*fv);
      if (!set.ok()) return Annotate(set.status(), where());
      entry.set = std::move(*set);
      if (keep_json) m.fields_v1 = *fv;
    } else {
      m.fields_v1 = Json::object();
    }
    out.push_back(std::move(entry));
  }
  return out;
}

std::vector<Entry> EntriesOf(const Json& object) {
  absl::StatusOr<std::vector<Entry>> parsed = ParseEntries(object);
  if (!parsed.ok()) return {};  // the API server resets unreadable managedFields
  return std::move(*parsed);
}

bool SameIdentity(const ManagedFieldsEntry& e, std::string_view manager, std::string_view operation,
                  std::string_view subresource, std::string_view api_version) {
  if (e.manager != manager || e.operation != operation || e.subresource != subresource) {
    return false;
  }
  return operation == "Apply" || e.api_version == api_version;
}

// Sorted as the API server writes them, empty sets dropped, FieldsV1 refreshed.
std::vector<ManagedFieldsEntry> Finish(std::vector<Entry>& entries) {
  std::vector<ManagedFieldsEntry> out;
  for (auto& e : entries) {
    StripMeta(e.set);
    if (e.set.Empty()) continue;
    e.meta.fields_v1 = e.set.ToFieldsV1();
    out.push_back(std::move(e.meta));
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const ManagedFieldsEntry& a, const ManagedFieldsEntry& b) {
                     return std::tie(a.operation, a.time, a.manager, a.api_version, a.subresource) <
                            std::tie(b.operation, b.time, b.manager, b.api_version, b.subresource);
                   });
  return out;
}

Json EntryToJson(ManagedFieldsEntry&& e) {
  Json j = Json::object();
  if (!e.manager.empty()) j["manager"] = std::move(e.manager);
  if (!e.operation.empty()) j["operation"] = std::move(e.operation);
  if (!e.api_version.empty()) j["apiVersion"] = std::move(e.api_version);
  if (!e.time.empty()) j["time"] = std::move(e.time);
  j["fieldsType"] = "FieldsV1";
  j["fieldsV1"] = e.fields_v1.is_null() ? Json::object() : std::move(e.fields_v1);
  if (!e.subresource.empty()) j["subresource"] = std::move(e.subresource);
  return j;
}

void SetManagedFields(Json& object, std::vector<ManagedFieldsEntry>&& entries) {
  if (!object.is_object()) return;
  if (entries.empty()) {
    auto md = object.find("metadata");
    if (md != object.end() && md->is_object()) md->erase("managedFields");
    return;
  }
  Json list = Json::array();
  for (auto& e : entries) list.push_back(EntryToJson(std::move(e)));
  object["metadata"]["managedFields"] = std::move(list);
}

// Equal managedFields lists, ignoring each entry's time.
bool SameIgnoringTime(const Json& a, const Json& b) {
  const bool a_empty = !a.is_array() || a.empty();
  const bool b_empty = !b.is_array() || b.empty();
  if (a_empty || b_empty) return a_empty == b_empty;
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    const Json& x = a[i];
    const Json& y = b[i];
    if (!x.is_object() || !y.is_object()) {
      if (x != y) return false;
      continue;
    }
    size_t nx = 0;
    for (auto it = x.begin(); it != x.end(); ++it) {
      if (it.key() == "time") continue;
      ++nx;
      auto f = y.find(it.key());
      if (f == y.end() || *f != it.value()) return false;
    }
    size_t ny = y.size() - (y.contains("time") ? 1 : 0);
    if (nx != ny) return false;
  }
  return true;
}

// What prune removes: members (leaves, list items) of the manager's previous set that no
// manager owns any more. A struct the manager only had fields under (metadata, when it stops
// applying labels) is not itself removed: its other fields (name, namespace) were never the
// manager's, as structured-merge-diff's addBackDanglingItems ensures; RemoveItems drops maps
// that the removal leaves empty.
void Removable(const FieldSet& last, const FieldSet* owned, bool named, FieldSet& out) {
  const bool last_member = last.member;
  const bool owned_member =
      owned != nullptr && (owned->member || (named && !owned->children.empty()));
  if (last_member && !owned_member) {
    out.member = true;
    return;  // the whole subtree goes
  }
  for (const auto& [k, c] : last.children) {
    const FieldSet* o = nullptr;
    if (owned != nullptr) {
      auto it = owned->children.find(k);
      if (it != owned->children.end()) o = &it->second;
    }
    FieldSet sub;
    Removable(c, o, k.size() >= 2 && k[0] == 'f', sub);
    if (sub.member || !sub.children.empty()) out.children.emplace(k, std::move(sub));
  }
}

const Json& ManagedFieldsOf(const Json& object) {
  static const Json* kNull = new Json();
  if (!object.is_object()) return *kNull;
  auto md = object.find("metadata");
  if (md == object.end() || !md->is_object()) return *kNull;
  auto mf = md->find("managedFields");
  return mf == md->end() ? *kNull : *mf;
}

const Json* Annotation(const Json& object, std::string_view name) {
  if (!object.is_object()) return nullptr;
  auto md = object.find("metadata");
  if (md == object.end() || !md->is_object()) return nullptr;
  auto an = md->find("annotations");
  if (an == md->end() || !an->is_object()) return nullptr;
  auto it = an->find(name);
  return it == an->end() ? nullptr : &*it;
}

// Fields of the last-applied annotation whose live value still matches it: kubectl's
// server-side apply may take them over from client-side apply without conflict.
FieldSet AllowedFromLastApplied(const Json& live, Walker& w) {
  const Json* annotation = Annotation(live, kLastApplied);
  if (annotation == nullptr || !annotation->is_string()) return {};
  Json last = Json::parse(annotation->get<std::string>(), nullptr, false);
  if (!last.is_object()) return {};
  FieldSet set;
  if (!internal::FieldsOf(last, w, set).ok()) return {};
  Comparison cmp;
  internal::Compare(&last, &live, w, cmp);
  return set.Difference(cmp.modified).Difference(cmp.removed);
}

std::string Quote(std::string_view s) { return Json(std::string(s)).dump(); }

std::string PrintManager(const Conflict& c) {
  std::string out = Quote(c.manager);
  if (!c.subresource.empty()) out += " with subresource " + Quote(c.subresource);
  // The API server prints the manager identifier, which never carries the time.
  if (c.operation == "Update") out += " using " + c.api_version;
  return out;
}

// Like the API server, at most kMaxUpdateManagers Update entries: the oldest are folded,
// per apiVersion, into an "ancient-changes" entry.
constexpr size_t kMaxUpdateManagers = 10;

void CapUpdateManagers(std::vector<Entry>& entries) {
  std::vector<size_t> updaters;
  for (size_t i = 0; i < entries.size(); ++i) {
    if (entries[i].meta.operation != "Apply" && !entries[i].set.Empty()) updaters.push_back(i);
  }
  if (updaters.size() <= kMaxUpdateManagers) return;
  std::stable_sort(updaters.begin(), updaters.end(), [&](size_t a, size_t b) {
    return std::tie(entries[a].meta.time, entries[a].meta.manager) <
           std::tie(entries[b].meta.time, entries[b].meta.manager);
  });
  std::map<std::string, size_t> bucket_of_version;  // apiVersion -> entry index
  size_t length = updaters.size();
  for (size_t k = 0; k < updaters.size() && length > kMaxUpdateManagers; ++k) {
    Entry& e = entries[updaters[k]];
    auto [it, first] = bucket_of_version.emplace(e.meta.api_version, updaters[k]);
    if (first) continue;
    Entry& bucket = entries[it->second];
    if (bucket.meta.manager != "ancient-changes" || bucket.meta.subresource != "") {
      bucket.meta.manager = "ancient-changes";
      bucket.meta.subresource.clear();
    }
    bucket.set.UnionWith(e.set);
    bucket.meta.time = e.meta.time;
    e.set = FieldSet{};  // dropped by Finish
    --length;
  }
}

}  // namespace

std::string ConflictCauseMessage(const Conflict& conflict) {
  return "conflict with " + PrintManager(conflict);
}

std::string ConflictMessage(const std::vector<Conflict>& conflicts) {
  if (conflicts.size() == 1) {
    return "Apply failed with 1 conflict: conflict with " + PrintManager(conflicts[0]) + ": " +
           conflicts[0].field_path;
  }
  std::vector<std::pair<std::string, std::vector<std::string>>> groups;
  for (const auto& c : conflicts) {
    std::string who = PrintManager(c);
    auto it =
        std::find_if(groups.begin(), groups.end(), [&](const auto& g) { return g.first == who; });
    if (it == groups.end()) {
      groups.push_back({who, {}});
      it = groups.end() - 1;
    }
    it->second.push_back(c.field_path);
  }
  std::sort(groups.begin(), groups.end());
  std::string out = "Apply failed with " + std::to_string(conflicts.size()) + " conflicts: ";
  bool first = true;
  for (const auto& [who, paths] : groups) {
    if (!first) out += "\n";
    first = false;
    out += "conflicts with " + who + ":";
    for (const auto& p : paths) out += "\n- " + p;
  }
  return out;
}

absl::StatusOr<std::vector<ManagedFieldsEntry>> ParseManagedFields(const Json& object) {
  DL_ASSIGN_OR_RETURN(std::vector<Entry> entries, ParseEntries(object, /*keep_json=*/true));
  std::vector<ManagedFieldsEntry> out;
  out.reserve(entries.size());
  for (auto& e : entries) out.push_back(std::move(e.meta));
  return out;
}

Json ManagedFieldsToJson(const std::vector<ManagedFieldsEntry>& entries) {
  Json out = Json::array();
  for (const auto& e : entries) out.push_back(EntryToJson(ManagedFieldsEntry(e)));
  return out;
}

absl::StatusOr<ApplyOutcome> ServerSideApply(const ApplyRequest& request) {
  const Json& applied = request.applied;
  const Json& live = request.live;
  if (!applied.is_object()) {
    return absl::InvalidArgumentError("apply configuration must be a JSON object, got " +
                                      std::string(applied.type_name()));
  }
  const std::string api_version = StringField(applied, "apiVersion");
  const std::string kind = StringField(applied, "kind");
  if (api_version.empty()) return absl::InvalidArgumentError(".apiVersion: required");
  if (kind.empty()) return absl::InvalidArgumentError(".kind: required");
  if (request.manager.empty()) {
    return absl::InvalidArgumentError("fieldManager is required for apply requests");
  }
  if (!live.is_null() && !live.is_object()) {
    return absl::InvalidArgumentError("live object must be a JSON object");
  }
  if (live.is_object() && StringField(live, "kind") != kind && !StringField(live, "kind").empty()) {
    return absl::InvalidArgumentError(".kind: apply configuration has kind " + kind +
                                      " but the object is a " + StringField(live, "kind"));
  }
  if (!request.subresource.empty() && request.subresource != "status") {
    return absl::InvalidArgumentError("unsupported subresource \"" + request.subresource + "\"");
  }
  const bool status_only = request.subresource == "status";
  const Schema& schema = request.schema != nullptr ? *request.schema : Schema::BuiltIn();
  Walker w{schema, api_version, kind, {}, {}, {}};

  // What the manager says, minus what this endpoint ignores.
  Json config;
  if (status_only) {
    config = Json::object();
    config["apiVersion"] = api_version;
    config["kind"] = kind;
    if (auto st = applied.find("status"); st != applied.end()) config["status"] = *st;
  } else {
    config = applied;
    config.erase("status");
    if (auto md = config.find("metadata"); md != config.end() && md->is_object()) {
      md->erase("managedFields");
    }
  }
  FieldSet config_set;
  DL_RETURN_IF_ERROR(internal::FieldsOf(config, w, config_set));
  StripMeta(config_set);

  static const Json* kEmpty = new Json(Json::object());
  const Json& base = live.is_object() ? live : *kEmpty;
  std::vector<Entry> entries = EntriesOf(base);

  // base without metadata.managedFields, copied selectively (they are often most of it).
  Json merged = Json::object();
  for (auto it = base.begin(); it != base.end(); ++it) {
    if (it.key() != "metadata" || !it->is_object()) {
      merged.emplace(it.key(), *it);
      continue;
    }
    Json md = Json::object();
    for (auto m = it->begin(); m != it->end(); ++m) {
      if (m.key() != "managedFields") md.emplace(m.key(), *m);
    }
    merged.emplace("metadata", std::move(md));
  }
  internal::MergeInto(merged, config, w);
  // Server-set metadata survives whatever the configuration says (`creationTimestamp: null`
  // is common in generated manifests); the API server restores these on every update.
  if (live.is_object()) {
    auto live_md = live.find("metadata");
    if (live_md != live.end() && live_md->is_object()) {
      Json& md = merged["metadata"];
      for (const char* f : {"creationTimestamp", "uid", "resourceVersion", "generation", "selfLink",
                            "deletionTimestamp", "deletionGracePeriodSeconds"}) {
        auto it = live_md->find(f);
        if (it != live_md->end()) {
          md[f] = *it;
        } else {
          md.erase(f);
        }
      }
    }
  }

  size_t self = entries.size();
  for (size_t i = 0; i < entries.size(); ++i) {
    if (SameIdentity(entries[i].meta, request.manager, "Apply", request.subresource, "")) {
      self = i;
      break;
    }
  }
  const bool existed = self < entries.size();
  FieldSet last;
  std::string old_time;
  if (existed) {
    last = std::move(entries[self].set);
    old_time = entries[self].meta.time;
  } else {
    entries.push_back(Entry{});
    entries[self].meta.manager = request.manager;
    entries[self].meta.operation = "Apply";
    entries[self].meta.subresource = request.subresource;
  }
  entries[self].set = config_set;
  entries[self].meta.api_version = api_version;

  // Prune what the manager applied last time, no longer applies, and nobody else owns.
  if (!last.Empty()) {
    FieldSet previous = last;
    if (status_only) {
      FieldSet only_status;
      if (auto st = previous.children.find("f:status"); st != previous.children.end()) {
        only_status.children.emplace("f:status", st->second);
      }
      previous = std::move(only_status);
    } else {
      previous.children.erase("f:status");
    }
    FieldSet owned;
    for (const auto& e : entries) owned.UnionWith(e.set);
    FieldSet remove;
    Removable(previous, &owned, /*named=*/false, remove);
    if (!remove.Empty()) internal::RemoveItems(merged, remove, w);
  }

  Comparison cmp;
  internal::Compare(&base, &merged, w, cmp);
  FieldSet changed = cmp.modified;
  changed.UnionWith(cmp.added);

  std::vector<std::pair<size_t, FieldSet>> taken;
  for (size_t i = 0; i < entries.size(); ++i) {
    if (i == self) continue;
    FieldSet c = entries[i].set.Intersection(changed);
    if (!c.Empty()) taken.emplace_back(i, std::move(c));
  }
  if (!taken.empty() && !request.force) {
    bool allowed_by_last_applied = false;
    if (request.manager == "kubectl") {
      FieldSet allowed = AllowedFromLastApplied(base, w);
      allowed_by_last_applied = true;
      for (auto& [i, c] : taken) {
        c = c.Difference(allowed);
        if (!c.Empty()) allowed_by_last_applied = false;
      }
      if (!allowed_by_last_applied) {
        taken.erase(std::remove_if(taken.begin(), taken.end(),
                                   [](const auto& t) { return t.second.Empty(); }),
                    taken.end());
      } else {
        taken.clear();
        for (size_t i = 0; i < entries.size(); ++i) {
          if (i == self) continue;
          FieldSet c = entries[i].set.Intersection(changed);
          if (!c.Empty()) taken.emplace_back(i, std::move(c));
        }
      }
    }
    if (!allowed_by_last_applied) {
      ApplyOutcome refused;
      refused.object = live;
      for (const auto& [i, c] : taken) {
        const ManagedFieldsEntry& owner = entries[i].meta;
        for (auto& path : c.MemberPaths()) {
          refused.conflicts.push_back(Conflict{owner.manager, std::move(path), owner.operation,
                                               owner.api_version, owner.time, owner.subresource});
        }
      }
      std::stable_sort(refused.conflicts.begin(), refused.conflicts.end(),
                       [](const Conflict& a, const Conflict& b) {
                         return std::tie(a.manager, a.operation) < std::tie(b.manager, b.operation);
                       });
      return refused;
    }
  }
  for (auto& [i, c] : taken) entries[i].set = entries[i].set.Difference(c);
  if (!cmp.removed.Empty()) {
    for (size_t i = 0; i < entries.size(); ++i) {
      if (i != self) entries[i].set = entries[i].set.Difference(cmp.removed);
    }
  }
  StripMeta(entries[self].set);
  const bool set_changed = !existed || !(entries[self].set == last);
  entries[self].meta.time =
      (!cmp.Same() || set_changed || old_time.empty()) ? request.now : old_time;

  // kubectl apply --server-side keeps a client-side apply annotation in sync.
  if (request.manager == "kubectl" && Annotation(base, kLastApplied) != nullptr) {
    Json last_applied = applied;
    if (auto md = last_applied.find("metadata"); md != last_applied.end() && md->is_object()) {
      if (auto an = md->find("annotations"); an != md->end() && an->is_object()) {
        an->erase(kLastApplied);
        if (an->empty()) md->erase("annotations");
      }
    }
    merged["metadata"]["annotations"][std::string(kLastApplied)] = last_applied.dump();
  }

  SetManagedFields(merged, Finish(entries));

  ApplyOutcome out;
  if (live.is_null()) {
    out.changed = true;
  } else {
    const Json* before = Annotation(base, kLastApplied);
    const Json* after = Annotation(merged, kLastApplied);
    const bool annotation_changed =
        (before == nullptr) != (after == nullptr) || (before != nullptr && *before != *after);
    out.changed = !cmp.Same() || annotation_changed ||
                  !SameIgnoringTime(ManagedFieldsOf(live), ManagedFieldsOf(merged));
  }
  out.object = std::move(merged);
  return out;
}

Json RecordUpdate(const Json& old_object, const Json& new_object, std::string_view manager,
                  std::string_view now, const Schema* schema, std::string_view subresource) {
  if (manager.empty() || !new_object.is_object()) return new_object;
  const std::string api_version = StringField(new_object, "apiVersion");
  Walker w{schema != nullptr ? *schema : Schema::BuiltIn(),
           api_version,
           StringField(new_object, "kind"),
           {},
           {},
           {}};

  std::vector<Entry> entries;
  bool from_request = false;
  if (subresource.empty()) {
    const Json& mf = ManagedFieldsOf(new_object);
    absl::StatusOr<std::vector<Entry>> parsed =
        mf.is_array() && !mf.empty()
            ? ParseEntries(new_object)
            : absl::StatusOr<std::vector<Entry>>(absl::InvalidArgumentError("none"));
    if (parsed.ok()) {
      entries = std::move(*parsed);
      from_request = true;
      // `managedFields: [{}]` is how a client resets ownership.
      bool all_blank = std::all_of(entries.begin(), entries.end(), [](const Entry& e) {
        return e.meta.manager.empty() && e.set.Empty();
      });
      if (all_blank) entries.clear();
    }
  }
  static const Json* kEmpty = new Json(Json::object());
  const Json& old = old_object.is_object() ? old_object : *kEmpty;
  if (!from_request) entries = EntriesOf(old);

  Comparison cmp;
  internal::Compare(&old, &new_object, w, cmp);
  FieldSet changed = cmp.modified;
  changed.UnionWith(cmp.added);
  StripMeta(changed);

  for (auto& e : entries) {
    if (!changed.Empty()) e.set = e.set.Difference(changed);
    if (!cmp.removed.Empty()) e.set = e.set.Difference(cmp.removed);
  }
  if (!changed.Empty()) {
    auto it = std::find_if(entries.begin(), entries.end(), [&](const Entry& e) {
      return SameIdentity(e.meta, manager, "Update", subresource, api_version);
    });
    if (it == entries.end()) {
      Entry e;
      e.meta.manager = std::string(manager);
      e.meta.operation = "Update";
      e.meta.api_version = api_version;
      e.meta.subresource = std::string(subresource);
      entries.push_back(std::move(e));
      it = entries.end() - 1;
    }
    it->set.UnionWith(changed);
    it->meta.time = std::string(now);
  }
  CapUpdateManagers(entries);
  Json out = new_object;
  SetManagedFields(out, Finish(entries));
  return out;
}

}  // namespace driftless::merge
