// driftless-repo-poller: resolves each Application's git ref and announces new commits
// (source.changed, work item for the renderer). See docs/design/repo-poller.md and
// poller_service.h.
#include <filesystem>
#include <iostream>

#include <CLI/CLI.hpp>

#include "common/config/flags.h"
#include "common/git/libgit2_client.h"
#include "common/log/log.h"
#include "services/common/runtime.h"
#include "services/common/topology.h"
#include "services/repo-poller/poller_service.h"

int main(int argc, char** argv) {
  using namespace driftless;
  CLI::App app{"driftless-repo-poller: resolves application sources and announces new commits"};
  config::ServiceFlags flags;
  config::RegisterServiceFlags(app, &flags);
  std::chrono::milliseconds default_interval{std::chrono::minutes(3)};
  std::chrono::milliseconds resync{std::chrono::minutes(3)};
  std::chrono::milliseconds git_timeout{std::chrono::seconds(60)};
  config::AddDurationFlag(app, "default-interval", &default_interval,
                          "poll period of an application without spec.interval");
  config::AddDurationFlag(
      app, "resync-interval", &resync,
      "period of the full application list next to the KV watch (+0-10% jitter)");
  config::AddDurationFlag(app, "git-timeout", &git_timeout, "timeout of one ls-remote or fetch");
  if (auto code = config::ParseFlags(app, argc, argv)) return *code;

  auto rt = service::Runtime::Start("repo-poller", flags);
  if (!rt.ok()) {
    std::cerr << "driftless-repo-poller: " << rt.status() << "\n";
    return 1;
  }
  service::Runtime& runtime = **rt;
  std::string state_dir = flags.state_dir;
  if (state_dir.empty()) {
    state_dir = (std::filesystem::temp_directory_path() /
                 ("driftless-repo-poller-" + std::to_string(getpid())))
                    .string();
  }
  git::Libgit2Client git({.cache_dir = state_dir + "/mirrors", .timeout = git_timeout});
  repo_poller::PollerService poller(&runtime.bus(), &runtime.kv(), &git,
                                    {.emitter = runtime.emitter(),
                                     .default_interval = absl::FromChrono(default_interval),
                                     .resync_interval = absl::FromChrono(resync),
                                     .replica_id = runtime.flags().replica_id});
  auto sub = runtime.ConsumeStage(
      service::kStagePoll,
      [&poller](const v1::Event& e, const bus::Message& m) { return poller.Handle(e, m); });
  if (!sub.ok()) {
    log::Error("cannot consume the poll stage", {{"error", sub.status()}});
    return runtime.ShuttingDown() ? 0 : 1;
  }
  // The watch needs the resources bucket, which provisioning creates: retry until it exists.
  for (int attempt = 1;; ++attempt) {
    absl::Status s = poller.Start();
    if (s.ok()) break;
    if (attempt == 1 || attempt % 20 == 0) {
      log::Warn("cannot watch applications yet, retrying", {{"error", s}});
    }
    if (runtime.WaitForShutdown(absl::Milliseconds(500))) {
      (*sub)->Stop();
      return 0;
    }
  }
  log::Info("polling", {{"stateDir", state_dir}});
  if (absl::Status s = runtime.MarkReady({}); !s.ok()) {
    log::Error("cannot write the ready file", {{"error", s}});
    return 1;
  }
  int code = runtime.Run();
  (*sub)->Stop();
  poller.Stop();
  return code;
}
