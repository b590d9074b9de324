// The HTTP shell of the emulator: routes Kubernetes REST paths to the Store, negotiates
// discovery/Table content types, streams watches, authenticates (bearer token, client
// certificate) and serves HTTPS with generated material. Also the test hook
// PUT /emulator/v1/status/{group|core}/{version}/{plural}/{namespace|_}/{name}, and fault
// injection for the clients' failure handling:
//   POST /emulator/v1/faults {"method": "PATCH", "pathContains": "/configmaps/web",
//                             "code": 500, "count": 2, "delayMs": 0}
// answers the next `count` matching requests with `code` (a Kubernetes Status: 409 Conflict,
// 429 TooManyRequests, 500 InternalError, 503 ServiceUnavailable, 504 Timeout), after
// `delayMs`; code 0 only delays (a slow server: client timeouts). DELETE clears them all.
//
// Every request but the health probes and the /emulator/ hooks can be delayed by
// ServerOptions::request_delay (a real API server's round trip, for benchmarks). Bodies are
// never brotli-compressed; gzip (level 1) only when ServerOptions::gzip_min_bytes is set, from
// that size on, as kube-apiserver does (compression.h).
//
//   ApiServer server(&store, &clock, options, tls ? &material : nullptr);
//   DL_RETURN_IF_ERROR(server.Start());   // listening once this returns
//   int port = server.port();
//   ...
//   server.Stop();
//
// Thread-safety: Start/Stop from one thread; requests are served by a thread pool
// (options.threads threads; every open connection holds one while it is kept alive, every
// open watch one for its lifetime, and a delayed request sleeps on its own thread, so the pool
// must exceed the number of concurrent connections for requests not to queue).
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "tools/kube-emulator/clock.h"
#include "tools/kube-emulator/compression.h"
#include "tools/kube-emulator/store.h"
#include "tools/kube-emulator/tls.h"

namespace httplib {
class Server;
struct Request;
struct Response;
}  // namespace httplib

namespace driftless::kube_emulator {

struct ServerOptions {
  std::string address = "127.0.0.1";
  int port = 0;                             // 0 = pick a free port
  std::string token;                        // non-empty: require this bearer token (or a cert)
  size_t threads = 256;                     // request threads (connections hold one each)
  size_t max_body_bytes = 3 * 1024 * 1024;  // larger bodies get 413
  std::chrono::milliseconds watch_heartbeat{2000};
  // Added to every API request before it is served (0 = none); not to /healthz, /livez,
  // /readyz nor the /emulator/ test hooks.
  std::chrono::milliseconds request_delay{0};
  // Bodies of at least this many bytes are gzip-compressed (level 1) for clients accepting
  // gzip; negative: never compress (the default; kKubeApiserverGzipMinBytes mimics
  // kube-apiserver).
  long long gzip_min_bytes = -1;
};

class ApiServer {
 public:
  // `tls` null = plain HTTP. Pointers must outlive the server.
  ApiServer(Store* store, const Clock* clock, ServerOptions options, const TlsMaterial* tls);
  ~ApiServer();

  // Binds and starts serving on a background thread. Errors: kUnavailable when the
  // address cannot be bound, kInternal when TLS setup fails.
  absl::Status Start();
  int port() const { return port_; }
  std::string Url() const;
  // Ends watches, stops accepting, joins the serving thread. Idempotent.
  void Stop();

 private:
  void Handle(const httplib::Request& req, httplib::Response& res);
  // Hands res.body to cpp-httplib as a sized content provider (which it never compresses),
  // gzip-compressed when large enough and accepted.
  void FinishBody(const httplib::Request& req, httplib::Response& res) const;
  bool Authenticated(const httplib::Request& req) const;
  // The fault hook: true if it handled (answered) the request.
  bool HandleFaultHook(const httplib::Request& req, httplib::Response& res);
  // A registered fault matching the request, consumed; true if it answered the request.
  bool InjectFault(const httplib::Request& req, httplib::Response& res);

  struct Fault {
    std::string method;          // "" = any
    std::string path_contains;   // "" = any
    int code = 500;              // 0 = delay only
    int count = 1;               // remaining
    int delay_ms = 0;
  };
  std::mutex faults_mu_;
  std::vector<Fault> faults_;

  Store* store_;
  const Clock* clock_;
  ServerOptions options_;
  const TlsMaterial* tls_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
  bool stopped_ = false;
  std::atomic<bool> stopping_{false};
};

// A kubeconfig (YAML) for `server_url`, with CA data when `ca_pem` is non-empty, a token
// when `token` is non-empty and a client certificate when `client_cert_pem` is non-empty.
std::string KubeconfigYaml(const std::string& server_url, const std::string& ca_pem,
                           const std::string& token, const std::string& client_cert_pem,
                           const std::string& client_key_pem);

}  // namespace driftless::kube_emulator
