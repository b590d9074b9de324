// The notifier's shell: for each event on DRIFTLESS_EVENTS whose type matches, POST it to every
// configured webhook URL once. Exactly-once effect per (event id, URL) through the delivery
// log in the `deliveries` KV bucket: a URL whose key is present is skipped, and the key is
// written only after a 2xx, so a redelivery (after a crash, or the same event published again
// under another message id) does not notify twice.
//
//   NotifierService notifier(&runtime.kv(), &sender, {.urls = urls});
//   auto sub = runtime.Consume(service::kEventsStream, service::kNotifierDurable,
//       [&](const v1::Event& e, const bus::Message& m) { return notifier.Handle(e, m); });
//
// Dispositions: Ack when every URL is delivered (or the type does not match); Nak with
// exponential backoff when any URL failed transiently (5xx, 408, 425, 429, timeout, connection
// error) or the delivery log is unreachable — the bus dead-letters after kMaxDeliver; Term
// (dead letter, with the reason) when no URL can be retried and one rejected the event (other
// 4xx/3xx, malformed URL). A URL that failed for good (rejected, or still failing on the last
// delivery) is recorded under FailureKey with its attempts and error. Webhook URLs never appear in
// logs, errors or the delivery log except as UrlForLog(url).
//
// Thread-safe: Handle may run concurrently (the KV store and sender are thread-safe).
#pragma once

#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "common/bus/event_bus.h"
#include "common/bus/kv_store.h"
#include "driftless/v1/events.pb.h"
#include "services/notifier/notify.h"
#include "services/notifier/providers.h"
#include "services/notifier/webhook_sender.h"

namespace driftless::notifier {

struct NotifierOptions {
  std::vector<std::string> urls;
  std::string event_types = "sync.succeeded,sync.failed";
  absl::Duration timeout = absl::Seconds(5);          // per POST
  absl::Duration initial_backoff = absl::Seconds(1);  // RetryDelay's initial delay
  std::string bucket = "deliveries";
  // The bus's delivery limit: a URL still failing on this delivery gets a FailureKey record.
  int max_deliver = 5;
  // NotificationProvider and Alert resources are read again at most this often (and only
  // while events arrive).
  absl::Duration routes_refresh = absl::Seconds(5);
};

class NotifierService {
 public:
  // `kv` and `sender` are not owned and must outlive this object.
  NotifierService(bus::KvStore* kv, WebhookSender* sender, NotifierOptions options);

  bus::Disposition Handle(const driftless::v1::Event& event, const bus::Message& message);

 private:
  // Where an event goes: a --webhook-url (delivery-log key: the URL) or the provider of a
  // matching Alert (key: "provider/<name>").
  struct Target {
    std::string log_key;
    Provider provider;
  };
  struct Routes {
    std::map<std::string, Provider> providers;  // usable ones, by name
    std::vector<Alert> alerts;
    std::vector<std::string> errors;  // unusable providers and alerts, logged once each
  };
  // An Application's own `notifications: [{on, provider}]`, read at most every
  // routes_refresh per application.
  struct Subscriptions {
    absl::Time read_at;
    std::vector<Subscription> rules;
  };
  std::vector<Target> TargetsFor(const driftless::v1::Event& event);
  void RefreshRoutes();
  std::vector<Subscription> SubscriptionsOf(const std::string& application);

  bus::KvStore* kv_;
  WebhookSender* sender_;
  NotifierOptions options_;
  EventFilter filter_;
  std::mutex routes_mu_;
  Routes routes_;
  bool routes_read_ = false;
  absl::Time routes_read_at_;
  std::map<std::string, Subscriptions> subscriptions_;  // by application; under routes_mu_
};

}  // namespace driftless::notifier
