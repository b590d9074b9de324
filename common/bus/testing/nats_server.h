// A real nats-server with JetStream as a child process, for integration tests.
//
//   ASSERT_OK_AND_ASSIGN(auto server, NatsServerProcess::Start(temp_dir + "/js"));
//   auto conn = NatsConnection::Connect(server->url(), "test");
//   ASSERT_OK(server->Restart());     // same port, same store dir
//
// Runs `nats-server -js -a 127.0.0.1 -p <free port> -sd <store_dir>` (binary from
// $DRIFTLESS_NATS_SERVER, else the first found in /usr/sbin (Debian), /usr/bin, /usr/local/bin),
// output to <store_dir>/nats-server.log.
// Start returns once the server accepts TCP connections (polled with a deadline). The child
// gets SIGKILL if the starting thread's process dies (PR_SET_PDEATHSIG), and the destructor
// stops it by PID. Not thread-safe.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace driftless::bus::testing {

class NatsServerProcess {
 public:
  // `store_dir` is created if missing. kUnavailable if the server does not come up within
  // `startup_deadline` (the message includes the end of its log).
  static absl::StatusOr<std::unique_ptr<NatsServerProcess>> Start(
      const std::string& store_dir, absl::Duration startup_deadline = absl::Seconds(15));

  ~NatsServerProcess();
  NatsServerProcess(const NatsServerProcess&) = delete;
  NatsServerProcess& operator=(const NatsServerProcess&) = delete;

  // Graceful stop (SIGTERM; SIGKILL after 10 s) and wait for exit. OK if already stopped.
  absl::Status Stop();
  // SIGKILL, as in a crash. OK if already stopped.
  absl::Status Kill();
  // Stop (if running), then start again on the same port and store dir.
  absl::Status Restart();
  // Start again after Stop/Kill.
  absl::Status StartAgain();

  bool running() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }
  int port() const { return port_; }
  std::string url() const;
  const std::string& store_dir() const { return store_dir_; }
  std::string log_path() const;

 private:
  NatsServerProcess(std::string store_dir, int port, absl::Duration startup_deadline);
  absl::Status Spawn();
  absl::Status WaitStopped(absl::Duration deadline);

  std::string store_dir_;
  int port_;
  absl::Duration startup_deadline_;
  pid_t pid_ = -1;
};

// A free TCP port on 127.0.0.1 (bound to port 0, then released).
absl::StatusOr<int> PickFreePort();

// A fresh directory under $TEST_TMPDIR or /tmp, removed (recursively) by the destructor.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace driftless::bus::testing
