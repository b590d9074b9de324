// The shell every driftless service runs in: logging, the NATS connection (reconnecting
// forever), provisioning of streams/consumers/buckets, the HTTP endpoint (/healthz, /readyz,
// /metrics), the ready file and graceful shutdown. A service's main() is:
//
//   int main(int argc, char** argv) {
//     CLI::App app{"driftless-renderer: renders manifests at an exact revision"};
//     config::ServiceFlags flags;
//     config::RegisterServiceFlags(app, &flags);
//     ... service flags ...
//     if (auto code = config::ParseFlags(app, argc, argv)) return *code;
//     auto rt = service::Runtime::Start("renderer", flags);
//     if (!rt.ok()) { std::cerr << rt.status() << "\n"; return 1; }
//     auto sub = (*rt)->ConsumeStage(service::kStageRender, handler);   // keeps retrying
//     (*rt)->MarkReady({});              // writes --ready-file
//     return (*rt)->Run();               // blocks until SIGTERM/SIGINT, then stops cleanly
//   }
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/bus/blob_store.h"
#include "common/bus/event_bus.h"
#include "common/bus/kv_store.h"
#include "common/config/flags.h"
#include "common/http/server.h"
#include "driftless/v1/events.pb.h"

namespace driftless::config {
class ShutdownSignal;
}
namespace driftless::bus {
class NatsConnection;
}

namespace driftless::service {

// Handles one decoded work item. Return Ack when done (including "nothing to do"), Nak for
// transient errors, Term for poison. Runs on the subscription thread.
using EventHandler =
    std::function<bus::Disposition(const v1::Event& event, const bus::Message& message)>;

class Runtime {
 public:
  // Installs the shutdown signal, initialises logging, connects to NATS (retrying in the
  // background if it is not up yet), starts the HTTP endpoint and provisions the backbone
  // (retrying until it succeeds or shutdown). Errors: bad flags, port in use.
  // `add_routes` (optional) registers extra HTTP routes (the api's webhooks) before the
  // endpoint starts.
  static absl::StatusOr<std::unique_ptr<Runtime>> Start(
      std::string service, const config::ServiceFlags& flags,
      const std::function<absl::Status(http::Server&)>& add_routes = nullptr);
  ~Runtime();

  const std::string& service() const { return service_; }
  // "<service>/<replica id>": Event.emitter, lease holder.
  const std::string& emitter() const { return emitter_; }
  const config::ServiceFlags& flags() const { return flags_; }

  bus::EventBus& bus() { return *bus_; }
  bus::KvStore& kv() { return *kv_; }
  bus::BlobStore& blobs() { return *blobs_; }
  http::Server& http() { return *http_; }
  std::shared_ptr<bus::NatsConnection> connection() { return connection_; }

  // Consumes the work stage's durable consumer, decoding each message as an Event; bodies
  // that do not decode are dead-lettered. Handler panics are not caught. Deliveries beyond
  // kMaxDeliver are dead-lettered by the bus.
  absl::StatusOr<std::unique_ptr<bus::Subscription>> ConsumeStage(std::string_view stage,
                                                                  EventHandler handler);
  // Same, for an arbitrary stream/durable (the notifier's on DRIFTLESS_EVENTS). Stages fetch
  // one item at a time; the default options fetch batches.
  absl::StatusOr<std::unique_ptr<bus::Subscription>> Consume(std::string_view stream,
                                                             std::string_view durable,
                                                             EventHandler handler,
                                                             bus::ConsumeOptions options = {});

  // The whole life of a one-consumer service: consumes the stage (or stream/durable), marks
  // ready, runs until shutdown, stops the consumer. Returns the process exit code (0; 1 when
  // the consumer or the ready file cannot be set up).
  int ServeStage(std::string_view stage, EventHandler handler);
  // Same with several workers: `workers` subscriptions to the stage's durable (--workers
  // overrides it when set), each handling one item at a time with the handler
  // make_handler(worker index) returns. Handlers run concurrently: they must be thread-safe
  // among themselves.
  int ServeStageWorkers(std::string_view stage,
                        const std::function<EventHandler(int worker)>& make_handler, int workers);
  // --workers when set, else `default_workers`.
  int Workers(int default_workers) const;
  int Serve(std::string_view stream, std::string_view durable, EventHandler handler);

  // Writes --ready-file (if set) with {"service","pid","replica","http"} plus `extra`.
  absl::Status MarkReady(const std::map<std::string, std::string>& extra);

  // True once shutdown was requested.
  bool ShuttingDown() const;
  // Blocks until SIGTERM/SIGINT (or RequestShutdown), then stops the HTTP server. Returns the
  // process exit code (0).
  int Run();
  void RequestShutdown();
  // Waits up to `timeout` for shutdown; true if shutdown was requested. For service loops.
  bool WaitForShutdown(absl::Duration timeout);

 private:
  Runtime() = default;
  // A work item of an application dead-lettered (terminated, or failed on its last delivery):
  // the application's status gets condition DeadLettered and the reason as its message.
  void ReportDeadLetter(const v1::Event& event, const bus::Message& message,
                        const std::string& error);
  std::string service_;
  std::string emitter_;
  config::ServiceFlags flags_;
  std::unique_ptr<config::ShutdownSignal> shutdown_;
  std::shared_ptr<bus::NatsConnection> connection_;
  std::unique_ptr<bus::EventBus> bus_;
  std::unique_ptr<bus::KvStore> kv_;
  std::unique_ptr<bus::BlobStore> blobs_;
  std::unique_ptr<http::Server> http_;
};

}  // namespace driftless::service
