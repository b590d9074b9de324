// Kubernetes API emulator, in process (no HTTP): server-side apply latency of one Deployment
// (p50/p99 over changing applies), and 10,000 objects applied then listed, with the resident
// memory of the process with them stored and after a full copying List. Targets (issue #2): SSA p50
// < 1 ms, < 200 MB at 10,000.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <string>

#include "common/manifest/manifest.h"
#include "tools/kube-emulator/clock.h"
#include "tools/kube-emulator/resources.h"
#include "tools/kube-emulator/store.h"

namespace {

using driftless::manifest::Json;
namespace emu = driftless::kube_emulator;

Json Deployment(const std::string& name, int generation) {
  return Json::parse(R"({
    "apiVersion": "apps/v1", "kind": "Deployment",
    "metadata": {"name": ")" +
                     name + R"(", "namespace": "default",
                 "labels": {"app.kubernetes.io/name": "web", "team": "platform"}},
    "spec": {"replicas": 3,
      "selector": {"matchLabels": {"app.kubernetes.io/name": "web"}},
      "template": {"metadata": {"labels": {"app.kubernetes.io/name": "web"}},
        "spec": {"containers": [{"name": "web", "image": "nginx:1.)" +
                     std::to_string(generation % 50) + R"(",
          "ports": [{"containerPort": 80, "name": "http"}],
          "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
          "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}}}]}}}})");
}

double RssMiB() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
  }
  return 0;
}

void BM_ServerSideApplyDeployment(benchmark::State& state) {
  emu::Registry registry;
  emu::RealClock clock;
  emu::Store store(&registry, &clock);
  auto rt = registry.Find("apps", "v1", "deployments");
  std::vector<double> micros;
  int generation = 0;
  for (auto _ : state) {
    Json desired = Deployment("web", ++generation);  // a real change every time
    const auto start = std::chrono::steady_clock::now();
    auto out = store.Apply(*rt, "default", "web", desired, "driftless", false);
    const auto end = std::chrono::steady_clock::now();
    if (!out.ok()) state.SkipWithError(std::string(out.status().message()).c_str());
    micros.push_back(std::chrono::duration<double, std::micro>(end - start).count());
  }
  std::sort(micros.begin(), micros.end());
  if (!micros.empty()) {
    state.counters["p50_us"] = micros[micros.size() / 2];
    state.counters["p99_us"] = micros[micros.size() * 99 / 100];
  }
}
BENCHMARK(BM_ServerSideApplyDeployment)->Unit(benchmark::kMicrosecond);

void BM_Apply10kThenList(benchmark::State& state) {
  for (auto _ : state) {
    emu::Registry registry;
    emu::RealClock clock;
    emu::Store store(&registry, &clock);
    auto rt = registry.Find("apps", "v1", "deployments");
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < 10000; ++i) {
      const std::string name = "web-" + std::to_string(i);
      auto out = store.Apply(*rt, "default", name, Deployment(name, i), "driftless", false);
      if (!out.ok()) state.SkipWithError(std::string(out.status().message()).c_str());
    }
    const auto applied = std::chrono::steady_clock::now();
    state.counters["rss_stored_MiB"] = RssMiB();
    auto shared = store.ListShared(*rt, "default", {});
    const auto listed = std::chrono::steady_clock::now();
    if (!shared.ok() || shared->size() != 10000) state.SkipWithError("list incomplete");
    // The API's List (what a GET answers) copies every object into one response.
    auto list = store.List(*rt, "default", {});
    const auto copied = std::chrono::steady_clock::now();
    if (!list.ok() || (*list)["items"].size() != 10000) state.SkipWithError("list incomplete");
    state.counters["list_copy_10k_ms"] =
        std::chrono::duration<double, std::milli>(copied - listed).count();
    state.counters["apply_10k_ms"] =
        std::chrono::duration<double, std::milli>(applied - start).count();
    state.counters["list_10k_ms"] =
        std::chrono::duration<double, std::milli>(listed - applied).count();
    state.counters["rss_after_list_MiB"] = RssMiB();
  }
}
BENCHMARK(BM_Apply10kThenList)->Unit(benchmark::kMillisecond)->Iterations(1);

}  // namespace

BENCHMARK_MAIN();
