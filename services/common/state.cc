#include "services/common/state.h"

#include <chrono>
#include <cstdio>
#include <random>
#include <type_traits>

#include "absl/strings/escaping.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/log/log.h"
#include "common/manifest/object.h"
#include "common/status/status.h"
#include "common/strings/str.h"
#include "services/common/events.h"
#include "services/common/render_inputs.h"
#include "services/common/topology.h"

namespace driftless::service {
namespace {

constexpr int kCasAttempts = 20;

// A field of a stored JSON record, or `fallback` when it is missing or of the wrong type (a
// hand-edited or foreign record must not throw out of a service).
template <typename T>
T Field(const manifest::Json& j, const char* name, T fallback) {
  auto it = j.find(name);
  if (it == j.end()) return fallback;
  if constexpr (std::is_same_v<T, std::string>) {
    return it->is_string() ? it->template get<std::string>() : fallback;
  } else if constexpr (std::is_same_v<T, bool>) {
    return it->is_boolean() ? it->template get<bool>() : fallback;
  } else {
    return it->is_number_integer() ? it->template get<T>() : fallback;
  }
}

// Without the fields the store owns (generation, uid): what a caller's document is compared by.
manifest::Json WithoutGeneration(manifest::Json object) {
  if (object.contains("metadata") && object["metadata"].is_object()) {
    object["metadata"].erase("generation");
    object["metadata"].erase("uid");
  }
  return object;
}

std::string UidOf(const manifest::Json& object) {
  auto m = object.find("metadata");
  if (m == object.end() || !m->is_object()) return "";
  auto u = m->find("uid");
  return u != m->end() && u->is_string() ? u->get<std::string>() : "";
}

// A random RFC 4122 version 4 UUID: one per incarnation of a resource, like Kubernetes'
// metadata.uid, so a deleted and re-created resource is never mistaken for the old one.
std::string NewUid() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  uint64_t hi = rng(), lo = rng();
  hi = (hi & 0xffffffffffff0fffULL) | 0x0000000000004000ULL;
  lo = (lo & 0x3fffffffffffffffULL) | 0x8000000000000000ULL;
  char buf[37];
  std::snprintf(buf, sizeof(buf), "%08x-%04x-%04x-%04x-%012llx", static_cast<unsigned>(hi >> 32),
                static_cast<unsigned>((hi >> 16) & 0xffff), static_cast<unsigned>(hi & 0xffff),
                static_cast<unsigned>(lo >> 48),
                static_cast<unsigned long long>(lo & 0xffffffffffffULL));
  return buf;
}

// The digest of (uid, spec): stable across metadata-only updates, new for a new incarnation.
// Every event id and automated sync id includes it, so the pipeline never dedupes work of a
// re-created resource against its predecessor's.
std::string SpecDigestOf(std::string_view uid, const manifest::Json& object) {
  auto it = object.find("spec");
  return manifest::Digest(
      manifest::Json{{"uid", uid}, {"spec", it == object.end() ? manifest::Json(nullptr) : *it}});
}

// The stored form of a resource (what Decode reads).
std::string EncodeRecord(const manifest::Json& object, int64_t generation,
                         std::string_view spec_digest, absl::Time updated_at) {
  return manifest::CanonicalJson(
      {{"object", object},
       {"generation", generation},
       {"specDigest", spec_digest},
       {"updatedAt", absl::FormatTime(absl::RFC3339_sec, updated_at, absl::UTCTimeZone())}});
}

}  // namespace

std::string ResourceKey(std::string_view kind, std::string_view name) {
  return strings::Cat(kind, ".", name);
}

absl::StatusOr<StoredResource> ResourceStore::Decode(std::string_view key, std::string_view value,
                                                     uint64_t kv_revision) {
  DL_ASSIGN_OR_RETURN(manifest::Json doc, manifest::ParseJson(value, key));
  StoredResource r;
  if (!doc.is_object() || !doc.contains("object") || !doc["object"].is_object()) {
    return absl::DataLossError(strings::Cat("resource record ", key, " is malformed"));
  }
  r.object = std::move(doc["object"]);
  r.kind = manifest::KindOf(r.object);
  r.name = manifest::NameOf(r.object);
  r.generation = Field(doc, "generation", int64_t{0});
  r.spec_digest = Field(doc, "specDigest", std::string());
  r.uid = UidOf(r.object);
  r.kv_revision = kv_revision;
  return r;
}

absl::StatusOr<StoredResource> ResourceStore::Get(std::string_view kind,
                                                  std::string_view name) const {
  std::string key = ResourceKey(kind, name);
  absl::StatusOr<bus::KvEntry> entry = kv_->Get(kResourcesBucket, key);
  if (absl::IsNotFound(entry.status())) {
    return absl::NotFoundError(strings::Cat(kind, " \"", name, "\" not found"));
  }
  DL_RETURN_IF_ERROR(entry.status());
  return Decode(key, entry->value, entry->revision);
}

absl::StatusOr<std::vector<StoredResource>> ResourceStore::List(std::string_view kind) const {
  DL_ASSIGN_OR_RETURN(std::vector<std::string> keys,
                      kv_->Keys(kResourcesBucket, strings::Cat(kind, ".")));
  std::vector<StoredResource> out;
  for (const std::string& key : keys) {
    absl::StatusOr<bus::KvEntry> entry = kv_->Get(kResourcesBucket, key);
    if (absl::IsNotFound(entry.status())) continue;  // deleted meanwhile
    DL_RETURN_IF_ERROR(entry.status());
    absl::StatusOr<StoredResource> r = Decode(key, entry->value, entry->revision);
    if (!r.ok()) {
      // One bad record must not hide every other resource from the services.
      log::Warn("skipping a malformed resource record", {{"key", key}, {"error", r.status()}});
      continue;
    }
    out.push_back(*std::move(r));
  }
  std::sort(out.begin(), out.end(),
            [](const StoredResource& a, const StoredResource& b) { return a.name < b.name; });
  return out;
}

absl::StatusOr<ResourceStore::PutResult> ResourceStore::Put(const manifest::Json& object,
                                                            StoredResource* stored_out) {
  const std::string kind = manifest::KindOf(object);
  const std::string name = manifest::NameOf(object);
  if (kind.empty() || name.empty()) {
    return absl::InvalidArgumentError("resource without kind or metadata.name");
  }
  const std::string key = ResourceKey(kind, name);
  const manifest::Json desired = WithoutGeneration(object);
  for (int attempt = 0; attempt < kCasAttempts; ++attempt) {
    absl::StatusOr<bus::KvEntry> entry = kv_->Get(kResourcesBucket, key);
    int64_t generation = 1;
    std::string uid;
    PutResult result = PutResult::kCreated;
    if (entry.ok()) {
      DL_ASSIGN_OR_RETURN(StoredResource old, Decode(key, entry->value, entry->revision));
      DL_RETURN_IF_ERROR(CheckNotDeleting(old));
      manifest::Json old_object = WithoutGeneration(old.object);
      if (manifest::CanonicalJson(old_object) == manifest::CanonicalJson(desired)) {
        if (stored_out != nullptr) *stored_out = std::move(old);
        return PutResult::kUnchanged;
      }
      uid = UidOf(old.object);
      if (uid.empty()) uid = NewUid();  // stored before uids existed
      generation = old.generation + (old.spec_digest == SpecDigestOf(uid, desired) ? 0 : 1);
      result = PutResult::kConfigured;
    } else if (!absl::IsNotFound(entry.status())) {
      return entry.status();
    } else {
      uid = NewUid();
    }
    const std::string spec_digest = SpecDigestOf(uid, desired);
    manifest::Json stored = desired;
    stored["metadata"]["generation"] = generation;
    stored["metadata"]["uid"] = uid;
    std::string value = EncodeRecord(stored, generation, spec_digest, absl::Now());
    absl::StatusOr<uint64_t> written =
        result == PutResult::kCreated ? kv_->Create(kResourcesBucket, key, value)
                                      : kv_->Update(kResourcesBucket, key, value, entry->revision);
    if (written.ok()) {
      if (stored_out != nullptr) {
        *stored_out = {.kind = kind,
                       .name = name,
                       .object = std::move(stored),
                       .generation = generation,
                       .spec_digest = spec_digest,
                       .uid = uid,
                       .kv_revision = *written};
      }
      return result;
    }
    if (absl::IsAlreadyExists(written.status()) || absl::IsAborted(written.status())) continue;
    return written.status();
  }
  return absl::AbortedError(strings::Cat("too much contention writing ", kind, " ", name));
}

absl::Status ResourceStore::Delete(std::string_view kind, std::string_view name) {
  return kv_->Delete(kResourcesBucket, ResourceKey(kind, name));
}

absl::StatusOr<StoredResource> ResourceStore::MarkDeleting(std::string_view kind,
                                                           std::string_view name, absl::Time now) {
  const std::string key = ResourceKey(kind, name);
  for (int attempt = 0; attempt < kCasAttempts; ++attempt) {
    DL_ASSIGN_OR_RETURN(bus::KvEntry entry, kv_->Get(kResourcesBucket, key));
    DL_ASSIGN_OR_RETURN(StoredResource r, Decode(key, entry.value, entry.revision));
    if (IsDeleting(r)) return r;
    r.object["metadata"]["deletionTimestamp"] =
        absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", now, absl::UTCTimeZone());
    absl::StatusOr<uint64_t> written =
        kv_->Update(kResourcesBucket, key, EncodeRecord(r.object, r.generation, r.spec_digest, now),
                    entry.revision);
    if (written.ok()) {
      r.kv_revision = *written;
      return r;
    }
    if (!absl::IsAborted(written.status())) return written.status();
  }
  return absl::AbortedError(strings::Cat("too much contention marking ", kind, " ", name));
}

bool IsDeleting(const StoredResource& resource) {
  auto m = resource.object.find("metadata");
  return m != resource.object.end() && m->is_object() && m->contains("deletionTimestamp");
}

absl::Status CheckNotDeleting(const StoredResource& resource) {
  if (!IsDeleting(resource)) return absl::OkStatus();
  return absl::FailedPreconditionError(
      strings::Cat(resource.kind, " \"", resource.name,
                   "\" is being deleted (its objects are being pruned); apply it again once it "
                   "is gone"));
}

std::string StatusKey(std::string_view application) { return strings::Cat("app.", application); }

absl::StatusOr<v1::AppStatus> StatusStore::Get(std::string_view application) const {
  v1::AppStatus status;
  absl::StatusOr<bus::KvEntry> entry = kv_->Get(kStatusBucket, StatusKey(application));
  if (absl::IsNotFound(entry.status())) {
    status.set_sync(v1::SYNC_STATUS_CODE_UNKNOWN);
    status.set_health(v1::HEALTH_STATUS_CODE_UNKNOWN);
    return status;
  }
  DL_RETURN_IF_ERROR(entry.status());
  if (!status.ParseFromString(entry->value)) {
    return absl::DataLossError(
        strings::Cat("status of application ", application, " is not a driftless.v1.AppStatus"));
  }
  return status;
}

absl::StatusOr<v1::AppStatus> StatusStore::Update(std::string_view application,
                                                  const std::function<bool(v1::AppStatus&)>& mutate,
                                                  std::string_view uid) {
  const std::string key = StatusKey(application);
  for (int attempt = 0; attempt < kCasAttempts; ++attempt) {
    absl::StatusOr<bus::KvEntry> entry = kv_->Get(kStatusBucket, key);
    v1::AppStatus status;
    bool exists = entry.ok();
    if (exists) {
      if (!status.ParseFromString(entry->value)) status.Clear();
      if (!uid.empty() && !status.application_uid().empty() && status.application_uid() != uid) {
        return absl::NotFoundError(strings::Cat("application ", application, " (uid ", uid,
                                                ") was deleted: its status is not written"));
      }
    } else if (absl::IsNotFound(entry.status())) {
      status.set_sync(v1::SYNC_STATUS_CODE_UNKNOWN);
      status.set_health(v1::HEALTH_STATUS_CODE_UNKNOWN);
    } else {
      return entry.status();
    }
    if (!mutate(status)) return status;
    if (!uid.empty()) status.set_application_uid(std::string(uid));
    SetTimestamp(status.mutable_reconciled_at(), absl::Now());
    std::string value;
    status.SerializeToString(&value);
    absl::StatusOr<uint64_t> written = exists
                                           ? kv_->Update(kStatusBucket, key, value, entry->revision)
                                           : kv_->Create(kStatusBucket, key, value);
    if (written.ok() && !exists && !uid.empty()) {
      // Created: make sure the application was not deleted meanwhile (a late event must not
      // re-create the status of a deleted application).
      absl::StatusOr<StoredResource> app = ResourceStore(kv_).Get("Application", application);
      if ((app.ok() && app->uid != uid) || absl::IsNotFound(app.status())) {
        (void)kv_->Delete(kStatusBucket, key);
        return absl::NotFoundError(strings::Cat("application ", application, " (uid ", uid,
                                                ") was deleted: its status is not written"));
      }
    }
    if (written.ok()) return status;
    if (absl::IsAlreadyExists(written.status()) || absl::IsAborted(written.status())) continue;
    return written.status();
  }
  return absl::AbortedError(
      strings::Cat("too much contention updating the status of application ", application));
}

absl::Status StatusStore::Delete(std::string_view application) {
  return kv_->Delete(kStatusBucket, StatusKey(application));
}

void SetCondition(v1::AppStatus& status, std::string_view type, bool value, std::string_view reason,
                  std::string_view message) {
  v1::Condition* condition = nullptr;
  for (auto& c : *status.mutable_conditions()) {
    if (c.type() == type) condition = &c;
  }
  if (condition == nullptr) {
    condition = status.add_conditions();
    condition->set_type(std::string(type));
  }
  if (condition->status() != value || !condition->has_last_transition_time()) {
    condition->mutable_last_transition_time()->set_seconds(absl::ToUnixSeconds(absl::Now()));
  }
  condition->set_status(value);
  condition->set_reason(std::string(reason));
  condition->set_message(std::string(message));
}

const v1::Condition* FindCondition(const v1::AppStatus& status, std::string_view type) {
  for (const auto& c : status.conditions()) {
    if (c.type() == type) return &c;
  }
  return nullptr;
}

namespace {

manifest::Json HistoryToJson(const HistoryEntry& e) {
  manifest::Json objects = manifest::Json::array();
  for (const HistoryObject& o : e.objects) {
    objects.push_back({{"group", o.ref.group()},
                       {"version", o.ref.version()},
                       {"kind", o.ref.kind()},
                       {"namespace", o.ref.namespace_()},
                       {"name", o.ref.name()},
                       {"action", o.action},
                       {"result", o.result},
                       {"message", o.message}});
  }
  return {{"reason", e.reason},           {"objects", std::move(objects)},
          {"syncId", e.sync_id},          {"revision", e.revision},
          {"seq", e.desired_seq},         {"attempt", e.attempt},
          {"specDigest", e.spec_digest},  {"succeeded", e.succeeded},
          {"message", e.message},         {"initiatedBy", e.initiated_by},
          {"startedAt", e.started_at},    {"finishedAt", e.finished_at},
          {"objectCount", e.object_count}};
}

absl::StatusOr<HistoryEntry> HistoryFromJson(std::string_view value, std::string_view key) {
  DL_ASSIGN_OR_RETURN(manifest::Json j, manifest::ParseJson(value, key));
  if (!j.is_object()) return absl::DataLossError(strings::Cat("history ", key, " is malformed"));
  HistoryEntry e;
  e.sync_id = Field(j, "syncId", std::string());
  e.desired_seq = Field(j, "seq", int64_t{0});
  e.attempt = Field(j, "attempt", 0);
  e.revision = Field(j, "revision", std::string());
  e.spec_digest = Field(j, "specDigest", std::string());
  e.succeeded = Field(j, "succeeded", false);
  e.message = Field(j, "message", std::string());
  e.initiated_by = Field(j, "initiatedBy", std::string());
  e.started_at = Field(j, "startedAt", std::string());
  e.finished_at = Field(j, "finishedAt", std::string());
  e.object_count = Field(j, "objectCount", 0);
  e.reason = Field(j, "reason", std::string());
  if (auto it = j.find("objects"); it != j.end() && it->is_array()) {
    for (const manifest::Json& o : *it) {
      if (!o.is_object()) continue;
      HistoryObject& h = e.objects.emplace_back();
      h.ref.set_group(Field(o, "group", std::string()));
      h.ref.set_version(Field(o, "version", std::string()));
      h.ref.set_kind(Field(o, "kind", std::string()));
      h.ref.set_namespace_(Field(o, "namespace", std::string()));
      h.ref.set_name(Field(o, "name", std::string()));
      h.action = Field(o, "action", std::string());
      h.result = Field(o, "result", std::string());
      h.message = Field(o, "message", std::string());
    }
  }
  return e;
}

}  // namespace

absl::Status HistoryStore::Record(std::string_view application, const HistoryEntry& entry) {
  DL_RETURN_IF_ERROR(kv_->Put(kHistoryBucket, strings::Cat("app.", application, ".", entry.sync_id),
                              manifest::CanonicalJson(HistoryToJson(entry)))
                         .status());
  if (limit_ <= 0) return absl::OkStatus();
  absl::StatusOr<std::vector<std::string>> keys =
      kv_->Keys(kHistoryBucket, strings::Cat("app.", application, "."));
  if (!keys.ok() || static_cast<int>(keys->size()) <= limit_) return absl::OkStatus();
  absl::StatusOr<std::vector<HistoryEntry>> all = List(application);
  if (!all.ok()) {
    log::Warn("cannot trim the sync history",
              {{"application", application}, {"error", all.status()}});
    return absl::OkStatus();
  }
  for (size_t i = 0; i + static_cast<size_t>(limit_) < all->size(); ++i) {
    (void)kv_->Delete(kHistoryBucket, strings::Cat("app.", application, ".", (*all)[i].sync_id));
  }
  return absl::OkStatus();
}

absl::Status HistoryStore::DeleteAll(std::string_view application) {
  DL_ASSIGN_OR_RETURN(std::vector<std::string> keys,
                      kv_->Keys(kHistoryBucket, strings::Cat("app.", application, ".")));
  for (const std::string& key : keys) DL_RETURN_IF_ERROR(kv_->Delete(kHistoryBucket, key));
  return absl::OkStatus();
}

absl::StatusOr<HistoryEntry> HistoryStore::Get(std::string_view application,
                                               std::string_view sync_id) const {
  std::string key = strings::Cat("app.", application, ".", sync_id);
  DL_ASSIGN_OR_RETURN(bus::KvEntry entry, kv_->Get(kHistoryBucket, key));
  return HistoryFromJson(entry.value, key);
}

absl::StatusOr<std::vector<HistoryEntry>> HistoryStore::List(std::string_view application) const {
  DL_ASSIGN_OR_RETURN(std::vector<std::string> keys,
                      kv_->Keys(kHistoryBucket, strings::Cat("app.", application, ".")));
  std::vector<HistoryEntry> out;
  for (const std::string& key : keys) {
    absl::StatusOr<bus::KvEntry> entry = kv_->Get(kHistoryBucket, key);
    if (!entry.ok()) continue;
    DL_ASSIGN_OR_RETURN(HistoryEntry e, HistoryFromJson(entry->value, key));
    out.push_back(std::move(e));
  }
  std::sort(out.begin(), out.end(), [](const HistoryEntry& a, const HistoryEntry& b) {
    return a.finished_at < b.finished_at;
  });
  return out;
}

namespace {

manifest::Json SourceToJson(const SourceRecord& r) {
  return {{"revision", r.revision},
          {"specDigest", r.spec_digest},
          {"ref", r.ref},
          {"error", r.error},
          {"uid", r.uid},
          {"desiredSeq", r.desired_seq},
          {"attempt", r.attempt},
          {"reason", r.reason},
          {"targetRevision", r.target_revision},
          {"emitted", r.emitted},
          {"request", absl::Base64Escape(r.request)},
          {"correlationId", r.correlation_id},
          {"handledRequests", r.handled_requests}};
}

}  // namespace

absl::StatusOr<std::optional<SourceRecord>> SourceStore::Get(std::string_view application) const {
  std::string key = StatusKey(application);
  absl::StatusOr<bus::KvEntry> entry = kv_->Get(kSourcesBucket, key);
  if (absl::IsNotFound(entry.status())) return std::optional<SourceRecord>();
  DL_RETURN_IF_ERROR(entry.status());
  absl::StatusOr<manifest::Json> parsed = manifest::ParseJson(entry->value, key);
  if (!parsed.ok() || !parsed->is_object()) {
    return absl::DataLossError(strings::Cat("source record ", key, " is malformed"));
  }
  const manifest::Json& j = *parsed;
  SourceRecord r;
  r.revision = Field(j, "revision", std::string());
  r.spec_digest = Field(j, "specDigest", std::string());
  r.ref = Field(j, "ref", std::string());
  r.error = Field(j, "error", std::string());
  r.uid = Field(j, "uid", std::string());
  r.desired_seq = Field(j, "desiredSeq", int64_t{0});
  r.attempt = Field(j, "attempt", int32_t{1});
  r.reason = Field(j, "reason", std::string());
  r.target_revision = Field(j, "targetRevision", r.revision);
  r.emitted = Field(j, "emitted", true);
  if (!absl::Base64Unescape(Field(j, "request", std::string()), &r.request)) r.request.clear();
  r.correlation_id = Field(j, "correlationId", std::string());
  if (auto h = j.find("handledRequests"); h != j.end() && h->is_array()) {
    for (const manifest::Json& id : *h) {
      if (id.is_string()) r.handled_requests.push_back(id.get<std::string>());
    }
  }
  r.kv_revision = entry->revision;
  return std::optional<SourceRecord>(std::move(r));
}

absl::Status SourceStore::Put(std::string_view application, const SourceRecord& record) {
  return kv_
      ->Put(kSourcesBucket, StatusKey(application), manifest::CanonicalJson(SourceToJson(record)))
      .status();
}

absl::StatusOr<uint64_t> SourceStore::Write(std::string_view application,
                                            const SourceRecord& record,
                                            uint64_t expected_kv_revision) {
  const std::string value = manifest::CanonicalJson(SourceToJson(record));
  absl::StatusOr<uint64_t> written =
      expected_kv_revision == 0
          ? kv_->Create(kSourcesBucket, StatusKey(application), value)
          : kv_->Update(kSourcesBucket, StatusKey(application), value, expected_kv_revision);
  if (absl::IsAlreadyExists(written.status())) {
    return absl::AbortedError(strings::Cat("source record of ", application, " written meanwhile"));
  }
  return written;
}

absl::Status SourceStore::Delete(std::string_view application) {
  return kv_->Delete(kSourcesBucket, StatusKey(application));
}

absl::Status PendingStore::Offer(const v1::Event& plan) {
  const std::string key = StatusKey(plan.application());
  std::string value;
  if (!plan.SerializeToString(&value)) {
    return absl::InternalError(
        strings::Cat("cannot serialize the pending plan of ", plan.application()));
  }
  for (int attempt = 0; attempt < kCasAttempts; ++attempt) {
    absl::StatusOr<bus::KvEntry> entry = kv_->Get(kPendingBucket, key);
    absl::StatusOr<uint64_t> written;
    if (entry.ok()) {
      v1::Event stored;
      if (stored.ParseFromString(entry->value) &&
          stored.application_uid() == plan.application_uid() &&
          (stored.desired_seq() > plan.desired_seq() ||
           (stored.desired_seq() == plan.desired_seq() && stored.attempt() >= plan.attempt()))) {
        return absl::OkStatus();  // a newer one waits already
      }
      written = kv_->Update(kPendingBucket, key, value, entry->revision);
    } else if (absl::IsNotFound(entry.status())) {
      written = kv_->Create(kPendingBucket, key, value);
    } else {
      return entry.status();
    }
    if (written.ok()) return absl::OkStatus();
    if (!absl::IsAborted(written.status()) && !absl::IsAlreadyExists(written.status())) {
      return written.status();
    }
  }
  return absl::AbortedError(
      strings::Cat("too much contention on the pending plan of ", plan.application()));
}

absl::StatusOr<std::optional<std::pair<v1::Event, uint64_t>>> PendingStore::Get(
    std::string_view application) const {
  using Result = std::optional<std::pair<v1::Event, uint64_t>>;
  absl::StatusOr<bus::KvEntry> entry = kv_->Get(kPendingBucket, StatusKey(application));
  if (absl::IsNotFound(entry.status())) return Result();
  DL_RETURN_IF_ERROR(entry.status());
  if (entry->value.empty()) return Result();  // taken
  v1::Event plan;
  if (!plan.ParseFromString(entry->value)) {
    (void)kv_->Delete(kPendingBucket, StatusKey(application));
    return absl::DataLossError(
        strings::Cat("the pending plan of application ", application, " does not decode"));
  }
  return Result(std::make_pair(std::move(plan), entry->revision));
}

absl::Status PendingStore::Take(std::string_view application, uint64_t kv_revision) {
  // A compare-and-set to an empty value marks it taken; the key is deleted after.
  const std::string key = StatusKey(application);
  DL_RETURN_IF_ERROR(kv_->Update(kPendingBucket, key, "", kv_revision).status());
  return kv_->Delete(kPendingBucket, key);
}

absl::StatusOr<std::vector<std::string>> PendingStore::Applications() const {
  DL_ASSIGN_OR_RETURN(std::vector<std::string> keys, kv_->Keys(kPendingBucket, "app."));
  for (std::string& k : keys) k = k.substr(4);
  return keys;
}

namespace {

std::string ReadSetToJson(const ReadSetRecord& r) {
  return manifest::CanonicalJson(
      manifest::Json{{"uid", r.uid}, {"revision", r.revision}, {"paths", r.paths}});
}

}  // namespace

absl::StatusOr<std::optional<ReadSetRecord>> ReadSetStore::Get(std::string_view application) const {
  absl::StatusOr<bus::KvEntry> entry = kv_->Get(kReadSetsBucket, StatusKey(application));
  if (absl::IsNotFound(entry.status())) return std::optional<ReadSetRecord>();
  DL_RETURN_IF_ERROR(entry.status());
  absl::StatusOr<manifest::Json> j = manifest::ParseJson(entry->value, "read set");
  if (!j.ok() || !j->is_object() || !j->contains("paths") || !(*j)["paths"].is_array()) {
    return std::optional<ReadSetRecord>();
  }
  ReadSetRecord r{.uid = Field(*j, "uid", std::string()),
                  .revision = Field(*j, "revision", std::string())};
  for (const manifest::Json& p : (*j)["paths"]) {
    if (p.is_string()) r.paths.push_back(p.get<std::string>());
  }
  return std::optional<ReadSetRecord>(std::move(r));
}

absl::Status ReadSetStore::Put(std::string_view application, const ReadSetRecord& record) {
  const std::string value = ReadSetToJson(record);
  absl::StatusOr<bus::KvEntry> entry = kv_->Get(kReadSetsBucket, StatusKey(application));
  if (entry.ok() && entry->value == value) return absl::OkStatus();
  return kv_->Put(kReadSetsBucket, StatusKey(application), value).status();
}

absl::Status ReadSetStore::Delete(std::string_view application) {
  return kv_->Delete(kReadSetsBucket, StatusKey(application));
}

absl::Status FinalizeDeletion(bus::KvStore* kv, std::string_view application,
                              std::string_view uid) {
  ResourceStore resources(kv);
  absl::StatusOr<StoredResource> stored = resources.Get("Application", application);
  if (stored.ok() && stored->uid == uid) {
    // Put refuses a deleting resource, so nothing re-creates it between this read and the
    // delete; a new incarnation can only appear once it is gone.
    DL_RETURN_IF_ERROR(resources.Delete("Application", application));
  } else if (stored.ok()) {
    return absl::OkStatus();  // re-created since: its status and history are its own
  } else if (!absl::IsNotFound(stored.status())) {
    return stored.status();
  }
  DL_RETURN_IF_ERROR(StatusStore(kv).Delete(application));
  DL_RETURN_IF_ERROR(HistoryStore(kv).DeleteAll(application));
  DL_RETURN_IF_ERROR(kv->Delete(kPendingBucket, StatusKey(application)));
  DL_RETURN_IF_ERROR(SourceStore(kv).Delete(application));
  DL_RETURN_IF_ERROR(RenderInputsStore(kv).Delete(application));
  return ReadSetStore(kv).Delete(application);
}

}  // namespace driftless::service
