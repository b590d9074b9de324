// The shape of the event backbone every service shares: stream, subject, consumer and bucket
// names, and Provision(), which creates all of them idempotently. Every service calls
// Provision() at start, so services can start in any order (see docs/design/overview.md).
//
//   work items      driftless.work.<stage>   stream DRIFTLESS_WORK (work queue, 1 GiB, refuses
//                                            new items when full), one durable consumer per
//                                            stage shared by all its replicas
//   broadcasts      driftless.events.<type>  stream DRIFTLESS_EVENTS (limits, 7 days, 1 GiB)
//   dead letters    driftless.dlq.<subject>  stream DRIFTLESS_DLQ (limits, 30 days, 256 MiB)
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/bus/event_bus.h"
#include "common/bus/kv_store.h"

namespace driftless::service {

inline constexpr char kWorkStream[] = "DRIFTLESS_WORK";
inline constexpr char kEventsStream[] = "DRIFTLESS_EVENTS";
inline constexpr char kDeadLetterStream[] = "DRIFTLESS_DLQ";
inline constexpr char kSubjectPrefix[] = "driftless";

// Work stages, each consumed by one durable named "<stage>" on DRIFTLESS_WORK:
//   poll    repo-poller: refresh requests (sync.requested, webhook.push)
//   render  renderer:    source.changed for one application
//   plan    planner:     app.rendered
//   apply   applier:     plan.ready
inline constexpr char kStagePoll[] = "poll";
inline constexpr char kStageRender[] = "render";
inline constexpr char kStagePlan[] = "plan";
inline constexpr char kStageApply[] = "apply";

// Core NATS request/reply (nothing stored), served by a queue group of the answering stage:
//   driftless.rpc.diff  planner (queue "planner"): v1::DiffRequest -> v1::DiffReply
inline constexpr char kDiffSubject[] = "driftless.rpc.diff";
inline constexpr char kPlannerQueue[] = "planner";

// The notifier's durable consumer on DRIFTLESS_EVENTS (every event type).
inline constexpr char kNotifierDurable[] = "notifier";

// KV buckets (docs/design/overview.md, "State of record").
inline constexpr char kResourcesBucket[] = "resources";
inline constexpr char kStatusBucket[] = "status";
inline constexpr char kHistoryBucket[] = "history";
inline constexpr char kSourcesBucket[] = "sources";
inline constexpr char kLeasesBucket[] = "leases";
inline constexpr char kBlobsBucket[] = "blobs";
inline constexpr char kDeliveriesBucket[] = "deliveries";
inline constexpr char kPendingBucket[] = "pending";
inline constexpr char kReadSetsBucket[] = "readsets";
// What renders need from the destination cluster, kept by the planner (render_inputs.h).
inline constexpr char kRenderInputsBucket[] = "renderinputs";
// Live repo-poller replicas (key: replica, refreshed every kMemberTtl / 3, expiring after it):
// each repository has one poll owner among them (rendezvous hashing).
inline constexpr char kPollersBucket[] = "pollers";
inline constexpr absl::Duration kPollerMemberTtl = absl::Seconds(15);

// Stream limits. Work items are small (manifests over kMaxInlineManifestBytes travel as blob
// references) and removed once handled; public events carry no manifests.
inline constexpr int64_t kWorkStreamMaxBytes = int64_t{1} << 30;
inline constexpr int64_t kEventsStreamMaxBytes = int64_t{1} << 30;
inline constexpr int64_t kDeadLetterStreamMaxBytes = int64_t{256} << 20;

// How long one work item of `stage` may take before its handler is presumed hung.
absl::Duration StageHandlerDeadline(std::string_view stage);

// Deliveries of a work item before it is dead-lettered.
inline constexpr int kMaxDeliver = 5;

std::string WorkSubject(std::string_view stage);  // "driftless.work.<stage>"
std::string EventSubject(std::string_view type);  // "driftless.events.<type>"

// Creates (or updates) the three streams, the stage consumers, the notifier consumer and the
// KV buckets. Idempotent and safe to run concurrently from every service. Every stream gets
// `replicas` copies (JetStream clustering; 1 on a single server); the buckets get what the
// KvStore was built with (NatsKvStoreOptions::replicas), since KvStore has no such knob.
absl::Status Provision(bus::EventBus& bus, bus::KvStore& kv, int replicas = 1);

}  // namespace driftless::service
