// Building, encoding and publishing driftless.v1.Event envelopes.
//
//   v1::Event e = NewEvent("app.rendered", app, revision, emitter);
//   e.set_id(EventId("app.rendered", app, revision, spec_digest));
//   *e.mutable_app_rendered() = ...;
//   DL_RETURN_IF_ERROR(Emit(bus, e, kStagePlan));   // work item for the planner + broadcast
//
// The event id is the JetStream message id on both streams, so a re-publish of the same
// logical event (after a crash between publish and ack) is dropped by the duplicate window.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/bus/blob_store.h"
#include "common/bus/event_bus.h"
#include "common/manifest/manifest.h"
#include "driftless/v1/events.pb.h"

namespace driftless::service {

namespace v1 = ::driftless::v1;

// Manifests larger than this travel by digest through the blob store.
inline constexpr size_t kMaxInlineManifestBytes = 256 * 1024;

// An envelope with type, application, revision, emitter and time (now) set; id empty.
v1::Event NewEvent(std::string_view type, std::string_view application, std::string_view revision,
                   std::string_view emitter);

// "<type>/<application>/<revision>/<digest>[/<extra>]" (empty parts kept as "-").
std::string EventId(std::string_view type, std::string_view application, std::string_view revision,
                    std::string_view digest, std::string_view extra = "");

// Publishes `event` to driftless.work.<stage> (when stage is not empty) and always to
// driftless.events.<type>, both with msg id event.id(). The work item is published first:
// a broadcast never announces work that was not queued. The broadcast carries no manifests
// (size and object count stay). kResourceExhausted when the work stream is full.
absl::Status Emit(bus::EventBus& bus, const v1::Event& event, std::string_view stage = "");

// The end of a cascade deletion: broadcasts app.changed DELETED with `message` (id from the
// application and `spec_digest`, so a repeat is deduplicated), then FinalizeDeletion (state.h).
// Announced first: a crash in between repeats both, a lost broadcast cannot happen.
absl::Status FinishDeletion(bus::EventBus& bus, bus::KvStore* kv, std::string_view application,
                            std::string_view uid, std::string_view spec_digest,
                            std::string_view message, std::string_view correlation_id,
                            std::string_view emitter);

// Asks the repo-poller for a new desired generation of `application` (sync.requested on stage
// poll), e.g. because what a work item references is gone (an expired blob) or what a render
// read changed. `request` is carried on when set (a user's sync stays one: its sync id gets
// `suffix`); without it the request is automated (SyncRequested.automated: the application's
// own sync policy decides, as for a commit) with sync id `<suffix>-<now in ms>` and `message`
// as its reason (kept in the history: "…drifted…; self-healing").
absl::Status RequestGeneration(bus::EventBus& bus, std::string_view application,
                               const v1::SyncRequested* request, std::string_view suffix,
                               std::string_view message, std::string_view correlation_id,
                               std::string_view emitter);

// Parses a message body. kInvalidArgument (poison: dead-letter it) if it is not an Event.
absl::StatusOr<v1::Event> DecodeEvent(std::string_view data);

// Stores a JSON array of objects inline or, above kMaxInlineManifestBytes, in the blob store.
absl::StatusOr<v1::ManifestPayload> EncodeManifests(bus::BlobStore& blobs,
                                                    const manifest::Json& objects);
// The JSON array back. kDataLoss/kNotFound from the blob store (a blob that expired).
absl::StatusOr<manifest::Json> DecodeManifests(bus::BlobStore& blobs,
                                               const v1::ManifestPayload& payload);

// The desired objects a generation was planned with (AppStatus.desired_digest, what drift
// and `app diff` judge against): always a blob, the status keeps only the digest.
absl::StatusOr<std::string> StoreDesired(bus::BlobStore& blobs,
                                         const std::vector<manifest::Json>& objects);
// Them back. kNotFound when the blob expired; kDataLoss when it is not a JSON array.
absl::StatusOr<std::vector<manifest::Json>> LoadDesired(bus::BlobStore& blobs,
                                                        std::string_view digest);

// The Nak delay of a failed work item: `base` doubled per delivery so far, at most 30 s, with
// +-20% jitter. The one retry policy of the stage shells.
absl::Duration RetryDelay(const bus::Message& message, absl::Duration base = absl::Seconds(1));

// absl time <-> google.protobuf.Timestamp / Duration (one instant: seconds and nanos together).
void SetTimestamp(google::protobuf::Timestamp* out, absl::Time time);
absl::Time TimeOf(const google::protobuf::Timestamp& timestamp);
void SetDuration(google::protobuf::Duration* out, absl::Duration duration);

// A short human description for logs: "app.rendered guestbook@1a2b3c4".
std::string Describe(const v1::Event& event);

}  // namespace driftless::service
