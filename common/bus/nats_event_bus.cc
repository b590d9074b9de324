#include "common/bus/nats_event_bus.h"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "common/bus/internal/nats_internal.h"
#include "common/bus/internal/str.h"
#include "common/log/log.h"
#include "common/status/status.h"

namespace driftless::bus {

std::string DeadLetterSubject(std::string_view prefix, std::string_view subject) {
  return internal::Cat(prefix, ".dlq.", subject);
}

StreamSpec DeadLetterStreamSpec(std::string_view name, std::string_view prefix,
                                absl::Duration max_age) {
  StreamSpec spec;
  spec.name = std::string(name);
  spec.subjects = {internal::Cat(prefix, ".dlq.>")};
  spec.retention = Retention::kLimits;
  spec.max_age = max_age;
  return spec;
}

namespace {

using internal::FromNats;

constexpr char kMsgIdHeader[] = "Nats-Msg-Id";

struct MsgDeleter {
  void operator()(natsMsg* m) const { natsMsg_Destroy(m); }
};
struct PubAckDeleter {
  void operator()(jsPubAck* p) const { jsPubAck_Destroy(p); }
};
struct StreamInfoDeleter {
  void operator()(jsStreamInfo* p) const { jsStreamInfo_Destroy(p); }
};
struct ConsumerInfoDeleter {
  void operator()(jsConsumerInfo* p) const { jsConsumerInfo_Destroy(p); }
};

// Header values must not contain line breaks (they would end the header block).
std::string SanitizeHeaderValue(std::string_view v) {
  std::string out(v);
  for (char& c : out) {
    if (c == '\r' || c == '\n') c = ' ';
  }
  if (out.size() > 4096) out.resize(4096);
  return out;
}

absl::StatusOr<PublishAck> PublishOnce(NatsConnection::Impl* conn, const std::string& subject,
                                       std::string_view data, const std::string& msg_id,
                                       const Headers& headers) {
  natsMsg* raw = nullptr;
  natsStatus s =
      natsMsg_Create(&raw, subject.c_str(), nullptr, data.data(), static_cast<int>(data.size()));
  if (s != NATS_OK) return FromNats(s, internal::Cat("publish ", subject));
  std::unique_ptr<natsMsg, MsgDeleter> msg(raw);
  for (const auto& [key, value] : headers) {
    std::string v = SanitizeHeaderValue(value);
    s = natsMsgHeader_Set(msg.get(), key.c_str(), v.c_str());
    if (s != NATS_OK) return FromNats(s, internal::Cat("publish ", subject, ": header ", key));
  }
  jsPubOptions po;
  jsPubOptions_Init(&po);
  if (!msg_id.empty()) po.MsgId = msg_id.c_str();
  jsPubAck* pa_raw = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  s = js_PublishMsg(&pa_raw, conn->js, msg.get(), &po, &jerr);
  std::unique_ptr<jsPubAck, PubAckDeleter> pa(pa_raw);
  if (s != NATS_OK) {
    if (s == NATS_NO_RESPONDERS && conn->state.load() == ConnectionState::kConnected) {
      return absl::NotFoundError(internal::Cat(
          "publish ", subject,
          ": no JetStream stream captures this subject (or its leader is being elected)"));
    }
    return FromNats(s, jerr, internal::Cat("publish ", subject));
  }
  PublishAck ack;
  ack.stream = pa->Stream != nullptr ? pa->Stream : "";
  ack.sequence = pa->Sequence;
  ack.duplicate = pa->Duplicate;
  return ack;
}

// Whether the server is one node of a cluster (it advertised other nodes, or several URLs
// were given).
bool Clustered(NatsConnection::Impl* conn) {
  char** servers = nullptr;
  int count = 0;
  if (natsConnection_GetServers(conn->nc, &servers, &count) != NATS_OK) return false;
  for (int i = 0; i < count; ++i) free(servers[i]);
  free(servers);
  return count > 1;
}

absl::StatusOr<PublishAck> PublishWithRetry(NatsConnection* connection,
                                            absl::Duration retry_deadline, std::string_view subject,
                                            std::string_view data, std::string_view msg_id,
                                            const Headers& headers) {
  NatsConnection::Impl* conn = connection->impl();
  const std::string subj(subject);
  const std::string id(msg_id);
  const int64_t max_payload = connection->max_payload();
  if (max_payload > 0 && static_cast<int64_t>(data.size()) > max_payload) {
    return absl::InvalidArgumentError(internal::Cat(
        "publish ", subject, ": payload of ", data.size(), " bytes exceeds the NATS max payload (",
        max_payload, " bytes); store it with BlobStore::EncodePayload"));
  }
  const absl::Time deadline = absl::Now() + retry_deadline;
  absl::Duration backoff = absl::Milliseconds(50);
  // "No stream answered" is retried for a while: right after a reconnect the server may still
  // be loading streams (a short grace on one server), and in a cluster a stream whose leader
  // was lost answers nothing until a new one is elected (seconds: the whole deadline).
  std::optional<absl::Time> not_found_deadline;
  while (true) {
    absl::StatusOr<PublishAck> ack = PublishOnce(conn, subj, data, id, headers);
    if (ack.ok()) return ack;
    const absl::StatusCode code = ack.status().code();
    if (code == absl::StatusCode::kNotFound && !not_found_deadline) {
      not_found_deadline = absl::Now() + (Clustered(conn) ? retry_deadline : absl::Seconds(1));
    }
    const bool retryable =
        !id.empty() &&
        (code == absl::StatusCode::kUnavailable || code == absl::StatusCode::kDeadlineExceeded ||
         (code == absl::StatusCode::kNotFound && absl::Now() < *not_found_deadline));
    if (!retryable || absl::Now() + backoff > deadline) return ack.status();
    absl::SleepFor(backoff);  // retry pacing, not synchronisation
    backoff = std::min(backoff * 2, absl::Seconds(1));
  }
}

absl::Status ValidateName(std::string_view what, std::string_view name) {
  if (name.empty()) return absl::InvalidArgumentError(internal::Cat(what, " name is empty"));
  for (char c : name) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-')) {
      return absl::InvalidArgumentError(
          internal::Cat(what, " name \"", name, "\" may only contain [A-Za-z0-9_-]"));
    }
  }
  return absl::OkStatus();
}

constexpr std::string_view kMaxDeliverPrefix = "driftless max_deliver=";

std::string MaxDeliverDescription(int max_deliver) {
  return internal::Cat(kMaxDeliverPrefix, max_deliver > 0 ? max_deliver : 0);
}

// The handler delivery bound of a consumer: from our description, else (a consumer made by
// other tools) the server's MaxDeliver. 0: unlimited.
int MaxDeliverOf(const jsConsumerConfig& config) {
  if (config.Description != nullptr) {
    std::string_view d(config.Description);
    int n = 0;
    if (d.starts_with(kMaxDeliverPrefix) &&
        internal::ParseInt(d.substr(kMaxDeliverPrefix.size()), &n)) {
      return n > 0 ? n : 0;
    }
  }
  return config.MaxDeliver > 0 ? static_cast<int>(config.MaxDeliver) : 0;
}

Headers ReadHeaders(natsMsg* m) {
  Headers headers;
  const char** keys = nullptr;
  int count = 0;
  if (natsMsgHeader_Keys(m, &keys, &count) != NATS_OK) return headers;
  for (int i = 0; i < count; ++i) {
    const char* value = nullptr;
    if (natsMsgHeader_Get(m, keys[i], &value) == NATS_OK && value != nullptr) {
      headers[keys[i]] = value;
    }
  }
  free(static_cast<void*>(keys));
  return headers;
}

class NatsSubscription : public Subscription {
 public:
  NatsSubscription(std::shared_ptr<NatsConnection> connection, natsSubscription* sub,
                   std::string stream, std::string durable, Handler handler, ConsumeOptions options,
                   int max_deliver, absl::Duration ack_wait, absl::Duration publish_retry_deadline)
      : connection_(std::move(connection)),
        sub_(sub),
        stream_(std::move(stream)),
        durable_(std::move(durable)),
        handler_(std::move(handler)),
        options_(std::move(options)),
        max_deliver_(max_deliver),
        ack_wait_(ack_wait),
        publish_retry_deadline_(publish_retry_deadline) {
    if (options_.batch < 1) options_.batch = 1;
    if (options_.fetch_wait < absl::Milliseconds(10)) options_.fetch_wait = absl::Milliseconds(10);
    fetch_thread_ = std::thread([this] { FetchLoop(); });
    if (options_.in_progress_heartbeats && ack_wait_ > absl::ZeroDuration()) {
      heartbeat_thread_ = std::thread([this] { HeartbeatLoop(); });
    }
  }

  ~NatsSubscription() override { Stop(); }

  void Stop() override {
    std::lock_guard<std::mutex> stop_lock(stop_call_mu_);
    if (stopped_) return;
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    { std::lock_guard<std::mutex> lock(hb_mu_); }  // no lost wakeup for HeartbeatLoop
    hb_cv_.notify_all();
    if (fetch_thread_.joinable()) fetch_thread_.join();
    if (heartbeat_thread_.joinable()) heartbeat_thread_.join();
    natsSubscription_Destroy(sub_);
    sub_ = nullptr;
    stopped_ = true;
  }

  absl::Status Health() const override {
    absl::MutexLock lock(&health_mu_);
    return health_;
  }

 private:
  bool Stopping() {
    std::lock_guard<std::mutex> lock(mu_);
    return stop_;
  }

  void SetHealth(absl::Status s) {
    absl::MutexLock lock(&health_mu_);
    health_ = std::move(s);
  }

  void FetchLoop() {
    absl::Duration error_backoff = absl::Milliseconds(100);
    while (!Stopping()) {
      natsMsgList list{};
      jsErrCode jerr = static_cast<jsErrCode>(0);
      natsStatus s = natsSubscription_Fetch(&list, sub_, options_.batch,
                                            internal::ToMillis(options_.fetch_wait), &jerr);
      if (s == NATS_TIMEOUT) {
        natsMsgList_Destroy(&list);
        if (connection_->state() == ConnectionState::kConnected) SetHealth(absl::OkStatus());
        error_backoff = absl::Milliseconds(100);
        continue;
      }
      if (s != NATS_OK) {
        natsMsgList_Destroy(&list);
        SetHealth(FromNats(s, jerr, internal::Cat("fetch from ", stream_, "/", durable_)));
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait_for(lock, absl::ToChronoMilliseconds(error_backoff), [&] { return stop_; });
        error_backoff = std::min(error_backoff * 2, absl::Seconds(2));
        continue;
      }
      SetHealth(absl::OkStatus());
      error_backoff = absl::Milliseconds(100);
      for (int i = 0; i < list.Count; ++i) {
        if (Stopping()) {
          natsMsg_Nak(list.Msgs[i], nullptr);  // hand it to another replica right away
        } else {
          HandleOne(list.Msgs[i]);
        }
      }
      natsMsgList_Destroy(&list);
    }
  }

  void HandleOne(natsMsg* m) {
    Message msg;
    msg.stream = stream_;
    msg.subject = natsMsg_GetSubject(m);
    if (natsMsg_GetDataLength(m) > 0) {
      msg.data.assign(natsMsg_GetData(m), static_cast<size_t>(natsMsg_GetDataLength(m)));
    }
    msg.headers = ReadHeaders(m);
    if (auto it = msg.headers.find(kMsgIdHeader); it != msg.headers.end()) msg.msg_id = it->second;
    jsMsgMetaData* meta = nullptr;
    if (natsMsg_GetMetaData(&meta, m) == NATS_OK) {
      msg.delivery_count = meta->NumDelivered;
      msg.stream_sequence = meta->Sequence.Stream;
      jsMsgMetaData_Destroy(meta);
    }

    if (max_deliver_ > 0 && msg.delivery_count > static_cast<uint64_t>(max_deliver_)) {
      DeadLetter(
          m, msg,
          internal::Cat("delivered ", msg.delivery_count, " times (max_deliver ", max_deliver_,
                        ") without a disposition: the handler crashed or "
                        "exceeded the ack wait every time"));
      return;
    }

    SetCurrent(m);
    Disposition d = handler_(msg);
    SetCurrent(nullptr);

    switch (d.kind()) {
      case Disposition::Kind::kAck:
        AckWithRetry(m, msg);
        break;
      case Disposition::Kind::kNak:
        if (max_deliver_ > 0 && msg.delivery_count >= static_cast<uint64_t>(max_deliver_)) {
          DeadLetter(m, msg,
                     d.error().empty()
                         ? internal::Cat("failed on all ", max_deliver_, " deliveries")
                         : d.error());
        } else if (d.delay() > absl::ZeroDuration()) {
          natsMsg_NakWithDelay(m, internal::ToMillis(d.delay()), nullptr);
        } else {
          natsMsg_Nak(m, nullptr);
        }
        break;
      case Disposition::Kind::kTerm:
        DeadLetter(m, msg, d.error().empty() ? std::string("terminated by handler") : d.error());
        break;
      case Disposition::Kind::kAbandon:
        break;
    }
  }

  // Acknowledges synchronously. A failed ack means the server may redeliver work that is done,
  // so transient failures (server restarting: "no responders", timeouts, disconnected) are
  // retried until the ack wait has passed, after which the server redelivers anyway.
  void AckWithRetry(natsMsg* m, const Message& msg) {
    const absl::Time deadline = absl::Now() + std::max(ack_wait_, absl::Seconds(1));
    absl::Duration backoff = absl::Milliseconds(50);
    while (true) {
      jsErrCode jerr = static_cast<jsErrCode>(0);
      natsStatus s = natsMsg_AckSync(m, nullptr, &jerr);
      if (s == NATS_OK) return;
      absl::Status err =
          FromNats(s, jerr, internal::Cat("ack ", stream_, " #", msg.stream_sequence));
      SetHealth(err);
      if (!IsTransient(err) || absl::Now() + backoff > deadline) return;
      std::unique_lock<std::mutex> lock(mu_);
      // Paced retry; Stop() does not cut it short (the ack is worth finishing).
      cv_.wait_for(lock, absl::ToChronoMilliseconds(backoff), [] { return false; });
      backoff = std::min(backoff * 2, absl::Seconds(1));
    }
  }

  void DeadLetter(natsMsg* m, const Message& msg, const std::string& error) {
    Headers headers = msg.headers;
    headers.erase(kMsgIdHeader);
    headers[kDlqErrorHeader] = error;
    headers[kDlqSubjectHeader] = msg.subject;
    headers[kDlqStreamHeader] = stream_;
    headers[kDlqSequenceHeader] = internal::Cat(msg.stream_sequence);
    headers[kDlqDeliveriesHeader] = internal::Cat(msg.delivery_count);
    absl::StatusOr<PublishAck> ack =
        PublishWithRetry(connection_.get(), publish_retry_deadline_,
                         DeadLetterSubject(options_.dead_letter_prefix, msg.subject), msg.data,
                         internal::Cat("dlq:", stream_, ":", msg.stream_sequence), headers);
    if (!ack.ok()) {
      // Keep the message rather than lose it; it comes back after the delay.
      SetHealth(Annotate(ack.status(), "dead-letter"));
      natsMsg_NakWithDelay(m, 1000, nullptr);
      return;
    }
    natsMsg_Term(m, nullptr);
  }

  void SetCurrent(natsMsg* m) {
    bool was_hung = false;
    {
      std::lock_guard<std::mutex> lock(hb_mu_);
      current_ = m;
      current_since_ = std::chrono::steady_clock::now();
      was_hung = hung_;
      hung_ = false;
      ++generation_;
    }
    if (was_hung && m == nullptr) SetHealth(absl::OkStatus());
    hb_cv_.notify_all();
  }

  // Sends InProgress for the running handler's message every ack_wait / 3.
  void HeartbeatLoop() {
    const auto interval =
        absl::ToChronoMilliseconds(std::max(ack_wait_ / 3, absl::Milliseconds(20)));
    std::unique_lock<std::mutex> lock(hb_mu_);
    while (true) {
      hb_cv_.wait(lock, [&] { return current_ != nullptr || HeartbeatStop(); });
      if (HeartbeatStop()) return;
      const uint64_t gen = generation_;
      if (hb_cv_.wait_for(lock, interval, [&] { return generation_ != gen || HeartbeatStop(); })) {
        continue;
      }
      if (current_ != nullptr && options_.handler_deadline > absl::ZeroDuration() &&
          std::chrono::steady_clock::now() - current_since_ >
              absl::ToChronoMilliseconds(options_.handler_deadline)) {
        // Presumed hung: no more heartbeats, so the item goes to another replica; not ready.
        if (!hung_) {
          hung_ = true;
          SetHealth(absl::DeadlineExceededError(
              internal::Cat("a handler of ", stream_, "/", durable_, " has run longer than ",
                            absl::FormatDuration(options_.handler_deadline))));
        }
        continue;
      }
      // Under hb_mu_: SetCurrent(nullptr) cannot complete (and the message cannot be acked and
      // freed) while this runs.
      if (current_ != nullptr) natsMsg_InProgress(current_, nullptr);
    }
  }

  bool HeartbeatStop() {
    std::lock_guard<std::mutex> lock(mu_);
    return stop_ && current_ == nullptr;
  }

  std::shared_ptr<NatsConnection> connection_;
  natsSubscription* sub_;
  const std::string stream_;
  const std::string durable_;
  const Handler handler_;
  ConsumeOptions options_;
  const int max_deliver_;  // handler deliveries; 0: unlimited
  const absl::Duration ack_wait_;
  const absl::Duration publish_retry_deadline_;

  std::mutex stop_call_mu_;
  bool stopped_ = false;

  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;

  std::mutex hb_mu_;  // guards current_, generation_
  std::condition_variable hb_cv_;
  natsMsg* current_ = nullptr;
  std::chrono::steady_clock::time_point current_since_;
  bool hung_ = false;
  uint64_t generation_ = 0;

  mutable absl::Mutex health_mu_;
  absl::Status health_;

  std::thread fetch_thread_;
  std::thread heartbeat_thread_;
};

}  // namespace

NatsEventBus::NatsEventBus(std::shared_ptr<NatsConnection> connection, NatsEventBusOptions options)
    : connection_(std::move(connection)), options_(options) {}

NatsEventBus::~NatsEventBus() = default;

absl::StatusOr<PublishAck> NatsEventBus::Publish(std::string_view subject, std::string_view data,
                                                 std::string_view msg_id, const Headers& headers) {
  return PublishWithRetry(connection_.get(), options_.publish_retry_deadline, subject, data, msg_id,
                          headers);
}

absl::Status NatsEventBus::EnsureStream(const StreamSpec& spec) {
  DL_RETURN_IF_ERROR(ValidateName("stream", spec.name));
  if (spec.subjects.empty()) {
    return absl::InvalidArgumentError(internal::Cat("stream ", spec.name, ": no subjects"));
  }
  std::vector<const char*> subjects;
  for (const auto& s : spec.subjects) subjects.push_back(s.c_str());
  jsStreamConfig cfg;
  jsStreamConfig_Init(&cfg);
  cfg.Name = spec.name.c_str();
  cfg.Subjects = subjects.data();
  cfg.SubjectsLen = static_cast<int>(subjects.size());
  switch (spec.retention) {
    case Retention::kLimits:
      cfg.Retention = js_LimitsPolicy;
      break;
    case Retention::kWorkQueue:
      cfg.Retention = js_WorkQueuePolicy;
      break;
    case Retention::kInterest:
      cfg.Retention = js_InterestPolicy;
      break;
  }
  cfg.Storage = spec.storage == Storage::kMemory ? js_MemoryStorage : js_FileStorage;
  cfg.MaxAge = internal::ToNanos(spec.max_age);
  cfg.MaxBytes = spec.max_bytes;
  cfg.Discard = spec.discard_new ? js_DiscardNew : js_DiscardOld;
  cfg.Duplicates = internal::ToNanos(spec.duplicate_window);
  cfg.Replicas = spec.replicas < 1 ? 1 : spec.replicas;

  jsCtx* js = connection_->impl()->js;
  jsStreamInfo* si = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus s = js_AddStream(&si, js, &cfg, nullptr, &jerr);
  std::unique_ptr<jsStreamInfo, StreamInfoDeleter> add_info(si);
  if (s == NATS_OK) return absl::OkStatus();
  if (jerr != JSStreamNameExistErr) {
    return FromNats(s, jerr, internal::Cat("create stream ", spec.name));
  }
  si = nullptr;
  jerr = static_cast<jsErrCode>(0);
  s = js_UpdateStream(&si, js, &cfg, nullptr, &jerr);
  std::unique_ptr<jsStreamInfo, StreamInfoDeleter> update_info(si);
  if (s == NATS_OK) return absl::OkStatus();
  absl::Status err = FromNats(s, jerr, internal::Cat("update stream ", spec.name));
  if (err.code() == absl::StatusCode::kUnknown || err.code() == absl::StatusCode::kInternal) {
    return absl::FailedPreconditionError(err.message());
  }
  return err;
}

absl::Status NatsEventBus::EnsureConsumer(const ConsumerSpec& spec) {
  DL_RETURN_IF_ERROR(ValidateName("stream", spec.stream));
  DL_RETURN_IF_ERROR(ValidateName("consumer", spec.durable));
  std::vector<int64_t> backoff;
  for (absl::Duration d : spec.backoff) backoff.push_back(internal::ToNanos(d));
  jsConsumerConfig cc;
  jsConsumerConfig_Init(&cc);
  cc.Durable = spec.durable.c_str();
  cc.AckPolicy = js_AckExplicit;
  cc.DeliverPolicy = js_DeliverAll;
  cc.AckWait = internal::ToNanos(spec.ack_wait);
  // Unlimited on the server; the bound lives in the description (see ConsumerSpec).
  cc.MaxDeliver = -1;
  const std::string description = MaxDeliverDescription(spec.max_deliver);
  cc.Description = description.c_str();
  if (!spec.filter_subject.empty()) cc.FilterSubject = spec.filter_subject.c_str();
  if (!backoff.empty()) {
    cc.BackOff = backoff.data();
    cc.BackOffLen = static_cast<int>(backoff.size());
  }
  cc.MaxAckPending = spec.max_ack_pending;

  jsCtx* js = connection_->impl()->js;
  jsConsumerInfo* ci = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  const std::string what = internal::Cat("consumer ", spec.stream, "/", spec.durable);
  natsStatus s = js_AddConsumer(&ci, js, spec.stream.c_str(), &cc, nullptr, &jerr);
  std::unique_ptr<jsConsumerInfo, ConsumerInfoDeleter> add_info(ci);
  if (s == NATS_OK) return absl::OkStatus();
  if (jerr != JSConsumerNameExistErr && jerr != JSConsumerCreateErr) {
    return FromNats(s, jerr, internal::Cat("create ", what));
  }
  const absl::Status add_err = FromNats(s, jerr, internal::Cat("create ", what));
  ci = nullptr;
  jerr = static_cast<jsErrCode>(0);
  s = js_UpdateConsumer(&ci, js, spec.stream.c_str(), &cc, nullptr, &jerr);
  std::unique_ptr<jsConsumerInfo, ConsumerInfoDeleter> update_info(ci);
  if (s == NATS_OK) return absl::OkStatus();
  absl::Status err =
      FromNats(s, jerr, internal::Cat("update ", what, " (after ", add_err.message(), ")"));
  if (err.code() == absl::StatusCode::kUnknown) return absl::FailedPreconditionError(err.message());
  return err;
}

absl::StatusOr<std::unique_ptr<Subscription>> NatsEventBus::Consume(std::string_view stream,
                                                                    std::string_view durable,
                                                                    Handler handler,
                                                                    const ConsumeOptions& options) {
  DL_RETURN_IF_ERROR(ValidateName("stream", stream));
  DL_RETURN_IF_ERROR(ValidateName("consumer", durable));
  if (!handler) return absl::InvalidArgumentError("Consume: empty handler");
  const std::string stream_name(stream);
  const std::string durable_name(durable);
  const std::string what = internal::Cat("consumer ", stream, "/", durable);
  jsCtx* js = connection_->impl()->js;

  jsConsumerInfo* ci_raw = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus s =
      js_GetConsumerInfo(&ci_raw, js, stream_name.c_str(), durable_name.c_str(), nullptr, &jerr);
  std::unique_ptr<jsConsumerInfo, ConsumerInfoDeleter> ci(ci_raw);
  if (s != NATS_OK) return FromNats(s, jerr, what);
  const int max_deliver = MaxDeliverOf(*ci->Config);
  const absl::Duration ack_wait = absl::Nanoseconds(ci->Config->AckWait);
  std::string subject = ci->Config->FilterSubject != nullptr ? ci->Config->FilterSubject : "";
  if (subject.empty()) {
    // Unfiltered consumer: any subject of the stream binds.
    jsStreamInfo* si_raw = nullptr;
    s = js_GetStreamInfo(&si_raw, js, stream_name.c_str(), nullptr, &jerr);
    std::unique_ptr<jsStreamInfo, StreamInfoDeleter> si(si_raw);
    if (s != NATS_OK) return FromNats(s, jerr, internal::Cat("stream ", stream));
    if (si->Config->SubjectsLen > 0) subject = si->Config->Subjects[0];
  }

  jsSubOptions so;
  jsSubOptions_Init(&so);
  so.Stream = stream_name.c_str();
  so.Consumer = durable_name.c_str();  // bind: never create (and so never delete) the consumer
  so.ManualAck = true;
  natsSubscription* sub = nullptr;
  jerr = static_cast<jsErrCode>(0);
  s = js_PullSubscribe(&sub, js, subject.c_str(), durable_name.c_str(), nullptr, &so, &jerr);
  if (s != NATS_OK) return FromNats(s, jerr, internal::Cat("subscribe to ", what));
  return std::unique_ptr<Subscription>(
      new NatsSubscription(connection_, sub, stream_name, durable_name, std::move(handler), options,
                           max_deliver, ack_wait, options_.publish_retry_deadline));
}

namespace {

// A core NATS subscription answering requests.
class ResponderSubscription : public Subscription {
 public:
  ResponderSubscription(natsConnection* nc, Responder responder)
      : nc_(nc), responder_(std::move(responder)) {}
  ~ResponderSubscription() override { Stop(); }

  absl::Status Start(const std::string& subject, const std::string& queue) {
    natsStatus s = queue.empty()
                       ? natsConnection_Subscribe(&sub_, nc_, subject.c_str(), &OnMessage, this)
                       : natsConnection_QueueSubscribe(&sub_, nc_, subject.c_str(), queue.c_str(),
                                                       &OnMessage, this);
    if (s != NATS_OK) return internal::FromNats(s, internal::Cat("serving ", subject));
    natsSubscription_SetOnCompleteCB(sub_, &OnComplete, this);
    // Registered with the server before Serve returns (a request right after finds it).
    return internal::FromNats(natsConnection_Flush(nc_), internal::Cat("serving ", subject));
  }

  void Stop() override {
    natsSubscription* sub = std::exchange(sub_, nullptr);
    if (sub == nullptr) return;
    // Answers what is queued, then closes; cnats calls OnComplete after the last message
    // callback returned, so nothing runs on this object once that happened.
    if (natsSubscription_Drain(sub) != NATS_OK) natsSubscription_Unsubscribe(sub);
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return complete_; });
    }
    natsSubscription_Destroy(sub);
  }

  absl::Status Health() const override { return absl::OkStatus(); }

 private:
  static void OnMessage(natsConnection* nc, natsSubscription*, natsMsg* msg, void* closure) {
    auto* self = static_cast<ResponderSubscription*>(closure);
    const char* reply = natsMsg_GetReply(msg);
    if (reply != nullptr && *reply != '\0') {
      std::string body = self->responder_(
          std::string_view(natsMsg_GetData(msg), static_cast<size_t>(natsMsg_GetDataLength(msg))));
      if (natsStatus s =
              natsConnection_Publish(nc, reply, body.data(), static_cast<int>(body.size()));
          s != NATS_OK) {
        // The requester times out; say why here (a reply over the max payload, most likely).
        log::Warn("cannot send a reply", {{"subject", natsMsg_GetSubject(msg)},
                                          {"bytes", static_cast<int64_t>(body.size())},
                                          {"error", internal::FromNats(s, "reply")}});
      }
    }
    natsMsg_Destroy(msg);
  }

  static void OnComplete(void* closure) {
    auto* self = static_cast<ResponderSubscription*>(closure);
    std::lock_guard lock(self->mu_);
    self->complete_ = true;
    self->cv_.notify_all();
  }

  natsConnection* nc_;
  Responder responder_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool complete_ = false;            // cnats closed the subscription (OnComplete)
  natsSubscription* sub_ = nullptr;  // owned by the caller of Start/Stop
};

}  // namespace

absl::StatusOr<std::string> NatsEventBus::Request(std::string_view subject, std::string_view data,
                                                  absl::Duration timeout) {
  natsMsg* reply = nullptr;
  const std::string subj(subject);
  natsStatus s = natsConnection_Request(&reply, connection_->impl()->nc, subj.c_str(), data.data(),
                                        static_cast<int>(data.size()), internal::ToMillis(timeout));
  if (s != NATS_OK) return internal::FromNats(s, internal::Cat("request to ", subject));
  std::string body(natsMsg_GetData(reply), static_cast<size_t>(natsMsg_GetDataLength(reply)));
  natsMsg_Destroy(reply);
  return body;
}

absl::StatusOr<std::unique_ptr<Subscription>> NatsEventBus::Serve(std::string_view subject,
                                                                  std::string_view queue,
                                                                  Responder responder) {
  auto sub = std::make_unique<ResponderSubscription>(connection_->impl()->nc, std::move(responder));
  DL_RETURN_IF_ERROR(sub->Start(std::string(subject), std::string(queue)));
  return sub;
}

absl::StatusOr<StreamState> NatsEventBus::GetStreamState(std::string_view stream) {
  DL_RETURN_IF_ERROR(ValidateName("stream", stream));
  const std::string name(stream);
  jsStreamInfo* si_raw = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus s = js_GetStreamInfo(&si_raw, connection_->impl()->js, name.c_str(), nullptr, &jerr);
  std::unique_ptr<jsStreamInfo, StreamInfoDeleter> si(si_raw);
  if (s != NATS_OK) return FromNats(s, jerr, internal::Cat("stream ", stream));
  StreamState state;
  state.messages = si->State.Msgs;
  state.bytes = si->State.Bytes;
  state.first_sequence = si->State.FirstSeq;
  state.last_sequence = si->State.LastSeq;
  state.consumers = si->State.Consumers;
  return state;
}

absl::StatusOr<ConsumerState> NatsEventBus::GetConsumerState(std::string_view stream,
                                                             std::string_view durable) {
  DL_RETURN_IF_ERROR(ValidateName("stream", stream));
  DL_RETURN_IF_ERROR(ValidateName("consumer", durable));
  const std::string s_name(stream);
  const std::string d_name(durable);
  jsConsumerInfo* ci_raw = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus s = js_GetConsumerInfo(&ci_raw, connection_->impl()->js, s_name.c_str(),
                                    d_name.c_str(), nullptr, &jerr);
  std::unique_ptr<jsConsumerInfo, ConsumerInfoDeleter> ci(ci_raw);
  if (s != NATS_OK) return FromNats(s, jerr, internal::Cat("consumer ", stream, "/", durable));
  ConsumerState state;
  state.num_pending = ci->NumPending;
  state.num_ack_pending = ci->NumAckPending;
  state.num_redelivered = ci->NumRedelivered;
  state.ack_floor_stream_sequence = ci->AckFloor.Stream;
  state.max_deliver = MaxDeliverOf(*ci->Config);
  state.ack_wait = absl::Nanoseconds(ci->Config->AckWait);
  return state;
}

}  // namespace driftless::bus
