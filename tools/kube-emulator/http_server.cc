#include "tools/kube-emulator/http_server.h"

#include <httplib.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "common/manifest/manifest.h"
#include "tools/kube-emulator/api_error.h"
#include "tools/kube-emulator/protobuf_decode.h"
#include "tools/kube-emulator/table.h"

namespace driftless::kube_emulator {
namespace {

constexpr char kDiscoveryV2[] =
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";
constexpr char kDiscoveryV2Beta1[] =
    "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList";
constexpr char kTableType[] = "application/json;as=Table;v=v1;g=meta.k8s.io";

// Moves `body` into the response (Response::set_content would copy it).
void SetBody(httplib::Response& res, int code, std::string body, const char* type) {
  res.status = code;
  res.body = std::move(body);
  res.headers.erase("Content-Type");
  res.set_header("Content-Type", type);
}

void SendJson(httplib::Response& res, int code, const Json& body,
              const char* type = "application/json") {
  SetBody(res, code, body.dump(), type);
}

void SendError(httplib::Response& res, const absl::Status& st) {
  Json s = ToKubeStatus(st);
  SendJson(res, s.value("code", 500), s);
}

std::string Param(const httplib::Request& req, const char* name) {
  return req.has_param(name) ? req.get_param_value(name) : "";
}

bool Truthy(const std::string& v) { return v == "true" || v == "1"; }

std::string BaseType(const std::string& content_type) {
  std::string t = content_type.substr(0, content_type.find(';'));
  while (!t.empty() && t.back() == ' ') t.pop_back();
  return t;
}

absl::StatusOr<Json> ParseBody(const httplib::Request& req) {
  std::string type = BaseType(req.get_header_value("Content-Type"));
  if (type.empty() || type == "application/json") {
    Json j = Json::parse(req.body, nullptr, false);
    if (j.is_discarded()) {
      return BadRequestError("couldn't get version/kind; json parse error: invalid JSON");
    }
    if (!j.is_object()) {
      return BadRequestError("couldn't get version/kind; json parse error: expected an object");
    }
    return j;
  }
  if (type == "application/yaml") {
    auto y = manifest::ParseYaml(req.body, "request body");
    if (!y.ok()) {
      return BadRequestError("couldn't get version/kind; yaml parse error: " +
                             std::string(y.status().message()));
    }
    if (!y->is_object()) return BadRequestError("couldn't get version/kind; not an object");
    return *y;
  }
  if (type == "application/vnd.kubernetes.protobuf") {
    auto p = DecodeKubernetesProtobuf(req.body);
    if (p.ok()) return *p;
    if (p.status().code() == absl::StatusCode::kInvalidArgument) {
      return BadRequestError(std::string(p.status().message()));
    }
    return UnsupportedMediaTypeError("application/json, application/yaml");
  }
  return UnsupportedMediaTypeError("application/json, application/yaml");
}

struct Route {
  std::shared_ptr<const ResourceType> rt;
  std::string ns;
  std::string name;
  std::string subresource;
};

// Parses /api/v1/... and /apis/G/V/... resource paths. Returns false when the path is not a
// resource path of a served group version.
bool ParseRoute(Registry& reg, const std::vector<std::string>& seg, Route* out) {
  size_t i;
  std::string group, version;
  if (seg.size() >= 3 && seg[0] == "api") {
    version = seg[1];
    i = 2;
  } else if (seg.size() >= 4 && seg[0] == "apis") {
    group = seg[1];
    version = seg[2];
    i = 3;
  } else {
    return false;
  }
  std::vector<std::string> s(seg.begin() + i, seg.end());
  if (s.size() >= 3 && s[0] == "namespaces") {
    auto rt = reg.Find(group, version, s[2]);
    if (rt && rt->namespaced) {
      out->rt = rt;
      out->ns = s[1];
      if (s.size() > 3) out->name = s[3];
      if (s.size() > 4) out->subresource = s[4];
      return s.size() <= 5;
    }
  }
  auto rt = reg.Find(group, version, s[0]);
  if (!rt) return false;
  out->rt = rt;
  if (s.size() > 1) out->name = s[1];
  if (s.size() > 2) out->subresource = s[2];
  return s.size() <= 3;
}

std::string DefaultManager(const httplib::Request& req) {
  std::string ua = req.get_header_value("User-Agent");
  std::string m = ua.substr(0, ua.find('/'));
  if (m.size() > 128) m.resize(128);
  return m.empty() ? "unknown" : m;
}

}  // namespace

ApiServer::ApiServer(Store* store, const Clock* clock, ServerOptions options,
                     const TlsMaterial* tls)
    : store_(store), clock_(clock), options_(std::move(options)), tls_(tls) {}

ApiServer::~ApiServer() { Stop(); }

std::string ApiServer::Url() const {
  return std::string(tls_ ? "https://" : "http://") +
         (options_.address == "0.0.0.0" ? "127.0.0.1" : options_.address) + ":" +
         std::to_string(port_);
}

absl::Status ApiServer::Start() {
  if (tls_) {
    const TlsMaterial* m = tls_;
    auto server = std::make_unique<httplib::SSLServer>([m](SSL_CTX& ctx) {
      auto load_cert = [](const std::string& pem) {
        BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
        X509* c = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
        BIO_free(bio);
        return c;
      };
      BIO* kb = BIO_new_mem_buf(m->server_key.data(), static_cast<int>(m->server_key.size()));
      EVP_PKEY* key = PEM_read_bio_PrivateKey(kb, nullptr, nullptr, nullptr);
      BIO_free(kb);
      X509* cert = load_cert(m->server_cert);
      X509* ca = load_cert(m->ca_cert);
      bool ok = key && cert && ca && SSL_CTX_use_certificate(&ctx, cert) == 1 &&
                SSL_CTX_use_PrivateKey(&ctx, key) == 1;
      if (ok) {
        SSL_CTX_set_min_proto_version(&ctx, TLS1_2_VERSION);
        X509_STORE_add_cert(SSL_CTX_get_cert_store(&ctx), ca);
        SSL_CTX_add_client_CA(&ctx, ca);
        // Client certificates are optional (token clients send none) but verified when sent.
        SSL_CTX_set_verify(&ctx, SSL_VERIFY_PEER, nullptr);
      }
      EVP_PKEY_free(key);
      X509_free(cert);
      X509_free(ca);
      return ok;
    });
    if (!server->is_valid()) return absl::InternalError("TLS server setup failed");
    server_ = std::move(server);
  } else {
    server_ = std::make_unique<httplib::Server>();
  }
  size_t threads = options_.threads;
  server_->new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  server_->set_payload_max_length(64 * 1024 * 1024);
  server_->set_read_timeout(30, 0);
  server_->set_write_timeout(30, 0);
  server_->set_keep_alive_max_count(1000);
  // Without TCP_NODELAY every response waits for the client's delayed ACK (~40 ms).
  server_->set_tcp_nodelay(true);
  auto handler = [this](const httplib::Request& req, httplib::Response& res) {
    try {
      Handle(req, res);
    } catch (const std::exception& e) {
      SendError(res, absl::InternalError(std::string("internal error: ") + e.what()));
    }
    FinishBody(req, res);
  };
  server_->Get(".*", handler);
  server_->Post(".*", handler);
  server_->Put(".*", handler);
  server_->Patch(".*", handler);
  server_->Delete(".*", handler);
  server_->Options(".*", handler);
  if (options_.port == 0) {
    port_ = server_->bind_to_any_port(options_.address);
    if (port_ <= 0) return absl::UnavailableError("cannot bind " + options_.address);
  } else {
    if (!server_->bind_to_port(options_.address, options_.port)) {
      return absl::UnavailableError("cannot bind " + options_.address + ":" +
                                    std::to_string(options_.port));
    }
    port_ = options_.port;
  }
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  return absl::OkStatus();
}

void ApiServer::Stop() {
  if (stopped_ || !server_) return;
  stopped_ = true;
  stopping_ = true;
  server_->stop();
  if (thread_.joinable()) thread_.join();
}

void ApiServer::FinishBody(const httplib::Request& req, httplib::Response& res) const {
  if (res.body.empty()) return;  // watch streams, empty answers
  auto body = std::make_shared<std::string>();
  body->swap(res.body);
  if (options_.gzip_min_bytes >= 0) {
    res.set_header("Vary", "Accept-Encoding");
    if (body->size() >= static_cast<size_t>(options_.gzip_min_bytes) &&
        AcceptsGzip(req.get_header_value("Accept-Encoding"))) {
      absl::StatusOr<std::string> gz = GzipFast(*body);
      if (gz.ok()) {
        *body = std::move(*gz);
        res.set_header("Content-Encoding", "gzip");
      }
    }
  }
  std::string type = res.get_header_value("Content-Type");
  res.headers.erase("Content-Type");  // set_content_provider adds it again
  const size_t size = body->size();
  res.set_content_provider(
      size, type, [body](size_t offset, size_t length, httplib::DataSink& sink) {
        return sink.write(body->data() + offset, std::min(length, body->size() - offset));
      });
}

bool ApiServer::Authenticated(const httplib::Request& req) const {
  if (options_.token.empty()) return true;
  std::string auth = req.get_header_value("Authorization");
  if (auth == "Bearer " + options_.token) return true;
  if (req.ssl) {
    X509* peer = SSL_get1_peer_certificate(req.ssl);
    bool ok = peer && SSL_get_verify_result(req.ssl) == X509_V_OK;
    X509_free(peer);
    if (ok) return true;
  }
  return false;
}

bool ApiServer::HandleFaultHook(const httplib::Request& req, httplib::Response& res) {
  if (req.path != "/emulator/v1/faults") return false;
  std::lock_guard<std::mutex> lock(faults_mu_);
  if (req.method == "DELETE") {
    faults_.clear();
    SendJson(res, 200, {{"faults", 0}});
    return true;
  }
  if (req.method != "POST") {
    SendError(res, MethodNotAllowedError());
    return true;
  }
  Json body = Json::parse(req.body, nullptr, false);
  if (!body.is_object()) {
    SendError(res, BadRequestError("fault: body must be a JSON object"));
    return true;
  }
  Fault f;
  f.method = body.value("method", std::string());
  f.path_contains = body.value("pathContains", std::string());
  f.code = body.value("code", 500);
  f.count = body.value("count", 1);
  f.delay_ms = body.value("delayMs", 0);
  if (f.code != 0 && f.code != 409 && f.code != 429 && f.code != 500 && f.code != 503 &&
      f.code != 504) {
    SendError(res, BadRequestError("fault: code must be 0, 409, 429, 500, 503 or 504"));
    return true;
  }
  faults_.push_back(f);
  SendJson(res, 200, {{"faults", faults_.size()}});
  return true;
}

bool ApiServer::InjectFault(const httplib::Request& req, httplib::Response& res) {
  Fault hit;
  {
    std::lock_guard<std::mutex> lock(faults_mu_);
    auto it = std::find_if(faults_.begin(), faults_.end(), [&req](const Fault& f) {
      return f.count > 0 && (f.method.empty() || f.method == req.method) &&
             req.path.find(f.path_contains) != std::string::npos;
    });
    if (it == faults_.end()) return false;
    hit = *it;
    if (--it->count == 0) faults_.erase(it);
  }
  if (hit.delay_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(hit.delay_ms));
  switch (hit.code) {
    case 0:
      return false;  // delayed only: serve it normally
    case 409:
      SendError(res, KubeError(409, "Conflict", "injected fault: the object has been modified"));
      break;
    case 429:
      res.set_header("Retry-After", "1");
      SendError(res, KubeError(429, "TooManyRequests", "injected fault: too many requests"));
      break;
    case 503:
      SendError(res, KubeError(503, "ServiceUnavailable", "injected fault: unavailable"));
      break;
    case 504:
      SendError(res, KubeError(504, "Timeout", "injected fault: the server timed out"));
      break;
    default:
      SendError(res, KubeError(500, "InternalError", "injected fault: internal error"));
  }
  return true;
}

void ApiServer::Handle(const httplib::Request& req, httplib::Response& res) {
  const std::string& path = req.path;
  if (path == "/healthz" || path == "/livez" || path == "/readyz") {
    res.set_content("ok", "text/plain");
    return;
  }
  if (options_.request_delay.count() > 0 && path.rfind("/emulator/", 0) != 0) {
    // Sleeps on this request's own thread: concurrent requests are delayed in parallel.
    std::this_thread::sleep_for(options_.request_delay);
  }
  if (!Authenticated(req)) return SendError(res, UnauthorizedError());
  if (HandleFaultHook(req, res) || InjectFault(req, res)) return;
  if (req.body.size() > options_.max_body_bytes) {
    return SendError(res, RequestEntityTooLargeError(options_.max_body_bytes));
  }
  std::vector<std::string> seg;
  for (auto s : absl::StrSplit(path, '/', absl::SkipEmpty())) seg.emplace_back(s);
  const std::string& method = req.method;
  std::string accept = req.get_header_value("Accept");
  Registry& reg = store_->registry();

  if (path == "/version") {
    return SendJson(res, 200,
                    {{"major", "1"},
                     {"minor", "32"},
                     {"gitVersion", "v1.32.3"},
                     {"gitCommit", "driftless-kube-emulator"},
                     {"gitTreeState", "clean"},
                     {"buildDate", "2026-01-01T00:00:00Z"},
                     {"goVersion", "go1.23.6"},
                     {"compiler", "gc"},
                     {"platform", "linux/amd64"}});
  }
  if (path == "/api" || path == "/apis") {
    bool core = path == "/api";
    res.set_header("Vary", "Accept");
    size_t v2 = accept.find("v=v2;as=APIGroupDiscoveryList");
    size_t v2b = accept.find("v=v2beta1;as=APIGroupDiscoveryList");
    if (v2 != std::string::npos && (v2b == std::string::npos || v2 < v2b)) {
      return SendJson(res, 200, reg.AggregatedDiscovery(core, "v2"), kDiscoveryV2);
    }
    if (v2b != std::string::npos) {
      return SendJson(res, 200, reg.AggregatedDiscovery(core, "v2beta1"), kDiscoveryV2Beta1);
    }
    return SendJson(res, 200, core ? reg.LegacyApiVersions() : reg.LegacyApiGroupList());
  }
  if ((seg.size() == 2 && seg[0] == "api") || (seg.size() == 3 && seg[0] == "apis")) {
    auto list =
        seg[0] == "api" ? reg.ApiResourceList("", seg[1]) : reg.ApiResourceList(seg[1], seg[2]);
    if (!list) return SendError(res, ResourceNotFoundError());
    return SendJson(res, 200, *list);
  }
  if (seg.size() == 2 && seg[0] == "apis") {
    Json groups = reg.LegacyApiGroupList();
    for (const auto& g : groups["groups"]) {
      if (g["name"] == seg[1]) {
        Json out = g;
        out["kind"] = "APIGroup";
        out["apiVersion"] = "v1";
        return SendJson(res, 200, out);
      }
    }
    return SendError(res, ResourceNotFoundError());
  }
  if (!seg.empty() && seg[0] == "openapi") {
    if (seg.size() == 2 && seg[1] == "v3") return SendJson(res, 200, reg.OpenApiV3Root());
    if (seg.size() >= 4 && seg[1] == "v3") {
      std::optional<Json> doc;
      if (seg[2] == "api" && seg.size() == 4) doc = reg.OpenApiV3GroupVersion("", seg[3]);
      if (seg[2] == "apis" && seg.size() == 5) doc = reg.OpenApiV3GroupVersion(seg[3], seg[4]);
      if (doc) return SendJson(res, 200, *doc);
    }
    return SendError(res, ResourceNotFoundError());
  }
  // Test hook: force a status and keep the controllers away from the object.
  if (seg.size() == 8 && seg[0] == "emulator" && seg[1] == "v1" && seg[2] == "status") {
    if (method != "PUT") return SendError(res, MethodNotAllowedError());
    std::string group = seg[3] == "core" ? "" : seg[3];
    auto rt = reg.Find(group, seg[4], seg[5]);
    if (!rt) return SendError(res, ResourceNotFoundError());
    Json status = Json::parse(req.body, nullptr, false);
    if (status.is_discarded()) return SendError(res, BadRequestError("body must be JSON"));
    auto r = store_->ForceStatus(*rt, seg[6] == "_" ? "" : seg[6], seg[7], status);
    if (!r.ok()) return SendError(res, r.status());
    return SendJson(res, 200, *r);
  }

  Route route;
  if (!ParseRoute(reg, seg, &route)) return SendError(res, ResourceNotFoundError());
  const ResourceType& rt = *route.rt;
  if (!route.subresource.empty() && !((route.subresource == "status" && rt.has_status) ||
                                      (route.subresource == "scale" && rt.has_scale))) {
    return SendError(res, ResourceNotFoundError());
  }
  bool table = accept.find("as=Table") != std::string::npos;
  std::string dry = Param(req, "dryRun");
  if (!dry.empty() && dry != "All") {
    return SendError(res,
                     KubeError(400, "BadRequest",
                               "Invalid dryRun value: \"" + dry + "\": supported values: \"All\""));
  }
  WriteOptions wo;
  wo.dry_run = dry == "All";
  wo.field_manager = Param(req, "fieldManager");
  wo.field_validation = Param(req, "fieldValidation");
  wo.subresource = route.subresource;
  ListOptions lo;
  lo.label_selector = Param(req, "labelSelector");
  lo.field_selector = Param(req, "fieldSelector");
  lo.continue_token = Param(req, "continue");
  if (req.has_param("limit")) {
    if (!absl::SimpleAtoi(Param(req, "limit"), &lo.limit)) {
      return SendError(res, BadRequestError("limit must be an integer"));
    }
  }
  auto now = clock_->Now();

  if (route.name.empty()) {
    if (method == "GET" && Truthy(Param(req, "watch"))) {
      auto w = store_->Watch(rt, route.ns, Param(req, "resourceVersion"), lo);
      if (!w.ok()) return SendError(res, w.status());
      std::shared_ptr<Watcher> watcher(std::move(*w));
      long long timeout_s = 0;
      (void)absl::SimpleAtoi(Param(req, "timeoutSeconds"), &timeout_s);
      auto deadline = timeout_s > 0
                          ? std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s)
                          : std::chrono::steady_clock::time_point::max();
      bool bookmarks = Truthy(Param(req, "allowWatchBookmarks"));
      bool initial_end = bookmarks && Truthy(Param(req, "sendInitialEvents"));
      auto rtp = route.rt;
      std::string include = Param(req, "includeObject");
      auto state = std::make_shared<bool>(initial_end);
      res.status = 200;
      // ";stream=watch" also keeps httplib from gzip-buffering the stream.
      res.set_chunked_content_provider(
          "application/json;stream=watch", [this, watcher, deadline, bookmarks, table, rtp, include,
                                            state](size_t, httplib::DataSink& sink) {
            if (stopping_) {
              sink.done();
              return true;
            }
            auto remaining = std::chrono::duration_cast<std::chrono::milliseconds>(
                deadline - std::chrono::steady_clock::now());
            if (remaining.count() <= 0) {
              sink.done();
              return true;
            }
            if (*state && !watcher->HasPending()) {
              *state = false;
              Json bm = {{"type", "BOOKMARK"},
                         {"object",
                          {{"kind", rtp->kind},
                           {"apiVersion", rtp->ApiVersion()},
                           {"metadata",
                            {{"resourceVersion", std::to_string(watcher->Position())},
                             {"annotations", {{"k8s.io/initial-events-end", "true"}}}}}}}};
              std::string line = bm.dump() + "\n";
              return sink.write(line.data(), line.size());
            }
            auto ev = watcher->Next(std::min(remaining, options_.watch_heartbeat));
            if (!ev) {
              std::string line = "\n";
              if (bookmarks) {
                Json bm = {
                    {"type", "BOOKMARK"},
                    {"object",
                     {{"kind", rtp->kind},
                      {"apiVersion", rtp->ApiVersion()},
                      {"metadata", {{"resourceVersion", std::to_string(watcher->Position())}}}}}};
                line = bm.dump() + "\n";
              }
              return sink.write(line.data(), line.size());
            }
            if (ev->type.empty()) {
              sink.done();
              return true;
            }
            Json obj = std::move(ev->object);
            if (table && ev->type != "ERROR") {
              obj = ToTable(*rtp, Json::array({obj}), include, clock_->Now(),
                            obj["metadata"].value("resourceVersion", ""));
            }
            std::string line = Json{{"type", ev->type}, {"object", obj}}.dump() + "\n";
            if (!sink.write(line.data(), line.size())) return false;
            if (ev->type == "ERROR") sink.done();
            return true;
          });
      return;
    }
    if (method == "GET") {
      if (!table) {
        // The stored objects' JSON text, joined: no Json copies, no re-serialisation.
        auto text = store_->ListText(rt, route.ns, lo);
        if (!text.ok()) return SendError(res, text.status());
        return SetBody(res, 200, std::move(*text), "application/json");
      }
      auto list = store_->List(rt, route.ns, lo);
      if (!list.ok()) return SendError(res, list.status());
      const Json& m = (*list)["metadata"];
      return SendJson(res, 200,
                      ToTable(rt, (*list)["items"], Param(req, "includeObject"), now,
                              m.value("resourceVersion", ""), m.value("continue", "")),
                      kTableType);
    }
    if (method == "POST") {
      auto body = ParseBody(req);
      if (!body.ok()) return SendError(res, body.status());
      if (wo.field_manager.empty()) wo.field_manager = DefaultManager(req);
      auto r = store_->Create(rt, route.ns, std::move(*body), wo);
      if (!r.ok()) return SendError(res, r.status());
      return SendJson(res, 201, *r);
    }
    if (method == "DELETE") {
      DeleteOptions d;
      d.dry_run = wo.dry_run;
      d.propagation = Param(req, "propagationPolicy");
      auto r = store_->DeleteCollection(rt, route.ns, lo, d);
      if (!r.ok()) return SendError(res, r.status());
      return SendJson(res, 200, *r);
    }
    return SendError(res, MethodNotAllowedError());
  }

  if (method == "GET" && !table && route.subresource.empty()) {
    auto text = store_->GetText(rt, route.ns, route.name);
    if (!text.ok()) return SendError(res, text.status());
    return SetBody(res, 200, std::move(*text), "application/json");
  }
  if (method == "GET") {
    auto r = store_->Get(rt, route.ns, route.name, route.subresource);
    if (!r.ok()) return SendError(res, r.status());
    if (table && route.subresource.empty()) {
      return SendJson(res, 200,
                      ToTable(rt, Json::array({*r}), Param(req, "includeObject"), now,
                              (*r)["metadata"].value("resourceVersion", "")),
                      kTableType);
    }
    return SendJson(res, 200, *r);
  }
  if (method == "PUT") {
    auto body = ParseBody(req);
    if (!body.ok()) return SendError(res, body.status());
    if (wo.field_manager.empty()) wo.field_manager = DefaultManager(req);
    auto r = store_->Update(rt, route.ns, route.name, std::move(*body), wo);
    if (!r.ok()) return SendError(res, r.status());
    return SendJson(res, 200, *r);
  }
  if (method == "PATCH") {
    std::string type = BaseType(req.get_header_value("Content-Type"));
    PatchType pt;
    if (type == "application/json-patch+json")
      pt = PatchType::kJsonPatch;
    else if (type == "application/merge-patch+json")
      pt = PatchType::kMergePatch;
    else if (type == "application/strategic-merge-patch+json")
      pt = PatchType::kStrategicMergePatch;
    else if (type == "application/apply-patch+yaml" || type == "application/apply-patch+cbor")
      pt = PatchType::kApply;
    else
      return SendError(
          res, UnsupportedMediaTypeError(
                   "application/json-patch+json, application/merge-patch+json, "
                   "application/apply-patch+yaml" +
                   std::string(rt.custom ? "" : ", application/strategic-merge-patch+json")));
    if (pt != PatchType::kApply && wo.field_manager.empty()) {
      wo.field_manager = DefaultManager(req);
    }
    bool force = Truthy(Param(req, "force"));
    if (force && pt != PatchType::kApply) {
      return SendError(res, BadRequestError("force is only allowed for apply patches"));
    }
    auto r = store_->Patch(rt, route.ns, route.name, pt, req.body, wo, force);
    if (!r.ok()) return SendError(res, r.status());
    return SendJson(res, 200, *r);
  }
  if (method == "DELETE") {
    if (!route.subresource.empty()) return SendError(res, MethodNotAllowedError());
    DeleteOptions d;
    d.dry_run = wo.dry_run;
    d.propagation = Param(req, "propagationPolicy");
    if (!req.body.empty()) {
      Json b = Json::parse(req.body, nullptr, false);
      if (b.is_discarded() || !b.is_object()) {
        return SendError(res, BadRequestError("invalid DeleteOptions body"));
      }
      if (b.contains("propagationPolicy") && b["propagationPolicy"].is_string()) {
        d.propagation = b["propagationPolicy"];
      }
      if (b.value("orphanDependents", false)) d.propagation = "Orphan";
      if (b.contains("dryRun") && b["dryRun"].is_array() && !b["dryRun"].empty()) {
        d.dry_run = true;
      }
      if (b.contains("preconditions") && b["preconditions"].is_object()) {
        d.precondition_uid = b["preconditions"].value("uid", "");
        d.precondition_resource_version = b["preconditions"].value("resourceVersion", "");
      }
    }
    if (!d.propagation.empty() && d.propagation != "Background" && d.propagation != "Foreground" &&
        d.propagation != "Orphan") {
      return SendError(res, BadRequestError("invalid propagationPolicy: " + d.propagation));
    }
    auto r = store_->Delete(rt, route.ns, route.name, d);
    if (!r.ok()) return SendError(res, r.status());
    return SendJson(res, 200, *r);
  }
  return SendError(res, MethodNotAllowedError());
}

std::string KubeconfigYaml(const std::string& server_url, const std::string& ca_pem,
                           const std::string& token, const std::string& client_cert_pem,
                           const std::string& client_key_pem) {
  std::string y =
      "apiVersion: v1\nkind: Config\nclusters:\n- name: driftless-emulator\n"
      "  cluster:\n    server: " +
      server_url + "\n";
  if (!ca_pem.empty()) {
    y += "    certificate-authority-data: " + absl::Base64Escape(ca_pem) + "\n";
  }
  y += "users:\n- name: driftless-emulator\n  user:";
  if (token.empty() && client_cert_pem.empty()) y += " {}";
  y += "\n";
  if (!token.empty()) y += "    token: " + token + "\n";
  if (!client_cert_pem.empty()) {
    y += "    client-certificate-data: " + absl::Base64Escape(client_cert_pem) + "\n";
    y += "    client-key-data: " + absl::Base64Escape(client_key_pem) + "\n";
  }
  y += "contexts:\n- name: driftless-emulator\n  context:\n    cluster: driftless-emulator\n"
       "    user: driftless-emulator\n    namespace: default\n"
       "current-context: driftless-emulator\n";
  return y;
}

}  // namespace driftless::kube_emulator
