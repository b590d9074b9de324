// The state of record in JetStream KV: registered resources, application status, sync
// history. Every write is compare-and-set on the entry's revision; lost races re-read and
// retry, so replicas of any service can write concurrently.
//
//   bucket     key                       value
//   resources  <Kind>.<name>             StoredResource JSON {"object", "generation", ...}
//   status     app.<name>                driftless.v1.AppStatus (binary protobuf)
//   history    app.<name>.<sync id>      JSON {"syncId","revision","succeeded",...}
//   sources    app.<name>                JSON {"revision","specDigest","ref","error"}
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/bus/kv_store.h"
#include "common/manifest/manifest.h"
#include "driftless/v1/events.pb.h"

namespace driftless::service {

// A driftless resource as registered through the API.
struct StoredResource {
  std::string kind;
  std::string name;
  manifest::Json object;  // the document as applied (metadata.generation set)
  int64_t generation = 0;
  std::string spec_digest;  // manifest::Digest(object["spec"])
  uint64_t kv_revision = 0;
};

std::string ResourceKey(std::string_view kind, std::string_view name);  // "<Kind>.<name>"

class ResourceStore {
 public:
  explicit ResourceStore(bus::KvStore* kv) : kv_(kv) {}

  // kNotFound naming the kind and name.
  absl::StatusOr<StoredResource> Get(std::string_view kind, std::string_view name) const;
  // Every resource of `kind`, sorted by name.
  absl::StatusOr<std::vector<StoredResource>> List(std::string_view kind) const;

  enum class PutResult { kCreated, kConfigured, kUnchanged };
  // Creates or updates `object` (already validated); bumps metadata.generation when the spec
  // changes. Compare-and-set with retries.
  absl::StatusOr<PutResult> Put(const manifest::Json& object);
  absl::Status Delete(std::string_view kind, std::string_view name);

  // Parses a stored value (for watchers of the bucket).
  static absl::StatusOr<StoredResource> Decode(std::string_view key, std::string_view value,
                                               uint64_t kv_revision);

 private:
  bus::KvStore* kv_;
};

std::string StatusKey(std::string_view application);  // "app.<name>"

class StatusStore {
 public:
  explicit StatusStore(bus::KvStore* kv) : kv_(kv) {}

  // The status of `application`; an empty AppStatus (sync/health UNKNOWN) if none yet.
  absl::StatusOr<v1::AppStatus> Get(std::string_view application) const;

  // Read-modify-write with compare-and-set, retried on lost races. `mutate` may run several
  // times; returning false leaves the entry unchanged. Returns the status as stored.
  absl::StatusOr<v1::AppStatus> Update(std::string_view application,
                                       const std::function<bool(v1::AppStatus&)>& mutate);
  absl::Status Delete(std::string_view application);

 private:
  bus::KvStore* kv_;
};

// Sets (or replaces) the condition of `type` on `status`, keeping last_transition_time when
// the status value does not change.
void SetCondition(v1::AppStatus& status, std::string_view type, bool value,
                  std::string_view reason, std::string_view message);
// The condition of `type`, or nullptr.
const v1::Condition* FindCondition(const v1::AppStatus& status, std::string_view type);

struct HistoryEntry {
  std::string sync_id;
  std::string revision;
  std::string spec_digest;
  bool succeeded = false;
  std::string message;
  std::string initiated_by;
  std::string started_at;   // RFC 3339
  std::string finished_at;  // RFC 3339
  int object_count = 0;
};

class HistoryStore {
 public:
  explicit HistoryStore(bus::KvStore* kv) : kv_(kv) {}
  // Records a finished sync (idempotent per sync id).
  absl::Status Record(std::string_view application, const HistoryEntry& entry);
  // kNotFound if the sync is not recorded.
  absl::StatusOr<HistoryEntry> Get(std::string_view application, std::string_view sync_id) const;
  // Every recorded sync of `application`, oldest first.
  absl::StatusOr<std::vector<HistoryEntry>> List(std::string_view application) const;

 private:
  bus::KvStore* kv_;
};

// What the repo-poller last published for an application.
struct SourceRecord {
  std::string revision;
  std::string spec_digest;
  std::string ref;
  std::string error;
  uint64_t kv_revision = 0;
};

class SourceStore {
 public:
  explicit SourceStore(bus::KvStore* kv) : kv_(kv) {}
  // nullopt if nothing recorded.
  absl::StatusOr<std::optional<SourceRecord>> Get(std::string_view application) const;
  absl::Status Put(std::string_view application, const SourceRecord& record);
  absl::Status Delete(std::string_view application);

 private:
  bus::KvStore* kv_;
};

}  // namespace driftless::service
