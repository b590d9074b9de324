// The applier's shell (docs/design/applier.md, contract §4): the only writer to clusters.
//
// plan.ready (stage apply), identified by (application uid, desired_seq, attempt):
//   1. already in the history (same sync id) → re-publish the result events, Ack;
//      at or below the application's applied watermark (status.applied_seq) → superseded, Ack;
//   2. take the lease "sync.<app>" (holder = "<emitter>/w<worker>": one per worker, never
//      shared). Held by another worker → the plan is offered to the application's pending
//      record (newest wins; older pending plans coalesce into it) and Acked: the holder runs
//      it when its sync ends. Nothing valid is dead-lettered because its application is busy;
//   3. under a LeaseKeeper (renewed in the background at ttl/3; every cluster request and
//      every status/history write first checks that the lease outlives its deadline):
//      "sync.started", SyncRun (apply wave by wave, prune; stops at a wave boundary when a
//      newer plan is pending), status (guarded by the identity: an older result never
//      overwrites a newer one), history (bounded), "sync.succeeded"/"sync.failed",
//      "app.status"; a retryable failure queues "sync.retry" for the repo-poller (a new
//      desired generation at the same revision after the policy's backoff); objects still
//      progressing are followed by "health.check" items; then the pending plan, if any.
// health.check (stage apply): re-reads the health of a finished sync's unsettled objects and
//   writes it to the status while the status still belongs to that identity, rescheduling
//   itself with backoff until every object settles or the health timeout passes.
//
// Errors: cluster errors fail the object and the sync (transient ones are retried in the run,
// then by the retry policy); NATS/KV errors Nak the item with backoff; a lost lease stops
// every write at once and the item is Nak'ed (the new holder, or history, decides).
//
// Thread-safe if the KubeClient, KV store, blob store and bus are (they are): each worker
// has its own ApplierService (its own lease holder id).
#pragma once

#include <string>

#include "absl/time/time.h"
#include "common/bus/blob_store.h"
#include "common/bus/event_bus.h"
#include "common/bus/kv_store.h"
#include "common/kube/kube_client.h"
#include "driftless/v1/events.pb.h"
#include "services/applier/sync_run.h"

namespace driftless::bus {
class LeaseKeeper;
}

namespace driftless::applier {

namespace v1 = ::driftless::v1;

struct ApplierOptions {
  std::string emitter;  // Event.emitter; the lease holder is "<emitter>/w<worker>"
  int worker = 0;
  absl::Duration health_timeout = absl::Seconds(60);  // --health-timeout
  // Renewed every ttl/3 while syncing; a crashed holder's lease frees after at most this long.
  // Must exceed the run's request timeout by a margin (writes need that much left).
  absl::Duration lease_ttl = absl::Seconds(30);
  absl::Duration lease_busy_delay = absl::Seconds(2);  // Nak delay for unidentified (v1) plans
  absl::Duration kv_timeout = absl::Seconds(5);        // what a status/history write may take
  int history_limit = 20;                              // --history-limit
  SyncRunOptions run;
  int max_deliver = 5;
};

class ApplierService {
 public:
  // Nothing is owned; everything must outlive the service.
  ApplierService(kube::KubeClient* kube, bus::KvStore* kv, bus::BlobStore* blobs,
                 bus::EventBus* bus, ApplierOptions options);

  bus::Disposition Handle(const v1::Event& event, const bus::Message& message);

  // Runs the pending plans of applications whose lease is free (a safety net for a holder
  // that died between its sync and its pending check). Call periodically.
  void SweepPending();

 private:
  enum class RunResult { kDone, kRetryLater, kLeaseLost };
  bus::Disposition HandlePlan(const v1::Event& event, const bus::Message& message);
  bus::Disposition HandleHealthCheck(const v1::Event& event, const bus::Message& message);
  // Runs `plan` under `keeper`: the whole sync with its records and events.
  RunResult RunPlan(const v1::Event& plan, bus::LeaseKeeper& keeper, bool stale, bool last_delivery,
                    std::string* error);
  // Runs the prune plan of a cascade deletion; once every object is gone, removes the
  // application (FinalizeDeletion). A failed prune leaves it deleting with the failure on its
  // status, retried by redelivery (and re-driven by deleting it again).
  RunResult RunDeletion(const v1::Event& plan, bus::LeaseKeeper& keeper, bool last_delivery,
                        std::string* error);
  // Runs the application's pending plans while this worker holds (or can take) its lease.
  // `first`, when set, runs before the pending ones.
  RunResult Drain(const std::string& application, const v1::Event* first, bool last_delivery,
                  std::string* error);
  // Re-publishes the result events of a finished sync.
  absl::Status Republish(const v1::Event& plan_event, bool succeeded, const std::string& message,
                         const std::string& sync_id, const std::string& initiated_by);
  std::string holder() const;

  kube::KubeClient* kube_;
  bus::KvStore* kv_;
  bus::BlobStore* blobs_;
  bus::EventBus* bus_;
  ApplierOptions options_;
};

}  // namespace driftless::applier
