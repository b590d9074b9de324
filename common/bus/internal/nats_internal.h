// Implementation details shared by the cnats-backed classes: the connection's handles and the
// mapping of cnats errors to absl codes. Includes nats.h; never include from public headers.
#pragma once

#include <nats/nats.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "common/bus/nats_connection.h"

namespace driftless::bus {

struct NatsConnection::Impl {
  NatsConnectionOptions options;
  natsConnection* nc = nullptr;
  jsCtx* js = nullptr;
  std::atomic<ConnectionState> state{ConnectionState::kConnecting};
  std::atomic<int64_t> reconnects{0};
  // Set by the closed callback, the last one cnats delivers; the destructor waits for it so no
  // callback runs after Impl is freed.
  std::mutex closed_mu;
  std::condition_variable closed_cv;
  bool closed = false;

  void SetState(ConnectionState s);
};

namespace internal {

// Maps a cnats status (and JetStream error code, 0 if none) to the most specific absl code,
// with `what` and cnats' last error text in the message:
//   NATS_TIMEOUT -> kDeadlineExceeded; not connected / no responders / I/O -> kUnavailable;
//   NATS_NOT_FOUND, stream/consumer not found -> kNotFound; wrong last sequence -> kAborted;
//   max payload / message too large -> kInvalidArgument; invalid arguments -> kInvalidArgument.
absl::Status FromNats(natsStatus s, jsErrCode js_err, std::string_view what);
inline absl::Status FromNats(natsStatus s, std::string_view what) {
  return FromNats(s, static_cast<jsErrCode>(0), what);
}

// True if cnats' last error text says the expected-last-sequence check failed.
bool LastErrorIsWrongLastSequence();

int64_t ToNanos(absl::Duration d);
int64_t ToMillis(absl::Duration d);

}  // namespace internal
}  // namespace driftless::bus
