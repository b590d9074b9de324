// KubeClient: how every driftless service talks to a Kubernetes cluster.
//
// The planner reads live objects (Get, List); the applier applies, deletes and watches.
// Objects are manifest::Json trees exactly as the API server returns them.
//
//   std::unique_ptr<KubeClient> kube = ...;   // CurlKubeClient in production
//   DL_ASSIGN_OR_RETURN(Json live, kube->Apply(desired, {.field_manager = "driftless"}));
//   DL_ASSIGN_OR_RETURN(ListResult pods,
//                       kube->List({.api_version = "v1", .kind = "Pod", .namespace_ = "web",
//                                   .label_selector = "app=web"}));
//
// Errors (see kube_error.h for the full mapping and GetKubeError() for details): kNotFound,
// kAlreadyExists, kAborted (409 Conflict; SSA field conflicts via ApplyConflicts()),
// kInvalidArgument (422 Invalid, bad input), kOutOfRange (410 Gone / Expired: the
// resourceVersion or continue token is too old; relist), kUnauthenticated (401),
// kPermissionDenied (403), kUnavailable (connection refused, 429/503 after the internal
// retries), kDeadlineExceeded (timeouts). Messages name the verb, resource and object:
// "apply apps/v1 Deployment guestbook/web: ...".
//
// Thread-safety: implementations are safe for concurrent use by many threads.
#pragma once

#include <functional>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

#include "absl/time/time.h"
#include "common/manifest/manifest.h"
#include "common/status/status.h"

namespace driftless::kube {

using manifest::Json;

// One resource type the server serves, as discovery reports it.
struct ResourceInfo {
  std::string group;     // "" for the core group
  std::string version;   // "v1"
  std::string kind;      // "Deployment"
  std::string resource;  // plural, lower case: "deployments"
  bool namespaced = false;
  std::vector<std::string> verbs;  // may be empty when the server does not say

  // "apps/v1" or "v1".
  std::string ApiVersion() const;
  friend bool operator==(const ResourceInfo&, const ResourceInfo&) = default;
};

// Names one object (or, with an empty name, a collection).
struct ObjectRef {
  std::string api_version;  // "apps/v1", "v1"
  std::string kind;         // "Deployment"
  std::string namespace_;   // empty for cluster-scoped kinds
  std::string name;

  // Reads apiVersion, kind, metadata.namespace and metadata.name of an object.
  static ObjectRef Of(const Json& object);
  // "apps/v1 Deployment guestbook/web", "v1 Namespace web".
  std::string ToString() const;
};

struct ListRequest {
  std::string api_version;
  std::string kind;
  std::string namespace_;      // empty: all namespaces (or a cluster-scoped kind)
  std::string label_selector;  // "app=web,tier!=db"
  std::string field_selector;  // "metadata.name=web"
  // Page size per request (`limit`); pages are followed with `continue` internally until
  // the list is complete. 0 = no limit (one response).
  int page_size = 500;
};

struct ListResult {
  // Every item carries apiVersion and kind (the server leaves them off list items).
  std::vector<Json> items;
  // The collection's resourceVersion: start a Watch from here to see every later change.
  std::string resource_version;
};

struct WatchEvent {
  enum class Type { kAdded, kModified, kDeleted, kBookmark };
  Type type = Type::kAdded;
  // The object; for kBookmark only apiVersion, kind and metadata.resourceVersion are set.
  Json object;
};

// Returns false to end the watch (Watch then returns the last resourceVersion).
using WatchCallback = std::function<bool(const WatchEvent&)>;

struct WatchRequest {
  std::string api_version;
  std::string kind;
  std::string namespace_;  // empty: all namespaces
  std::string label_selector;
  std::string field_selector;
  // Start after this version (from ListResult or a previous event); empty: "most recent",
  // which sends synthetic ADDED events for all existing objects first.
  std::string resource_version;
  bool allow_bookmarks = true;
  // Server-side duration of the watch (`timeoutSeconds`); 0: the server's default.
  int timeout_seconds = 0;
  // Request stop from another thread; honoured within about a second (the transfer is
  // checked on every progress tick, at least once per second while idle).
  std::stop_token stop;
};

enum class PropagationPolicy { kDefault, kBackground, kForeground, kOrphan };

struct ApplyOptions {
  std::string field_manager;  // required, e.g. "driftless"
  bool force = false;         // take ownership of conflicting fields
  bool dry_run = false;       // dryRun=All: validate and return the result, persist nothing
};

struct WriteOptions {
  std::string field_manager;  // optional for Create/Update/Patch
  bool dry_run = false;
};

struct DeleteOptions {
  PropagationPolicy propagation_policy = PropagationPolicy::kDefault;
  bool dry_run = false;
  std::optional<int> grace_period_seconds;
  // Preconditions: delete only if the live object still has this uid / resourceVersion
  // (otherwise kAborted, 409 Conflict).
  std::string precondition_uid;
  std::string precondition_resource_version;
};

enum class PatchType { kMerge, kStrategicMerge, kJson };

class KubeClient {
 public:
  virtual ~KubeClient() = default;

  // Every resource type the server serves (subresources excluded). Cached with a TTL;
  // an unknown kind in ResourceFor refreshes the cache once (a CRD may have just been
  // installed).
  virtual absl::StatusOr<std::vector<ResourceInfo>> Discover() = 0;

  // Forgets cached discovery; the next call fetches again.
  virtual void InvalidateDiscovery() = 0;

  // The server's version (GET /version gitVersion): "v1.32.3".
  virtual absl::StatusOr<std::string> ServerVersion() = 0;

  // Maps apiVersion + kind to the REST resource. kNotFound if the server does not serve it
  // (even after refreshing discovery).
  virtual absl::StatusOr<ResourceInfo> ResourceFor(std::string_view api_version,
                                                   std::string_view kind) = 0;

  // The live object. kNotFound if it does not exist.
  virtual absl::StatusOr<Json> Get(const ObjectRef& ref) = 0;

  // All matching objects, following `continue` pages. If a continue token expires mid-way
  // the list restarts once without paging.
  virtual absl::StatusOr<ListResult> List(const ListRequest& request) = 0;

  // Streams changes to `callback` until the callback returns false, `request.stop` is
  // requested, or the server ends the watch (timeoutSeconds). Returns the last
  // resourceVersion seen (events and bookmarks), from which a new Watch resumes.
  // kOutOfRange (with a KubeError, reason "Expired" or "Gone") when the start version is
  // too old: relist and watch from the list's version. kDeadlineExceeded when the stream
  // delivered nothing for the stall timeout. The callback runs on the calling thread.
  virtual absl::StatusOr<std::string> Watch(const WatchRequest& request,
                                            const WatchCallback& callback) = 0;

  // Server-side apply (PATCH application/apply-patch+yaml). `object` needs apiVersion, kind,
  // metadata.name and, for namespaced kinds, metadata.namespace (else kInvalidArgument).
  // Returns the object after apply. Field conflicts: kAborted; see ApplyConflicts().
  virtual absl::StatusOr<Json> Apply(const Json& object, const ApplyOptions& options) = 0;

  // POST. kAlreadyExists if the name is taken.
  virtual absl::StatusOr<Json> Create(const Json& object, const WriteOptions& options) = 0;

  // PUT. With metadata.resourceVersion set, kAborted if the object changed meanwhile.
  virtual absl::StatusOr<Json> Update(const Json& object, const WriteOptions& options) = 0;

  // PATCH with a merge / strategic-merge / JSON patch body.
  virtual absl::StatusOr<Json> Patch(const ObjectRef& ref, PatchType type, const Json& patch,
                                     const WriteOptions& options) = 0;

  // DELETE. kNotFound if it does not exist; kAborted if a precondition failed.
  virtual absl::Status Delete(const ObjectRef& ref, const DeleteOptions& options) = 0;
};

}  // namespace driftless::kube
