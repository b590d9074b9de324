// driftless-renderer: renders an application's manifests at the exact commit announced by the
// repo-poller (source.changed) and hands them to the planner (app.rendered). See
// docs/design/renderer.md and renderer_service.h.
#include <filesystem>
#include <iostream>
#include <memory>
#include <vector>

#include <CLI/CLI.hpp>

#include "common/config/flags.h"
#include "common/git/libgit2_client.h"
#include "common/log/log.h"
#include "services/common/runtime.h"
#include "services/common/topology.h"
#include "services/renderer/renderer_service.h"

// Renders are mostly CPU (parse, canonicalize) on a small machine: two at a time.
constexpr int kDefaultWorkers = 2;

int main(int argc, char** argv) {
  using namespace driftless;
  CLI::App app{"driftless-renderer: renders manifests at an exact revision"};
  config::ServiceFlags flags;
  config::RegisterServiceFlags(app, &flags);
  std::chrono::milliseconds git_timeout{std::chrono::seconds(120)};
  config::AddDurationFlag(app, "git-timeout", &git_timeout, "timeout of one fetch");
  renderer::ToolPaths tool_paths;
  app.add_option("--helm", tool_paths.helm, "helm 3 binary (default: helm in PATH)");
  app.add_option("--kubectl", tool_paths.kubectl,
                 "kubectl whose built-in kustomize renders (default: kubectl in PATH)");
  app.add_option("--kustomize", tool_paths.kustomize,
                 "a standalone kustomize binary to use instead of kubectl's");
  std::chrono::milliseconds tool_timeout{std::chrono::seconds(90)};
  config::AddDurationFlag(app, "tool-timeout", &tool_timeout,
                          "timeout of one helm or kustomize run");
  uint64_t tool_max_output = 100ull << 20;
  app.add_option("--tool-max-output", tool_max_output,
                 "bytes one helm or kustomize run may print before it is stopped");
  if (auto code = config::ParseFlags(app, argc, argv)) return *code;

  auto rt = service::Runtime::Start("renderer", flags);
  if (!rt.ok()) {
    std::cerr << "driftless-renderer: " << rt.status() << "\n";
    return 1;
  }
  service::Runtime& runtime = **rt;
  std::string state_dir = flags.state_dir;
  if (state_dir.empty()) {
    state_dir = (std::filesystem::temp_directory_path() /
                 ("driftless-renderer-" + std::to_string(getpid())))
                    .string();
  }
  git::Libgit2Client git({.cache_dir = state_dir + "/mirrors", .timeout = git_timeout});
  renderer::Tools tools = renderer::FindTools(tool_paths);
  tools.timeout = absl::FromChrono(tool_timeout);
  tools.max_output = tool_max_output;
  renderer::CheckoutCache checkouts(&git, state_dir + "/checkouts");
  renderer::RenderCache cache;
  // One service per worker, each with its own scratch directory (per application and worker);
  // the mirrors (the git client serializes per mirror), checkouts and render cache are shared.
  const int workers = runtime.Workers(kDefaultWorkers);
  std::vector<std::unique_ptr<renderer::RendererService>> renderers;
  for (int i = 0; i < workers; ++i) {
    renderers.push_back(std::make_unique<renderer::RendererService>(
        &runtime.bus(), &runtime.kv(), &runtime.blobs(), &git,
        renderer::RendererOptions{.emitter = runtime.emitter(),
                                  .work_dir = state_dir + "/work/w" + std::to_string(i),
                                  .max_deliver = service::kMaxDeliver,
                                  .tools = &tools,
                                  .checkouts = &checkouts,
                                  .cache = &cache}));
  }
  log::Info("rendering", {{"stateDir", state_dir},
                          {"workers", workers},
                          {"helm", tools.helm.empty() ? "not found" : tools.helm},
                          {"kustomize", tools.kustomize.empty() ? "not found" : tools.kustomize[0]},
                          {"tools", tools.versions}});
  return runtime.ServeStageWorkers(
      service::kStageRender,
      [&renderers](int worker) -> service::EventHandler {
        renderer::RendererService* r = renderers[worker].get();
        return [r](const v1::Event& e, const bus::Message& m) { return r->Handle(e, m); };
      },
      workers);
}
