// driftless-renderer: renders an application's manifests at the exact commit announced by the
// repo-poller (source.changed) and hands them to the planner (app.rendered). See
// docs/design/renderer.md and renderer_service.h.
#include <filesystem>
#include <iostream>

#include <CLI/CLI.hpp>

#include "common/config/flags.h"
#include "common/git/libgit2_client.h"
#include "common/log/log.h"
#include "services/common/runtime.h"
#include "services/common/topology.h"
#include "services/renderer/renderer_service.h"

int main(int argc, char** argv) {
  using namespace driftless;
  CLI::App app{"driftless-renderer: renders manifests at an exact revision"};
  config::ServiceFlags flags;
  config::RegisterServiceFlags(app, &flags);
  std::chrono::milliseconds git_timeout{std::chrono::seconds(120)};
  config::AddDurationFlag(app, "git-timeout", &git_timeout, "timeout of one fetch");
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
  renderer::RendererService renderer(&runtime.bus(), &runtime.kv(), &runtime.blobs(), &git,
                                     {.emitter = runtime.emitter(),
                                      .work_dir = state_dir + "/work",
                                      .max_deliver = service::kMaxDeliver});
  log::Info("rendering", {{"stateDir", state_dir}});
  return runtime.ServeStage(
      service::kStageRender,
      [&renderer](const v1::Event& e, const bus::Message& m) { return renderer.Handle(e, m); });
}
