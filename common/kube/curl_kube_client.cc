#include "common/kube/curl_kube_client.h"

#include <curl/curl.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/kube/credentials.h"
#include "common/kube/discovery.h"
#include "common/kube/internal/strings.h"
#include "common/kube/kube_error.h"
#include "common/kube/kube_paths.h"
#include "common/kube/rate_limiter.h"

namespace driftless::kube {
namespace {

using Clock = std::chrono::steady_clock;

void GlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

// scheme://host[:port][/prefix]
struct ServerUrl {
  std::string scheme;
  std::string host;  // without brackets
  int port = 0;
  std::string prefix;
};

absl::StatusOr<ServerUrl> ParseServer(const std::string& server) {
  ServerUrl u;
  size_t sep = server.find("://");
  if (sep == std::string::npos)
    return absl::InvalidArgumentError("server URL has no scheme: " + server);
  u.scheme = absl::AsciiStrToLower(server.substr(0, sep));
  if (u.scheme != "http" && u.scheme != "https") {
    return absl::InvalidArgumentError("server URL scheme must be http or https: " + server);
  }
  std::string rest = server.substr(sep + 3);
  size_t slash = rest.find('/');
  std::string authority = rest.substr(0, slash);
  if (slash != std::string::npos) u.prefix = rest.substr(slash);
  while (!u.prefix.empty() && u.prefix.back() == '/') u.prefix.pop_back();
  std::string port_str;
  if (!authority.empty() && authority[0] == '[') {
    size_t close = authority.find(']');
    if (close == std::string::npos) return absl::InvalidArgumentError("bad IPv6 host in " + server);
    u.host = authority.substr(1, close - 1);
    if (close + 1 < authority.size() && authority[close + 1] == ':')
      port_str = authority.substr(close + 2);
  } else {
    size_t colon = authority.rfind(':');
    u.host = authority.substr(0, colon);
    if (colon != std::string::npos) port_str = authority.substr(colon + 1);
  }
  if (u.host.empty()) return absl::InvalidArgumentError("server URL has no host: " + server);
  u.port = u.scheme == "https" ? 443 : 80;
  if (!port_str.empty() &&
      (!absl::SimpleAtoi(port_str, &u.port) || u.port <= 0 || u.port > 65535)) {
    return absl::InvalidArgumentError("bad port in server URL: " + server);
  }
  return u;
}

std::string HostForUrl(const std::string& host) {
  return host.find(':') != std::string::npos ? "[" + host + "]" : host;
}

absl::Status FromCurl(CURLcode code, const char* errbuf, std::string_view context) {
  std::string detail = errbuf != nullptr && errbuf[0] != '\0' ? errbuf : curl_easy_strerror(code);
  std::string msg = absl::StrCat(internal::Av(context), ": ", detail);
  switch (code) {
    case CURLE_OPERATION_TIMEDOUT:
      return absl::DeadlineExceededError(msg);
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_SSL_CONNECT_ERROR:
      return absl::UnavailableError(msg);
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
      // The TLS configuration must change before a retry can succeed.
      return absl::FailedPreconditionError(msg);
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
      return absl::InvalidArgumentError(msg);
    case CURLE_ABORTED_BY_CALLBACK:
      return absl::CancelledError(msg);
    default:
      return absl::UnavailableError(msg);
  }
}

struct HttpRequest {
  std::string verb;  // for messages ("apply")
  std::string method;
  std::string path;  // path + query, without the server prefix
  std::string body;
  std::string content_type;
  std::string accept = "application/json";
  bool watch = false;
  // For watch: called with each chunk of a 2xx body; false aborts the transfer.
  std::function<bool(std::string_view)> on_data;
  std::stop_token stop;
};

struct HttpResponse {
  long code = 0;
  std::string body;
  std::string content_type;
  int retry_after_seconds = 0;
};

// State shared with the curl callbacks of one transfer.
struct Transfer {
  CURL* curl = nullptr;
  HttpResponse* response = nullptr;
  const HttpRequest* request = nullptr;
  absl::Duration stall_timeout;
  Clock::time_point last_data;
  bool stalled = false;
  bool stopped = false;       // stop token
  bool data_aborted = false;  // on_data returned false

  static size_t OnWrite(char* ptr, size_t size, size_t nmemb, void* userdata) {
    auto* t = static_cast<Transfer*>(userdata);
    size_t n = size * nmemb;
    t->last_data = Clock::now();
    long code = 0;
    curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &code);
    if (t->request->on_data && code >= 200 && code < 300) {
      if (!t->request->on_data(std::string_view(ptr, n))) {
        t->data_aborted = true;
        return 0;
      }
      return n;
    }
    t->response->body.append(ptr, n);
    return n;
  }

  static size_t OnHeader(char* buffer, size_t size, size_t nitems, void* userdata) {
    auto* t = static_cast<Transfer*>(userdata);
    size_t n = size * nitems;
    std::string_view line(buffer, n);
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) {
      if (line.starts_with("HTTP/")) {  // a new response (redirect or 100): reset
        t->response->retry_after_seconds = 0;
        t->response->content_type.clear();
      }
      return n;
    }
    std::string name = absl::AsciiStrToLower(internal::Av(line.substr(0, colon)));
    std::string_view value = internal::Trim(line.substr(colon + 1));
    if (name == "retry-after") {
      int secs = 0;
      if (absl::SimpleAtoi(internal::Av(value), &secs) && secs > 0)
        t->response->retry_after_seconds = secs;
    } else if (name == "content-type") {
      t->response->content_type = std::string(value);
    }
    return n;
  }

  static int OnProgress(void* userdata, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
    auto* t = static_cast<Transfer*>(userdata);
    if (t->request->stop.stop_requested()) {
      t->stopped = true;
      return 1;
    }
    if (t->request->watch &&
        Clock::now() - t->last_data > absl::ToChronoMilliseconds(t->stall_timeout)) {
      t->stalled = true;
      return 1;
    }
    return 0;
  }
};

const char* PropagationName(PropagationPolicy p) {
  switch (p) {
    case PropagationPolicy::kBackground:
      return "Background";
    case PropagationPolicy::kForeground:
      return "Foreground";
    case PropagationPolicy::kOrphan:
      return "Orphan";
    case PropagationPolicy::kDefault:
      break;
  }
  return "";
}

std::string Context(std::string_view verb, const ObjectRef& ref) {
  return absl::StrCat(internal::Av(verb), " ", ref.ToString());
}

absl::StatusOr<Json> ParseBody(const HttpResponse& r, std::string_view context) {
  Json j = Json::parse(r.body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    return absl::InternalError(absl::StrCat(internal::Av(context), ": response is not JSON (HTTP ",
                                            r.code, ", ", r.body.size(), " bytes)"));
  }
  return j;
}

}  // namespace

struct CurlKubeClient::Impl {
  RestConfig config;
  CurlKubeClientOptions options;
  ServerUrl server;
  std::string url_base;    // scheme://host:port/prefix as curl sees it
  std::string connect_to;  // CURLOPT_CONNECT_TO entry for tls-server-name
  CredentialSource credentials;
  RateLimiter limiter;

  CURLSH* share = nullptr;
  std::mutex share_mu[CURL_LOCK_DATA_LAST];

  std::mutex pool_mu;
  std::vector<CURL*> idle;

  std::mutex discovery_mu;
  std::vector<ResourceInfo> discovery;
  absl::Time discovery_at = absl::InfinitePast();
  bool discovery_valid = false;

  std::atomic<int64_t> requests{0}, new_connections{0}, http2_responses{0}, throttle_retries{0},
      auth_retries{0}, discovery_fetches{0};

  Impl(RestConfig c, CurlKubeClientOptions o, ServerUrl s)
      : config(c),
        options(std::move(o)),
        server(std::move(s)),
        credentials(std::move(c)),
        limiter(options.qps, options.burst) {
    std::string host = config.tls_server_name.empty() ? server.host : config.tls_server_name;
    url_base =
        absl::StrCat(server.scheme, "://", HostForUrl(host), ":", server.port, server.prefix);
    if (!config.tls_server_name.empty()) {
      connect_to = absl::StrCat(config.tls_server_name, ":", server.port, ":",
                                HostForUrl(server.host), ":", server.port);
    }
    share = curl_share_init();
    curl_share_setopt(share, CURLSHOPT_LOCKFUNC, &Impl::Lock);
    curl_share_setopt(share, CURLSHOPT_UNLOCKFUNC, &Impl::Unlock);
    curl_share_setopt(share, CURLSHOPT_USERDATA, this);
    curl_share_setopt(share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    curl_share_setopt(share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
  }

  ~Impl() {
    for (CURL* c : idle) curl_easy_cleanup(c);
    curl_share_cleanup(share);
  }

  static void Lock(CURL*, curl_lock_data data, curl_lock_access, void* userptr) {
    static_cast<Impl*>(userptr)->share_mu[data].lock();
  }
  static void Unlock(CURL*, curl_lock_data data, void* userptr) {
    static_cast<Impl*>(userptr)->share_mu[data].unlock();
  }

  CURL* AcquireHandle() {
    {
      std::lock_guard<std::mutex> lock(pool_mu);
      if (!idle.empty()) {
        CURL* c = idle.back();
        idle.pop_back();
        curl_easy_reset(c);  // keeps live connections and caches
        return c;
      }
    }
    return curl_easy_init();
  }

  void ReleaseHandle(CURL* c) {
    std::lock_guard<std::mutex> lock(pool_mu);
    if (idle.size() < options.max_idle_connections) {
      idle.push_back(c);
    } else {
      curl_easy_cleanup(c);
    }
  }

  // Sleeps for `d` unless `stop` is requested first. Returns false if stopped.
  static bool SleepFor(absl::Duration d, std::stop_token stop) {
    std::mutex m;
    std::condition_variable_any cv;
    std::unique_lock<std::mutex> lock(m);
    cv.wait_for(lock, stop, absl::ToChronoMilliseconds(d), [] { return false; });
    return !stop.stop_requested();
  }

  // One HTTP exchange; transport failures become errors, any HTTP code is returned.
  absl::StatusOr<HttpResponse> PerformOnce(const HttpRequest& req, const Credentials& creds,
                                           const std::string& context) {
    CURL* c = AcquireHandle();
    if (c == nullptr) return absl::ResourceExhaustedError(context + ": curl_easy_init failed");
    HttpResponse resp;
    Transfer t{.curl = c,
               .response = &resp,
               .request = &req,
               .stall_timeout = options.watch_stall_timeout,
               .last_data = Clock::now()};
    char errbuf[CURL_ERROR_SIZE] = {0};
    std::string url = url_base + req.path;
    curl_easy_setopt(c, CURLOPT_URL, url.c_str());
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_SHARE, share);
    curl_easy_setopt(c, CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_2TLS));
    curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
    // Compressed responses for ordinary requests; watch streams stay uncompressed so every
    // event is delivered as soon as it is written (as with the API server itself).
    if (!req.watch) curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(c, CURLOPT_USERAGENT, options.user_agent.c_str());
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
                     static_cast<long>(absl::ToInt64Milliseconds(options.connect_timeout)));
    if (!req.watch) {
      curl_easy_setopt(c, CURLOPT_TIMEOUT_MS,
                       static_cast<long>(absl::ToInt64Milliseconds(options.request_timeout)));
    }
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &Transfer::OnWrite);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, &Transfer::OnHeader);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &t);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, &Transfer::OnProgress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, &t);

    curl_slist* connect_to_list = nullptr;
    if (!connect_to.empty()) {
      connect_to_list = curl_slist_append(nullptr, connect_to.c_str());
      curl_easy_setopt(c, CURLOPT_CONNECT_TO, connect_to_list);
    }
    // TLS.
    if (config.insecure_skip_tls_verify) {
      curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
      curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    if (!config.ca_data.empty()) {
      curl_blob blob{const_cast<char*>(config.ca_data.data()), config.ca_data.size(),
                     CURL_BLOB_COPY};
      curl_easy_setopt(c, CURLOPT_CAINFO_BLOB, &blob);
    }
    if (!creds.client_cert_data.empty()) {
      curl_blob cert{const_cast<char*>(creds.client_cert_data.data()),
                     creds.client_cert_data.size(), CURL_BLOB_COPY};
      curl_blob key{const_cast<char*>(creds.client_key_data.data()), creds.client_key_data.size(),
                    CURL_BLOB_COPY};
      curl_easy_setopt(c, CURLOPT_SSLCERTTYPE, "PEM");
      curl_easy_setopt(c, CURLOPT_SSLCERT_BLOB, &cert);
      curl_easy_setopt(c, CURLOPT_SSLKEYTYPE, "PEM");
      curl_easy_setopt(c, CURLOPT_SSLKEY_BLOB, &key);
    }
    // Headers.
    curl_slist* headers = nullptr;
    headers = curl_slist_append(headers, ("Accept: " + req.accept).c_str());
    headers = curl_slist_append(headers, "Expect:");
    if (!req.content_type.empty()) {
      headers = curl_slist_append(headers, ("Content-Type: " + req.content_type).c_str());
    }
    if (!creds.bearer_token.empty()) {
      headers = curl_slist_append(headers, ("Authorization: Bearer " + creds.bearer_token).c_str());
    } else if (!creds.username.empty()) {
      curl_easy_setopt(c, CURLOPT_HTTPAUTH, static_cast<long>(CURLAUTH_BASIC));
      curl_easy_setopt(c, CURLOPT_USERNAME, creds.username.c_str());
      curl_easy_setopt(c, CURLOPT_PASSWORD, creds.password.c_str());
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    // Method and body.
    if (req.method == "GET") {
      curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    } else {
      curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, req.method.c_str());
      if (!req.body.empty() || req.method != "DELETE") {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, req.body.c_str());
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(req.body.size()));
      }
    }

    CURLcode rc = curl_easy_perform(c);
    ++requests;
    long connects = 0;
    curl_easy_getinfo(c, CURLINFO_NUM_CONNECTS, &connects);
    new_connections += connects;
    long version = 0;
    curl_easy_getinfo(c, CURLINFO_HTTP_VERSION, &version);
    if (version == CURL_HTTP_VERSION_2_0) ++http2_responses;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp.code);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, nullptr);
    curl_easy_setopt(c, CURLOPT_CONNECT_TO, nullptr);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, nullptr);
    curl_slist_free_all(headers);
    curl_slist_free_all(connect_to_list);
    ReleaseHandle(c);

    if (rc == CURLE_OK) return resp;
    if (t.data_aborted) return resp;  // the watch callback asked to stop
    if (t.stopped) return absl::CancelledError(context + ": stopped");
    if (t.stalled) {
      return absl::DeadlineExceededError(absl::StrCat(
          context, ": no data for ", absl::FormatDuration(options.watch_stall_timeout)));
    }
    return FromCurl(rc, errbuf, context);
  }

  // Rate limit, credentials, 401 refresh and 429/503 retries around PerformOnce.
  absl::StatusOr<HttpResponse> Do(const HttpRequest& req, const std::string& context) {
    bool auth_retried = false;
    int throttled = 0;
    for (;;) {
      if (!limiter.Wait(req.stop)) return absl::CancelledError(context + ": stopped");
      absl::StatusOr<Credentials> creds = credentials.Get();
      if (!creds.ok()) return Annotate(creds.status(), context + ": credentials");
      DL_ASSIGN_OR_RETURN(HttpResponse resp, PerformOnce(req, *creds, context));
      if (resp.code == 401 && !auth_retried && credentials.Invalidate()) {
        auth_retried = true;
        ++auth_retries;
        continue;
      }
      bool throttle = resp.code == 429 || (resp.code == 503 && resp.retry_after_seconds > 0);
      if (throttle && throttled < options.max_throttle_retries) {
        ++throttled;
        ++throttle_retries;
        absl::Duration wait = resp.retry_after_seconds > 0 ? absl::Seconds(resp.retry_after_seconds)
                                                           : absl::Seconds(1);
        if (!SleepFor(std::min(wait, options.max_retry_after), req.stop)) {
          return absl::CancelledError(context + ": stopped");
        }
        continue;
      }
      return resp;
    }
  }

  // Do + non-2xx to a typed error + JSON body.
  absl::StatusOr<Json> DoJson(const HttpRequest& req, const std::string& context) {
    DL_ASSIGN_OR_RETURN(HttpResponse resp, Do(req, context));
    if (resp.code < 200 || resp.code >= 300) {
      return StatusFromResponse(static_cast<int>(resp.code), resp.body, context,
                                resp.retry_after_seconds);
    }
    return ParseBody(resp, context);
  }

  absl::StatusOr<std::vector<ResourceInfo>> FetchDiscovery() {
    ++discovery_fetches;
    std::vector<ResourceInfo> all;
    for (const char* root : {"/api", "/apis"}) {
      HttpRequest req{
          .verb = "discover", .method = "GET", .path = root, .accept = kAggregatedDiscoveryAccept};
      std::string context = absl::StrCat("discover ", root);
      DL_ASSIGN_OR_RETURN(Json doc, DoJson(req, context));
      if (IsAggregatedDiscovery(doc)) {
        absl::StatusOr<std::vector<ResourceInfo>> rs = ParseAggregatedDiscovery(doc);
        if (!rs.ok()) return Annotate(rs.status(), context);
        all.insert(all.end(), rs->begin(), rs->end());
        continue;
      }
      absl::StatusOr<std::vector<std::string>> gvs = ParseLegacyGroupVersions(doc);
      if (!gvs.ok()) return Annotate(gvs.status(), context);
      for (const std::string& gv : *gvs) {
        std::string path = absl::StrCat(root, "/", gv);
        HttpRequest gv_req{.verb = "discover", .method = "GET", .path = path};
        absl::StatusOr<Json> list = DoJson(gv_req, "discover " + path);
        if (!list.ok()) {
          // One broken aggregated API (e.g. metrics-server down) must not hide the rest.
          if (absl::IsUnauthenticated(list.status()) || absl::IsPermissionDenied(list.status())) {
            return list.status();
          }
          continue;
        }
        absl::StatusOr<std::vector<ResourceInfo>> rs = ParseApiResourceList(*list);
        if (!rs.ok()) continue;
        all.insert(all.end(), rs->begin(), rs->end());
      }
    }
    return all;
  }

  absl::StatusOr<std::vector<ResourceInfo>> Discover() {
    std::lock_guard<std::mutex> lock(discovery_mu);
    if (discovery_valid && absl::Now() - discovery_at < options.discovery_ttl) return discovery;
    DL_ASSIGN_OR_RETURN(discovery, FetchDiscovery());
    discovery_at = absl::Now();
    discovery_valid = true;
    return discovery;
  }

  void InvalidateDiscovery() {
    std::lock_guard<std::mutex> lock(discovery_mu);
    discovery_valid = false;
  }

  absl::StatusOr<ResourceInfo> ResourceFor(std::string_view api_version, std::string_view kind) {
    if (kind.empty()) return absl::InvalidArgumentError("kind is empty");
    DL_RETURN_IF_ERROR(SplitApiVersion(api_version).status());
    for (int attempt = 0; attempt < 2; ++attempt) {
      DL_ASSIGN_OR_RETURN(std::vector<ResourceInfo> all, Discover());
      if (const ResourceInfo* r = FindResource(all, api_version, kind)) return *r;
      InvalidateDiscovery();  // maybe a CRD was just installed: look once more
    }
    return absl::NotFoundError(absl::StrCat("the server has no resource for ",
                                            internal::Av(api_version), " ", internal::Av(kind),
                                            " (is its CRD installed?)"));
  }

  // Resolves the resource of `ref` and checks the namespace rules.
  absl::StatusOr<ResourceInfo> Resolve(const ObjectRef& ref, std::string_view verb,
                                       bool need_name) {
    absl::StatusOr<ResourceInfo> r = ResourceFor(ref.api_version, ref.kind);
    if (!r.ok()) return Annotate(r.status(), Context(verb, ref));
    if (need_name && ref.name.empty()) {
      return absl::InvalidArgumentError(Context(verb, ref) + ": metadata.name is empty");
    }
    if (need_name && r->namespaced && ref.namespace_.empty()) {
      return absl::InvalidArgumentError(Context(verb, ref) +
                                        ": metadata.namespace is required for a namespaced kind");
    }
    return r;
  }

  // A 404 on a collection means the type itself is gone (CRD deleted): rediscover next time.
  void NoteTypeMissing(const absl::Status& s) {
    if (!absl::IsNotFound(s)) return;
    std::optional<KubeError> e = GetKubeError(s);
    if (e && e->name.empty()) InvalidateDiscovery();
  }
};

CurlKubeClient::CurlKubeClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
CurlKubeClient::~CurlKubeClient() = default;

absl::StatusOr<std::unique_ptr<CurlKubeClient>> CurlKubeClient::New(RestConfig config,
                                                                    CurlKubeClientOptions options) {
  GlobalInit();
  if (config.server.empty()) return absl::InvalidArgumentError("rest config has no server");
  DL_ASSIGN_OR_RETURN(ServerUrl url, ParseServer(config.server));
  auto impl = std::make_unique<Impl>(std::move(config), std::move(options), std::move(url));
  return std::unique_ptr<CurlKubeClient>(new CurlKubeClient(std::move(impl)));
}

absl::StatusOr<std::vector<ResourceInfo>> CurlKubeClient::Discover() { return impl_->Discover(); }

void CurlKubeClient::InvalidateDiscovery() { impl_->InvalidateDiscovery(); }

absl::StatusOr<std::string> CurlKubeClient::ServerVersion() {
  HttpRequest req{.verb = "version", .method = "GET", .path = "/version"};
  DL_ASSIGN_OR_RETURN(Json doc, impl_->DoJson(req, "get /version"));
  if (!doc.is_object() || !doc.contains("gitVersion") || !doc["gitVersion"].is_string()) {
    return absl::InvalidArgumentError("get /version: the answer has no gitVersion");
  }
  return doc["gitVersion"].get<std::string>();
}

absl::StatusOr<ResourceInfo> CurlKubeClient::ResourceFor(std::string_view api_version,
                                                         std::string_view kind) {
  return impl_->ResourceFor(api_version, kind);
}

absl::StatusOr<Json> CurlKubeClient::Get(const ObjectRef& ref) {
  DL_ASSIGN_OR_RETURN(ResourceInfo r, impl_->Resolve(ref, "get", /*need_name=*/true));
  HttpRequest req{
      .verb = "get", .method = "GET", .path = ResourcePath(r, ref.namespace_, ref.name)};
  return impl_->DoJson(req, Context("get", ref));
}

absl::StatusOr<ListResult> CurlKubeClient::List(const ListRequest& request) {
  ObjectRef ref{
      .api_version = request.api_version, .kind = request.kind, .namespace_ = request.namespace_};
  std::string context = Context("list", ref);
  DL_ASSIGN_OR_RETURN(ResourceInfo r, impl_->Resolve(ref, "list", /*need_name=*/false));
  std::string base = ResourcePath(r, request.namespace_, "");
  int page_size = request.page_size;
  for (int restart = 0; restart < 2; ++restart) {
    ListResult result;
    std::string cont;
    bool expired = false;
    do {
      std::string path =
          base + QueryString({{"labelSelector", request.label_selector},
                              {"fieldSelector", request.field_selector},
                              {"limit", page_size > 0 ? std::to_string(page_size) : ""},
                              {"continue", cont}});
      HttpRequest req{.verb = "list", .method = "GET", .path = path};
      absl::StatusOr<Json> page = impl_->DoJson(req, context);
      if (!page.ok()) {
        if (absl::IsOutOfRange(page.status()) && !cont.empty() && restart == 0) {
          expired = true;  // the continue token expired: list again in one piece
          break;
        }
        impl_->NoteTypeMissing(page.status());
        return page.status();
      }
      const Json& meta = (*page)["metadata"];
      cont = meta.is_object() ? meta.value("continue", "") : "";
      if (meta.is_object()) result.resource_version = meta.value("resourceVersion", "");
      if (auto it = page->find("items"); it != page->end() && it->is_array()) {
        for (Json& item : *it) {
          if (!item.is_object()) continue;
          item["apiVersion"] = r.ApiVersion();
          item["kind"] = r.kind;
          result.items.push_back(std::move(item));
        }
      }
    } while (!cont.empty());
    if (!expired) return result;
    page_size = 0;
  }
  return absl::OutOfRangeError(context + ": continue token expired twice");
}

absl::StatusOr<std::string> CurlKubeClient::Watch(const WatchRequest& request,
                                                  const WatchCallback& callback) {
  ObjectRef ref{
      .api_version = request.api_version, .kind = request.kind, .namespace_ = request.namespace_};
  std::string context = Context("watch", ref);
  DL_ASSIGN_OR_RETURN(ResourceInfo r, impl_->Resolve(ref, "watch", /*need_name=*/false));
  std::string path =
      ResourcePath(r, request.namespace_, "") +
      QueryString({{"watch", "true"},
                   {"resourceVersion", request.resource_version},
                   {"allowWatchBookmarks", request.allow_bookmarks ? "true" : ""},
                   {"labelSelector", request.label_selector},
                   {"fieldSelector", request.field_selector},
                   {"timeoutSeconds",
                    request.timeout_seconds > 0 ? std::to_string(request.timeout_seconds) : ""}});
  std::string last_rv = request.resource_version;
  std::string buffer;
  absl::Status stream_error;
  bool callback_stopped = false;

  auto handle_line = [&](std::string_view line) -> bool {
    line = internal::Trim(line);
    if (line.empty()) return true;
    Json event = Json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (!event.is_object() || !event.contains("type") || !event["type"].is_string()) {
      stream_error = absl::InternalError(context + ": malformed watch event");
      return false;
    }
    std::string type = event["type"].get<std::string>();
    Json object = event.contains("object") ? std::move(event["object"]) : Json::object();
    if (type == "ERROR") {
      int code = object.is_object() ? object.value("code", 500) : 500;
      stream_error = StatusFromResponse(code, object.dump(), context);
      return false;
    }
    WatchEvent ev;
    if (type == "ADDED")
      ev.type = WatchEvent::Type::kAdded;
    else if (type == "MODIFIED")
      ev.type = WatchEvent::Type::kModified;
    else if (type == "DELETED")
      ev.type = WatchEvent::Type::kDeleted;
    else if (type == "BOOKMARK")
      ev.type = WatchEvent::Type::kBookmark;
    else
      return true;  // unknown event types are skipped, as client-go does
    if (object.is_object()) {
      object["apiVersion"] = r.ApiVersion();
      object["kind"] = r.kind;
      if (object.contains("metadata") && object["metadata"].is_object()) {
        std::string rv = object["metadata"].value("resourceVersion", "");
        if (!rv.empty()) last_rv = rv;
      }
    }
    ev.object = std::move(object);
    if (!callback(ev)) {
      callback_stopped = true;
      return false;
    }
    return true;
  };

  HttpRequest req{
      .verb = "watch", .method = "GET", .path = path, .watch = true, .stop = request.stop};
  req.on_data = [&](std::string_view chunk) -> bool {
    buffer.append(chunk);
    size_t start = 0;
    for (size_t nl; (nl = buffer.find('\n', start)) != std::string::npos; start = nl + 1) {
      if (!handle_line(std::string_view(buffer).substr(start, nl - start))) {
        buffer.clear();
        return false;
      }
    }
    buffer.erase(0, start);
    return true;
  };
  absl::StatusOr<HttpResponse> resp = impl_->Do(req, context);
  if (!resp.ok()) {
    if (absl::IsCancelled(resp.status()) && request.stop.stop_requested()) return last_rv;
    return resp.status();
  }
  if (resp->code < 200 || resp->code >= 300) {
    absl::Status s = StatusFromResponse(static_cast<int>(resp->code), resp->body, context,
                                        resp->retry_after_seconds);
    impl_->NoteTypeMissing(s);
    return s;
  }
  if (!stream_error.ok()) return stream_error;
  if (!callback_stopped && !buffer.empty()) {
    handle_line(buffer);
    if (!stream_error.ok()) return stream_error;
  }
  return last_rv;
}

absl::StatusOr<Json> CurlKubeClient::Apply(const Json& object, const ApplyOptions& options) {
  ObjectRef ref = ObjectRef::Of(object);
  std::string context = Context("apply", ref);
  if (options.field_manager.empty()) {
    return absl::InvalidArgumentError(context +
                                      ": field manager is required for server-side apply");
  }
  DL_ASSIGN_OR_RETURN(ResourceInfo r, impl_->Resolve(ref, "apply", /*need_name=*/true));
  Json body = object;
  if (!r.namespaced && body["metadata"].contains("namespace")) body["metadata"].erase("namespace");
  HttpRequest req{.verb = "apply",
                  .method = "PATCH",
                  .path = ResourcePath(r, ref.namespace_, ref.name) +
                          QueryString({{"fieldManager", options.field_manager},
                                       {"force", options.force ? "true" : ""},
                                       {"dryRun", options.dry_run ? "All" : ""}}),
                  .body = body.dump(),
                  .content_type = "application/apply-patch+yaml"};
  return impl_->DoJson(req, context);
}

absl::StatusOr<Json> CurlKubeClient::Create(const Json& object, const WriteOptions& options) {
  ObjectRef ref = ObjectRef::Of(object);
  std::string context = Context("create", ref);
  DL_ASSIGN_OR_RETURN(ResourceInfo r, impl_->Resolve(ref, "create", /*need_name=*/false));
  if (r.namespaced && ref.namespace_.empty()) {
    return absl::InvalidArgumentError(context +
                                      ": metadata.namespace is required for a namespaced kind");
  }
  HttpRequest req{.verb = "create",
                  .method = "POST",
                  .path = ResourcePath(r, ref.namespace_, "") +
                          QueryString({{"fieldManager", options.field_manager},
                                       {"dryRun", options.dry_run ? "All" : ""}}),
                  .body = object.dump(),
                  .content_type = "application/json"};
  absl::StatusOr<Json> out = impl_->DoJson(req, context);
  if (!out.ok()) impl_->NoteTypeMissing(out.status());
  return out;
}

absl::StatusOr<Json> CurlKubeClient::Update(const Json& object, const WriteOptions& options) {
  ObjectRef ref = ObjectRef::Of(object);
  std::string context = Context("update", ref);
  DL_ASSIGN_OR_RETURN(ResourceInfo r, impl_->Resolve(ref, "update", /*need_name=*/true));
  HttpRequest req{.verb = "update",
                  .method = "PUT",
                  .path = ResourcePath(r, ref.namespace_, ref.name) +
                          QueryString({{"fieldManager", options.field_manager},
                                       {"dryRun", options.dry_run ? "All" : ""}}),
                  .body = object.dump(),
                  .content_type = "application/json"};
  return impl_->DoJson(req, context);
}

absl::StatusOr<Json> CurlKubeClient::Patch(const ObjectRef& ref, PatchType type, const Json& patch,
                                           const WriteOptions& options) {
  std::string context = Context("patch", ref);
  DL_ASSIGN_OR_RETURN(ResourceInfo r, impl_->Resolve(ref, "patch", /*need_name=*/true));
  const char* content_type = type == PatchType::kMerge ? "application/merge-patch+json"
                             : type == PatchType::kStrategicMerge
                                 ? "application/strategic-merge-patch+json"
                                 : "application/json-patch+json";
  HttpRequest req{.verb = "patch",
                  .method = "PATCH",
                  .path = ResourcePath(r, ref.namespace_, ref.name) +
                          QueryString({{"fieldManager", options.field_manager},
                                       {"dryRun", options.dry_run ? "All" : ""}}),
                  .body = patch.dump(),
                  .content_type = content_type};
  return impl_->DoJson(req, context);
}

absl::Status CurlKubeClient::Delete(const ObjectRef& ref, const DeleteOptions& options) {
  std::string context = Context("delete", ref);
  DL_ASSIGN_OR_RETURN(ResourceInfo r, impl_->Resolve(ref, "delete", /*need_name=*/true));
  Json body = {{"apiVersion", "v1"}, {"kind", "DeleteOptions"}};
  if (options.propagation_policy != PropagationPolicy::kDefault) {
    body["propagationPolicy"] = PropagationName(options.propagation_policy);
  }
  if (options.dry_run) body["dryRun"] = Json::array({"All"});
  if (options.grace_period_seconds) body["gracePeriodSeconds"] = *options.grace_period_seconds;
  if (!options.precondition_uid.empty()) body["preconditions"]["uid"] = options.precondition_uid;
  if (!options.precondition_resource_version.empty()) {
    body["preconditions"]["resourceVersion"] = options.precondition_resource_version;
  }
  HttpRequest req{.verb = "delete",
                  .method = "DELETE",
                  .path = ResourcePath(r, ref.namespace_, ref.name) +
                          QueryString({{"dryRun", options.dry_run ? "All" : ""}}),
                  .body = body.dump(),
                  .content_type = "application/json"};
  // 200 (object or Status) and 202 (deletion pending, body may be empty) both mean success.
  DL_ASSIGN_OR_RETURN(HttpResponse resp, impl_->Do(req, context));
  if (resp.code < 200 || resp.code >= 300) {
    return StatusFromResponse(static_cast<int>(resp.code), resp.body, context,
                              resp.retry_after_seconds);
  }
  return absl::OkStatus();
}

CurlKubeClient::Stats CurlKubeClient::GetStats() const {
  return Stats{.requests = impl_->requests.load(),
               .new_connections = impl_->new_connections.load(),
               .http2_responses = impl_->http2_responses.load(),
               .throttle_retries = impl_->throttle_retries.load(),
               .auth_retries = impl_->auth_retries.load(),
               .discovery_fetches = impl_->discovery_fetches.load()};
}

int CurlKubeClient::ExecRunsForTest() const { return impl_->credentials.exec_runs(); }

}  // namespace driftless::kube
