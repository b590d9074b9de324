// StubTcpServer: a TCP listener on 127.0.0.1 (ephemeral port) for tests of network failure
// modes: a server that accepts and then says nothing, one that trickles bytes, one that never
// accepts (its backlog fills up and new connections hang in the handshake).
//
//   testing::StubTcpServer silent;                     // accepts, never writes
//   std::string url = "http://127.0.0.1:" + std::to_string(silent.port()) + "/repo.git";
//
// Test-only. Connections are handled one at a time on the server's thread by `on_connection`
// (default: none — the connection stays open and silent). Accepted sockets stay open until the
// destructor, which stops the thread (waiting for a running handler to return) and closes
// every socket.
#pragma once

#include <atomic>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace driftless::git::testing {

class StubTcpServer {
 public:
  struct Options {
    // Called with each accepted socket (blocking mode); the server closes it later.
    std::function<void(int fd)> on_connection;
    // If false, listen with a backlog of 0 and never accept.
    bool accept_connections = true;
  };

  StubTcpServer() : StubTcpServer(Options{}) {}
  explicit StubTcpServer(Options options);
  ~StubTcpServer();
  StubTcpServer(const StubTcpServer&) = delete;
  StubTcpServer& operator=(const StubTcpServer&) = delete;

  int port() const { return port_; }
  // Connections accepted so far.
  int accepted() const { return accepted_.load(); }

 private:
  void Run();

  Options options_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<int> accepted_{0};
  std::mutex mu_;
  std::vector<int> connections_;  // guarded by mu_
  std::thread thread_;
};

}  // namespace driftless::git::testing
