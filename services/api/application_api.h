// The logic of driftless.v1.ApplicationService (proto/driftless/v1/api.proto), free of any
// transport: requests and responses are the generated protobuf messages, errors are
// absl::Status with the canonical code the gRPC layer (grpc_server.h) passes on unchanged.
//
//   ApplicationApi api(&runtime->bus(), &runtime->kv(), runtime->emitter());
//   absl::StatusOr<v1::ApplyResponse> r = api.Apply(request);   // INVALID_ARGUMENT names the
//                                                               // document, line and field
//
// State lives in the `resources` and `status` KV buckets (services/common/state.h); changes
// are announced on the bus as driftless.v1.Event (services/common/events.h):
//   Apply   created/configured Application -> broadcast app.changed (CREATED/UPDATED)
//   Delete  with cascade                   -> app.changed (DELETED), work item for the planner
//   Sync                                   -> sync.requested, work item for the repo-poller
//   RedriveDeadLetter                      -> the dead letter's body, again on its subject
//
// Error codes: kInvalidArgument (bad documents, bad requests, page tokens this server did not
// issue), kNotFound (no such application or dead letter), kUnavailable (NATS down, or NATS did
// not answer in time: the message names the call that timed out; retry), kAborted (lost a
// compare-and-set race too often; retry), kFailedPrecondition (a dead letter that names no
// subject to go back to). Messages name the application. A store's kDeadlineExceeded is
// reported as kUnavailable: the caller's deadline did not pass, a dependency's did.
//
// Thread-safety: all methods may be called concurrently (the stores are thread-safe and the
// object holds no mutable state).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/bus/event_bus.h"
#include "common/bus/kv_store.h"
#include "driftless/v1/api.pb.h"
#include "services/common/state.h"

namespace driftless::api {

namespace v1 = ::driftless::v1;

// Where a watch of the events stream starts.
struct WatchStart {
  enum class From {
    kNew,       // events published after the watch started
    kFirst,     // every stored event, then live ones
    kSequence,  // stream sequence `sequence` (>= 1) and after
    kTime,      // events stored at or after `time`
  };
  From from = From::kNew;
  uint64_t sequence = 0;
  absl::Time time = absl::InfinitePast();
};

// Streams broadcast events (driftless.events.<type>) to a callback; the transport of
// WatchEvents. One method so tests can fake it (NatsEventWatcher is the real one).
class EventWatcher {
 public:
  virtual ~EventWatcher() = default;
  // Calls `sink` with every event from `start` on, in stream order, until `sink` returns
  // false or `cancelled` returns true (polled at least every 500 ms). With a non-empty
  // `type`, only events of that type are delivered (a subject filter: the others never leave
  // the server). Returns OK when stopped that way; kUnavailable if the bus cannot be reached.
  virtual absl::Status Watch(const WatchStart& start, const std::string& type,
                             const std::function<bool(const v1::Event&)>& sink,
                             const std::function<bool()>& cancelled) = 0;
};

// One message of the dead-letter stream, as stored.
struct StoredDeadLetter {
  uint64_t sequence = 0;
  std::string subject;  // "driftless.dlq.<original subject>"
  absl::Time time;      // when it was stored
  bus::Headers headers;
  std::string data;
};

// The dead-letter stream (DRIFTLESS_DLQ) as a store: read in sequence order, get and delete
// by sequence. NatsDeadLetterStore is the real one. Implementations are thread-safe.
class DeadLetterStore {
 public:
  virtual ~DeadLetterStore() = default;

  struct Page {
    std::vector<StoredDeadLetter> letters;  // ascending sequence
    bool more = false;                      // a dead letter follows the last one
  };
  // Up to `limit` (>= 1) dead letters with sequence >= `start_sequence`. kUnavailable if NATS
  // cannot be reached or does not answer in time.
  virtual absl::StatusOr<Page> List(uint64_t start_sequence, int limit) = 0;
  // The dead letter at `sequence`; kNotFound if there is none (never stored, redriven, aged
  // out).
  virtual absl::StatusOr<StoredDeadLetter> Get(uint64_t sequence) = 0;
  // Removes the dead letter at `sequence`; kNotFound if there is none.
  virtual absl::Status Delete(uint64_t sequence) = 0;
};

// Maps an application to the text shown for a missing one: `application "x" not found`.
absl::Status ApplicationNotFound(std::string_view name);

// A fresh random sync id: 16 lower-case hex characters.
std::string NewSyncId();

class ApplicationApi {
 public:
  // `bus` and `kv` must outlive this object; `emitter` is Event.emitter ("api/<replica>").
  // `watcher` may be null: WatchEvents then answers kUnimplemented; so may `dead_letters`
  // (ListDeadLetters and RedriveDeadLetter answer kUnimplemented).
  ApplicationApi(bus::EventBus* bus, bus::KvStore* kv, std::string emitter,
                 EventWatcher* watcher = nullptr, DeadLetterStore* dead_letters = nullptr);

  // Parses and validates every document of request.yaml (all or nothing: nothing is stored if
  // one is invalid), then stores them in the order of resources::Kinds() unless dry_run.
  // One result per document: "created", "configured" or "unchanged" (with dry_run: what
  // would happen).
  absl::StatusOr<v1::ApplyResponse> Apply(const v1::ApplyRequest& request);

  // The application (credentials redacted) and its status. kNotFound. Until the pipeline
  // records an attempt, status.last_attempted_revision is the revision the repo-poller last
  // published for the application (empty if none yet).
  absl::StatusOr<v1::Application> Get(const v1::GetApplicationRequest& request);

  // One page of the applications of request.project (all if empty) whose names match the glob
  // request.name_pattern (all if empty), in name order. Lists the keys of the resources
  // bucket (names only), then reads the records and statuses of this page's applications
  // only: the next request.limit names (0: kDefaultPageSize, at most kMaxPageSize) that
  // match name_pattern and sort after request.page_token's position. The project filter
  // applies to those records, so a page may hold fewer than limit applications (even none)
  // while next_page_token is set; it is "" when no matching name follows the page.
  // kInvalidArgument for a negative limit, or a page_token this server did not issue or
  // issued for other filters. An application deleted while the page is read is left out.
  absl::StatusOr<v1::ListApplicationsResponse> List(const v1::ListApplicationsRequest& request);
  static constexpr int kDefaultPageSize = 500;
  static constexpr int kMaxPageSize = 1000;

  // Without cascade: removes the application, its status, history and pending plan now; the
  // cluster is left alone. With cascade (finalizer-style): marks it deleting
  // (metadata.deletionTimestamp; it stays listed, its status says so, apply and sync refuse
  // it) and queues app.changed (DELETED) for the planner, which plans the prune of every
  // object it tracks; the applier removes the application once they are gone. Deleting a
  // deleting application again re-drives its deletion. kNotFound if there is no such
  // application.
  absl::Status Delete(const v1::DeleteApplicationRequest& request);

  // Queues sync.requested for the repo-poller (which refreshes the ref first) and returns the
  // new sync id, also the event's correlation id. kNotFound if there is no such application.
  absl::StatusOr<v1::SyncApplicationResponse> Sync(const v1::SyncApplicationRequest& request);

  // Every resource of request.kind (credentials redacted), sorted by name. kInvalidArgument
  // for a kind driftless does not define.
  absl::StatusOr<v1::ListResourcesResponse> ListResources(const v1::ListResourcesRequest& request);

  // Streams events matching request.application and request.types to `sink`, from
  // request.start_sequence or request.start_time when set (else every stored event with
  // include_history, else new ones only), until `sink` returns false or `cancelled` returns
  // true. Only matching events reach `sink` (one type is also a subject filter on the bus).
  // kInvalidArgument for start_sequence 0, an invalid start_time or a type that is empty or
  // holds a space or a NATS wildcard; kUnimplemented without a watcher.
  absl::Status WatchEvents(const v1::WatchEventsRequest& request,
                           const std::function<bool(const v1::Event&)>& sink,
                           const std::function<bool()>& cancelled);

  // One page of the dead-letter stream, oldest first: request.limit dead letters (0:
  // kDefaultDeadLetterPageSize, at most kMaxPageSize) from request.page_token's position, else
  // from request.start_sequence (0: the oldest). Each names its original subject, error,
  // deliveries and time, and the event type and application when the body is an Event.
  // kInvalidArgument for a negative limit or a page_token this server did not issue;
  // kUnimplemented without a DeadLetterStore.
  absl::StatusOr<v1::ListDeadLettersResponse> ListDeadLetters(
      const v1::ListDeadLettersRequest& request);
  static constexpr int kDefaultDeadLetterPageSize = 100;

  // The notifier's delivery log, newest first, filtered by application (exact), destination
  // (substring) and age. Records that do not decode are skipped. kInvalidArgument for a
  // negative limit or since_seconds.
  absl::StatusOr<v1::ListDeliveriesResponse> ListDeliveries(
      const v1::ListDeliveriesRequest& request);

  // Publishes the dead letter's body again to its original subject (header
  // Driftless-Dlq-Subject, else the DLQ subject without "driftless.dlq."), with the original
  // headers minus the dead-letter and NATS ones and the message id "redrive:<sequence>" (a
  // retried redrive inside the duplicate window is stored once), then deletes it from the DLQ.
  // kInvalidArgument for sequence 0; kNotFound if there is no such dead letter;
  // kFailedPrecondition if it names no subject outside the DLQ to go back to; the publish's
  // errors (kNotFound: no stream captures the subject). If the delete fails after the publish,
  // the error says so and a retry publishes nothing twice (inside the duplicate window).
  absl::StatusOr<v1::RedriveDeadLetterResponse> RedriveDeadLetter(
      const v1::RedriveDeadLetterRequest& request);

  // The application's finished syncs, newest first, each with its objects' outcomes.
  // kNotFound for an unknown application.
  absl::StatusOr<v1::ListHistoryResponse> ListHistory(const v1::ListHistoryRequest& request);

  // A user's sync at the revision of history entry request.id (the current spec renders it).
  // kFailedPrecondition while automated sync is on, unless request.force: then
  // spec.syncPolicy.suspend is set first (and the repo-poller has taken it up) so that the
  // rollback is the newest generation. kNotFound for an unknown application or entry.
  absl::StatusOr<v1::RollbackResponse> Rollback(const v1::RollbackRequest& request);

  // Sets or clears spec.syncPolicy.suspend (a new generation of the spec, announced like an
  // apply). kNotFound for an unknown application; kFailedPrecondition while it is deleted.
  absl::StatusOr<v1::SuspendResponse> Suspend(const v1::SuspendRequest& request);

  // The application's live diff, asked of the planner (kDiffSubject; it alone reads the
  // cluster). kNotFound for an unknown application, kUnavailable when no planner answers in
  // 30 s, the planner's error otherwise (kFailedPrecondition: not planned yet).
  absl::StatusOr<v1::DiffReply> Diff(const v1::DiffRequest& request);

 private:
  // The stored application `name` for an RPC acting on it: kInvalidArgument for an empty
  // name, kNotFound naming it, store errors prefixed with `what`.
  absl::StatusOr<service::StoredResource> FindApplication(const std::string& name,
                                                          std::string_view what);
  // Broadcasts app.changed for a written Application.
  absl::Status AnnounceChange(const service::StoredResource& stored, bool created);
  // Publishes the user's sync.requested to the poller; returns its sync id.
  absl::StatusOr<std::string> RequestSync(const service::StoredResource& stored,
                                          const v1::SyncApplicationRequest& request);
  // Writes `stored` with spec.syncPolicy.suspend = `suspended` and announces the change.
  absl::StatusOr<service::StoredResource> WriteSuspended(const service::StoredResource& stored,
                                                         bool suspended);
  // Waits (15 s at most) until the repo-poller recorded a generation for `written`'s spec.
  absl::Status WaitForSpecGeneration(const service::StoredResource& written);

  bus::EventBus* bus_;
  bus::KvStore* kv_;
  std::string emitter_;
  EventWatcher* watcher_;
  DeadLetterStore* dead_letters_;
};

}  // namespace driftless::api
