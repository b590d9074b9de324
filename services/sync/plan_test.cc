#include <filesystem>
#include <fstream>
#include <sstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/manifest/object.h"
#include "common/testing/status_matchers.h"
#include "services/sync/diff.h"
#include "services/sync/order.h"
#include "services/sync/plan.h"

namespace driftless::sync {
namespace {

using ::driftless::testing::StatusIs;
using manifest::Json;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

Json Y(std::string_view yaml) {
  auto v = manifest::ParseYaml(yaml, "test");
  EXPECT_TRUE(v.ok()) << v.status();
  return v.ok() ? *v : Json();
}

std::optional<bool> TestScope(std::string_view, std::string_view kind) {
  if (kind == "Namespace" || kind == "ClusterRole" || kind == "CustomResourceDefinition") {
    return false;
  }
  if (kind == "Widget") return std::nullopt;
  return true;
}

TEST(DiffObject, MissingLiveIsCreate) {
  ASSERT_OK_AND_ASSIGN(ObjectDiff d, DiffObject(Y("apiVersion: v1\nkind: ConfigMap\n"
                                                  "metadata: {name: a}\n"),
                                                Json(), {}));
  EXPECT_FALSE(d.exists);
  EXPECT_FALSE(d.in_sync);
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

// What the API server returns after driftless applied kDeploy: defaults filled in,
// managedFields recorded, status present.
Json LiveAfterApply(const Json& desired) {
  merge::ApplyRequest req{.live = Json(),
                          .applied = desired,
                          .manager = "driftless",
                          .force = true,
                          .now = "2026-01-01T00:00:00Z"};
  auto out = merge::ServerSideApply(req);
  EXPECT_TRUE(out.ok()) << out.status();
  Json live = out->object;
  live["metadata"]["resourceVersion"] = "42";
  live["metadata"]["uid"] = "u-1";
  live["spec"]["strategy"] = {{"type", "RollingUpdate"}};
  live["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] = "IfNotPresent";
  live["status"] = {{"replicas", 2}};
  return live;
}

TEST(DiffObject, ServerDefaultsAndStatusAreNotDrift) {
  Json desired = Y(kDeploy);
  ASSERT_OK_AND_ASSIGN(ObjectDiff d, DiffObject(desired, LiveAfterApply(desired), {}));
  EXPECT_TRUE(d.in_sync) << ::testing::PrintToString(d.changed_paths);
}

TEST(DiffObject, ChangedImageAndReplicasAreDrift) {
  Json desired = Y(kDeploy);
  Json live = LiveAfterApply(desired);
  live["spec"]["replicas"] = 5;
  live["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:1.24";
  ASSERT_OK_AND_ASSIGN(ObjectDiff d, DiffObject(desired, live, {}));
  EXPECT_FALSE(d.in_sync);
  EXPECT_THAT(d.changed_paths, ElementsAre("/spec/replicas", "/spec/template/spec/containers"));
  const std::string text = UnifiedYamlDiff(StripServerFields(live), d.predicted, "live", "git");
  EXPECT_THAT(text, AllOf(HasSubstr("-  replicas: 5\n"), HasSubstr("+  replicas: 2\n"),
                          HasSubstr("+      - image: nginx:1.25\n"), HasSubstr("--- live\n")));
}

TEST(DiffObject, FieldRemovedFromGitIsDrift) {
  Json desired = Y(kDeploy);
  desired["metadata"]["labels"] = {{"team", "a"}};
  Json live = LiveAfterApply(desired);
  desired["metadata"].erase("labels");
  ASSERT_OK_AND_ASSIGN(ObjectDiff d, DiffObject(desired, live, {}));
  EXPECT_FALSE(d.in_sync);
  EXPECT_THAT(d.changed_paths, ElementsAre("/metadata/labels"));
}

TEST(DiffObject, IgnoreDifferencesByPointerAndManager) {
  Json desired = Y(kDeploy);
  Json live = LiveAfterApply(desired);
  live["spec"]["replicas"] = 7;  // an HPA scaled it
  DiffOptions ignore_replicas;
  ignore_replicas.ignore.push_back(
      {.group = "apps", .kind = "Deployment", .json_pointers = {"/spec/replicas"}});
  ASSERT_OK_AND_ASSIGN(ObjectDiff d, DiffObject(desired, live, ignore_replicas));
  EXPECT_TRUE(d.in_sync);
  DiffOptions other_kind;
  other_kind.ignore.push_back({.kind = "StatefulSet", .json_pointers = {"/spec/replicas"}});
  ASSERT_OK_AND_ASSIGN(ObjectDiff d2, DiffObject(desired, live, other_kind));
  EXPECT_FALSE(d2.in_sync);
}

TEST(MaskSecretValues, NeverRevealsValues) {
  Json live =
      Y("apiVersion: v1\nkind: Secret\nmetadata: {name: s}\n"
        "data: {a: c2VjcmV0, b: b2xk}\n");
  Json git =
      Y("apiVersion: v1\nkind: Secret\nmetadata: {name: s}\n"
        "data: {a: c2VjcmV0, b: bmV3}\n");
  MaskSecretValues(live, git);
  const std::string text = UnifiedYamlDiff(live, git, "live", "git");
  EXPECT_THAT(text, AllOf(::testing::Not(HasSubstr("c2VjcmV0")), ::testing::Not(HasSubstr("bmV3")),
                          HasSubstr("-  b: ++++++++\n+  b: +++++++++\n")));
  EXPECT_EQ(live["data"]["a"], git["data"]["a"]);
}

TEST(Order, NamespacesAndCrdsFirstWavesAndHooks) {
  std::vector<Json> objects = {
      Y("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\n"),
      Y("apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n"),
      Y("apiVersion: batch/v1\nkind: Job\nmetadata: {name: migrate, annotations: "
        "{argocd.argoproj.io/hook: PreSync}}\n"),
      Y("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: late, annotations: "
        "{driftless.dev/sync-wave: \"5\"}}\n"),
      Y("apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\n"
        "metadata: {name: widgets.example.com}\n"),
      Y("apiVersion: v1\nkind: Namespace\nmetadata: {name: ns}\n"),
      Y("apiVersion: v1\nkind: Service\nmetadata: {name: s}\n"),
      Y("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: early, annotations: "
        "{driftless.dev/sync-wave: \"-3\"}}\n"),
  };
  ASSERT_OK(SortForApply(objects));
  std::vector<std::string> names;
  for (const Json& o : objects) names.push_back(manifest::NameOf(o));
  // The Namespace and the CRD before the PreSync hook and the negative wave that may need them.
  EXPECT_THAT(names,
              ElementsAre("ns", "widgets.example.com", "migrate", "early", "s", "d", "w", "late"));
  Json bad =
      Y("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x, annotations: "
        "{driftless.dev/sync-wave: soon}}\n");
  EXPECT_THAT(OrderKeyOf(bad), StatusIs(absl::StatusCode::kInvalidArgument,
                                        HasSubstr("ConfigMap x: annotation sync-wave \"soon\"")));
}

TEST(Order, HelmHooksMapToPhasesLikeArgoCd) {
  std::vector<Json> objects = {
      Y("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: after, annotations: "
        "{helm.sh/hook: \"post-install,post-upgrade\"}}\n"),
      Y("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: plain}\n"),
      Y("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: before-late, annotations: "
        "{helm.sh/hook: pre-upgrade, helm.sh/hook-weight: \"5\"}}\n"),
      Y("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: before, annotations: "
        "{helm.sh/hook: \"pre-install, pre-upgrade\", helm.sh/hook-weight: \"-2\"}}\n"),
  };
  ASSERT_OK(SortForApply(objects));
  std::vector<std::string> names;
  for (const Json& o : objects) names.push_back(manifest::NameOf(o));
  EXPECT_THAT(names, ElementsAre("before", "before-late", "plain", "after"));
  EXPECT_THAT(OrderKeyOf(Y("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: w, annotations: "
                           "{helm.sh/hook: pre-install, helm.sh/hook-weight: heavy}}\n")),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("annotation helm.sh/hook-weight \"heavy\"")));
  EXPECT_TRUE(
      IsSkippedHook(Y("kind: Pod\nmetadata: {name: t, annotations: "
                      "{helm.sh/hook: test}}\n")));
  EXPECT_TRUE(
      IsSkippedHook(Y("kind: Job\nmetadata: {name: t, annotations: "
                      "{helm.sh/hook: \"pre-delete,pre-rollback\"}}\n")));
  EXPECT_FALSE(
      IsSkippedHook(Y("kind: Job\nmetadata: {name: t, annotations: "
                      "{helm.sh/hook: \"pre-delete,post-install\"}}\n")));
  EXPECT_FALSE(IsSkippedHook(Y("kind: Job\nmetadata: {name: t}\n")));
  // An Argo CD hook annotation wins over Helm's.
  EXPECT_FALSE(
      IsSkippedHook(Y("kind: Job\nmetadata: {name: t, annotations: "
                      "{helm.sh/hook: test, argocd.argoproj.io/hook: PostSync}}\n")));
}

TEST(PrepareDesired, TrackingLabelOnlyForNamesThatAreLabelValues) {
  const std::vector<Json> objects = {
      Y("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, labels: {app: web}}\n")};
  ASSERT_OK_AND_ASSIGN(auto out, PrepareDesired(objects, {.application = "web.prod",
                                                          .destination_namespace = "gb",
                                                          .is_namespaced = TestScope}));
  EXPECT_EQ(manifest::LabelOf(out[0], kTrackingLabel), "web.prod");
  EXPECT_EQ(manifest::LabelOf(out[0], "app"), "web");  // the object's own labels stay
  const std::string long_name(64, 'a');
  ASSERT_OK_AND_ASSIGN(out, PrepareDesired(objects, {.application = long_name,
                                                     .destination_namespace = "gb",
                                                     .is_namespaced = TestScope}));
  EXPECT_EQ(manifest::LabelOf(out[0], kTrackingLabel), "");
  EXPECT_EQ(manifest::AnnotationOf(out[0], kTrackingAnnotation), long_name);
}

TEST(PrepareDesired, HooksASyncDoesNotApplyAreLeftOut) {
  ASSERT_OK_AND_ASSIGN(
      auto out,
      PrepareDesired(
          {Y("apiVersion: v1\nkind: Pod\nmetadata: {name: web-test, annotations: "
             "{helm.sh/hook: test}}\n"),
           Y("apiVersion: batch/v1\nkind: Job\nmetadata: {generateName: migrate-, "
             "annotations: {helm.sh/hook: pre-install}}\n"),
           Y("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n")},
          {.application = "a", .destination_namespace = "n", .is_namespaced = TestScope}));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(manifest::NameOf(out[0]), "c");
}

TEST(PrepareDesired, NamespacesTrackingSecretsAndCreateNamespace) {
  std::vector<Json> objects = {
      Y("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n"),
      Y("apiVersion: v1\nkind: Secret\nmetadata: {name: s, namespace: other}\n"
        "stringData: {password: hunter2}\n"),
      Y("apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: r}\n"),
      Y("apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\n"
        "metadata: {name: widgets.example.com}\n"
        "spec: {group: example.com, scope: Namespaced, names: {kind: Widget}}\n"),
      Y("apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n"),
  };
  ASSERT_OK_AND_ASSIGN(auto out, PrepareDesired(objects, {.application = "guestbook",
                                                          .destination_namespace = "gb",
                                                          .create_namespace = true,
                                                          .is_namespaced = TestScope}));
  ASSERT_EQ(out.size(), 6u);
  EXPECT_EQ(manifest::KindOf(out[0]), "Namespace");
  EXPECT_EQ(manifest::NameOf(out[0]), "gb");
  EXPECT_EQ(manifest::NamespaceOf(out[1]), "gb");
  EXPECT_EQ(manifest::AnnotationOf(out[1], kTrackingAnnotation), "guestbook");
  EXPECT_EQ(manifest::LabelOf(out[1], kTrackingLabel), "guestbook");
  EXPECT_EQ(manifest::LabelOf(out[0], kTrackingLabel), "guestbook");  // the created Namespace
  EXPECT_EQ(manifest::NamespaceOf(out[2]), "other");
  EXPECT_EQ(out[2]["data"]["password"], "aHVudGVyMg==");
  EXPECT_FALSE(out[2].contains("stringData"));
  EXPECT_EQ(manifest::NamespaceOf(out[3]), "");
  EXPECT_EQ(manifest::NamespaceOf(out[5]), "gb");  // scope from the CRD in the set

  EXPECT_THAT(PrepareDesired({Y("apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n")},
                             {.application = "a", .is_namespaced = TestScope}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("is its CustomResourceDefinition installed")));
  EXPECT_THAT(PrepareDesired({Y("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n")},
                             {.application = "a", .is_namespaced = TestScope}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("no destination namespace")));
  EXPECT_THAT(PrepareDesired({Y("apiVersion: v1\nkind: Namespace\nmetadata: {name: n, "
                                "namespace: x}\n")},
                             {.application = "a", .is_namespaced = TestScope}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("cluster-scoped")));
}

TEST(BuildPlan, CreateUpdateUnchangedAndPrune) {
  PrepareOptions prep{
      .application = "gb", .destination_namespace = "gb", .is_namespaced = TestScope};
  ASSERT_OK_AND_ASSIGN(
      auto desired,
      PrepareDesired(
          {Y("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: same}\ndata: {a: '1'}\n"),
           Y("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: changed}\ndata: {a: '2'}\n"),
           Y("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: new}\n")},
          prep));
  std::map<std::string, Json> live;
  live[manifest::ObjectKey(desired[0])] = LiveAfterApply(desired[0]);
  Json old = desired[1];
  old["data"]["a"] = "1";
  live[manifest::ObjectKey(desired[1])] = LiveAfterApply(old);
  ASSERT_OK_AND_ASSIGN(auto gone_vec, PrepareDesired({Y("apiVersion: v1\nkind: Service\n"
                                                        "metadata: {name: gone}\n")},
                                                     prep));
  Json gone = LiveAfterApply(gone_vec[0]);
  Json foreign = gone;
  foreign["metadata"]["name"] = "foreign";
  foreign["metadata"]["annotations"][std::string(kTrackingAnnotation)] = "other-app";
  std::vector<Json> tracked = {live[manifest::ObjectKey(desired[0])], gone, foreign};

  ASSERT_OK_AND_ASSIGN(Plan no_prune, BuildPlan(desired, live, tracked, {.application = "gb"}));
  EXPECT_FALSE(no_prune.in_sync);
  EXPECT_EQ(no_prune.creates, 1);
  EXPECT_EQ(no_prune.updates, 1);
  EXPECT_EQ(no_prune.unchanged, 1);
  EXPECT_EQ(no_prune.deletes, 0);
  ASSERT_EQ(no_prune.items.size(), 4u);
  EXPECT_TRUE(no_prune.items.back().requires_pruning);

  ASSERT_OK_AND_ASSIGN(
      Plan plan, BuildPlan(desired, live, tracked,
                           {.application = "gb", .prune = true, .apply_out_of_sync_only = true}));
  std::vector<std::string> actions;
  for (const auto& i : plan.items) {
    actions.push_back(std::string(ActionName(i.action)) + " " + manifest::NameOf(i.object));
  }
  EXPECT_THAT(actions, ElementsAre("update changed", "create new", "delete gone"));

  // Selective sync.
  ASSERT_OK_AND_ASSIGN(
      Plan only,
      BuildPlan(desired, live, tracked,
                {.application = "gb", .prune = true, .only = {manifest::ObjectKey(desired[2])}}));
  ASSERT_EQ(only.items.size(), 1u);
  EXPECT_EQ(only.items[0].action, Action::kCreate);
}

TEST(BuildPlan, CreateOnlyObjectsAreCreatedButNeverUpdatedOrPrunedWhenProtected) {
  PrepareOptions prep{.application = "gb", .is_namespaced = TestScope};
  const std::string crd = R"(apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com, annotations: {driftless.dev/sync-options: "Prune=false,CreateOnly=true"}}
spec: {group: example.com, scope: Namespaced, names: {kind: Widget, plural: widgets}}
)";
  ASSERT_OK_AND_ASSIGN(auto desired, PrepareDesired({Y(crd)}, prep));
  ASSERT_OK_AND_ASSIGN(Plan missing, BuildPlan(desired, {}, {}, {.application = "gb"}));
  EXPECT_EQ(missing.creates, 1);
  // Present but different (an operator upgraded it by hand): left as it is, in sync.
  Json older = desired[0];
  older["spec"]["scope"] = "Cluster";
  std::map<std::string, Json> live = {{manifest::ObjectKey(desired[0]), LiveAfterApply(older)}};
  ASSERT_OK_AND_ASSIGN(Plan present, BuildPlan(desired, live, {}, {.application = "gb"}));
  EXPECT_TRUE(present.in_sync);
  EXPECT_EQ(present.updates, 0);
  ASSERT_EQ(present.items.size(), 1u);
  EXPECT_EQ(present.items[0].action, Action::kNone);
  // Gone from the chart: never pruned.
  ASSERT_OK_AND_ASSIGN(Plan removed, BuildPlan({}, live, {live.begin()->second},
                                               {.application = "gb", .prune = true}));
  EXPECT_EQ(removed.deletes, 0);
}

TEST(BuiltInScope, KubernetesKindsAreKnownAndCrdGroupsAreNot) {
  EXPECT_EQ(BuiltInScope("v1", "ConfigMap"), true);
  EXPECT_EQ(BuiltInScope("v1", "Namespace"), false);
  EXPECT_EQ(BuiltInScope("apps/v1", "Deployment"), true);
  EXPECT_EQ(BuiltInScope("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"), false);
  EXPECT_EQ(BuiltInScope("apiextensions.k8s.io/v1", "CustomResourceDefinition"), false);
  EXPECT_EQ(BuiltInScope("gateway.networking.k8s.io/v1", "GatewayClass"), false);
  EXPECT_EQ(BuiltInScope("gateway.networking.k8s.io/v1", "HTTPRoute"), true);
  EXPECT_EQ(BuiltInScope("cert-manager.io/v1", "ClusterIssuer"), std::nullopt);
  EXPECT_EQ(BuiltInScope("cluster.x-k8s.io/v1beta1", "Cluster"), std::nullopt);
  // Offline, a kind nothing knows is taken as namespaced once the caller is told.
  std::vector<std::string> unknown;
  ASSERT_OK_AND_ASSIGN(
      auto prepared,
      PrepareDesired({Y("apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n")},
                     {.application = "a",
                      .destination_namespace = "team",
                      .is_namespaced = BuiltInScope,
                      .on_unknown_scope = [&](std::string_view av, std::string_view kind) {
                        unknown.push_back(std::string(av) + " " + std::string(kind));
                      }}));
  EXPECT_THAT(unknown, ElementsAre("example.com/v1 Widget"));
  EXPECT_EQ(prepared[0]["metadata"]["namespace"], "team");
}

TEST(BuildPlan, RefusesObjectsOfAnotherApplication) {
  Json desired =
      Y("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: n, "
        "annotations: {driftless.dev/application: mine}}\n");
  Json live = LiveAfterApply(desired);
  live["metadata"]["annotations"]["driftless.dev/application"] = "theirs";
  EXPECT_THAT(
      BuildPlan({desired}, {{manifest::ObjectKey(desired), live}}, {}, {.application = "mine"}),
      StatusIs(absl::StatusCode::kFailedPrecondition,
               HasSubstr("managed by application \"theirs\"")));
}

}  // namespace
}  // namespace driftless::sync
