#include "common/config/shutdown_signal.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <string>

namespace driftless::config {
namespace {

// State shared with the signal handler. Only lock-free atomics and sig_atomic_t are touched
// from the handler.
std::atomic<int> g_write_fd{-1};
volatile sig_atomic_t g_signal = 0;    // first signal received, 0 if none
std::atomic<bool> g_triggered{false};  // signal or programmatic request
std::atomic<bool> g_installed{false};
struct sigaction g_old_term;
struct sigaction g_old_int;

static_assert(std::atomic<int>::is_always_lock_free);
static_assert(std::atomic<bool>::is_always_lock_free);

void Notify(int fd) {
  if (fd < 0) return;
  const char byte = 1;
  // Non-blocking: if the pipe were full it is already readable, which is all we need.
  ssize_t ignored = write(fd, &byte, 1);
  (void)ignored;
}

extern "C" void HandleShutdownSignal(int sig) {
  const int saved_errno = errno;
  if (g_signal != 0) {
    // Second signal: the operator insists.
    _exit(128 + sig);
  }
  g_signal = sig;
  g_triggered.store(true);
  Notify(g_write_fd.load());
  errno = saved_errno;
}

absl::Status Errno(std::string_view what) {
  return absl::InternalError(std::string(what) + ": " + std::strerror(errno));
}

}  // namespace

absl::StatusOr<std::unique_ptr<ShutdownSignal>> ShutdownSignal::Install() {
  bool expected = false;
  if (!g_installed.compare_exchange_strong(expected, true)) {
    return absl::FailedPreconditionError("a ShutdownSignal is already installed");
  }
  int fds[2];
  if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) {
    g_installed.store(false);
    return Errno("pipe2");
  }
  g_signal = 0;
  g_triggered.store(false);
  g_write_fd.store(fds[1]);

  struct sigaction sa;
  std::memset(&sa, 0, sizeof(sa));
  sa.sa_handler = HandleShutdownSignal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  if (sigaction(SIGTERM, &sa, &g_old_term) != 0) {
    absl::Status st = Errno("sigaction(SIGTERM)");
    g_write_fd.store(-1);
    close(fds[0]);
    close(fds[1]);
    g_installed.store(false);
    return st;
  }
  if (sigaction(SIGINT, &sa, &g_old_int) != 0) {
    absl::Status st = Errno("sigaction(SIGINT)");
    sigaction(SIGTERM, &g_old_term, nullptr);
    g_write_fd.store(-1);
    close(fds[0]);
    close(fds[1]);
    g_installed.store(false);
    return st;
  }
  return std::unique_ptr<ShutdownSignal>(new ShutdownSignal(fds[0], fds[1]));
}

ShutdownSignal::~ShutdownSignal() {
  sigaction(SIGTERM, &g_old_term, nullptr);
  sigaction(SIGINT, &g_old_int, nullptr);
  g_write_fd.store(-1);
  close(read_fd_);
  close(write_fd_);
  g_installed.store(false);
}

bool ShutdownSignal::WaitForShutdownFor(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!g_triggered.load()) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return g_triggered.load();
    struct pollfd p = {read_fd_, POLLIN, 0};
    const int rc = poll(&p, 1, static_cast<int>(std::min<int64_t>(left.count(), 1 << 30)));
    if (rc < 0 && errno != EINTR) return g_triggered.load();
  }
  return true;
}

int ShutdownSignal::WaitForShutdown() {
  while (!g_triggered.load()) {
    struct pollfd p = {read_fd_, POLLIN, 0};
    poll(&p, 1, -1);  // EINTR or readable: re-check the flag either way
  }
  return g_signal;
}

void ShutdownSignal::RequestShutdown() {
  g_triggered.store(true);
  Notify(write_fd_);
}

bool ShutdownSignal::IsShutdownRequested() const { return g_triggered.load(); }

}  // namespace driftless::config
