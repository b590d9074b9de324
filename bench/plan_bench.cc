// The sync core on one large application (the sync-engine issue: diff + plan of 5,000 objects
// under 100 ms, pure, in process). The desired objects are a realistic mix (ConfigMaps,
// Services, Deployments); the live ones are what the API server holds after driftless applied
// them (managedFields, defaults, status), so every diff runs the full server-side-apply
// prediction. Measured: PrepareDesired + BuildPlan (what the planner does per generation),
// and FindDrift (what the drift detector does per check), both in sync; and BuildPlan with 1 %
// of the objects edited by another manager.
//
//   ./bench/plan_bench --benchmark_counters_tabular=true
#include <benchmark/benchmark.h>

#include <map>
#include <string>
#include <vector>

#include "common/manifest/object.h"
#include "common/merge/merge.h"
#include "services/sync/drift.h"
#include "services/sync/plan.h"

namespace {

using driftless::manifest::Json;
namespace sync = driftless::sync;
namespace merge = driftless::merge;
namespace manifest = driftless::manifest;

constexpr char kApp[] = "big";
constexpr char kNamespace[] = "big";

Json Object(int i) {
  const std::string name = "obj-" + std::to_string(i);
  switch (i % 10) {
    case 8:
      return {{"apiVersion", "v1"},
              {"kind", "Service"},
              {"metadata", {{"name", name}, {"labels", {{"app", name}}}}},
              {"spec",
               {{"selector", {{"app", name}}},
                {"ports", Json::array({{{"name", "http"}, {"port", 80}, {"targetPort", 8080}}})}}}};
    case 9:
      return {
          {"apiVersion", "apps/v1"},
          {"kind", "Deployment"},
          {"metadata", {{"name", name}, {"labels", {{"app", name}}}}},
          {"spec",
           {{"replicas", 2},
            {"selector", {{"matchLabels", {{"app", name}}}}},
            {"template",
             {{"metadata", {{"labels", {{"app", name}}}}},
              {"spec",
               {{"containers", Json::array({{{"name", "web"},
                                             {"image", "nginx:1.27"},
                                             {"ports", Json::array({{{"containerPort", 8080}}})},
                                             {"env", Json::array({{{"name", "MODE"},
                                                                   {"value", "prod"}}})}}})}}}}}}}};
    default:
      return {{"apiVersion", "v1"},
              {"kind", "ConfigMap"},
              {"metadata", {{"name", name}, {"labels", {{"app", "config"}}}}},
              {"data",
               {{"index", std::to_string(i)},
                {"log-level", "info"},
                {"feature-flags", "alpha=false,beta=true"}}}};
  }
}

std::optional<bool> Scope(std::string_view, std::string_view kind) { return kind != "Namespace"; }

struct Fixture {
  std::vector<Json> rendered;
  std::vector<Json> desired;
  std::map<std::string, Json> live;
  std::vector<Json> tracked;
};

Json Apply(const Json& live, const Json& applied, const std::string& manager) {
  absl::StatusOr<merge::ApplyOutcome> out = merge::ServerSideApply({.live = live,
                                                                    .applied = applied,
                                                                    .manager = manager,
                                                                    .force = true,
                                                                    .now = "2026-12-08T00:00:00Z"});
  if (!out.ok()) std::abort();
  return out->object;
}

// `edited` of every 100 objects carry another manager's change to a field git sets.
Fixture MakeFixture(int n, int edited_per_hundred) {
  Fixture f;
  for (int i = 0; i < n; ++i) f.rendered.push_back(Object(i));
  absl::StatusOr<std::vector<Json>> desired = sync::PrepareDesired(
      f.rendered,
      {.application = kApp, .destination_namespace = kNamespace, .is_namespaced = Scope});
  if (!desired.ok()) std::abort();
  f.desired = *desired;
  int i = 0;
  for (const Json& d : f.desired) {
    Json live = Apply(Json(), d, "driftless");
    live["metadata"]["uid"] = "uid-" + std::to_string(i);
    live["metadata"]["resourceVersion"] = std::to_string(1000 + i);
    if (manifest::KindOf(d) == "Deployment") {
      live["spec"]["strategy"] = {{"type", "RollingUpdate"}};
      live["status"] = {{"replicas", 2}, {"readyReplicas", 2}, {"observedGeneration", 1}};
    }
    if (i % 100 < edited_per_hundred && manifest::KindOf(d) == "ConfigMap") {
      Json edit = {{"apiVersion", "v1"},
                   {"kind", "ConfigMap"},
                   {"metadata", {{"name", manifest::NameOf(d)}, {"namespace", kNamespace}}},
                   {"data", {{"log-level", "debug"}}}};
      live = Apply(live, edit, "kubectl-edit");
    }
    f.tracked.push_back(live);
    f.live[manifest::ObjectKey(d)] = std::move(live);
    ++i;
  }
  return f;
}

void BM_PrepareAndPlan(benchmark::State& state) {
  const Fixture f = MakeFixture(static_cast<int>(state.range(0)), static_cast<int>(state.range(1)));
  int updates = 0;
  for (auto _ : state) {
    absl::StatusOr<std::vector<Json>> desired = sync::PrepareDesired(
        f.rendered,
        {.application = kApp, .destination_namespace = kNamespace, .is_namespaced = Scope});
    absl::StatusOr<sync::Plan> plan =
        sync::BuildPlan(*desired, f.live, f.tracked, {.application = kApp, .prune = true});
    if (!plan.ok()) std::abort();
    updates = plan->updates;
    benchmark::DoNotOptimize(plan);
  }
  state.counters["objects"] = static_cast<double>(state.range(0));
  state.counters["updates"] = updates;
}
BENCHMARK(BM_PrepareAndPlan)->Args({5000, 0})->Args({5000, 1})->Unit(benchmark::kMillisecond);

void BM_FindDrift(benchmark::State& state) {
  const Fixture f = MakeFixture(static_cast<int>(state.range(0)), 0);
  size_t drifted = 0;
  for (auto _ : state) {
    absl::StatusOr<std::vector<sync::ObjectDrift>> drift =
        sync::FindDrift(f.desired,
                        [&](const Json& o) -> std::optional<Json> {
                          auto it = f.live.find(manifest::ObjectKey(o));
                          if (it == f.live.end()) return std::nullopt;
                          return it->second;
                        },
                        {});
    if (!drift.ok()) std::abort();
    drifted = drift->size();
    benchmark::DoNotOptimize(drift);
  }
  state.counters["objects"] = static_cast<double>(state.range(0));
  state.counters["drifted"] = static_cast<double>(drifted);
}
BENCHMARK(BM_FindDrift)->Arg(5000)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
