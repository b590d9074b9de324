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
//
// NatsClusterProcess: several such servers clustered on 127.0.0.1 (JetStream clustering, one
// meta group), for replication and fail-over tests:
//
//   ASSERT_OK_AND_ASSIGN(auto cluster, NatsClusterProcess::Start(temp_dir, 3));
//   auto conn = NatsConnection::Connect(cluster->urls(), "test");   // every node's URL
//   ASSERT_OK(cluster->node(1).Kill());  ASSERT_OK(cluster->node(1).StartAgain());
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

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
  // The HTTP monitoring port (/jsz, /connz), 0 if the server has none.
  int monitor_port() const { return monitor_port_; }
  pid_t pid() const { return pid_; }
  int port() const { return port_; }
  std::string url() const;
  const std::string& store_dir() const { return store_dir_; }
  std::string log_path() const;

 private:
  friend class NatsClusterProcess;
  NatsServerProcess(std::string store_dir, int port, absl::Duration startup_deadline);
  absl::Status Spawn();
  absl::Status WaitStopped(absl::Duration deadline);

  std::string store_dir_;
  int port_;
  absl::Duration startup_deadline_;
  int monitor_port_ = 0;
  std::vector<std::string> extra_args_;  // after the common ones (cluster flags)
  pid_t pid_ = -1;
};

// `size` nats-servers with JetStream in one cluster ("c", nodes "n0".."n<size-1>") on free
// ports, each with its own store dir under `base_dir` and a monitoring port. Start returns once
// every node reports a JetStream meta leader (GET /jsz), so streams can be created; kUnavailable
// (with the logs' ends) otherwise. After restarting a node, WaitForMetaLeader again.
class NatsClusterProcess {
 public:
  static absl::StatusOr<std::unique_ptr<NatsClusterProcess>> Start(
      const std::string& base_dir, int size = 3,
      absl::Duration startup_deadline = absl::Seconds(30));

  int size() const { return static_cast<int>(nodes_.size()); }
  NatsServerProcess& node(int i) { return *nodes_[i]; }
  // Every node's client URL, comma-separated (what --nats-url takes).
  std::string urls() const;
  // The index of the node whose client port is `port` (e.g. from a connected URL), or -1.
  int NodeWithPort(int port) const;
  // Every running node reports a meta leader within `deadline`; kUnavailable otherwise.
  absl::Status WaitForMetaLeader(absl::Duration deadline = absl::Seconds(30));

 private:
  NatsClusterProcess() = default;
  std::vector<std::unique_ptr<NatsServerProcess>> nodes_;
};

// GET http://127.0.0.1:<port><path> (HTTP/1.0); the response body. For monitoring endpoints.
absl::StatusOr<std::string> HttpGetLocal(int port, const std::string& path);

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
