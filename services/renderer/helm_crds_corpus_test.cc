// Helm's CRD lifecycle on Flux's own CRD upgrade charts (corpus helm-charts/helm-controller-
// testdata/crds: v1 ships CRDs a, b and d; v2 ships a, b with a new version, and c): rendered
// by Generate, planned by the sync core against v1 as applied, as the planner does.
#include <filesystem>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/manifest/object.h"
#include "common/merge/merge.h"
#include "common/strings/str.h"
#include "common/testing/status_matchers.h"
#include "services/renderer/generate.h"
#include "services/sync/plan.h"

namespace driftless::renderer {
namespace {

namespace fs = std::filesystem;
using manifest::Json;
using ::testing::UnorderedElementsAre;

const fs::path kCorpus = DRIFTLESS_CORPUS_DIR;
const std::string kTools = DRIFTLESS_TOOLS_DIR;
constexpr char kCharts[] = "helm-charts/helm-controller-testdata/crds";

class HelmCrdPolicy : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/driftless-crd-policy-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    scratch_ = tmpl;
    tools_ = FindTools({.helm = kTools + "/helm", .kubectl = kTools + "/kubectl"});
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(scratch_, ec);
  }

  // The chart `version` rendered with the CRD policy `crds`.
  std::vector<Json> Rendered(const std::string& version, const std::string& crds) {
    std::error_code ec;
    fs::remove_all(scratch_ + "/r", ec);
    fs::create_directories(scratch_ + "/r");
    Json source = {{"path", strings::Cat(kCharts, "/", version)},
                   {"helm", {{"releaseName", "crds"}}}};
    if (!crds.empty()) source["helm"]["crds"] = crds;
    absl::StatusOr<Generated> g = Generate({.application = "crds",
                                            .source = source,
                                            .destination_namespace = "demo",
                                            .checkout = kCorpus.string(),
                                            .scratch = scratch_ + "/r"},
                                           tools_);
    EXPECT_TRUE(g.ok()) << g.status();
    std::vector<Json> objects;
    if (!g.ok()) return objects;
    for (RenderedObject& o : g->objects) objects.push_back(std::move(o.object));
    return objects;
  }

  // The same, prepared for the cluster as the planner does.
  std::vector<Json> Desired(const std::string& version, const std::string& crds) {
    absl::StatusOr<std::vector<Json>> prepared = sync::PrepareDesired(
        Rendered(version, crds),
        {.application = "crds",
         .destination_namespace = "demo",
         .is_namespaced = [](std::string_view, std::string_view kind) -> std::optional<bool> {
           if (kind == "CustomResourceDefinition") return false;
           return std::nullopt;  // the chart's own kinds: from its CRDs
         }});
    EXPECT_TRUE(prepared.ok()) << prepared.status();
    return prepared.ok() ? *prepared : std::vector<Json>();
  }

  // `objects` as the API server holds them after a server-side apply.
  static std::map<std::string, Json> Applied(const std::vector<Json>& objects) {
    std::map<std::string, Json> live;
    for (const Json& o : objects) {
      absl::StatusOr<merge::ApplyOutcome> r =
          merge::ServerSideApply({.live = Json(),
                                  .applied = o,
                                  .manager = "driftless",
                                  .force = true,
                                  .now = "2026-01-01T00:00:00Z"});
      EXPECT_TRUE(r.ok()) << r.status();
      if (r.ok()) live[manifest::ObjectKey(o)] = r->object;
    }
    return live;
  }

  // "<action> <name>" for every CRD item of the plan of `version` over v1 as applied.
  std::vector<std::string> CrdPlan(const std::string& version, const std::string& crds) {
    std::map<std::string, Json> live = Applied(Desired("v1", crds));
    std::vector<Json> tracked;
    for (const auto& [key, o] : live) tracked.push_back(o);
    absl::StatusOr<sync::Plan> plan = sync::BuildPlan(Desired(version, crds), live, tracked,
                                                      {.application = "crds", .prune = true});
    EXPECT_TRUE(plan.ok()) << plan.status();
    std::vector<std::string> out;
    if (!plan.ok()) return out;
    for (const sync::PlanItem& item : plan->items) {
      if (manifest::KindOf(item.object) != "CustomResourceDefinition") continue;
      std::string name = manifest::NameOf(item.object);
      out.push_back(
          strings::Cat(sync::ActionName(item.action), " ", name.substr(0, name.find('.'))));
    }
    return out;
  }

  std::string scratch_;
  Tools tools_;
};

TEST_F(HelmCrdPolicy, CreateInstallsNewCrdsAndLeavesExistingOnesAsTheyAre) {
  // b changed in v2 but is not updated; d left the chart but is not pruned; c is created.
  EXPECT_THAT(CrdPlan("v2", ""),
              UnorderedElementsAre("none crdupgradetestas", "none crdupgradetestbs",
                                   "create crdupgradetestcs", "none crdupgradetestds"));
  EXPECT_THAT(CrdPlan("v2", "Create"),
              UnorderedElementsAre("none crdupgradetestas", "none crdupgradetestbs",
                                   "create crdupgradetestcs", "none crdupgradetestds"));
}

TEST_F(HelmCrdPolicy, CreateReplaceAlsoUpgradesButNeverPrunes) {
  EXPECT_THAT(CrdPlan("v2", "CreateReplace"),
              UnorderedElementsAre("none crdupgradetestas", "update crdupgradetestbs",
                                   "create crdupgradetestcs", "none crdupgradetestds"));
}

TEST_F(HelmCrdPolicy, SkipRendersNoChartCrds) {
  const std::vector<Json> objects = Rendered("v1", "Skip");  // v1 has a custom resource
  EXPECT_FALSE(objects.empty());
  for (const Json& o : objects) {
    EXPECT_NE(manifest::KindOf(o), "CustomResourceDefinition") << manifest::NameOf(o);
  }
}

}  // namespace
}  // namespace driftless::renderer
