#include "cli/platform/layout.h"

#include <algorithm>
#include <set>

#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace driftless::cli::platform {
namespace {

using ::driftless::testing::StatusIs;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

TEST(ResolveStateDir, FlagThenEnvThenDefault) {
  EXPECT_EQ(ResolveStateDir("/a/b", "/env", "/cwd"), "/a/b");
  EXPECT_EQ(ResolveStateDir("", "/env/dir/", "/cwd"), "/env/dir");
  EXPECT_EQ(ResolveStateDir("", nullptr, "/home/me"), "/home/me/.driftless");
  EXPECT_EQ(ResolveStateDir("", "", "/home/me"), "/home/me/.driftless");
  EXPECT_EQ(ResolveStateDir("./x/../y", nullptr, "/w"), "/w/y");
}

TEST(BinaryCandidates, BinDirThenExeDirThenBuildTreeThenPath) {
  EXPECT_THAT(BinaryCandidates("driftless-renderer", "services/renderer", "/opt/bin", "/b/cli",
                               "/usr/bin:/bin"),
              ElementsAre("/opt/bin/driftless-renderer", "/b/cli/driftless-renderer",
                          "/b/cli/../services/renderer/driftless-renderer",
                          "/usr/bin/driftless-renderer", "/bin/driftless-renderer"));
  EXPECT_THAT(BinaryCandidates("git", "", nullptr, "", "/usr/bin:/bin:/usr/bin"),
              ElementsAre("/usr/bin/git", "/bin/git"));
}

TEST(FindBinary, FirstExecutableCandidate) {
  std::set<std::string> present = {"/b/driftless-api", "/c/driftless-api"};
  auto exists = [&](const std::string& p) { return present.count(p) > 0; };
  ASSERT_OK_AND_ASSIGN(
      std::string found,
      FindBinary("driftless-api", {"/a/driftless-api", "/b/driftless-api", "/c/driftless-api"},
                 exists));
  EXPECT_EQ(found, "/b/driftless-api");
}

TEST(FindBinary, MissingNamesBinaryAndEveryPlace) {
  auto none = [](const std::string&) { return false; };
  absl::StatusOr<std::string> r = FindBinary("driftless-api", {"/a/driftless-api", "/b/x"}, none);
  EXPECT_THAT(r, StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(std::string(r.status().message()),
              ::testing::AllOf(HasSubstr("driftless-api"), HasSubstr("/a/driftless-api"),
                               HasSubstr("/b/x"), HasSubstr("DRIFTLESS_BIN_DIR")));
}

TEST(ServiceArgs, EveryServiceGetsTheCommonFlags) {
  Layout l = Layout::For("/s");
  for (const std::string& svc : ServiceNames()) {
    std::vector<std::string> args =
        ServiceArgs("/bin/driftless-" + svc, svc, l, {.nats_url = "nats://127.0.0.1:5"});
    std::vector<std::string> head(args.begin(), args.begin() + 11);
    EXPECT_THAT(head, ElementsAre("/bin/driftless-" + svc, "--nats-url", "nats://127.0.0.1:5",
                                  "--http-port", "0", "--ready-file", "/s/run/" + svc + ".ready",
                                  "--state-dir", "/s/" + svc, "--log-format", "json"));
  }
}

TEST(ServiceArgs, ServiceSpecificFlags) {
  Layout l = Layout::For("/s");
  ServiceArgsInput in{.nats_url = "nats://x:1",
                      .kubeconfig = "/s/kubeconfig",
                      .webhook_urls = {"http://a/1", "http://b/2"},
                      .http_port = 81,
                      .grpc_port = 91,
                      .helm = "/t/helm",
                      .kubectl = "/t/kubectl"};
  EXPECT_THAT(ServiceArgs("p", "planner", l, in), Contains("/s/kubeconfig"));
  EXPECT_THAT(ServiceArgs("p", "applier", l, in), Contains("--kubeconfig"));
  std::vector<std::string> renderer = ServiceArgs("p", "renderer", l, in);
  EXPECT_THAT(renderer, Not(Contains("--kubeconfig")));
  EXPECT_THAT(std::vector<std::string>(renderer.end() - 4, renderer.end()),
              ElementsAre("--helm", "/t/helm", "--kubectl", "/t/kubectl"));
  EXPECT_THAT(ServiceArgs("p", "planner", l, in), Not(Contains("--helm")));
  std::vector<std::string> api = ServiceArgs("p", "api", l, in);
  EXPECT_THAT(std::vector<std::string>(api.end() - 2, api.end()), ElementsAre("--grpc-port", "91"));
  EXPECT_THAT(api, Contains("81"));
  std::vector<std::string> notifier = ServiceArgs("p", "notifier", l, in);
  EXPECT_THAT(std::vector<std::string>(notifier.end() - 4, notifier.end()),
              ElementsAre("--webhook-url", "http://a/1", "--webhook-url", "http://b/2"));
}

TEST(ServiceArgs, ReplicasOnlyWhenNotOne) {
  Layout l = Layout::For("/s");
  EXPECT_THAT(ServiceArgs("p", "api", l, {.nats_url = "nats://a:1,nats://b:2"}),
              Not(Contains("--nats-replicas")));
  std::vector<std::string> args =
      ServiceArgs("p", "renderer", l, {.nats_url = "nats://a:1,nats://b:2", .nats_replicas = 3});
  auto it = std::find(args.begin(), args.end(), "--nats-replicas");
  ASSERT_NE(it, args.end());
  EXPECT_EQ(*(it + 1), "3");
  EXPECT_THAT(args, Contains("nats://a:1,nats://b:2"));
}

TEST(NatsAndEmulatorArgs, AsDocumented) {
  Layout l = Layout::For("/s");
  EXPECT_THAT(NatsArgs("/usr/sbin/nats-server", l, {.nats_port = 4222, .nats_monitor_port = 8222}),
              ElementsAre("/usr/sbin/nats-server", "-js", "-sd", "/s/nats", "-a", "127.0.0.1", "-p",
                          "4222", "-m", "8222"));
  EXPECT_THAT(EmulatorArgs("e", l, 0),
              ElementsAre("e", "--port", "0", "--write-kubeconfig", "/s/kubeconfig", "--ready-file",
                          "/s/run/emulator.ready", "--state-file", "/s/emulator-state.json"));
}

TEST(PortOf, UrlsAndHostPorts) {
  EXPECT_EQ(PortOf("http://127.0.0.1:8080"), 8080);
  EXPECT_EQ(PortOf("http://127.0.0.1:8080/hooks"), 8080);
  EXPECT_EQ(PortOf("127.0.0.1:9090"), 9090);
  EXPECT_EQ(PortOf("http://localhost"), 0);
  EXPECT_EQ(PortOf(""), 0);
  EXPECT_EQ(PortOf("http://h:99999"), 0);
}

TEST(ParseServiceReadyFile, ReadsAddresses) {
  ASSERT_OK_AND_ASSIGN(
      ReadyInfo info,
      ParseServiceReadyFile(R"({"service":"api","pid":3,"http":"http://127.0.0.1:1",)"
                            R"("grpc":"127.0.0.1:2","webhooks":"http://127.0.0.1:1/hooks"})"));
  EXPECT_EQ(info.http, "http://127.0.0.1:1");
  EXPECT_EQ(info.grpc, "127.0.0.1:2");
  EXPECT_EQ(info.webhooks, "http://127.0.0.1:1/hooks");
  EXPECT_THAT(ParseServiceReadyFile("{\"pid\": 1}"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseServiceReadyFile("{\"http\": "), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(PlatformRecord, RoundTrips) {
  PlatformRecord r{
      .state_dir = "/s",
      .supervisor = {.pid = 10, .start_time = 99},
      .children = {{"api", {.pid = 11, .start_time = 100}}, {"nats-server", {.pid = 12}}}};
  ASSERT_OK_AND_ASSIGN(PlatformRecord back, DecodePlatformRecord(EncodePlatformRecord(r)));
  EXPECT_EQ(back.state_dir, "/s");
  EXPECT_EQ(back.supervisor.pid, 10);
  EXPECT_EQ(back.supervisor.start_time, 99u);
  ASSERT_EQ(back.children.size(), 2u);
  EXPECT_EQ(back.children["api"].pid, 11);
  EXPECT_EQ(back.children["api"].start_time, 100u);
  EXPECT_THAT(DecodePlatformRecord("{}"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(DecodePlatformRecord("not json"), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(EndpointsJson, HasTheDocumentedShape) {
  Endpoints e{.state_dir = "/s",
              .nats_url = "nats://127.0.0.1:4",
              .kubeconfig = "/s/kubeconfig",
              .pids = {{"api", {.pid = 7}}},
              .services = {{"api",
                            {.http = "http://127.0.0.1:5",
                             .grpc = "127.0.0.1:6",
                             .webhooks = "http://127.0.0.1:5/hooks"}},
                           {"renderer", {.http = "http://127.0.0.1:8"}}}};
  nlohmann::json j = EndpointsJson(e, Layout::For("/s"));
  EXPECT_EQ(j["api"], "127.0.0.1:6");
  EXPECT_EQ(j["webhooks"], "http://127.0.0.1:5/hooks");
  EXPECT_EQ(j["nats"], "nats://127.0.0.1:4");
  EXPECT_EQ(j["kubeconfig"], "/s/kubeconfig");
  EXPECT_EQ(j["stateDir"], "/s");
  EXPECT_EQ(j["services"]["api"]["pid"], 7);
  EXPECT_EQ(j["services"]["api"]["health"], "http://127.0.0.1:5/healthz");
  EXPECT_EQ(j["services"]["api"]["ready"], "http://127.0.0.1:5/readyz");
  EXPECT_EQ(j["services"]["renderer"]["metrics"], "http://127.0.0.1:8/metrics");
  EXPECT_EQ(j["services"]["renderer"]["log"], "/s/logs/renderer.log");
}

TEST(WithRepoUrl, ReplacesOnlyTheRepoUrl) {
  std::string app = "# c\nspec:\n  source:\n    repoURL: file:///var/x\n    path: guestbook\n";
  ASSERT_OK_AND_ASSIGN(std::string out, WithRepoUrl(app, "file:///s/example-repo"));
  EXPECT_EQ(out,
            "# c\nspec:\n  source:\n    repoURL: file:///s/example-repo\n    path: guestbook\n");
  EXPECT_THAT(WithRepoUrl("spec: {}\n", "x"), StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace driftless::cli::platform
