// The event bus every driftless service talks through: publish events on subjects, and consume
// work items from durable, shared, at-least-once work queues. Payload-agnostic (bytes in, bytes
// out); protobuf encoding is layered on top by callers.
//
//   bus.EnsureStream({.name = "WORK", .subjects = {"driftless.work.>"},
//                     .retention = Retention::kWorkQueue});
//   bus.EnsureConsumer({.stream = "WORK", .durable = "renderer",
//                       .filter_subject = "driftless.work.render", .max_deliver = 5});
//   bus.Publish("driftless.work.render", bytes, /*msg_id=*/"render:app:rev:digest", {});
//   auto sub = bus.Consume("WORK", "renderer", [&](const Message& m) {
//     absl::Status s = Render(m.data);
//     if (s.ok()) return Disposition::Ack();
//     if (IsTransient(s)) return Disposition::Nak(absl::Seconds(5), s.ToString());
//     return Disposition::Term(s.ToString());     // poison: dead-lettered, never retried
//   }, {});
//
// Delivery contract (all implementations):
// - At least once. A message is removed from a work queue only when a handler returns Ack. A
//   handler that crashes (or returns Abandon) gets its message redelivered after the consumer's
//   ack wait, to any subscriber of the same durable. Handlers must therefore be idempotent.
// - Server restarts: publishing (with a msg_id) and consuming resume by themselves. Across a
//   graceful nats-server restart nothing is lost or processed twice (acks are synchronous and
//   retried). After a server crash (SIGKILL) nothing is lost, but nats-server persists consumer
//   and stream state lazily, so work acknowledged shortly before the crash may be redelivered.
// - Duplicate publishes carrying the same msg_id inside the stream's duplicate window are
//   stored once (Publish reports duplicate = true and the original sequence).
// - Bounded redelivery: a message that was Nak'ed on its max_deliver-th delivery, Term'ed, or
//   delivered more than max_deliver times (its handler kept crashing) is published to the
//   dead-letter subject "<dead_letter_prefix>.dlq.<original subject>" with the error in the
//   header kDlqErrorHeader, then terminated. The dead-letter subject must be captured by a
//   stream (see DeadLetterStreamSpec) that does not overlap the work streams' subjects.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace driftless::bus {

using Headers = std::map<std::string, std::string>;

// Headers set on dead-lettered messages (besides the original message's headers).
inline constexpr char kDlqErrorHeader[] = "Driftless-Dlq-Error";
inline constexpr char kDlqSubjectHeader[] = "Driftless-Dlq-Subject";
inline constexpr char kDlqStreamHeader[] = "Driftless-Dlq-Stream";
inline constexpr char kDlqSequenceHeader[] = "Driftless-Dlq-Sequence";
inline constexpr char kDlqDeliveriesHeader[] = "Driftless-Dlq-Deliveries";

enum class Retention {
  kLimits,     // kept until max_age / max_bytes; any number of consumers
  kWorkQueue,  // removed once acknowledged; one consumer per subject
  kInterest,   // removed once every consumer acknowledged it
};

enum class Storage { kFile, kMemory };

struct StreamSpec {
  std::string name;                   // [A-Za-z0-9_-]+
  std::vector<std::string> subjects;  // may use wildcards; must not overlap other streams
  Retention retention = Retention::kLimits;
  absl::Duration max_age = absl::ZeroDuration();  // zero: unlimited
  int64_t max_bytes = -1;                         // -1: unlimited
  // At a limit: refuse new messages (Publish fails with kResourceExhausted) instead of
  // dropping the oldest. Work streams use it so that nothing is ever dropped silently.
  bool discard_new = false;
  absl::Duration duplicate_window = absl::Minutes(2);
  Storage storage = Storage::kFile;
  // Copies kept by a JetStream cluster (1..5; 3 on a 3-node cluster survives losing a node).
  // A single server accepts only 1. Changing it on an existing stream is a stream update.
  int replicas = 1;
};

// A durable pull consumer. The redelivery bound is enforced by the library, not the server: the
// server redelivers without limit (so a message can never get stuck undelivered and
// un-dead-lettered, e.g. when a delivery is lost to an expired pull request or the dead-letter
// publish fails), and a delivery beyond max_deliver is dead-lettered without calling the
// handler (this also breaks crash loops). max_deliver is kept in the consumer's description.
struct ConsumerSpec {
  std::string stream;
  std::string durable;         // [A-Za-z0-9_-]+, shared by all replicas of a stage
  std::string filter_subject;  // empty: every subject of the stream
  absl::Duration ack_wait = absl::Seconds(30);
  int max_deliver = 5;  // handler invocations before dead-lettering; <= 0: unlimited
  std::vector<absl::Duration> backoff;  // optional redelivery delays after ack-wait expiry
  int max_ack_pending = 1000;           // messages in flight across all subscribers
};

struct PublishAck {
  std::string stream;
  uint64_t sequence = 0;
  bool duplicate = false;  // same msg_id seen inside the duplicate window; not stored again
};

struct StreamState {
  uint64_t messages = 0;
  uint64_t bytes = 0;
  uint64_t first_sequence = 0;
  uint64_t last_sequence = 0;
  int64_t consumers = 0;
};

struct ConsumerState {
  uint64_t num_pending = 0;     // not yet delivered
  int64_t num_ack_pending = 0;  // delivered, not yet acknowledged
  int64_t num_redelivered = 0;
  uint64_t ack_floor_stream_sequence = 0;
  int max_deliver = 0;  // as in ConsumerSpec; 0: unlimited
  absl::Duration ack_wait;
};

// A delivered message. Copies; valid after the handler returns.
struct Message {
  std::string stream;
  std::string subject;
  std::string data;
  Headers headers;
  std::string msg_id;           // the Nats-Msg-Id header, empty if none
  uint64_t delivery_count = 0;  // 1 on first delivery
  uint64_t stream_sequence = 0;
};

// What a handler decided about a message.
class Disposition {
 public:
  enum class Kind {
    kAck,      // done: remove from the work queue
    kNak,      // transient failure: redeliver after `delay` (dead-letter if out of deliveries)
    kTerm,     // poison: dead-letter now, never redeliver
    kAbandon,  // do nothing: the server redelivers after ack wait, as if this process crashed
  };

  static Disposition Ack() { return Disposition(Kind::kAck, absl::ZeroDuration(), ""); }
  static Disposition Nak(absl::Duration delay = absl::ZeroDuration(), std::string error = "") {
    return Disposition(Kind::kNak, delay, std::move(error));
  }
  static Disposition Term(std::string error) {
    return Disposition(Kind::kTerm, absl::ZeroDuration(), std::move(error));
  }
  static Disposition Abandon() { return Disposition(Kind::kAbandon, absl::ZeroDuration(), ""); }

  Kind kind() const { return kind_; }
  absl::Duration delay() const { return delay_; }
  const std::string& error() const { return error_; }

 private:
  Disposition(Kind kind, absl::Duration delay, std::string error)
      : kind_(kind), delay_(delay), error_(std::move(error)) {}
  Kind kind_;
  absl::Duration delay_;
  std::string error_;
};

// Called on the subscription's own thread, one message at a time. Must not throw.
using Handler = std::function<Disposition(const Message&)>;

struct ConsumeOptions {
  int batch = 8;                                        // messages fetched per pull request
  absl::Duration fetch_wait = absl::Milliseconds(500);  // also bounds Stop() latency
  std::string dead_letter_prefix = "driftless";
  // While a handler runs, tell the server it is still in progress every ack_wait / 3, so
  // long handlers are not redelivered to another replica.
  bool in_progress_heartbeats = true;
  // A handler running longer than this (zero: no limit) is presumed hung: its heartbeats stop
  // (so the server redelivers the item to another replica after the ack wait) and Health()
  // reports kDeadlineExceeded until it returns (so the service turns not-ready).
  absl::Duration handler_deadline = absl::ZeroDuration();
};

// A running consumer. Destroying it (or Stop) waits for the current handler to return, then
// stops fetching; fetched-but-unhandled messages are Nak'ed so other replicas get them at once.
// The durable consumer itself stays on the server.
class Subscription {
 public:
  virtual ~Subscription() = default;
  // Idempotent; blocks until the consume thread has exited. Not callable from the handler.
  virtual void Stop() = 0;
  // OK while fetching works; the last fetch error otherwise (the thread keeps retrying).
  virtual absl::Status Health() const = 0;
};

// Answers one request (core NATS request/reply); the reply body. Runs on the serving
// subscription's own thread, one request at a time. Must not throw.
using Responder = std::function<std::string(std::string_view request)>;

// All methods are thread-safe.
class EventBus {
 public:
  virtual ~EventBus() = default;

  // Publishes `data` with `headers`; `msg_id` (may be empty) deduplicates inside the stream's
  // duplicate window. With a msg_id, transient failures are retried internally (safe thanks to
  // deduplication). Errors: kNotFound/kUnavailable if no stream captures the subject or the
  // server is unreachable, kDeadlineExceeded, kInvalidArgument if the payload exceeds the max
  // payload (use BlobStore::EncodePayload for large payloads).
  virtual absl::StatusOr<PublishAck> Publish(std::string_view subject, std::string_view data,
                                             std::string_view msg_id, const Headers& headers) = 0;

  // Creates the stream or updates it to `spec`. Idempotent. kFailedPrecondition if the
  // subjects overlap another stream or an immutable field (retention, storage) differs.
  virtual absl::Status EnsureStream(const StreamSpec& spec) = 0;

  // Creates the durable pull consumer or updates it to `spec`. Idempotent. kNotFound if the
  // stream does not exist.
  virtual absl::Status EnsureConsumer(const ConsumerSpec& spec) = 0;

  // Starts consuming `durable` (created by EnsureConsumer) on a new thread. kNotFound if the
  // stream or consumer does not exist.
  virtual absl::StatusOr<std::unique_ptr<Subscription>> Consume(std::string_view stream,
                                                                std::string_view durable,
                                                                Handler handler,
                                                                const ConsumeOptions& options) = 0;

  // Core NATS request/reply, for queries a service answers from what it holds (nothing is
  // stored: no JetStream). Sends `data` to `subject` and returns the first reply.
  // kUnavailable when nobody serves the subject (or the server is unreachable),
  // kDeadlineExceeded when no reply came within `timeout`.
  virtual absl::StatusOr<std::string> Request(std::string_view subject, std::string_view data,
                                              absl::Duration timeout) = 0;

  // Answers requests on `subject` with `responder`; with several servers in the same `queue`
  // each request goes to one of them. Serves until the subscription is stopped.
  virtual absl::StatusOr<std::unique_ptr<Subscription>> Serve(std::string_view subject,
                                                              std::string_view queue,
                                                              Responder responder) = 0;

  virtual absl::StatusOr<StreamState> GetStreamState(std::string_view stream) = 0;
  virtual absl::StatusOr<ConsumerState> GetConsumerState(std::string_view stream,
                                                         std::string_view durable) = 0;
};

// "<prefix>.dlq.<subject>".
std::string DeadLetterSubject(std::string_view prefix, std::string_view subject);

// A limits stream named `name` capturing "<prefix>.dlq.>", kept for `max_age`.
StreamSpec DeadLetterStreamSpec(std::string_view name, std::string_view prefix,
                                absl::Duration max_age = absl::Hours(24 * 14));

}  // namespace driftless::bus
