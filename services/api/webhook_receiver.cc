#include "services/api/webhook_receiver.h"

#include <algorithm>

#include "common/log/log.h"
#include "common/manifest/manifest.h"
#include "common/strings/str.h"
#include "services/api/webhook.h"
#include "services/common/events.h"
#include "services/common/state.h"
#include "services/common/topology.h"

namespace driftless::api {
namespace {

using manifest::Json;

WebhookReceiver::Reply Error(int status, std::string message) {
  return {status, Json{{"error", std::move(message)}}.dump()};
}

WebhookReceiver::Reply Ignored(std::string_view reason) {
  return {200, Json{{"result", "ignored"}, {"reason", std::string(reason)}}.dump()};
}

int HttpStatus(const absl::Status& s) {
  switch (s.code()) {
    case absl::StatusCode::kNotFound:
      return 404;
    case absl::StatusCode::kUnauthenticated:
      return 401;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kUnimplemented:
      return 400;
    case absl::StatusCode::kAlreadyExists:
      return 409;
    default:
      return 503;
  }
}

// Buckets beyond this many are pruned of the full ones (idle for a whole refill).
constexpr size_t kMaxBuckets = 10000;

}  // namespace

std::string WebhookReceiver::TakeToken(std::string_view receiver, const std::string& repo_url) {
  const auto now = limits_.now();
  std::lock_guard<std::mutex> lock(mu_);
  // Refills a bucket (a new one starts full); true if it holds a token.
  auto refill = [now](Bucket& b, bool fresh, int burst,
                      std::chrono::steady_clock::duration interval) {
    if (fresh) {
      b.tokens = burst;
    } else if (now > b.updated && interval.count() > 0) {
      b.tokens = std::min<double>(burst, b.tokens + std::chrono::duration<double>(now - b.updated) /
                                                        std::chrono::duration<double>(interval));
    }
    b.updated = now;
    return b.tokens >= 1;
  };
  auto [r, r_fresh] = receiver_buckets_.try_emplace(std::string(receiver));
  auto [u, u_fresh] = repository_buckets_.try_emplace({std::string(receiver), repo_url});
  bool receiver_ok = refill(r->second, r_fresh, limits_.receiver_burst, limits_.receiver_interval);
  bool repo_ok = refill(u->second, u_fresh, limits_.repository_burst, limits_.repository_interval);
  if (!receiver_ok) return strings::Cat("receiver \"", receiver, "\" is over its flood limit");
  if (!repo_ok) {
    return strings::Cat("repository ", repo_url, " is over its flood limit on receiver \"",
                        receiver, "\"");
  }
  r->second.tokens -= 1;
  u->second.tokens -= 1;
  if (repository_buckets_.size() > kMaxBuckets) {
    std::erase_if(repository_buckets_, [&](const auto& entry) {
      const Bucket& b = entry.second;
      return &b != &u->second &&
             now - b.updated >= limits_.repository_interval * limits_.repository_burst;
    });
  }
  if (receiver_buckets_.size() > kMaxBuckets) {
    std::erase_if(receiver_buckets_, [&](const auto& entry) {
      const Bucket& b = entry.second;
      return &b != &r->second &&
             now - b.updated >= limits_.receiver_interval * limits_.receiver_burst;
    });
  }
  return "";
}

WebhookReceiver::Reply WebhookReceiver::Handle(
    std::string_view receiver, const std::function<std::string(std::string_view)>& header,
    std::string_view body) {
  if (receiver.empty() || receiver.find('/') != std::string_view::npos) {
    return Error(404, "POST /hooks/<receiver name>");
  }
  // The HTTP server caps bodies before reading them; this keeps the contract for any caller.
  if (body.size() > kMaxWebhookBodyBytes) {
    return Error(413, strings::Cat("receiver \"", receiver, "\": body of ", body.size(),
                                   " bytes is over the ", kMaxWebhookBodyBytes, " byte limit"));
  }
  absl::StatusOr<service::StoredResource> stored =
      service::ResourceStore(kv_).Get("Receiver", receiver);
  if (absl::IsNotFound(stored.status())) {
    return Error(404, strings::Cat("receiver \"", receiver, "\" not found"));
  }
  if (!stored.ok())
    return Error(HttpStatus(stored.status()), std::string(stored.status().message()));
  const Json& spec = stored->object.value("spec", Json::object());

  WebhookInput input;
  input.receiver = std::string(receiver);
  input.provider = spec.value("type", "");
  input.secret = spec.value("secret", "");
  input.header = header;
  input.body = body;
  absl::StatusOr<WebhookOutcome> outcome = ParseWebhook(input);
  if (!outcome.ok()) {
    log::Warn("webhook refused", {{"receiver", std::string(receiver)},
                                  {"error", std::string(outcome.status().message())}});
    return Error(HttpStatus(outcome.status()), std::string(outcome.status().message()));
  }
  if (!outcome->is_push) return Ignored(outcome->reason);
  if (spec.value("suspend", false)) return Ignored("receiver is suspended");
  if (auto events = spec.find("events");
      events != spec.end() && events->is_array() && !events->empty() &&
      std::find(events->begin(), events->end(), Json(outcome->event)) == events->end()) {
    return Ignored(strings::Cat("event \"", outcome->event, "\" is not in spec.events"));
  }

  const v1::WebhookPush& push = outcome->push;
  if (std::string limited = TakeToken(receiver, push.repo_url()); !limited.empty()) {
    log::Warn("webhook limited", {{"receiver", std::string(receiver)}, {"reason", limited}});
    return Error(429, std::move(limited));
  }
  std::string key = strings::Cat("hook.", receiver, ".", outcome->delivery_id);
  Json record = {{"ref", push.ref()}, {"after", push.after()}, {"repoURL", push.repo_url()}};
  absl::StatusOr<uint64_t> created = kv_->Create(service::kDeliveriesBucket, key, record.dump());
  if (absl::IsAlreadyExists(created.status())) {
    return Error(409, strings::Cat("delivery ", outcome->delivery_id, " to receiver \"", receiver,
                                   "\" was received before"));
  }
  if (!created.ok()) return Error(503, std::string(created.status().message()));

  v1::Event event = service::NewEvent("webhook.push", "", push.after(), emitter_);
  event.set_id(service::EventId("webhook.push", "", push.after(), "",
                                strings::Cat(receiver, "/", outcome->delivery_id)));
  event.set_message(strings::Cat("push to ", push.ref(), " of ", push.repo_url(), " (",
                                 input.provider, " receiver ", receiver, ")"));
  *event.mutable_webhook_push() = push;
  if (absl::Status s = service::Emit(*bus_, event, service::kStagePoll); !s.ok()) {
    // Let the host's retry through: the delivery was not queued.
    (void)kv_->Delete(service::kDeliveriesBucket, key);
    return Error(503, std::string(s.message()));
  }
  log::Info("webhook queued",
            {{"receiver", std::string(receiver)}, {"ref", push.ref()}, {"revision", push.after()}});
  return {202, Json{{"result", "queued"}, {"event", event.id()}}.dump()};
}

}  // namespace driftless::api
