// Kubernetes API emulator, in process (no HTTP): server-side apply latency of one Deployment
// (p50/p99 over changing applies), and 10,000 objects applied then listed, with the resident
// memory of the process with them stored and after a full copying List. Targets (issue #2): SSA p50
// < 1 ms, < 200 MB at 10,000.
//
// Scaling (BM_Scale*, argument = number of namespaces, each holding one application of 10
// objects: 8 ConfigMaps, a Service and a Deployment labelled driftless.dev/application): the
// per-request cost of Get, List in one namespace, a cluster-wide List with an equality label
// selector, and delete + re-create must not grow with the cluster (100 vs 1,000 vs 5,000).
// *Answer variants produce the body the HTTP shell sends (GetText/ListText); the Json ones
// what in-process callers get. Run one benchmark per process for stable figures (the heap
// left by one benchmark slows the next), e.g. --benchmark_filter='BM_ScaleGetAnswer/'.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
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

// ---- Scaling with the cluster size ----

Json AppObject(const std::string& kind, int app, int index) {
  const std::string ns = "app-" + std::to_string(app);
  Json labels = {{"driftless.dev/application", ns}, {"app.kubernetes.io/part-of", "bench"}};
  if (kind == "ConfigMap") {
    Json data = Json::object();
    for (int k = 0; k < 8; ++k) {
      data["key-" + std::to_string(k)] = std::string(96, static_cast<char>('a' + k));
    }
    return {{"apiVersion", "v1"},
            {"kind", "ConfigMap"},
            {"metadata",
             {{"name", "config-" + std::to_string(index)}, {"namespace", ns}, {"labels", labels}}},
            {"data", data}};
  }
  if (kind == "Service") {
    return {{"apiVersion", "v1"},
            {"kind", "Service"},
            {"metadata", {{"name", "web"}, {"namespace", ns}, {"labels", labels}}},
            {"spec",
             {{"selector", {{"app", "web"}}},
              {"ports", Json::array({{{"port", 80}, {"targetPort", 8080}}})}}}};
  }
  Json d = Deployment("web", app);
  d["metadata"]["namespace"] = ns;
  d["metadata"]["labels"] = labels;
  return d;
}

// The body a GET/LIST answers over HTTP.
std::string GetAnswer(emu::Store& store, const emu::ResourceType& rt, const std::string& ns,
                      const std::string& name) {
  auto text = store.GetText(rt, ns, name);
  return text.ok() ? std::move(*text) : std::string();
}
std::string ListAnswer(emu::Store& store, const emu::ResourceType& rt, const std::string& ns,
                       const emu::ListOptions& options) {
  auto text = store.ListText(rt, ns, options);
  return text.ok() ? std::move(*text) : std::string();
}

// A store holding `apps` namespaces of 10 objects each, built once per size and shared by the
// scaling benchmarks (building 5,000 applications takes seconds).
struct Cluster {
  emu::Registry registry;
  emu::RealClock clock;
  std::unique_ptr<emu::Store> store;
  std::shared_ptr<const emu::ResourceType> namespaces, configmaps, services, deployments;
};

Cluster& ClusterOf(int apps) {
  static std::mutex mu;
  static std::map<int, std::unique_ptr<Cluster>> clusters;
  std::lock_guard lock(mu);
  auto& c = clusters[apps];
  if (c) return *c;
  c = std::make_unique<Cluster>();
  c->store = std::make_unique<emu::Store>(&c->registry, &c->clock);
  c->namespaces = c->registry.Find("", "v1", "namespaces");
  c->configmaps = c->registry.Find("", "v1", "configmaps");
  c->services = c->registry.Find("", "v1", "services");
  c->deployments = c->registry.Find("apps", "v1", "deployments");
  for (int a = 0; a < apps; ++a) {
    const std::string ns = "app-" + std::to_string(a);
    Json n = {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", ns}}}};
    (void)c->store->Create(*c->namespaces, "", n, {});
    for (int i = 0; i < 8; ++i) {
      (void)c->store->Create(*c->configmaps, ns, AppObject("ConfigMap", a, i), {});
    }
    (void)c->store->Create(*c->services, ns, AppObject("Service", a, 0), {});
    (void)c->store->Create(*c->deployments, ns, AppObject("Deployment", a, 0), {});
  }
  // Steady state: every object answered once (the first answer of an object version
  // serialises it; see BM_ScaleFirstGetAnswer).
  for (const auto& rt : {c->namespaces, c->configmaps, c->services, c->deployments}) {
    benchmark::DoNotOptimize(ListAnswer(*c->store, *rt, "", {}));
  }
  return *c;
}

// The namespace of the i-th request: spread over the whole cluster (cold memory included).
std::string Spread(long long i, int apps) { return "app-" + std::to_string(i * 7919 % apps); }

void BM_ScaleGet(benchmark::State& state) {
  const int apps = static_cast<int>(state.range(0));
  Cluster& c = ClusterOf(apps);
  long long i = 0;
  for (auto _ : state) {
    const std::string ns = Spread(i++, apps);
    auto out = c.store->Get(*c.deployments, ns, "web");
    if (!out.ok()) state.SkipWithError("get failed");
    benchmark::DoNotOptimize(out);
  }
  state.counters["objects"] = static_cast<double>(c.store->ObjectCount());
}

void BM_ScaleGetAnswer(benchmark::State& state) {
  const int apps = static_cast<int>(state.range(0));
  Cluster& c = ClusterOf(apps);
  long long i = state.thread_index() * 13;
  for (auto _ : state) {
    const std::string ns = Spread(i++, apps);
    std::string body = GetAnswer(*c.store, *c.deployments, ns, "web");
    if (body.empty()) state.SkipWithError("get failed");
    benchmark::DoNotOptimize(body);
  }
  state.SetItemsProcessed(state.iterations());
}

// The first answer after a write: the object is serialised once (then kept).
void BM_ScaleFirstGetAnswer(benchmark::State& state) {
  const int apps = static_cast<int>(state.range(0));
  Cluster& c = ClusterOf(apps);
  long long i = 0;
  for (auto _ : state) {
    const std::string ns = Spread(i++, apps);
    state.PauseTiming();
    Json d = AppObject("Deployment", static_cast<int>(i), 0);
    d["metadata"]["namespace"] = ns;
    d["spec"]["replicas"] = static_cast<int>(i % 7) + 1;  // a real change
    auto stored = c.store->Update(*c.deployments, ns, "web", d, {});
    if (!stored.ok()) state.SkipWithError("update failed");
    state.ResumeTiming();
    std::string body = GetAnswer(*c.store, *c.deployments, ns, "web");
    if (body.empty()) state.SkipWithError("get failed");
    benchmark::DoNotOptimize(body);
  }
}

void BM_ScaleListNamespace(benchmark::State& state) {
  const int apps = static_cast<int>(state.range(0));
  Cluster& c = ClusterOf(apps);
  long long i = 0;
  for (auto _ : state) {
    const std::string ns = Spread(i++, apps);
    auto out = c.store->List(*c.configmaps, ns, {});
    if (!out.ok() || (*out)["items"].size() != 8) state.SkipWithError("list failed");
    benchmark::DoNotOptimize(out);
  }
}

void BM_ScaleListNamespaceAnswer(benchmark::State& state) {
  const int apps = static_cast<int>(state.range(0));
  Cluster& c = ClusterOf(apps);
  long long i = 0;
  for (auto _ : state) {
    const std::string ns = Spread(i++, apps);
    std::string body = ListAnswer(*c.store, *c.configmaps, ns, {});
    if (body.empty()) state.SkipWithError("list failed");
    benchmark::DoNotOptimize(body);
  }
}

void BM_ScaleListLabelSelector(benchmark::State& state) {
  const int apps = static_cast<int>(state.range(0));
  Cluster& c = ClusterOf(apps);
  long long i = 0;
  for (auto _ : state) {
    emu::ListOptions options;
    options.label_selector = "driftless.dev/application=" + Spread(i++, apps);
    auto out = c.store->List(*c.configmaps, "", options);
    if (!out.ok() || (*out)["items"].size() != 8) state.SkipWithError("list failed");
    benchmark::DoNotOptimize(out);
  }
}

void BM_ScaleListLabelSelectorAnswer(benchmark::State& state) {
  const int apps = static_cast<int>(state.range(0));
  Cluster& c = ClusterOf(apps);
  long long i = 0;
  for (auto _ : state) {
    emu::ListOptions options;
    options.label_selector = "driftless.dev/application=" + Spread(i++, apps);
    std::string body = ListAnswer(*c.store, *c.configmaps, "", options);
    if (body.empty()) state.SkipWithError("list failed");
    benchmark::DoNotOptimize(body);
  }
}

void BM_ScaleDeleteCreate(benchmark::State& state) {
  const int apps = static_cast<int>(state.range(0));
  Cluster& c = ClusterOf(apps);
  long long i = 0;
  for (auto _ : state) {
    const int app = static_cast<int>(i++ * 7919LL % apps);
    const std::string ns = "app-" + std::to_string(app);
    auto gone = c.store->Delete(*c.configmaps, ns, "config-0", {});
    auto back = c.store->Create(*c.configmaps, ns, AppObject("ConfigMap", app, 0), {});
    if (!gone.ok() || !back.ok()) state.SkipWithError("delete/create failed");
  }
}

// Inherently grows with the cluster (every Namespace is returned): for reference.
void BM_ScaleListAllNamespaces(benchmark::State& state) {
  Cluster& c = ClusterOf(static_cast<int>(state.range(0)));
  for (auto _ : state) {
    auto out = c.store->List(*c.namespaces, "", {});
    if (!out.ok()) state.SkipWithError("list failed");
    benchmark::DoNotOptimize(out);
  }
}

void BM_ScaleListAllNamespacesAnswer(benchmark::State& state) {
  Cluster& c = ClusterOf(static_cast<int>(state.range(0)));
  for (auto _ : state) {
    std::string body = ListAnswer(*c.store, *c.namespaces, "", {});
    if (body.empty()) state.SkipWithError("list failed");
    benchmark::DoNotOptimize(body);
  }
}

#define SCALE_ARGS ->Arg(100)->Arg(1000)->Arg(5000)->Unit(benchmark::kMicrosecond)
BENCHMARK(BM_ScaleGet) SCALE_ARGS;
BENCHMARK(BM_ScaleGetAnswer) SCALE_ARGS;
BENCHMARK(BM_ScaleFirstGetAnswer) SCALE_ARGS;
// Readers in parallel (a shared lock): items/s should scale with the threads.
BENCHMARK(BM_ScaleGetAnswer)->Arg(1000)->Threads(1)->Threads(2)->UseRealTime();
BENCHMARK(BM_ScaleListNamespace) SCALE_ARGS;
BENCHMARK(BM_ScaleListNamespaceAnswer) SCALE_ARGS;
BENCHMARK(BM_ScaleListLabelSelector) SCALE_ARGS;
BENCHMARK(BM_ScaleListLabelSelectorAnswer) SCALE_ARGS;
BENCHMARK(BM_ScaleDeleteCreate) SCALE_ARGS;
BENCHMARK(BM_ScaleListAllNamespaces) SCALE_ARGS;
BENCHMARK(BM_ScaleListAllNamespacesAnswer) SCALE_ARGS;
#undef SCALE_ARGS

}  // namespace

BENCHMARK_MAIN();
