// Webhook ingestion, the shell: `POST /hooks/<receiver>` looks up the Receiver resource,
// checks the delivery (webhook.h), refuses replays by delivery id (the `deliveries` bucket,
// key "hook.<receiver>.<delivery id>") and queues a webhook.push work item for the
// repo-poller. Transport-free: main.cc adapts Handle() to the HTTP server.
//
//   status  when
//   202     queued (body {"event": "<event id>"})
//   200     a valid delivery that is not a push (ping, deleted ref, filtered out by
//           spec.events, receiver suspended): ignored
//   400     malformed push body            401  bad or missing signature or token
//   404     no such receiver               409  delivery id seen before (replay)
//   503     NATS unavailable (the host retries)
//
// Thread-safe (no mutable state).
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "common/bus/event_bus.h"
#include "common/bus/kv_store.h"

namespace driftless::api {

// Largest accepted body; larger requests get 413 from the HTTP server.
inline constexpr size_t kMaxWebhookBodyBytes = 4 << 20;

class WebhookReceiver {
 public:
  // `bus` and `kv` must outlive this object.
  WebhookReceiver(bus::EventBus* bus, bus::KvStore* kv, std::string emitter)
      : bus_(bus), kv_(kv), emitter_(std::move(emitter)) {}

  struct Reply {
    int status = 200;
    std::string body;  // JSON: {"result": ...} or {"error": ...}
  };

  // `header` returns a request header by case-insensitive name ("" if absent).
  Reply Handle(std::string_view receiver,
               const std::function<std::string(std::string_view)>& header, std::string_view body);

 private:
  bus::EventBus* bus_;
  bus::KvStore* kv_;
  std::string emitter_;
};

}  // namespace driftless::api
