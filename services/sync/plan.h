// The sync core's plan (used by the planner): from rendered objects and what the cluster
// holds, decide what a sync does — which objects to create, update or prune, in which order.
//
//   DL_ASSIGN_OR_RETURN(auto desired, PrepareDesired(rendered, prepare_options));
//   ... GET each desired object and list the tracked ones (the shell does the I/O) ...
//   DL_ASSIGN_OR_RETURN(Plan plan, BuildPlan(desired, live_by_key, tracked, plan_options));
//
// Pure and thread-safe.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/manifest/manifest.h"
#include "common/status/status.h"
#include "services/sync/diff.h"
#include "services/sync/order.h"

namespace driftless::sync {

// Set on every object driftless applies; its value is the application's name. Objects that
// carry it are the application's inventory (what pruning considers).
inline constexpr std::string_view kTrackingAnnotation = "driftless.dev/application";
// The same name as a label (DESIGN §1: what live-state watches select on), set when the name
// is a valid label value (at most 63 characters); the annotation alone decides ownership.
inline constexpr std::string_view kTrackingLabel = "driftless.dev/application";
// "Prune=false" on an object (or Argo CD's argocd.argoproj.io/sync-options) protects it from
// pruning; "CreateOnly=true" creates it when missing and never updates it (helm's crds/
// CRDs under the default CRD policy: an existing one counts as in sync).
inline constexpr std::string_view kSyncOptionsAnnotation = "driftless.dev/sync-options";

// Whether objects of a kind are namespaced, from discovery; nullopt when the kind is unknown
// to the cluster.
using ScopeLookup =
    std::function<std::optional<bool>(std::string_view api_version, std::string_view kind)>;

struct PrepareOptions {
  std::string application;
  std::string destination_namespace;  // may be empty: objects must then carry their own
  bool create_namespace = false;      // add the destination Namespace when not rendered
  ScopeLookup is_namespaced;
  // Offline (no cluster to ask): a kind neither is_namespaced nor a CRD of the set knows is
  // taken as namespaced after this is told about it, instead of an error.
  std::function<void(std::string_view api_version, std::string_view kind)> on_unknown_scope;
};

// The scope of the kinds Kubernetes 1.32 serves itself (core and k8s.io groups): false for the
// cluster-scoped ones, true for the rest of those groups; nullopt for any other group (a
// CRD's). For renders without a cluster.
std::optional<bool> BuiltInScope(std::string_view api_version, std::string_view kind);

// Prepares rendered objects for apply: hooks a sync does not apply are left out (Helm's
// test, rollback and delete hooks; hooks with metadata.generateName); namespaced objects without a
// namespace get the destination namespace; cluster-scoped objects must not carry one; the tracking
// annotation and label are set; Secret stringData is folded into base64 data (as the API server
// stores it); CustomResourceDefinitions in the set define the scope of their kinds. With
// create_namespace, a Namespace object for the destination is added when not rendered
// (protected from pruning).
// Errors: kInvalidArgument naming the object: unknown kind (no CRD in the cluster or the set),
// namespaced object without a namespace and no destination namespace, cluster-scoped object
// with a namespace.
absl::StatusOr<std::vector<manifest::Json>> PrepareDesired(std::vector<manifest::Json> objects,
                                                           const PrepareOptions& options);

enum class Action { kNone, kCreate, kUpdate, kDelete };
std::string_view ActionName(Action action);

struct PlanOptions {
  std::string application;
  bool prune = false;
  bool apply_out_of_sync_only = false;
  // Selective sync: object keys (manifest::ObjectKey) to consider; empty = all.
  std::vector<std::string> only;
  DiffOptions diff;
};

struct PlanItem {
  std::string key;        // manifest::ObjectKey
  manifest::Json object;  // desired object (live object for kDelete)
  Action action = Action::kNone;
  OrderKey order;
  ObjectDiff diff;
  bool requires_pruning = false;  // in the inventory, not in git, and prune is off/protected
};

struct Plan {
  std::vector<PlanItem> items;  // apply order; deletions last, in reverse order
  bool in_sync = true;          // nothing to create, update or prune
  int creates = 0, updates = 0, deletes = 0, unchanged = 0;
};

// `live` maps object keys of the desired objects to what the cluster holds (missing key or
// null = absent). `tracked` are live objects carrying the tracking annotation with this
// application's name (the inventory). Errors: kFailedPrecondition when a desired object
// exists and is tracked by another application (names both); diff errors.
absl::StatusOr<Plan> BuildPlan(const std::vector<manifest::Json>& desired,
                               const std::map<std::string, manifest::Json>& live,
                               const std::vector<manifest::Json>& tracked,
                               const PlanOptions& options);

}  // namespace driftless::sync
