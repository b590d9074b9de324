// The HTTP endpoint every driftless service runs: /healthz, /readyz and Prometheus /metrics,
// plus routes a service adds (the api service's webhooks). Built on cpp-httplib, which stays
// out of this header.
//
//   http::Server server({.address = flags.http_address, .port = flags.http_port});
//   server.AddReadinessCheck("nats", [&] { return bus.Healthy(); });
//   server.HandlePost("/hooks/github", 1 << 20, [&](const http::Request& r) { ... });
//   if (absl::Status s = server.Start(); !s.ok()) { ...; return 1; }
//   log::Info("listening", {{"url", server.BaseUrl()}});
//   shutdown->WaitForShutdown();
//   server.Stop();
//
// Endpoints:
//   GET /healthz  200 "ok" while the process serves requests.
//   GET /readyz   200 "ok" when every readiness check returns OK; otherwise 503 with one line
//                 per failing check: "<name>: <status>". Checks run on each request.
//   GET /metrics  the registry in Prometheus text format 0.0.4 (plus process_* metrics).
//
// Thread-safety: routes must be added before Start(); readiness checks may be added at any
// time; handlers and checks run concurrently on the server's worker threads. Stop() may be
// called from any thread (not from a handler) and is idempotent; the destructor calls it.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "common/http/metrics.h"

namespace driftless::http {

struct Request {
  std::string method;
  std::string path;
  std::string body;
  std::string remote_address;
  std::vector<std::pair<std::string, std::string>> headers;
  std::vector<std::pair<std::string, std::string>> query;  // decoded ?k=v pairs

  // The first header named `name` (case-insensitive), or "" if absent.
  std::string Header(std::string_view name) const;
  // The first query parameter named `name`, or "" if absent.
  std::string Query(std::string_view name) const;
};

struct Response {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

// Handlers must not throw; if one does anyway, the client gets 500.
using Handler = std::function<Response(const Request&)>;
// OK means ready; the message of a non-OK status is shown in the /readyz body.
using ReadinessCheck = std::function<absl::Status()>;

struct ServerOptions {
  std::string address = "127.0.0.1";
  int port = 0;  // 0 picks a free port; see Server::port()
  // Registry served at /metrics; nullptr means metrics::Registry::Default().
  metrics::Registry* registry = nullptr;
  // Body limit of GET routes and the server-wide floor; POST routes set their own.
  size_t max_body_bytes = 64 * 1024;
  int worker_threads = 4;
  std::chrono::milliseconds read_timeout{10000};
  std::chrono::milliseconds write_timeout{10000};
  // How long an idle keep-alive connection may delay Stop().
  std::chrono::milliseconds keep_alive_timeout{1000};
};

class Server {
 public:
  explicit Server(ServerOptions options = {});
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;
  ~Server();

  // Routes. `path` is matched exactly, except that a trailing "/*" matches any suffix
  // ("/hooks/*" matches "/hooks/github"). Errors: kFailedPrecondition after Start();
  // kAlreadyExists for a path registered before or a built-in one (/healthz, /readyz,
  // /metrics); kInvalidArgument for a path not starting with '/'.
  absl::Status HandleGet(std::string_view path, Handler handler);
  // Requests whose body exceeds `max_body_bytes` get 413 without calling the handler.
  absl::Status HandlePost(std::string_view path, size_t max_body_bytes, Handler handler);

  // Adds a named readiness check consulted by /readyz. Thread-safe, any time.
  void AddReadinessCheck(std::string name, ReadinessCheck check);

  // Binds and starts serving on a background thread; returns once the socket is listening.
  // Errors: kFailedPrecondition if already started; kUnavailable if the address cannot be
  // bound (e.g. port in use), naming address and port.
  absl::Status Start();

  // The bound port (useful with port 0); 0 before Start().
  int port() const;
  // "http://<address>:<port>".
  std::string BaseUrl() const;

  // Graceful shutdown: stops accepting, lets in-flight requests finish, joins the threads.
  void Stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace driftless::http
