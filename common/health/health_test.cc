// Unit tests for the health API and the rules the golden fixtures do not cover.
#include "common/health/health.h"

#include <sstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/manifest/manifest.h"

namespace driftless::health {
namespace {

using manifest::Json;

Json Yaml(std::string_view text) {
  absl::StatusOr<Json> j = manifest::ParseYaml(text, "inline.yaml");
  EXPECT_TRUE(j.ok()) << j.status();
  return j.ok() ? *j : Json();
}

std::optional<Health> Assess(std::string_view yaml) { return AssessHealth(Yaml(yaml)); }

// --- ordering, names --------------------------------------------------------------------

TEST(WorstTest, FollowsArgoCdOrder) {
  // gitops-engine healthOrder: Healthy < Suspended < Progressing < Missing < Degraded < Unknown
  const HealthCode order[] = {HealthCode::kHealthy,     HealthCode::kSuspended,
                              HealthCode::kProgressing, HealthCode::kMissing,
                              HealthCode::kDegraded,    HealthCode::kUnknown};
  for (size_t i = 0; i < std::size(order); ++i) {
    EXPECT_EQ(Severity(order[i]), static_cast<int>(i)) << Name(order[i]);
    for (size_t j = 0; j < std::size(order); ++j) {
      HealthCode expected = order[std::max(i, j)];
      EXPECT_EQ(Worst(order[i], order[j]), expected) << Name(order[i]) << " vs " << Name(order[j]);
    }
  }
}

TEST(WorstTest, FoldsAnApplication) {
  HealthCode app = HealthCode::kHealthy;
  for (HealthCode c : {HealthCode::kHealthy, HealthCode::kSuspended, HealthCode::kProgressing,
                       HealthCode::kHealthy}) {
    app = Worst(app, c);
  }
  EXPECT_EQ(app, HealthCode::kProgressing);
  EXPECT_EQ(Worst(app, HealthCode::kMissing), HealthCode::kMissing);
}

TEST(NameTest, Prints) {
  std::ostringstream os;
  os << Health{HealthCode::kDegraded, "boom"} << " / " << Health{HealthCode::kHealthy, ""};
  EXPECT_EQ(os.str(), "Degraded: boom / Healthy");
}

TEST(NameTest, RoundTrips) {
  for (HealthCode c : {HealthCode::kUnknown, HealthCode::kProgressing, HealthCode::kHealthy,
                       HealthCode::kDegraded, HealthCode::kSuspended, HealthCode::kMissing}) {
    EXPECT_EQ(ParseHealthCode(Name(c)), c);
  }
  EXPECT_EQ(Name(HealthCode::kProgressing), "Progressing");
  EXPECT_EQ(ParseHealthCode("healthy"), std::nullopt);
  EXPECT_EQ(ParseHealthCode(""), std::nullopt);
}

// --- dispatch ---------------------------------------------------------------------------

TEST(AssessHealthTest, KindsWithoutACheckHaveNoVerdict) {
  EXPECT_EQ(Assess("{apiVersion: v1, kind: ConfigMap, metadata: {name: a}, data: {x: y}}"),
            std::nullopt);
  EXPECT_EQ(Assess("{apiVersion: example.com/v1, kind: Widget, status: {phase: Ready}}"),
            std::nullopt);
  EXPECT_EQ(AssessHealth(Json::array()), std::nullopt);
  EXPECT_EQ(AssessHealth(Json("Deployment")), std::nullopt);
  EXPECT_EQ(AssessHealthOrHealthy(Yaml("{apiVersion: v1, kind: Secret}")),
            (Health{HealthCode::kHealthy, ""}));
}

TEST(AssessHealthTest, DeletionIsProgressingForEveryKind) {
  EXPECT_EQ(Assess("{apiVersion: v1, kind: ConfigMap, metadata: {name: a, "
                   "deletionTimestamp: '2024-01-01T00:00:00Z'}}"),
            (Health{HealthCode::kProgressing, "Pending deletion"}));
  EXPECT_EQ(Assess("{apiVersion: apps/v1, kind: Deployment, metadata: {name: a, "
                   "deletionTimestamp: '2024-01-01T00:00:00Z', "
                   "finalizers: [example.com/a, example.com/b]}}"),
            (Health{HealthCode::kProgressing,
                    "Pending deletion; blocked by finalizers: example.com/a, example.com/b"}));
  // An explicit null is not a deletion.
  EXPECT_EQ(Assess("{apiVersion: v1, kind: ConfigMap, metadata: {deletionTimestamp: null}}"),
            std::nullopt);
}

// --- built-in kinds: messages ------------------------------------------------------------

TEST(DeploymentTest, Messages) {
  EXPECT_EQ(Assess("{apiVersion: apps/v1, kind: Deployment, metadata: {name: w, generation: 3},"
                   " spec: {replicas: 2}, status: {observedGeneration: 2}}"),
            (Health{HealthCode::kProgressing,
                    "Waiting for rollout to finish: observed deployment generation less than "
                    "desired generation"}));
  EXPECT_EQ(Assess("{apiVersion: apps/v1, kind: Deployment, metadata: {name: w}, "
                   "spec: {paused: true}}"),
            (Health{HealthCode::kSuspended, "Deployment is paused"}));
  EXPECT_EQ(Assess("{apiVersion: apps/v1, kind: Deployment, metadata: {name: w, generation: 1},"
                   " spec: {replicas: 3}, status: {observedGeneration: 1, conditions: "
                   "[{type: Progressing, status: 'False', reason: ProgressDeadlineExceeded}]}}"),
            (Health{HealthCode::kDegraded, "Deployment \"w\" exceeded its progress deadline"}));
  EXPECT_EQ(Assess("{apiVersion: apps/v1, kind: Deployment, metadata: {generation: 1},"
                   " spec: {replicas: 3}, status: {observedGeneration: 1, replicas: 3, "
                   "updatedReplicas: 1}}"),
            (Health{HealthCode::kProgressing,
                    "Waiting for rollout to finish: 1 out of 3 new replicas have been "
                    "updated..."}));
  EXPECT_EQ(Assess("{apiVersion: apps/v1, kind: Deployment, metadata: {generation: 1},"
                   " spec: {replicas: 2}, status: {observedGeneration: 1, replicas: 3, "
                   "updatedReplicas: 2, availableReplicas: 2}}"),
            (Health{HealthCode::kProgressing,
                    "Waiting for rollout to finish: 1 old replicas are pending termination..."}));
  EXPECT_EQ(Assess("{apiVersion: apps/v1, kind: Deployment, metadata: {generation: 1},"
                   " spec: {replicas: 2}, status: {observedGeneration: 1, replicas: 2, "
                   "updatedReplicas: 2, availableReplicas: 1}}"),
            (Health{HealthCode::kProgressing,
                    "Waiting for rollout to finish: 1 of 2 updated replicas are available..."}));
  EXPECT_EQ(Assess("{apiVersion: apps/v1, kind: Deployment, metadata: {generation: 1},"
                   " spec: {replicas: 2}, status: {observedGeneration: 1, replicas: 2, "
                   "updatedReplicas: 2, availableReplicas: 2}}"),
            (Health{HealthCode::kHealthy, ""}));
}

TEST(ReplicaSetTest, ReplicaFailureIsDegraded) {
  EXPECT_EQ(Assess("{apiVersion: apps/v1, kind: ReplicaSet, spec: {replicas: 1}, status: "
                   "{conditions: [{type: ReplicaFailure, status: 'True', message: quota}]}}"),
            (Health{HealthCode::kDegraded, "quota"}));
  EXPECT_EQ(Assess("{apiVersion: apps/v1, kind: ReplicaSet, spec: {replicas: 2}, "
                   "status: {availableReplicas: 1}}")
                ->code,
            HealthCode::kProgressing);
}

TEST(JobTest, ResumedJobIsStillRunning) {
  // gitops-engine calls this Healthy (it counts Suspended=False as completion).
  EXPECT_EQ(Assess("{apiVersion: batch/v1, kind: Job, status: {conditions: "
                   "[{type: Suspended, status: 'False', message: resumed}]}}")
                ->code,
            HealthCode::kProgressing);
}

TEST(PvcTest, LostIsDegradedAndUnknownPhaseIsUnknown) {
  EXPECT_EQ(Assess("{apiVersion: v1, kind: PersistentVolumeClaim, status: {phase: Lost}}")->code,
            HealthCode::kDegraded);
  EXPECT_EQ(Assess("{apiVersion: v1, kind: PersistentVolumeClaim}")->code, HealthCode::kUnknown);
}

TEST(HpaTest, UnparseableV1AnnotationIsUnknown) {
  EXPECT_EQ(Assess("{apiVersion: autoscaling/v1, kind: HorizontalPodAutoscaler, metadata: "
                   "{annotations: {autoscaling.alpha.kubernetes.io/conditions: '[{'}}}")
                ->code,
            HealthCode::kUnknown);
}

TEST(CrdTest, EstablishedIsHealthy) {
  EXPECT_EQ(Assess("{apiVersion: apiextensions.k8s.io/v1, kind: CustomResourceDefinition, "
                   "status: {conditions: [{type: NamesAccepted, status: 'True'}, "
                   "{type: Established, status: 'True'}]}}"),
            (Health{HealthCode::kHealthy, "CRD is healthy"}));
  EXPECT_EQ(Assess("{apiVersion: apiextensions.k8s.io/v1, kind: CustomResourceDefinition, "
                   "status: {conditions: [{type: Established, status: 'False', "
                   "message: installing}]}}"),
            (Health{HealthCode::kDegraded, "CRD is not established: installing"}));
  EXPECT_EQ(Assess("{apiVersion: apiextensions.k8s.io/v1, kind: CustomResourceDefinition}"),
            (Health{HealthCode::kProgressing, "Status conditions not found"}));
}

TEST(WorkflowTest, Phases) {
  EXPECT_EQ(Assess("{apiVersion: argoproj.io/v1alpha1, kind: Workflow, status: "
                   "{phase: Running, message: This node is running}}"),
            (Health{HealthCode::kProgressing, "This node is running"}));
  EXPECT_EQ(Assess("{apiVersion: argoproj.io/v1alpha1, kind: Workflow, status: "
                   "{phase: Failed}}")
                ->code,
            HealthCode::kDegraded);
  EXPECT_EQ(Assess("{apiVersion: argoproj.io/v1alpha1, kind: Workflow}")->code,
            HealthCode::kProgressing);
}

// --- generic (kstatus-like) rules --------------------------------------------------------

struct GenericCase {
  const char* name;
  const char* yaml;
  HealthCode code;
  const char* message;
};

class GenericTest : public testing::TestWithParam<GenericCase> {};

TEST_P(GenericTest, Assess) {
  std::optional<Health> h = Assess(GetParam().yaml);
  ASSERT_TRUE(h.has_value());
  EXPECT_EQ(Name(h->code), Name(GetParam().code));
  EXPECT_EQ(h->message, GetParam().message);
}

INSTANTIATE_TEST_SUITE_P(
    Rules, GenericTest,
    testing::Values(
        GenericCase{"ReadyTrue",
                    "{apiVersion: x.io/v1, kind: W, status: {conditions: "
                    "[{type: Ready, status: 'True', message: all good}]}}",
                    HealthCode::kHealthy, "all good"},
        GenericCase{"ReadyFalseFailure",
                    "{apiVersion: x.io/v1, kind: W, status: {conditions: "
                    "[{type: Ready, status: 'False', reason: CrashLoop, message: boom}]}}",
                    HealthCode::kDegraded, "boom"},
        GenericCase{"ReadyFalseStillWorking",
                    "{apiVersion: x.io/v1, kind: W, status: {conditions: "
                    "[{type: Ready, status: 'False', reason: Progressing, message: rolling}]}}",
                    HealthCode::kProgressing, "rolling"},
        GenericCase{"ReadyFalseWaitingReason",
                    "{apiVersion: x.io/v1, kind: W, status: {conditions: "
                    "[{type: Ready, status: 'False', reason: WaitingForDNS}]}}",
                    HealthCode::kProgressing, "WaitingForDNS"},
        GenericCase{"ReadyUnknown",
                    "{apiVersion: x.io/v1, kind: W, status: {conditions: "
                    "[{type: Ready, status: Unknown, reason: Starting}]}}",
                    HealthCode::kProgressing, "Starting"},
        GenericCase{"StalledWinsOverReady",
                    "{apiVersion: x.io/v1, kind: W, status: {conditions: "
                    "[{type: Ready, status: 'True'}, "
                    "{type: Stalled, status: 'True', message: bad spec}]}}",
                    HealthCode::kDegraded, "bad spec"},
        GenericCase{"ReconcilingWinsOverReady",
                    "{apiVersion: x.io/v1, kind: W, status: {conditions: "
                    "[{type: Ready, status: 'True'}, "
                    "{type: Reconciling, status: 'True', message: applying}]}}",
                    HealthCode::kProgressing, "applying"},
        GenericCase{"GenerationLag",
                    "{apiVersion: x.io/v1, kind: W, metadata: {generation: 4}, status: "
                    "{observedGeneration: 3, conditions: [{type: Ready, status: 'True'}]}}",
                    HealthCode::kProgressing,
                    "Waiting for generation 4 to be observed (status is for generation 3)"},
        GenericCase{"OnlyQuietAbnormalConditions",
                    "{apiVersion: x.io/v1, kind: W, status: {conditions: "
                    "[{type: Stalled, status: 'False'}, {type: Reconciling, status: 'False'}]}}",
                    HealthCode::kHealthy, ""}),
    [](const testing::TestParamInfo<GenericCase>& info) { return info.param.name; });

TEST(GenericRulesTest, UnrelatedConditionsHaveNoVerdict) {
  EXPECT_EQ(Assess("{apiVersion: x.io/v1, kind: W, status: {conditions: "
                   "[{type: Synced, status: 'False'}]}}"),
            std::nullopt);
}

TEST(FluxTest, SuspendedAndGenerationLag) {
  EXPECT_EQ(Assess("{apiVersion: kustomize.toolkit.fluxcd.io/v1, kind: Kustomization, "
                   "spec: {suspend: true}}"),
            (Health{HealthCode::kSuspended, "Kustomization is suspended"}));
  EXPECT_EQ(Assess("{apiVersion: source.toolkit.fluxcd.io/v1, kind: GitRepository, metadata: "
                   "{generation: 3}, status: {conditions: [{type: Ready, status: 'True', "
                   "reason: Succeeded, observedGeneration: 2}]}}")
                ->code,
            HealthCode::kProgressing);
  EXPECT_EQ(Assess("{apiVersion: source.toolkit.fluxcd.io/v1, kind: GitRepository, metadata: "
                   "{generation: 3}, status: {conditions: [{type: Ready, status: 'True', "
                   "reason: Succeeded, message: stored, observedGeneration: 3}]}}"),
            (Health{HealthCode::kHealthy, "Succeeded: stored"}));
  EXPECT_EQ(Assess("{apiVersion: helm.toolkit.fluxcd.io/v2, kind: HelmRelease, status: "
                   "{conditions: [{type: Stalled, status: 'True', reason: InvalidChartReference,"
                   " message: no chart}]}}"),
            (Health{HealthCode::kDegraded, "InvalidChartReference: no chart"}));
  // Status-less Flux kinds without a check (notification Alert v1beta3) have no verdict.
  EXPECT_EQ(Assess("{apiVersion: notification.toolkit.fluxcd.io/v1beta3, kind: Alert}"),
            std::nullopt);
}

}  // namespace
}  // namespace driftless::health
