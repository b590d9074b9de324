// The applier against a real nats-server and the real kube emulator, fed with plans from
// the real planner: applies with field manager driftless and the tracking annotation,
// records history, reports Synced/Healthy; prunes; a redelivered plan applies nothing
// twice; a lease held elsewhere naks; CreateNamespace; a 422 fails the sync naming the
// object; the whole plan → apply path through the stage consumers for a 20-object app.
#include <httplib.h>

#include <algorithm>
#include <thread>

#include "common/bus/lease.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/applier/applier_service.h"
#include "services/common/identity.h"
#include "services/common/testing/pipeline_env.h"
#include "services/planner/planner_service.h"

namespace driftless::applier {
namespace {

using ::driftless::testing::StatusIs;
using manifest::Json;
using service::testing::EventCollector;
using service::testing::PipelineTest;
using ::testing::HasSubstr;

class ApplierIntegrationTest : public PipelineTest {
 protected:
  void SetUp() override {
    PipelineTest::SetUp();
    if (HasFatalFailure()) return;
    planner_ = std::make_unique<planner::PlannerService>(
        kube_.get(), &runtime_->kv(), &runtime_->blobs(), &runtime_->bus(), "planner/test");
    applier_ = std::make_unique<ApplierService>(
        kube_.get(), &runtime_->kv(), &runtime_->blobs(), &runtime_->bus(),
        ApplierOptions{.emitter = "applier/test", .health_timeout = absl::Seconds(20)});
  }

  // Runs the planner on a render and returns the plan it broadcast.
  // `seq` > 0: the rendered event is a v2 item of that desired generation.
  v1::Event Plan(const service::StoredResource& app, const std::string& revision,
                 const Json& objects, int64_t seq = 0) {
    // The plans, as queued for the applier (broadcasts carry no manifests).
    if (!applies_started_) {
      EXPECT_OK(applies_.Start(runtime_->bus(), service::kWorkStream, service::kStageApply, ""));
      applies_started_ = true;
    }
    size_t before = applies_.Events("plan.ready").size();
    v1::Event rendered = Rendered(app, revision, objects);
    if (seq > 0) {
      const service::SyncIdentity id{app.uid, seq, 1};
      service::SetIdentity(rendered, id);
      rendered.set_id(service::IdentityEventId("app.rendered", app.name, id));
    }
    bus::Disposition d = planner_->Handle(rendered, Delivery(rendered));
    EXPECT_EQ(d.kind(), bus::Disposition::Kind::kAck) << d.error();
    EXPECT_TRUE(applies_.WaitFor("plan.ready", before + 1));
    std::vector<v1::Event> plans = applies_.Events("plan.ready");
    return plans.size() > before ? plans.back() : v1::Event();
  }

  absl::StatusOr<Json> Get(const std::string& kind, const std::string& ns,
                           const std::string& name) {
    return kube_->Get({.api_version = kind == "Deployment" ? "apps/v1" : "v1",
                       .kind = kind,
                       .namespace_ = ns,
                       .name = name});
  }

  // `plan` as a v2 work item of desired generation `seq` (the planner copies the identity of
  // the rendered event it plans; these tests build the plan directly).
  static v1::Event Identified(v1::Event plan, const service::StoredResource& app, int64_t seq) {
    const service::SyncIdentity id{app.uid, seq, 1};
    service::SetIdentity(plan, id);
    plan.set_id(service::IdentityEventId("plan.ready", app.name, id));
    plan.mutable_plan_ready()->set_sync_id(service::SyncIdOf(id));
    return plan;
  }

  void TearDown() override {
    applies_.Stop();
    PipelineTest::TearDown();
  }

  std::unique_ptr<planner::PlannerService> planner_;
  std::unique_ptr<ApplierService> applier_;
  EventCollector applies_;
  bool applies_started_ = false;
};

TEST_F(ApplierIntegrationTest, AppliesRecordsHistoryAndReportsSyncedHealthy) {
  service::StoredResource app =
      PutApp("web", "web-ns", "{automated: {prune: true}, syncOptions: [CreateNamespace=true]}");
  v1::Event plan = Plan(app, "rev1", Json::array({ConfigMap("config", "v1"), Deployment("web")}));
  ASSERT_EQ(plan.plan_ready().objects_size(), 3);
  bus::Disposition d = applier_->Handle(plan, Delivery(plan));
  ASSERT_EQ(d.kind(), bus::Disposition::Kind::kAck) << d.error();

  ASSERT_OK_AND_ASSIGN(Json ns, Get("Namespace", "", "web-ns"));  // CreateNamespace=true
  ASSERT_OK_AND_ASSIGN(Json cm, Get("ConfigMap", "web-ns", "config"));
  EXPECT_EQ(cm["metadata"]["annotations"]["driftless.dev/application"], "web");
  EXPECT_EQ(cm["data"]["key"], "v1");
  bool driftless_manager = false;
  for (const Json& f : cm["metadata"]["managedFields"]) {
    driftless_manager |=
        f.value("manager", "") == "driftless" && f.value("operation", "") == "Apply";
  }
  EXPECT_TRUE(driftless_manager) << cm["metadata"]["managedFields"].dump();
  ASSERT_OK(Get("Deployment", "web-ns", "web").status());

  ASSERT_OK_AND_ASSIGN(
      service::HistoryEntry h,
      service::HistoryStore(&runtime_->kv()).Get("web", plan.plan_ready().sync_id()));
  EXPECT_TRUE(h.succeeded);
  EXPECT_EQ(h.revision, "rev1");
  EXPECT_EQ(h.initiated_by, "automated");
  EXPECT_EQ(h.object_count, 3);

  v1::AppStatus s = Status("web");
  EXPECT_EQ(s.sync(), v1::SYNC_STATUS_CODE_SYNCED);
  EXPECT_EQ(s.health(), v1::HEALTH_STATUS_CODE_HEALTHY) << s.message();
  EXPECT_EQ(s.last_applied_revision(), "rev1");
  EXPECT_EQ(s.resources_size(), 3);
  const v1::Condition* ready = service::FindCondition(s, "Ready");
  ASSERT_NE(ready, nullptr);
  EXPECT_TRUE(ready->status());

  ASSERT_TRUE(broadcasts_.WaitFor("sync.succeeded", 1));
  ASSERT_TRUE(broadcasts_.WaitFor("sync.started", 1));
  ASSERT_TRUE(broadcasts_.WaitFor("app.status", 1));
  v1::Event ok = broadcasts_.Events("sync.succeeded")[0];
  EXPECT_EQ(ok.id(),
            service::EventId("sync.succeeded", "web", "rev1", plan.plan_ready().sync_id()));
  EXPECT_EQ(ok.correlation_id(), "corr-rev1");
  ASSERT_EQ(ok.sync_finished().results_size(), 3);
  for (const v1::ObjectResult& r : ok.sync_finished().results()) EXPECT_EQ(r.result(), "applied");

  // The planner now sees everything in sync.
  v1::Event rendered =
      Rendered(app, "rev1b", Json::array({ConfigMap("config", "v1"), Deployment("web")}));
  ASSERT_EQ(planner_->Handle(rendered, Delivery(rendered)).kind(), bus::Disposition::Kind::kAck);
  EXPECT_EQ(Status("web").sync(), v1::SYNC_STATUS_CODE_SYNCED);
}

// Regression: with prune off, a sync that left an object which left git still marked the
// application Synced, and the planner flipped it back to OutOfSync on its next pass.
TEST_F(ApplierIntegrationTest, WithoutPruneALeftoverKeepsTheAppOutOfSync) {
  service::StoredResource app = PutApp("noprune", "default", "{automated: {}}");
  v1::Event first = Plan(app, "r1", Json::array({ConfigMap("stay", "1"), ConfigMap("gone", "1")}));
  ASSERT_EQ(applier_->Handle(first, Delivery(first)).kind(), bus::Disposition::Kind::kAck);
  EXPECT_EQ(Status("noprune").sync(), v1::SYNC_STATUS_CODE_SYNCED);
  v1::Event second = Plan(app, "r2", Json::array({ConfigMap("stay", "2")}));
  ASSERT_EQ(applier_->Handle(second, Delivery(second)).kind(), bus::Disposition::Kind::kAck);
  EXPECT_OK(Get("ConfigMap", "default", "gone").status());  // not pruned
  v1::AppStatus s = Status("noprune");
  EXPECT_EQ(s.last_applied_revision(), "r2");
  EXPECT_EQ(s.sync(), v1::SYNC_STATUS_CODE_OUT_OF_SYNC);
}

TEST_F(ApplierIntegrationTest, SecondPlanPrunesTheDroppedObject) {
  service::StoredResource app = PutApp("prn", "default", "{automated: {prune: true}}");
  v1::Event first = Plan(app, "r1", Json::array({ConfigMap("keep", "1"), ConfigMap("drop", "1")}));
  ASSERT_EQ(applier_->Handle(first, Delivery(first)).kind(), bus::Disposition::Kind::kAck);
  ASSERT_OK(Get("ConfigMap", "default", "drop").status());

  v1::Event second = Plan(app, "r2", Json::array({ConfigMap("keep", "1")}));
  ASSERT_EQ(second.plan_ready().objects_size(), 2);
  EXPECT_EQ(second.plan_ready().objects(1).action(), v1::ACTION_DELETE);
  ASSERT_EQ(applier_->Handle(second, Delivery(second)).kind(), bus::Disposition::Kind::kAck);
  EXPECT_TRUE(absl::IsNotFound(Get("ConfigMap", "default", "drop").status()));
  EXPECT_OK(Get("ConfigMap", "default", "keep").status());
  v1::AppStatus s = Status("prn");
  EXPECT_EQ(s.last_applied_revision(), "r2");
  ASSERT_EQ(s.resources_size(), 1);
  EXPECT_EQ(s.resources(0).ref().name(), "keep");
}

TEST_F(ApplierIntegrationTest, RedeliveredPlanAppliesNothingTwice) {
  service::StoredResource app = PutApp("once", "default", "{automated: {}}");
  v1::Event plan = Plan(app, "r1", Json::array({ConfigMap("c", "1")}));
  ASSERT_EQ(applier_->Handle(plan, Delivery(plan)).kind(), bus::Disposition::Kind::kAck);
  // Someone deletes the object; a redelivery of the same plan must not bring it back.
  ASSERT_OK(kube_->Delete(
      {.api_version = "v1", .kind = "ConfigMap", .namespace_ = "default", .name = "c"}, {}));
  ASSERT_EQ(applier_->Handle(plan, Delivery(plan, 2)).kind(), bus::Disposition::Kind::kAck);
  EXPECT_TRUE(absl::IsNotFound(Get("ConfigMap", "default", "c").status()));
  ASSERT_OK_AND_ASSIGN(auto entries, service::HistoryStore(&runtime_->kv()).List("once"));
  EXPECT_EQ(entries.size(), 1u);
  absl::SleepFor(absl::Milliseconds(300));  // let a (wrong) second broadcast arrive
  EXPECT_EQ(broadcasts_.Events("sync.started").size(), 1u);
  EXPECT_EQ(broadcasts_.Events("sync.succeeded").size(), 1u);  // re-publish deduplicated
}

TEST_F(ApplierIntegrationTest, LeaseHeldByAnotherHolderNaks) {
  service::StoredResource app = PutApp("held", "default", "{automated: {}}");
  v1::Event plan = Plan(app, "r1", Json::array({ConfigMap("c", "1")}));
  bus::Lease lease(&runtime_->kv());
  ASSERT_OK(
      lease.TryAcquire(service::kLeasesBucket, "sync.held", "applier/other", absl::Seconds(60))
          .status());
  bus::Disposition d = applier_->Handle(plan, Delivery(plan));
  EXPECT_EQ(d.kind(), bus::Disposition::Kind::kNak);
  // Back when the holder's lease would run out, capped at the ttl.
  EXPECT_GE(d.delay(), absl::Seconds(2));
  EXPECT_LE(d.delay(), absl::Seconds(15));
  EXPECT_TRUE(absl::IsNotFound(Get("ConfigMap", "default", "c").status()));
  EXPECT_TRUE(absl::IsNotFound(
      service::HistoryStore(&runtime_->kv()).Get("held", plan.plan_ready().sync_id()).status()));
}

// The emulator's fault hook: the next `count` matching requests fail with `code`.
void InjectFault(const std::string& url, const std::string& fault_json) {
  httplib::Client client(url);
  httplib::Result r = client.Post("/emulator/v1/faults", fault_json, "application/json");
  ASSERT_TRUE(r) << "emulator unreachable";
  ASSERT_EQ(r->status, 200) << r->body;
}

// Regression: the lease of an applier killed mid-sync outlived every redelivery of its plan,
// so the plan was dead-lettered and the app never synced; later, a busy application's plan
// was waited for inside the handler (holding the worker). Now a plan for a busy application
// is queued as the application's pending plan and acked at once, and the holder (or, for a
// holder that died, the periodic sweep) runs it once the lease is free.
TEST_F(ApplierIntegrationTest, BusyApplicationQueuesThePlanAndTheSweepRunsIt) {
  service::StoredResource app = PutApp("orphan", "default", "{automated: {}}");
  v1::Event plan = Identified(Plan(app, "r1", Json::array({ConfigMap("c", "1")})), app, 1);
  bus::Lease lease(&runtime_->kv());
  ASSERT_OK(lease
                .TryAcquire(service::kLeasesBucket, "sync.orphan", "applier/crashed",
                            absl::Milliseconds(800))
                .status());
  bus::Disposition d = applier_->Handle(plan, Delivery(plan));
  EXPECT_EQ(d.kind(), bus::Disposition::Kind::kAck) << d.error();
  EXPECT_TRUE(absl::IsNotFound(Get("ConfigMap", "default", "c").status()));
  ASSERT_OK_AND_ASSIGN(auto pending, service::PendingStore(&runtime_->kv()).Get("orphan"));
  ASSERT_TRUE(pending);
  EXPECT_EQ(pending->first.desired_seq(), 1);
  ASSERT_TRUE(bus::WaitFor(
      [&] {
        return absl::IsNotFound(lease.Holder(service::kLeasesBucket, "sync.orphan").status());
      },
      absl::Seconds(5)));
  applier_->SweepPending();
  EXPECT_OK(Get("ConfigMap", "default", "c").status());
  ASSERT_OK_AND_ASSIGN(pending, service::PendingStore(&runtime_->kv()).Get("orphan"));
  EXPECT_FALSE(pending);
  EXPECT_EQ(Status("orphan").applied_seq(), 1);
}

// Newest wins: a plan at or below the applied watermark is dropped, even one never run.
TEST_F(ApplierIntegrationTest, OlderGenerationIsSupersededAndNeverOverwritesTheNewer) {
  service::StoredResource app = PutApp("order", "default", "{automated: {}}");
  v1::Event older = Identified(Plan(app, "r1", Json::array({ConfigMap("c", "old")})), app, 1);
  v1::Event newer = Identified(Plan(app, "r2", Json::array({ConfigMap("c", "new")})), app, 2);
  ASSERT_EQ(applier_->Handle(newer, Delivery(newer)).kind(), bus::Disposition::Kind::kAck);
  ASSERT_EQ(applier_->Handle(older, Delivery(older)).kind(), bus::Disposition::Kind::kAck);
  ASSERT_OK_AND_ASSIGN(Json cm, Get("ConfigMap", "default", "c"));
  EXPECT_EQ(cm["data"]["key"], "new");
  v1::AppStatus s = Status("order");
  EXPECT_EQ(s.last_applied_revision(), "r2");
  EXPECT_EQ(s.applied_seq(), 2);
  EXPECT_TRUE(absl::IsNotFound(
      service::HistoryStore(&runtime_->kv()).Get("order", older.plan_ready().sync_id()).status()));
}

// A plan whose content was applied before still runs under a new desired generation (a
// re-sync after a kubectl edit, a branch moved back).
TEST_F(ApplierIntegrationTest, NewGenerationOfTheSameContentRunsAgain) {
  service::StoredResource app = PutApp("again", "default", "{automated: {}}");
  v1::Event first = Plan(app, "r1", Json::array({ConfigMap("c", "git")}), 1);
  ASSERT_EQ(applier_->Handle(first, Delivery(first)).kind(), bus::Disposition::Kind::kAck);
  Json edited = ConfigMap("c", "edited");
  edited["metadata"]["namespace"] = "default";
  ASSERT_OK(kube_->Apply(edited, {.field_manager = "kubectl", .force = true}).status());
  v1::Event second = Plan(app, "r1", Json::array({ConfigMap("c", "git")}), 2);
  ASSERT_NE(second.plan_ready().sync_id(), first.plan_ready().sync_id());
  ASSERT_EQ(applier_->Handle(second, Delivery(second)).kind(), bus::Disposition::Kind::kAck);
  ASSERT_OK_AND_ASSIGN(Json cm, Get("ConfigMap", "default", "c"));
  EXPECT_EQ(cm["data"]["key"], "git");
  ASSERT_OK_AND_ASSIGN(auto entries, service::HistoryStore(&runtime_->kv()).List("again"));
  EXPECT_EQ(entries.size(), 2u);
}

// A lease taken over mid-sync stops the run before its next cluster write, and the stale
// worker writes no status and no history.
TEST_F(ApplierIntegrationTest, LostLeaseStopsEveryWrite) {
  service::StoredResource app = PutApp("fenced", "default", "{automated: {}}");
  Json objects = Json::array();
  for (int i = 0; i < 5; ++i) objects.push_back(ConfigMap("c" + std::to_string(i), "1"));
  v1::Event plan = Identified(Plan(app, "r1", objects), app, 1);
  // A short lease (renewed every 200 ms) and a 1.5 s apply of c1: another holder takes the
  // lease over meanwhile, and the next renewal finds out.
  ApplierOptions options{.emitter = "applier/fenced", .lease_ttl = absl::Milliseconds(600)};
  options.run.request_timeout = absl::Milliseconds(100);
  ApplierService applier(kube_.get(), &runtime_->kv(), &runtime_->blobs(), &runtime_->bus(),
                         options);
  InjectFault(emulator_.url(),
              R"({"method": "PATCH", "pathContains": "/configmaps/c1", "code": 0, "count": 1,
                  "delayMs": 1500})");
  std::thread thief([&] {
    absl::SleepFor(absl::Milliseconds(700));
    (void)runtime_->kv().Put(service::kLeasesBucket, "sync.fenced", "99999999999999 applier/other");
  });
  bus::Disposition d = applier.Handle(plan, Delivery(plan));
  thief.join();
  EXPECT_EQ(d.kind(), bus::Disposition::Kind::kNak) << "a lost lease hands the item back";
  EXPECT_OK(Get("ConfigMap", "default", "c0").status());
  EXPECT_TRUE(absl::IsNotFound(Get("ConfigMap", "default", "c2").status()))
      << "no cluster write after the lease was lost";
  EXPECT_TRUE(absl::IsNotFound(
      service::HistoryStore(&runtime_->kv()).Get("fenced", plan.plan_ready().sync_id()).status()));
  EXPECT_EQ(Status("fenced").applied_seq(), 0);
}

TEST_F(ApplierIntegrationTest, ServerErrorsAreRetriedInsideTheSync) {
  service::StoredResource app = PutApp("flaky", "default", "{automated: {}}");
  InjectFault(emulator_.url(),
              R"({"method": "PATCH", "pathContains": "/configmaps/flaky-cm", "code": 500,
                  "count": 1})");
  InjectFault(emulator_.url(),
              R"({"method": "PATCH", "pathContains": "/configmaps/flaky-cm", "code": 503,
                  "count": 1})");
  v1::Event plan = Plan(app, "r1", Json::array({ConfigMap("flaky-cm", "1")}));
  bus::Disposition d = applier_->Handle(plan, Delivery(plan));
  EXPECT_EQ(d.kind(), bus::Disposition::Kind::kAck) << d.error();
  ASSERT_TRUE(broadcasts_.WaitFor("sync.succeeded", 1));
  EXPECT_OK(Get("ConfigMap", "default", "flaky-cm").status());
}

// Cascade deletion is finalizer-style: the application stays (deleting) until every object it
// tracks is pruned, says why while a prune fails, and only then goes with its status and
// history.
TEST_F(ApplierIntegrationTest, CascadeDeletionPrunesThenRemovesTheApplication) {
  service::StoredResource app = PutApp("del", "default", "{automated: {prune: true}}");
  v1::Event sync = Plan(app, "r1", Json::array({ConfigMap("del-a", "1"), ConfigMap("del-b", "1")}));
  ASSERT_EQ(applier_->Handle(sync, Delivery(sync)).kind(), bus::Disposition::Kind::kAck);
  ASSERT_OK(Get("ConfigMap", "default", "del-b").status());
  service::ResourceStore resources(&runtime_->kv());
  ASSERT_OK_AND_ASSIGN(service::StoredResource marked,
                       resources.MarkDeleting("Application", "del", absl::Now()));
  EXPECT_TRUE(service::IsDeleting(marked));
  EXPECT_EQ(marked.spec_digest, app.spec_digest);
  EXPECT_THAT(resources.Put(app.object).status(), StatusIs(absl::StatusCode::kFailedPrecondition));

  // The planner plans the prune of everything the application tracks.
  const size_t before = applies_.Events("plan.ready").size();
  v1::Event deleted = service::NewEvent("app.changed", "del", "", "api/test");
  deleted.set_id(service::EventId("app.changed", "del", "", app.spec_digest, "deleted-r1"));
  deleted.mutable_app_changed()->set_reason(v1::AppChanged::REASON_DELETED);
  deleted.mutable_app_changed()->set_spec_digest(marked.spec_digest);
  deleted.mutable_app_changed()->set_object_json(marked.object.dump());
  ASSERT_EQ(planner_->Handle(deleted, Delivery(deleted)).kind(), bus::Disposition::Kind::kAck);
  ASSERT_TRUE(applies_.WaitFor("plan.ready", before + 1));
  const v1::Event prune = applies_.Events("plan.ready").back();
  EXPECT_EQ(prune.plan_ready().delete_application_uid(), app.uid);
  EXPECT_EQ(prune.plan_ready().objects_size(), 2);
  const v1::AppStatus status = Status("del");
  const v1::Condition* deleting = service::FindCondition(status, "Deleting");
  ASSERT_NE(deleting, nullptr);
  EXPECT_EQ(deleting->reason(), "Pruning");

  // One object cannot be deleted: the application stays, deleting, and names it.
  InjectFault(emulator_.url(),
              R"({"method": "DELETE", "pathContains": "/configmaps/del-b", "code": 500,
                  "count": 100})");
  bus::Disposition d = applier_->Handle(prune, Delivery(prune));
  EXPECT_EQ(d.kind(), bus::Disposition::Kind::kNak) << "retried by redelivery";
  EXPECT_TRUE(absl::IsNotFound(Get("ConfigMap", "default", "del-a").status()));
  EXPECT_OK(Get("ConfigMap", "default", "del-b").status());
  ASSERT_OK(resources.Get("Application", "del").status());
  EXPECT_THAT(Status("del").message(), HasSubstr("del-b"));
  EXPECT_THAT(Status("del").message(), HasSubstr("deletion of application del is stuck"));
  ASSERT_TRUE(broadcasts_.WaitFor("sync.failed", 1));

  // The cluster recovers: the redelivery prunes the rest and removes the application.
  httplib::Client(emulator_.url()).Delete("/emulator/v1/faults");
  d = applier_->Handle(prune, Delivery(prune, 2));
  EXPECT_EQ(d.kind(), bus::Disposition::Kind::kAck) << d.error();
  EXPECT_TRUE(absl::IsNotFound(Get("ConfigMap", "default", "del-b").status()));
  EXPECT_THAT(resources.Get("Application", "del").status(), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(runtime_->kv().Get(service::kStatusBucket, service::StatusKey("del")).status(),
              StatusIs(absl::StatusCode::kNotFound));
  ASSERT_OK_AND_ASSIGN(std::vector<service::HistoryEntry> history,
                       service::HistoryStore(&runtime_->kv()).List("del"));
  EXPECT_TRUE(history.empty());
  ASSERT_TRUE(broadcasts_.WaitFor("app.changed", 1));
  EXPECT_THAT(broadcasts_.Events("app.changed").back().message(), HasSubstr("2 objects pruned"));
  // Late: the prune plan delivered once more finds nothing to do and re-creates nothing.
  d = applier_->Handle(prune, Delivery(prune, 3));
  EXPECT_EQ(d.kind(), bus::Disposition::Kind::kAck);
  EXPECT_THAT(runtime_->kv().Get(service::kStatusBucket, service::StatusKey("del")).status(),
              StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(ApplierIntegrationTest, ConflictFailsTheObjectWithTheClusterMessage) {
  service::StoredResource app = PutApp("conflicted", "default", "{automated: {}}");
  InjectFault(emulator_.url(),
              R"({"method": "PATCH", "pathContains": "/configmaps/taken", "code": 409,
                  "count": 10})");
  v1::Event plan = Plan(app, "r1", Json::array({ConfigMap("taken", "1")}));
  EXPECT_EQ(applier_->Handle(plan, Delivery(plan)).kind(), bus::Disposition::Kind::kAck);
  ASSERT_TRUE(broadcasts_.WaitFor("sync.failed", 1));
  v1::Event failed = broadcasts_.Events("sync.failed")[0];
  EXPECT_THAT(failed.sync_finished().error(), HasSubstr("taken"));
  EXPECT_THAT(failed.sync_finished().error(), HasSubstr("modified"));
  EXPECT_NE(Status("conflicted").sync(), v1::SYNC_STATUS_CODE_SYNCED);
}

TEST_F(ApplierIntegrationTest, InvalidObjectFailsTheSyncNamingIt) {
  service::StoredResource app = PutApp("bad", "default", "{automated: {}}");
  v1::Event plan =
      Plan(app, "r1", Json::array({ConfigMap("fine", "1"), ConfigMap("Not_Valid", "1")}));
  ASSERT_EQ(applier_->Handle(plan, Delivery(plan)).kind(), bus::Disposition::Kind::kAck);
  ASSERT_TRUE(broadcasts_.WaitFor("sync.failed", 1));
  v1::Event failed = broadcasts_.Events("sync.failed")[0];
  EXPECT_THAT(failed.sync_finished().error(), HasSubstr("Not_Valid"));
  EXPECT_THAT(failed.sync_finished().error(), HasSubstr("bad"));
  bool named = false;
  for (const v1::ObjectResult& r : failed.sync_finished().results()) {
    if (r.ref().name() == "Not_Valid") {
      EXPECT_EQ(r.result(), "failed");
      named = true;
    }
  }
  EXPECT_TRUE(named);
  v1::AppStatus s = Status("bad");
  EXPECT_NE(s.sync(), v1::SYNC_STATUS_CODE_SYNCED);
  EXPECT_EQ(s.last_applied_revision(), "");
  const v1::Condition* ready = service::FindCondition(s, "Ready");
  ASSERT_NE(ready, nullptr);
  EXPECT_FALSE(ready->status());
  ASSERT_OK_AND_ASSIGN(
      service::HistoryEntry h,
      service::HistoryStore(&runtime_->kv()).Get("bad", plan.plan_ready().sync_id()));
  EXPECT_FALSE(h.succeeded);
}

// A plan whose manifests expired (re-driven a day later): the sync fails saying so and a new
// generation is asked for, which renders the application again.
TEST_F(ApplierIntegrationTest, ExpiredManifestsFailTheSyncAndAskForARender) {
  service::StoredResource app = PutApp("late", "default", "{automated: {}}");
  EventCollector poll_stage;
  ASSERT_OK(poll_stage.Start(runtime_->bus(), service::kWorkStream, service::kStagePoll, ""));
  v1::Event plan = Plan(app, "r1", Json::array({ConfigMap("c", "1")}));
  plan.mutable_plan_ready()->mutable_manifests()->set_blob_digest("sha256:" + std::string(64, '0'));
  ASSERT_EQ(applier_->Handle(plan, Delivery(plan)).kind(), bus::Disposition::Kind::kAck);
  ASSERT_TRUE(broadcasts_.WaitFor("sync.failed", 1));
  EXPECT_THAT(broadcasts_.Events("sync.failed")[0].sync_finished().error(),
              HasSubstr("re-rendering as a new generation"));
  ASSERT_TRUE(poll_stage.WaitFor("sync.requested", 1));
  const v1::Event asked = poll_stage.Events("sync.requested")[0];
  EXPECT_EQ(asked.application(), "late");
  EXPECT_TRUE(asked.sync_requested().automated());
  EXPECT_THAT(Get("ConfigMap", "default", "c").status(), StatusIs(absl::StatusCode::kNotFound));
  poll_stage.Stop();
}

// Through the stage consumers: app.rendered on stage plan → planner → plan.ready on stage
// apply → applier → sync.succeeded, for 20 objects (10 ConfigMaps, 5 Services, 5
// Deployments). Prints the latency; the budget is generous for sanitizer builds.
TEST_F(ApplierIntegrationTest, TwentyObjectsRenderedToAppliedThroughTheStages) {
  auto plan_sub = runtime_->ConsumeStage(
      service::kStagePlan,
      [this](const v1::Event& e, const bus::Message& m) { return planner_->Handle(e, m); });
  ASSERT_OK(plan_sub.status());
  auto apply_sub = runtime_->ConsumeStage(
      service::kStageApply,
      [this](const v1::Event& e, const bus::Message& m) { return applier_->Handle(e, m); });
  ASSERT_OK(apply_sub.status());

  service::StoredResource app =
      PutApp("big", "big", "{automated: {prune: true}, syncOptions: [CreateNamespace=true]}");
  std::vector<absl::Duration> latencies;
  for (int round = 0; round < 3; ++round) {
    Json objects = Json::array();
    for (int i = 0; i < 10; ++i) {
      objects.push_back(ConfigMap(strings::Cat("cm-", i), strings::Cat("v", round)));
    }
    for (int i = 0; i < 5; ++i) {
      objects.push_back(
          Json{{"apiVersion", "v1"},
               {"kind", "Service"},
               {"metadata", {{"name", strings::Cat("svc-", i)}}},
               {"spec", {{"selector", {{"app", "web"}}}, {"ports", {{{"port", 80 + round}}}}}}});
      Json deploy = Deployment(strings::Cat("web-", i));
      deploy["spec"]["template"]["metadata"]["labels"]["round"] = strings::Cat(round);
      objects.push_back(deploy);
    }
    v1::Event rendered = Rendered(app, strings::Cat("rev", round), objects);
    size_t before = broadcasts_.Events("sync.succeeded").size();
    absl::Time start = absl::Now();
    ASSERT_OK(service::Emit(runtime_->bus(), rendered, service::kStagePlan));
    ASSERT_TRUE(broadcasts_.WaitFor("sync.succeeded", before + 1, absl::Seconds(30)))
        << "round " << round << ": " << Status("big").message();
    latencies.push_back(absl::Now() - start);
    v1::AppStatus s = Status("big");
    EXPECT_EQ(s.last_applied_revision(), strings::Cat("rev", round));
    EXPECT_EQ(s.health(), v1::HEALTH_STATUS_CODE_HEALTHY) << s.message();
  }
  for (size_t i = 0; i < latencies.size(); ++i) {
    std::cout << "round " << i << ": rendered → sync.succeeded in "
              << absl::FormatDuration(latencies[i]) << "\n";
  }
  std::sort(latencies.begin(), latencies.end());
  EXPECT_LT(latencies[1], absl::Seconds(5));
  (*plan_sub)->Stop();
  (*apply_sub)->Stop();
}

}  // namespace
}  // namespace driftless::applier
