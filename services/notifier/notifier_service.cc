#include "services/notifier/notifier_service.h"

#include <google/protobuf/util/time_util.h>

#include <algorithm>
#include <set>

#include "common/http/metrics.h"
#include "common/log/log.h"
#include "common/manifest/manifest.h"
#include "common/strings/str.h"
#include "nlohmann/json.hpp"
#include "services/common/state.h"

namespace driftless::notifier {
namespace {

metrics::Counter& Deliveries(std::string_view result) {
  static auto& family = metrics::Registry::Default().AddCounterFamily(
      "driftless_notifier_deliveries_total",
      "Webhook deliveries by result: delivered, skipped (already delivered), retry, rejected.",
      {"result"});
  return family.WithLabels(std::vector<std::string>{std::string(result)});
}

// How a destination appears in logs and errors: a provider by name, a --webhook-url without
// credentials (UrlForLog).
std::string LogName(const Provider& p) { return p.name.empty() ? UrlForLog(p.address) : p.name; }

// How it appears in the delivery log, which the API shows: a provider by name, a
// --webhook-url by scheme and host only (a chat webhook's path is its token).
std::string DestinationName(const Provider& p) {
  if (!p.name.empty()) return p.name;
  const std::string url = UrlForLog(p.address);
  const size_t host = url.find("://");
  const size_t path = url.find('/', host == std::string::npos ? 0 : host + 3);
  return strings::Cat("webhook ", url.substr(0, path));
}

std::string Now() {
  return google::protobuf::util::TimeUtil::ToString(
      google::protobuf::util::TimeUtil::GetCurrentTime());
}

}  // namespace

NotifierService::NotifierService(bus::KvStore* kv, WebhookSender* sender, NotifierOptions options)
    : kv_(kv),
      sender_(sender),
      options_(std::move(options)),
      filter_(EventFilter::Parse(options_.event_types)) {}

void NotifierService::RefreshRoutes() {
  {
    std::lock_guard<std::mutex> lock(routes_mu_);
    if (routes_read_ && absl::Now() - routes_read_at_ < options_.routes_refresh) return;
  }
  Routes routes;
  service::ResourceStore resources(kv_);
  absl::StatusOr<std::vector<service::StoredResource>> providers =
      resources.List("NotificationProvider");
  absl::StatusOr<std::vector<service::StoredResource>> alerts = resources.List("Alert");
  if (!providers.ok() || !alerts.ok()) {
    // Keep the last routes: a KV hiccup must not drop notifications.
    log::Warn("cannot read notification providers and alerts",
              {{"error", providers.ok() ? alerts.status() : providers.status()}});
    return;
  }
  for (const service::StoredResource& r : *providers) {
    absl::StatusOr<Provider> p = ProviderOf(r.name, r.object);
    if (!p.ok()) {
      routes.errors.push_back(std::string(p.status().message()));
      continue;
    }
    routes.providers.emplace(r.name, *std::move(p));
  }
  for (const service::StoredResource& r : *alerts) {
    absl::StatusOr<Alert> a = AlertOf(r.name, r.object);
    if (!a.ok()) {
      routes.errors.push_back(std::string(a.status().message()));
      continue;
    }
    if (!routes.providers.contains(a->provider)) {
      routes.errors.push_back(strings::Cat("Alert ", r.name, ": spec.providerRef names \"",
                                           a->provider, "\", which is not a usable provider"));
    }
    routes.alerts.push_back(*std::move(a));
  }
  std::lock_guard<std::mutex> lock(routes_mu_);
  for (const std::string& e : routes.errors) {
    if (std::find(routes_.errors.begin(), routes_.errors.end(), e) == routes_.errors.end()) {
      log::Warn("notification routing", {{"error", e}});  // once per problem
    }
  }
  routes_ = std::move(routes);
  routes_read_ = true;
  routes_read_at_ = absl::Now();
}

std::vector<Subscription> NotifierService::SubscriptionsOf(const std::string& application) {
  {
    std::lock_guard<std::mutex> lock(routes_mu_);
    if (auto it = subscriptions_.find(application);
        it != subscriptions_.end() && absl::Now() - it->second.read_at < options_.routes_refresh) {
      return it->second.rules;
    }
  }
  Subscriptions read{.read_at = absl::Now()};
  absl::StatusOr<service::StoredResource> app =
      service::ResourceStore(kv_).Get("Application", application);
  if (app.ok()) {
    read.rules = notifier::SubscriptionsOf(app->object);
  } else if (!absl::IsNotFound(app.status())) {
    log::Warn("cannot read the application's notifications",
              {{"application", application}, {"error", app.status()}});
  }
  std::lock_guard<std::mutex> lock(routes_mu_);
  if (subscriptions_.size() > 10000) subscriptions_.clear();  // bounded
  subscriptions_[application] = read;
  return read.rules;
}

std::vector<NotifierService::Target> NotifierService::TargetsFor(
    const driftless::v1::Event& event) {
  std::vector<Target> targets;
  if (filter_.Matches(event.type())) {
    for (const std::string& url : options_.urls) {
      targets.push_back(
          {.log_key = url,
           .provider = {
               .name = "", .type = "webhook", .address = url, .timeout = options_.timeout}});
    }
  }
  RefreshRoutes();
  bool any_provider = false;
  {
    std::lock_guard<std::mutex> lock(routes_mu_);
    any_provider = !routes_.providers.empty();
  }
  // Without any provider an application's subscriptions cannot send: no read per event.
  std::vector<Subscription> subscribed;
  if (any_provider && !event.application().empty()) {
    subscribed = SubscriptionsOf(event.application());
  }
  std::lock_guard<std::mutex> lock(routes_mu_);
  std::set<std::string> chosen;
  auto add = [&](const std::string& name) {
    auto p = routes_.providers.find(name);
    if (p == routes_.providers.end() || p->second.suspend) return;
    if (!chosen.insert(name).second) return;  // one delivery per provider
    targets.push_back({.log_key = "provider/" + name, .provider = p->second});
  };
  for (const Alert& alert : routes_.alerts) {
    if (alert.Matches(event)) add(alert.provider);
  }
  for (const Subscription& sub : subscribed) {
    if (sub.on.Matches(event.type())) add(sub.provider);
  }
  return targets;
}

bus::Disposition NotifierService::Handle(const driftless::v1::Event& event,
                                         const bus::Message& message) {
  const std::vector<Target> targets = TargetsFor(event);
  if (targets.empty()) return bus::Disposition::Ack();
  if (event.id().empty()) return bus::Disposition::Term("event without an id: cannot deduplicate");
  log::Logger logger = log::Logger("notifier")
                           .With({{"event", event.id()},
                                  {"type", event.type()},
                                  {"delivery", message.delivery_count}});

  std::string retry_error;
  std::string reject_error;
  const bool last_attempt = options_.max_deliver > 0 &&
                            message.delivery_count >= static_cast<uint64_t>(options_.max_deliver);
  auto record_failure = [&](const Target& target, const std::string& error) {
    nlohmann::json record = {{"event", event.id()},
                             {"type", event.type()},
                             {"application", event.application()},
                             {"destination", DestinationName(target.provider)},
                             {"status", "failed"},
                             {"attempts", message.delivery_count},
                             {"error", error},
                             {"failedAt", Now()}};
    const std::string& log_key = target.log_key;
    if (absl::Status s =
            kv_->Put(options_.bucket, FailureKey(event.id(), log_key), record.dump()).status();
        !s.ok()) {
      logger.Warn("cannot record the failed delivery", {{"error", s}});
    }
  };
  for (const Target& target : targets) {
    const std::string key = DeliveryKey(event.id(), target.log_key);
    const std::string safe_url = LogName(target.provider);
    absl::StatusOr<bus::KvEntry> logged = kv_->Get(options_.bucket, key);
    if (logged.ok()) {
      Deliveries("skipped").Increment();
      logger.Debug("already delivered", {{"url", safe_url}});
      continue;
    }
    if (logged.status().code() != absl::StatusCode::kNotFound) {
      retry_error = strings::Cat("delivery log: ", logged.status().message());
      logger.Warn("cannot read the delivery log", {{"url", safe_url}, {"error", logged.status()}});
      continue;
    }

    absl::StatusOr<OutgoingRequest> request = RequestFor(target.provider, event);
    if (!request.ok()) {
      reject_error = strings::Cat(safe_url, ": ", request.status().message());
      record_failure(target, reject_error);
      continue;
    }
    absl::StatusOr<int> status =
        sender_->Post(request->url, request->body, request->headers, target.provider.timeout);
    Outcome outcome = Classify(status.ok() ? *status : 0, status.status());
    Deliveries(OutcomeName(outcome)).Increment();
    std::string what =
        status.ok() ? strings::Cat("HTTP ", *status) : std::string(status.status().message());
    switch (outcome) {
      case Outcome::kDelivered: {
        nlohmann::json record = {{"event", event.id()},
                                 {"type", event.type()},
                                 {"application", event.application()},
                                 {"destination", DestinationName(target.provider)},
                                 {"status", *status},
                                 {"attempt", message.delivery_count},
                                 {"deliveredAt", Now()}};
        absl::Status recorded = absl::OkStatus();
        for (int attempt = 0; attempt < 3; ++attempt) {
          recorded = kv_->Create(options_.bucket, key, record.dump()).status();
          if (recorded.ok() || recorded.code() == absl::StatusCode::kAlreadyExists) {
            recorded = absl::OkStatus();
            break;
          }
        }
        if (!recorded.ok()) {
          // Delivered but not recorded: a retry may notify twice, which beats not at all.
          retry_error = strings::Cat("delivery log: ", recorded.message());
          logger.Error("delivered but cannot record it", {{"url", safe_url}, {"error", recorded}});
        } else {
          logger.Info("delivered", {{"url", safe_url}, {"status", *status}});
        }
        break;
      }
      case Outcome::kRetry:
        retry_error = strings::Cat(safe_url, ": ", what);
        if (last_attempt) {
          record_failure(target, retry_error);
          logger.Error("delivery failed, giving up", {{"url", safe_url}, {"result", what}});
        } else {
          logger.Warn("delivery failed, will retry", {{"url", safe_url}, {"result", what}});
        }
        break;
      case Outcome::kReject:
        reject_error = strings::Cat(safe_url, ": ", what);
        record_failure(target, reject_error);
        logger.Error("delivery rejected", {{"url", safe_url}, {"result", what}});
        break;
    }
  }
  if (!retry_error.empty()) {
    return bus::Disposition::Nak(RetryDelay(message.delivery_count, options_.initial_backoff),
                                 retry_error);
  }
  if (!reject_error.empty()) return bus::Disposition::Term(reject_error);
  return bus::Disposition::Ack();
}

}  // namespace driftless::notifier
