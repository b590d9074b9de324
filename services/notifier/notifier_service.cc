#include "services/notifier/notifier_service.h"

#include <google/protobuf/util/time_util.h>

#include "common/http/metrics.h"
#include "common/log/log.h"
#include "common/manifest/manifest.h"
#include "common/strings/str.h"
#include "nlohmann/json.hpp"

namespace driftless::notifier {
namespace {

metrics::Counter& Deliveries(std::string_view result) {
  static auto& family = metrics::Registry::Default().AddCounterFamily(
      "driftless_notifier_deliveries_total",
      "Webhook deliveries by result: delivered, skipped (already delivered), retry, rejected.",
      {"result"});
  return family.WithLabels(std::vector<std::string>{std::string(result)});
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

bus::Disposition NotifierService::Handle(const driftless::v1::Event& event,
                                         const bus::Message& message) {
  if (!filter_.Matches(event.type()) || options_.urls.empty()) return bus::Disposition::Ack();
  if (event.id().empty()) return bus::Disposition::Term("event without an id: cannot deduplicate");
  absl::StatusOr<std::string> body = WebhookBody(event);
  if (!body.ok()) return bus::Disposition::Term(std::string(body.status().message()));
  log::Logger logger = log::Logger("notifier")
                           .With({{"event", event.id()},
                                  {"type", event.type()},
                                  {"delivery", message.delivery_count}});

  std::string retry_error;
  std::string reject_error;
  const bool last_attempt = options_.max_deliver > 0 &&
                            message.delivery_count >= static_cast<uint64_t>(options_.max_deliver);
  auto record_failure = [&](const std::string& url, const std::string& error) {
    nlohmann::json record = {{"event", event.id()}, {"type", event.type()},
                             {"status", "failed"},  {"attempts", message.delivery_count},
                             {"error", error},      {"failedAt", Now()}};
    if (absl::Status s =
            kv_->Put(options_.bucket, FailureKey(event.id(), url), record.dump()).status();
        !s.ok()) {
      logger.Warn("cannot record the failed delivery", {{"url", UrlForLog(url)}, {"error", s}});
    }
  };
  for (const std::string& url : options_.urls) {
    const std::string key = DeliveryKey(event.id(), url);
    const std::string safe_url = UrlForLog(url);
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

    absl::StatusOr<int> status = sender_->Post(
        url, *body, {{"Content-Type", "application/json"}, {"X-Driftless-Event-Id", event.id()}},
        options_.timeout);
    Outcome outcome = Classify(status.ok() ? *status : 0, status.status());
    Deliveries(OutcomeName(outcome)).Increment();
    std::string what =
        status.ok() ? strings::Cat("HTTP ", *status) : std::string(status.status().message());
    switch (outcome) {
      case Outcome::kDelivered: {
        nlohmann::json record = {{"event", event.id()},
                                 {"type", event.type()},
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
          record_failure(url, retry_error);
          logger.Error("delivery failed, giving up", {{"url", safe_url}, {"result", what}});
        } else {
          logger.Warn("delivery failed, will retry", {{"url", safe_url}, {"result", what}});
        }
        break;
      case Outcome::kReject:
        reject_error = strings::Cat(safe_url, ": ", what);
        record_failure(url, reject_error);
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
