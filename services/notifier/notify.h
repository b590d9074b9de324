// The notifier's pure core: which events to deliver, the webhook body, the delivery-log key
// and how an HTTP result is handled. No I/O (see notifier_service.h for the shell).
//
//   EventFilter filter = EventFilter::Parse("sync.succeeded,sync.failed");
//   if (filter.Matches(event.type())) {
//     DL_ASSIGN_OR_RETURN(std::string body, WebhookBody(event));
//     ... POST body ...
//     switch (Classify(http_status_or_transport_error)) { ... }
//   }
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "driftless/v1/events.pb.h"

namespace driftless::notifier {

// A set of event type patterns: exact types ("sync.failed"), prefixes ("sync.*") or "*".
class EventFilter {
 public:
  // Comma-separated patterns; blanks around items and empty items are ignored.
  static EventFilter Parse(std::string_view csv);
  // The same from a list of patterns (an Alert's eventTypes, an Application's `on`).
  static EventFilter Of(const std::vector<std::string>& patterns);
  bool Matches(std::string_view type) const;
  const std::vector<std::string>& patterns() const { return patterns_; }

 private:
  std::vector<std::string> patterns_;
};

// "info", "warning", "error", or "" when the event has none.
std::string_view SeverityName(driftless::v1::Severity severity);

// The JSON body POSTed for `event`:
//   {"id","type","time" (RFC 3339),"application","revision","severity" ("info", "warning",
//    "error" or ""),"message","correlationId","emitter","payload" (the oneof payload as
//   protobuf JSON, null if none)}.
// kInternal if the payload cannot be converted (not expected for valid messages).
absl::StatusOr<std::string> WebhookBody(const driftless::v1::Event& event);

// The delivery-log key of (event, URL): "d.<16 hex of sha256(id)>.<16 hex of sha256(url)>".
// Hashes keep webhook URLs (which may carry tokens) out of the key.
std::string DeliveryKey(std::string_view event_id, std::string_view url);

// The key of the record of a delivery that finally failed (dead-lettered): "f.<...>.<...>",
// same hashes as DeliveryKey. Not consulted before sending: a replayed dead letter is sent.
std::string FailureKey(std::string_view event_id, std::string_view url);

// What the result of one POST means.
enum class Outcome {
  kDelivered,  // 2xx: record it; never send again
  kRetry,      // 5xx, 408, 425, 429, timeouts, connection errors: redeliver with backoff
  kReject,     // other statuses (4xx, 3xx), malformed URL: dead-letter, do not retry
};
// `transport` is the error of a POST that got no HTTP response (then `http_status` is
// ignored): transient codes (kUnavailable, kDeadlineExceeded, ...) retry, others reject.
Outcome Classify(int http_status, const absl::Status& transport);
std::string_view OutcomeName(Outcome outcome);

// A webhook URL as it may appear in logs and errors: userinfo, query and fragment dropped
// ("https://u:p@h/x?token=t" -> "https://h/x"). Webhook URLs are secrets; the path may still
// identify the receiver, which is what an operator needs to know.
std::string UrlForLog(std::string_view url);

// Redelivery delay after the `delivery`-th attempt failed (1-based): initial * 2^(n-1), at
// most `max`.
absl::Duration RetryDelay(uint64_t delivery, absl::Duration initial = absl::Seconds(1),
                          absl::Duration max = absl::Seconds(60));

}  // namespace driftless::notifier
