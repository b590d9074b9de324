// Turns SIGTERM / SIGINT into a waitable event so main() can stop cleanly.
//
//   absl::StatusOr<std::unique_ptr<ShutdownSignal>> shutdown = ShutdownSignal::Install();
//   if (!shutdown.ok()) { ...; return 1; }
//   StartEverything();
//   int sig = (*shutdown)->WaitForShutdown();   // blocks until SIGTERM/SIGINT
//   StopEverything();
//
// Mechanism: a self-pipe. The signal handler only stores the signal number in a
// sig_atomic_t and write(2)s one byte to a non-blocking pipe, both async-signal-safe; waiters
// poll(2) the read end, which stays readable once triggered, so every waiter (and every later
// wait) wakes. A second SIGTERM/SIGINT after the first one terminates the process immediately
// with _exit(128 + signal), so an operator can force a stuck shutdown.
//
// Only one ShutdownSignal may be installed at a time (signal dispositions are per process);
// Install() returns kFailedPrecondition for a second one. The destructor restores the
// previous handlers. All member functions are thread-safe.
#pragma once

#include <chrono>
#include <memory>

#include "absl/status/statusor.h"

namespace driftless::config {

class ShutdownSignal {
 public:
  // Installs handlers for SIGTERM and SIGINT.
  // Errors: kFailedPrecondition if another instance is installed; kInternal if pipe(2) or
  // sigaction(2) fails.
  static absl::StatusOr<std::unique_ptr<ShutdownSignal>> Install();

  ShutdownSignal(const ShutdownSignal&) = delete;
  ShutdownSignal& operator=(const ShutdownSignal&) = delete;
  ~ShutdownSignal();

  // Blocks until a signal arrived or RequestShutdown() was called. Returns the signal number,
  // or 0 when shutdown was requested programmatically. Returns immediately once triggered.
  int WaitForShutdown();

  // Like WaitForShutdown with a deadline: true if shutdown was triggered within `timeout`.
  bool WaitForShutdownFor(std::chrono::milliseconds timeout);

  // Triggers shutdown without a signal (e.g. a fatal error in a worker thread).
  void RequestShutdown();

  // True once a signal arrived or RequestShutdown() was called. Never blocks.
  bool IsShutdownRequested() const;

  // A file descriptor that becomes (and stays) readable when shutdown is triggered, for
  // callers that multiplex it with their own poll loop. Owned by this object.
  int fd() const { return read_fd_; }

 private:
  ShutdownSignal(int read_fd, int write_fd) : read_fd_(read_fd), write_fd_(write_fd) {}

  const int read_fd_;
  const int write_fd_;
};

}  // namespace driftless::config
