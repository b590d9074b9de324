#include "common/git/internal/socket_stream.h"

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <type_traits>
#include <utility>

#include <git2.h>
#include <git2/sys/stream.h>

#include "common/git/internal/str.h"

namespace driftless::git::internal {
namespace {

using Clock = std::chrono::steady_clock;

thread_local NetworkScope* current_scope = nullptr;

// Starts like libgit2 1.5's private git_socket_stream (src/libgit2/streams/socket.h): the SSH
// transport casts the stream it got from git_socket_stream_new() to that struct and hands `fd`
// to libssh2. Keep the first four members as they are.
struct TimeoutStream {
  git_stream parent;
  char* host;  // malloc'd
  char* port;  // malloc'd
  int fd;
};
static_assert(std::is_standard_layout_v<TimeoutStream>);

TimeoutStream* Self(git_stream* s) { return reinterpret_cast<TimeoutStream*>(s); }

std::string HostPort(const TimeoutStream& st) {
  std::string_view host = st.host;
  if (host.find(':') != std::string_view::npos) return Cat("[", host, "]:", st.port);
  return Cat(host, ":", st.port);
}

// "10s" for whole seconds, else "500ms".
std::string FormatDuration(std::chrono::milliseconds d) {
  if (d.count() % 1000 == 0) return Cat(d.count() / 1000, "s");
  return Cat(d.count(), "ms");
}

StreamTimeouts CurrentTimeouts() {
  NetworkScope* scope = NetworkScope::Current();
  return scope ? scope->timeouts() : StreamTimeouts{};
}

std::optional<Clock::time_point> CurrentDeadline() {
  NetworkScope* scope = NetworkScope::Current();
  return scope ? scope->deadline() : std::nullopt;
}

// When a wait for `timeout` starting now must end (nullopt: never).
std::optional<Clock::time_point> TimeoutAt(std::chrono::milliseconds timeout) {
  if (timeout.count() <= 0) return std::nullopt;
  return Clock::now() + timeout;
}

void SetError(int klass, const std::string& message) { git_error_set_str(klass, message.c_str()); }

// Sets the libgit2 error and records the timeout in the active scope. Returns -1.
int TimedOut(bool operation_deadline, std::string message) {
  SetError(GIT_ERROR_NET, message);
  if (NetworkScope* scope = NetworkScope::Current()) {
    scope->RecordTimeout({.operation_deadline = operation_deadline, .message = std::move(message)});
  }
  return -1;
}

enum class Wait { kReady, kTimeout, kDeadline, kError };

// Polls `fd` for `events` until ready, `timeout_at` (kTimeout) or the scope's deadline
// (kDeadline), whichever comes first. kError with errno set if poll fails.
Wait WaitFor(int fd, short events, std::optional<Clock::time_point> timeout_at) {
  std::optional<Clock::time_point> deadline = CurrentDeadline();
  while (true) {
    std::optional<Clock::time_point> limit = timeout_at;
    bool by_deadline = false;
    if (deadline && (!limit || *deadline < *limit)) {
      limit = deadline;
      by_deadline = true;
    }
    int wait_ms = -1;
    if (limit) {
      Clock::time_point now = Clock::now();
      if (now >= *limit) return by_deadline ? Wait::kDeadline : Wait::kTimeout;
      // Round up: a 0 ms poll before the limit would spin.
      auto left = std::chrono::ceil<std::chrono::milliseconds>(*limit - now).count();
      wait_ms = left > INT_MAX ? INT_MAX : static_cast<int>(left);
    }
    pollfd pfd{fd, events, 0};
    int rc = poll(&pfd, 1, wait_ms);
    if (rc > 0) return Wait::kReady;  // errors and hang-ups surface in the next syscall
    if (rc < 0 && errno != EINTR) return Wait::kError;
  }
}

std::string DeadlineMessage(const TimeoutStream& st, std::string_view doing) {
  return Cat("operation deadline reached while ", doing, " ", HostPort(st));
}

// Connects one socket to `addr`; returns the descriptor, or -1 with *err set to an errno
// value, or -2 after a timeout (already reported).
int ConnectOne(const TimeoutStream& st, const addrinfo& addr,
               std::optional<Clock::time_point> timeout_at, std::chrono::milliseconds timeout,
               int* err) {
  int fd =
      socket(addr.ai_family, addr.ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, addr.ai_protocol);
  if (fd < 0) {
    *err = errno;
    return -1;
  }
  if (connect(fd, addr.ai_addr, addr.ai_addrlen) == 0) return fd;
  if (errno != EINPROGRESS && errno != EINTR) {
    *err = errno;
    close(fd);
    return -1;
  }
  switch (WaitFor(fd, POLLOUT, timeout_at)) {
    case Wait::kReady: {
      int so_error = 0;
      socklen_t len = sizeof(so_error);
      if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_error, &len) < 0) so_error = errno;
      if (so_error == 0) return fd;
      *err = so_error;
      close(fd);
      return -1;
    }
    case Wait::kTimeout:
      close(fd);
      TimedOut(false,
               Cat("connect to ", HostPort(st), " timed out after ", FormatDuration(timeout)));
      return -2;
    case Wait::kDeadline:
      close(fd);
      TimedOut(true, DeadlineMessage(st, "connecting to"));
      return -2;
    case Wait::kError:
      *err = errno;
      close(fd);
      return -1;
  }
  return -1;
}

int StreamConnect(git_stream* s) {
  TimeoutStream& st = *Self(s);
  if (st.fd >= 0) return 0;
  std::optional<Clock::time_point> deadline = CurrentDeadline();
  if (deadline && Clock::now() >= *deadline) {
    return TimedOut(true, DeadlineMessage(st, "connecting to"));
  }
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_family = AF_UNSPEC;
  addrinfo* info = nullptr;
  if (int rc = getaddrinfo(st.host, st.port, &hints, &info); rc != 0) {
    SetError(GIT_ERROR_NET, Cat("failed to resolve address for ", st.host, ": ",
                                rc == EAI_SYSTEM ? std::strerror(errno) : gai_strerror(rc)));
    return -1;
  }
  std::chrono::milliseconds timeout = CurrentTimeouts().connect;
  std::optional<Clock::time_point> timeout_at = TimeoutAt(timeout);  // all addresses together
  int err = ECONNREFUSED;
  int fd = -1;
  for (addrinfo* p = info; p != nullptr && fd < 0; p = p->ai_next) {
    fd = ConnectOne(st, *p, timeout_at, timeout, &err);
    if (fd == -2) break;
  }
  freeaddrinfo(info);
  if (fd == -2) return -1;
  if (fd < 0) {
    SetError(GIT_ERROR_NET, Cat("failed to connect to ", HostPort(st), ": ", std::strerror(err)));
    return -1;
  }
  st.fd = fd;
  return 0;
}

ssize_t StreamRead(git_stream* s, void* data, size_t len) {
  TimeoutStream& st = *Self(s);
  std::chrono::milliseconds timeout = CurrentTimeouts().read;
  std::optional<Clock::time_point> timeout_at = TimeoutAt(timeout);
  while (true) {
    ssize_t n = recv(st.fd, data, len, 0);
    if (n >= 0) return n;
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
      SetError(GIT_ERROR_NET,
               Cat("error receiving data from ", HostPort(st), ": ", std::strerror(errno)));
      return -1;
    }
    switch (WaitFor(st.fd, POLLIN, timeout_at)) {
      case Wait::kReady:
        continue;
      case Wait::kTimeout:
        return TimedOut(false, Cat("read timed out after ", FormatDuration(timeout),
                                   " without data from ", HostPort(st)));
      case Wait::kDeadline:
        return TimedOut(true, DeadlineMessage(st, "waiting for data from"));
      case Wait::kError:
        SetError(GIT_ERROR_NET,
                 Cat("error waiting for data from ", HostPort(st), ": ", std::strerror(errno)));
        return -1;
    }
  }
}

// Sends what the socket takes now (at least one byte) and returns the count: libgit2 loops
// over partial writes (git_stream__write_full, mbedTLS).
ssize_t StreamWrite(git_stream* s, const char* data, size_t len, int /*flags*/) {
  TimeoutStream& st = *Self(s);
  std::chrono::milliseconds timeout = CurrentTimeouts().read;
  std::optional<Clock::time_point> timeout_at = TimeoutAt(timeout);
  while (true) {
    ssize_t n = send(st.fd, data, len, MSG_NOSIGNAL);
    if (n >= 0) return n;
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
      SetError(GIT_ERROR_NET,
               Cat("error sending data to ", HostPort(st), ": ", std::strerror(errno)));
      return -1;
    }
    switch (WaitFor(st.fd, POLLOUT, timeout_at)) {
      case Wait::kReady:
        continue;
      case Wait::kTimeout:
        return TimedOut(false, Cat("write timed out after ", FormatDuration(timeout), ": ",
                                   HostPort(st), " accepted no data"));
      case Wait::kDeadline:
        return TimedOut(true, DeadlineMessage(st, "sending data to"));
      case Wait::kError:
        SetError(GIT_ERROR_NET,
                 Cat("error sending data to ", HostPort(st), ": ", std::strerror(errno)));
        return -1;
    }
  }
}

int StreamClose(git_stream* s) {
  TimeoutStream& st = *Self(s);
  if (st.fd < 0) return 0;
  int fd = std::exchange(st.fd, -1);
  // The descriptor is gone even if close fails (EINTR included); nothing to retry.
  close(fd);
  return 0;
}

void StreamFree(git_stream* s) {
  TimeoutStream* st = Self(s);
  StreamClose(s);
  std::free(st->host);
  std::free(st->port);
  delete st;
}

int StreamNew(git_stream** out, const char* host, const char* port) {
  if (out == nullptr || host == nullptr || port == nullptr) {
    SetError(GIT_ERROR_INVALID, "socket stream needs a host and a port");
    return -1;
  }
  auto* st = new TimeoutStream{};
  st->parent.version = GIT_STREAM_VERSION;
  st->parent.encrypted = 0;
  st->parent.proxy_support = 0;
  st->parent.connect = StreamConnect;
  st->parent.certificate = nullptr;
  st->parent.set_proxy = nullptr;
  st->parent.read = StreamRead;
  st->parent.write = StreamWrite;
  st->parent.close = StreamClose;
  st->parent.free = StreamFree;
  st->host = strdup(host);
  st->port = strdup(port);
  st->fd = -1;
  if (st->host == nullptr || st->port == nullptr) {
    StreamFree(&st->parent);
    SetError(GIT_ERROR_NOMEMORY, "out of memory");
    return -1;
  }
  *out = &st->parent;
  return 0;
}

}  // namespace

absl::Status RegisterSocketStream() {
  static std::once_flag once;
  static absl::Status* result = nullptr;
  std::call_once(once, [] {
    git_stream_registration registration{};
    registration.version = GIT_STREAM_VERSION;
    registration.init = StreamNew;
    registration.wrap = nullptr;  // only TLS streams wrap others
    if (git_stream_register(GIT_STREAM_STANDARD, &registration) == 0) {
      result = new absl::Status();
    } else {
      const git_error* e = git_error_last();
      result = new absl::Status(
          absl::InternalError(Cat("registering the socket stream with libgit2 failed: ",
                                  e && e->message ? e->message : "unknown error")));
    }
  });
  return *result;
}

NetworkScope::NetworkScope(StreamTimeouts timeouts, std::optional<Clock::time_point> deadline)
    : timeouts_(timeouts), deadline_(deadline), previous_(current_scope) {
  current_scope = this;
}

NetworkScope::~NetworkScope() { current_scope = previous_; }

NetworkScope* NetworkScope::Current() { return current_scope; }

void NetworkScope::RecordTimeout(StreamTimeout timeout) {
  if (!timeout_) timeout_ = std::move(timeout);
}

int NewSocketStreamForTest(git_stream** out, const char* host, const char* port) {
  return StreamNew(out, host, port);
}

}  // namespace driftless::git::internal
