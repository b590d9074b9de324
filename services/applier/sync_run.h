// One run of a plan against a cluster: server-side apply wave by wave, prune, and a short
// health assessment. The applier's shell wraps it with the lease, status, history and events.
//
//   SyncRun run(kube, options, event.plan_ready(), app,
//               {.may_write = [&](absl::Duration d) { return keeper.Check(d); },
//                .superseded = [&] { return NewerPending(); }});
//   absl::Status s = run.Run(manifests, /*stale=*/false);
//   if (absl::IsAborted(s)) { /* lease lost: make no further write of any kind */ }
//   if (run.failed()) ... run.error(), run.transient_failure() ...
//
// Fencing and preemption are the caller's, through SyncHooks: may_write is asked before every
// cluster request with that request's deadline, superseded at every wave boundary (a run is
// never stopped mid-wave). Transient cluster errors (5xx, timeouts) are retried a few times
// inside the run, then fail the object; the caller decides on a retry of the whole sync.
// Not thread-safe (one run per thread); the KubeClient must be.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/health/health.h"
#include "common/kube/kube_client.h"
#include "common/manifest/manifest.h"
#include "driftless/v1/events.pb.h"

namespace driftless::applier {

namespace v1 = ::driftless::v1;

struct SyncRunOptions {
  int apply_attempts = 3;  // per object, for transient errors
  absl::Duration retry_backoff = absl::Milliseconds(200);
  // The deadline of one cluster request (what may_write is asked for).
  absl::Duration request_timeout = absl::Seconds(10);
  // How long a wave waits for health before the next wave is applied.
  absl::Duration wave_health_timeout = absl::Seconds(60);
  // How long the run itself waits for the final health: objects still progressing after it
  // are followed by health.check work items, not by a waiting worker.
  absl::Duration inline_health_wait = absl::Milliseconds(500);
};

struct SyncHooks {
  std::function<absl::Status(absl::Duration deadline)> may_write;
  std::function<bool()> superseded;
};

// One object of the plan as the run goes.
struct SyncEntry {
  v1::PlannedObject planned;
  std::string key;
  const manifest::Json* desired = nullptr;  // for applies
  std::string result;  // "applied", "unchanged", "pruned", "failed", "" = not done
  std::string message;
  std::optional<manifest::Json> live;  // last seen live object (apply response or GET)
  health::Health health{health::HealthCode::kUnknown, ""};
  bool in_inventory() const { return planned.action() != v1::ACTION_DELETE; }
};

class SyncRun {
 public:
  // Nothing is owned; all must outlive the run.
  SyncRun(kube::KubeClient* kube, const SyncRunOptions& options, const v1::PlanReady& plan,
          std::string application, SyncHooks hooks);

  // Applies and prunes `manifests` (the plan's objects). `stale`: the plan was computed before
  // an earlier sync finished, so objects planned as unchanged are applied too. Returns
  // kAborted when may_write refused (the outcome is then partial and must not be recorded);
  // OK otherwise, with the outcome in the accessors.
  absl::Status Run(const manifest::Json& manifests, bool stale);

  bool failed() const { return failed_; }
  // The failure is worth a retry (every failed object failed with a transient error).
  bool transient_failure() const { return failed_ && all_failures_transient_; }
  // Stopped at a wave boundary for a newer desired generation.
  bool superseded() const { return superseded_; }
  const std::string& error() const { return error_; }
  const std::vector<SyncEntry>& entries() const { return entries_; }
  // When the applies and prunes were done (before the final health wait).
  absl::Time applied_at() const { return applied_at_; }

  health::HealthCode AppHealth() const;
  // "Deployment web/api is Progressing: <message>; ..." of the unhealthy objects.
  std::string HealthSummary() const;
  // Objects of the inventory whose health has not settled (to follow with health checks).
  std::vector<v1::ObjectRef> Unsettled() const;

 private:
  void Fail(SyncEntry& e, const absl::Status& status);
  absl::StatusOr<manifest::Json> ApplyWithRetries(const manifest::Json& object);
  absl::Status DeleteWithRetries(const v1::ObjectRef& ref);
  // Assesses entries [from, to) of the inventory, polling the unsettled ones until all settle
  // or `wait` passes. kAborted from may_write.
  absl::Status WaitHealthy(size_t from, size_t to, absl::Duration wait);

  kube::KubeClient* kube_;
  const SyncRunOptions& options_;
  const v1::PlanReady& plan_;
  std::string app_;
  SyncHooks hooks_;
  std::vector<SyncEntry> entries_;
  bool failed_ = false;
  bool all_failures_transient_ = true;
  bool superseded_ = false;
  std::string error_;
  absl::Status fence_;  // the first refusal of may_write: the run stops at once
  absl::Time applied_at_ = absl::Now();
};

// True for settled health (Healthy, Degraded, Suspended): nothing more to wait for.
bool Settled(health::HealthCode code);

}  // namespace driftless::applier
