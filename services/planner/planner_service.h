// The planner's shell (docs/design/planner.md, contract §3): for each work item on stage
// `plan` it reads the application, the live objects of its destination and plans a sync.
//
//   PlannerService planner(kube.get(), &rt.kv(), &rt.blobs(), &rt.bus(), rt.emitter());
//   auto sub = rt.ConsumeStage(service::kStagePlan, [&](const v1::Event& e, const bus::Message& m)
//   {
//     return planner.Handle(e, m);
//   });
//
// Work items:
//  - "app.rendered": DecodeManifests, PrepareDesired (scope from the cluster's discovery,
//    cached by the client), the live and tracked objects from the live cache (or one List per
//    (kind, namespace): kinds of the rendered objects plus the kinds of status.resources, for
//    pruning), BuildPlan; the desired objects are stored as a blob (status.desired_digest)
//    for drift detection. Writes the status fields the planner owns (sync, resources, spec_digest,
//    observed_generation, last_attempted_revision, reconciled_at, Stalled, health when in
//    sync) and emits "plan.ready" on stage apply when the application is out of sync and
//    automated (not suspended), or when a user requested the sync (always, even in sync).
//  - "app.changed" DELETED (cascade): prunes every tracked object of the deleted
//    application (destination from AppChanged.object_json) through a prune-all plan.
//  - "render.inputs_requested" (from the renderer): resolves the application's valuesFrom /
//    substituteFrom ConfigMaps and Secrets into its render-inputs record
//    (services/common/render_inputs.h); the renderer retries its render meanwhile.
// RefreshInputs (every --render-inputs-interval, from main) records the cluster's version and
// API list and re-resolves every application's render inputs: a ConfigMap or Secret whose data
// changed mints a new desired generation (an automated sync.requested to the poller), so the
// application re-renders with it.
// Dispositions: Ack when handled (including errors reported through status and
// "sync.failed"), Nak with backoff when the cluster or NATS is unreachable.
//
// Thread-safe if the KubeClient, KV store, blob store and bus are (they are).
#pragma once

#include <string>

#include "common/bus/blob_store.h"
#include "common/bus/event_bus.h"
#include "common/bus/kv_store.h"
#include "common/kube/kube_client.h"
#include "driftless/v1/events.pb.h"
#include "services/common/state.h"
#include "services/planner/live_cache.h"

namespace driftless::planner {

namespace v1 = ::driftless::v1;

// "auto-" + the first 16 hex digits of sha256(app/revision/render_digest/spec_digest).
std::string AutomatedSyncId(std::string_view application, std::string_view revision,
                            std::string_view render_digest, std::string_view spec_digest);

class PlannerService {
 public:
  // Nothing is owned; everything must outlive the service.
  // With `cache` (the drift detector's), live objects are read from it for every kind it has
  // listed (a plan starts watching the kinds it reads); without, or for kinds it is still
  // listing, from the cluster.
  PlannerService(kube::KubeClient* kube, bus::KvStore* kv, bus::BlobStore* blobs,
                 bus::EventBus* bus, std::string emitter, LiveCache* cache = nullptr);

  bus::Disposition Handle(const v1::Event& event, const bus::Message& message);

  // `driftless app diff`: the application's live objects against the desired objects of its
  // last planned generation (status.desired_digest), as a sync would change them; Secret
  // values masked. Errors in the reply (error, error_code): unknown application, not planned
  // yet, the cluster's.
  v1::DiffReply Diff(const std::string& application);

  // One pass over the cluster facts and every application's render inputs (see above).
  // Errors: the cluster or KV unreachable (the pass stops; the next one starts over).
  absl::Status RefreshInputs();

 private:
  // Resolves `application`'s render inputs and records them (answering the user's sync
  // `request`, when not empty); with `mint`, a change of the data behind the same references
  // asks for a new desired generation.
  absl::Status ResolveInputs(const service::StoredResource& application, bool mint,
                             const std::string& request = "");
  // The application's tracked objects (the inventory) and, in `live`, every object read by
  // key: kinds of `desired` and of `previous`.resources (for pruning), from the cache when it
  // holds every kind (desired objects it does not hold are read from the cluster), else by
  // ListTracked over the namespaces involved plus `destination`.
  absl::StatusOr<std::vector<manifest::Json>> ReadLive(const std::string& app,
                                                       const std::string& destination,
                                                       const std::vector<manifest::Json>& desired,
                                                       const v1::AppStatus& previous,
                                                       std::map<std::string, manifest::Json>& live);
  bus::Disposition HandleRendered(const v1::Event& event, const bus::Message& message);
  bus::Disposition HandleDeleted(const v1::Event& event, const bus::Message& message);
  bus::Disposition HandleInputsRequested(const v1::Event& event, const bus::Message& message);
  // Reports a planning error: Stalled condition + message on the status, "sync.failed"
  // broadcast. Returns Ack (or Nak when even that cannot be written).
  bus::Disposition Fail(const v1::Event& event, std::string_view reason, const std::string& message,
                        std::string_view digest, const bus::Message& delivery);
  bus::Disposition Retry(const v1::Event& event, const bus::Message& message,
                         const absl::Status& status);

  kube::KubeClient* kube_;
  bus::KvStore* kv_;
  bus::BlobStore* blobs_;
  bus::EventBus* bus_;
  std::string emitter_;
  LiveCache* cache_;
};

}  // namespace driftless::planner
