// DeadLetterStore on NATS JetStream: the dead-letter stream (DRIFTLESS_DLQ, subjects
// "driftless.dlq.>") read through a short-lived ordered consumer (so deleted sequences cost
// nothing), and single messages got and deleted by sequence (JetStream's STREAM.MSG.GET and
// STREAM.MSG.DELETE).
//
//   NatsDeadLetterStore dlq(runtime->connection());
//   ApplicationApi api(&runtime->bus(), &runtime->kv(), runtime->emitter(), &watcher, &dlq);
//
// Uses cnats directly through common/bus/internal (EventBus has no per-sequence access); if
// EventBus grows one, this file becomes a thin adapter.
#pragma once

#include <memory>
#include <string>

#include "common/bus/nats_connection.h"
#include "services/api/application_api.h"

namespace driftless::api {

class NatsDeadLetterStore : public DeadLetterStore {
 public:
  // `stream` and `subjects` default to the backbone's dead-letter stream
  // (services/common/topology.h).
  explicit NatsDeadLetterStore(std::shared_ptr<bus::NatsConnection> connection,
                               std::string stream = "", std::string subjects = "");

  // Thread-safe: every call makes its own requests (List its own consumer, removed when it
  // returns). Waits at most the connection's request timeout for each message; kUnavailable
  // when NATS is down, the stream does not exist yet, or a message does not arrive in time.
  absl::StatusOr<Page> List(uint64_t start_sequence, int limit) override;
  absl::StatusOr<StoredDeadLetter> Get(uint64_t sequence) override;
  absl::Status Delete(uint64_t sequence) override;

 private:
  std::shared_ptr<bus::NatsConnection> connection_;
  std::string stream_;
  std::string subjects_;
};

}  // namespace driftless::api
