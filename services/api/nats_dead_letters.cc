#include "services/api/nats_dead_letters.h"

#include <nats/nats.h>

#include <cstdlib>
#include <utility>

#include "common/bus/internal/nats_internal.h"
#include "common/strings/str.h"
#include "services/common/topology.h"

namespace driftless::api {
namespace {

struct MsgDeleter {
  void operator()(natsMsg* m) const { natsMsg_Destroy(m); }
};
using MsgPtr = std::unique_ptr<natsMsg, MsgDeleter>;

struct StreamInfoDeleter {
  void operator()(jsStreamInfo* p) const { jsStreamInfo_Destroy(p); }
};

struct MetaDeleter {
  void operator()(jsMsgMetaData* p) const { jsMsgMetaData_Destroy(p); }
};

// Owns an ordered consumer's subscription: unsubscribing removes the consumer on the server.
struct SubscriptionCloser {
  void operator()(natsSubscription* sub) const {
    natsSubscription_Unsubscribe(sub);
    natsSubscription_Destroy(sub);
  }
};

// Every header of `msg`, the first value of each name.
bus::Headers HeadersOf(natsMsg* msg) {
  bus::Headers headers;
  const char** keys = nullptr;
  int count = 0;
  if (natsMsgHeader_Keys(msg, &keys, &count) != NATS_OK) return headers;
  for (int i = 0; i < count; ++i) {
    const char* value = nullptr;
    if (natsMsgHeader_Get(msg, keys[i], &value) == NATS_OK && value != nullptr) {
      headers[keys[i]] = value;
    }
  }
  free(static_cast<void*>(keys));
  return headers;
}

StoredDeadLetter ToStored(natsMsg* msg, uint64_t sequence, int64_t time_nanos) {
  StoredDeadLetter letter;
  letter.sequence = sequence;
  const char* subject = natsMsg_GetSubject(msg);
  letter.subject = subject != nullptr ? subject : "";
  letter.time = time_nanos > 0 ? absl::FromUnixNanos(time_nanos) : absl::InfinitePast();
  letter.headers = HeadersOf(msg);
  const char* data = natsMsg_GetData(msg);
  if (data != nullptr) letter.data.assign(data, static_cast<size_t>(natsMsg_GetDataLength(msg)));
  return letter;
}

}  // namespace

NatsDeadLetterStore::NatsDeadLetterStore(std::shared_ptr<bus::NatsConnection> connection,
                                         std::string stream, std::string subjects)
    : connection_(std::move(connection)),
      stream_(stream.empty() ? service::kDeadLetterStream : std::move(stream)),
      subjects_(subjects.empty() ? bus::DeadLetterSubject(service::kSubjectPrefix, ">")
                                 : std::move(subjects)) {}

absl::StatusOr<DeadLetterStore::Page> NatsDeadLetterStore::List(uint64_t start_sequence,
                                                                int limit) {
  bus::NatsConnection::Impl* impl = connection_->impl();
  if (impl == nullptr || impl->js == nullptr) {
    return absl::UnavailableError(strings::Cat("listing ", stream_, ": not connected to NATS"));
  }
  if (limit < 1) return absl::InvalidArgumentError(strings::Cat("limit ", limit, " is below 1"));
  start_sequence = std::max<uint64_t>(start_sequence, 1);

  // The last stored sequence: where the page ends at the latest, so an empty tail is answered
  // without waiting for a message that will not come.
  auto last_sequence = [&]() -> absl::StatusOr<uint64_t> {
    jsStreamInfo* raw = nullptr;
    jsErrCode js_error = static_cast<jsErrCode>(0);
    natsStatus s = js_GetStreamInfo(&raw, impl->js, stream_.c_str(), nullptr, &js_error);
    std::unique_ptr<jsStreamInfo, StreamInfoDeleter> info(raw);
    if (s != NATS_OK) {
      absl::Status status = bus::internal::FromNats(s, js_error, strings::Cat("stream ", stream_));
      // Not provisioned yet is as transient as a lost connection.
      return absl::IsNotFound(status) ? absl::UnavailableError(status.message()) : status;
    }
    return info->State.Msgs == 0 ? 0 : info->State.LastSeq;
  };
  absl::StatusOr<uint64_t> last = last_sequence();
  if (!last.ok()) return last.status();
  Page page;
  if (*last < start_sequence) return page;

  jsSubOptions options;
  jsSubOptions_Init(&options);
  options.Stream = stream_.c_str();
  options.Ordered = true;
  options.Config.DeliverPolicy = js_DeliverByStartSequence;
  options.Config.OptStartSeq = start_sequence;
  natsSubscription* raw_sub = nullptr;
  jsErrCode js_error = static_cast<jsErrCode>(0);
  natsStatus s =
      js_SubscribeSync(&raw_sub, impl->js, subjects_.c_str(), nullptr, &options, &js_error);
  if (s != NATS_OK) {
    absl::Status status = bus::internal::FromNats(s, js_error, strings::Cat("reading ", stream_));
    return absl::IsNotFound(status) ? absl::UnavailableError(status.message()) : status;
  }
  std::unique_ptr<natsSubscription, SubscriptionCloser> sub(raw_sub);
  const int64_t wait_millis =
      std::max<int64_t>(1, absl::ToInt64Milliseconds(connection_->options().request_timeout));
  uint64_t next = start_sequence;
  while (true) {
    natsMsg* raw = nullptr;
    s = natsSubscription_NextMsg(&raw, sub.get(), wait_millis);
    if (s == NATS_TIMEOUT) {
      // Nothing came: fine if nothing is left (deleted meanwhile), else NATS is too slow.
      last = last_sequence();
      if (!last.ok()) return last.status();
      if (*last < next) {
        page.more = false;
        return page;
      }
      return absl::UnavailableError(strings::Cat("reading ", stream_, ": sequence ", next,
                                                 " or later did not arrive within ", wait_millis,
                                                 " ms"));
    }
    if (s == NATS_SLOW_CONSUMER || s == NATS_MISSED_HEARTBEAT) continue;  // ordered: recovers
    if (s != NATS_OK) {
      absl::Status status = bus::internal::FromNats(s, strings::Cat("reading ", stream_));
      return absl::IsUnavailable(status) ? status : absl::UnavailableError(status.message());
    }
    MsgPtr msg(raw);
    jsMsgMetaData* raw_meta = nullptr;
    if (natsMsg_GetMetaData(&raw_meta, msg.get()) != NATS_OK) continue;  // not a stream message
    std::unique_ptr<jsMsgMetaData, MetaDeleter> meta(raw_meta);
    page.letters.push_back(ToStored(msg.get(), meta->Sequence.Stream, meta->Timestamp));
    next = meta->Sequence.Stream + 1;
    if (meta->NumPending == 0) {
      page.more = false;
      return page;
    }
    if (static_cast<int>(page.letters.size()) >= limit) {
      page.more = true;
      return page;
    }
  }
}

absl::StatusOr<StoredDeadLetter> NatsDeadLetterStore::Get(uint64_t sequence) {
  bus::NatsConnection::Impl* impl = connection_->impl();
  if (impl == nullptr || impl->js == nullptr) {
    return absl::UnavailableError(strings::Cat("reading ", stream_, ": not connected to NATS"));
  }
  natsMsg* raw = nullptr;
  jsErrCode js_error = static_cast<jsErrCode>(0);
  natsStatus s = js_GetMsg(&raw, impl->js, stream_.c_str(), sequence, nullptr, &js_error);
  MsgPtr msg(raw);
  if (s != NATS_OK) {
    return bus::internal::FromNats(s, js_error,
                                   strings::Cat("getting message #", sequence, " of ", stream_));
  }
  return ToStored(msg.get(), natsMsg_GetSequence(msg.get()), natsMsg_GetTime(msg.get()));
}

absl::Status NatsDeadLetterStore::Delete(uint64_t sequence) {
  bus::NatsConnection::Impl* impl = connection_->impl();
  if (impl == nullptr || impl->js == nullptr) {
    return absl::UnavailableError(
        strings::Cat("deleting from ", stream_, ": not connected to NATS"));
  }
  jsErrCode js_error = static_cast<jsErrCode>(0);
  natsStatus s = js_DeleteMsg(impl->js, stream_.c_str(), sequence, nullptr, &js_error);
  if (s == NATS_OK) return absl::OkStatus();
  const std::string what = strings::Cat("deleting message #", sequence, " of ", stream_);
  absl::Status status = bus::internal::FromNats(s, js_error, what);
  // For a sequence that holds no message the server answers "sequence not found", or a failed
  // delete saying "no message found".
  if (js_error == JSSequenceNotFoundErr || js_error == JSNoMessageFoundErr ||
      (js_error == JSStreamMsgDeleteFailed &&
       strings::Contains(std::string(status.message()), "no message found"))) {
    return absl::NotFoundError(status.message());
  }
  return status;
}

}  // namespace driftless::api
