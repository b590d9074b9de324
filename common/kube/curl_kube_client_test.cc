// CurlKubeClient against a small local API server (cpp-httplib) started in each test, over
// plain HTTP and over TLS with a CA generated in the test.
#include "common/kube/curl_kube_client.h"

#include <httplib.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/kube/kube_error.h"
#include "common/kube/testing/test_pki.h"
#include "common/kube/testing/test_util.h"
#include "common/testing/status_matchers.h"

namespace driftless::kube {
namespace {

using ::driftless::kube::testing::GenerateTestPki;
using ::driftless::kube::testing::TempDir;
using ::driftless::kube::testing::TestPki;
using ::driftless::kube::testing::WriteFile;
using ::driftless::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Aggregated discovery documents for /api and /apis. The Widget CRD appears only once
// `crd_installed` is set.
Json AggregatedCore() {
  return Json::parse(R"({"kind":"APIGroupDiscoveryList","apiVersion":"apidiscovery.k8s.io/v2",
    "items":[{"metadata":{},"versions":[{"version":"v1","resources":[
      {"resource":"namespaces","scope":"Cluster","responseKind":{"group":"","version":"v1","kind":"Namespace"}},
      {"resource":"configmaps","scope":"Namespaced","responseKind":{"group":"","version":"v1","kind":"ConfigMap"}}]}]}]})");
}
Json AggregatedApis(bool with_crd) {
  Json doc = Json::parse(R"({"kind":"APIGroupDiscoveryList","apiVersion":"apidiscovery.k8s.io/v2",
    "items":[{"metadata":{"name":"apps"},"versions":[{"version":"v1","resources":[
      {"resource":"deployments","scope":"Namespaced","responseKind":{"group":"apps","version":"v1","kind":"Deployment"}}]}]}]})");
  if (with_crd) {
    doc["items"].push_back(
        Json::parse(R"({"metadata":{"name":"example.com"},"versions":[{"version":"v1",
      "resources":[{"resource":"widgets","scope":"Namespaced","responseKind":{"group":"example.com","version":"v1","kind":"Widget"}}]}]})"));
  }
  return doc;
}

std::string StatusBody(int code, const std::string& reason, const std::string& message,
                       Json details = Json::object()) {
  return Json{{"kind", "Status"}, {"apiVersion", "v1"}, {"status", "Failure"}, {"code", code},
              {"reason", reason}, {"message", message}, {"details", details}}
      .dump();
}

// What the server saw of one request.
struct Seen {
  std::string method, path, body, content_type, accept, authorization;
  httplib::Params params;
};

// A local API server: discovery plus whatever routes a test adds. Listens on 127.0.0.1:0.
class TestApiServer {
 public:
  explicit TestApiServer(
      std::unique_ptr<httplib::Server> server = std::make_unique<httplib::Server>())
      : server_(std::move(server)) {
    server_->set_keep_alive_max_count(10000);
    server_->set_tcp_nodelay(true);  // else Nagle + delayed ACK adds ~40 ms per response
    Get("/api", [](const httplib::Request&, httplib::Response& res) {
      res.set_content(AggregatedCore().dump(), "application/json");
    });
    Get("/apis", [this](const httplib::Request&, httplib::Response& res) {
      res.set_content(AggregatedApis(crd_installed.load()).dump(), "application/json");
    });
  }

  ~TestApiServer() {
    stopping_ = true;
    cv_.notify_all();
    server_->stop();
    if (thread_.joinable()) thread_.join();
  }

  httplib::Server& server() { return *server_; }

  // Route registration that records each request (with its body) before handling it.
  void Get(const std::string& pattern, httplib::Server::Handler h) {
    server_->Get(pattern, Recorded(std::move(h)));
  }
  void Post(const std::string& pattern, httplib::Server::Handler h) {
    server_->Post(pattern, Recorded(std::move(h)));
  }
  void Put(const std::string& pattern, httplib::Server::Handler h) {
    server_->Put(pattern, Recorded(std::move(h)));
  }
  void Patch(const std::string& pattern, httplib::Server::Handler h) {
    server_->Patch(pattern, Recorded(std::move(h)));
  }
  void Delete(const std::string& pattern, httplib::Server::Handler h) {
    server_->Delete(pattern, Recorded(std::move(h)));
  }

  void Start() {
    port_ = server_->bind_to_any_port("127.0.0.1");
    ASSERT_GT(port_, 0);
    thread_ = std::thread([this] { server_->listen_after_bind(); });
    absl::Time deadline = absl::Now() + absl::Seconds(10);
    while (!server_->is_running() && absl::Now() < deadline) std::this_thread::yield();
    ASSERT_TRUE(server_->is_running());
  }

  httplib::Server::Handler Recorded(httplib::Server::Handler h) {
    return [this, h = std::move(h)](const httplib::Request& req, httplib::Response& res) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        seen_.push_back(Seen{req.method, req.path, req.body, req.get_header_value("Content-Type"),
                             req.get_header_value("Accept"), req.get_header_value("Authorization"),
                             req.params});
      }
      h(req, res);
    };
  }

  int port() const { return port_; }
  std::string Url(const char* scheme = "http") const {
    return absl::StrCat(scheme, "://127.0.0.1:", port_);
  }

  std::vector<Seen> SeenMatching(const std::string& path_prefix) {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<Seen> out;
    for (const Seen& s : seen_) {
      if (s.path.rfind(path_prefix, 0) == 0) out.push_back(s);
    }
    return out;
  }

  // Blocks a handler until the server stops or `release` is called (bounded by `max`).
  void Hold(absl::Duration max) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, absl::ToChronoMilliseconds(max),
                 [this] { return stopping_.load() || released_; });
  }
  void Release() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      released_ = true;
    }
    cv_.notify_all();
  }
  bool stopping() const { return stopping_; }

  std::atomic<bool> crd_installed{false};

 private:
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
  std::mutex mu_;
  std::condition_variable cv_;
  bool released_ = false;
  std::atomic<bool> stopping_{false};
  std::vector<Seen> seen_;
};

std::unique_ptr<CurlKubeClient> NewClient(RestConfig config, CurlKubeClientOptions options = {}) {
  options.qps = options.qps == 5 ? 0 : options.qps;  // tests run unthrottled unless they ask
  absl::StatusOr<std::unique_ptr<CurlKubeClient>> c =
      CurlKubeClient::New(std::move(config), options);
  EXPECT_TRUE(c.ok()) << c.status();
  return c.ok() ? *std::move(c) : nullptr;
}

Json Deployment(const std::string& ns, const std::string& name) {
  return {{"apiVersion", "apps/v1"},
          {"kind", "Deployment"},
          {"metadata", {{"namespace", ns}, {"name", name}}},
          {"spec", {{"replicas", 2}}}};
}

const char kDeploymentPath[] = R"(/apis/apps/v1/namespaces/([^/]+)/deployments/([^/]+))";

TEST(CurlKubeClientTest, AggregatedDiscoveryIsCachedAndMapsKinds) {
  TestApiServer api;
  api.Start();
  auto kube = NewClient({.server = api.Url()});
  ASSERT_OK_AND_ASSIGN(ResourceInfo deploy, kube->ResourceFor("apps/v1", "Deployment"));
  EXPECT_EQ(deploy.resource, "deployments");
  EXPECT_TRUE(deploy.namespaced);
  ASSERT_OK_AND_ASSIGN(ResourceInfo ns, kube->ResourceFor("v1", "Namespace"));
  EXPECT_FALSE(ns.namespaced);
  ASSERT_OK_AND_ASSIGN(auto all, kube->Discover());
  EXPECT_EQ(all.size(), 3u);
  EXPECT_EQ(kube->GetStats().discovery_fetches, 1);
  std::vector<Seen> seen = api.SeenMatching("/api");
  ASSERT_EQ(seen.size(), 2u);  // /api and /apis, once each
  EXPECT_THAT(seen[0].accept,
              HasSubstr("application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"));
  EXPECT_THAT(seen[0].accept, HasSubstr("v=v2beta1"));
  EXPECT_THAT(kube->ResourceFor("apps/v1", "Nope"), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(kube->ResourceFor("a/b/c", "Nope"), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(CurlKubeClientTest, UnknownKindRefreshesDiscoveryForNewCrd) {
  TestApiServer api;
  api.Start();
  auto kube = NewClient({.server = api.Url()});
  EXPECT_THAT(kube->ResourceFor("example.com/v1", "Widget"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("example.com/v1 Widget")));
  api.crd_installed = true;
  ASSERT_OK_AND_ASSIGN(ResourceInfo w, kube->ResourceFor("example.com/v1", "Widget"));
  EXPECT_EQ(w.resource, "widgets");
}

TEST(CurlKubeClientTest, LegacyDiscoveryFallback) {
  auto server = std::make_unique<httplib::Server>();
  // Registered before TestApiServer's own /api and /apis handlers, so these win.
  server->Get("/api", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(R"({"kind":"APIVersions","versions":["v1"]})", "application/json");
  });
  server->Get("/apis", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(R"({"kind":"APIGroupList","groups":[
      {"name":"apps","versions":[{"groupVersion":"apps/v1","version":"v1"}],"preferredVersion":{"groupVersion":"apps/v1"}},
      {"name":"metrics.k8s.io","versions":[{"groupVersion":"metrics.k8s.io/v1beta1"}]}]})",
                    "application/json");
  });
  server->Get("/api/v1", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(R"({"kind":"APIResourceList","groupVersion":"v1","resources":[
      {"name":"pods","namespaced":true,"kind":"Pod"},{"name":"pods/log","namespaced":true,"kind":"Pod"}]})",
                    "application/json");
  });
  server->Get("/apis/apps/v1", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(R"({"kind":"APIResourceList","groupVersion":"apps/v1","resources":[
      {"name":"deployments","namespaced":true,"kind":"Deployment"}]})",
                    "application/json");
  });
  server->Get("/apis/metrics.k8s.io/v1beta1", [](const httplib::Request&, httplib::Response& res) {
    res.status = 503;  // a broken aggregated API must not break discovery
    res.set_content(StatusBody(503, "ServiceUnavailable", "unavailable"), "application/json");
  });
  TestApiServer api(std::move(server));
  api.Start();
  auto kube = NewClient({.server = api.Url()});
  ASSERT_OK_AND_ASSIGN(auto all, kube->Discover());
  ASSERT_EQ(all.size(), 2u);
  ASSERT_OK_AND_ASSIGN(ResourceInfo pods, kube->ResourceFor("v1", "Pod"));
  EXPECT_EQ(pods.resource, "pods");
  ASSERT_OK_AND_ASSIGN(ResourceInfo d, kube->ResourceFor("apps/v1", "Deployment"));
  EXPECT_EQ(d.resource, "deployments");
}

TEST(CurlKubeClientTest, GetAndTypedErrors) {
  TestApiServer api;
  api.Get(kDeploymentPath, [](const httplib::Request& req, httplib::Response& res) {
    std::string name = req.matches[2];
    if (name == "web") {
      res.set_content(Deployment(req.matches[1], "web").dump(), "application/json");
    } else if (name == "secret") {
      res.status = 403;
      res.set_content(StatusBody(403, "Forbidden", "deployments.apps \"secret\" is forbidden"),
                      "application/json");
    } else if (name == "boom") {
      res.status = 500;
      res.set_content("internal boom", "text/plain");
    } else {
      res.status = 404;
      res.set_content(StatusBody(404, "NotFound", "deployments.apps \"" + name + "\" not found",
                                 {{"name", name}, {"group", "apps"}, {"kind", "deployments"}}),
                      "application/json");
    }
  });
  api.Start();
  auto kube = NewClient({.server = api.Url(), .bearer_token = "t0k"});
  ASSERT_OK_AND_ASSIGN(Json obj, kube->Get({"apps/v1", "Deployment", "gb", "web"}));
  EXPECT_EQ(obj["metadata"]["namespace"], "gb");
  EXPECT_EQ(api.SeenMatching("/apis/apps/v1/namespaces/gb/deployments/web")[0].authorization,
            "Bearer t0k");
  absl::StatusOr<Json> missing = kube->Get({"apps/v1", "Deployment", "gb", "nope"});
  EXPECT_THAT(
      missing,
      StatusIs(absl::StatusCode::kNotFound,
               HasSubstr("get apps/v1 Deployment gb/nope: deployments.apps \"nope\" not found")));
  EXPECT_EQ(GetKubeError(missing.status())->name, "nope");
  EXPECT_THAT(kube->Get({"apps/v1", "Deployment", "gb", "secret"}),
              StatusIs(absl::StatusCode::kPermissionDenied));
  EXPECT_THAT(kube->Get({"apps/v1", "Deployment", "gb", "boom"}),
              StatusIs(absl::StatusCode::kInternal, HasSubstr("internal boom")));
  EXPECT_THAT(kube->Get({"apps/v1", "Deployment", "", "web"}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("namespace")));
}

TEST(CurlKubeClientTest, ApplySendsServerSideApplyAndReportsConflicts) {
  TestApiServer api;
  api.Patch(kDeploymentPath, [](const httplib::Request& req, httplib::Response& res) {
    if (req.get_param_value("force") != "true" && req.matches[2] == "taken") {
      res.status = 409;
      res.set_content(
          StatusBody(409, "Conflict",
                     "Apply failed with 1 conflict: conflict with \"kubectl-client-side-apply\" "
                     "using apps/v1: .spec.replicas",
                     {{"causes",
                       {{{"reason", "FieldManagerConflict"},
                         {"message", "conflict with \"kubectl-client-side-apply\" using apps/v1"},
                         {"field", ".spec.replicas"}}}}}),
          "application/json");
      return;
    }
    if (req.matches[2] == "bad") {
      res.status = 422;
      res.set_content(
          StatusBody(422, "Invalid",
                     "Deployment.apps \"bad\" is invalid: spec.replicas: Invalid value: -1",
                     {{"causes", {{{"reason", "FieldValueInvalid"}, {"field", "spec.replicas"}}}}}),
          "application/json");
      return;
    }
    Json obj = Json::parse(req.body);
    obj["metadata"]["resourceVersion"] = "42";
    res.set_content(obj.dump(), "application/json");
  });
  api.Start();
  auto kube = NewClient({.server = api.Url()});
  ASSERT_OK_AND_ASSIGN(Json live,
                       kube->Apply(Deployment("gb", "web"),
                                   {.field_manager = "driftless", .force = true, .dry_run = true}));
  EXPECT_EQ(live["metadata"]["resourceVersion"], "42");
  std::vector<Seen> seen = api.SeenMatching("/apis/apps/v1/namespaces/gb/deployments/web");
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].method, "PATCH");
  EXPECT_EQ(seen[0].content_type, "application/apply-patch+yaml");
  EXPECT_EQ(seen[0].params.find("fieldManager")->second, "driftless");
  EXPECT_EQ(seen[0].params.find("force")->second, "true");
  EXPECT_EQ(seen[0].params.find("dryRun")->second, "All");
  EXPECT_EQ(Json::parse(seen[0].body), Deployment("gb", "web"));

  absl::StatusOr<Json> conflict =
      kube->Apply(Deployment("gb", "taken"), {.field_manager = "driftless"});
  EXPECT_THAT(conflict, StatusIs(absl::StatusCode::kAborted,
                                 HasSubstr("apply apps/v1 Deployment gb/taken: Apply failed")));
  EXPECT_THAT(ApplyConflicts(conflict.status()),
              ElementsAre(FieldConflict{"kubectl-client-side-apply", ".spec.replicas"}));
  absl::StatusOr<Json> invalid =
      kube->Apply(Deployment("gb", "bad"), {.field_manager = "driftless"});
  EXPECT_THAT(invalid, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(GetKubeError(invalid.status())->causes.at(0).field, "spec.replicas");

  EXPECT_THAT(kube->Apply(Deployment("gb", "web"), {}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("field manager")));
  EXPECT_THAT(kube->Apply(Deployment("", "web"), {.field_manager = "driftless"}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("namespace")));
}

TEST(CurlKubeClientTest, CreateUpdatePatchDelete) {
  TestApiServer api;
  api.Post("/apis/apps/v1/namespaces/gb/deployments",
           [](const httplib::Request& req, httplib::Response& res) {
             Json obj = Json::parse(req.body);
             if (obj["metadata"]["name"] == "exists") {
               res.status = 409;
               res.set_content(
                   StatusBody(409, "AlreadyExists", "deployments.apps \"exists\" already exists"),
                   "application/json");
               return;
             }
             res.status = 201;
             res.set_content(obj.dump(), "application/json");
           });
  api.Put(kDeploymentPath, [](const httplib::Request& req, httplib::Response& res) {
    if (Json::parse(req.body)["metadata"].value("resourceVersion", "") == "stale") {
      res.status = 409;
      res.set_content(StatusBody(409, "Conflict", "the object has been modified"),
                      "application/json");
      return;
    }
    res.set_content(req.body, "application/json");
  });
  api.Patch(kDeploymentPath, [](const httplib::Request& req, httplib::Response& res) {
    res.set_content(req.body, "application/json");
  });
  api.Delete(kDeploymentPath, [](const httplib::Request& req, httplib::Response& res) {
    if (req.matches[2] == "gone") {
      res.status = 404;
      res.set_content(StatusBody(404, "NotFound", "not found", {{"name", "gone"}}),
                      "application/json");
      return;
    }
    if (req.matches[2] == "pending") {
      res.status = 202;  // accepted, finalizers pending; no body
      return;
    }
    res.set_content(StatusBody(200, "", "Success"), "application/json");
  });
  api.Start();
  auto kube = NewClient({.server = api.Url()});
  EXPECT_OK(kube->Create(Deployment("gb", "new"), {.field_manager = "driftless"}).status());
  EXPECT_THAT(kube->Create(Deployment("gb", "exists"), {}),
              StatusIs(absl::StatusCode::kAlreadyExists));
  Json stale = Deployment("gb", "web");
  stale["metadata"]["resourceVersion"] = "stale";
  EXPECT_THAT(kube->Update(stale, {}),
              StatusIs(absl::StatusCode::kAborted, HasSubstr("update apps/v1")));
  EXPECT_OK(kube->Update(Deployment("gb", "web"), {}).status());
  ASSERT_OK_AND_ASSIGN(Json patched,
                       kube->Patch({"apps/v1", "Deployment", "gb", "web"}, PatchType::kMerge,
                                   {{"spec", {{"replicas", 3}}}}, {}));
  EXPECT_EQ(patched["spec"]["replicas"], 3);
  EXPECT_EQ(api.SeenMatching("/apis/apps/v1/namespaces/gb/deployments/web").back().content_type,
            "application/merge-patch+json");

  EXPECT_OK(kube->Delete({"apps/v1", "Deployment", "gb", "web"},
                         {.propagation_policy = PropagationPolicy::kForeground,
                          .dry_run = true,
                          .precondition_uid = "uid-1",
                          .precondition_resource_version = "7"}));
  Seen del = api.SeenMatching("/apis/apps/v1/namespaces/gb/deployments/web").back();
  EXPECT_EQ(del.method, "DELETE");
  Json opts = Json::parse(del.body);
  EXPECT_EQ(opts["kind"], "DeleteOptions");
  EXPECT_EQ(opts["propagationPolicy"], "Foreground");
  EXPECT_EQ(opts["dryRun"], Json::array({"All"}));
  EXPECT_EQ(opts["preconditions"]["uid"], "uid-1");
  EXPECT_EQ(opts["preconditions"]["resourceVersion"], "7");
  EXPECT_OK(kube->Delete({"apps/v1", "Deployment", "gb", "pending"}, {}));
  EXPECT_THAT(
      kube->Delete({"apps/v1", "Deployment", "gb", "gone"}, {}),
      StatusIs(absl::StatusCode::kNotFound, HasSubstr("delete apps/v1 Deployment gb/gone")));
}

TEST(CurlKubeClientTest, ListFollowsContinueAndFillsKinds) {
  TestApiServer api;
  api.Get("/api/v1/namespaces/gb/configmaps", [](const httplib::Request& req,
                                                 httplib::Response& res) {
    std::string cont = req.get_param_value("continue");
    int page = cont.empty() ? 0 : std::stoi(cont.substr(1));
    Json items = Json::array();
    for (int i = 0; i < 2; ++i) {
      items.push_back({{"metadata", {{"name", "cm-" + std::to_string(page * 2 + i)}}}});
    }
    Json meta = {{"resourceVersion", "100"}};
    if (page < 2) meta["continue"] = "p" + std::to_string(page + 1);
    res.set_content(
        Json{{"kind", "ConfigMapList"}, {"apiVersion", "v1"}, {"metadata", meta}, {"items", items}}
            .dump(),
        "application/json");
  });
  api.Start();
  auto kube = NewClient({.server = api.Url()});
  ASSERT_OK_AND_ASSIGN(ListResult list, kube->List({.api_version = "v1",
                                                    .kind = "ConfigMap",
                                                    .namespace_ = "gb",
                                                    .label_selector = "app=web,tier!=db",
                                                    .page_size = 2}));
  ASSERT_EQ(list.items.size(), 6u);
  EXPECT_EQ(list.items[5]["metadata"]["name"], "cm-5");
  EXPECT_EQ(list.items[0]["kind"], "ConfigMap");
  EXPECT_EQ(list.items[0]["apiVersion"], "v1");
  EXPECT_EQ(list.resource_version, "100");
  std::vector<Seen> seen = api.SeenMatching("/api/v1/namespaces/gb/configmaps");
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(seen[0].params.find("labelSelector")->second, "app=web,tier!=db");
  EXPECT_EQ(seen[0].params.find("limit")->second, "2");
  EXPECT_EQ(seen[2].params.find("continue")->second, "p2");
}

TEST(CurlKubeClientTest, ListRestartsWhenContinueExpires) {
  TestApiServer api;
  api.Get("/api/v1/configmaps", [](const httplib::Request& req, httplib::Response& res) {
    if (req.has_param("continue")) {
      res.status = 410;
      res.set_content(StatusBody(410, "Expired", "The provided continue parameter is too old"),
                      "application/json");
      return;
    }
    Json meta = {{"resourceVersion", "9"}};
    if (req.has_param("limit")) meta["continue"] = "c1";
    res.set_content(Json{{"metadata", meta}, {"items", {{{"metadata", {{"name", "a"}}}}}}}.dump(),
                    "application/json");
  });
  api.Start();
  auto kube = NewClient({.server = api.Url()});
  ASSERT_OK_AND_ASSIGN(ListResult list, kube->List({.api_version = "v1", .kind = "ConfigMap"}));
  EXPECT_EQ(list.items.size(), 1u);
  std::vector<Seen> seen = api.SeenMatching("/api/v1/configmaps");
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_FALSE(seen[2].params.count("limit"));
}

TEST(CurlKubeClientTest, ThrottlingHonoursRetryAfterThenGivesUp) {
  TestApiServer api;
  std::atomic<int> calls{0};
  api.Get("/api/v1/namespaces/x", [&](const httplib::Request&, httplib::Response& res) {
    if (calls++ < 2) {
      res.status = 429;
      res.set_header("Retry-After", "1");
      res.set_content(StatusBody(429, "TooManyRequests", "slow down"), "application/json");
      return;
    }
    res.set_content(R"({"kind":"Namespace","metadata":{"name":"x"}})", "application/json");
  });
  api.Get("/api/v1/namespaces/busy", [](const httplib::Request&, httplib::Response& res) {
    res.status = 503;
    res.set_header("Retry-After", "1");
    res.set_content(StatusBody(503, "ServiceUnavailable", "busy"), "application/json");
  });
  api.Start();
  auto kube = NewClient({.server = api.Url()}, {.max_throttle_retries = 2});
  ASSERT_OK(kube->Discover().status());
  absl::Time start = absl::Now();
  ASSERT_OK(kube->Get({"v1", "Namespace", "", "x"}).status());
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(1900));
  EXPECT_EQ(calls.load(), 3);
  EXPECT_EQ(kube->GetStats().throttle_retries, 2);
  absl::StatusOr<Json> busy = kube->Get({"v1", "Namespace", "", "busy"});
  EXPECT_THAT(busy, StatusIs(absl::StatusCode::kUnavailable, HasSubstr("busy")));
  EXPECT_EQ(GetKubeError(busy.status())->retry_after_seconds, 1);
  EXPECT_EQ(api.SeenMatching("/api/v1/namespaces/busy").size(), 3u);  // 1 + 2 retries
}

TEST(CurlKubeClientTest, TransportErrors) {
  int dead_port;
  {
    TestApiServer dead;
    dead.Start();
    dead_port = dead.port();
  }
  auto refused = NewClient({.server = absl::StrCat("http://127.0.0.1:", dead_port)});
  EXPECT_THAT(refused->Discover(),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("discover /api")));

  TestApiServer api;
  api.Get("/api/v1/namespaces/slow", [&](const httplib::Request&, httplib::Response& res) {
    api.Hold(absl::Seconds(10));
    res.set_content("{}", "application/json");
  });
  api.Start();
  auto kube = NewClient({.server = api.Url()}, {.request_timeout = absl::Milliseconds(300)});
  ASSERT_OK(kube->Discover().status());
  absl::Time start = absl::Now();
  EXPECT_THAT(kube->Get({"v1", "Namespace", "", "slow"}),
              StatusIs(absl::StatusCode::kDeadlineExceeded));
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  api.Release();
  EXPECT_THAT(CurlKubeClient::New({.server = "ftp://x"}),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(CurlKubeClientTest, ReusesConnectionsAndIsThreadSafe) {
  TestApiServer api;
  api.Get("/api/v1/namespaces/x", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(R"({"kind":"Namespace","metadata":{"name":"x"}})", "application/json");
  });
  api.Start();
  auto kube = NewClient({.server = api.Url()});
  ASSERT_OK(kube->Discover().status());
  absl::Time start = absl::Now();
  for (int i = 0; i < 200; ++i) ASSERT_OK(kube->Get({"v1", "Namespace", "", "x"}).status());
  absl::Duration per_get = (absl::Now() - start) / 200;
  std::printf("sequential GET over one keep-alive connection: %s per request\n",
              absl::FormatDuration(per_get).c_str());
  RecordProperty("sequential_get_us", static_cast<int>(absl::ToInt64Microseconds(per_get)));
  EXPECT_EQ(kube->GetStats().new_connections, 1);  // discovery and 200 GETs on one connection
  EXPECT_EQ(kube->GetStats().http2_responses, 0);  // plain http stays on HTTP/1.1

  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 25; ++i) ok += kube->Get({"v1", "Namespace", "", "x"}).ok() ? 1 : 0;
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(ok.load(), 200);
  EXPECT_LE(kube->GetStats().new_connections, 9);  // at most one per concurrent caller
}

TEST(CurlKubeClientTest, ClientSideRateLimit) {
  TestApiServer api;
  api.Get("/api/v1/namespaces/x", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(R"({"kind":"Namespace","metadata":{"name":"x"}})", "application/json");
  });
  api.Start();
  auto kube = NewClient({.server = api.Url()}, {.qps = 20, .burst = 1});
  ASSERT_OK(kube->Discover().status());  // 2 requests: the bucket is now in debt
  absl::Time start = absl::Now();
  for (int i = 0; i < 10; ++i) ASSERT_OK(kube->Get({"v1", "Namespace", "", "x"}).status());
  // 10 more requests at 20 QPS take at least ~0.5 s.
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(450));
}

// Watch stream: a sequence of newline-delimited events written as HTTP chunks.
void ServeWatch(TestApiServer& api, const std::string& path, std::vector<std::string> events,
                bool hold_open) {
  api.Get(path, [&api, events, hold_open](const httplib::Request&, httplib::Response& res) {
    auto next = std::make_shared<size_t>(0);
    res.set_chunked_content_provider(
        "application/json", [&api, events, hold_open, next](size_t, httplib::DataSink& sink) {
          if (*next < events.size()) {
            std::string line = events[(*next)++] + "\n";
            return sink.write(line.data(), line.size());
          }
          if (!hold_open || api.stopping() || !sink.is_writable()) {
            sink.done();
            return true;
          }
          api.Hold(absl::Milliseconds(50));
          return true;
        });
  });
}

std::string Event(const std::string& type, const std::string& name, const std::string& rv) {
  return Json{{"type", type},
              {"object",
               {{"kind", "ConfigMap"},
                {"apiVersion", "v1"},
                {"metadata", {{"name", name}, {"resourceVersion", rv}}}}}}
      .dump();
}

TEST(CurlKubeClientTest, WatchStreamsEventsBookmarksAndReportsGone) {
  TestApiServer api;
  ServeWatch(
      api, "/api/v1/namespaces/gb/configmaps",
      {Event("ADDED", "a", "11"), Event("MODIFIED", "a", "12"),
       R"({"type":"BOOKMARK","object":{"kind":"ConfigMap","apiVersion":"v1","metadata":{"resourceVersion":"15"}}})",
       Event("DELETED", "a", "16"),
       R"json({"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","status":"Failure","message":"too old resource version: 10 (16)","reason":"Expired","code":410}})json"},
      /*hold_open=*/false);
  api.Start();
  auto kube = NewClient({.server = api.Url()});
  std::vector<std::pair<WatchEvent::Type, std::string>> got;
  absl::StatusOr<std::string> rv = kube->Watch(
      {.api_version = "v1",
       .kind = "ConfigMap",
       .namespace_ = "gb",
       .label_selector = "app=web",
       .resource_version = "10"},
      [&](const WatchEvent& e) {
        got.emplace_back(e.type, e.object["metadata"]["resourceVersion"].get<std::string>());
        EXPECT_EQ(e.object["kind"], "ConfigMap");
        return true;
      });
  EXPECT_THAT(rv, StatusIs(absl::StatusCode::kOutOfRange, HasSubstr("too old resource version")));
  EXPECT_EQ(GetKubeError(rv.status())->reason, "Expired");
  using T = WatchEvent::Type;
  EXPECT_THAT(got,
              ElementsAre(std::make_pair(T::kAdded, "11"), std::make_pair(T::kModified, "12"),
                          std::make_pair(T::kBookmark, "15"), std::make_pair(T::kDeleted, "16")));
  Seen seen = api.SeenMatching("/api/v1/namespaces/gb/configmaps").at(0);
  EXPECT_EQ(seen.params.find("watch")->second, "true");
  EXPECT_EQ(seen.params.find("resourceVersion")->second, "10");
  EXPECT_EQ(seen.params.find("allowWatchBookmarks")->second, "true");
  EXPECT_EQ(seen.params.find("labelSelector")->second, "app=web");
}

TEST(CurlKubeClientTest, WatchEndsNormallyWithLastVersionAndStopsOnCallback) {
  TestApiServer api;
  ServeWatch(api, "/api/v1/configmaps", {Event("ADDED", "a", "21"), Event("ADDED", "b", "22")},
             false);
  ServeWatch(api, "/api/v1/namespaces/open/configmaps",
             {Event("ADDED", "a", "31"), Event("ADDED", "b", "32"), Event("ADDED", "c", "33")},
             true);
  api.Start();
  auto kube = NewClient({.server = api.Url()});
  int n = 0;
  ASSERT_OK_AND_ASSIGN(std::string rv, kube->Watch({.api_version = "v1", .kind = "ConfigMap"},
                                                   [&](const WatchEvent&) { return ++n > 0; }));
  EXPECT_EQ(rv, "22");
  EXPECT_EQ(n, 2);
  // The callback ends a watch that the server would keep open.
  n = 0;
  ASSERT_OK_AND_ASSIGN(rv,
                       kube->Watch({.api_version = "v1", .kind = "ConfigMap", .namespace_ = "open"},
                                   [&](const WatchEvent&) { return ++n < 2; }));
  EXPECT_EQ(rv, "32");
  EXPECT_EQ(n, 2);
}

TEST(CurlKubeClientTest, WatchStopTokenAndStallTimeout) {
  TestApiServer api;
  ServeWatch(api, "/api/v1/namespaces/idle/configmaps", {Event("ADDED", "a", "41")}, true);
  api.Start();
  auto kube = NewClient({.server = api.Url()}, {.watch_stall_timeout = absl::Milliseconds(700)});
  // Stall: one event, then silence.
  absl::Time start = absl::Now();
  EXPECT_THAT(kube->Watch({.api_version = "v1", .kind = "ConfigMap", .namespace_ = "idle"},
                          [](const WatchEvent&) { return true; }),
              StatusIs(absl::StatusCode::kDeadlineExceeded, HasSubstr("no data")));
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(600));

  // Stop from another thread once the first event arrived.
  auto patient = NewClient({.server = api.Url()});
  std::stop_source stop;
  std::atomic<bool> got_event{false};
  std::thread stopper([&] {
    absl::Time deadline = absl::Now() + absl::Seconds(20);
    while (!got_event && absl::Now() < deadline) std::this_thread::yield();
    stop.request_stop();
  });
  start = absl::Now();
  absl::StatusOr<std::string> rv = patient->Watch(
      {.api_version = "v1", .kind = "ConfigMap", .namespace_ = "idle", .stop = stop.get_token()},
      [&](const WatchEvent&) {
        got_event = true;
        return true;
      });
  stopper.join();
  ASSERT_OK(rv.status());
  EXPECT_EQ(*rv, "41");
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
}

TEST(CurlKubeClientTest, UnauthorizedReRunsExecPluginOnce) {
  TempDir dir;
  WriteFile(dir.Join("count"), "");
  WriteFile(dir.Join("plugin.sh"),
            "#!/bin/sh\necho run >> " + dir.Join("count") + "\nn=$(wc -l < " + dir.Join("count") +
                " | tr -d ' ')\nprintf '{\"apiVersion\":\"client.authentication.k8s.io/v1beta1\","
                "\"kind\":\"ExecCredential\",\"status\":{\"token\":\"tok-%s\"}}' \"$n\"\n",
            0755);
  TestApiServer api;
  api.Get("/api/v1/namespaces/x", [](const httplib::Request& req, httplib::Response& res) {
    if (req.get_header_value("Authorization") != "Bearer tok-2") {
      res.status = 401;
      res.set_content(StatusBody(401, "Unauthorized", "Unauthorized"), "application/json");
      return;
    }
    res.set_content(R"({"kind":"Namespace","metadata":{"name":"x"}})", "application/json");
  });
  api.Start();
  auto kube = NewClient({.server = api.Url(),
                         .exec = ExecConfig{.api_version = "client.authentication.k8s.io/v1beta1",
                                            .command = dir.Join("plugin.sh")}});
  ASSERT_OK(kube->Discover().status());  // discovery does not check tokens here
  ASSERT_OK(kube->Get({"v1", "Namespace", "", "x"}).status());
  EXPECT_EQ(kube->ExecRunsForTest(), 2);
  EXPECT_EQ(kube->GetStats().auth_retries, 1);
  ASSERT_OK(kube->Get({"v1", "Namespace", "", "x"}).status());  // cached tok-2
  EXPECT_EQ(kube->ExecRunsForTest(), 2);

  // A static token is not refreshable: 401 comes straight back.
  auto fixed = NewClient({.server = api.Url(), .bearer_token = "wrong"});
  EXPECT_THAT(fixed->Get({"v1", "Namespace", "", "x"}),
              StatusIs(absl::StatusCode::kUnauthenticated));
  EXPECT_EQ(fixed->GetStats().auth_retries, 0);
}

// TLS: the server certificate is signed by a CA generated here.
class TlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pki_ = GenerateTestPki({"kube.test"});
    WriteFile(dir_.Join("server.crt"), pki_.server.cert_pem);
    WriteFile(dir_.Join("server.key"), pki_.server.key_pem);
    WriteFile(dir_.Join("ca.crt"), pki_.ca_cert_pem);
  }

  std::unique_ptr<TestApiServer> StartServer(bool require_client_cert) {
    auto ssl = std::make_unique<httplib::SSLServer>(
        dir_.Join("server.crt").c_str(), dir_.Join("server.key").c_str(),
        require_client_cert ? dir_.Join("ca.crt").c_str() : nullptr);
    EXPECT_TRUE(ssl->is_valid());
    auto api = std::make_unique<TestApiServer>(std::move(ssl));
    api->Get("/api/v1/namespaces/x", [](const httplib::Request& req, httplib::Response& res) {
      std::string who = "anonymous";
      if (req.ssl != nullptr) {
        if (X509* peer = SSL_get1_peer_certificate(req.ssl)) {
          char cn[256] = {0};
          X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName, cn, sizeof(cn));
          who = cn;
          X509_free(peer);
        }
      }
      res.set_content(Json{{"kind", "Namespace"},
                           {"metadata", {{"name", "x"}}},
                           {"who", who},
                           {"auth", req.get_header_value("Authorization")}}
                          .dump(),
                      "application/json");
    });
    api->Start();
    return api;
  }

  TempDir dir_;
  TestPki pki_;
};

TEST_F(TlsTest, VerifiesServerWithCaAndSendsBearerToken) {
  auto api = StartServer(/*require_client_cert=*/false);
  auto kube = NewClient(
      {.server = api->Url("https"), .ca_data = pki_.ca_cert_pem, .bearer_token = "tls-token"});
  ASSERT_OK_AND_ASSIGN(Json ns, kube->Get({"v1", "Namespace", "", "x"}));
  EXPECT_EQ(ns["auth"], "Bearer tls-token");
  EXPECT_EQ(ns["who"], "anonymous");

  // Wrong CA: verification fails, not retryable.
  TestPki other = GenerateTestPki();
  auto untrusted = NewClient({.server = api->Url("https"), .ca_data = other.ca_cert_pem});
  EXPECT_THAT(untrusted->Discover(), StatusIs(absl::StatusCode::kFailedPrecondition));
  // ... unless verification is switched off.
  auto insecure = NewClient({.server = api->Url("https"), .insecure_skip_tls_verify = true});
  EXPECT_OK(insecure->Get({"v1", "Namespace", "", "x"}).status());
}

TEST_F(TlsTest, TlsServerNameOverridesTheVerifiedName) {
  auto api = StartServer(/*require_client_cert=*/false);
  // "127.0.0.2" is not in the certificate; tls-server-name makes verification use kube.test.
  std::string server = absl::StrCat("https://localhost:", api->port());
  auto wrong = NewClient({.server = absl::StrCat("https://127.0.0.1:", api->port()),
                          .tls_server_name = "other.test",
                          .ca_data = pki_.ca_cert_pem});
  EXPECT_THAT(wrong->Discover(), StatusIs(absl::StatusCode::kFailedPrecondition));
  auto right = NewClient({.server = absl::StrCat("https://127.0.0.1:", api->port()),
                          .tls_server_name = "kube.test",
                          .ca_data = pki_.ca_cert_pem});
  EXPECT_OK(right->Get({"v1", "Namespace", "", "x"}).status());
}

TEST_F(TlsTest, ClientCertificateAuthentication) {
  auto api = StartServer(/*require_client_cert=*/true);
  auto kube = NewClient({.server = api->Url("https"),
                         .ca_data = pki_.ca_cert_pem,
                         .client_cert_data = pki_.client.cert_pem,
                         .client_key_data = pki_.client.key_pem});
  ASSERT_OK_AND_ASSIGN(Json ns, kube->Get({"v1", "Namespace", "", "x"}));
  EXPECT_EQ(ns["who"], "driftless-test");
  EXPECT_EQ(ns["auth"], "");
  for (int i = 0; i < 5; ++i) ASSERT_OK(kube->Get({"v1", "Namespace", "", "x"}).status());
  EXPECT_EQ(kube->GetStats().new_connections, 1);

  auto no_cert = NewClient({.server = api->Url("https"), .ca_data = pki_.ca_cert_pem});
  absl::Status s = no_cert->Discover().status();
  EXPECT_FALSE(s.ok());
  EXPECT_TRUE(absl::IsUnavailable(s) || absl::IsFailedPrecondition(s)) << s;
}

}  // namespace
}  // namespace driftless::kube
