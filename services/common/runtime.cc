#include "services/common/runtime.h"

#include <algorithm>

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <thread>

#include "common/bus/nats_connection.h"
#include "common/bus/nats_event_bus.h"
#include "common/bus/nats_kv_store.h"
#include "common/config/shutdown_signal.h"
#include "common/http/metrics.h"
#include "common/log/log.h"
#include "common/manifest/manifest.h"
#include "common/strings/str.h"
#include "services/common/events.h"
#include "services/common/identity.h"
#include "services/common/state.h"
#include "services/common/topology.h"

namespace driftless::service {

// How long an idle consumer's pull request stays open (see ConsumeStage).
constexpr absl::Duration kIdleFetchWait = absl::Seconds(5);
namespace {

std::string DefaultReplicaId() {
  char host[256] = {};
  if (gethostname(host, sizeof(host) - 1) != 0) host[0] = '\0';
  return strings::Cat(host[0] ? host : "host", "-", getpid());
}

metrics::Family<metrics::Counter>& HandledCounter() {
  static auto& family = metrics::Registry::Default().AddCounterFamily(
      "driftless_work_items_total", "Work items handled, by stream, consumer and disposition.",
      {"stream", "durable", "disposition"});
  return family;
}

std::string_view DispositionName(bus::Disposition::Kind kind) {
  switch (kind) {
    case bus::Disposition::Kind::kAck:
      return "ack";
    case bus::Disposition::Kind::kNak:
      return "nak";
    case bus::Disposition::Kind::kTerm:
      return "term";
    case bus::Disposition::Kind::kAbandon:
      return "abandon";
  }
  return "unknown";
}

}  // namespace

absl::StatusOr<std::unique_ptr<Runtime>> Runtime::Start(
    std::string service, const config::ServiceFlags& flags,
    const std::function<absl::Status(http::Server&)>& add_routes) {
  std::unique_ptr<Runtime> rt(new Runtime());
  rt->service_ = std::move(service);
  rt->flags_ = flags;
  if (rt->flags_.replica_id.empty()) rt->flags_.replica_id = DefaultReplicaId();
  rt->emitter_ = strings::Cat(rt->service_, "/", rt->flags_.replica_id);
  DL_RETURN_IF_ERROR(log::Init(rt->service_, flags.log_level, flags.log_format));
  DL_ASSIGN_OR_RETURN(rt->shutdown_, config::ShutdownSignal::Install());

  DL_ASSIGN_OR_RETURN(rt->connection_,
                      bus::NatsConnection::Connect({.url = flags.nats_url,
                                                    .name = "driftless-" + rt->service_,
                                                    .retry_initial_connect = true}));
  rt->bus_ = std::make_unique<bus::NatsEventBus>(rt->connection_);
  rt->kv_ = std::make_unique<bus::NatsKvStore>(
      rt->connection_, bus::NatsKvStoreOptions{.replicas = flags.nats_replicas});
  rt->blobs_ = std::make_unique<bus::BlobStore>(rt->kv_.get(), kBlobsBucket);

  rt->http_ = std::make_unique<http::Server>(
      http::ServerOptions{.address = flags.http_address, .port = flags.http_port});
  auto connection = rt->connection_;
  rt->http_->AddReadinessCheck("nats", [connection] { return connection->Ready(); });
  if (add_routes) DL_RETURN_IF_ERROR(add_routes(*rt->http_));
  DL_RETURN_IF_ERROR(rt->http_->Start());
  log::Info("starting", {{"replica", rt->flags_.replica_id},
                         {"nats", log::RedactUrl(flags.nats_url)},
                         {"http", rt->http_->BaseUrl()}});

  // Every service provisions the whole backbone, so start order does not matter.
  for (int attempt = 1;; ++attempt) {
    absl::Status provisioned = Provision(*rt->bus_, *rt->kv_, rt->flags_.nats_replicas);
    if (provisioned.ok()) break;
    if (attempt == 1 || attempt % 20 == 0) {
      log::Warn("backbone not ready yet, retrying", {{"error", provisioned}});
    }
    if (rt->shutdown_->WaitForShutdownFor(std::chrono::milliseconds(500))) {
      return absl::CancelledError("shut down before the backbone was ready");
    }
  }
  return rt;
}

Runtime::~Runtime() {
  if (http_) http_->Stop();
}

int Runtime::ServeStage(std::string_view stage, EventHandler handler) {
  return Serve(kWorkStream, stage, std::move(handler));
}

int Runtime::Serve(std::string_view stream, std::string_view durable, EventHandler handler) {
  auto sub = stream == kWorkStream
                 ? ConsumeStage(durable, std::move(handler))
                 : Consume(stream, durable, std::move(handler), {.fetch_wait = kIdleFetchWait});
  if (!sub.ok()) {
    log::Error("cannot consume", {{"stream", std::string(stream)},
                                  {"durable", std::string(durable)},
                                  {"error", sub.status()}});
    return ShuttingDown() ? 0 : 1;
  }
  if (absl::Status s = MarkReady({}); !s.ok()) {
    log::Error("cannot write the ready file", {{"error", s}});
    (*sub)->Stop();
    return 1;
  }
  int code = Run();
  (*sub)->Stop();
  return code;
}

int Runtime::Workers(int default_workers) const {
  return flags_.workers > 0 ? flags_.workers : std::max(1, default_workers);
}

int Runtime::ServeStageWorkers(std::string_view stage,
                               const std::function<EventHandler(int worker)>& make_handler,
                               int workers) {
  const int n = Workers(workers);
  std::vector<std::unique_ptr<bus::Subscription>> subs;
  // In parallel: each Stop waits for its worker's running item and its pending fetch.
  auto stop_all = [&subs] {
    std::vector<std::thread> stoppers;
    for (auto& sub : subs) stoppers.emplace_back([s = sub.get()] { s->Stop(); });
    for (std::thread& t : stoppers) t.join();
  };
  for (int i = 0; i < n; ++i) {
    auto sub = ConsumeStage(stage, make_handler(i));
    if (!sub.ok()) {
      log::Error("cannot consume", {{"stage", std::string(stage)}, {"error", sub.status()}});
      stop_all();
      return ShuttingDown() ? 0 : 1;
    }
    // Ready only while every worker fetches and none is stuck past its handler deadline.
    bus::Subscription* s = sub->get();
    http_->AddReadinessCheck(strings::Cat("worker ", stage, "/", i), [s] { return s->Health(); });
    subs.push_back(*std::move(sub));
  }
  if (absl::Status s = MarkReady({{"workers", std::to_string(n)}}); !s.ok()) {
    log::Error("cannot write the ready file", {{"error", s}});
    stop_all();
    return 1;
  }
  int code = Run();
  stop_all();
  return code;
}

absl::StatusOr<std::unique_ptr<bus::Subscription>> Runtime::ConsumeStage(std::string_view stage,
                                                                         EventHandler handler) {
  // One item at a time: a replica busy with a long sync (or waiting for an application's
  // lease) must not sit on fetched items that another replica could run now. A handler past
  // its stage's deadline is presumed hung (see ConsumeOptions::handler_deadline).
  // Idle workers keep one pull request open for kIdleFetchWait at a time: each costs the server
  // and this process a little, so the wait is long (a message is delivered at once anyway); it
  // bounds how long Stop takes (workers stop in parallel).
  return Consume(
      kWorkStream, stage, std::move(handler),
      {.batch = 1, .fetch_wait = kIdleFetchWait, .handler_deadline = StageHandlerDeadline(stage)});
}

absl::StatusOr<std::unique_ptr<bus::Subscription>> Runtime::Consume(std::string_view stream,
                                                                    std::string_view durable,
                                                                    EventHandler handler,
                                                                    bus::ConsumeOptions options) {
  std::string stream_name(stream), durable_name(durable);
  auto wrapped = [this, handler = std::move(handler), stream_name,
                  durable_name](const bus::Message& message) {
    absl::StatusOr<v1::Event> event = DecodeEvent(message.data);
    if (event.ok()) {
      if (absl::Status schema = CheckSchema(*event); !schema.ok()) event = schema;
    }
    bus::Disposition d = event.ok() ? handler(*event, message)
                                    : bus::Disposition::Term(std::string(event.status().message()));
    HandledCounter()
        .WithLabels({stream_name, durable_name, std::string(DispositionName(d.kind()))})
        .Increment();
    const bool dead_lettered = d.kind() == bus::Disposition::Kind::kTerm ||
                               (d.kind() == bus::Disposition::Kind::kNak &&
                                message.delivery_count >= static_cast<uint64_t>(kMaxDeliver));
    if (dead_lettered) {
      log::Error("work item dead-lettered",
                 {{"subject", message.subject},
                  {"event", event.ok() ? Describe(*event) : std::string("(undecodable)")},
                  {"error", d.error()}});
      if (event.ok() && stream_name == kWorkStream) ReportDeadLetter(*event, message, d.error());
    } else if (d.kind() == bus::Disposition::Kind::kNak) {
      log::Warn("work item will be retried",
                {{"subject", message.subject},
                 {"event", event.ok() ? Describe(*event) : std::string()},
                 {"delivery", message.delivery_count},
                 {"error", d.error()}});
    }
    return d;
  };
  for (int attempt = 1;; ++attempt) {
    auto sub = bus_->Consume(stream, durable, wrapped, options);
    if (sub.ok() || ShuttingDown()) return sub;
    if (attempt == 1 || attempt % 20 == 0) {
      log::Warn("cannot consume yet, retrying",
                {{"stream", stream_name}, {"durable", durable_name}, {"error", sub.status()}});
    }
    // The consumer may be missing after a nats-server that lost its data: provision again.
    (void)Provision(*bus_, *kv_, flags_.nats_replicas);
    if (WaitForShutdown(absl::Milliseconds(500))) return sub.status();
  }
}

void Runtime::ReportDeadLetter(const v1::Event& event, const bus::Message& message,
                               const std::string& error) {
  if (event.application().empty()) return;
  const std::string text = strings::Cat(
      "application ", event.application(), ": work item ", event.type(), " dead-lettered after ",
      message.delivery_count, message.delivery_count == 1 ? " delivery: " : " deliveries: ",
      error.empty() ? std::string("no reason given") : error,
      " (driftless dlq list shows it; dlq redrive SEQ runs it again)");
  // Best effort: the dead-letter entry itself names the application too.
  absl::StatusOr<v1::AppStatus> updated = StatusStore(kv_.get()).Update(
      event.application(),
      [&](v1::AppStatus& s) {
        SetCondition(s, kDeadLetteredCondition, true, "DeadLettered", text);
        s.set_message(text);
        return true;
      },
      event.application_uid());
  if (!updated.ok() && !absl::IsNotFound(updated.status())) {
    log::Warn("cannot report the dead letter on the application's status",
              {{"application", event.application()}, {"error", updated.status()}});
  }
}

absl::Status Runtime::MarkReady(const std::map<std::string, std::string>& extra) {
  http_->AddReadinessCheck("started", [] { return absl::OkStatus(); });
  log::Info("ready", {{"http", http_->BaseUrl()}});
  if (flags_.ready_file.empty()) return absl::OkStatus();
  manifest::Json doc = {{"service", service_},
                        {"pid", static_cast<int64_t>(getpid())},
                        {"replica", flags_.replica_id},
                        {"http", http_->BaseUrl()}};
  for (const auto& [k, v] : extra) doc[k] = v;
  std::string tmp = flags_.ready_file + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << doc.dump() << "\n";
    if (!out) return absl::InternalError(strings::Cat("cannot write ready file ", tmp));
  }
  if (std::rename(tmp.c_str(), flags_.ready_file.c_str()) != 0) {
    return absl::InternalError(strings::Cat("cannot rename ", tmp, " to ", flags_.ready_file));
  }
  return absl::OkStatus();
}

bool Runtime::ShuttingDown() const { return shutdown_->IsShutdownRequested(); }

void Runtime::RequestShutdown() { shutdown_->RequestShutdown(); }

bool Runtime::WaitForShutdown(absl::Duration timeout) {
  return shutdown_->WaitForShutdownFor(absl::ToChronoMilliseconds(timeout));
}

int Runtime::Run() {
  int sig = shutdown_->WaitForShutdown();
  log::Info("shutting down", {{"signal", sig}});
  http_->Stop();
  return 0;
}

}  // namespace driftless::service
