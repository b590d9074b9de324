#include "common/http/server.h"

#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <exception>
#include <mutex>
#include <thread>

#include "common/http/process_metrics.h"

namespace driftless::http {
namespace {

constexpr const char* kMetricsContentType = "text/plain; version=0.0.4; charset=utf-8";

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

// Exact-match regex for `path`, with a trailing "/*" turned into "/.*".
std::string PathPattern(std::string_view path) {
  bool prefix = path.size() >= 2 && path.substr(path.size() - 2) == "/*";
  if (prefix) path.remove_suffix(1);
  std::string out;
  for (char c : path) {
    if (std::strchr(".[]{}()\\*+?^$|", c) != nullptr) out += '\\';
    out += c;
  }
  if (prefix) out += ".*";
  return out;
}

Request Convert(const httplib::Request& in) {
  Request r;
  r.method = in.method;
  r.path = in.path;
  r.body = in.body;
  r.remote_address = in.remote_addr;
  r.headers.assign(in.headers.begin(), in.headers.end());
  r.query.assign(in.params.begin(), in.params.end());
  return r;
}

void Apply(const Response& in, httplib::Response& out) {
  out.status = in.status;
  for (const auto& [k, v] : in.headers) out.set_header(k, v);
  out.set_content(in.body, in.content_type);
}

struct Route {
  std::string method;  // "GET" or "POST"
  std::string path;
  size_t max_body_bytes;
  Handler handler;
};

}  // namespace

std::string Request::Header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (EqualsIgnoreCase(k, name)) return v;
  }
  return "";
}

std::string Request::Query(std::string_view name) const {
  for (const auto& [k, v] : query) {
    if (k == name) return v;
  }
  return "";
}

struct Server::Impl {
  explicit Impl(ServerOptions o) : options(std::move(o)) {
    if (options.registry == nullptr) options.registry = &metrics::Registry::Default();
  }

  void ServeReadyz(httplib::Response& res) {
    std::vector<std::pair<std::string, ReadinessCheck>> snapshot;
    {
      std::lock_guard<std::mutex> lock(checks_mu);
      snapshot = checks;
    }
    std::string failures;
    for (const auto& [name, check] : snapshot) {
      absl::Status s = check ? check() : absl::InternalError("no check function");
      if (!s.ok()) failures += name + ": " + s.ToString() + "\n";
    }
    if (failures.empty()) {
      res.status = 200;
      res.set_content("ok\n", "text/plain; charset=utf-8");
    } else {
      res.status = 503;
      res.set_content(failures, "text/plain; charset=utf-8");
    }
  }

  ServerOptions options;
  std::vector<Route> routes;
  std::mutex checks_mu;
  std::vector<std::pair<std::string, ReadinessCheck>> checks;  // guarded by checks_mu

  std::mutex lifecycle_mu;  // serialises Start/Stop
  std::unique_ptr<httplib::Server> server;
  std::thread thread;
  std::atomic<int> port{0};
  std::atomic<bool> loop_exited{false};
  bool started = false;
  bool stopped = false;
};

Server::Server(ServerOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}

Server::~Server() { Stop(); }

absl::Status Server::HandleGet(std::string_view path, Handler handler) {
  std::lock_guard<std::mutex> lock(impl_->lifecycle_mu);
  if (impl_->started) return absl::FailedPreconditionError("routes must be added before Start()");
  if (path.empty() || path[0] != '/') {
    return absl::InvalidArgumentError("route path \"" + std::string(path) +
                                      "\" must start with '/'");
  }
  for (std::string_view builtin : {"/healthz", "/readyz", "/metrics"}) {
    if (path == builtin) {
      return absl::AlreadyExistsError("route " + std::string(path) + " is built in");
    }
  }
  for (const Route& r : impl_->routes) {
    if (r.method == "GET" && r.path == path) {
      return absl::AlreadyExistsError("route GET " + std::string(path) + " already exists");
    }
  }
  impl_->routes.push_back(
      Route{"GET", std::string(path), impl_->options.max_body_bytes, std::move(handler)});
  return absl::OkStatus();
}

absl::Status Server::HandlePost(std::string_view path, size_t max_body_bytes, Handler handler) {
  std::lock_guard<std::mutex> lock(impl_->lifecycle_mu);
  if (impl_->started) return absl::FailedPreconditionError("routes must be added before Start()");
  if (path.empty() || path[0] != '/') {
    return absl::InvalidArgumentError("route path \"" + std::string(path) +
                                      "\" must start with '/'");
  }
  for (const Route& r : impl_->routes) {
    if (r.method == "POST" && r.path == path) {
      return absl::AlreadyExistsError("route POST " + std::string(path) + " already exists");
    }
  }
  impl_->routes.push_back(Route{"POST", std::string(path), max_body_bytes, std::move(handler)});
  return absl::OkStatus();
}

void Server::AddReadinessCheck(std::string name, ReadinessCheck check) {
  std::lock_guard<std::mutex> lock(impl_->checks_mu);
  impl_->checks.emplace_back(std::move(name), std::move(check));
}

absl::Status Server::Start() {
  std::lock_guard<std::mutex> lock(impl_->lifecycle_mu);
  if (impl_->started) return absl::FailedPreconditionError("server already started");
  const ServerOptions& o = impl_->options;
  auto svr = std::make_unique<httplib::Server>();

  const int threads = std::max(1, o.worker_threads);
  svr->new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  auto secs = [](std::chrono::milliseconds d) {
    return std::max<time_t>(1, static_cast<time_t>((d.count() + 999) / 1000));
  };
  svr->set_read_timeout(secs(o.read_timeout));
  svr->set_write_timeout(secs(o.write_timeout));
  svr->set_keep_alive_timeout(secs(o.keep_alive_timeout));
  size_t max_body = o.max_body_bytes;
  for (const Route& r : impl_->routes) max_body = std::max(max_body, r.max_body_bytes);
  // httplib answers 413 itself above this; per-route limits are checked below.
  svr->set_payload_max_length(max_body);
  // httplib's default also sets SO_REUSEPORT, which would let a second process bind the
  // same port silently; a port clash must fail Start() instead.
  svr->set_socket_options([](socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, reinterpret_cast<const void*>(&yes), sizeof(yes));
  });
  svr->set_exception_handler(
      [](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
        res.status = 500;
        res.set_content("internal error\n", "text/plain; charset=utf-8");
      });

  svr->Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("ok\n", "text/plain; charset=utf-8");
  });
  Impl* impl = impl_.get();
  svr->Get("/readyz",
           [impl](const httplib::Request&, httplib::Response& res) { impl->ServeReadyz(res); });
  metrics::Registry* registry = o.registry;
  metrics::RegisterProcessMetrics(*registry);
  svr->Get("/metrics", [registry](const httplib::Request&, httplib::Response& res) {
    res.set_content(registry->Render(), kMetricsContentType);
  });
  for (const Route& route : impl_->routes) {
    auto handler = [limit = route.max_body_bytes, h = route.handler](const httplib::Request& req,
                                                                     httplib::Response& res) {
      if (req.body.size() > limit) {
        res.status = 413;
        res.set_content("request body larger than " + std::to_string(limit) + " bytes\n",
                        "text/plain; charset=utf-8");
        return;
      }
      Apply(h(Convert(req)), res);
    };
    if (route.method == "GET") {
      svr->Get(PathPattern(route.path), handler);
    } else {
      svr->Post(PathPattern(route.path), handler);
    }
  }

  int port = o.port;
  if (port == 0) {
    port = svr->bind_to_any_port(o.address);
    if (port < 0) {
      return absl::UnavailableError("cannot bind " + o.address +
                                    " on a free port: " + std::strerror(errno));
    }
  } else if (!svr->bind_to_port(o.address, port)) {
    return absl::UnavailableError("cannot bind " + o.address + ":" + std::to_string(port) + ": " +
                                  std::strerror(errno));
  }
  impl_->port = port;
  httplib::Server* raw = svr.get();
  impl_->server = std::move(svr);
  impl_->loop_exited = false;
  impl_->thread = std::thread([raw, impl] {
    raw->listen_after_bind();
    impl->loop_exited = true;
  });
  // The socket already accepts connections (the kernel queues them); wait until httplib's
  // loop runs so that an early Stop() is not lost (httplib ignores stop() before that).
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!raw->is_running() && !impl->loop_exited && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  impl_->started = true;
  return absl::OkStatus();
}

int Server::port() const { return impl_->port.load(); }

std::string Server::BaseUrl() const {
  return "http://" + impl_->options.address + ":" + std::to_string(port());
}

void Server::Stop() {
  std::lock_guard<std::mutex> lock(impl_->lifecycle_mu);
  if (!impl_->started || impl_->stopped) return;
  impl_->stopped = true;
  // Wait for the accept loop in case Start() gave up waiting for it.
  while (!impl_->server->is_running() && !impl_->loop_exited) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  impl_->server->stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

}  // namespace driftless::http
