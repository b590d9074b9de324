// The state of record in JetStream KV: registered resources, application status, sync
// history. Every write is compare-and-set on the entry's revision; lost races re-read and
// retry, so replicas of any service can write concurrently.
//
//   bucket     key                       value
//   resources  <Kind>.<name>             StoredResource JSON {"object", "generation", ...}
//   status     app.<name>                driftless.v1.AppStatus (binary protobuf)
//   history    app.<name>.<sync id>      JSON {"syncId","revision","succeeded","seq",...}
//   sources    app.<name>                JSON {"revision","specDigest","ref","error",
//                                              "uid","desiredSeq","attempt","reason",...}
//   pending    app.<name>                the newest plan.ready that waits for a running sync
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
  std::string uid;          // metadata.uid: one per incarnation
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
  // changes. Compare-and-set with retries. kFailedPrecondition for a resource being deleted.
  // `stored`, when given, receives the resource as written (or as found, when unchanged):
  // reading it back could reach a replica that has not applied the write yet.
  absl::StatusOr<PutResult> Put(const manifest::Json& object, StoredResource* stored = nullptr);
  absl::Status Delete(std::string_view kind, std::string_view name);

  // Sets metadata.deletionTimestamp (`now`) unless it is set already; the spec, generation,
  // uid and spec digest stay. Returns the resource as stored. Compare-and-set with retries.
  absl::StatusOr<StoredResource> MarkDeleting(std::string_view kind, std::string_view name,
                                              absl::Time now);

  // Parses a stored value (for watchers of the bucket).
  static absl::StatusOr<StoredResource> Decode(std::string_view key, std::string_view value,
                                               uint64_t kv_revision);

 private:
  bus::KvStore* kv_;
};

// Deletion with cascade is finalizer-style (docs/design/api.md): the api marks the
// Application deleting, the planner plans the prune of everything it tracks, the applier
// prunes, and whoever finishes (the applier, or the planner when nothing is left) removes the
// application with FinalizeDeletion. A deleting application is never re-applied (Put refuses
// it), minted, rendered, planned or synced again.
bool IsDeleting(const StoredResource& resource);
// kFailedPrecondition naming the resource if it is being deleted.
absl::Status CheckNotDeleting(const StoredResource& resource);

std::string StatusKey(std::string_view application);  // "app.<name>"

// The kind of the resources the stages read (ResourceStore::Get(kApplication, name)).
inline constexpr char kApplication[] = "Application";

class StatusStore {
 public:
  explicit StatusStore(bus::KvStore* kv) : kv_(kv) {}

  // The status of `application`; an empty AppStatus (sync/health UNKNOWN) if none yet.
  absl::StatusOr<v1::AppStatus> Get(std::string_view application) const;

  // Read-modify-write with compare-and-set, retried on lost races. `mutate` may run several
  // times; returning false leaves the entry unchanged. Returns the status as stored.
  // With `uid` (the incarnation the caller works for) the status of a deleted application is
  // never re-created by a late writer: a status created for an application that is gone (or
  // re-created with another uid) is removed again, and a status stamped with another
  // incarnation's uid is left alone (kNotFound in both cases).
  absl::StatusOr<v1::AppStatus> Update(std::string_view application,
                                       const std::function<bool(v1::AppStatus&)>& mutate,
                                       std::string_view uid = {});
  absl::Status Delete(std::string_view application);

 private:
  bus::KvStore* kv_;
};

// Set by the service runtime when one of the application's work items is dead-lettered;
// cleared by the next generation the planner plans.
inline constexpr char kDeadLetteredCondition[] = "DeadLettered";
// Set by the planner's drift detection while live objects differ from the applied generation
// (services/planner/drift_detector.h); cleared by the next generation the planner plans.
inline constexpr char kDriftedCondition[] = "Drifted";

// Sets (or replaces) the condition of `type` on `status`, keeping last_transition_time when
// the status value does not change.
void SetCondition(v1::AppStatus& status, std::string_view type, bool value, std::string_view reason,
                  std::string_view message);
// The condition of `type`, or nullptr.
const v1::Condition* FindCondition(const v1::AppStatus& status, std::string_view type);

// One object's outcome in a recorded sync.
struct HistoryObject {
  v1::ObjectRef ref;
  std::string action;  // create, update, delete, none
  std::string result;
  std::string message;
};

struct HistoryEntry {
  std::string sync_id;
  int64_t desired_seq = 0;  // 0 for entries of v1 syncs
  int attempt = 0;
  std::string revision;
  std::string spec_digest;
  bool succeeded = false;
  std::string message;
  std::string initiated_by;
  std::string started_at;   // RFC 3339
  std::string finished_at;  // RFC 3339
  int object_count = 0;
  std::string reason;  // the user's, when given
  std::vector<HistoryObject> objects;
};

inline constexpr int kDefaultHistoryLimit = 20;

class HistoryStore {
 public:
  // Keeps the newest `limit` entries per application (older ones are deleted on Record).
  explicit HistoryStore(bus::KvStore* kv, int limit = kDefaultHistoryLimit)
      : kv_(kv), limit_(limit) {}
  // Records a finished sync (idempotent per sync id), then trims the application's history to
  // the limit. A failed trim is logged, not returned (the entry is recorded).
  absl::Status Record(std::string_view application, const HistoryEntry& entry);
  // Deletes every entry of `application` (its deletion finished).
  absl::Status DeleteAll(std::string_view application);
  // kNotFound if the sync is not recorded.
  absl::StatusOr<HistoryEntry> Get(std::string_view application, std::string_view sync_id) const;
  // Every recorded sync of `application`, oldest first.
  absl::StatusOr<std::vector<HistoryEntry>> List(std::string_view application) const;

 private:
  bus::KvStore* kv_;
  int limit_;
};

// What the repo-poller last resolved for an application, and the application's desired
// generation: the repo-poller is its one writer (compare-and-set), minting desired_seq + 1
// for every reason to sync.
struct SourceRecord {
  std::string revision;     // what the ref resolved to last
  std::string spec_digest;  // the spec it was resolved for
  std::string ref;
  std::string error;
  // The desired generation.
  std::string uid;          // application incarnation the seq belongs to
  int64_t desired_seq = 0;  // last minted; 0 = none yet
  int32_t attempt = 1;
  std::string reason;           // "spec", "revision", "request", "retry", "drift"
  std::string target_revision;  // the commit desired_seq syncs to
  bool emitted = true;          // false between minting and publishing (re-published if so)
  std::string request;          // serialized driftless.v1.SyncRequested of a user's request
  std::string correlation_id;
  // Sync ids of the last kMaxHandledRequests user requests that minted a generation: a
  // redelivered sync.requested (its first delivery's ack lost with a killed replica) is a
  // no-op instead of a second generation that supersedes newer work.
  std::vector<std::string> handled_requests;
  static constexpr size_t kMaxHandledRequests = 32;
  uint64_t kv_revision = 0;  // for Write
};

class SourceStore {
 public:
  explicit SourceStore(bus::KvStore* kv) : kv_(kv) {}
  // nullopt if nothing recorded. kDataLoss for a record that does not decode.
  absl::StatusOr<std::optional<SourceRecord>> Get(std::string_view application) const;
  // Unconditional write.
  absl::Status Put(std::string_view application, const SourceRecord& record);
  // Compare-and-set: creates when `expected_kv_revision` is 0, else updates that revision.
  // kAborted when someone else wrote first. Returns the new kv revision.
  absl::StatusOr<uint64_t> Write(std::string_view application, const SourceRecord& record,
                                 uint64_t expected_kv_revision);
  absl::Status Delete(std::string_view application);

 private:
  bus::KvStore* kv_;
};

// The newest plan.ready of an application that arrived while another worker ran a sync of it
// (bucket pending). Older pending plans coalesce into it.
class PendingStore {
 public:
  explicit PendingStore(bus::KvStore* kv) : kv_(kv) {}
  // Stores `plan` unless a pending plan with a newer (or the same) identity is stored.
  absl::Status Offer(const v1::Event& plan);
  // The pending plan and its kv revision, or nullopt.
  absl::StatusOr<std::optional<std::pair<v1::Event, uint64_t>>> Get(
      std::string_view application) const;
  // Removes the pending plan if it is still the one at `kv_revision` (kAborted otherwise).
  absl::Status Take(std::string_view application, uint64_t kv_revision);
  // Applications with a pending plan.
  absl::StatusOr<std::vector<std::string>> Applications() const;

 private:
  bus::KvStore* kv_;
};

// The repository paths an application's last render read (its source path, Kustomize bases
// and components, value files, a local chart), written by the renderer (bucket readsets), read
// by the poller to tell which applications a commit touches.
struct ReadSetRecord {
  std::string uid;                 // the application incarnation rendered
  std::string revision;            // the commit rendered
  std::vector<std::string> paths;  // repository-relative; "" = the whole repository
};

class ReadSetStore {
 public:
  explicit ReadSetStore(bus::KvStore* kv) : kv_(kv) {}
  // nullopt if nothing recorded (or a record that does not decode: it is only an optimisation).
  absl::StatusOr<std::optional<ReadSetRecord>> Get(std::string_view application) const;
  // Writes unless the stored record is the same.
  absl::Status Put(std::string_view application, const ReadSetRecord& record);
  absl::Status Delete(std::string_view application);

 private:
  bus::KvStore* kv_;
};

// The end of a cascade deletion: removes the Application `application` if it is still the
// deleting incarnation `uid` (a re-created one stays), its status, history, pending plan,
// source, render-inputs and read-set records. OK when already gone.
absl::Status FinalizeDeletion(bus::KvStore* kv, std::string_view application, std::string_view uid);

}  // namespace driftless::service
