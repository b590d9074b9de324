// End to end: a real nats-server, the driftless-api binary and the `driftless` CLI binary,
// each a child process ended by PID.
#include <gtest/gtest.h>
#include <httplib.h>

#include <signal.h>

#include <chrono>
#include <fstream>
#include <string>
#include <vector>

#include "common/bus/event_bus.h"
#include "common/bus/nats_connection.h"
#include "common/bus/nats_event_bus.h"
#include "common/bus/nats_kv_store.h"
#include "common/bus/testing/nats_server.h"
#include "common/manifest/manifest.h"
#include "common/testing/status_matchers.h"
#include "driftless/v1/events.pb.h"
#include "tools/kube-emulator/emulator_process_for_test.h"

namespace driftless::cli {
namespace {

using ::driftless::kube_emulator::testing::ReadFile;
using ::driftless::kube_emulator::testing::Spawn;
using ::driftless::kube_emulator::testing::WaitPid;
using ::testing::HasSubstr;

constexpr char kApp[] = R"(apiVersion: driftless.dev/v1alpha1
kind: Application
metadata:
  name: guestbook
spec:
  source:
    repoURL: file:///srv/repo
    ref: {branch: main}
    path: PATH
  destination:
    cluster: in-cluster
    namespace: guestbook
)";

std::string App(const std::string& path) {
  std::string text = kApp;
  text.replace(text.find("PATH"), 4, path);
  return text;
}

struct Result {
  int code = -1;
  std::string out;
  std::string err;
};

class ApiEndToEndTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = tmp_.path();
    ASSERT_OK_AND_ASSIGN(nats_, bus::testing::NatsServerProcess::Start(dir_ + "/js"));
    api_pid_ = Spawn({std::string(DRIFTLESS_BINARY_DIR) + "/services/api/driftless-api",
                      "--nats-url", nats_->url(), "--ready-file", dir_ + "/api.ready",
                      "--state-dir", dir_ + "/api-state", "--log-format", "text"},
                     dir_ + "/api.out", dir_ + "/api.err");
    ASSERT_GT(api_pid_, 0);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < deadline) {
      manifest::Json ready = manifest::Json::parse(ReadFile(dir_ + "/api.ready"), nullptr, false);
      if (ready.is_object() && ready.contains("grpc")) {
        server_ = ready["grpc"].get<std::string>();
        webhooks_ = ready.value("webhooks", "");
        break;
      }
      int status = 0;
      ASSERT_NE(waitpid(api_pid_, &status, WNOHANG), api_pid_)
          << "driftless-api exited: " << ReadFile(dir_ + "/api.err");
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ASSERT_FALSE(server_.empty()) << "no ready file: " << ReadFile(dir_ + "/api.err");
  }

  void TearDown() override {
    if (api_pid_ > 0) {
      kill(api_pid_, SIGTERM);
      EXPECT_EQ(WaitPid(api_pid_, std::chrono::seconds(20)), 0)
          << "driftless-api did not stop cleanly: " << ReadFile(dir_ + "/api.err");
    }
  }

  // Runs `driftless <args>` (with --server unless `with_server` is false).
  Result Cli(std::vector<std::string> args, bool with_server = true,
             const std::vector<std::string>& env = {}) {
    args.insert(args.begin(), std::string(DRIFTLESS_BINARY_DIR) + "/cli/driftless");
    if (with_server) {
      args.push_back("--server");
      args.push_back(server_);
    }
    std::string out = dir_ + "/cli.out";
    std::string err = dir_ + "/cli.err";
    Result r;
    pid_t pid = Spawn(args, out, err, env);
    if (pid <= 0) return r;
    r.code = WaitPid(pid, std::chrono::seconds(60));
    r.out = ReadFile(out);
    r.err = ReadFile(err);
    return r;
  }

  std::string Write(const std::string& name, const std::string& text) {
    std::string path = dir_ + "/" + name;
    std::ofstream(path) << text;
    return path;
  }

  bus::testing::TempDir tmp_;
  std::string dir_;
  std::unique_ptr<bus::testing::NatsServerProcess> nats_;
  pid_t api_pid_ = -1;
  std::string server_;
  std::string webhooks_;  // "http://127.0.0.1:<port>/hooks"
};

TEST_F(ApiEndToEndTest, ApplyGetWaitSyncDelete) {
  std::string file = Write("app.yaml", App("guestbook"));
  Result created = Cli({"apply", "-f", file});
  ASSERT_EQ(created.code, 0) << created.err;
  EXPECT_EQ(created.out, "application.driftless.dev/guestbook created\n");
  Result unchanged = Cli({"apply", "-f", file});
  EXPECT_EQ(unchanged.out, "application.driftless.dev/guestbook unchanged\n");
  Write("app.yaml", App("other"));
  Result configured = Cli({"apply", "-f", file});
  EXPECT_EQ(configured.out, "application.driftless.dev/guestbook configured\n");

  // Rejected with the field's path and the file's name.
  std::string bad = Write("bad.yaml", App("x") + "  extra: 1\n");
  Result rejected = Cli({"apply", "-f", bad});
  EXPECT_EQ(rejected.code, 1);
  EXPECT_THAT(rejected.err, HasSubstr("error: "));
  EXPECT_THAT(rejected.err, HasSubstr("spec.extra"));
  EXPECT_THAT(rejected.err, HasSubstr("bad.yaml"));

  Result table = Cli({"get", "apps"});
  ASSERT_EQ(table.code, 0) << table.err;
  EXPECT_THAT(table.out, HasSubstr("NAME"));
  EXPECT_THAT(table.out, HasSubstr("guestbook   Unknown"));

  // The server found through the environment instead of --server.
  Result json = Cli({"get", "app", "guestbook", "-o", "json"}, /*with_server=*/false,
                    {"DRIFTLESS_SERVER=" + server_});
  ASSERT_EQ(json.code, 0) << json.err;
  manifest::Json doc = manifest::Json::parse(json.out, nullptr, false);
  ASSERT_TRUE(doc.is_object()) << json.out;
  EXPECT_EQ(doc["kind"], "Application");
  EXPECT_EQ(doc["metadata"]["name"], "guestbook");
  EXPECT_EQ(doc["metadata"]["generation"], 2);
  EXPECT_EQ(doc["spec"]["source"]["path"], "other");
  EXPECT_EQ(doc["status"]["sync"], "Unknown");

  Result human = Cli({"get", "app", "guestbook"});
  ASSERT_EQ(human.code, 0) << human.err;
  EXPECT_THAT(human.out, HasSubstr("file:///srv/repo path other branch main"));

  // Nothing runs the pipeline here, so the application never becomes Synced.
  auto start = std::chrono::steady_clock::now();
  Result wait = Cli({"app", "wait", "guestbook", "--synced", "--timeout", "1s"});
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(wait.code, 1);
  EXPECT_THAT(wait.err, HasSubstr("timed out after 1s"));
  EXPECT_THAT(wait.err, HasSubstr("Sync:"));
  EXPECT_THAT(wait.err, HasSubstr("Unknown"));
  EXPECT_LT(took, std::chrono::seconds(10));
  // An application that never registers: the wait keeps trying, then names the last error.
  Result never = Cli({"app", "wait", "nope", "--timeout", "1s"});
  EXPECT_EQ(never.code, 1);
  EXPECT_THAT(never.err, HasSubstr("last error: application \"nope\" not found"));
  // A plain wait (the application exists) succeeds at once.
  EXPECT_EQ(Cli({"app", "wait", "guestbook", "--timeout", "5s"}).code, 0);

  Result sync = Cli({"app", "sync", "guestbook", "--prune", "--resource", "Deployment.apps/web"});
  ASSERT_EQ(sync.code, 0) << sync.err;
  ASSERT_EQ(sync.out.size(), 17u) << sync.out;  // 16 hex characters and a newline
  std::string sync_id = sync.out.substr(0, 16);
  EXPECT_EQ(Cli({"app", "sync", "guestbook", "--resource", "web"}).code, 1);

  // The stored events, oldest first: two app.changed, then the sync request.
  Result events = Cli({"events", "--app", "guestbook"});
  ASSERT_EQ(events.code, 0) << events.err;
  EXPECT_THAT(events.out, HasSubstr("app.changed  guestbook"));
  EXPECT_THAT(events.out, HasSubstr("sync.requested  guestbook"));
  EXPECT_LT(events.out.find("app.changed"), events.out.find("sync.requested"));
  Result json_events = Cli({"events", "--type", "sync.requested", "-o", "json"});
  ASSERT_EQ(json_events.code, 0) << json_events.err;
  manifest::Json event = manifest::Json::parse(json_events.out, nullptr, false);
  ASSERT_TRUE(event.is_object()) << json_events.out;
  EXPECT_EQ(event["correlationId"], sync_id);
  EXPECT_EQ(event["syncRequested"]["resources"][0]["kind"], "Deployment");
  EXPECT_EQ(event["syncRequested"]["resources"][0]["group"], "apps");
  EXPECT_EQ(event["syncRequested"]["prune"], true);

  Result missing_sync = Cli({"app", "sync", "nope"});
  EXPECT_EQ(missing_sync.code, 1);
  EXPECT_THAT(missing_sync.err, HasSubstr("application \"nope\" not found"));

  Result deleted = Cli({"app", "delete", "guestbook"});
  ASSERT_EQ(deleted.code, 0) << deleted.err;
  Result gone = Cli({"get", "app", "guestbook"});
  EXPECT_EQ(gone.code, 1);
  EXPECT_EQ(gone.err, "error: application \"guestbook\" not found\n");
  Result again = Cli({"app", "delete", "guestbook"});
  EXPECT_EQ(again.code, 1);
  EXPECT_EQ(again.err, "error: application \"guestbook\" not found\n");
  Result ignored = Cli({"app", "delete", "guestbook", "--ignore-not-found"});
  EXPECT_EQ(ignored.code, 0) << ignored.err;
  EXPECT_EQ(ignored.out, "");
}

TEST_F(ApiEndToEndTest, WebhookToARegisteredReceiverIsQueued) {
  std::string file = Write("receiver.yaml", R"(apiVersion: driftless.dev/v1alpha1
kind: Receiver
metadata: {name: push}
spec: {type: generic, secret: hook-token}
)");
  Result applied = Cli({"apply", "-f", file});
  ASSERT_EQ(applied.code, 0) << applied.err;
  EXPECT_EQ(applied.out, "receiver.driftless.dev/push created\n");
  Result receivers = Cli({"get", "receivers"});
  ASSERT_EQ(receivers.code, 0) << receivers.err;
  EXPECT_EQ(receivers.out, "NAME   GENERATION\npush   1\n");

  ASSERT_EQ(webhooks_.rfind("http://", 0), 0u) << webhooks_;
  std::string host_port = webhooks_.substr(7, webhooks_.find('/', 7) - 7);
  httplib::Client http("http://" + host_port);
  std::string body = R"({"repoURL": "file:///srv/repo", "ref": "refs/heads/main", "after": "abc"})";
  auto unauthenticated =
      http.Post("/hooks/push", {{"X-Delivery-Id", "one"}}, body, "application/json");
  ASSERT_TRUE(unauthenticated) << httplib::to_string(unauthenticated.error());
  EXPECT_EQ(unauthenticated->status, 401) << unauthenticated->body;
  const httplib::Headers signed_headers = {{"X-Delivery-Id", "one"},
                                           {"Authorization", "Bearer hook-token"}};
  auto queued = http.Post("/hooks/push", signed_headers, body, "application/json");
  ASSERT_TRUE(queued) << httplib::to_string(queued.error());
  EXPECT_EQ(queued->status, 202) << queued->body;
  auto replay = http.Post("/hooks/push", signed_headers, body, "application/json");
  ASSERT_TRUE(replay);
  EXPECT_EQ(replay->status, 409) << replay->body;
  auto unknown = http.Post("/hooks/other", body, "application/json");
  ASSERT_TRUE(unknown);
  EXPECT_EQ(unknown->status, 404) << unknown->body;

  Result events = Cli({"events", "--type", "webhook.push"});
  EXPECT_THAT(events.out, HasSubstr("webhook.push  -  abc  push to refs/heads/main"));
}

// A second api process with a token: the CLI passes DRIFTLESS_TOKEN.
TEST_F(ApiEndToEndTest, TokenFromTheEnvironment) {
  Write("token", "s3cret\n");
  pid_t pid = Spawn({std::string(DRIFTLESS_BINARY_DIR) + "/services/api/driftless-api",
                     "--nats-url", nats_->url(), "--ready-file", dir_ + "/locked.ready",
                     "--auth-token-file", dir_ + "/token", "--log-format", "text"},
                    dir_ + "/locked.out", dir_ + "/locked.err");
  ASSERT_GT(pid, 0);
  std::string locked;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (locked.empty() && std::chrono::steady_clock::now() < deadline) {
    manifest::Json ready = manifest::Json::parse(ReadFile(dir_ + "/locked.ready"), nullptr, false);
    if (ready.is_object() && ready.contains("grpc")) locked = ready["grpc"].get<std::string>();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_FALSE(locked.empty()) << ReadFile(dir_ + "/locked.err");
  Result refused = Cli({"get", "apps", "--server", locked}, /*with_server=*/false);
  EXPECT_EQ(refused.code, 1);
  EXPECT_THAT(refused.err, HasSubstr("DRIFTLESS_TOKEN"));
  Result allowed =
      Cli({"get", "apps", "--server", locked}, /*with_server=*/false, {"DRIFTLESS_TOKEN=s3cret"});
  EXPECT_EQ(allowed.code, 0) << allowed.err;
  kill(pid, SIGTERM);
  EXPECT_EQ(WaitPid(pid, std::chrono::seconds(20)), 0);
}

// Backbone v2: pages are followed transparently; the output is one table, one list.
TEST_F(ApiEndToEndTest, GetAppsFollowsPagesIntoOneTableAndOneList) {
  std::string docs;
  for (int i = 1; i <= 5; ++i) {
    std::string app = App("p");
    app.replace(app.find("name: guestbook"), 15, "name: app-" + std::to_string(i));
    docs += (i > 1 ? "---\n" : "") + app;
  }
  ASSERT_EQ(Cli({"apply", "-f", Write("apps.yaml", docs)}).code, 0);
  Result table = Cli({"get", "apps", "--limit", "2"});
  ASSERT_EQ(table.code, 0) << table.err;
  EXPECT_EQ(table.out.find("NAME"), 0u);
  EXPECT_EQ(table.out.find("NAME", 1), std::string::npos) << table.out;  // one header
  size_t at = 0;
  for (int i = 1; i <= 5; ++i) {
    size_t found = table.out.find("app-" + std::to_string(i), at);
    ASSERT_NE(found, std::string::npos) << table.out;
    at = found;  // in name order
  }
  Result json = Cli({"get", "apps", "--chunk-size", "2", "-o", "json"});
  ASSERT_EQ(json.code, 0) << json.err;
  manifest::Json list = manifest::Json::parse(json.out, nullptr, false);
  ASSERT_TRUE(list.is_object()) << json.out;
  EXPECT_EQ(list["kind"], "List");
  ASSERT_EQ(list["items"].size(), 5u);
  EXPECT_EQ(list["items"][4]["metadata"]["name"], "app-5");
  Result filtered = Cli({"get", "apps", "--limit", "1", "--project", "default", "--name", "app-*"});
  ASSERT_EQ(filtered.code, 0) << filtered.err;
  EXPECT_THAT(filtered.out, HasSubstr("app-5"));
  EXPECT_NE(Cli({"get", "apps", "--limit", "-1"}).code, 0);
}

TEST_F(ApiEndToEndTest, EventsStartAtASequenceOrATime) {
  ASSERT_EQ(Cli({"apply", "-f", Write("a.yaml", App("a"))}).code, 0);  // events #1: created
  ASSERT_EQ(Cli({"apply", "-f", Write("a.yaml", App("b"))}).code, 0);  // #2: configured
  Result from_two = Cli({"events", "--from-sequence", "2"});
  ASSERT_EQ(from_two.code, 0) << from_two.err;
  EXPECT_THAT(from_two.out, HasSubstr("configured"));
  EXPECT_THAT(from_two.out, ::testing::Not(HasSubstr("created")));
  Result since = Cli({"events", "--since", "1h"});
  ASSERT_EQ(since.code, 0) << since.err;
  EXPECT_THAT(since.out, HasSubstr("created"));
  EXPECT_THAT(since.out, HasSubstr("configured"));
  Result bad = Cli({"events", "--since", "soon"});
  EXPECT_EQ(bad.code, 1);
  EXPECT_THAT(bad.err, HasSubstr("--since"));
  EXPECT_NE(Cli({"events", "--since", "1h", "--from-sequence", "1"}).code, 0);
}

TEST_F(ApiEndToEndTest, DeadLettersListedAndRedrivenFromTheCli) {
  Result empty = Cli({"dlq", "list"});
  ASSERT_EQ(empty.code, 0) << empty.err;
  EXPECT_EQ(empty.err, "No dead letters.\n");

  ASSERT_OK_AND_ASSIGN(auto conn, bus::NatsConnection::Connect(nats_->url(), "e2e"));
  bus::NatsEventBus bus(conn);
  v1::Event plan;
  plan.set_id("plan.ready/guestbook/abc/d/1");
  plan.set_type("plan.ready");
  plan.set_application("guestbook");
  std::string body;
  ASSERT_TRUE(plan.SerializeToString(&body));
  ASSERT_OK(bus.Publish("driftless.dlq.driftless.work.plan", body, "",
                        {{bus::kDlqErrorHeader, "apply failed: boom"},
                         {bus::kDlqSubjectHeader, "driftless.work.plan"},
                         {bus::kDlqDeliveriesHeader, "5"}})
                .status());
  Result table = Cli({"dlq", "list"});
  ASSERT_EQ(table.code, 0) << table.err;
  EXPECT_THAT(table.out, HasSubstr("SEQ"));
  EXPECT_THAT(table.out, HasSubstr("driftless.work.plan   plan.ready   guestbook"));
  EXPECT_THAT(table.out, HasSubstr("apply failed: boom"));
  Result json = Cli({"dlq", "list", "-o", "json"});
  ASSERT_EQ(json.code, 0) << json.err;
  manifest::Json list = manifest::Json::parse(json.out, nullptr, false);
  ASSERT_TRUE(list.is_object()) << json.out;
  ASSERT_EQ(list["items"].size(), 1u);
  EXPECT_EQ(list["items"][0]["sequence"], 1);
  EXPECT_EQ(list["items"][0]["deliveries"], 5);

  Result redriven = Cli({"dlq", "redrive", "1"});
  ASSERT_EQ(redriven.code, 0) << redriven.err;
  EXPECT_THAT(redriven.out, HasSubstr("dead letter #1 redriven to driftless.work.plan"));
  EXPECT_EQ(Cli({"dlq", "list"}).err, "No dead letters.\n");
  Result again = Cli({"dlq", "redrive", "1"});
  EXPECT_EQ(again.code, 1);
  EXPECT_THAT(again.err, HasSubstr("dead letter #1 not found"));
}

// Backbone v2: a NATS failure inside the API reached users as "cannot reach driftless-api".
TEST_F(ApiEndToEndTest, NatsTroubleIsTheApiAnswerNotAnUnreachableServer) {
  ASSERT_OK(nats_->Stop());
  Result r = Cli({"get", "apps"});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, HasSubstr("listing applications"));
  EXPECT_THAT(r.err, ::testing::Not(HasSubstr("cannot reach driftless-api")));
  ASSERT_OK(nats_->StartAgain());
}

TEST_F(ApiEndToEndTest, UnreachableServerIsNamed) {
  ASSERT_OK_AND_ASSIGN(int port, bus::testing::PickFreePort());
  std::string address = "127.0.0.1:" + std::to_string(port);
  Result r = Cli({"get", "apps", "--server", address}, /*with_server=*/false);
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, HasSubstr("cannot reach driftless-api at " + address));
}

TEST_F(ApiEndToEndTest, ServerFromEndpointsFile) {
  Write("endpoints.json", R"({"api": ")" + server_ + R"("})");
  Result r = Cli({"get", "apps"}, /*with_server=*/false, {"DRIFTLESS_STATE_DIR=" + dir_});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.err, "No applications found.\n");
}

// `driftless notifications log` shows the notifier's delivery log (written here as the
// notifier writes it), filtered by application.
TEST_F(ApiEndToEndTest, NotificationsLogShowsTheDeliveryLog) {
  ASSERT_OK_AND_ASSIGN(auto conn, bus::NatsConnection::Connect(nats_->url(), "log-test"));
  bus::NatsKvStore kv(conn);
  Result empty = Cli({"notifications", "log"});
  ASSERT_EQ(empty.code, 0) << empty.err;
  EXPECT_EQ(empty.err, "No deliveries.\n");
  ASSERT_OK(kv.Put("deliveries", "f.0123456789abcdef.0123456789abcdef",
                   R"({"event":"sync.failed/web/1","type":"sync.failed","application":"web",)"
                   R"("destination":"team-chat","status":"failed","attempts":5,)"
                   R"("error":"team-chat: HTTP 503","failedAt":"2026-12-07T10:00:00Z"})")
                .status());
  Result listed = Cli({"notifications", "log"});
  ASSERT_EQ(listed.code, 0) << listed.err;
  EXPECT_THAT(listed.out, HasSubstr("TIME"));
  EXPECT_THAT(listed.out, HasSubstr("team-chat"));
  EXPECT_THAT(listed.out, HasSubstr("failed"));
  EXPECT_THAT(listed.out, HasSubstr("HTTP 503"));
  Result json = Cli({"notifications", "log", "--app", "web", "-o", "json"});
  ASSERT_EQ(json.code, 0) << json.err;
  manifest::Json doc = manifest::Json::parse(json.out);
  ASSERT_EQ(doc["items"].size(), 1u);
  EXPECT_EQ(doc["items"][0]["attempts"], 5);
  Result other = Cli({"notifications", "log", "--app", "other"});
  EXPECT_EQ(other.err, "No deliveries.\n");
  Result bad = Cli({"notifications", "log", "--since", "soon"});
  EXPECT_EQ(bad.code, 1);
  EXPECT_THAT(bad.err, HasSubstr("--since"));
}

}  // namespace
}  // namespace driftless::cli
