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
//
// Error codes: kInvalidArgument (bad documents, bad requests), kNotFound (no such
// application), kUnavailable / kDeadlineExceeded (NATS down; retry), kAborted (lost a
// compare-and-set race too often; retry). Messages name the application.
//
// Thread-safety: all methods may be called concurrently (the stores are thread-safe and the
// object holds no mutable state).
#pragma once

#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/bus/event_bus.h"
#include "common/bus/kv_store.h"
#include "driftless/v1/api.pb.h"

namespace driftless::api {

namespace v1 = ::driftless::v1;

// Streams broadcast events (driftless.events.<type>) to a callback; the transport of
// WatchEvents. One method so tests can fake it (NatsEventWatcher is the real one).
class EventWatcher {
 public:
  virtual ~EventWatcher() = default;
  // Calls `sink` with every event (stored ones first when `include_history`, then live ones)
  // until `sink` returns false or `cancelled` returns true (polled at least every 500 ms).
  // Returns OK when stopped that way; kUnavailable if the bus cannot be reached.
  virtual absl::Status Watch(bool include_history,
                             const std::function<bool(const v1::Event&)>& sink,
                             const std::function<bool()>& cancelled) = 0;
};

// Maps an application to the text shown for a missing one: `application "x" not found`.
absl::Status ApplicationNotFound(std::string_view name);

// A fresh random sync id: 16 lower-case hex characters.
std::string NewSyncId();

class ApplicationApi {
 public:
  // `bus` and `kv` must outlive this object; `emitter` is Event.emitter ("api/<replica>").
  // `watcher` may be null: WatchEvents then answers kUnimplemented.
  ApplicationApi(bus::EventBus* bus, bus::KvStore* kv, std::string emitter,
                 EventWatcher* watcher = nullptr);

  // Parses and validates every document of request.yaml (all or nothing: nothing is stored if
  // one is invalid), then stores them in the order of resources::Kinds() unless dry_run.
  // One result per document: "created", "configured" or "unchanged" (with dry_run: what
  // would happen).
  absl::StatusOr<v1::ApplyResponse> Apply(const v1::ApplyRequest& request);

  // The application (credentials redacted) and its status. kNotFound. Until the pipeline
  // records an attempt, status.last_attempted_revision is the revision the repo-poller last
  // published for the application (empty if none yet).
  absl::StatusOr<v1::Application> Get(const v1::GetApplicationRequest& request);

  // Applications of request.project (all if empty) whose names match the glob
  // request.name_pattern (all if empty), sorted by name.
  absl::StatusOr<v1::ListApplicationsResponse> List(const v1::ListApplicationsRequest& request);

  // Removes the application and its status. With cascade, first queues app.changed (DELETED)
  // for the planner, which prunes every object the application tracks; without cascade the
  // cluster is left alone. kNotFound if there is no such application.
  absl::Status Delete(const v1::DeleteApplicationRequest& request);

  // Queues sync.requested for the repo-poller (which refreshes the ref first) and returns the
  // new sync id, also the event's correlation id. kNotFound if there is no such application.
  absl::StatusOr<v1::SyncApplicationResponse> Sync(const v1::SyncApplicationRequest& request);

  // Every resource of request.kind (credentials redacted), sorted by name. kInvalidArgument
  // for a kind driftless does not define.
  absl::StatusOr<v1::ListResourcesResponse> ListResources(const v1::ListResourcesRequest& request);

  // Streams events matching request.application and request.types to `sink` until it returns
  // false or `cancelled` returns true. kUnimplemented without a watcher.
  absl::Status WatchEvents(const v1::WatchEventsRequest& request,
                           const std::function<bool(const v1::Event&)>& sink,
                           const std::function<bool()>& cancelled);

 private:
  bus::EventBus* bus_;
  bus::KvStore* kv_;
  std::string emitter_;
  EventWatcher* watcher_;
};

}  // namespace driftless::api
