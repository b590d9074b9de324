// The applier's shell (docs/design/applier.md, contract §4): the only writer to clusters.
// For each "plan.ready" on stage apply:
//
//   1. already in the history (application, sync id) → re-publish the result events, Ack;
//   2. take the lease "sync.<app>" (bucket leases, holder = the emitter, TTL renewed while
//      syncing); held by another holder → Nak with a delay;
//   3. broadcast "sync.started";
//   4. server-side apply (field manager "driftless", force) each object with an action, in
//      plan order, wave by wave, waiting for a wave's health before the next one; prune
//      (DELETE) the ACTION_DELETE objects when the plan prunes; wait for the health of the
//      application's objects (checked at once from the apply responses, then polled at
//      short intervals) up to the health timeout (Progressing at the deadline: the sync
//      succeeded, health Progressing);
//   5. update the status (fields the applier owns), record the history entry, broadcast
//      "sync.succeeded" / "sync.failed" (per-object results) and "app.status"; release the
//      lease.
//
// Errors: 409/422 and other permanent API errors fail the object and the sync (Ack);
// 5xx/timeouts are retried inside the sync, then the work item is Nak'ed with backoff (the
// redelivery resumes: applies are idempotent); on the last delivery the sync fails instead.
//
// Thread-safe if the KubeClient, KV store, blob store and bus are (they are).
#pragma once

#include <string>

#include "absl/time/time.h"
#include "common/bus/blob_store.h"
#include "common/bus/event_bus.h"
#include "common/bus/kv_store.h"
#include "common/kube/kube_client.h"
#include "driftless/v1/events.pb.h"

namespace driftless::applier {

namespace v1 = ::driftless::v1;

struct ApplierOptions {
  std::string emitter;                               // Event.emitter and lease holder
  absl::Duration health_timeout = absl::Seconds(60);  // --health-timeout
  // Renewed every ttl/3 while syncing; a crashed holder's lease frees after at most this long
  // (the work item comes back after the stage's ack wait, 10 s).
  absl::Duration lease_ttl = absl::Seconds(15);
  absl::Duration lease_busy_delay = absl::Seconds(2);  // minimum Nak delay when the lease is busy
  absl::Duration lease_wait = absl::Seconds(5);        // waited in the handler before a Nak
  int apply_attempts = 3;                              // per object, for transient errors
  absl::Duration retry_backoff = absl::Milliseconds(200);
  int max_deliver = 5;  // the bus's delivery limit: the last delivery fails instead of Nak
};

class ApplierService {
 public:
  // Nothing is owned; everything must outlive the service.
  ApplierService(kube::KubeClient* kube, bus::KvStore* kv, bus::BlobStore* blobs,
                 bus::EventBus* bus, ApplierOptions options);

  bus::Disposition Handle(const v1::Event& event, const bus::Message& message);

 private:
  kube::KubeClient* kube_;
  bus::KvStore* kv_;
  bus::BlobStore* blobs_;
  bus::EventBus* bus_;
  ApplierOptions options_;
};

}  // namespace driftless::applier
