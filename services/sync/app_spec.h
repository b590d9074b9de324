// What the planner and the applier read from an Application document (DESIGN.md §2):
// destination, sync policy, sync options and ignoreDifferences. The document was validated
// by the api when it was stored; fields of an unexpected type read as absent.
//
// Pure and thread-safe.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "common/manifest/manifest.h"
#include "services/sync/diff.h"

namespace driftless::sync {

// The cluster name that means "the cluster of --kubeconfig".
inline constexpr char kInCluster[] = "in-cluster";

// spec.syncPolicy.retry: how failed syncs are tried again (a new desired generation, same
// revision, attempt + 1, after Backoff).
struct RetryPolicy {
  int limit = 0;  // attempts after the first; < 0: unlimited
  std::chrono::milliseconds duration{std::chrono::seconds(5)};
  double factor = 2;
  std::chrono::milliseconds max_duration{std::chrono::minutes(3)};
  bool explicit_policy = false;  // spec.syncPolicy.retry present
};

struct AppSpec {
  std::string name;
  std::string cluster = kInCluster;  // spec.destination.cluster
  std::string ns;                    // spec.destination.namespace (may be empty)
  bool automated = false;            // spec.syncPolicy.automated present
  bool auto_prune = false;           // spec.syncPolicy.automated.prune
  bool self_heal = false;
  bool suspend = false;           // spec.syncPolicy.suspend
  bool create_namespace = false;  // syncOptions CreateNamespace=true
  bool apply_out_of_sync_only = false;
  bool prune_last = false;
  // syncOptions ForceConflicts=false: server-side apply conflicts with other managers fail
  // the object (naming manager and field) instead of taking the fields over.
  bool force_conflicts = true;
  std::string prune_propagation;   // "", "foreground", "background", "orphan"
  std::vector<IgnoreRule> ignore;  // spec.ignoreDifferences
  // Without spec.syncPolicy.retry, automated applications retry failures the cluster reports
  // as transient (5xx, timeouts) up to kDefaultRetryLimit times; with it, every failure is
  // retried up to its limit (like Argo CD). Manual applications retry only when it is set.
  RetryPolicy retry;
};

inline constexpr int kDefaultRetryLimit = 5;

// The delay before attempt `next_attempt` (2, 3, ...): duration * factor^(next_attempt - 2),
// at most max_duration.
std::chrono::milliseconds RetryBackoff(const RetryPolicy& policy, int next_attempt);

// Whether a sync that failed on attempt `attempt` is tried again. `transient`: the failure
// is one the cluster may not repeat (5xx, timeouts, conflicts of a moving object).
bool ShouldRetry(const AppSpec& spec, int attempt, bool transient);

// Reads `application` (the whole stored document). Never fails: a document without a spec
// yields the defaults with the name.
AppSpec ParseAppSpec(const manifest::Json& application);

}  // namespace driftless::sync
