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
//   413     body over kMaxWebhookBodyBytes (the HTTP server refuses it first)
//   429     flood: the receiver's or the repository's budget is spent (see WebhookLimits)
//   503     NATS unavailable (the host retries)
//
// Thread-safe: the flood budgets are guarded by a mutex, everything else is stateless.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>

#include "common/bus/event_bus.h"
#include "common/bus/kv_store.h"

namespace driftless::api {

// Largest accepted body; larger requests get 413 from the HTTP server.
inline constexpr size_t kMaxWebhookBodyBytes = 4 << 20;

// Flood limits: token buckets of `burst` pushes refilled by one every `interval`, one per
// receiver and one per (receiver, repository URL), never per source address (git hosts
// deliver from shared addresses). Only authenticated pushes are charged, so a forger cannot
// spend a receiver's budget, and one receiver's flood leaves the others untouched. A limited
// delivery is not recorded: the host's retry of the same delivery id is accepted later, and
// the application's interval poll catches up in any case.
struct WebhookLimits {
  int receiver_burst = 120;
  std::chrono::steady_clock::duration receiver_interval = std::chrono::milliseconds(100);
  int repository_burst = 20;
  std::chrono::steady_clock::duration repository_interval = std::chrono::seconds(1);
  // The time source; tests inject one. Default: std::chrono::steady_clock::now.
  std::function<std::chrono::steady_clock::time_point()> now;
};

class WebhookReceiver {
 public:
  // `bus` and `kv` must outlive this object.
  WebhookReceiver(bus::EventBus* bus, bus::KvStore* kv, std::string emitter,
                  WebhookLimits limits = {})
      : bus_(bus), kv_(kv), emitter_(std::move(emitter)), limits_(std::move(limits)) {
    if (!limits_.now) limits_.now = [] { return std::chrono::steady_clock::now(); };
  }

  struct Reply {
    int status = 200;
    std::string body;  // JSON: {"result": ...} or {"error": ...}
  };

  // `header` returns a request header by case-insensitive name ("" if absent).
  Reply Handle(std::string_view receiver,
               const std::function<std::string(std::string_view)>& header, std::string_view body);

 private:
  struct Bucket {
    double tokens = 0;
    std::chrono::steady_clock::time_point updated;
  };
  // Takes one token from the receiver's and the repository's buckets, or from neither;
  // "" if taken, else what ran out.
  std::string TakeToken(std::string_view receiver, const std::string& repo_url);

  bus::EventBus* bus_;
  bus::KvStore* kv_;
  std::string emitter_;
  WebhookLimits limits_;
  std::mutex mu_;
  std::map<std::string, Bucket, std::less<>> receiver_buckets_;               // by receiver
  std::map<std::pair<std::string, std::string>, Bucket> repository_buckets_;  // (receiver, url)
};

}  // namespace driftless::api
