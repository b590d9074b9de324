// Throughput of AssessHealth over every health fixture in the corpus (one object each), and
// of the two hottest single kinds. The applier polls health for every applied object, so
// this bounds how much CPU a health wait can take.
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include <benchmark/benchmark.h>

#include "common/health/health.h"
#include "common/manifest/manifest.h"

namespace driftless::health {
namespace {

namespace fs = std::filesystem;
using manifest::Json;

std::vector<Json> LoadAll() {
  std::vector<Json> out;
  const fs::path corpus = DRIFTLESS_CORPUS_DIR;
  std::error_code ec;
  for (const fs::path& root : {corpus / "gitops-engine" / "health-testdata",
                               corpus / "argocd" / "resource-health-testdata"}) {
    for (fs::recursive_directory_iterator it(root, ec), end; !ec && it != end;
         it.increment(ec)) {
      if (it->path().extension() != ".yaml" || it->path().filename() == "health_test.yaml") {
        continue;
      }
      std::ifstream in(it->path(), std::ios::binary);
      std::stringstream ss;
      ss << in.rdbuf();
      absl::StatusOr<Json> j = manifest::ParseYaml(ss.str(), it->path().string());
      if (j.ok()) out.push_back(*std::move(j));
    }
  }
  return out;
}

const std::vector<Json>& Fixtures() {
  static const std::vector<Json>* fixtures = new std::vector<Json>(LoadAll());
  return *fixtures;
}

void BM_AssessAllFixtures(benchmark::State& state) {
  const std::vector<Json>& fixtures = Fixtures();
  for (auto _ : state) {
    for (const Json& obj : fixtures) benchmark::DoNotOptimize(AssessHealth(obj));
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(fixtures.size()));
}
BENCHMARK(BM_AssessAllFixtures);

void BM_AssessOne(benchmark::State& state, const char* kind) {
  const Json* found = nullptr;
  for (const Json& obj : Fixtures()) {
    if (obj.is_object() && obj.value("kind", "") == kind) {
      found = &obj;
      break;
    }
  }
  if (found == nullptr) {
    state.SkipWithError("no fixture of that kind");
    return;
  }
  for (auto _ : state) benchmark::DoNotOptimize(AssessHealth(*found));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK_CAPTURE(BM_AssessOne, Deployment, "Deployment");
BENCHMARK_CAPTURE(BM_AssessOne, Pod, "Pod");
BENCHMARK_CAPTURE(BM_AssessOne, Kustomization, "Kustomization");

}  // namespace
}  // namespace driftless::health

BENCHMARK_MAIN();
