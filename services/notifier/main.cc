// driftless-notifier: delivers events (by default sync.succeeded and sync.failed) to webhook
// URLs, once per (event, URL). See docs/design/notifier.md and notifier_service.h.
#include <iostream>

#include <CLI/CLI.hpp>

#include "common/config/flags.h"
#include "common/log/log.h"
#include "services/common/runtime.h"
#include "services/common/topology.h"
#include "services/notifier/notifier_service.h"

int main(int argc, char** argv) {
  using namespace driftless;
  CLI::App app{"driftless-notifier: delivers driftless events to webhooks"};
  config::ServiceFlags flags;
  config::RegisterServiceFlags(app, &flags);
  std::vector<std::string> urls;
  std::string event_types = "sync.succeeded,sync.failed,app.drifted";
  std::chrono::milliseconds timeout{std::chrono::seconds(5)};
  config::AddStringListFlag(app, "webhook-url", &urls,
                            "webhook URL to POST events to (repeatable, or comma-separated)");
  config::AddStringFlag(app, "event-types", &event_types,
                        "comma-separated event types to deliver (\"sync.*\", \"*\" allowed)");
  config::AddDurationFlag(app, "timeout", &timeout, "timeout of one webhook POST");
  if (auto code = config::ParseFlags(app, argc, argv)) return *code;

  auto rt = service::Runtime::Start("notifier", flags);
  if (!rt.ok()) {
    std::cerr << "driftless-notifier: " << rt.status() << "\n";
    return 1;
  }
  service::Runtime& runtime = **rt;
  notifier::CurlWebhookSender sender;
  notifier::NotifierService notifier(&runtime.kv(), &sender,
                                     {.urls = urls,
                                      .event_types = event_types,
                                      .timeout = absl::FromChrono(timeout),
                                      .bucket = service::kDeliveriesBucket,
                                      .max_deliver = service::kMaxDeliver});
  log::Info("delivering",
            {{"webhooks", static_cast<int64_t>(urls.size())}, {"eventTypes", event_types}});
  return runtime.Serve(
      service::kEventsStream, service::kNotifierDurable,
      [&notifier](const v1::Event& e, const bus::Message& m) { return notifier.Handle(e, m); });
}
