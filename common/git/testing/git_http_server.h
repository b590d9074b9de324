// GitHttpServer: a smart-HTTP git server for tests — cpp-httplib in front of
// `git http-backend` (CGI), on 127.0.0.1 with an ephemeral port, optionally over TLS and behind
// Basic or Bearer authentication. Serves every repository under `project_root`.
//
//   ASSERT_OK_AND_ASSIGN(auto server, GitHttpServer::Start({.project_root = dir,
//                                                           .username = "u", .password = "p"}));
//   std::string url = server->BaseUrl() + "/repo";   // http://127.0.0.1:PORT/repo
//
// Test-only; thread-safe; the destructor stops the server and waits for its threads.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "common/status/status.h"

namespace httplib {
class Server;
}

namespace driftless::git::testing {

class GitHttpServer {
 public:
  struct Options {
    std::string project_root;
    // If set, requests must carry Basic auth with these, else 401.
    std::string username;
    std::string password;
    // If set, requests must carry "Authorization: Bearer <token>", else 401.
    std::string bearer_token;
    // If both set, serve HTTPS with this certificate chain and key (PEM files).
    std::string cert_file;
    std::string key_file;
  };

  static absl::StatusOr<std::unique_ptr<GitHttpServer>> Start(Options options);
  ~GitHttpServer();

  // "http://127.0.0.1:PORT" or "https://localhost:PORT" (TLS certificates name hosts).
  std::string BaseUrl() const { return base_url_; }
  int port() const { return port_; }
  // Requests answered with 401 so far.
  int unauthorized_count() const { return unauthorized_.load(); }

 private:
  GitHttpServer() = default;

  Options options_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  std::string base_url_;
  int port_ = 0;
  std::atomic<int> unauthorized_{0};
};

}  // namespace driftless::git::testing
