// CurlKubeClient: the KubeClient over libcurl.
//
//   DL_ASSIGN_OR_RETURN(RestConfig config, LoadKubeconfig(path));
//   DL_ASSIGN_OR_RETURN(std::unique_ptr<CurlKubeClient> kube,
//                       CurlKubeClient::New(config, {.qps = 50, .burst = 100}));
//
// Transport: HTTP/2 when the server offers it over TLS (ALPN); HTTP/1.1 over plain http.
// Connections are reused through a pool of curl easy handles (each keeps its connections
// alive between requests); DNS and TLS sessions are shared among them. Every request first
// takes a token from a client-side token bucket (qps/burst, like client-go's 5/10
// defaults). 429 and 503-with-Retry-After are retried after the server's delay, up to
// `max_throttle_retries` times, then returned as kUnavailable. A 401 makes the credential
// source refresh (exec plugin re-run, token file re-read) and the request is retried once.
// Requests have a total timeout; watches have none but end with kDeadlineExceeded when no
// byte arrives for `watch_stall_timeout` (servers send bookmarks about once a minute).
//
// Thread-safety: all methods may be called concurrently from any number of threads.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/time/time.h"
#include "common/kube/kube_client.h"
#include "common/kube/kubeconfig.h"

namespace driftless::kube {

struct CurlKubeClientOptions {
  double qps = 5;  // <= 0 disables client-side rate limiting
  int burst = 10;
  absl::Duration request_timeout = absl::Seconds(30);
  absl::Duration connect_timeout = absl::Seconds(10);
  absl::Duration watch_stall_timeout = absl::Minutes(3);
  int max_throttle_retries = 5;
  // Upper bound on one Retry-After wait (and the wait used when 429 carries none: 1 s).
  absl::Duration max_retry_after = absl::Seconds(10);
  absl::Duration discovery_ttl = absl::Minutes(10);
  std::string user_agent = "driftless/0.1";
  size_t max_idle_connections = 16;  // idle easy handles kept for reuse
};

class CurlKubeClient : public KubeClient {
 public:
  // Counters since creation, for tests and metrics.
  struct Stats {
    int64_t requests = 0;           // HTTP exchanges, including retries
    int64_t new_connections = 0;    // TCP/TLS connections opened
    int64_t http2_responses = 0;    // responses received over HTTP/2
    int64_t throttle_retries = 0;   // retries after 429/503
    int64_t auth_retries = 0;       // retries after 401 with refreshed credentials
    int64_t discovery_fetches = 0;  // full discovery refreshes
  };

  // kInvalidArgument for an unusable config (no server, bad URL).
  static absl::StatusOr<std::unique_ptr<CurlKubeClient>> New(RestConfig config,
                                                             CurlKubeClientOptions options = {});
  ~CurlKubeClient() override;

  absl::StatusOr<std::vector<ResourceInfo>> Discover() override;
  void InvalidateDiscovery() override;
  absl::StatusOr<std::string> ServerVersion() override;
  absl::StatusOr<ResourceInfo> ResourceFor(std::string_view api_version,
                                           std::string_view kind) override;
  absl::StatusOr<Json> Get(const ObjectRef& ref) override;
  absl::StatusOr<ListResult> List(const ListRequest& request) override;
  absl::StatusOr<std::string> Watch(const WatchRequest& request,
                                    const WatchCallback& callback) override;
  absl::StatusOr<Json> Apply(const Json& object, const ApplyOptions& options) override;
  absl::StatusOr<Json> Create(const Json& object, const WriteOptions& options) override;
  absl::StatusOr<Json> Update(const Json& object, const WriteOptions& options) override;
  absl::StatusOr<Json> Patch(const ObjectRef& ref, PatchType type, const Json& patch,
                             const WriteOptions& options) override;
  absl::Status Delete(const ObjectRef& ref, const DeleteOptions& options) override;

  Stats GetStats() const;
  // How often the exec credential plugin has run.
  int ExecRunsForTest() const;

  struct Impl;  // curl lives only in the .cc

 private:
  explicit CurlKubeClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace driftless::kube
