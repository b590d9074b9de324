#include "common/git/testing/stub_tcp_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <utility>

namespace driftless::git::testing {

StubTcpServer::StubTcpServer(Options options) : options_(std::move(options)) {
  listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (listen_fd_ < 0 || bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) < 0 ||
      listen(listen_fd_, options_.accept_connections ? 16 : 0) < 0 ||
      getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) < 0) {
    std::perror("StubTcpServer");
    std::abort();  // test setup cannot continue without a listener
  }
  port_ = ntohs(addr.sin_port);
  if (options_.accept_connections) thread_ = std::thread([this] { Run(); });
}

StubTcpServer::~StubTcpServer() {
  // Wakes a blocked accept() (Linux: it fails with EINVAL) without closing the descriptor
  // under the thread's feet.
  shutdown(listen_fd_, SHUT_RDWR);
  if (thread_.joinable()) thread_.join();
  close(listen_fd_);
  std::lock_guard<std::mutex> lock(mu_);
  for (int fd : connections_) close(fd);
}

void StubTcpServer::Run() {
  while (true) {
    int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      return;  // shut down
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      connections_.push_back(fd);
    }
    accepted_.fetch_add(1);
    if (options_.on_connection) options_.on_connection(fd);
  }
}

}  // namespace driftless::git::testing
