#include "services/notifier/notify.h"

#include <algorithm>

#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/time_util.h>

#include "common/manifest/manifest.h"
#include "common/status/status.h"
#include "common/strings/str.h"
#include "nlohmann/json.hpp"

namespace driftless::notifier {
namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

std::string_view SeverityName(driftless::v1::Severity s) {
  switch (s) {
    case driftless::v1::SEVERITY_INFO:
      return "info";
    case driftless::v1::SEVERITY_WARNING:
      return "warning";
    case driftless::v1::SEVERITY_ERROR:
      return "error";
    default:
      return "";
  }
}

EventFilter EventFilter::Of(const std::vector<std::string>& patterns) {
  EventFilter filter;
  for (const std::string& p : patterns) {
    if (std::string_view item = Trim(p); !item.empty()) filter.patterns_.emplace_back(item);
  }
  return filter;
}

EventFilter EventFilter::Parse(std::string_view csv) {
  EventFilter filter;
  for (std::string_view item : strings::Split(csv, ',')) {
    item = Trim(item);
    if (!item.empty()) filter.patterns_.emplace_back(item);
  }
  return filter;
}

bool EventFilter::Matches(std::string_view type) const {
  for (const std::string& p : patterns_) {
    if (p == "*" || p == type) return true;
    if (p.size() >= 2 && p.ends_with(".*") &&
        type.starts_with(std::string_view(p).substr(0, p.size() - 1))) {
      return true;
    }
  }
  return false;
}

absl::StatusOr<std::string> WebhookBody(const driftless::v1::Event& event) {
  nlohmann::json body = {
      {"id", event.id()},
      {"type", event.type()},
      {"time", event.has_time() ? google::protobuf::util::TimeUtil::ToString(event.time()) : ""},
      {"application", event.application()},
      {"revision", event.revision()},
      {"severity", std::string(SeverityName(event.severity()))},
      {"message", event.message()},
      {"correlationId", event.correlation_id()},
      {"emitter", event.emitter()},
      {"payload", nullptr},
  };
  const google::protobuf::Reflection* reflection = event.GetReflection();
  const google::protobuf::OneofDescriptor* oneof =
      event.GetDescriptor()->FindOneofByName("payload");
  if (oneof != nullptr) {
    if (const google::protobuf::FieldDescriptor* field =
            reflection->GetOneofFieldDescriptor(event, oneof)) {
      std::string json;
      google::protobuf::util::JsonPrintOptions options;
      auto status = google::protobuf::util::MessageToJsonString(
          reflection->GetMessage(event, field), &json, options);
      if (!status.ok()) {
        return absl::InternalError(strings::Cat("event ", event.id(), ": payload ", field->name(),
                                                " to JSON: ", std::string(status.message())));
      }
      body["payload"] = nlohmann::json::parse(json, nullptr, /*allow_exceptions=*/false);
    }
  }
  return body.dump();
}

std::string DeliveryKey(std::string_view event_id, std::string_view url) {
  return strings::Cat("d.", manifest::Sha256Hex(event_id).substr(0, 16), ".",
                      manifest::Sha256Hex(url).substr(0, 16));
}

std::string FailureKey(std::string_view event_id, std::string_view url) {
  // Replaced in place rather than `"f" + ...`: GCC 12 at -O3 reports a bogus -Wrestrict on
  // operator+(const char*, string&&).
  std::string key = DeliveryKey(event_id, url);
  key[0] = 'f';
  return key;
}

Outcome Classify(int http_status, const absl::Status& transport) {
  if (!transport.ok()) return IsTransient(transport) ? Outcome::kRetry : Outcome::kReject;
  if (http_status >= 200 && http_status < 300) return Outcome::kDelivered;
  if (http_status >= 500 || http_status == 408 || http_status == 425 || http_status == 429) {
    return Outcome::kRetry;
  }
  return Outcome::kReject;
}

std::string_view OutcomeName(Outcome outcome) {
  switch (outcome) {
    case Outcome::kDelivered:
      return "delivered";
    case Outcome::kRetry:
      return "retry";
    case Outcome::kReject:
      return "rejected";
  }
  return "unknown";
}

std::string UrlForLog(std::string_view url) {
  size_t cut = url.find_first_of("?#");
  if (cut != std::string_view::npos) url = url.substr(0, cut);
  size_t scheme = url.find("://");
  if (scheme == std::string_view::npos) return std::string(url);
  std::string_view rest = url.substr(scheme + 3);
  size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  size_t at = authority.rfind('@');
  if (at != std::string_view::npos) {
    return strings::Cat(url.substr(0, scheme + 3), rest.substr(at + 1));
  }
  return std::string(url);
}

absl::Duration RetryDelay(uint64_t delivery, absl::Duration initial, absl::Duration max) {
  absl::Duration d = initial;
  for (uint64_t i = 1; i < delivery && d < max; ++i) d *= 2;
  return std::min(d, max);
}

}  // namespace driftless::notifier
