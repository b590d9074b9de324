#include "tools/kube-emulator/store.h"

#include <algorithm>
#include <random>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "common/manifest/manifest.h"
#include "common/merge/merge.h"
#include "common/status/status.h"
#include "tools/kube-emulator/api_error.h"
#include "tools/kube-emulator/validation.h"

namespace driftless::kube_emulator {
namespace {

const Json kNull = nullptr;

Json& Meta(Json& obj) {
  if (!obj.contains("metadata") || !obj["metadata"].is_object()) obj["metadata"] = Json::object();
  return obj["metadata"];
}

const Json& MetaOf(const Json& obj) {
  static const Json empty = Json::object();
  auto it = obj.find("metadata");
  return (it != obj.end() && it->is_object()) ? *it : empty;
}

// metadata.labels, or null; no copy.
const Json& LabelsOf(const Json& obj) {
  static const Json kNoLabels = nullptr;
  const Json& m = MetaOf(obj);
  auto it = m.find("labels");
  return it != m.end() ? *it : kNoLabels;
}

std::string MetaStr(const Json& obj, const char* field) {
  const Json& m = MetaOf(obj);
  auto it = m.find(field);
  return (it != m.end() && it->is_string()) ? it->get<std::string>() : "";
}

// The object without metadata (and without status when `drop_status`): what generation
// tracks.
Json SpecPart(const Json& obj, bool drop_status) {
  Json j = obj;
  if (j.is_object()) {
    j.erase("metadata");
    if (drop_status) j.erase("status");
  }
  return j;
}

// Object equality ignoring resourceVersion and managedFields timestamps.
bool SameContent(const Json& a, const Json& b) {
  auto norm = [](const Json& o) {
    Json j = o;
    if (j.contains("metadata") && j["metadata"].is_object()) {
      Json& m = j["metadata"];
      m.erase("resourceVersion");
      if (m.contains("managedFields") && m["managedFields"].is_array()) {
        for (auto& e : m["managedFields"]) {
          if (e.is_object()) e.erase("time");
        }
      }
    }
    return j;
  };
  return norm(a) == norm(b);
}

std::string RandomSuffix(std::mt19937_64& rng, size_t n) {
  static const char kAlphabet[] = "bcdfghjklmnpqrstvwxz2456789";
  std::string s;
  for (size_t i = 0; i < n; ++i) s += kAlphabet[rng() % (sizeof(kAlphabet) - 1)];
  return s;
}

bool HasOwner(const Json& obj, const std::string& uid) {
  const Json& m = MetaOf(obj);
  auto it = m.find("ownerReferences");
  if (it == m.end() || !it->is_array()) return false;
  for (const auto& r : *it) {
    if (r.is_object() && r.value("uid", "") == uid) return true;
  }
  return false;
}

bool HasFinalizers(const Json& obj) {
  const Json& m = MetaOf(obj);
  auto it = m.find("finalizers");
  return it != m.end() && it->is_array() && !it->empty();
}

// Kubernetes defaulting that matters for what clients read back.
void ApplyDefaults(const ResourceType& rt, Json& obj, unsigned long long seq) {
  if (rt.custom) return;
  Json& spec = obj["spec"];
  const std::string& k = rt.kind;
  if (k == "Deployment" || k == "ReplicaSet" || k == "StatefulSet") {
    if (!spec.contains("replicas") || spec["replicas"].is_null()) spec["replicas"] = 1;
    if (k == "Deployment") {
      if (!spec.contains("revisionHistoryLimit")) spec["revisionHistoryLimit"] = 10;
      if (!spec.contains("progressDeadlineSeconds")) spec["progressDeadlineSeconds"] = 600;
    }
  } else if (k == "Service") {
    if (!spec.contains("type")) spec["type"] = "ClusterIP";
    if (spec.value("type", "") != "ExternalName" && !spec.contains("clusterIP")) {
      std::string ip =
          "10.96." + std::to_string((seq / 250) % 250) + "." + std::to_string(seq % 250 + 2);
      spec["clusterIP"] = ip;
      spec["clusterIPs"] = Json::array({ip});
    }
    if (!spec.contains("sessionAffinity")) spec["sessionAffinity"] = "None";
    if (spec.contains("ports") && spec["ports"].is_array()) {
      for (auto& p : spec["ports"]) {
        if (!p.is_object()) continue;
        if (!p.contains("protocol")) p["protocol"] = "TCP";
        if (!p.contains("targetPort") && p.contains("port")) p["targetPort"] = p["port"];
      }
    }
  } else if (k == "Secret") {
    // The API server folds stringData into data (base64) and never stores it; type defaults
    // to Opaque.
    obj.erase("spec");
    if (obj.contains("stringData") && obj["stringData"].is_object()) {
      for (auto& [key, value] : obj["stringData"].items()) {
        if (value.is_string()) obj["data"][key] = absl::Base64Escape(value.get<std::string>());
      }
    }
    obj.erase("stringData");
    if (!obj.contains("type")) obj["type"] = "Opaque";
    return;
  } else if (k == "Namespace") {
    obj.erase("spec");
    Meta(obj)["labels"]["kubernetes.io/metadata.name"] = MetaStr(obj, "name");
    if (!obj.contains("status") || !obj["status"].is_object()) obj["status"] = Json::object();
    obj["status"]["phase"] = "Active";
    return;
  }
  if (spec.is_null()) obj.erase("spec");
}

struct ContinueToken {
  long long rv = 0;
  std::string start;
};

std::string EncodeContinue(long long rv, const std::string& start) {
  return absl::WebSafeBase64Escape(Json{{"rv", rv}, {"start", start}}.dump());
}

absl::StatusOr<ContinueToken> DecodeContinue(const std::string& token) {
  std::string raw;
  if (!absl::WebSafeBase64Unescape(token, &raw)) {
    return BadRequestError("continue key is not valid: illegal base64 data");
  }
  Json j = Json::parse(raw, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("start")) {
    return BadRequestError("continue key is not valid: incorrect encoded start resourceVersion");
  }
  return ContinueToken{j.value("rv", 0LL), j.value("start", "")};
}

bool ParseRv(std::string_view s, long long* out) {
  if (s.empty()) {
    *out = 0;
    return true;
  }
  return absl::SimpleAtoi(std::string(s), out) && *out >= 0;
}

// A custom resource read through another version than it was written with: its apiVersion
// is rewritten on output (no conversion), so its stored text cannot be sent as is.
bool NeedsRewrite(const ResourceType& rt, const Json& obj) {
  if (!rt.custom) return false;
  auto it = obj.find("apiVersion");
  return it == obj.end() || !it->is_string() ||
         it->get_ref<const std::string&>() != rt.ApiVersion();
}

// The Json inside a stored object, sharing its ownership.
std::shared_ptr<const Json> AsJson(const std::shared_ptr<const StoredObject>& stored) {
  if (!stored) return nullptr;
  return std::shared_ptr<const Json>(stored, &stored->object());
}

std::string NamespaceOfKey(const std::string& key) { return key.substr(0, key.find('/')); }

bool HasPrefix(const std::string& s, const std::string& prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

// The value of an equality requirement on `field` ("metadata.name"), if any.
const std::string* FieldEquals(const FieldSelector& fields, const char* field) {
  for (const auto& r : fields.requirements_) {
    if (r.key == field && r.op == Requirement::Op::kEquals && !r.values.empty()) {
      return &r.values[0];
    }
  }
  return nullptr;
}

// {"kind":..,"apiVersion":..,"metadata":{..},"items":[<texts>]} without building Json items.
std::string ListEnvelope(const ResourceType& rt, long long rv, const std::string& next,
                         const std::vector<std::string_view>& items, size_t items_bytes) {
  Json meta = {{"resourceVersion", std::to_string(rv)}};
  if (!next.empty()) meta["continue"] = next;
  std::string out;
  out.reserve(items_bytes + items.size() + 128);
  out += "{\"apiVersion\":";
  out += Json(rt.ApiVersion()).dump();
  out += ",\"items\":[";
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) out += ',';
    out += items[i];
  }
  out += "],\"kind\":";
  out += Json(rt.kind + "List").dump();
  out += ",\"metadata\":";
  out += meta.dump();
  out += '}';
  return out;
}

}  // namespace

const std::string& StoredObject::Text() const {
  std::call_once(text_once_, [this] { text_ = object_.dump(); });
  return text_;
}

// ---------------- Watcher ----------------

std::optional<WatchEvent> Watcher::Next(std::chrono::milliseconds timeout) {
  if (!pending_.empty()) {
    WatchEvent e = std::move(pending_.front());
    pending_.pop_front();
    return e;
  }
  Store* s = store_;
  std::shared_lock lock(s->mu_);
  auto deadline = std::chrono::steady_clock::now() + timeout;
  const std::string store_key = rt_->StoreKey();
  while (true) {
    if (s->closed_) return WatchEvent{"", nullptr};
    if (!s->history_.empty() && s->history_.front().rv > cursor_ + 1 && cursor_ < s->rv_) {
      // Events between cursor_ and the oldest kept one were dropped.
      long long oldest = s->history_.front().rv;
      long long was = cursor_;
      cursor_ = s->rv_;
      return WatchEvent{"ERROR",
                        ToKubeStatus(GoneError("too old resource version: " + std::to_string(was) +
                                               " (" + std::to_string(oldest - 1) + ")"))};
    }
    // Binary search for the first event after the cursor.
    auto it = std::upper_bound(s->history_.begin(), s->history_.end(), cursor_,
                               [](long long rv, const Store::Event& e) { return rv < e.rv; });
    for (; it != s->history_.end(); ++it) {
      const Store::Event& e = *it;
      cursor_ = e.rv;
      if (e.store_key != store_key) continue;
      if (!ns_.empty() && MetaStr(*e.object, "namespace") != ns_) continue;
      auto matches = [&](const Json& o) {
        return labels_.Matches(LabelsOf(o)) && fields_.Matches(o);
      };
      bool now_match = matches(*e.object);
      std::string type = e.type;
      if (type == "MODIFIED" && e.previous) {
        bool was = matches(*e.previous);
        if (!was && !now_match) continue;
        if (!was)
          type = "ADDED";
        else if (!now_match)
          type = "DELETED";
      } else if (!now_match) {
        continue;
      }
      return WatchEvent{type, s->ForOutput(*rt_, *e.object)};
    }
    if (s->cv_.wait_until(lock, deadline) == std::cv_status::timeout) {
      // Drain anything that arrived exactly at the deadline on the next call.
      return std::nullopt;
    }
  }
}

// ---------------- Store ----------------

Store::Store(Registry* registry, const Clock* clock, StoreOptions options)
    : registry_(registry), clock_(clock), options_(options) {
  auto ns_type = registry_->Find("", "v1", "namespaces");
  for (const char* n : {"default", "kube-system", "kube-public", "kube-node-lease"}) {
    Json ns = {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", n}}}};
    (void)Create(*ns_type, "", ns, {});
  }
}

Store::~Store() { Close(); }

void Store::Close() {
  std::unique_lock lock(mu_);
  closed_ = true;
  cv_.notify_all();
}

std::string Store::Now() const { return Rfc3339(clock_->Now()); }

long long Store::ResourceVersion() const {
  std::shared_lock lock(mu_);
  return rv_;
}

size_t Store::ObjectCount() const {
  std::shared_lock lock(mu_);
  return object_count_;
}

Json Store::ForOutput(const ResourceType& rt, const Json& obj) const {
  Json out = obj;
  if (rt.custom) out["apiVersion"] = rt.ApiVersion();
  return out;
}

Json Store::ToScale(const Json& obj) const {
  const Json& m = MetaOf(obj);
  Json meta = Json::object();
  for (const char* f : {"name", "namespace", "uid", "resourceVersion", "creationTimestamp"}) {
    if (m.contains(f)) meta[f] = m[f];
  }
  const Json spec = obj.value("spec", Json::object());
  const Json status = obj.value("status", Json::object());
  Json scale = {{"kind", "Scale"},
                {"apiVersion", "autoscaling/v1"},
                {"metadata", meta},
                {"spec", {{"replicas", spec.value("replicas", 0)}}},
                {"status", {{"replicas", status.value("replicas", 0)}}}};
  std::string sel = SelectorToString(spec.value("selector", Json()));
  if (!sel.empty()) scale["status"]["selector"] = sel;
  return scale;
}

std::shared_ptr<const ResourceType> Store::TypeForKeyLocked(const std::string& store_key) const {
  auto v = registry_->VersionsOf(store_key);
  return v.empty() ? nullptr : v.front();
}

void Store::RecordLocked(const std::string& type, const std::string& store_key,
                         const std::string& key, std::shared_ptr<const Json> obj,
                         std::shared_ptr<const Json> prev, Stored stored) {
  history_.push_back(Event{rv_, type, store_key, key, std::move(obj), std::move(prev)});
  while (history_.size() > options_.watch_history) history_.pop_front();
  if (record_changes_) {
    std::lock_guard lock(changes_mu_);
    changes_.push_back(StoreChange{rv_, uid_counter_, store_key, key, std::move(stored)});
  }
  cv_.notify_all();
  for (const auto& [id, listener] : listeners_) listener();
}

const Store::TypeObjects* Store::TypeLocked(const std::string& store_key) const {
  auto it = objects_.find(store_key);
  return it == objects_.end() ? nullptr : &it->second;
}

Store::Stored Store::FindLocked(const std::string& store_key, const std::string& key) const {
  const TypeObjects* objs = TypeLocked(store_key);
  if (!objs) return nullptr;
  auto it = objs->by_key.find(key);
  return it == objs->by_key.end() ? nullptr : it->second;
}

void Store::IndexLocked(TypeObjects& objs, const std::string& store_key, const std::string& key,
                        const Json& object, bool add) {
  const Json& meta = MetaOf(object);
  auto lit = meta.find("labels");
  if (lit != meta.end() && lit->is_object()) {
    for (const auto& [label, value] : lit->items()) {
      if (!value.is_string()) continue;
      const std::string& v = value.get_ref<const std::string&>();
      if (add) {
        objs.by_label[label][v].insert(key);
        continue;
      }
      auto kit = objs.by_label.find(label);
      if (kit == objs.by_label.end()) continue;
      auto vit = kit->second.find(v);
      if (vit == kit->second.end()) continue;
      vit->second.erase(key);
      if (vit->second.empty()) kit->second.erase(vit);
      if (kit->second.empty()) objs.by_label.erase(kit);
    }
  }
  auto oit = meta.find("ownerReferences");
  if (oit != meta.end() && oit->is_array()) {
    for (const auto& ref : *oit) {
      if (!ref.is_object()) continue;
      auto uit = ref.find("uid");
      if (uit == ref.end() || !uit->is_string()) continue;
      const std::string& uid = uit->get_ref<const std::string&>();
      if (add) {
        dependents_[uid].emplace(store_key, key);
        continue;
      }
      auto dit = dependents_.find(uid);
      if (dit == dependents_.end()) continue;
      dit->second.erase({store_key, key});
      if (dit->second.empty()) dependents_.erase(dit);
    }
  }
  if (store_key == "/namespaces") {
    std::string name = MetaStr(object, "name");
    if (add && !MetaStr(object, "deletionTimestamp").empty()) {
      terminating_.insert(name);
    } else {
      terminating_.erase(name);
    }
  }
}

void Store::PutLocked(const std::string& store_key, const std::string& key, Stored object) {
  TypeObjects& objs = objects_[store_key];
  auto [it, inserted] = objs.by_key.try_emplace(key);
  if (inserted) {
    ++object_count_;
    std::string ns = NamespaceOfKey(key);
    if (!ns.empty()) ++namespace_contents_[ns];
  } else {
    IndexLocked(objs, store_key, key, it->second->object(), false);
  }
  IndexLocked(objs, store_key, key, object->object(), true);
  it->second = std::move(object);
}

void Store::EraseLocked(const std::string& store_key, const std::string& key) {
  auto tit = objects_.find(store_key);
  if (tit == objects_.end()) return;
  auto it = tit->second.by_key.find(key);
  if (it == tit->second.by_key.end()) return;
  IndexLocked(tit->second, store_key, key, it->second->object(), false);
  tit->second.by_key.erase(it);
  --object_count_;
  std::string ns = NamespaceOfKey(key);
  auto nit = namespace_contents_.find(ns);
  if (!ns.empty() && nit != namespace_contents_.end() && --nit->second == 0) {
    namespace_contents_.erase(nit);
  }
}

void Store::ScanLocked(const TypeObjects& objs, const std::string& prefix,
                       const std::string* exact_key, const LabelSelector& labels,
                       const std::string& start, const Visitor& visit) const {
  auto after_start = [&](const std::string& key) { return start.empty() || key > start; };
  if (exact_key) {
    auto it = objs.by_key.find(*exact_key);
    if (it != objs.by_key.end() && HasPrefix(it->first, prefix) && after_start(it->first)) {
      visit(it->first, it->second);
    }
    return;
  }
  // The most selective equality/in requirement with an index entry.
  const Requirement* best = nullptr;
  size_t best_size = 0;
  for (const auto& r : labels.requirements_) {
    if (r.op != Requirement::Op::kEquals && r.op != Requirement::Op::kIn) continue;
    size_t n = 0;
    auto kit = objs.by_label.find(r.key);
    if (kit != objs.by_label.end()) {
      for (const auto& v : r.values) {
        auto vit = kit->second.find(v);
        if (vit != kit->second.end()) n += vit->second.size();
        if (r.op == Requirement::Op::kEquals) break;
      }
    }
    if (!best || n < best_size) {
      best = &r;
      best_size = n;
    }
  }
  if (best) {
    if (best_size == 0) return;
    auto kit = objs.by_label.find(best->key);
    std::set<std::string> merged;
    const std::set<std::string>* keys = nullptr;
    if (best->op == Requirement::Op::kEquals) {
      keys = &kit->second.find(best->values[0])->second;
    } else {
      for (const auto& v : best->values) {
        auto vit = kit->second.find(v);
        if (vit != kit->second.end()) merged.insert(vit->second.begin(), vit->second.end());
      }
      keys = &merged;
    }
    auto it =
        start.empty() || start < prefix ? keys->lower_bound(prefix) : keys->upper_bound(start);
    for (; it != keys->end() && HasPrefix(*it, prefix); ++it) {
      auto oit = objs.by_key.find(*it);
      if (oit != objs.by_key.end() && !visit(oit->first, oit->second)) return;
    }
    return;
  }
  auto it = start.empty() || start < prefix ? objs.by_key.lower_bound(prefix)
                                            : objs.by_key.upper_bound(start);
  for (; it != objs.by_key.end() && HasPrefix(it->first, prefix); ++it) {
    if (!visit(it->first, it->second)) return;
  }
}

void Store::SelectLocked(const ResourceType& rt, std::string_view ns_in,
                         const LabelSelector& labels, const FieldSelector& fields,
                         const std::string& start, long long limit, std::vector<Stored>* out,
                         std::string* continue_after) const {
  continue_after->clear();
  const TypeObjects* objs = TypeLocked(rt.StoreKey());
  if (!objs) return;
  // The namespace the list is confined to: the request's, or a metadata.namespace= field.
  std::string ns = rt.namespaced ? std::string(ns_in) : "";
  if (const std::string* f = FieldEquals(fields, "metadata.namespace"); rt.namespaced && f) {
    if (!ns.empty() && ns != *f) return;
    ns = *f;
  }
  std::string prefix = rt.namespaced && !ns.empty() ? ns + "/" : "";
  std::string exact;
  const std::string* name = FieldEquals(fields, "metadata.name");
  if (name && (!rt.namespaced || !ns.empty())) exact = Key(ns, *name);
  std::string last;
  ScanLocked(*objs, prefix, name && !exact.empty() ? &exact : nullptr, labels, start,
             [&](const std::string& key, const Stored& o) {
               const Json& obj = o->object();
               if (!labels.Empty() && !labels.Matches(LabelsOf(obj))) return true;
               if (!fields.Matches(obj)) return true;
               if (limit > 0 && static_cast<long long>(out->size()) >= limit) {
                 *continue_after = last;
                 return false;
               }
               out->push_back(o);
               last = key;
               return true;
             });
}

absl::Status Store::CheckNamespaceLocked(const ResourceType& rt, std::string_view ns,
                                         std::string_view name) {
  if (!rt.namespaced) return absl::OkStatus();
  if (!FindLocked("/namespaces", Key("", ns))) return NotFoundError({"", "namespaces"}, ns);
  if (terminating_.count(std::string(ns))) {
    return ForbiddenError(rt.Gr(), name,
                          "unable to create new content in namespace " + std::string(ns) +
                              " because it is being terminated");
  }
  return absl::OkStatus();
}

void Store::OnStoredLocked(const ResourceType& rt, const Json& obj, bool deleted) {
  if (rt.group != "apiextensions.k8s.io" || rt.kind != "CustomResourceDefinition") return;
  std::string name = MetaStr(obj, "name");
  if (deleted) {
    // Deleting a CRD deletes its custom resources.
    const Json spec = obj.value("spec", Json::object());
    std::string store_key =
        spec.value("group", "") + "/" + spec.value("names", Json::object()).value("plural", "");
    if (const TypeObjects* objs = TypeLocked(store_key)) {
      auto crt = TypeForKeyLocked(store_key);
      std::vector<std::string> keys;
      for (const auto& [k, v] : objs->by_key) keys.push_back(k);
      for (const auto& k : keys) {
        if (crt) RemoveLocked(*crt, store_key + "|" + k, "Background");
      }
      // Without a type, RemoveLocked could not run: drop what is left.
      for (const auto& k : keys) EraseLocked(store_key, k);
      objects_.erase(store_key);
    }
    registry_->UnregisterCrd(name);
  } else {
    (void)registry_->RegisterCrd(obj);
  }
}

absl::StatusOr<Json> Store::Create(const ResourceType& rt, std::string_view ns, Json body,
                                   const WriteOptions& options) {
  std::unique_lock lock(mu_);
  return CreateLocked(rt, ns, std::move(body), options, true);
}

absl::StatusOr<Json> Store::CreateLocked(const ResourceType& rt, std::string_view ns_in, Json body,
                                         const WriteOptions& options, bool record_manager) {
  if (!body.is_object()) return BadRequestError("the body of the request must be an object");
  std::string ns = rt.namespaced ? std::string(ns_in) : "";
  if (body.contains("kind") && body["kind"].is_string() && body["kind"] != rt.kind) {
    return BadRequestError("the kind of the provided object (" + body["kind"].get<std::string>() +
                           ") does not match the kind of the request (" + rt.kind + ")");
  }
  body["apiVersion"] = rt.ApiVersion();
  body["kind"] = rt.kind;
  Json& meta = Meta(body);
  std::string body_ns = MetaStr(body, "namespace");
  if (rt.namespaced) {
    if (!body_ns.empty() && !ns.empty() && body_ns != ns) {
      return BadRequestError(
          "the namespace of the provided object does not match the namespace sent on the "
          "request");
    }
    if (ns.empty()) ns = body_ns;
    if (ns.empty()) ns = "default";
    meta["namespace"] = ns;
  } else {
    meta.erase("namespace");
  }
  if (options.field_validation == "Strict") {
    DL_RETURN_IF_ERROR(CheckStrictFields(
        rt, body, rt.custom ? registry_->CrdSchema(rt.group, rt.version, rt.kind) : Json()));
  }
  std::string name = MetaStr(body, "name");
  if (name.empty() && !MetaStr(body, "generateName").empty()) {
    static std::mt19937_64 rng(12345);
    do {
      name = MetaStr(body, "generateName") + RandomSuffix(rng, 5);
    } while (FindLocked(rt.StoreKey(), Key(ns, name)));
    meta["name"] = name;
  }
  DL_RETURN_IF_ERROR(ValidateObject(rt, body));
  DL_RETURN_IF_ERROR(CheckNamespaceLocked(rt, ns, name));
  std::string key = Key(ns, name);
  if (FindLocked(rt.StoreKey(), key)) return AlreadyExistsError(rt.Gr(), name);

  // Server-managed metadata.
  ++uid_counter_;
  char uid[40];
  std::snprintf(
      uid, sizeof(uid), "%08llx-0000-4000-8000-%012llx",
      static_cast<unsigned long long>(clock_->Now().time_since_epoch().count() / 1000000000ULL) &
          0xffffffffULL,
      uid_counter_);
  meta["uid"] = uid;
  std::string now = Now();
  meta["creationTimestamp"] = now;
  meta["generation"] = 1;
  meta.erase("deletionTimestamp");
  meta.erase("deletionGracePeriodSeconds");
  meta.erase("resourceVersion");
  meta.erase("selfLink");
  if (rt.has_status && rt.kind != "Namespace") body.erase("status");
  ApplyDefaults(rt, body, uid_counter_);
  if (record_manager) {
    meta.erase("managedFields");
    if (!options.field_manager.empty()) {
      body = merge::RecordUpdate(kNull, body, options.field_manager, now);
    }
  }
  if (options.dry_run) {
    Json out = body;
    Meta(out)["resourceVersion"] = std::to_string(rv_);
    return ForOutput(rt, out);
  }
  ++rv_;
  Meta(body)["resourceVersion"] = std::to_string(rv_);
  auto stored = std::make_shared<const StoredObject>(std::move(body));
  PutLocked(rt.StoreKey(), key, stored);
  RecordLocked("ADDED", rt.StoreKey(), key, AsJson(stored), nullptr, stored);
  OnStoredLocked(rt, stored->object(), false);
  return ForOutput(rt, stored->object());
}

absl::StatusOr<Json> Store::Get(const ResourceType& rt, std::string_view ns, std::string_view name,
                                std::string_view subresource) {
  Stored obj;
  {
    std::shared_lock lock(mu_);
    obj = FindLocked(rt.StoreKey(), Key(rt.namespaced ? ns : "", name));
  }
  if (!obj) return NotFoundError(rt.Gr(), name);
  if (subresource == "scale") return ToScale(obj->object());
  return ForOutput(rt, obj->object());
}

absl::StatusOr<std::string> Store::GetText(const ResourceType& rt, std::string_view ns,
                                           std::string_view name) {
  Stored obj;
  {
    std::shared_lock lock(mu_);
    obj = FindLocked(rt.StoreKey(), Key(rt.namespaced ? ns : "", name));
  }
  if (!obj) return NotFoundError(rt.Gr(), name);
  if (NeedsRewrite(rt, obj->object())) return ForOutput(rt, obj->object()).dump();
  return obj->Text();
}

absl::StatusOr<Store::Selection> Store::Select(const ResourceType& rt, std::string_view ns,
                                               const ListOptions& options) {
  DL_ASSIGN_OR_RETURN(LabelSelector labels, ParseLabelSelector(options.label_selector));
  DL_ASSIGN_OR_RETURN(FieldSelector fields, ParseFieldSelector(options.field_selector));
  std::string start;
  if (!options.continue_token.empty()) {
    DL_ASSIGN_OR_RETURN(ContinueToken t, DecodeContinue(options.continue_token));
    start = t.start;
  }
  Selection sel;
  std::string continue_after;
  {
    std::shared_lock lock(mu_);
    SelectLocked(rt, ns, labels, fields, start, options.limit, &sel.objects, &continue_after);
    sel.rv = rv_;
  }
  if (!continue_after.empty()) sel.continue_token = EncodeContinue(sel.rv, continue_after);
  return sel;
}

absl::StatusOr<Json> Store::List(const ResourceType& rt, std::string_view ns,
                                 const ListOptions& options) {
  DL_ASSIGN_OR_RETURN(Selection sel, Select(rt, ns, options));
  Json items = Json::array();
  for (const auto& o : sel.objects) items.push_back(ForOutput(rt, o->object()));
  Json meta = {{"resourceVersion", std::to_string(sel.rv)}};
  if (!sel.continue_token.empty()) meta["continue"] = sel.continue_token;
  // Assigned, not brace-initialised: an initializer list would deep-copy every item.
  Json out = Json::object();
  out["kind"] = rt.kind + "List";
  out["apiVersion"] = rt.ApiVersion();
  out["metadata"] = std::move(meta);
  out["items"] = std::move(items);
  return out;
}

absl::StatusOr<std::string> Store::ListText(const ResourceType& rt, std::string_view ns,
                                            const ListOptions& options) {
  DL_ASSIGN_OR_RETURN(Selection sel, Select(rt, ns, options));
  std::vector<std::string> rewritten;  // custom resources served under another version
  std::vector<std::string_view> items;
  items.reserve(sel.objects.size());
  size_t bytes = 0;
  for (const auto& o : sel.objects) {
    if (NeedsRewrite(rt, o->object())) {
      rewritten.push_back(ForOutput(rt, o->object()).dump());
    }
  }
  size_t next_rewritten = 0;
  for (const auto& o : sel.objects) {
    std::string_view text = NeedsRewrite(rt, o->object())
                                ? std::string_view(rewritten[next_rewritten++])
                                : std::string_view(o->Text());
    bytes += text.size();
    items.push_back(text);
  }
  return ListEnvelope(rt, sel.rv, sel.continue_token, items, bytes);
}

absl::StatusOr<std::vector<std::shared_ptr<const Json>>> Store::ListShared(
    const ResourceType& rt, std::string_view ns, const ListOptions& options) {
  ListOptions all = options;
  all.limit = 0;
  all.continue_token.clear();
  DL_ASSIGN_OR_RETURN(Selection sel, Select(rt, ns, all));
  std::vector<std::shared_ptr<const Json>> out;
  out.reserve(sel.objects.size());
  for (const auto& o : sel.objects) out.push_back(AsJson(o));
  return out;
}

absl::StatusOr<Json> Store::Update(const ResourceType& rt, std::string_view ns,
                                   std::string_view name, Json body, const WriteOptions& options) {
  std::unique_lock lock(mu_);
  if (options.subresource == "scale") {
    if (!rt.has_scale) return ResourceNotFoundError();
    if (!body.is_object()) return BadRequestError("the body of the request must be an object");
    Stored current = FindLocked(rt.StoreKey(), Key(rt.namespaced ? ns : "", name));
    if (!current) return NotFoundError(rt.Gr(), name);
    Json obj = current->object();
    std::string brv = MetaStr(body, "resourceVersion");
    if (!brv.empty() && brv != MetaStr(obj, "resourceVersion")) {
      return ConflictError(rt.Gr(), name,
                           "the object has been modified; please apply your changes to the "
                           "latest version and try again");
    }
    obj["spec"]["replicas"] = body.value("spec", Json::object()).value("replicas", 0);
    WriteOptions o = options;
    o.subresource = "";
    DL_ASSIGN_OR_RETURN(Json updated, UpdateLocked(rt, ns, name, obj, o, false, true));
    return ToScale(updated);
  }
  return UpdateLocked(rt, ns, name, std::move(body), options, true, true);
}

absl::StatusOr<Json> Store::UpdateLocked(const ResourceType& rt, std::string_view ns_in,
                                         std::string_view name, Json body,
                                         const WriteOptions& options, bool check_rv,
                                         bool record_manager) {
  if (!body.is_object()) return BadRequestError("the body of the request must be an object");
  std::string ns = rt.namespaced ? std::string(ns_in) : "";
  std::string key = Key(ns, name);
  Stored prev = FindLocked(rt.StoreKey(), key);
  if (!prev) return NotFoundError(rt.Gr(), name);
  const Json& old = prev->object();
  std::string body_name = MetaStr(body, "name");
  if (!body_name.empty() && body_name != name) {
    return BadRequestError("the name of the object (" + body_name +
                           ") does not match the name on the URL (" + std::string(name) + ")");
  }
  if (body.contains("kind") && body["kind"].is_string() && body["kind"] != rt.kind) {
    return BadRequestError("the kind of the provided object (" + body["kind"].get<std::string>() +
                           ") does not match the kind of the request (" + rt.kind + ")");
  }
  std::string body_ns = MetaStr(body, "namespace");
  if (rt.namespaced && !body_ns.empty() && body_ns != ns) {
    return BadRequestError(
        "the namespace of the provided object does not match the namespace sent on the request");
  }
  std::string brv = MetaStr(body, "resourceVersion");
  if (check_rv && !brv.empty() && brv != MetaStr(old, "resourceVersion")) {
    return ConflictError(rt.Gr(), name,
                         "the object has been modified; please apply your changes to the "
                         "latest version and try again");
  }
  if (options.field_validation == "Strict") {
    DL_RETURN_IF_ERROR(CheckStrictFields(
        rt, body, rt.custom ? registry_->CrdSchema(rt.group, rt.version, rt.kind) : Json()));
  }
  Json next;
  if (options.subresource == "status") {
    next = old;
    if (body.contains("status"))
      next["status"] = body["status"];
    else
      next.erase("status");
  } else {
    next = std::move(body);
    next["apiVersion"] = rt.ApiVersion();
    next["kind"] = rt.kind;
    if (rt.has_status) {
      if (old.contains("status"))
        next["status"] = old["status"];
      else
        next.erase("status");
    }
    Json& m = Meta(next);
    const Json& om = MetaOf(old);
    for (const char* f : {"uid", "creationTimestamp", "deletionTimestamp",
                          "deletionGracePeriodSeconds", "generation"}) {
      if (om.contains(f))
        m[f] = om[f];
      else
        m.erase(f);
    }
    if (rt.namespaced)
      m["namespace"] = ns;
    else
      m.erase("namespace");
    m["name"] = std::string(name);
    if (!m.contains("managedFields") && om.contains("managedFields")) {
      m["managedFields"] = om["managedFields"];
    }
    if (m.contains("managedFields") && m["managedFields"].is_array() &&
        m["managedFields"].empty()) {
      m.erase("managedFields");
    }
    if (!rt.custom) ApplyDefaults(rt, next, uid_counter_);
    DL_RETURN_IF_ERROR(ValidateObject(rt, next));
    // Finalizers cannot be added once deletion started? Kubernetes allows removing only.
    if (SpecPart(next, true) != SpecPart(old, true) ||
        (!rt.has_status && SpecPart(next, false) != SpecPart(old, false))) {
      Meta(next)["generation"] = MetaOf(old).value("generation", 1LL) + 1;
    }
  }
  Meta(next)["resourceVersion"] = MetaStr(old, "resourceVersion");
  if (record_manager && !options.field_manager.empty()) {
    next = merge::RecordUpdate(old, next, options.field_manager, Now());
  }
  if (options.dry_run) {
    if (!MetaStr(old, "deletionTimestamp").empty() && !HasFinalizers(next)) {
      return ForOutput(rt, next);
    }
    return ForOutput(rt, next);
  }
  Json stored = CommitLocked(rt, key, prev, std::move(next));
  return ForOutput(rt, stored);
}

Json Store::CommitLocked(const ResourceType& rt, const std::string& key, Stored prev, Json next) {
  if (SameContent(prev->object(), next)) return prev->object();
  ++rv_;
  Meta(next)["resourceVersion"] = std::to_string(rv_);
  bool finished = !MetaStr(next, "deletionTimestamp").empty() && !HasFinalizers(next);
  auto stored = std::make_shared<const StoredObject>(std::move(next));
  PutLocked(rt.StoreKey(), key, stored);
  RecordLocked("MODIFIED", rt.StoreKey(), key, AsJson(stored), AsJson(prev), stored);
  if (finished) RemoveLocked(rt, rt.StoreKey() + "|" + key, "Background");
  if (!finished) OnStoredLocked(rt, stored->object(), false);
  return stored->object();
}

void Store::RemoveLocked(const ResourceType& rt, const std::string& full_key,
                         const std::string& propagation) {
  size_t bar = full_key.find('|');
  std::string store_key = full_key.substr(0, bar);
  std::string key = full_key.substr(bar + 1);
  Stored obj = FindLocked(store_key, key);
  if (!obj) return;
  EraseLocked(store_key, key);
  ++rv_;
  Json gone = obj->object();
  Meta(gone)["resourceVersion"] = std::to_string(rv_);
  RecordLocked("DELETED", store_key, key, std::make_shared<const Json>(std::move(gone)), nullptr,
               nullptr);
  std::string uid = MetaStr(obj->object(), "uid");
  if (rt.kind == "Namespace" && rt.group.empty()) {
    for (const auto& [sk, k] : NamespaceContentsLocked(MetaStr(obj->object(), "name"))) {
      if (auto t = TypeForKeyLocked(sk)) RemoveLocked(*t, sk + "|" + k, "Background");
    }
  }
  CollectDependentsLocked(uid, propagation);
  OnStoredLocked(rt, obj->object(), true);
}

std::vector<std::pair<std::string, std::string>> Store::NamespaceContentsLocked(
    const std::string& ns) const {
  std::vector<std::pair<std::string, std::string>> out;
  if (!namespace_contents_.count(ns)) return out;
  const std::string prefix = ns + "/";
  for (const auto& [sk, objs] : objects_) {
    if (sk == "/namespaces") continue;
    for (auto it = objs.by_key.lower_bound(prefix);
         it != objs.by_key.end() && HasPrefix(it->first, prefix); ++it) {
      out.emplace_back(sk, it->first);
    }
  }
  return out;
}

void Store::CollectDependentsLocked(const std::string& uid, const std::string& propagation) {
  if (uid.empty()) return;
  auto dit = dependents_.find(uid);
  if (dit == dependents_.end()) return;
  // A copy: the loop below changes the index.
  const std::vector<std::pair<std::string, std::string>> deps(dit->second.begin(),
                                                              dit->second.end());
  for (const auto& [sk, k] : deps) {
    auto t = TypeForKeyLocked(sk);
    if (!t) continue;
    Stored current = FindLocked(sk, k);
    if (!current || !HasOwner(current->object(), uid)) continue;
    if (propagation == "Orphan") {
      Json next = current->object();
      Json refs = Json::array();
      for (const auto& r : Meta(next)["ownerReferences"]) {
        if (r.value("uid", "") != uid) refs.push_back(r);
      }
      if (refs.empty())
        Meta(next).erase("ownerReferences");
      else
        Meta(next)["ownerReferences"] = refs;
      CommitLocked(*t, k, current, std::move(next));
    } else if (HasFinalizers(current->object())) {
      if (MetaStr(current->object(), "deletionTimestamp").empty()) {
        Json next = current->object();
        Meta(next)["deletionTimestamp"] = Now();
        Meta(next)["deletionGracePeriodSeconds"] = 0;
        CommitLocked(*t, k, current, std::move(next));
      }
    } else {
      RemoveLocked(*t, sk + "|" + k, "Background");
    }
  }
}

absl::StatusOr<Json> Store::Delete(const ResourceType& rt, std::string_view ns,
                                   std::string_view name, const DeleteOptions& options) {
  std::unique_lock lock(mu_);
  return DeleteLocked(rt, ns, name, options);
}

absl::StatusOr<Json> Store::DeleteLocked(const ResourceType& rt, std::string_view ns_in,
                                         std::string_view name, const DeleteOptions& options) {
  std::string ns = rt.namespaced ? std::string(ns_in) : "";
  std::string key = Key(ns, name);
  Stored prev = FindLocked(rt.StoreKey(), key);
  if (!prev) return NotFoundError(rt.Gr(), name);
  const Json& prev_obj = prev->object();
  if (!options.precondition_uid.empty() && options.precondition_uid != MetaStr(prev_obj, "uid")) {
    return ConflictError(rt.Gr(), name,
                         "Precondition failed: UID in precondition: " + options.precondition_uid +
                             ", UID in object meta: " + MetaStr(prev_obj, "uid"));
  }
  if (!options.precondition_resource_version.empty() &&
      options.precondition_resource_version != MetaStr(prev_obj, "resourceVersion")) {
    return ConflictError(
        rt.Gr(), name,
        "Precondition failed: ResourceVersion in precondition: " +
            options.precondition_resource_version +
            ", ResourceVersion in object meta: " + MetaStr(prev_obj, "resourceVersion"));
  }
  std::string propagation = options.propagation.empty() ? "Background" : options.propagation;
  bool is_ns = rt.kind == "Namespace" && rt.group.empty();
  if (is_ns && (name == "default" || name == "kube-system" || name == "kube-public")) {
    return ForbiddenError(rt.Gr(), name, "this namespace may not be deleted");
  }
  if (options.dry_run) return ForOutput(rt, prev_obj);
  if (HasFinalizers(prev_obj) || is_ns) {
    Json next = prev_obj;
    if (MetaStr(next, "deletionTimestamp").empty()) {
      Meta(next)["deletionTimestamp"] = Now();
      Meta(next)["deletionGracePeriodSeconds"] = 0;
    }
    if (is_ns) next["status"]["phase"] = "Terminating";
    Json stored = CommitLocked(rt, key, prev, std::move(next));
    if (is_ns) {
      // Delete the contents now; objects with finalizers keep the namespace terminating
      // until FinishNamespaceDeletion sees it empty.
      for (const auto& [sk, k] : NamespaceContentsLocked(std::string(name))) {
        auto t = TypeForKeyLocked(sk);
        if (!t) continue;
        size_t slash = k.find('/');
        (void)DeleteLocked(*t, k.substr(0, slash), k.substr(slash + 1), {});
      }
      if (!HasFinalizers(stored) && !namespace_contents_.count(std::string(name))) {
        RemoveLocked(rt, rt.StoreKey() + "|" + key, "Background");
      }
    }
    return ForOutput(rt, stored);
  }
  if (propagation == "Foreground") {
    // Dependents go first; the owner disappears after them.
    CollectDependentsLocked(MetaStr(prev_obj, "uid"), "Foreground");
  }
  RemoveLocked(rt, rt.StoreKey() + "|" + key, propagation);
  return ForOutput(rt, prev_obj);
}

absl::StatusOr<Json> Store::DeleteCollection(const ResourceType& rt, std::string_view ns,
                                             const ListOptions& list,
                                             const DeleteOptions& options) {
  DL_ASSIGN_OR_RETURN(Json items, List(rt, ns, list));
  std::unique_lock lock(mu_);
  Json deleted = Json::array();
  for (const auto& o : items["items"]) {
    auto r = DeleteLocked(rt, MetaStr(o, "namespace"), MetaStr(o, "name"), options);
    if (r.ok()) deleted.push_back(*r);
  }
  items["items"] = deleted;
  items["metadata"]["resourceVersion"] = std::to_string(rv_);
  return items;
}

absl::StatusOr<Json> Store::Patch(const ResourceType& rt, std::string_view ns,
                                  std::string_view name, PatchType type, std::string_view body,
                                  const WriteOptions& options, bool force) {
  if (type == PatchType::kApply) {
    if (options.field_manager.empty()) {
      return BadRequestError("PATCH request with apply content type requires fieldManager");
    }
    auto parsed = manifest::ParseYaml(body, "request body");
    if (!parsed.ok()) return BadRequestError(std::string(parsed.status().message()));
    if (!parsed->is_object()) return BadRequestError("apply patch must be an object");
    std::unique_lock lock(mu_);
    return ApplyLocked(rt, ns, name, *parsed, options.field_manager, force, options);
  }
  if (type == PatchType::kStrategicMergePatch && rt.custom) {
    return UnsupportedMediaTypeError(
        "application/json-patch+json, application/merge-patch+json, "
        "application/apply-patch+yaml");
  }
  Json patch = Json::parse(body.begin(), body.end(), nullptr, false);
  if (patch.is_discarded()) {
    return BadRequestError("error decoding patch: invalid JSON in the request body");
  }
  std::unique_lock lock(mu_);
  std::string key = Key(rt.namespaced ? ns : "", name);
  Stored current = FindLocked(rt.StoreKey(), key);
  if (!current) return NotFoundError(rt.Gr(), name);
  Json target = options.subresource == "scale" ? ToScale(current->object())
                                               : ForOutput(rt, current->object());
  Json patched;
  switch (type) {
    case PatchType::kJsonPatch: {
      auto r = merge::JsonPatch(target, patch);
      if (!r.ok()) {
        if (r.status().code() == absl::StatusCode::kUnimplemented) return r.status();
        return KubeError(422, "Invalid", std::string(r.status().message()));
      }
      patched = std::move(*r);
      break;
    }
    case PatchType::kMergePatch:
      if (!patch.is_object()) return BadRequestError("merge patch must be a JSON object");
      patched = merge::JsonMergePatch(target, patch);
      break;
    case PatchType::kStrategicMergePatch: {
      if (!patch.is_object()) return BadRequestError("strategic merge patch must be an object");
      auto r = merge::StrategicMergePatch(target, patch);
      if (!r.ok()) {
        if (r.status().code() == absl::StatusCode::kUnimplemented) return r.status();
        return BadRequestError(std::string(r.status().message()));
      }
      patched = std::move(*r);
      break;
    }
    case PatchType::kApply:
      break;
  }
  if (!patched.is_object()) return BadRequestError("the patched object is not an object");
  if (options.subresource == "scale") {
    Json obj = current->object();
    obj["spec"]["replicas"] = patched.value("spec", Json::object()).value("replicas", 0);
    WriteOptions o = options;
    o.subresource = "";
    DL_ASSIGN_OR_RETURN(Json updated, UpdateLocked(rt, ns, name, obj, o, false, true));
    return ToScale(updated);
  }
  return UpdateLocked(rt, ns, name, std::move(patched), options, true, true);
}

absl::StatusOr<Json> Store::Apply(const ResourceType& rt, std::string_view ns,
                                  std::string_view name, const Json& applied,
                                  std::string_view manager, bool force,
                                  const WriteOptions& options) {
  if (manager.empty()) {
    return BadRequestError("PATCH request with apply content type requires fieldManager");
  }
  std::unique_lock lock(mu_);
  return ApplyLocked(rt, ns, name, applied, manager, force, options);
}

absl::StatusOr<Json> Store::ApplyLocked(const ResourceType& rt, std::string_view ns_in,
                                        std::string_view name, const Json& applied_in,
                                        std::string_view manager, bool force,
                                        const WriteOptions& options) {
  std::string ns = rt.namespaced ? std::string(ns_in) : "";
  Json applied = applied_in;
  if (!applied.contains("apiVersion")) applied["apiVersion"] = rt.ApiVersion();
  if (!applied.contains("kind")) applied["kind"] = rt.kind;
  if (applied["kind"] != rt.kind || applied["apiVersion"] != rt.ApiVersion()) {
    return BadRequestError("the apiVersion/kind of the applied object (" +
                           applied["apiVersion"].dump() + "/" + applied["kind"].dump() +
                           ") does not match the request (" + rt.ApiVersion() + "/" + rt.kind +
                           ")");
  }
  std::string applied_name = MetaStr(applied, "name");
  if (applied_name.empty()) {
    Meta(applied)["name"] = std::string(name);
  } else if (applied_name != name) {
    return BadRequestError("the name of the object (" + applied_name +
                           ") does not match the name on the URL (" + std::string(name) + ")");
  }
  if (rt.namespaced) {
    std::string ans = MetaStr(applied, "namespace");
    if (!ans.empty() && ans != ns) {
      return BadRequestError(
          "the namespace of the provided object does not match the namespace sent on the "
          "request");
    }
  }
  if (options.field_validation == "Strict") {
    DL_RETURN_IF_ERROR(CheckStrictFields(
        rt, applied, rt.custom ? registry_->CrdSchema(rt.group, rt.version, rt.kind) : Json()));
  }
  Stored prev = FindLocked(rt.StoreKey(), Key(ns, name));
  Json live_copy;
  if (prev) live_copy = ForOutput(rt, prev->object());
  merge::ApplyRequest req{.live = prev ? live_copy : kNull,
                          .applied = applied,
                          .manager = std::string(manager),
                          .force = force,
                          .now = Now(),
                          .subresource = options.subresource == "status" ? "status" : ""};
  auto outcome = merge::ServerSideApply(req);
  if (!outcome.ok()) {
    if (outcome.status().code() == absl::StatusCode::kInvalidArgument) {
      return BadRequestError(std::string(outcome.status().message()));
    }
    return outcome.status();
  }
  if (!outcome->conflicts.empty()) {
    // Print managers the way the API server does: Update managers with their apiVersion.
    std::vector<merge::ManagedFieldsEntry> entries;
    if (prev) {
      auto parsed = merge::ParseManagedFields(prev->object());
      if (parsed.ok()) entries = *parsed;
    }
    std::vector<std::string> managers, fields;
    for (const auto& c : outcome->conflicts) {
      std::string printed = "\"" + c.manager + "\"";
      for (const auto& e : entries) {
        if (e.manager == c.manager && e.operation == "Update") {
          printed += " using " + e.api_version;
          break;
        }
      }
      managers.push_back(printed);
      fields.push_back(c.field_path);
    }
    return ApplyConflictError(managers, fields);
  }
  Json merged = std::move(outcome->object);
  WriteOptions o = options;
  o.field_validation = "";
  if (!prev) {
    return CreateLocked(rt, ns, std::move(merged), o, false);
  }
  return UpdateLocked(rt, ns, name, std::move(merged), o, false, false);
}

absl::StatusOr<std::unique_ptr<Watcher>> Store::Watch(const ResourceType& rt, std::string_view ns,
                                                      std::string_view resource_version,
                                                      const ListOptions& selectors) {
  auto w = std::make_unique<Watcher>();
  w->store_ = this;
  w->rt_ = registry_->Find(rt.group, rt.version, rt.plural);
  if (!w->rt_) w->rt_ = std::make_shared<const ResourceType>(rt);
  w->ns_ = rt.namespaced ? std::string(ns) : "";
  DL_ASSIGN_OR_RETURN(w->labels_, ParseLabelSelector(selectors.label_selector));
  DL_ASSIGN_OR_RETURN(w->fields_, ParseFieldSelector(selectors.field_selector));
  long long from = 0;
  if (!ParseRv(resource_version, &from)) {
    return BadRequestError("resourceVersion: Invalid value: \"" + std::string(resource_version) +
                           "\": must be a non-negative integer");
  }
  std::shared_lock lock(mu_);
  if (resource_version.empty() || resource_version == "0") {
    std::vector<Stored> initial;
    std::string unused;
    SelectLocked(rt, w->ns_, w->labels_, w->fields_, "", 0, &initial, &unused);
    for (const auto& o : initial) {
      w->pending_.push_back(WatchEvent{"ADDED", ForOutput(rt, o->object())});
    }
    w->cursor_ = rv_;
  } else {
    w->cursor_ = from;
    if (from < rv_ && (history_.empty() || history_.front().rv > from + 1)) {
      long long oldest = history_.empty() ? rv_ : history_.front().rv - 1;
      w->pending_.push_back(WatchEvent{
          "ERROR", ToKubeStatus(GoneError("too old resource version: " + std::to_string(from) +
                                          " (" + std::to_string(oldest) + ")"))});
      w->cursor_ = rv_;
    }
  }
  return w;
}

std::vector<std::shared_ptr<const Json>> Store::Objects(std::string_view store_key) const {
  std::shared_lock lock(mu_);
  std::vector<std::shared_ptr<const Json>> out;
  const TypeObjects* objs = TypeLocked(std::string(store_key));
  if (!objs) return out;
  out.reserve(objs->by_key.size());
  for (const auto& [k, o] : objs->by_key) out.push_back(AsJson(o));
  return out;
}

absl::StatusOr<Json> Store::WriteStatus(const ResourceType& rt, std::string_view ns,
                                        std::string_view name, const Json& status) {
  std::unique_lock lock(mu_);
  std::string key = Key(rt.namespaced ? ns : "", name);
  Stored current = FindLocked(rt.StoreKey(), key);
  if (!current) return NotFoundError(rt.Gr(), name);
  Json next = current->object();
  next["status"] = status;
  return CommitLocked(rt, key, current, std::move(next));
}

absl::StatusOr<Json> Store::ForceStatus(const ResourceType& rt, std::string_view ns,
                                        std::string_view name, const Json& status) {
  {
    std::unique_lock lock(mu_);
    pinned_.insert(rt.StoreKey() + "|" + Key(rt.namespaced ? ns : "", name));
  }
  return WriteStatus(rt, ns, name, status);
}

bool Store::IsPinned(const ResourceType& rt, std::string_view ns, std::string_view name) const {
  std::shared_lock lock(mu_);
  return pinned_.count(rt.StoreKey() + "|" + Key(rt.namespaced ? ns : "", name)) > 0;
}

int Store::FinishNamespaceDeletion() {
  {
    // The common case, nothing terminating, without blocking readers.
    std::shared_lock lock(mu_);
    if (terminating_.empty()) return 0;
  }
  std::unique_lock lock(mu_);
  auto rt = registry_->Find("", "v1", "namespaces");
  std::vector<std::string> done;
  for (const std::string& ns : terminating_) {
    Stored o = FindLocked("/namespaces", Key("", ns));
    if (!o || HasFinalizers(o->object()) || namespace_contents_.count(ns)) continue;
    done.push_back(Key("", ns));
  }
  for (const auto& k : done) RemoveLocked(*rt, "/namespaces|" + k, "Background");
  return static_cast<int>(done.size());
}

bool Store::ChangedSince(long long after_rv, std::vector<std::pair<std::string, std::string>>* out,
                         long long* new_cursor) const {
  std::shared_lock lock(mu_);
  *new_cursor = rv_;
  if (after_rv >= rv_) return true;
  if (history_.empty() || history_.front().rv > after_rv + 1) return false;
  auto it = std::upper_bound(history_.begin(), history_.end(), after_rv,
                             [](long long rv, const Event& e) { return rv < e.rv; });
  for (; it != history_.end(); ++it) out->emplace_back(it->store_key, it->object_key);
  return true;
}

int Store::AddChangeListener(std::function<void()> listener) {
  std::unique_lock lock(mu_);
  int id = next_listener_++;
  listeners_.emplace(id, std::move(listener));
  return id;
}

void Store::RemoveChangeListener(int id) {
  std::unique_lock lock(mu_);
  listeners_.erase(id);
}

StoreSnapshot Store::TakeSnapshot() {
  std::shared_lock lock(mu_);
  StoreSnapshot snap;
  snap.rv = rv_;
  snap.uid_counter = uid_counter_;
  snap.objects.reserve(object_count_);
  // CRDs first so that loading registers them before their custom resources.
  std::vector<std::string> keys;
  for (const auto& [sk, objs] : objects_) keys.push_back(sk);
  std::sort(keys.begin(), keys.end(), [](const std::string& a, const std::string& b) {
    bool ca = a == "apiextensions.k8s.io/customresourcedefinitions";
    bool cb = b == "apiextensions.k8s.io/customresourcedefinitions";
    if (ca != cb) return ca;
    return a < b;
  });
  for (const auto& sk : keys) {
    for (const auto& [k, o] : objects_.at(sk).by_key) snap.objects.emplace_back(sk, o);
  }
  // Writers are excluded by the shared lock: the recorded changes are all in the snapshot.
  std::lock_guard changes_lock(changes_mu_);
  changes_.clear();
  return snap;
}

Json Store::Dump() const {
  std::shared_lock lock(mu_);
  Json objs = Json::array();
  // CRDs first so that Load registers them before their custom resources.
  std::vector<std::string> keys;
  for (const auto& [sk, m] : objects_) keys.push_back(sk);
  std::sort(keys.begin(), keys.end(), [](const std::string& a, const std::string& b) {
    bool ca = a == "apiextensions.k8s.io/customresourcedefinitions";
    bool cb = b == "apiextensions.k8s.io/customresourcedefinitions";
    if (ca != cb) return ca;
    return a < b;
  });
  for (const auto& sk : keys) {
    for (const auto& [k, o] : objects_.at(sk).by_key) {
      objs.push_back({{"storeKey", sk}, {"object", o->object()}});
    }
  }
  return {{"resourceVersion", rv_}, {"uidCounter", uid_counter_}, {"objects", objs}};
}

absl::Status Store::Load(const Json& dump) {
  if (!dump.is_object() || !dump.contains("objects") || !dump["objects"].is_array()) {
    return absl::InvalidArgumentError("state file: expected {resourceVersion, objects}");
  }
  std::unique_lock lock(mu_);
  objects_.clear();
  dependents_.clear();
  namespace_contents_.clear();
  terminating_.clear();
  object_count_ = 0;
  history_.clear();
  rv_ = dump.value("resourceVersion", 0LL);
  uid_counter_ = dump.value("uidCounter", 0ULL);
  for (const auto& e : dump["objects"]) {
    std::string sk = e.value("storeKey", "");
    if (sk.empty() || !e.contains("object") || !e["object"].is_object()) continue;
    const Json& o = e["object"];
    PutLocked(sk, Key(MetaStr(o, "namespace"), MetaStr(o, "name")),
              std::make_shared<const StoredObject>(o));
    if (sk == "apiextensions.k8s.io/customresourcedefinitions") (void)registry_->RegisterCrd(o);
  }
  return absl::OkStatus();
}

void Store::RecordChanges() {
  std::unique_lock lock(mu_);
  record_changes_ = true;
}

std::vector<StoreChange> Store::TakeChanges() {
  std::lock_guard lock(changes_mu_);
  std::vector<StoreChange> out;
  out.swap(changes_);
  return out;
}

absl::Status Store::Restore(const StoreChange& change) {
  if (change.store_key.empty() || change.key.find('/') == std::string::npos) {
    return absl::InvalidArgumentError("change log: a change needs a store key and ns/name key");
  }
  if (change.object && Key(MetaStr(change.object->object(), "namespace"),
                           MetaStr(change.object->object(), "name")) != change.key) {
    return absl::InvalidArgumentError("change log: key " + change.key +
                                      " does not match the object's namespace/name");
  }
  std::unique_lock lock(mu_);
  if (change.rv <= rv_) return absl::OkStatus();
  rv_ = change.rv;
  uid_counter_ = std::max(uid_counter_, change.uid_counter);
  const bool crd = change.store_key == "apiextensions.k8s.io/customresourcedefinitions";
  if (change.object) {
    PutLocked(change.store_key, change.key, change.object);
    if (crd) (void)registry_->RegisterCrd(change.object->object());
    return absl::OkStatus();
  }
  if (crd) {
    if (Stored old = FindLocked(change.store_key, change.key)) {
      registry_->UnregisterCrd(MetaStr(old->object(), "name"));
    }
  }
  EraseLocked(change.store_key, change.key);
  return absl::OkStatus();
}

}  // namespace driftless::kube_emulator
