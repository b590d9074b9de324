// ApplicationApi against a real nats-server (streams, consumers and buckets provisioned as in
// production), and the gRPC transport in front of it.
#include "services/api/application_api.h"

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "common/bus/nats_connection.h"
#include "common/bus/nats_event_bus.h"
#include "common/bus/nats_kv_store.h"
#include "common/bus/testing/nats_server.h"
#include "common/manifest/manifest.h"
#include "common/testing/status_matchers.h"
#include "driftless/v1/api.grpc.pb.h"
#include "services/api/grpc_server.h"
#include "services/api/nats_event_watcher.h"
#include "services/common/events.h"
#include "services/common/state.h"
#include "services/common/topology.h"

namespace driftless::api {
namespace {

using ::driftless::testing::StatusIs;
using ::testing::HasSubstr;

constexpr char kGuestbook[] = R"(apiVersion: driftless.dev/v1alpha1
kind: Application
metadata:
  name: guestbook
spec:
  project: default
  source:
    repoURL: file:///srv/repo
    ref: {branch: main}
    path: PATH
  destination:
    cluster: in-cluster
    namespace: guestbook
)";

std::string Guestbook(const std::string& path = "guestbook", const std::string& name = "guestbook",
                      const std::string& project = "default") {
  std::string text = kGuestbook;
  text.replace(text.find("PATH"), 4, path);
  text.replace(text.find("name: guestbook"), 15, "name: " + name);
  text.replace(text.find("project: default"), 16, "project: " + project);
  return text;
}

bool WaitFor(const std::function<bool()>& pred, absl::Duration timeout = absl::Seconds(20)) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!pred()) {
    if (absl::Now() >= deadline) return false;
    absl::SleepFor(absl::Milliseconds(10));
  }
  return true;
}

class ApplicationApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(server_, bus::testing::NatsServerProcess::Start(tmp_.path() + "/js"));
    ASSERT_OK_AND_ASSIGN(conn_, bus::NatsConnection::Connect(server_->url(), "api-test"));
    bus_ = std::make_unique<bus::NatsEventBus>(conn_);
    kv_ = std::make_unique<bus::NatsKvStore>(conn_);
    ASSERT_OK(service::Provision(*bus_, *kv_));
    watcher_ = std::make_unique<NatsEventWatcher>(conn_);
    api_ = std::make_unique<ApplicationApi>(bus_.get(), kv_.get(), "api/test", watcher_.get());
  }

  absl::StatusOr<v1::ApplyResponse> Apply(const std::string& yaml, bool dry_run = false) {
    v1::ApplyRequest request;
    request.set_yaml(yaml);
    request.set_dry_run(dry_run);
    return api_->Apply(request);
  }

  absl::StatusOr<v1::Application> Get(const std::string& name) {
    v1::GetApplicationRequest request;
    request.set_name(name);
    return api_->Get(request);
  }

  uint64_t Pending(const char* stage) {
    auto state = bus_->GetConsumerState(service::kWorkStream, stage);
    return state.ok() ? state->num_pending + state->num_ack_pending : 0;
  }

  // Every event stored on DRIFTLESS_EVENTS so far, read back through the watcher.
  std::vector<v1::Event> StoredEvents() {
    std::vector<v1::Event> events;
    absl::StatusOr<bus::StreamState> state = bus_->GetStreamState(service::kEventsStream);
    EXPECT_OK(state.status());
    if (!state.ok() || state->messages == 0) return events;
    absl::Time deadline = absl::Now() + absl::Seconds(10);
    absl::Status s = watcher_->Watch(
        /*include_history=*/true,
        [&](const v1::Event& e) {
          events.push_back(e);
          return events.size() < state->messages;
        },
        [&] { return absl::Now() > deadline; });
    EXPECT_OK(s);
    return events;
  }

  // Declaration order is teardown order reversed.
  bus::testing::TempDir tmp_;
  std::unique_ptr<bus::testing::NatsServerProcess> server_;
  std::shared_ptr<bus::NatsConnection> conn_;
  std::unique_ptr<bus::NatsEventBus> bus_;
  std::unique_ptr<bus::NatsKvStore> kv_;
  std::unique_ptr<NatsEventWatcher> watcher_;
  std::unique_ptr<ApplicationApi> api_;
};

TEST_F(ApplicationApiTest, ApplyCreatesThenUnchangedThenConfiguredAndAnnouncesChanges) {
  ASSERT_OK_AND_ASSIGN(auto first, Apply(Guestbook()));
  ASSERT_EQ(first.results_size(), 1);
  EXPECT_EQ(first.results(0).kind(), "Application");
  EXPECT_EQ(first.results(0).name(), "guestbook");
  EXPECT_EQ(first.results(0).action(), "created");

  ASSERT_OK_AND_ASSIGN(auto second, Apply(Guestbook()));
  EXPECT_EQ(second.results(0).action(), "unchanged");
  ASSERT_OK_AND_ASSIGN(auto app1, Get("guestbook"));
  EXPECT_EQ(app1.resource().generation(), 1);

  ASSERT_OK_AND_ASSIGN(auto third, Apply(Guestbook("other")));
  EXPECT_EQ(third.results(0).action(), "configured");
  ASSERT_OK_AND_ASSIGN(auto app2, Get("guestbook"));
  EXPECT_EQ(app2.resource().generation(), 2);
  EXPECT_THAT(app2.resource().json(), HasSubstr("\"path\":\"other\""));

  // Two broadcasts (created, updated); the unchanged apply announced nothing.
  std::vector<v1::Event> events = StoredEvents();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].type(), "app.changed");
  EXPECT_EQ(events[0].application(), "guestbook");
  EXPECT_EQ(events[0].app_changed().reason(), v1::AppChanged::REASON_CREATED);
  EXPECT_EQ(events[0].app_changed().generation(), 1);
  EXPECT_EQ(events[1].app_changed().reason(), v1::AppChanged::REASON_UPDATED);
  EXPECT_EQ(events[1].app_changed().generation(), 2);
  EXPECT_NE(events[0].app_changed().spec_digest(), events[1].app_changed().spec_digest());
  EXPECT_FALSE(events[0].app_changed().spec_digest().empty());
  // Broadcast only: nothing queued for any stage.
  EXPECT_EQ(Pending(service::kStagePlan), 0u);
  EXPECT_EQ(Pending(service::kStagePoll), 0u);
}

TEST_F(ApplicationApiTest, DryRunStoresNothingButReportsTheAction) {
  ASSERT_OK_AND_ASSIGN(auto created, Apply(Guestbook(), /*dry_run=*/true));
  EXPECT_EQ(created.results(0).action(), "created");
  EXPECT_THAT(Get("guestbook").status(), StatusIs(absl::StatusCode::kNotFound));
  ASSERT_OK(Apply(Guestbook()).status());
  ASSERT_OK_AND_ASSIGN(auto same, Apply(Guestbook(), /*dry_run=*/true));
  EXPECT_EQ(same.results(0).action(), "unchanged");
  ASSERT_OK_AND_ASSIGN(auto changed, Apply(Guestbook("x"), /*dry_run=*/true));
  EXPECT_EQ(changed.results(0).action(), "configured");
  ASSERT_OK_AND_ASSIGN(auto app, Get("guestbook"));
  EXPECT_EQ(app.resource().generation(), 1);
}

TEST_F(ApplicationApiTest, UnknownFieldIsRejectedWithItsPathAndNothingIsStored) {
  std::string bad = Guestbook() + "---\n" + Guestbook("p", "second");
  bad.replace(bad.rfind("    path: p"), 11, "    pathh: p");
  absl::StatusOr<v1::ApplyResponse> r = Apply(bad);
  EXPECT_THAT(r.status(), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("spec.source.pathh"));
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("second"));
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("line 15"));
  // All or nothing: the valid first document was not stored either.
  EXPECT_THAT(Get("guestbook").status(), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(Apply("").status(), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(ApplicationApiTest, GetAndListWithStatus) {
  EXPECT_THAT(Get("nope").status(),
              StatusIs(absl::StatusCode::kNotFound, "application \"nope\" not found"));
  ASSERT_OK(Apply(Guestbook("a", "web-b") + "---\n" + Guestbook("a", "web-a") + "---\n" +
                  Guestbook("a", "db", "data"))
                .status());
  service::StatusStore statuses(kv_.get());
  ASSERT_OK(statuses
                .Update("web-a",
                        [](v1::AppStatus& s) {
                          s.set_sync(v1::SYNC_STATUS_CODE_SYNCED);
                          s.set_last_applied_revision("abc");
                          return true;
                        })
                .status());
  ASSERT_OK(service::SourceStore(kv_.get()).Put("web-b", {.revision = "fff"}));
  ASSERT_OK_AND_ASSIGN(auto b, Get("web-b"));
  EXPECT_EQ(b.status().last_attempted_revision(), "fff");
  EXPECT_EQ(b.status().last_applied_revision(), "");
  ASSERT_OK_AND_ASSIGN(auto app, Get("web-a"));
  EXPECT_EQ(app.status().last_attempted_revision(), "");
  EXPECT_EQ(app.status().sync(), v1::SYNC_STATUS_CODE_SYNCED);
  EXPECT_EQ(app.status().last_applied_revision(), "abc");
  ASSERT_OK_AND_ASSIGN(manifest::Json json, manifest::ParseJson(app.resource().json(), "json"));
  EXPECT_EQ(json["metadata"]["name"], "web-a");

  auto list = [&](const std::string& project, const std::string& pattern) {
    v1::ListApplicationsRequest request;
    request.set_project(project);
    request.set_name_pattern(pattern);
    std::vector<std::string> names;
    absl::StatusOr<v1::ListApplicationsResponse> r = api_->List(request);
    EXPECT_OK(r.status());
    if (r.ok()) {
      for (const auto& a : r->applications()) names.push_back(a.resource().name());
    }
    return names;
  };
  EXPECT_EQ(list("", ""), (std::vector<std::string>{"db", "web-a", "web-b"}));
  EXPECT_EQ(list("", "web-*"), (std::vector<std::string>{"web-a", "web-b"}));
  EXPECT_EQ(list("data", ""), (std::vector<std::string>{"db"}));
  EXPECT_EQ(list("default", "*-b"), (std::vector<std::string>{"web-b"}));
  EXPECT_TRUE(list("none", "").empty());
}

TEST_F(ApplicationApiTest, ListResourcesRedactsCredentials) {
  ASSERT_OK(Apply(R"(apiVersion: driftless.dev/v1alpha1
kind: Repository
metadata: {name: private}
spec:
  url: https://git.example.com/r.git
  auth: {username: bot, password: hunter2}
)")
                .status());
  v1::ListResourcesRequest request;
  request.set_kind("Repository");
  ASSERT_OK_AND_ASSIGN(auto r, api_->ListResources(request));
  ASSERT_EQ(r.resources_size(), 1);
  EXPECT_EQ(r.resources(0).name(), "private");
  EXPECT_THAT(r.resources(0).json(), HasSubstr("<redacted>"));
  EXPECT_THAT(r.resources(0).json(), ::testing::Not(HasSubstr("hunter2")));
  request.set_kind("Nope");
  EXPECT_THAT(api_->ListResources(request).status(), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(ApplicationApiTest, SyncQueuesARequestForTheRepoPoller) {
  v1::SyncApplicationRequest request;
  request.set_name("guestbook");
  EXPECT_THAT(api_->Sync(request).status(), StatusIs(absl::StatusCode::kNotFound));
  ASSERT_OK(Apply(Guestbook()).status());
  request.set_revision("0123456789abcdef0123456789abcdef01234567");
  request.set_prune(true);
  ASSERT_OK_AND_ASSIGN(auto response, api_->Sync(request));
  EXPECT_EQ(response.sync_id().size(), 16u);
  EXPECT_EQ(response.sync_id().find_first_not_of("0123456789abcdef"), std::string::npos);

  std::mutex mu;
  std::vector<v1::Event> received;
  ASSERT_OK_AND_ASSIGN(auto sub, bus_->Consume(service::kWorkStream, service::kStagePoll,
                                               [&](const bus::Message& m) {
                                                 absl::StatusOr<v1::Event> e =
                                                     service::DecodeEvent(m.data);
                                                 EXPECT_OK(e.status());
                                                 std::lock_guard<std::mutex> lock(mu);
                                                 if (e.ok()) received.push_back(*e);
                                                 return bus::Disposition::Ack();
                                               },
                                               {}));
  ASSERT_TRUE(WaitFor([&] {
    std::lock_guard<std::mutex> lock(mu);
    return !received.empty();
  }));
  sub->Stop();
  ASSERT_EQ(received.size(), 1u);
  const v1::Event& e = received[0];
  EXPECT_EQ(e.type(), "sync.requested");
  EXPECT_EQ(e.application(), "guestbook");
  EXPECT_EQ(e.correlation_id(), response.sync_id());
  EXPECT_EQ(e.sync_requested().sync_id(), response.sync_id());
  EXPECT_EQ(e.sync_requested().revision(), request.revision());
  EXPECT_TRUE(e.sync_requested().prune());
  EXPECT_TRUE(e.sync_requested().refresh());
  EXPECT_EQ(e.sync_requested().requested_by(), "user:cli");
  // Two syncs get two ids.
  ASSERT_OK_AND_ASSIGN(auto again, api_->Sync(request));
  EXPECT_NE(again.sync_id(), response.sync_id());
}

TEST_F(ApplicationApiTest, DeleteWithCascadeQueuesPruningForThePlanner) {
  ASSERT_OK(Apply(Guestbook() + "---\n" + Guestbook("a", "kept")).status());
  v1::DeleteApplicationRequest request;
  request.set_name("kept");
  ASSERT_OK(api_->Delete(request));
  EXPECT_THAT(Get("kept").status(), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_EQ(Pending(service::kStagePlan), 0u);  // without cascade the cluster is left alone

  request.set_name("guestbook");
  request.set_cascade(true);
  ASSERT_OK(api_->Delete(request));
  EXPECT_THAT(Get("guestbook").status(), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_EQ(Pending(service::kStagePlan), 1u);
  EXPECT_THAT(api_->Delete(request), StatusIs(absl::StatusCode::kNotFound));

  std::vector<v1::Event> events = StoredEvents();
  ASSERT_EQ(events.size(), 3u);  // created, created, deleted
  EXPECT_EQ(events[2].app_changed().reason(), v1::AppChanged::REASON_DELETED);
  EXPECT_EQ(events[2].application(), "guestbook");
  EXPECT_EQ(events[2].app_changed().generation(), 1);
}

TEST_F(ApplicationApiTest, WatchEventsFiltersByApplicationAndType) {
  ASSERT_OK(Apply(Guestbook() + "---\n" + Guestbook("a", "other")).status());
  v1::SyncApplicationRequest sync;
  sync.set_name("guestbook");
  ASSERT_OK(api_->Sync(sync).status());
  v1::WatchEventsRequest request;
  request.set_application("guestbook");
  request.set_include_history(true);
  std::vector<v1::Event> seen;
  absl::Time deadline = absl::Now() + absl::Seconds(10);
  ASSERT_OK(api_->WatchEvents(
      request,
      [&](const v1::Event& e) {
        seen.push_back(e);
        return seen.size() < 2;
      },
      [&] { return absl::Now() > deadline; }));
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].type(), "app.changed");
  EXPECT_EQ(seen[1].type(), "sync.requested");
  for (const auto& e : seen) EXPECT_EQ(e.application(), "guestbook");

  // Live only, one type: events published after the watch started arrive, stored ones and
  // other applications' do not. The publisher keeps publishing until the watch saw one, so
  // it does not matter when the subscription became active.
  std::string historical_id = seen[1].id();
  request.set_include_history(false);
  request.add_types("sync.requested");
  seen.clear();
  std::atomic<bool> done{false};
  std::thread publisher([&] {
    int round = 0;
    WaitFor([&] {
      EXPECT_OK(Apply(Guestbook("round-" + std::to_string(++round), "other")).status());
      EXPECT_OK(api_->Sync(sync).status());
      return done.load();
    });
  });
  deadline = absl::Now() + absl::Seconds(10);
  ASSERT_OK(api_->WatchEvents(
      request,
      [&](const v1::Event& e) {
        seen.push_back(e);
        return false;
      },
      [&] { return absl::Now() > deadline; }));
  done = true;
  publisher.join();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].type(), "sync.requested");
  EXPECT_EQ(seen[0].application(), "guestbook");
  EXPECT_NE(seen[0].id(), historical_id);
}

TEST_F(ApplicationApiTest, GrpcTransportPassesCodesAndMessagesThrough) {
  ASSERT_OK_AND_ASSIGN(auto server, GrpcServer::Start(api_.get(), "127.0.0.1", 0));
  ASSERT_GT(server->port(), 0);
  auto channel = grpc::CreateChannel(server->address(), grpc::InsecureChannelCredentials());
  auto stub = v1::ApplicationService::NewStub(channel);

  {
    grpc::ClientContext context;
    v1::ApplyRequest request;
    request.set_yaml(Guestbook());
    v1::ApplyResponse response;
    grpc::Status s = stub->Apply(&context, request, &response);
    ASSERT_TRUE(s.ok()) << s.error_message();
    ASSERT_EQ(response.results_size(), 1);
    EXPECT_EQ(response.results(0).action(), "created");
  }
  {
    grpc::ClientContext context;
    v1::ApplyRequest request;
    request.set_yaml(Guestbook() + "  bogus: 1\n");
    v1::ApplyResponse response;
    grpc::Status s = stub->Apply(&context, request, &response);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(s.error_message(), HasSubstr("spec.bogus"));
  }
  {
    grpc::ClientContext context;
    v1::GetApplicationRequest request;
    request.set_name("missing");
    v1::Application response;
    grpc::Status s = stub->Get(&context, request, &response);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
    EXPECT_EQ(s.error_message(), "application \"missing\" not found");
  }
  {
    // A stream is cancelled by the server's shutdown instead of blocking it.
    grpc::ClientContext context;
    v1::WatchEventsRequest request;
    request.set_include_history(true);
    auto reader = stub->WatchEvents(&context, request);
    v1::Event event;
    ASSERT_TRUE(reader->Read(&event));
    EXPECT_EQ(event.type(), "app.changed");
    absl::Time start = absl::Now();
    server->Shutdown();
    EXPECT_LT(absl::Now() - start, absl::Seconds(5));
    while (reader->Read(&event)) {
    }
    reader->Finish();
  }
}

TEST_F(ApplicationApiTest, GrpcTokenIsRequiredWhenConfigured) {
  ASSERT_OK_AND_ASSIGN(auto server, GrpcServer::Start(api_.get(), "127.0.0.1", 0, "t0ken"));
  auto stub = v1::ApplicationService::NewStub(
      grpc::CreateChannel(server->address(), grpc::InsecureChannelCredentials()));
  auto list = [&](const std::string& authorization) {
    grpc::ClientContext context;
    if (!authorization.empty()) context.AddMetadata("authorization", authorization);
    v1::ListApplicationsResponse response;
    return stub->List(&context, v1::ListApplicationsRequest(), &response);
  };
  EXPECT_EQ(list("").error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(list("Bearer wrong").error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(list("Bearer t0ken").error_code(), grpc::StatusCode::OK);
}

TEST_F(ApplicationApiTest, NatsDownIsUnavailable) {
  ASSERT_OK(Apply(Guestbook()).status());
  ASSERT_OK(server_->Kill());
  absl::StatusOr<v1::Application> r = Get("guestbook");
  EXPECT_TRUE(absl::IsUnavailable(r.status()) || absl::IsDeadlineExceeded(r.status()))
      << r.status();
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("guestbook"));
}

TEST(SyncIdTest, SixteenHexCharactersAndFresh) {
  std::string a = NewSyncId();
  std::string b = NewSyncId();
  EXPECT_EQ(a.size(), 16u);
  EXPECT_EQ(a.find_first_not_of("0123456789abcdef"), std::string::npos);
  EXPECT_NE(a, b);
}

}  // namespace
}  // namespace driftless::api
