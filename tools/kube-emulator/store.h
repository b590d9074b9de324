// The object store of the emulator: Kubernetes API semantics without HTTP.
//
// Holds every object in memory (shared, immutable JSON values), one cluster-wide
// resourceVersion counter bumped only by real changes, uid/creationTimestamp/generation
// bookkeeping, namespaces (must exist; deleting one deletes its contents), finalizers,
// ownerReference garbage collection (Background/Foreground/Orphan), dry runs, label/field
// selectors, list pagination, a bounded watch history, and PATCH/apply through
// common/merge (managedFields are recorded on every write that names a field manager).
//
// In-process use (benchmarks, tests):
//   Registry registry;
//   RealClock clock;
//   Store store(&registry, &clock);
//   auto rt = registry.Find("apps", "v1", "deployments");
//   DL_ASSIGN_OR_RETURN(Json obj, store.Apply(*rt, "default", "web", desired, "bench", false));
//   DL_ASSIGN_OR_RETURN(Json list, store.List(*rt, "default", {}));
//
// Errors are absl::Status values carrying the Kubernetes Status object (api_error.h):
// NotFound, AlreadyExists, Conflict (stale resourceVersion, apply conflicts), Invalid,
// BadRequest (malformed patches, strict decoding), Forbidden (terminating namespace),
// UnsupportedMediaType (strategic merge patch on a custom resource), Expired (410).
//
// Thread-safety: every public method is safe for concurrent use (one mutex guards the
// store; watchers wait on a condition variable).
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"
#include "tools/kube-emulator/clock.h"
#include "tools/kube-emulator/resources.h"
#include "tools/kube-emulator/selectors.h"

namespace driftless::kube_emulator {

struct WriteOptions {
  bool dry_run = false;
  std::string field_manager;     // "" records no managedFields entry (except for apply)
  std::string field_validation;  // "Strict" rejects unknown fields; "", "Warn", "Ignore" don't
  std::string subresource;       // "", "status" or "scale"
};

enum class PatchType { kJsonPatch, kMergePatch, kStrategicMergePatch, kApply };

struct DeleteOptions {
  bool dry_run = false;
  std::string propagation;  // "Background" (default), "Foreground" or "Orphan"
  std::string precondition_uid;
  std::string precondition_resource_version;
};

struct ListOptions {
  std::string label_selector;
  std::string field_selector;
  long long limit = 0;
  std::string continue_token;
};

struct WatchEvent {
  std::string type;  // ADDED, MODIFIED, DELETED, BOOKMARK, ERROR
  Json object;
};

struct StoreOptions {
  size_t watch_history = 4096;  // events kept for watch replay
};

class Store;

// A watch stream over one resource type (optionally one namespace) from a resourceVersion.
// Thread-safety: one Watcher is used by one thread at a time.
class Watcher {
 public:
  // Waits up to `timeout` for the next event. Returns nullopt on timeout (the caller may
  // send a bookmark), an ERROR event with a 410 Status when the history no longer reaches
  // back to the watcher's position, and a value with type "" when the store is closing.
  std::optional<WatchEvent> Next(std::chrono::milliseconds timeout);
  // resourceVersion the watcher has reached (for bookmarks).
  long long Position() const { return cursor_; }
  const ResourceType& Type() const { return *rt_; }
  // True while initial ADDED events (or a queued 410) are still to be returned.
  bool HasPending() const { return !pending_.empty(); }

 private:
  friend class Store;
  Store* store_ = nullptr;
  std::shared_ptr<const ResourceType> rt_;
  std::string ns_;  // "" = all namespaces
  LabelSelector labels_;
  FieldSelector fields_;
  long long cursor_ = 0;
  std::deque<WatchEvent> pending_;  // initial ADDED events
};

class Store {
 public:
  // `registry` and `clock` must outlive the store. Creates the namespaces default,
  // kube-system, kube-public and kube-node-lease.
  Store(Registry* registry, const Clock* clock, StoreOptions options = {});
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  Registry& registry() { return *registry_; }

  absl::StatusOr<Json> Create(const ResourceType& rt, std::string_view ns, Json body,
                              const WriteOptions& options);
  // `subresource` "scale" returns an autoscaling/v1 Scale.
  absl::StatusOr<Json> Get(const ResourceType& rt, std::string_view ns, std::string_view name,
                           std::string_view subresource = "");
  // A <Kind>List with metadata.resourceVersion (and metadata.continue when limited).
  absl::StatusOr<Json> List(const ResourceType& rt, std::string_view ns,
                            const ListOptions& options);
  // Like List, but returns the stored objects themselves (shared, immutable, no copies;
  // custom resources keep the apiVersion they were written with). For in-process callers
  // such as benchmarks. Errors: kInvalidArgument-shaped BadRequest for bad selectors.
  absl::StatusOr<std::vector<std::shared_ptr<const Json>>> ListShared(const ResourceType& rt,
                                                                      std::string_view ns,
                                                                      const ListOptions& options);
  // PUT. A non-empty metadata.resourceVersion in `body` must match (else Conflict).
  absl::StatusOr<Json> Update(const ResourceType& rt, std::string_view ns, std::string_view name,
                              Json body, const WriteOptions& options);
  // PATCH in any format; kApply creates the object when missing and requires a manager.
  absl::StatusOr<Json> Patch(const ResourceType& rt, std::string_view ns, std::string_view name,
                             PatchType type, std::string_view body, const WriteOptions& options,
                             bool force);
  // Server-side apply of an already parsed object (the benchmark entry point).
  absl::StatusOr<Json> Apply(const ResourceType& rt, std::string_view ns, std::string_view name,
                             const Json& applied, std::string_view manager, bool force,
                             const WriteOptions& options = {});
  // Returns the deleted object (or the object marked for deletion when finalizers remain).
  absl::StatusOr<Json> Delete(const ResourceType& rt, std::string_view ns, std::string_view name,
                              const DeleteOptions& options);
  absl::StatusOr<Json> DeleteCollection(const ResourceType& rt, std::string_view ns,
                                        const ListOptions& list, const DeleteOptions& options);

  // Starts a watch. `resource_version` "" or "0" first yields ADDED events for the current
  // objects; a number replays later events from history (410 as the first event when too
  // old). Errors: kInvalidArgument for bad selectors or resourceVersion.
  absl::StatusOr<std::unique_ptr<Watcher>> Watch(const ResourceType& rt, std::string_view ns,
                                                 std::string_view resource_version,
                                                 const ListOptions& selectors);

  long long ResourceVersion() const;
  size_t ObjectCount() const;

  // --- Used by the simulated controllers and test hooks ---
  // Every object of a store key (group/plural), as shared immutable values.
  std::vector<std::shared_ptr<const Json>> Objects(std::string_view store_key) const;
  // Replaces .status of an object (no managedFields entry; a no-op does not bump the rv).
  // Errors: NotFound.
  absl::StatusOr<Json> WriteStatus(const ResourceType& rt, std::string_view ns,
                                   std::string_view name, const Json& status);
  // Test hook: force a status and keep controllers away from the object (`pinned`).
  absl::StatusOr<Json> ForceStatus(const ResourceType& rt, std::string_view ns,
                                   std::string_view name, const Json& status);
  bool IsPinned(const ResourceType& rt, std::string_view ns, std::string_view name) const;
  // Removes terminating namespaces whose contents are gone. Returns how many.
  int FinishNamespaceDeletion();
  // Events after `after_rv` (store keys and object keys only), for controllers; returns
  // false when the history no longer reaches back that far.
  bool ChangedSince(long long after_rv, std::vector<std::pair<std::string, std::string>>* out,
                    long long* new_cursor) const;

  // Persistence: all objects and the counter as one JSON value, and back.
  Json Dump() const;
  // Replaces the contents with a Dump() value; re-registers CRDs. Errors: kInvalidArgument.
  absl::Status Load(const Json& dump);

  // Wakes every watcher and makes Next() return end-of-stream.
  void Close();

 private:
  friend class Watcher;
  struct Event {
    long long rv;
    std::string type;
    std::string store_key;
    std::string object_key;
    std::shared_ptr<const Json> object;
    std::shared_ptr<const Json> previous;  // for MODIFIED: the object before
  };
  using ObjectMap = std::map<std::string, std::shared_ptr<const Json>>;  // "ns/name" ->

  static std::string Key(std::string_view ns, std::string_view name) {
    return std::string(ns) + "/" + std::string(name);
  }
  std::string Now() const;

  absl::StatusOr<Json> CreateLocked(const ResourceType& rt, std::string_view ns, Json body,
                                    const WriteOptions& options, bool record_manager);
  absl::StatusOr<Json> UpdateLocked(const ResourceType& rt, std::string_view ns,
                                    std::string_view name, Json body, const WriteOptions& options,
                                    bool check_rv, bool record_manager);
  absl::StatusOr<Json> ApplyLocked(const ResourceType& rt, std::string_view ns,
                                   std::string_view name, const Json& applied,
                                   std::string_view manager, bool force,
                                   const WriteOptions& options);
  absl::StatusOr<Json> DeleteLocked(const ResourceType& rt, std::string_view ns,
                                    std::string_view name, const DeleteOptions& options);
  // Stores `next` (or detects a no-op against `prev`), records history, handles finalizer
  // completion. Returns the stored object.
  Json CommitLocked(const ResourceType& rt, const std::string& key,
                    std::shared_ptr<const Json> prev, Json next);
  void RemoveLocked(const ResourceType& rt, const std::string& key, const std::string& propagation);
  void RecordLocked(const std::string& type, const std::string& store_key, const std::string& key,
                    std::shared_ptr<const Json> obj, std::shared_ptr<const Json> prev);
  void CollectDependentsLocked(const std::string& uid, const std::string& propagation);
  absl::Status CheckNamespaceLocked(const ResourceType& rt, std::string_view ns,
                                    std::string_view name);
  void OnStoredLocked(const ResourceType& rt, const Json& obj, bool deleted);
  std::shared_ptr<const ResourceType> TypeForKeyLocked(const std::string& store_key) const;
  Json ForOutput(const ResourceType& rt, const Json& obj) const;
  Json ToScale(const Json& obj) const;

  Registry* registry_;
  const Clock* clock_;
  StoreOptions options_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool closed_ = false;
  long long rv_ = 0;
  unsigned long long uid_counter_ = 0;
  std::unordered_map<std::string, ObjectMap> objects_;  // store key ->
  std::deque<Event> history_;
  std::set<std::string> pinned_;  // store_key + "|" + object key
};

}  // namespace driftless::kube_emulator
