// The planner against a real nats-server and the real kube emulator: automated apps get a
// plan.ready on stage apply, manual ones only a status, applied apps are Synced; a deleted
// application's objects are planned for pruning.
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/common/identity.h"
#include "services/common/render_inputs.h"
#include "services/common/testing/pipeline_env.h"
#include "services/planner/planner_service.h"

namespace driftless::planner {
namespace {

using manifest::Json;
using service::testing::EventCollector;
using service::testing::PipelineTest;
using service::testing::Yaml;
using ::testing::HasSubstr;

class PlannerIntegrationTest : public PipelineTest {
 protected:
  void SetUp() override {
    PipelineTest::SetUp();
    if (HasFatalFailure()) return;
    planner_ = std::make_unique<PlannerService>(kube_.get(), &runtime_->kv(), &runtime_->blobs(),
                                                &runtime_->bus(), "planner/test");
    // Work items for the applier (nobody else consumes the apply stage here).
    ASSERT_OK(apply_stage_.Start(runtime_->bus(), service::kWorkStream, service::kStageApply, ""));
  }
  void TearDown() override {
    apply_stage_.Stop();
    PipelineTest::TearDown();
  }

  std::unique_ptr<PlannerService> planner_;
  EventCollector apply_stage_;
};

TEST_F(PlannerIntegrationTest, AutomatedAppGetsPlanReadyWithCreatesAndIsOutOfSync) {
  service::StoredResource app =
      PutApp("guestbook", "gb", "{automated: {prune: true}, syncOptions: [CreateNamespace=true]}");
  Json objects = Json::array({ConfigMap("config", "v1"), Deployment("web")});
  v1::Event rendered = Rendered(app, "abc123", objects);
  bus::Disposition d = planner_->Handle(rendered, Delivery(rendered));
  ASSERT_EQ(d.kind(), bus::Disposition::Kind::kAck) << d.error();

  ASSERT_TRUE(apply_stage_.WaitFor("plan.ready", 1));
  v1::Event plan = apply_stage_.Events("plan.ready")[0];
  EXPECT_EQ(plan.application(), "guestbook");
  EXPECT_EQ(plan.revision(), "abc123");
  EXPECT_EQ(plan.correlation_id(), "corr-abc123");
  const v1::PlanReady& p = plan.plan_ready();
  EXPECT_EQ(p.sync_id(),
            AutomatedSyncId("guestbook", "abc123", p.render_digest(), app.spec_digest));
  EXPECT_EQ(plan.id(), service::EventId("plan.ready", "guestbook", "abc123",
                                        manifest::Digest(objects), p.sync_id()));
  EXPECT_TRUE(p.prune());
  EXPECT_EQ(p.initiated_by(), "automated");
  ASSERT_EQ(p.objects_size(), 3);  // Namespace (CreateNamespace), ConfigMap, Deployment
  EXPECT_EQ(p.objects(0).ref().kind(), "Namespace");
  EXPECT_EQ(p.objects(1).ref().kind(), "ConfigMap");
  EXPECT_EQ(p.objects(1).ref().namespace_(), "gb");
  EXPECT_EQ(p.objects(2).ref().kind(), "Deployment");
  for (const v1::PlannedObject& o : p.objects()) EXPECT_EQ(o.action(), v1::ACTION_CREATE);
  ASSERT_OK_AND_ASSIGN(Json manifests, service::DecodeManifests(runtime_->blobs(), p.manifests()));
  ASSERT_EQ(manifests.size(), 3u);
  EXPECT_EQ(manifests[1]["metadata"]["annotations"]["driftless.dev/application"], "guestbook");
  EXPECT_EQ(manifests[1]["metadata"]["namespace"], "gb");

  v1::AppStatus s = Status("guestbook");
  EXPECT_EQ(s.sync(), v1::SYNC_STATUS_CODE_OUT_OF_SYNC);
  EXPECT_EQ(s.last_attempted_revision(), "abc123");
  EXPECT_EQ(s.spec_digest(), app.spec_digest);
  EXPECT_EQ(s.observed_generation(), app.generation);
  ASSERT_EQ(s.resources_size(), 3);
  EXPECT_EQ(s.resources(2).sync(), v1::SYNC_STATUS_CODE_OUT_OF_SYNC);
  EXPECT_EQ(s.resources(2).health(), v1::HEALTH_STATUS_CODE_MISSING);
}

TEST_F(PlannerIntegrationTest, ManualAppGetsOnlyAStatusUntilASyncIsRequested) {
  service::StoredResource app = PutApp("manual", "default", "");
  Json objects = Json::array({ConfigMap("settings", "x")});
  v1::Event rendered = Rendered(app, "def456", objects);
  ASSERT_EQ(planner_->Handle(rendered, Delivery(rendered)).kind(), bus::Disposition::Kind::kAck);
  EXPECT_EQ(Status("manual").sync(), v1::SYNC_STATUS_CODE_OUT_OF_SYNC);

  // A user's sync request plans even a manual application.
  v1::SyncRequested request;
  request.set_sync_id("sync-1");
  request.set_requested_by("user:alice");
  v1::Event requested = Rendered(app, "def456", objects, &request);
  ASSERT_EQ(planner_->Handle(requested, Delivery(requested)).kind(), bus::Disposition::Kind::kAck);
  ASSERT_TRUE(apply_stage_.WaitFor("plan.ready", 1));
  std::vector<v1::Event> plans = apply_stage_.Events("plan.ready");
  ASSERT_EQ(plans.size(), 1u);  // the first, unrequested render planned nothing
  EXPECT_EQ(plans[0].plan_ready().sync_id(), "sync-1");
  EXPECT_EQ(plans[0].plan_ready().initiated_by(), "user:alice");
}

TEST_F(PlannerIntegrationTest, EverythingAppliedIsSyncedAndHealthy) {
  service::StoredResource app = PutApp("done", "default", "{automated: {}}");
  Json objects = Json::array({ConfigMap("a", "1"), ConfigMap("b", "2")});
  for (Json o : objects) {
    o["metadata"]["namespace"] = "default";
    o["metadata"]["annotations"]["driftless.dev/application"] = "done";
    o["metadata"]["labels"]["driftless.dev/application"] = "done";  // as driftless applies it
    ASSERT_OK(kube_->Apply(o, {.field_manager = "driftless", .force = true}).status());
  }
  v1::Event rendered = Rendered(app, "777", objects);
  ASSERT_EQ(planner_->Handle(rendered, Delivery(rendered)).kind(), bus::Disposition::Kind::kAck);
  v1::AppStatus s = Status("done");
  EXPECT_EQ(s.sync(), v1::SYNC_STATUS_CODE_SYNCED);
  EXPECT_EQ(s.health(), v1::HEALTH_STATUS_CODE_HEALTHY);
  ASSERT_EQ(s.resources_size(), 2);
  EXPECT_EQ(s.resources(0).sync(), v1::SYNC_STATUS_CODE_SYNCED);
  // In sync and automated: nothing to do.
  EXPECT_FALSE(apply_stage_.WaitFor("plan.ready", 1, absl::Milliseconds(500)));

  // A changed value is drift: OutOfSync with the changed path named.
  Json changed = Json::array({ConfigMap("a", "1"), ConfigMap("b", "3")});
  v1::Event again = Rendered(app, "778", changed);
  ASSERT_EQ(planner_->Handle(again, Delivery(again)).kind(), bus::Disposition::Kind::kAck);
  s = Status("done");
  EXPECT_EQ(s.sync(), v1::SYNC_STATUS_CODE_OUT_OF_SYNC);
  EXPECT_THAT(s.resources(1).message(), HasSubstr("/data/key"));
  ASSERT_TRUE(apply_stage_.WaitFor("plan.ready", 1));
  EXPECT_EQ(apply_stage_.Events("plan.ready")[0].plan_ready().objects(1).action(),
            v1::ACTION_UPDATE);
}

TEST_F(PlannerIntegrationTest, UnknownKindStallsAndFailsNamingTheObject) {
  service::StoredResource app = PutApp("widgets", "default", "{automated: {}}");
  Json objects = Json::array(
      {Json{{"apiVersion", "example.com/v1"}, {"kind", "Widget"}, {"metadata", {{"name", "w"}}}}});
  v1::Event rendered = Rendered(app, "111", objects);
  ASSERT_EQ(planner_->Handle(rendered, Delivery(rendered)).kind(), bus::Disposition::Kind::kAck);
  v1::AppStatus s = Status("widgets");
  const v1::Condition* stalled = service::FindCondition(s, "Stalled");
  ASSERT_NE(stalled, nullptr);
  EXPECT_TRUE(stalled->status());
  EXPECT_THAT(stalled->message(), HasSubstr("Widget"));
  EXPECT_THAT(stalled->message(), HasSubstr("widgets"));
  ASSERT_TRUE(broadcasts_.WaitFor("sync.failed", 1));
  EXPECT_FALSE(apply_stage_.WaitFor("plan.ready", 1, absl::Milliseconds(300)));
}

// The work item the api queues for a cascade deletion of `app`.
v1::Event Deleted(const service::StoredResource& app) {
  v1::Event deleted = service::NewEvent("app.changed", app.name, "", "api/test");
  deleted.set_id(service::EventId("app.changed", app.name, "", app.spec_digest, "deleted-r1"));
  deleted.mutable_app_changed()->set_reason(v1::AppChanged::REASON_DELETED);
  deleted.mutable_app_changed()->set_spec_digest(app.spec_digest);
  deleted.mutable_app_changed()->set_object_json(app.object.dump());
  return deleted;
}

TEST_F(PlannerIntegrationTest, CascadeDeletePlansThePruneOfTrackedObjects) {
  service::StoredResource app = PutApp("gone", "default", "{automated: {prune: true}}");
  Json mine = ConfigMap("mine", "1");
  mine["metadata"]["namespace"] = "default";
  mine["metadata"]["annotations"]["driftless.dev/application"] = "gone";
  Json other = ConfigMap("other", "1");
  other["metadata"]["namespace"] = "default";
  ASSERT_OK(kube_->Apply(mine, {.field_manager = "driftless", .force = true}).status());
  ASSERT_OK(kube_->Apply(other, {.field_manager = "driftless", .force = true}).status());
  v1::Event deleted = Deleted(app);
  // Not marked deleting yet (an api older than the finalizer queued it): wait for it.
  EXPECT_EQ(planner_->Handle(deleted, Delivery(deleted)).kind(), bus::Disposition::Kind::kNak);
  ASSERT_OK(
      service::ResourceStore(&runtime_->kv()).MarkDeleting("Application", "gone", absl::Now()));
  ASSERT_EQ(planner_->Handle(deleted, Delivery(deleted)).kind(), bus::Disposition::Kind::kAck);
  ASSERT_TRUE(apply_stage_.WaitFor("plan.ready", 1));
  const v1::Event plan = apply_stage_.Events("plan.ready")[0];
  const v1::PlanReady& p = plan.plan_ready();
  EXPECT_TRUE(p.prune());
  EXPECT_EQ(p.initiated_by(), "user:cli");
  EXPECT_THAT(p.sync_id(), ::testing::StartsWith("delete-"));
  ASSERT_EQ(p.objects_size(), 1);
  EXPECT_EQ(p.objects(0).ref().name(), "mine");
  EXPECT_EQ(p.objects(0).action(), v1::ACTION_DELETE);
  EXPECT_EQ(p.delete_application_uid(), app.uid) << "the applier removes it once pruned";
  ASSERT_OK(service::ResourceStore(&runtime_->kv()).Get("Application", "gone").status());
  EXPECT_THAT(Status("gone").message(), ::testing::HasSubstr("deleting: pruning 1 objects"));
}

TEST_F(PlannerIntegrationTest, CascadeDeleteWithNothingToPruneRemovesTheApplicationAtOnce) {
  service::StoredResource app = PutApp("empty", "default", "{automated: {prune: true}}");
  ASSERT_OK(
      service::ResourceStore(&runtime_->kv()).MarkDeleting("Application", "empty", absl::Now()));
  v1::Event deleted = Deleted(app);
  ASSERT_EQ(planner_->Handle(deleted, Delivery(deleted)).kind(), bus::Disposition::Kind::kAck);
  EXPECT_TRUE(absl::IsNotFound(
      service::ResourceStore(&runtime_->kv()).Get("Application", "empty").status()));
  ASSERT_TRUE(broadcasts_.WaitFor("app.changed", 1));
  EXPECT_EQ(broadcasts_.Events("app.changed")[0].app_changed().reason(),
            v1::AppChanged::REASON_DELETED);
  EXPECT_FALSE(apply_stage_.WaitFor("plan.ready", 1, absl::Milliseconds(300)));
}

TEST_F(PlannerIntegrationTest, RenderOfADeletingApplicationIsDropped) {
  service::StoredResource app = PutApp("leaving", "default", "{automated: {prune: true}}");
  ASSERT_OK(
      service::ResourceStore(&runtime_->kv()).MarkDeleting("Application", "leaving", absl::Now()));
  v1::Event rendered = Rendered(app, "r1", Json::array({ConfigMap("late", "1")}));
  ASSERT_EQ(planner_->Handle(rendered, Delivery(rendered)).kind(), bus::Disposition::Kind::kAck);
  EXPECT_FALSE(apply_stage_.WaitFor("plan.ready", 1, absl::Milliseconds(300)));
}

// The render inputs: a renderer's request is answered with the ConfigMap and Secret data, a
// refresh with nothing changed mints nothing, a change of the data mints an automated sync
// request for the poller (the application re-renders with it), and a user's sync is answered.
TEST_F(PlannerIntegrationTest, RenderInputsAreResolvedAndAChangeMintsAnAutomatedSync) {
  ASSERT_OK(kube_
                ->Apply(Yaml("{apiVersion: v1, kind: Namespace, metadata: {name: team}}"),
                        {.field_manager = "test"})
                .status());
  auto put_values = [&](const std::string& replicas) {
    ASSERT_OK(kube_
                  ->Apply(Yaml(strings::Cat("{apiVersion: v1, kind: ConfigMap, metadata: {name: "
                                            "web-values, namespace: team}, data: {values.yaml: "
                                            "'replicas: ",
                                            replicas, "'}}")),
                          {.field_manager = "test"})
                  .status());
  };
  put_values("2");
  // "hunter2", base64: the Secret's data is decoded for the renderer.
  ASSERT_OK(kube_
                ->Apply(Yaml("{apiVersion: v1, kind: Secret, metadata: {name: vars, namespace: "
                             "team}, data: {PASSWORD: aHVudGVyMg==}}"),
                        {.field_manager = "test"})
                .status());
  service::ResourceStore store(&runtime_->kv());
  ASSERT_OK(store
                .Put(Yaml(R"(
apiVersion: driftless.dev/v1alpha1
kind: Application
metadata: {name: web}
spec:
  source:
    repoURL: file:///repo
    path: charts/web
    helm: {valuesFrom: [{kind: ConfigMap, name: web-values}, {kind: Secret, name: gone, optional: true}]}
    substituteFrom: [{kind: Secret, name: vars}]
  destination: {cluster: in-cluster, namespace: team}
  syncPolicy: {automated: {}}
)"))
                .status());
  ASSERT_OK_AND_ASSIGN(service::StoredResource app, store.Get("Application", "web"));
  EventCollector poll_stage;
  ASSERT_OK(poll_stage.Start(runtime_->bus(), service::kWorkStream, service::kStagePoll, ""));

  v1::Event requested =
      service::NewEvent(service::event_type::kRenderInputsRequested, "web", "abc", "renderer/test");
  requested.set_id("inputs-1");
  ASSERT_EQ(planner_->Handle(requested, Delivery(requested)).kind(), bus::Disposition::Kind::kAck);
  service::RenderInputsStore inputs(&runtime_->kv());
  ASSERT_OK_AND_ASSIGN(std::optional<service::RenderInputs> first, inputs.Get("web"));
  ASSERT_TRUE(first.has_value());
  EXPECT_TRUE(first->Matches(app.uid, service::InputRefsOf(app.object)));
  ASSERT_OK_AND_ASSIGN(std::vector<std::string> values, service::HelmValuesFrom(*first));
  EXPECT_THAT(values, ::testing::ElementsAre("replicas: 2"));
  ASSERT_OK_AND_ASSIGN(auto vars, service::SubstituteFrom(*first));
  EXPECT_EQ(vars["PASSWORD"], "hunter2");

  // The refresh records the cluster's version and API list; nothing changed: no sync request.
  ASSERT_OK(planner_->RefreshInputs());
  ASSERT_OK_AND_ASSIGN(std::optional<service::ClusterFacts> facts, inputs.GetCluster("in-cluster"));
  ASSERT_TRUE(facts.has_value());
  EXPECT_EQ(facts->kube_version, "v1.32.3");
  EXPECT_THAT(facts->api_versions, ::testing::IsSupersetOf({"apps/v1", "apps/v1/Deployment"}));
  ASSERT_OK_AND_ASSIGN(std::optional<service::RenderInputs> same, inputs.Get("web"));
  EXPECT_EQ(same->digest, first->digest);

  put_values("3");
  ASSERT_OK(planner_->RefreshInputs());
  ASSERT_TRUE(poll_stage.WaitFor("sync.requested", 1));
  v1::Event mint = poll_stage.Events("sync.requested")[0];
  EXPECT_EQ(mint.application(), "web");
  EXPECT_TRUE(mint.sync_requested().automated());
  EXPECT_EQ(mint.sync_requested().requested_by(), "planner/test");
  ASSERT_OK_AND_ASSIGN(std::optional<service::RenderInputs> changed, inputs.Get("web"));
  ASSERT_OK_AND_ASSIGN(values, service::HelmValuesFrom(*changed));
  EXPECT_THAT(values, ::testing::ElementsAre("replicas: 3"));
  // A second refresh of the same data mints nothing more.
  ASSERT_OK(planner_->RefreshInputs());

  // A user's sync: answered even though nothing changed, without a new generation.
  v1::Event user = requested;
  user.set_id("inputs-2");
  user.mutable_sync_requested()->set_sync_id("sync-7");
  ASSERT_EQ(planner_->Handle(user, Delivery(user)).kind(), bus::Disposition::Kind::kAck);
  ASSERT_OK_AND_ASSIGN(std::optional<service::RenderInputs> answered, inputs.Get("web"));
  EXPECT_EQ(answered->request, "sync-7");
  EXPECT_EQ(answered->digest, changed->digest);
  ASSERT_FALSE(poll_stage.WaitFor("sync.requested", 2, absl::Milliseconds(500)));

  // Nothing of the Secret's data reached a broadcast.
  for (const v1::Event& e : broadcasts_.Events()) {
    EXPECT_THAT(e.DebugString(), ::testing::Not(HasSubstr("hunter2"))) << e.type();
  }
  poll_stage.Stop();
}

// A work item that fails on every delivery is dead-lettered, and its application says so
// (never a silent drop); the next generation planned clears it.
TEST_F(PlannerIntegrationTest, ADeadLetteredWorkItemIsAConditionOnItsApplication) {
  service::StoredResource app = PutApp("stuck", "default", "{automated: {}}");
  const Json objects = Json::array({ConfigMap("c", "1")});
  ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<bus::Subscription> sub,
      runtime_->ConsumeStage(service::kStagePlan, [](const v1::Event&, const bus::Message&) {
        return bus::Disposition::Nak(absl::ZeroDuration(), "the stream is full");
      }));
  v1::Event rendered = Rendered(app, "abc123", objects);
  ASSERT_OK(service::Emit(runtime_->bus(), rendered, service::kStagePlan));
  std::string message;
  ASSERT_TRUE(service::testing::WaitFor(
      [&] {
        const v1::AppStatus status = Status("stuck");
        const v1::Condition* c = service::FindCondition(status, service::kDeadLetteredCondition);
        if (c == nullptr || !c->status()) return false;
        message = c->message();
        return true;
      },
      absl::Seconds(30)));
  sub->Stop();
  EXPECT_THAT(message, HasSubstr("application stuck: work item app.rendered dead-lettered after "
                                 "5 deliveries: the stream is full"));
  EXPECT_THAT(Status("stuck").message(), HasSubstr("dlq redrive"));

  v1::Event next = Rendered(app, "def456", objects);
  ASSERT_EQ(planner_->Handle(next, Delivery(next)).kind(), bus::Disposition::Kind::kAck);
  const v1::AppStatus after = Status("stuck");
  const v1::Condition* cleared = service::FindCondition(after, service::kDeadLetteredCondition);
  ASSERT_NE(cleared, nullptr);
  EXPECT_FALSE(cleared->status());
}

// A render whose blob expired (re-driven from the dead letters a day later) is rendered
// again as a new generation, a user's sync staying the user's: nothing is lost.
TEST_F(PlannerIntegrationTest, ExpiredManifestsAreRenderedAgain) {
  service::StoredResource app = PutApp("late", "default", "");
  EventCollector poll_stage;
  ASSERT_OK(poll_stage.Start(runtime_->bus(), service::kWorkStream, service::kStagePoll, ""));
  v1::SyncRequested request;
  request.set_sync_id("sync-3");
  request.set_requested_by("user:alice");
  request.set_prune(true);
  const std::vector<const v1::SyncRequested*> requests = {nullptr, &request};
  for (const v1::SyncRequested* r : requests) {
    v1::Event rendered = Rendered(app, "abc123", Json::array(), r);
    rendered.mutable_app_rendered()->mutable_manifests()->set_blob_digest("sha256:" +
                                                                          std::string(64, '0'));
    ASSERT_EQ(planner_->Handle(rendered, Delivery(rendered)).kind(), bus::Disposition::Kind::kAck);
  }
  ASSERT_TRUE(poll_stage.WaitFor("sync.requested", 2));
  std::vector<v1::Event> asked = poll_stage.Events("sync.requested");
  EXPECT_TRUE(asked[0].sync_requested().automated());
  EXPECT_THAT(asked[0].sync_requested().sync_id(), ::testing::StartsWith("rerender-"));
  EXPECT_FALSE(asked[1].sync_requested().automated());
  EXPECT_EQ(asked[1].sync_requested().sync_id(), "sync-3-rerender");
  EXPECT_EQ(asked[1].sync_requested().requested_by(), "user:alice");
  EXPECT_TRUE(asked[1].sync_requested().prune());
  EXPECT_TRUE(apply_stage_.Events("plan.ready").empty());

  // An expired render of a generation older than the one planned since is only dropped.
  v1::Event current = Rendered(app, "def456", Json::array({ConfigMap("c", "1")}));
  const service::SyncIdentity newer{app.uid, 5, 1};
  service::SetIdentity(current, newer);
  current.set_id(service::IdentityEventId("app.rendered", app.name, newer));
  ASSERT_EQ(planner_->Handle(current, Delivery(current)).kind(), bus::Disposition::Kind::kAck);
  v1::Event stale = Rendered(app, "abc123", Json::array());
  const service::SyncIdentity older{app.uid, 3, 1};
  service::SetIdentity(stale, older);
  stale.set_id(service::IdentityEventId("app.rendered", app.name, older));
  stale.mutable_app_rendered()->mutable_manifests()->set_blob_digest("sha256:" +
                                                                     std::string(64, '0'));
  ASSERT_EQ(planner_->Handle(stale, Delivery(stale)).kind(), bus::Disposition::Kind::kAck);
  ASSERT_FALSE(poll_stage.WaitFor("sync.requested", 3, absl::Milliseconds(500)));
  poll_stage.Stop();
}

}  // namespace
}  // namespace driftless::planner
