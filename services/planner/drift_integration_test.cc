// The live cache and drift detection against a real nats-server and the real kube emulator:
// the cache follows labelled objects through their watch; a planned, applied application
// whose object is edited by another field manager is reported drifted (status, app.drifted)
// and, with selfHeal, asks for a new desired generation; an edit reverted by hand turns it
// Synced again.
#include <thread>

#include "common/manifest/object.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/common/identity.h"
#include "services/common/testing/pipeline_env.h"
#include "services/planner/drift_detector.h"
#include "services/planner/planner_service.h"

namespace driftless::planner {
namespace {

using manifest::Json;
using service::testing::PipelineTest;
using ::testing::HasSubstr;

// Polls `condition` every 10 ms until it holds or `timeout` passes.
bool Eventually(const std::function<bool()>& condition,
                absl::Duration timeout = absl::Seconds(20)) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (condition()) return true;
    absl::SleepFor(absl::Milliseconds(10));
  }
  return condition();
}

Json Labelled(Json object, const std::string& application) {
  object["metadata"]["annotations"]["driftless.dev/application"] = application;
  object["metadata"]["labels"]["driftless.dev/application"] = application;
  return object;
}

class LiveCacheTest : public PipelineTest {};

TEST_F(LiveCacheTest, FollowsLabelledObjectsThroughTheirWatch) {
  std::mutex mu;
  std::map<std::string, int> touched;
  LiveCache cache(kube_.get(), [&](std::string_view app) {
    std::lock_guard lock(mu);
    ++touched[std::string(app)];
  });
  const KindRef kind{"v1", "ConfigMap"};
  auto touches = [&](const std::string& app) {
    std::lock_guard lock(mu);
    return touched[app];
  };
  Json mine = ConfigMap("mine", "1");
  mine["metadata"]["namespace"] = "default";
  ASSERT_OK(kube_->Apply(Labelled(mine, "web"), {.field_manager = "driftless"}).status());
  Json other = ConfigMap("unlabelled", "1");
  other["metadata"]["namespace"] = "default";
  ASSERT_OK(kube_->Apply(other, {.field_manager = "someone"}).status());

  cache.Track(kind);
  ASSERT_TRUE(Eventually([&] { return cache.Synced(kind); }));
  const std::string key = manifest::ObjectKey(mine);
  ASSERT_TRUE(cache.Get(kind, key).has_value());
  EXPECT_EQ((*cache.Get(kind, key))["data"]["key"], "1");
  EXPECT_FALSE(cache.Get(kind, manifest::ObjectKey(other)).has_value());
  EXPECT_EQ(cache.TrackedOf(kind, "web").size(), 1u);
  EXPECT_TRUE(cache.TrackedOf(kind, "other-app").empty());

  // An edit arrives through the watch and is reported for its application.
  const int before = touches("web");
  Json edited = mine;
  edited["data"]["key"] = "2";
  ASSERT_OK(kube_->Apply(edited, {.field_manager = "kubectl-edit", .force = true}).status());
  ASSERT_TRUE(Eventually([&] {
    std::optional<Json> live = cache.Get(kind, key);
    return live && (*live)["data"]["key"] == "2";
  }));
  EXPECT_GT(touches("web"), before);

  ASSERT_OK(kube_->Delete(kube::ObjectRef::Of(mine), {}));
  ASSERT_TRUE(Eventually([&] { return !cache.Get(kind, key).has_value(); }));
  EXPECT_EQ(cache.size(), 0u);
}

TEST_F(LiveCacheTest, AKindTheClusterDoesNotServeIsSyncedAndEmpty) {
  LiveCache cache(kube_.get(), nullptr);
  const KindRef kind{"example.com/v1", "Widget"};
  cache.Track(kind);
  ASSERT_TRUE(Eventually([&] { return cache.Synced(kind); }));
  EXPECT_TRUE(cache.TrackedOf(kind, "web").empty());
}

class DriftDetectorTest : public PipelineTest {
 protected:
  void SetUp() override {
    PipelineTest::SetUp();
    if (HasFatalFailure()) return;
    detector_ = std::make_unique<DriftDetector>(
        kube_.get(), &runtime_->kv(), &runtime_->blobs(), &runtime_->bus(), "planner/test",
        DriftDetector::Options{.confirm = absl::Milliseconds(50),
                               .settle = absl::Milliseconds(20)});
    planner_ =
        std::make_unique<PlannerService>(kube_.get(), &runtime_->kv(), &runtime_->blobs(),
                                         &runtime_->bus(), "planner/test", &detector_->cache());
  }
  void TearDown() override {
    if (thread_.joinable()) {
      thread_.request_stop();
      thread_.join();
    }
    planner_.reset();
    detector_.reset();
    PipelineTest::TearDown();
  }

  // Plans generation 1 of `name` over objects already applied (so it is Synced and settled)
  // and starts the detector.
  void PlanApplied(const std::string& name, const std::string& policy, const Json& objects) {
    service::StoredResource app = PutApp(name, "default", policy);
    for (Json o : objects) {
      o["metadata"]["namespace"] = "default";
      ASSERT_OK(
          kube_->Apply(Labelled(o, name), {.field_manager = "driftless", .force = true}).status());
    }
    v1::Event rendered = Rendered(app, "rev1", objects);
    service::SetIdentity(rendered, {.uid = app.uid, .seq = 1});
    ASSERT_EQ(planner_->Handle(rendered, Delivery(rendered)).kind(), bus::Disposition::Kind::kAck);
    v1::AppStatus s = Status(name);
    ASSERT_EQ(s.sync(), v1::SYNC_STATUS_CODE_SYNCED);
    ASSERT_EQ(s.applied_seq(), 1);
    ASSERT_FALSE(s.desired_digest().empty());
    thread_ = std::jthread([this](std::stop_token stop) { EXPECT_OK(detector_->Run(stop)); });
  }

  void Edit(const std::string& name, const std::string& value) {
    Json edit = {{"apiVersion", "v1"},
                 {"kind", "ConfigMap"},
                 {"metadata", {{"name", name}, {"namespace", "default"}}},
                 {"data", {{"key", value}}}};
    ASSERT_OK(kube_->Apply(edit, {.field_manager = "kubectl-edit", .force = true}).status());
  }

  std::unique_ptr<DriftDetector> detector_;
  std::unique_ptr<PlannerService> planner_;
  std::jthread thread_;
};

TEST_F(DriftDetectorTest, AnEditIsReportedAndSelfHealAsksForANewGeneration) {
  PlanApplied("heal", "{automated: {prune: true, selfHeal: true}}",
              Json::array({ConfigMap("heal-a", "1"), ConfigMap("heal-b", "2")}));
  // In sync: nothing reported while the cache fills and the first checks run.
  ASSERT_TRUE(Eventually([&] { return detector_->cache().size() == 2; }));
  ASSERT_OK_AND_ASSIGN(bool drifted, detector_->CheckNowForTest("heal"));
  EXPECT_FALSE(drifted);

  Edit("heal-a", "edited");
  ASSERT_TRUE(broadcasts_.WaitFor(service::event_type::kAppDrifted, 1));
  v1::Event event = broadcasts_.Events(service::event_type::kAppDrifted)[0];
  EXPECT_EQ(event.application(), "heal");
  EXPECT_EQ(event.desired_seq(), 1);
  ASSERT_EQ(event.app_drifted().objects_size(), 1);
  EXPECT_EQ(event.app_drifted().objects(0).name(), "heal-a");
  EXPECT_THAT(event.message(), HasSubstr("v1 ConfigMap default/heal-a (/data/key)"));

  v1::AppStatus s = Status("heal");
  EXPECT_EQ(s.sync(), v1::SYNC_STATUS_CODE_OUT_OF_SYNC);
  const v1::Condition* c = service::FindCondition(s, service::kDriftedCondition);
  ASSERT_NE(c, nullptr);
  EXPECT_TRUE(c->status());
  for (const v1::ResourceStatus& r : s.resources()) {
    if (r.ref().name() == "heal-a") {
      EXPECT_EQ(r.sync(), v1::SYNC_STATUS_CODE_OUT_OF_SYNC);
      EXPECT_EQ(r.message(), "drifted: /data/key");
    } else {
      EXPECT_EQ(r.sync(), v1::SYNC_STATUS_CODE_SYNCED) << r.ref().name();
    }
  }
  // Self-heal: exactly one new generation asked for (the applier is not running here, so
  // the drift stays; a second heal waits for the first one's generation).
  ASSERT_TRUE(broadcasts_.WaitFor(service::event_type::kSyncRequested, 1));
  v1::Event heal = broadcasts_.Events(service::event_type::kSyncRequested)[0];
  EXPECT_EQ(heal.application(), "heal");
  EXPECT_TRUE(heal.sync_requested().automated());
  Edit("heal-a", "edited again");
  ASSERT_TRUE(broadcasts_.WaitFor(service::event_type::kAppDrifted, 1));
  absl::SleepFor(absl::Milliseconds(300));  // room for a wrong second request to show
  EXPECT_EQ(broadcasts_.Events(service::event_type::kSyncRequested).size(), 1u);
}

TEST_F(DriftDetectorTest, WithoutSelfHealDriftIsReportedUntilRevertedByHand) {
  PlanApplied("report", "{automated: {prune: true}}", Json::array({ConfigMap("report-a", "1")}));
  ASSERT_TRUE(Eventually([&] { return detector_->cache().size() == 1; }));
  Edit("report-a", "edited");
  ASSERT_TRUE(broadcasts_.WaitFor(service::event_type::kAppDrifted, 1));
  ASSERT_TRUE(
      Eventually([&] { return Status("report").sync() == v1::SYNC_STATUS_CODE_OUT_OF_SYNC; }));
  EXPECT_TRUE(broadcasts_.Events(service::event_type::kSyncRequested).empty());

  Edit("report-a", "1");  // the value git has
  ASSERT_TRUE(Eventually([&] { return Status("report").sync() == v1::SYNC_STATUS_CODE_SYNCED; }));
  v1::AppStatus s = Status("report");
  const v1::Condition* c = service::FindCondition(s, service::kDriftedCondition);
  ASSERT_NE(c, nullptr);
  EXPECT_FALSE(c->status());
  EXPECT_EQ(s.resources(0).message(), "");
  EXPECT_EQ(s.message(), "");
  EXPECT_TRUE(broadcasts_.Events(service::event_type::kSyncRequested).empty());
}

TEST_F(DriftDetectorTest, AnUnlabelledCreateOnlyObjectThatExistsIsNotDeleted) {
  // Created before driftless (no label, so not in the cache), kept as is (CreateOnly=true).
  Json existing = ConfigMap("pre-existing", "theirs");
  existing["metadata"]["namespace"] = "default";
  ASSERT_OK(kube_->Apply(existing, {.field_manager = "someone", .force = true}).status());
  Json desired = ConfigMap("pre-existing", "ours");
  desired["metadata"]["annotations"]["driftless.dev/sync-options"] = "CreateOnly=true";
  service::StoredResource app = PutApp("keep", "default", "{automated: {selfHeal: true}}");
  v1::Event rendered = Rendered(app, "rev1", Json::array({desired}));
  service::SetIdentity(rendered, {.uid = app.uid, .seq = 1});
  ASSERT_EQ(planner_->Handle(rendered, Delivery(rendered)).kind(), bus::Disposition::Kind::kAck);
  ASSERT_EQ(Status("keep").sync(), v1::SYNC_STATUS_CODE_SYNCED);
  thread_ = std::jthread([this](std::stop_token stop) { EXPECT_OK(detector_->Run(stop)); });
  ASSERT_TRUE(Eventually([&] { return detector_->cache().Synced({"v1", "ConfigMap"}); }));
  ASSERT_OK_AND_ASSIGN(bool drifted, detector_->CheckNowForTest("keep"));
  EXPECT_FALSE(drifted);  // read from the cluster, not taken for deleted
  EXPECT_TRUE(broadcasts_.Events(service::event_type::kAppDrifted).empty());
  EXPECT_TRUE(broadcasts_.Events(service::event_type::kSyncRequested).empty());
  // The application is judged all along: deleting the object is drift.
  ASSERT_OK(kube_->Delete(kube::ObjectRef::Of(existing), {}));
  ASSERT_TRUE(Eventually([&] {
    absl::StatusOr<bool> now = detector_->CheckNowForTest("keep");
    return now.ok() && *now;
  }));
}

TEST_F(DriftDetectorTest, ADeletedObjectIsDrift) {
  PlanApplied("gone", "{automated: {prune: true, selfHeal: true}}",
              Json::array({ConfigMap("gone-a", "1")}));
  ASSERT_TRUE(Eventually([&] { return detector_->cache().size() == 1; }));
  ASSERT_OK(kube_->Delete(
      {.api_version = "v1", .kind = "ConfigMap", .namespace_ = "default", .name = "gone-a"}, {}));
  ASSERT_TRUE(broadcasts_.WaitFor(service::event_type::kAppDrifted, 1));
  EXPECT_THAT(broadcasts_.Events(service::event_type::kAppDrifted)[0].message(),
              HasSubstr("v1 ConfigMap default/gone-a (deleted)"));
  ASSERT_TRUE(broadcasts_.WaitFor(service::event_type::kSyncRequested, 1));
}

}  // namespace
}  // namespace driftless::planner
