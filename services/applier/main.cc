// driftless-applier: the only writer to clusters — server-side apply, prune, health wait,
// history. See docs/design/applier.md and applier_service.h.
#include <algorithm>
#include <iostream>

#include <CLI/CLI.hpp>

#include "common/config/flags.h"
#include "common/kube/curl_kube_client.h"
#include "common/kube/kubeconfig.h"
#include "common/log/log.h"
#include "services/applier/applier_service.h"
#include "services/common/runtime.h"
#include "services/common/topology.h"

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
  double qps = 100;
  config::AddDoubleFlag(app, "kube-qps", &qps,
                        "Kubernetes API requests per second (<= 0: no limit)");
  if (auto code = config::ParseFlags(app, argc, argv)) return *code;

  absl::StatusOr<kube::RestConfig> rest = kube::LoadKubeconfig(kubeconfig, context);
  if (!rest.ok()) {
    std::cerr << "driftless-applier: --kubeconfig " << kubeconfig << ": " << rest.status() << "\n";
    return 2;
  }
  absl::StatusOr<std::unique_ptr<kube::CurlKubeClient>> kube = kube::CurlKubeClient::New(
      *rest,
      {.qps = qps, .burst = static_cast<int>(std::max(10.0, qps * 2)), .max_idle_connections = 4});
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
  applier::ApplierService applier(kube->get(), &runtime.kv(), &runtime.blobs(), &runtime.bus(),
                                  {.emitter = runtime.emitter(),
                                   .health_timeout = absl::FromChrono(health_timeout),
                                   .max_deliver = service::kMaxDeliver});
  return runtime.ServeStage(
      service::kStageApply,
      [&applier](const v1::Event& e, const bus::Message& m) { return applier.Handle(e, m); });
}
