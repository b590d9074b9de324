#include "services/common/render_inputs.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/bus/testing/fake_kv_store.h"
#include "common/testing/status_matchers.h"
#include "services/common/topology.h"

namespace driftless::service {
namespace {

using ::driftless::testing::StatusIs;
using manifest::Json;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;

Json App() {
  return Json::parse(R"({
    "apiVersion": "driftless.dev/v1alpha1", "kind": "Application",
    "metadata": {"name": "web"},
    "spec": {
      "destination": {"namespace": "team"},
      "source": {
        "repoURL": "file:///r",
        "helm": {"valuesFrom": [{"kind": "Secret", "name": "web-values"},
                                {"name": "web-extra", "key": "prod.yaml", "optional": true}]},
        "substituteFrom": [{"kind": "ConfigMap", "name": "cluster-vars"}]
      }
    }
  })");
}

// A cluster of ConfigMaps and Secrets by "Kind/name".
InputFetcher Cluster(std::map<std::string, Json> objects) {
  return
      [objects = std::move(objects)](const InputRef& ref) -> absl::StatusOr<std::optional<Json>> {
        if (ref.namespace_ != "team") return std::optional<Json>();
        auto it = objects.find(ref.kind + "/" + ref.name);
        if (it == objects.end()) return std::optional<Json>();
        return std::optional<Json>(it->second);
      };
}

TEST(RenderInputsTest, RefsAreReadInDeclaredOrderInTheDestinationNamespace) {
  std::vector<InputRef> refs = InputRefsOf(App());
  ASSERT_EQ(refs.size(), 3u);
  EXPECT_EQ(refs[0].field, "spec.source.helm.valuesFrom[0]");
  EXPECT_EQ(refs[0].kind, "Secret");
  EXPECT_EQ(refs[0].key, "values.yaml");  // Flux's default valuesKey
  EXPECT_EQ(refs[0].namespace_, "team");
  EXPECT_EQ(refs[1].kind, "ConfigMap");
  EXPECT_EQ(refs[1].key, "prod.yaml");
  EXPECT_TRUE(refs[1].optional);
  EXPECT_EQ(refs[2].use, InputRef::Use::kSubstitute);
  EXPECT_EQ(refs[2].field, "spec.source.substituteFrom[0]");
  EXPECT_TRUE(InputRefsOf(Json::parse(R"({"spec": {"source": {"repoURL": "x"}}})")).empty());
}

TEST(RenderInputsTest, ResolvedSecretsAreDecodedAndValuesComeInOrder) {
  std::vector<InputRef> refs = InputRefsOf(App());
  ASSERT_OK_AND_ASSIGN(
      RenderInputs in,
      ResolveRenderInputs(
          "uid-1", refs,
          Cluster({{"Secret/web-values", Json{{"data", {{"values.yaml", "cmVwbGljYXM6IDMK"}}}}},
                   {"ConfigMap/cluster-vars", Json{{"data", {{"REGION", "eu"}}}}}})));
  EXPECT_TRUE(in.Matches("uid-1", refs));
  EXPECT_FALSE(in.Matches("uid-2", refs));
  EXPECT_FALSE(in.Matches("uid-1", refs, "sync-1"));  // not resolved for that user's sync
  in.request = "sync-1";
  EXPECT_TRUE(in.Matches("uid-1", refs, "sync-1"));
  EXPECT_TRUE(in.Matches("uid-1", refs));
  ASSERT_OK_AND_ASSIGN(std::vector<std::string> values, HelmValuesFrom(in));
  EXPECT_THAT(values, ElementsAre("replicas: 3\n"));  // the optional one is absent: skipped
  ASSERT_OK_AND_ASSIGN(auto vars, SubstituteFrom(in));
  EXPECT_THAT(vars, ElementsAre(Pair("REGION", "eu")));
}

TEST(RenderInputsTest, AMissingRequiredObjectOrKeyNamesTheFieldAndObject) {
  std::vector<InputRef> refs = InputRefsOf(App());
  ASSERT_OK_AND_ASSIGN(RenderInputs none, ResolveRenderInputs("u", refs, Cluster({})));
  EXPECT_THAT(HelmValuesFrom(none),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("spec.source.helm.valuesFrom[0]: Secret team/web-values not "
                                 "found")));
  EXPECT_THAT(SubstituteFrom(none),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("spec.source.substituteFrom[0]: ConfigMap team/cluster-vars")));
  ASSERT_OK_AND_ASSIGN(
      RenderInputs no_key,
      ResolveRenderInputs("u", refs,
                          Cluster({{"Secret/web-values", Json{{"data", {{"other", "eA=="}}}}}})));
  absl::StatusOr<std::vector<std::string>> values = HelmValuesFrom(no_key);
  EXPECT_THAT(values, StatusIs(absl::StatusCode::kFailedPrecondition,
                               HasSubstr("has no key \"values.yaml\"")));
  // The Secret's data is never part of an error.
  EXPECT_THAT(values.status().message(), ::testing::Not(HasSubstr("eA==")));
}

TEST(RenderInputsTest, DigestFollowsTheDataAndNotBadBase64) {
  std::vector<InputRef> refs = InputRefsOf(App());
  auto with = [&](std::string region) {
    return ResolveRenderInputs(
        "u", refs, Cluster({{"ConfigMap/cluster-vars", Json{{"data", {{"R", region}}}}}}));
  };
  ASSERT_OK_AND_ASSIGN(RenderInputs a, with("eu"));
  ASSERT_OK_AND_ASSIGN(RenderInputs a2, with("eu"));
  ASSERT_OK_AND_ASSIGN(RenderInputs b, with("us"));
  EXPECT_EQ(a.digest, a2.digest);
  EXPECT_NE(a.digest, b.digest);
  EXPECT_THAT(ResolveRenderInputs("u", refs,
                                  Cluster({{"Secret/web-values", Json{{"data", {{"k", "%%%"}}}}}})),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("Secret team/web-values: data key \"k\" is not base64")));
}

TEST(RenderInputsTest, StoreWritesOnlyChangesAndReadsBack) {
  bus::testing::FakeKvStore kv;
  ASSERT_OK(kv.EnsureBucket(kRenderInputsBucket, 1, absl::ZeroDuration()));
  RenderInputsStore store(&kv);
  ASSERT_OK_AND_ASSIGN(std::optional<RenderInputs> nothing, store.Get("web"));
  EXPECT_FALSE(nothing.has_value());
  std::vector<InputRef> refs = InputRefsOf(App());
  ASSERT_OK_AND_ASSIGN(
      RenderInputs in,
      ResolveRenderInputs("u", refs,
                          Cluster({{"ConfigMap/cluster-vars", Json{{"data", {{"R", "eu"}}}}}})));
  ASSERT_OK_AND_ASSIGN(bool wrote, store.Put("web", in));
  EXPECT_TRUE(wrote);
  ASSERT_OK_AND_ASSIGN(bool again, store.Put("web", in));
  EXPECT_FALSE(again);
  ASSERT_OK_AND_ASSIGN(std::optional<RenderInputs> got, store.Get("web"));
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->digest, in.digest);
  EXPECT_TRUE(got->Matches("u", refs));
  ASSERT_OK_AND_ASSIGN(auto vars, SubstituteFrom(*got));
  EXPECT_THAT(vars, ElementsAre(Pair("R", "eu")));

  ClusterFacts facts = MakeClusterFacts("v1.32.3", {"v1", "apps/v1", "v1"});
  EXPECT_THAT(facts.api_versions, ElementsAre("apps/v1", "v1"));
  ASSERT_OK_AND_ASSIGN(bool wrote_cluster, store.PutCluster("in-cluster", facts));
  EXPECT_TRUE(wrote_cluster);
  ASSERT_OK_AND_ASSIGN(std::optional<ClusterFacts> cluster, store.GetCluster("in-cluster"));
  ASSERT_TRUE(cluster.has_value());
  EXPECT_EQ(cluster->digest, facts.digest);
  EXPECT_EQ(cluster->kube_version, "v1.32.3");

  ASSERT_OK(kv.Put(kRenderInputsBucket, "app.bad", "{not json").status());
  EXPECT_THAT(store.Get("bad"), StatusIs(absl::StatusCode::kDataLoss, HasSubstr("bad")));
}

}  // namespace
}  // namespace driftless::service
