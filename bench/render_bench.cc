// The renderer's overhead over the bare tools (issue: at most 1.10 cold) and the cost of a
// render-cache hit (target: under 1 ms).
//
//   BM_Kustomize/direct   `kubectl kustomize <overlay>` through process::Run, output discarded
//   BM_Kustomize/generate Generate(): containment walk, overlay for the application's inline
//                         options, the same tool run, parsing, substitution and duplicate check
//   BM_Helm/direct        `helm template` of a chart with a value file
//   BM_Helm/generate      Generate() for the same chart and value file
//   BM_CacheHit           what a hit costs in the renderer: the cache key (canonical JSON +
//                         sha256 of the spec), the lookup and decoding the stored manifests
//
// The fixtures (an overlay over a 12-object base, a 12-template chart) are written to a
// temporary directory; helm and kubectl come from DRIFTLESS_TOOLS_DIR (.tools/bin).
// Run: scripts/bench render_bench   (or build-bench/bench/render_bench)
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "common/manifest/manifest.h"
#include "common/process/run.h"
#include "driftless/v1/events.pb.h"
#include "services/renderer/generate.h"
#include "services/renderer/render_cache.h"

namespace {

namespace fs = std::filesystem;
using driftless::manifest::Json;
namespace renderer = driftless::renderer;
namespace process = driftless::process;

const std::string kTools = DRIFTLESS_TOOLS_DIR;

void Write(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << text;
}

struct Fixture {
  std::string repo;
  std::string scratch;
  renderer::Tools tools;

  Fixture() {
    char tmpl[] = "/tmp/driftless-render-bench-XXXXXX";
    const std::string dir = mkdtemp(tmpl);
    repo = dir + "/repo";
    scratch = dir + "/scratch";
    tools = renderer::FindTools({.helm = kTools + "/helm", .kubectl = kTools + "/kubectl"});
    std::string resources;
    for (int i = 0; i < 4; ++i) {
      const std::string n = std::to_string(i);
      Write(repo + "/apps/base/deploy-" + n + ".yaml",
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web-" + n +
                "}\nspec:\n  selector: {matchLabels: {app: web-" + n +
                "}}\n  template:\n    metadata: {labels: {app: web-" + n +
                "}}\n    spec:\n      containers: [{name: web, image: nginx:1.25}]\n");
      Write(repo + "/apps/base/svc-" + n + ".yaml",
            "apiVersion: v1\nkind: Service\nmetadata: {name: web-" + n +
                "}\nspec: {selector: {app: web-" + n + "}, ports: [{port: 80}]}\n");
      Write(repo + "/apps/base/cm-" + n + ".yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web-" + n +
                "}\ndata: {color: blue, size: large}\n");
      resources += "deploy-" + n + ".yaml, svc-" + n + ".yaml, cm-" + n + ".yaml, ";
    }
    resources.resize(resources.size() - 2);
    Write(repo + "/apps/base/kustomization.yaml", "resources: [" + resources + "]\n");
    Write(repo + "/apps/prod/kustomization.yaml",
          "resources: [../base]\nnamePrefix: prod-\ncommonLabels: {env: prod}\n");
    Write(repo + "/charts/web/Chart.yaml", "apiVersion: v2\nname: web\nversion: 0.1.0\n");
    Write(repo + "/charts/web/values.yaml", "replicas: 1\nimage: nginx:1.25\n");
    for (int i = 0; i < 12; ++i) {
      const std::string n = std::to_string(i);
      Write(repo + "/charts/web/templates/cm-" + n + ".yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-" + n +
                "\ndata:\n  replicas: {{ .Values.replicas | quote }}\n"
                "  image: {{ .Values.image | quote }}\n");
    }
    Write(repo + "/envs/prod.yaml", "replicas: 3\n");
  }
};

Fixture& F() {
  static Fixture f;
  return f;
}

void RunDirect(benchmark::State& state, std::vector<std::string> argv) {
  for (auto _ : state) {
    absl::StatusOr<process::RunResult> r =
        process::Run({.argv = argv, .cwd = F().repo, .env = process::ScrubbedEnv({"HOME=/tmp"})});
    if (!r.ok() || r->exit_code != 0) {
      state.SkipWithError(r.ok() ? r->err.c_str() : "tool did not run");
      return;
    }
    benchmark::DoNotOptimize(r->out);
  }
}

void RunGenerate(benchmark::State& state, const Json& source) {
  for (auto _ : state) {
    std::error_code ec;
    fs::remove_all(F().scratch, ec);
    fs::create_directories(F().scratch);
    absl::StatusOr<renderer::Generated> g = renderer::Generate({.application = "web",
                                                                .source = source,
                                                                .destination_namespace = "web",
                                                                .checkout = F().repo,
                                                                .scratch = F().scratch},
                                                               F().tools);
    if (!g.ok()) {
      state.SkipWithError(std::string(g.status().message()).c_str());
      return;
    }
    benchmark::DoNotOptimize(g->objects);
  }
}

void BM_KustomizeDirect(benchmark::State& state) {
  RunDirect(state, {kTools + "/kubectl", "kustomize", "apps/prod"});
}
void BM_KustomizeGenerate(benchmark::State& state) { RunGenerate(state, {{"path", "apps/prod"}}); }
void BM_HelmDirect(benchmark::State& state) {
  RunDirect(state, {kTools + "/helm", "template", "web", "charts/web", "--namespace", "web",
                    "--include-crds", "--values", "envs/prod.yaml"});
}
void BM_HelmGenerate(benchmark::State& state) {
  RunGenerate(state,
              {{"path", "charts/web"}, {"helm", {{"valueFiles", {"../../envs/prod.yaml"}}}}});
}

void BM_CacheHit(benchmark::State& state) {
  renderer::RenderCache cache;
  const Json spec = {{"source",
                      {{"repoURL", "file:///srv/repo"},
                       {"path", "apps/prod"},
                       {"kustomize", {{"namePrefix", "prod-"}}}}},
                     {"destination", {{"cluster", "in-cluster"}, {"namespace", "web"}}}};
  const std::string commit(40, 'a');
  auto key = [&] {
    return driftless::manifest::Sha256Hex(
        driftless::manifest::CanonicalJson(Json{{"application", "web"},
                                                {"source", spec["source"]},
                                                {"destination", spec["destination"]},
                                                {"commit", commit},
                                                {"tools", F().tools.versions}}));
  };
  driftless::v1::ManifestPayload payload;
  payload.set_inline_json(std::string(20 << 10, 'x'));  // a 20 KiB render
  cache.Put(key(), {.manifests = payload.SerializeAsString(),
                    .render_digest = "sha256:x",
                    .generator = "kustomize",
                    .objects = 12});
  for (auto _ : state) {
    std::optional<renderer::CachedRender> hit = cache.Get(key());
    driftless::v1::ManifestPayload decoded;
    if (!hit || !decoded.ParseFromString(hit->manifests)) {
      state.SkipWithError("no hit");
      return;
    }
    benchmark::DoNotOptimize(decoded);
  }
}

// Wall time: the work is in child processes, which the benchmark's own CPU clock never sees.
BENCHMARK(BM_KustomizeDirect)->Unit(benchmark::kMillisecond)->MinTime(3)->UseRealTime();
BENCHMARK(BM_KustomizeGenerate)->Unit(benchmark::kMillisecond)->MinTime(3)->UseRealTime();
BENCHMARK(BM_HelmDirect)->Unit(benchmark::kMillisecond)->MinTime(3)->UseRealTime();
BENCHMARK(BM_HelmGenerate)->Unit(benchmark::kMillisecond)->MinTime(3)->UseRealTime();
BENCHMARK(BM_CacheHit)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
