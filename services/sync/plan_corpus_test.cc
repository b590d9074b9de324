// Golden diff tests over gitops-engine's diff-testdata (../shared/corpus): registered only when
// the corpus is present (DRIFTLESS_REQUIRE_CORPUS makes its absence an error, as in CI).
#include <filesystem>
#include <fstream>
#include <sstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/testing/status_matchers.h"
#include "services/sync/diff.h"

namespace driftless::sync {
namespace {

using manifest::Json;

Json Fixture(const std::string& name) {
  const auto path =
      std::filesystem::path(DRIFTLESS_CORPUS_DIR) / "gitops-engine" / "diff-testdata" / name;
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  auto v = manifest::ParseYaml(ss.str(), path.string());
  EXPECT_TRUE(v.ok()) << v.status();
  return v.ok() ? *v : Json();
}

// gitops-engine pairs where the live object differs from git only by server defaults,
// status and bookkeeping: not drift.
class CorpusDiffTest : public ::testing::TestWithParam<std::pair<const char*, bool>> {};

TEST_P(CorpusDiffTest, InSyncMatchesUpstream) {
  const std::string prefix = GetParam().first;
  const bool json =
      std::filesystem::exists(std::filesystem::path(DRIFTLESS_CORPUS_DIR) /
                              "gitops-engine/diff-testdata" / (prefix + "-config.json"));
  const std::string ext = json ? ".json" : ".yaml";
  Json config = Fixture(prefix + "-config" + ext);
  Json live = Fixture(prefix + "-live" + ext);
  ASSERT_OK_AND_ASSIGN(ObjectDiff d, DiffObject(config, live, {}));
  EXPECT_EQ(d.in_sync, GetParam().second)
      << prefix << " changed: " << ::testing::PrintToString(d.changed_paths) << "\n"
      << UnifiedYamlDiff(StripServerFields(live), d.predicted, "live", "predicted");
}

INSTANTIATE_TEST_SUITE_P(
    GitopsEngine, CorpusDiffTest,
    // Not yet: elasticsearch (an atomic volumeClaimTemplates list that the server re-defaults)
    // and mutatingwebhookconfig (webhooks must be a list map keyed by name in merge::Schema).
    ::testing::Values(std::make_pair("deployment", true), std::make_pair("spinnaker-sa", true),
                      std::make_pair("smd-deploy", true), std::make_pair("sealedsecret", true)));

}  // namespace
}  // namespace driftless::sync
