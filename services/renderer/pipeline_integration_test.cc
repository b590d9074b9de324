// The first two stages together, in process, against a real nats-server and a real git
// repository: the repo-poller announces a commit and the renderer turns it into app.rendered
// on stage plan. Measures the latencies the end-to-end budget (commit to applied p50 < 500 ms)
// depends on: registration, webhook push and sync request to app.rendered.
#include <cstdio>
#include <fstream>
#include <mutex>

#include "common/bus/blob_store.h"
#include "common/bus/nats_connection.h"
#include "common/bus/nats_event_bus.h"
#include "common/bus/nats_kv_store.h"
#include "common/bus/testing/nats_server.h"
#include "common/git/libgit2_client.h"
#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/common/events.h"
#include "services/common/state.h"
#include "services/common/testing/fixtures.h"
#include "services/common/topology.h"
#include "services/renderer/renderer_service.h"
#include "services/repo-poller/poller_service.h"

namespace driftless::renderer {
namespace {

using manifest::Json;
using service::testing::ConfigMapYaml;
using service::testing::EventCollector;
using service::testing::GitRepo;
using service::testing::WaitFor;

// A working-tree git repository driven by the git CLI.

// Collects decoded events from a durable consumer, acking each.

Json App(const std::string& name, const std::string& url) {
  return {{"apiVersion", "driftless.dev/v1alpha1"},
          {"kind", "Application"},
          {"metadata", {{"name", name}}},
          {"spec",
           {{"source", {{"repoURL", url}, {"ref", {{"branch", "main"}}}, {"path", "apps/web"}}},
            {"destination", {{"cluster", "in-cluster"}, {"namespace", "web"}}}}}};
}

class Consumer {
 public:
  Consumer(bus::EventBus& bus, const char* stage,
           std::function<bus::Disposition(const v1::Event&, const bus::Message&)> handler) {
    auto sub = bus.Consume(service::kWorkStream, stage,
                           [handler](const bus::Message& m) {
                             absl::StatusOr<v1::Event> e = service::DecodeEvent(m.data);
                             if (!e.ok()) return bus::Disposition::Term("undecodable");
                             return handler(*e, m);
                           },
                           {});
    EXPECT_OK(sub.status());
    if (sub.ok()) sub_ = *std::move(sub);
  }
  ~Consumer() {
    if (sub_) sub_->Stop();
  }

 private:
  std::unique_ptr<bus::Subscription> sub_;
};

TEST(PollerRendererPipelineTest, CommitsAndSyncRequestsReachThePlanStageQuickly) {
  bus::testing::TempDir tmp;
  ASSERT_OK_AND_ASSIGN(auto server, bus::testing::NatsServerProcess::Start(tmp.path() + "/js"));
  ASSERT_OK_AND_ASSIGN(auto conn, bus::NatsConnection::Connect(server->url(), "pipeline-test"));
  bus::NatsEventBus bus(conn);
  bus::NatsKvStore kv(conn);
  bus::BlobStore blobs(&kv, service::kBlobsBucket);
  ASSERT_OK(service::Provision(bus, kv));
  GitRepo repo(tmp.path() + "/repo");
  repo.Write("apps/web/cm.yaml", ConfigMapYaml("web", "1"));
  const std::string first = repo.Commit("first");

  // Separate mirrors, as the two processes would have.
  git::Libgit2Client poller_git({.cache_dir = tmp.path() + "/poller/mirrors"});
  git::Libgit2Client renderer_git({.cache_dir = tmp.path() + "/renderer/mirrors"});
  repo_poller::PollerService poller(
      &bus, &kv, &poller_git,
      {.emitter = "repo-poller/test", .default_interval = absl::Minutes(10)});
  RendererService renderer(&bus, &kv, &blobs, &renderer_git,
                           {.emitter = "renderer/test", .work_dir = tmp.path() + "/renderer/work"});
  ASSERT_OK(poller.Start());
  EventCollector plan;
  {
    Consumer poll_stage(bus, service::kStagePoll, [&](const v1::Event& e, const bus::Message& m) {
      return poller.Handle(e, m);
    });
    Consumer render_stage(
        bus, service::kStageRender,
        [&](const v1::Event& e, const bus::Message& m) { return renderer.Handle(e, m); });
    ASSERT_OK(plan.Start(bus, service::kWorkStream, service::kStagePlan));

    absl::Time t0 = absl::Now();
    ASSERT_OK(service::ResourceStore(&kv).Put(App("web", repo.url())).status());
    v1::Event rendered = plan.WaitNth("app.rendered", "web", 1);
    const absl::Duration registered = absl::Now() - t0;
    ASSERT_EQ(rendered.revision(), first);

    // A push (webhook) of a new commit.
    repo.Write("apps/web/cm.yaml", ConfigMapYaml("web", "2"));
    const std::string second = repo.Commit("second");
    t0 = absl::Now();
    v1::Event push = service::NewEvent("webhook.push", "", "", "api/test");
    push.set_id("webhook.push/" + second);
    push.set_correlation_id("push-2");
    push.mutable_webhook_push()->set_repo_url(repo.url());
    push.mutable_webhook_push()->set_after(second);
    ASSERT_OK(service::Emit(bus, push, service::kStagePoll));
    v1::Event pushed = plan.WaitNth("app.rendered", "web", 2);
    const absl::Duration webhook = absl::Now() - t0;
    ASSERT_EQ(pushed.revision(), second);
    EXPECT_EQ(pushed.correlation_id(), "push-2");
    ASSERT_OK_AND_ASSIGN(Json objects,
                         service::DecodeManifests(blobs, pushed.app_rendered().manifests()));
    ASSERT_EQ(objects.size(), 1u);
    EXPECT_EQ(objects[0]["data"]["v"], "2");

    // A sync request on the unchanged commit.
    t0 = absl::Now();
    v1::Event request = service::NewEvent("sync.requested", "web", "", "api/test");
    request.set_id("sync.requested/web/s1");
    request.set_correlation_id("s1");
    request.mutable_sync_requested()->set_sync_id("s1");
    ASSERT_OK(service::Emit(bus, request, service::kStagePoll));
    v1::Event synced = plan.WaitNth("app.rendered", "web", 3);
    const absl::Duration sync = absl::Now() - t0;
    EXPECT_EQ(synced.revision(), second);
    EXPECT_EQ(synced.correlation_id(), "s1");
    EXPECT_EQ(synced.app_rendered().sync_request().sync_id(), "s1");

    std::cerr << "to app.rendered: registration " << absl::FormatDuration(registered)
              << ", webhook push " << absl::FormatDuration(webhook) << ", sync request "
              << absl::FormatDuration(sync) << "\n";
    // Generous bounds for loaded CI machines; typical values are tens of milliseconds.
    EXPECT_LT(webhook, absl::Seconds(3));
    EXPECT_LT(sync, absl::Seconds(3));
    plan.Stop();
  }
  poller.Stop();
}

}  // namespace
}  // namespace driftless::renderer
