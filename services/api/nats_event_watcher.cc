#include "services/api/nats_event_watcher.h"

#include <nats/nats.h>

#include "common/bus/internal/nats_internal.h"
#include "common/strings/str.h"
#include "services/common/events.h"
#include "services/common/topology.h"

namespace driftless::api {
namespace {

// Poll interval of `cancelled`.
constexpr int64_t kPollMillis = 250;

}  // namespace

absl::Status NatsEventWatcher::Watch(const WatchStart& start, const std::string& type,
                                     const std::function<bool(const v1::Event&)>& sink,
                                     const std::function<bool()>& cancelled) {
  bus::NatsConnection::Impl* impl = connection_->impl();
  if (impl == nullptr || impl->js == nullptr) {
    return absl::UnavailableError("watching events: not connected to NATS");
  }
  std::string subject = service::EventSubject(type.empty() ? ">" : type);
  jsSubOptions options;
  jsSubOptions_Init(&options);
  options.Stream = service::kEventsStream;
  options.Ordered = true;
  switch (start.from) {
    case WatchStart::From::kNew:
      options.Config.DeliverPolicy = js_DeliverNew;
      break;
    case WatchStart::From::kFirst:
      options.Config.DeliverPolicy = js_DeliverAll;
      break;
    case WatchStart::From::kSequence:
      options.Config.DeliverPolicy = js_DeliverByStartSequence;
      options.Config.OptStartSeq = start.sequence;
      break;
    case WatchStart::From::kTime:
      // JetStream takes times after the epoch only; everything stored is after an earlier one.
      if (absl::ToUnixNanos(start.time) <= 0) {
        options.Config.DeliverPolicy = js_DeliverAll;
      } else {
        options.Config.DeliverPolicy = js_DeliverByStartTime;
        options.Config.OptStartTime = absl::ToUnixNanos(start.time);
      }
      break;
  }
  natsSubscription* sub = nullptr;
  jsErrCode js_error = static_cast<jsErrCode>(0);
  natsStatus s = js_SubscribeSync(&sub, impl->js, subject.c_str(), nullptr, &options, &js_error);
  if (s != NATS_OK) {
    absl::Status status = bus::internal::FromNats(s, js_error, "watching events");
    // "no stream" before provisioning is as transient as a lost connection.
    return absl::IsNotFound(status) ? absl::UnavailableError(status.message()) : status;
  }
  absl::Status result;
  while (!cancelled()) {
    natsMsg* msg = nullptr;
    s = natsSubscription_NextMsg(&msg, sub, kPollMillis);
    if (s == NATS_TIMEOUT) continue;
    if (s != NATS_OK) {
      // An ordered consumer recovers from gaps and reconnects by itself; anything else
      // (closed connection, slow consumer) ends the watch and the client re-watches.
      if (s == NATS_SLOW_CONSUMER || s == NATS_MISSED_HEARTBEAT) continue;
      result = bus::internal::FromNats(s, "watching events");
      break;
    }
    absl::StatusOr<v1::Event> event = service::DecodeEvent(
        std::string_view(natsMsg_GetData(msg), static_cast<size_t>(natsMsg_GetDataLength(msg))));
    natsMsg_Destroy(msg);
    if (event.ok() && !sink(*event)) break;
  }
  natsSubscription_Unsubscribe(sub);
  natsSubscription_Destroy(sub);
  if (!result.ok() && !absl::IsUnavailable(result) && !absl::IsDeadlineExceeded(result)) {
    return absl::UnavailableError(result.message());
  }
  return result;
}

}  // namespace driftless::api
