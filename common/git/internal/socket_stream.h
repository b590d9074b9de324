// The TCP socket stream libgit2 uses for every plain connection, with connect and read/write
// timeouts that libgit2 1.5 lacks (GIT_OPT_SET_SERVER_TIMEOUT arrived in 1.7). Written here
// because no Debian package provides one.
//
// RegisterSocketStream() installs it process-wide with git_stream_register(GIT_STREAM_STANDARD):
// libgit2 1.5's git_socket_stream_new() asks the registry first, and it is what the http://
// and git:// transports call, what the mbedTLS stream wraps for https://, and what the SSH
// transport connects with. The timeouts come from the NetworkScope active on the calling thread
// (libgit2 does its network I/O on the thread that called it), or the StreamTimeouts defaults
// when there is none.
//
//   internal::NetworkScope scope({.connect = 10s, .read = 60s}, deadline);
//   int rc = git_remote_connect(...);             // streams opened here obey `scope`
//   if (rc < 0 && scope.timeout()) ...            // kDeadlineExceeded, see StreamTimeout
//
// SSH: libgit2 1.5 connects through this stream (so the connect timeout applies) but then hands
// the file descriptor to libssh2, which does its own blocking reads with no timeout: a silent
// SSH server still blocks indefinitely. The stream's memory layout therefore starts like
// libgit2's private git_socket_stream ({git_stream parent; char* host; char* port; int s;}),
// because the SSH transport reads the descriptor through that struct.
//
// DNS resolution (getaddrinfo) is not covered by any timeout.
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include "common/status/status.h"

struct git_stream;

namespace driftless::git::internal {

struct StreamTimeouts {
  // Budget for establishing the TCP connection (all addresses of the host together).
  std::chrono::milliseconds connect{10'000};
  // Longest wait for any byte to arrive (or for room to send); restarts with every read or
  // write call, so a slow but live transfer never trips it.
  std::chrono::milliseconds read{60'000};
  // A zero or negative value disables that timeout.
};

// Why a stream gave up waiting.
struct StreamTimeout {
  // True if the wait was cut short by the operation deadline of the NetworkScope rather than
  // by a connect/read timeout.
  bool operation_deadline = false;
  // "read timed out after 500ms without data from 127.0.0.1:4242" (names no URL or secret).
  std::string message;
};

// Registers the stream with libgit2 (once per process; later calls return the first result).
// Call after git_libgit2_init(). kInternal if libgit2 refused the registration.
absl::Status RegisterSocketStream();

// While alive, streams used by libgit2 on this thread use `timeouts`, never wait past
// `deadline` (if set), and record the first timeout they hit here. Scopes nest (the innermost
// applies) and must be destroyed on the thread that created them, innermost first. Not movable:
// streams find it through a thread-local pointer.
class NetworkScope {
 public:
  NetworkScope(StreamTimeouts timeouts,
               std::optional<std::chrono::steady_clock::time_point> deadline);
  ~NetworkScope();
  NetworkScope(const NetworkScope&) = delete;
  NetworkScope& operator=(const NetworkScope&) = delete;

  // The first timeout a stream hit while this scope was active, if any. libgit2 may replace
  // its own error message (the TLS layer does), so callers check this, not git_error_last().
  const std::optional<StreamTimeout>& timeout() const { return timeout_; }

  // The scope active on this thread, or nullptr.
  static NetworkScope* Current();

  const StreamTimeouts& timeouts() const { return timeouts_; }
  const std::optional<std::chrono::steady_clock::time_point>& deadline() const { return deadline_; }
  // Keeps the first timeout only.
  void RecordTimeout(StreamTimeout timeout);

 private:
  StreamTimeouts timeouts_;
  std::optional<std::chrono::steady_clock::time_point> deadline_;
  std::optional<StreamTimeout> timeout_;
  NetworkScope* previous_;
};

// A new unconnected stream to host:port, as libgit2 gets it. The caller owns it (release with
// stream->free). For tests of the stream itself.
int NewSocketStreamForTest(git_stream** out, const char* host, const char* port);

}  // namespace driftless::git::internal
