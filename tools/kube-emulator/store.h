// The object store of the emulator: Kubernetes API semantics without HTTP.
//
// Holds every object in memory (shared, immutable JSON values with their JSON text computed
// once), one cluster-wide resourceVersion counter bumped only by real changes,
// uid/creationTimestamp/generation bookkeeping, namespaces (must exist; deleting one deletes
// its contents), finalizers, ownerReference garbage collection (Background/Foreground/Orphan),
// dry runs, label/field selectors, list pagination, a bounded watch history, and PATCH/apply
// through common/merge (managedFields are recorded on every write that names a field manager).
//
// Indexes keep the cost of a request independent of the size of the cluster: objects are kept
// per resource type in a map ordered by "namespace/name" (Get is O(log n); a List in one
// namespace visits that namespace's range only), every label key=value maps to the objects
// carrying it (a List with an equality or `in` label selector visits the matching objects
// only, in any namespace), owner uids map to their dependents (garbage collection does not
// scan), and namespaces count their contents.
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
// Thread-safety: every public method is safe for concurrent use. One std::shared_mutex guards
// the store: reads (Get, GetText, List, ListText, ListShared, Objects, Watch, Watcher::Next,
// ResourceVersion, ObjectCount, IsPinned, ChangedSince, Dump, TakeSnapshot) hold it shared and
// run in parallel; writes hold it exclusively and are serialized. Objects handed out
// (shared_ptr) are immutable and stay valid after later writes. Watchers wait on a condition
// variable; change listeners are called under the write lock.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <shared_mutex>
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

// A stored object: immutable once stored, shared by the store, the watch history, lists and
// the persistence log, with its compact JSON text computed once, on first use.
// Thread-safety: safe for concurrent use.
class StoredObject {
 public:
  explicit StoredObject(Json object) : object_(std::move(object)) {}
  StoredObject(const StoredObject&) = delete;
  StoredObject& operator=(const StoredObject&) = delete;

  const Json& object() const { return object_; }
  // object().dump(), computed on the first call.
  const std::string& Text() const;

 private:
  const Json object_;
  mutable std::once_flag text_once_;
  mutable std::string text_;
};

// One committed change, for persistence (Store::TakeChanges): the object as stored, or a
// deletion (object null).
struct StoreChange {
  long long rv = 0;                            // the resourceVersion this change produced
  unsigned long long uid_counter = 0;          // the uid counter after it
  std::string store_key;                       // "apps/deployments"
  std::string key;                             // "namespace/name" ("/name" when cluster-scoped)
  std::shared_ptr<const StoredObject> object;  // null: deleted
};

// Every object at one resourceVersion (Store::TakeSnapshot). CustomResourceDefinitions come
// first so that loading registers them before their custom resources.
struct StoreSnapshot {
  long long rv = 0;
  unsigned long long uid_counter = 0;
  std::vector<std::pair<std::string, std::shared_ptr<const StoredObject>>> objects;  // store key
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
  // Get and List as JSON text (the body of the API's answer), built from the stored objects'
  // cached text without copying JSON values: what the HTTP shell sends. Same errors.
  absl::StatusOr<std::string> GetText(const ResourceType& rt, std::string_view ns,
                                      std::string_view name);
  absl::StatusOr<std::string> ListText(const ResourceType& rt, std::string_view ns,
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

  // Calls `listener` after every committed change (create, update, delete, status write),
  // under the store's write lock: it must be quick (set a flag, notify a condition variable)
  // and must not call the store. Returns an id for RemoveChangeListener.
  int AddChangeListener(std::function<void()> listener);
  // After it returns, the listener is not running and will not be called again.
  void RemoveChangeListener(int id);

  // --- Persistence (state_file.h) ---
  // All objects and the counters as one JSON value, and back.
  Json Dump() const;
  // Replaces the contents with a Dump() value; re-registers CRDs. Errors: kInvalidArgument.
  absl::Status Load(const Json& dump);
  // From now on, keep every committed change for TakeChanges (off by default: nothing kept).
  void RecordChanges();
  // The changes committed since the last TakeChanges/TakeSnapshot, oldest first; clears them.
  std::vector<StoreChange> TakeChanges();
  // Every object (shared pointers, no copies) and the counters; clears the recorded changes,
  // which the snapshot covers. Atomic with respect to writes.
  StoreSnapshot TakeSnapshot();
  // Re-applies a persisted change on top of a loaded snapshot: puts or erases the object and
  // moves resourceVersion and the uid counter forward (no validation, no watch events, CRDs
  // (un)registered). A change at or below ResourceVersion() is already in the store and is
  // skipped. Errors: kInvalidArgument for an empty store key or a key that does not match
  // the object's namespace/name.
  absl::Status Restore(const StoreChange& change);

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
  using Stored = std::shared_ptr<const StoredObject>;
  using ObjectMap = std::map<std::string, Stored>;  // "ns/name" ->
  // The objects of one store key and their label index.
  struct TypeObjects {
    ObjectMap by_key;
    // label key -> label value -> keys of the objects carrying it (ordered like by_key, so
    // that a namespace is a range and continue tokens work).
    std::map<std::string, std::map<std::string, std::set<std::string>>> by_label;
  };
  // Objects a list may return, in key order: `visit(key, object)` returns false to stop.
  using Visitor = std::function<bool(const std::string&, const Stored&)>;

  static std::string Key(std::string_view ns, std::string_view name) {
    return std::string(ns) + "/" + std::string(name);
  }
  std::string Now() const;

  // Visits the candidates of a list in key order after `start` (exclusive; "" = from the
  // first), among the keys beginning with `prefix` ("ns/", or "" for all): only `exact_key`
  // when given (a metadata.name field selector), else the label index of the most selective
  // equality or `in` requirement, else the whole range. The caller checks the selectors.
  void ScanLocked(const TypeObjects& objs, const std::string& prefix, const std::string* exact_key,
                  const LabelSelector& labels, const std::string& start,
                  const Visitor& visit) const;
  // The objects a list answers (after `start`, at most `limit` when > 0) and the key to
  // continue after ("" when complete).
  void SelectLocked(const ResourceType& rt, std::string_view ns, const LabelSelector& labels,
                    const FieldSelector& fields, const std::string& start, long long limit,
                    std::vector<Stored>* out, std::string* continue_after) const;
  // What a list answers: the objects, the resourceVersion it was taken at, and the continue
  // token ("" when complete).
  struct Selection {
    std::vector<Stored> objects;
    long long rv = 0;
    std::string continue_token;
  };
  // Parses the options, selects under a shared lock. Errors: BadRequest for bad selectors or
  // continue tokens.
  absl::StatusOr<Selection> Select(const ResourceType& rt, std::string_view ns,
                                   const ListOptions& options);
  // (store key, key) of every namespaced object in `ns`.
  std::vector<std::pair<std::string, std::string>> NamespaceContentsLocked(
      const std::string& ns) const;
  const TypeObjects* TypeLocked(const std::string& store_key) const;
  Stored FindLocked(const std::string& store_key, const std::string& key) const;
  // The only writers of objects_: keep every index in step.
  void PutLocked(const std::string& store_key, const std::string& key, Stored object);
  void EraseLocked(const std::string& store_key, const std::string& key);
  void IndexLocked(TypeObjects& objs, const std::string& store_key, const std::string& key,
                   const Json& object, bool add);

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
  Json CommitLocked(const ResourceType& rt, const std::string& key, Stored prev, Json next);
  void RemoveLocked(const ResourceType& rt, const std::string& key, const std::string& propagation);
  // Appends to the watch history and the recorded changes (`stored` null for DELETED), wakes
  // watchers, calls the change listeners.
  void RecordLocked(const std::string& type, const std::string& store_key, const std::string& key,
                    std::shared_ptr<const Json> obj, std::shared_ptr<const Json> prev,
                    Stored stored);
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
  mutable std::shared_mutex mu_;
  std::condition_variable_any cv_;  // watchers, with a shared lock on mu_
  bool closed_ = false;
  long long rv_ = 0;
  unsigned long long uid_counter_ = 0;
  size_t object_count_ = 0;
  std::unordered_map<std::string, TypeObjects> objects_;  // store key ->
  // owner uid -> (store key, key) of the objects naming it in ownerReferences.
  std::unordered_map<std::string, std::set<std::pair<std::string, std::string>>> dependents_;
  std::unordered_map<std::string, size_t> namespace_contents_;  // namespace -> objects in it
  std::set<std::string> terminating_;  // namespaces with a deletionTimestamp
  std::deque<Event> history_;
  std::set<std::string> pinned_;  // store_key + "|" + object key
  std::map<int, std::function<void()>> listeners_;
  int next_listener_ = 0;
  bool record_changes_ = false;
  // Recorded changes; written under the exclusive lock, taken under a shared one.
  std::mutex changes_mu_;
  std::vector<StoreChange> changes_;
};

}  // namespace driftless::kube_emulator
