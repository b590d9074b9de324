// Sync identity (../shared/DESIGN.md §1): every work item about an application carries
// (application uid, desired_seq, attempt). Ids, sync ids and dedupe keys derive from it,
// never from content, so a new desired_seq always runs even when its content was applied
// before (a branch moved back, a retry, a re-sync), and a redelivered item is a no-op.
//
//   SyncIdentity id = IdentityOf(source_changed_event);
//   v1::Event rendered = NewEvent(event_type::kAppRendered, app, commit, emitter);
//   SetIdentity(rendered, id);
//   rendered.set_id(IdentityEventId(event_type::kAppRendered, app, id));
//
// Envelope versions: v2 items carry schema_version 2; v1 items (schema_version 0, queued by
// an older release before an upgrade) are converted by IdentityOf to seq 0, which the stages
// treat as "no identity": they run with the content-derived ids of v1 and never advance or
// check the applied watermark. Any other version is rejected by CheckSchema (dead-letter).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "driftless/v1/events.pb.h"

namespace driftless::service {

namespace v1 = ::driftless::v1;

inline constexpr int kSchemaVersion = 2;

// Event types: the last part of the broadcast subject and Event.type.
namespace event_type {
inline constexpr char kSourceChanged[] = "source.changed";
inline constexpr char kAppChanged[] = "app.changed";
inline constexpr char kAppRendered[] = "app.rendered";
inline constexpr char kPlanReady[] = "plan.ready";
inline constexpr char kSyncStarted[] = "sync.started";
inline constexpr char kSyncSucceeded[] = "sync.succeeded";
inline constexpr char kSyncFailed[] = "sync.failed";
inline constexpr char kSyncRequested[] = "sync.requested";
inline constexpr char kSyncRetry[] = "sync.retry";
inline constexpr char kAppStatus[] = "app.status";
inline constexpr char kAppDrifted[] = "app.drifted";
inline constexpr char kWebhookPush[] = "webhook.push";
inline constexpr char kHealthCheck[] = "health.check";
// renderer → planner: resolve an application's valuesFrom/substituteFrom (render_inputs.h).
inline constexpr char kRenderInputsRequested[] = "render.inputs_requested";
}  // namespace event_type

struct SyncIdentity {
  std::string uid;      // the application's incarnation
  int64_t seq = 0;      // 0: none (a v1 item, or an event about no sync)
  int32_t attempt = 1;  // >= 1

  bool known() const { return seq > 0; }
  friend bool operator==(const SyncIdentity&, const SyncIdentity&) = default;
};

// The identity an event carries (seq 0 for v1 items).
SyncIdentity IdentityOf(const v1::Event& event);
// Sets schema_version 2 and the identity fields.
void SetIdentity(v1::Event& event, const SyncIdentity& identity);

// kInvalidArgument naming the application for a schema version this release cannot read.
absl::Status CheckSchema(const v1::Event& event);

// "<first 8 of uid>-<seq>-<attempt>": short, unique per incarnation, sortable per app.
std::string IdentityText(const SyncIdentity& identity);
// The sync id of an identified sync: "s-" + IdentityText.
std::string SyncIdOf(const SyncIdentity& identity);
// "<type>/<application>/<IdentityText>[/<extra>]": the msg id of an identified event.
std::string IdentityEventId(std::string_view type, std::string_view application,
                            const SyncIdentity& identity, std::string_view extra = "");

// True when `identity` is older than what `status` reflects for the same incarnation (a
// status write for it would overwrite a newer one). Unidentified writes are never older.
bool OlderThanStatus(const SyncIdentity& identity, const v1::AppStatus& status);

// True when the work of `identity` is moot for `status`: older than it (OlderThanStatus), or at
// or below the incarnation's applied watermark.
bool SupersededByStatus(const SyncIdentity& identity, const v1::AppStatus& status);

}  // namespace driftless::service
