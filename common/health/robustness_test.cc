// Robustness: AssessHealth must never throw or crash, whatever the types in an object.
//
// Takes every golden fixture (real objects of every kind with a check) and, for every
// value position in it, replaces the value with each of a set of wrong-typed values
// (string, number, float, bool, null, array, object), then assesses the mutant. Also feeds
// a few hand-written hostile shapes. nlohmann::json throws on wrong-type access, so any
// unguarded access in a rule shows up here as an exception.
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/health/health.h"
#include "common/manifest/manifest.h"

namespace driftless::health {
namespace {

namespace fs = std::filesystem;
using manifest::Json;

const fs::path kCorpus = DRIFTLESS_CORPUS_DIR;

std::vector<Json> LoadFixtures() {
  std::vector<Json> out;
  std::error_code ec;
  for (const fs::path& root : {kCorpus / "gitops-engine" / "health-testdata",
                               kCorpus / "argocd" / "resource-health-testdata"}) {
    for (fs::recursive_directory_iterator it(root, ec), end; !ec && it != end; it.increment(ec)) {
      if (it->path().extension() != ".yaml" || it->path().filename() == "health_test.yaml") {
        continue;
      }
      std::ifstream in(it->path(), std::ios::binary);
      std::stringstream ss;
      ss << in.rdbuf();
      absl::StatusOr<Json> j = manifest::ParseYaml(ss.str(), it->path().string());
      if (j.ok() && j->is_object()) out.push_back(*std::move(j));
    }
  }
  return out;
}

const std::vector<Json>& WrongValues() {
  static const std::vector<Json>* values = new std::vector<Json>{
      Json("7"),
      Json(-3),
      Json(2.5),
      Json(1e300),
      Json(18446744073709551615ull),
      Json(true),
      Json(nullptr),
      Json::array({1, "x", Json::object()}),
      Json::object({{"type", Json::array()}, {"status", 1}}),
  };
  return *values;
}

void CollectPointers(const Json& j, const Json::json_pointer& here,
                     std::vector<Json::json_pointer>& out) {
  if (!here.empty()) out.push_back(here);
  if (j.is_object()) {
    for (auto it = j.begin(); it != j.end(); ++it) CollectPointers(*it, here / it.key(), out);
  } else if (j.is_array()) {
    for (size_t i = 0; i < j.size(); ++i) CollectPointers(j[i], here / i, out);
  }
}

// Calls `visit(mutant)` for every (position, wrong value) pair, positions being every value
// in the document (containers and leaves).
template <typename Visit>
void ForEachMutant(const Json& doc, Visit visit) {
  std::vector<Json::json_pointer> pointers;
  CollectPointers(doc, Json::json_pointer(), pointers);
  for (const Json::json_pointer& p : pointers) {
    for (const Json& wrong : WrongValues()) {
      Json mutant = doc;
      mutant[p] = wrong;
      visit(mutant);
    }
  }
}

TEST(RobustnessTest, WrongTypesEverywhereInEveryFixtureNeverThrow) {
  std::vector<Json> fixtures = LoadFixtures();
  ASSERT_GE(fixtures.size(), 150u);
  size_t mutants = 0;
  for (const Json& doc : fixtures) {
    ForEachMutant(doc, [&](const Json& mutant) {
      ++mutants;
      std::optional<Health> h;
      ASSERT_NO_THROW(h = AssessHealth(mutant)) << mutant.dump();
      if (h) {
        EXPECT_FALSE(Name(h->code).empty());
      }
    });
  }
  EXPECT_GT(mutants, 10000u);
  RecordProperty("mutants", static_cast<int>(mutants));
}

TEST(RobustnessTest, HostileShapesNeverThrow) {
  const char* kinds[][2] = {
      {"apps/v1", "Deployment"},
      {"apps/v1", "StatefulSet"},
      {"apps/v1", "DaemonSet"},
      {"apps/v1", "ReplicaSet"},
      {"v1", "Pod"},
      {"v1", "Service"},
      {"v1", "PersistentVolumeClaim"},
      {"batch/v1", "Job"},
      {"batch/v1", "CronJob"},
      {"autoscaling/v1", "HorizontalPodAutoscaler"},
      {"autoscaling/v2", "HorizontalPodAutoscaler"},
      {"networking.k8s.io/v1", "Ingress"},
      {"apiregistration.k8s.io/v1", "APIService"},
      {"apiextensions.k8s.io/v1", "CustomResourceDefinition"},
      {"argoproj.io/v1alpha1", "Rollout"},
      {"argoproj.io/v1alpha1", "Workflow"},
      {"cert-manager.io/v1", "Certificate"},
      {"kustomize.toolkit.fluxcd.io/v1", "Kustomization"},
      {"external-secrets.io/v1beta1", "ExternalSecret"},
      {"apps.kruise.io/v1alpha1", "CloneSet"},
      {"example.com/v1", "Widget"},
  };
  std::vector<Json> bodies = {
      Json::parse(R"({"status": "broken", "spec": [], "metadata": 5})"),
      Json::parse(R"({"status": {"conditions": "Ready"}, "spec": {"replicas": "3"}})"),
      Json::parse(R"({"status": {"conditions": [1, "x", null, [], {"type": 5}]}})"),
      Json::parse(R"({"status": {"conditions": {"type": "Ready"}, "replicas": [1]},
                     "metadata": {"generation": "2", "annotations": []}})"),
      Json::parse(R"({"metadata": {"deletionTimestamp": {}, "finalizers": [1, null]}})"),
      Json::parse(R"({"status": {"observedGeneration": "99999999999999999999999"},
                     "metadata": {"generation": 1.5}})"),
      Json::parse(R"({"status": {"containerStatuses": [{"state": "waiting"},
                     {"state": {"waiting": []}}, {"lastState": {"terminated": 1}}],
                     "phase": "Running"}})"),
      Json::parse(R"({"metadata": {"annotations": {"autoscaling.alpha.kubernetes.io/conditions":
                     "{\"type\": 1}"}}})"),
  };
  for (const auto& [api_version, kind] : kinds) {
    for (Json body : bodies) {
      body["apiVersion"] = api_version;
      body["kind"] = kind;
      EXPECT_NO_THROW(AssessHealth(body)) << body.dump();
    }
    // apiVersion/kind of the wrong type themselves.
    EXPECT_NO_THROW(AssessHealth(Json{{"apiVersion", 1}, {"kind", Json::array()}}));
  }
}

}  // namespace
}  // namespace driftless::health
