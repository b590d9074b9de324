// driftless-applier: the only writer to clusters — server-side apply, prune, health wait,
// history. See docs/design/applier.md and applier_service.h.
#include <algorithm>
#include <iostream>
#include <memory>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>

#include "common/config/flags.h"
#include "common/kube/curl_kube_client.h"
#include "common/kube/kubeconfig.h"
#include "common/log/log.h"
#include "services/applier/applier_service.h"
#include "services/common/runtime.h"
#include "services/common/topology.h"

// Syncs wait on the cluster (applies, health) far more than on the CPU.
constexpr int kDefaultWorkers = 16;

int main(int argc, char** argv) {
  using namespace driftless;
  CLI::App app{"driftless-applier: applies plans to clusters (server-side apply, prune, health)"};
  config::ServiceFlags flags;
  config::RegisterServiceFlags(app, &flags);
  std::string kubeconfig;
  config::AddStringFlag(app, "kubeconfig", &kubeconfig, "kubeconfig of the in-cluster destination")
      ->required();
  std::string context;
  config::AddStringFlag(app, "context", &context, "kubeconfig context (default: current)");
  std::chrono::milliseconds health_timeout{std::chrono::seconds(60)};
  config::AddDurationFlag(app, "health-timeout", &health_timeout,
                          "how long a sync waits for its objects to become healthy");
  double qps = 500;
  config::AddDoubleFlag(app, "kube-qps", &qps,
                        "Kubernetes API requests per second (<= 0: no limit)");
  int history_limit = 20;
  config::AddIntFlag(app, "history-limit", &history_limit,
                     "sync history entries kept per application");
  std::chrono::milliseconds kube_timeout{std::chrono::seconds(10)};
  config::AddDurationFlag(app, "kube-timeout", &kube_timeout,
                          "deadline of one Kubernetes request (the sync lease outlives it 3x)");
  if (auto code = config::ParseFlags(app, argc, argv)) return *code;

  absl::StatusOr<kube::RestConfig> rest = kube::LoadKubeconfig(kubeconfig, context);
  if (!rest.ok()) {
    std::cerr << "driftless-applier: --kubeconfig " << kubeconfig << ": " << rest.status() << "\n";
    return 2;
  }
  absl::StatusOr<std::unique_ptr<kube::CurlKubeClient>> kube = kube::CurlKubeClient::New(
      *rest,
      {.qps = qps,
       .burst = static_cast<int>(std::max(10.0, qps * 2)),
       .request_timeout = absl::FromChrono(kube_timeout),
       .max_idle_connections = kDefaultWorkers * 2});
  if (!kube.ok()) {
    std::cerr << "driftless-applier: " << kube.status() << "\n";
    return 2;
  }
  auto rt = service::Runtime::Start("applier", flags);
  if (!rt.ok()) {
    std::cerr << "driftless-applier: " << rt.status() << "\n";
    return 1;
  }
  service::Runtime& runtime = **rt;
  log::Info("applying", {{"cluster", rest->server}, {"healthTimeout", health_timeout}});
  // One service per worker, plus one for the sweep: each holds application leases under its
  // own holder id (a lease is never shared by two threads).
  const int workers = runtime.Workers(kDefaultWorkers);
  std::vector<std::unique_ptr<applier::ApplierService>> appliers;
  for (int i = 0; i <= workers; ++i) {
    applier::ApplierOptions options{.emitter = runtime.emitter(),
                                    .worker = i,
                                    .health_timeout = absl::FromChrono(health_timeout),
                                    .lease_ttl = absl::FromChrono(kube_timeout) * 3,
                                    .history_limit = history_limit,
                                    .max_deliver = service::kMaxDeliver};
    options.run.request_timeout = absl::FromChrono(kube_timeout);
    options.run.wave_health_timeout = absl::FromChrono(health_timeout);
    appliers.push_back(std::make_unique<applier::ApplierService>(
        kube->get(), &runtime.kv(), &runtime.blobs(), &runtime.bus(), std::move(options)));
  }
  // The safety net for pending plans whose holder died between its sync and its pending check.
  applier::ApplierService* sweep = appliers.back().get();
  std::thread sweeper([&runtime, sweep] {
    while (!runtime.WaitForShutdown(absl::Seconds(15))) sweep->SweepPending();
  });
  int code = runtime.ServeStageWorkers(
      service::kStageApply,
      [&appliers](int worker) -> service::EventHandler {
        applier::ApplierService* a = appliers[worker].get();
        return [a](const v1::Event& e, const bus::Message& m) { return a->Handle(e, m); };
      },
      workers);
  runtime.RequestShutdown();
  sweeper.join();
  return code;
}
