// Golden render tests over ../shared/corpus: registered only when the corpus is present
// (DRIFTLESS_REQUIRE_CORPUS makes its absence an error, as in CI).
#include <filesystem>
#include <fstream>
#include <sstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/testing/status_matchers.h"
#include "services/renderer/render.h"

namespace driftless::renderer {
namespace {

using ::testing::HasSubstr;

// Flux's `flux build kustomization` golden case: the kustomize output of
// var-substitution/ with postBuild.substitute {cluster_env: prod, cluster_region:
// eu-central-1}; the generated ConfigMap is labelled substitute: disabled.
TEST(RenderDirectory, FluxVarSubstitutionGolden) {
  const std::filesystem::path dir = std::filesystem::path(DRIFTLESS_CORPUS_DIR) /
                                    "flux2-build-kustomization-testdata" / "var-substitution";
  std::ifstream in(dir / "expected-render.yaml");
  ASSERT_TRUE(in) << dir / "expected-render.yaml";
  std::stringstream ss;
  ss << in.rdbuf();
  ASSERT_OK_AND_ASSIGN(
      auto out, RenderDirectory({{"out/all.yaml", ss.str()}}, "out", {},
                                {{"cluster_env", "prod"}, {"cluster_region", "eu-central-1"}}));
  bool saw_deployment = false, saw_configmap = false;
  for (const auto& r : out) {
    if (r.object["kind"] == "Deployment") {
      saw_deployment = true;
      EXPECT_EQ(r.object["metadata"]["labels"]["environment"], "prod");
      EXPECT_EQ(r.object["metadata"]["labels"]["region"], "eu-central-1");
    }
    if (r.object["kind"] == "ConfigMap") {
      saw_configmap = true;
      EXPECT_THAT(r.object["data"]["cluster.json"].get<std::string>(),
                  HasSubstr("\"${DS_PROMETHEUS}\""));
    }
  }
  EXPECT_TRUE(saw_deployment);
  EXPECT_TRUE(saw_configmap);
}

}  // namespace
}  // namespace driftless::renderer
