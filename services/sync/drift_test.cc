#include "services/sync/drift.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/manifest/object.h"
#include "common/testing/status_matchers.h"

namespace driftless::sync {
namespace {

using manifest::Json;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

Json Y(std::string_view yaml) {
  auto v = manifest::ParseYaml(yaml, "test");
  EXPECT_TRUE(v.ok()) << v.status();
  return v.ok() ? *v : Json();
}

constexpr char kDeploy[] = R"(
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: prod}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: "nginx:1.25"}]
)";

constexpr char kConfig[] =
    "apiVersion: v1\nkind: ConfigMap\n"
    "metadata: {name: config, namespace: prod}\ndata: {color: blue}\n";

// The object as the server holds it after `manager` applied `applied` onto `live`.
Json Applied(const Json& live, const Json& applied, std::string_view manager) {
  merge::ApplyRequest req{.live = live,
                          .applied = applied,
                          .manager = std::string(manager),
                          .force = true,
                          .now = "2026-01-01T00:00:00Z"};
  auto out = merge::ServerSideApply(req);
  EXPECT_TRUE(out.ok()) << out.status();
  return out.ok() ? out->object : Json();
}

struct Cluster {
  std::map<std::string, Json> objects;
  LiveLookup Lookup() const {
    return [this](const Json& desired) -> std::optional<Json> {
      auto it = objects.find(manifest::ObjectKey(desired));
      if (it == objects.end()) return std::nullopt;
      return it->second;
    };
  }
  void Put(const Json& o) { objects[manifest::ObjectKey(o)] = o; }
};

TEST(FindDrift, AppliedObjectsWithServerDefaultsAndStatusDoNotDrift) {
  Cluster cluster;
  Json deploy = Applied(Json(), Y(kDeploy), "driftless");
  deploy["spec"]["strategy"] = {{"type", "RollingUpdate"}};  // defaulted by the server
  deploy["status"] = {{"replicas", 2}};
  cluster.Put(deploy);
  cluster.Put(Applied(Json(), Y(kConfig), "driftless"));
  ASSERT_OK_AND_ASSIGN(auto drift, FindDrift({Y(kDeploy), Y(kConfig)}, cluster.Lookup(), {}));
  EXPECT_TRUE(drift.empty()) << DriftSummary("web", drift);
}

TEST(FindDrift, AFieldTakenByKubectlEditIsDriftNamingTheField) {
  Cluster cluster;
  Json live = Applied(Json(), Y(kDeploy), "driftless");
  live = Applied(live,
                 Y("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: prod}\n"
                   "spec: {replicas: 5}\n"),
                 "kubectl-edit");
  cluster.Put(live);
  ASSERT_OK_AND_ASSIGN(auto drift, FindDrift({Y(kDeploy)}, cluster.Lookup(), {}));
  ASSERT_EQ(drift.size(), 1u);
  EXPECT_FALSE(drift[0].deleted);
  EXPECT_THAT(drift[0].paths, ElementsAre("/spec/replicas"));
  EXPECT_EQ(DriftSummary("web", drift),
            "web: 1 object drifted from the desired state: apps/v1 Deployment prod/web "
            "(/spec/replicas)");
}

TEST(FindDrift, FieldsTheDesiredObjectDoesNotSetAreNotDrift) {
  Cluster cluster;
  Json live = Applied(Json(), Y(kConfig), "driftless");
  live["metadata"]["labels"]["team"] = "added-by-someone";
  live["data"]["extra"] = "another manager's key";
  cluster.Put(live);
  ASSERT_OK_AND_ASSIGN(auto drift, FindDrift({Y(kConfig)}, cluster.Lookup(), {}));
  EXPECT_TRUE(drift.empty()) << DriftSummary("web", drift);
}

TEST(FindDrift, ADeletedObjectIsDriftAndIgnoreDifferencesIsHonoured) {
  Cluster cluster;
  Json live = Applied(Json(), Y(kDeploy), "driftless");
  live = Applied(live,
                 Y("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: prod}\n"
                   "spec: {replicas: 5}\n"),
                 "hpa");
  cluster.Put(live);
  DiffOptions options;
  options.ignore.push_back({.kind = "Deployment", .json_pointers = {"/spec/replicas"}});
  ASSERT_OK_AND_ASSIGN(auto drift, FindDrift({Y(kDeploy), Y(kConfig)}, cluster.Lookup(), options));
  ASSERT_EQ(drift.size(), 1u);
  EXPECT_TRUE(drift[0].deleted);
  EXPECT_EQ(drift[0].key, manifest::ObjectKey(Y(kConfig)));
  EXPECT_EQ(DriftDetail(drift[0]), "deleted");
  EXPECT_THAT(DriftSummary("web", drift), HasSubstr("v1 ConfigMap prod/config (deleted)"));
}

TEST(FindDrift, CreateOnlyObjectsDriftOnlyByBeingDeleted) {
  Json crd = Y(kConfig);
  crd["metadata"]["annotations"]["driftless.dev/sync-options"] = "Prune=false,CreateOnly=true";
  Cluster cluster;
  Json live = Applied(Json(), crd, "driftless");
  live["data"]["color"] = "green";
  cluster.Put(live);
  ASSERT_OK_AND_ASSIGN(auto drift, FindDrift({crd}, cluster.Lookup(), {}));
  EXPECT_TRUE(drift.empty());
  cluster.objects.clear();
  ASSERT_OK_AND_ASSIGN(drift, FindDrift({crd}, cluster.Lookup(), {}));
  EXPECT_EQ(drift.size(), 1u);
}

TEST(FindDrift, SignatureTellsDriftsApart) {
  ObjectDrift a{.key = "k", .paths = {"/spec/replicas"}};
  ObjectDrift b{.key = "k", .paths = {"/spec/paused"}};
  ObjectDrift gone{.key = "k", .deleted = true};
  EXPECT_EQ(DriftSignature({a}), DriftSignature({a}));
  EXPECT_NE(DriftSignature({a}), DriftSignature({b}));
  EXPECT_NE(DriftSignature({a}), DriftSignature({gone}));
}

TEST(DiffLive, ShowsChangedMissingAndPrunedObjectsWithSecretValuesMasked) {
  Cluster cluster;
  Json deploy = Applied(Json(), Y(kDeploy), "driftless");
  deploy =
      Applied(deploy,
              Y("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: prod}\n"
                "spec: {replicas: 5}\n"),
              "kubectl-edit");
  cluster.Put(deploy);
  Json secret =
      Y("apiVersion: v1\nkind: Secret\nmetadata: {name: creds, namespace: prod}\n"
        "data: {password: c2VjcmV0LWdpdA==}\n");
  Json live_secret = Applied(Json(), secret, "driftless");
  live_secret["data"]["password"] = "c2VjcmV0LWxpdmU=";
  cluster.Put(live_secret);
  Json old = Applied(Json(),
                     Y("apiVersion: v1\nkind: ConfigMap\n"
                       "metadata: {name: old, namespace: prod}\ndata: {a: b}\n"),
                     "driftless");
  ASSERT_OK_AND_ASSIGN(LiveDiff diff, DiffLive({Y(kDeploy), Y(kConfig), secret}, cluster.Lookup(),
                                               {deploy, old}, /*prune=*/true, {}));
  EXPECT_EQ(diff.differing, 4);
  EXPECT_THAT(diff.text, HasSubstr("===== apps/v1 Deployment prod/web (differs) ====="));
  EXPECT_THAT(diff.text, HasSubstr("-  replicas: 5\n+  replicas: 2"));
  EXPECT_THAT(diff.text, HasSubstr("===== v1 ConfigMap prod/config (missing) ====="));
  EXPECT_THAT(diff.text, HasSubstr("===== v1 ConfigMap prod/old (would be pruned) ====="));
  EXPECT_THAT(diff.text, HasSubstr("===== v1 Secret prod/creds (differs) ====="));
  EXPECT_THAT(diff.text, Not(HasSubstr("c2VjcmV0")));

  Cluster same;
  same.Put(Applied(Json(), Y(kConfig), "driftless"));
  ASSERT_OK_AND_ASSIGN(diff, DiffLive({Y(kConfig)}, same.Lookup(), {}, true, {}));
  EXPECT_EQ(diff.differing, 0);
  EXPECT_EQ(diff.text, "");
}

const HealPolicy kPolicy{.confirm = absl::Milliseconds(100),
                         .backoff = absl::Seconds(1),
                         .backoff_max = absl::Minutes(5),
                         .window = absl::Minutes(2),
                         .timeout = absl::Seconds(30)};
const absl::Time kT0 = absl::FromUnixSeconds(1'000'000);

TEST(NextDriftStep, ConfirmsReportsOnceAndHealsOncePerGeneration) {
  DriftMemory m;
  DriftStep s = NextDriftStep(m, "a", 1, true, kT0, kPolicy);
  EXPECT_FALSE(s.report);
  EXPECT_FALSE(s.heal);
  EXPECT_EQ(s.recheck, kT0 + kPolicy.confirm);  // seen once: confirm first
  s = NextDriftStep(m, "a", 1, true, kT0 + absl::Milliseconds(100), kPolicy);
  EXPECT_TRUE(s.report);
  EXPECT_TRUE(s.heal);
  // Same drift again before the heal's generation is planned: nothing new.
  s = NextDriftStep(m, "a", 1, true, kT0 + absl::Seconds(1), kPolicy);
  EXPECT_FALSE(s.report);
  EXPECT_FALSE(s.heal);
  EXPECT_EQ(s.recheck, kT0 + absl::Milliseconds(100) + kPolicy.timeout);
  // In sync again: the end of the drift is reported once.
  EXPECT_TRUE(NextDriftStep(m, "", 2, true, kT0 + absl::Seconds(2), kPolicy).report);
  EXPECT_FALSE(NextDriftStep(m, "", 2, true, kT0 + absl::Seconds(3), kPolicy).report);
}

TEST(NextDriftStep, WithoutSelfHealDriftIsOnlyReported) {
  DriftMemory m;
  NextDriftStep(m, "a", 1, false, kT0, kPolicy);
  DriftStep s = NextDriftStep(m, "a", 1, false, kT0 + absl::Seconds(1), kPolicy);
  EXPECT_TRUE(s.report);
  EXPECT_FALSE(s.heal);
  EXPECT_FALSE(s.recheck.has_value());
}

TEST(NextDriftStep, FightingControllersBackOffPastTheWindowAndStartOverWhenCalm) {
  DriftMemory m;
  absl::Time now = kT0;
  std::vector<absl::Duration> waits;
  absl::Time last = absl::InfinitePast();
  for (int64_t seq = 1; waits.size() < 10; ++seq) {  // each heal's generation undone at once
    NextDriftStep(m, "a", seq, true, now, kPolicy);
    while (true) {
      DriftStep s = NextDriftStep(m, "a", seq, true, now, kPolicy);
      if (s.heal) break;
      ASSERT_TRUE(s.recheck.has_value());
      now = *s.recheck;
    }
    if (last != absl::InfinitePast()) waits.push_back(now - last);
    last = now;
    m.suspected.clear();  // the next generation's drift is seen anew
    m.reported.clear();
  }
  // 1 s, 2 s, 4 s ... keeps growing beyond the 2-minute window, capped at 5 minutes.
  EXPECT_GE(waits[0], absl::Seconds(1));
  for (size_t i = 1; i < waits.size(); ++i) EXPECT_GE(waits[i], waits[i - 1]);
  EXPECT_GE(waits.back(), absl::Minutes(5));
  EXPECT_LT(waits.back(), absl::Minutes(5) + absl::Seconds(1));
  // Calm for longer than the window plus the wait: the next heal is immediate.
  now += absl::Minutes(8);
  NextDriftStep(m, "a", 100, true, now, kPolicy);
  EXPECT_TRUE(NextDriftStep(m, "a", 100, true, now, kPolicy).heal);
}

TEST(HealDelay, FirstHealIsImmediateThenDoublesUpToTheCap) {
  const absl::Duration base = absl::Seconds(1), max = absl::Seconds(30);
  EXPECT_EQ(HealDelay(0, base, max), absl::ZeroDuration());
  EXPECT_EQ(HealDelay(1, base, max), absl::Seconds(1));
  EXPECT_EQ(HealDelay(2, base, max), absl::Seconds(2));
  EXPECT_EQ(HealDelay(4, base, max), absl::Seconds(8));
  EXPECT_EQ(HealDelay(40, base, max), absl::Seconds(30));
}

}  // namespace
}  // namespace driftless::sync
