// driftless-planner: diffs rendered manifests against the live cluster and plans syncs.
// See docs/design/planner.md and planner_service.h.
#include <algorithm>
#include <iostream>
#include <thread>

#include <CLI/CLI.hpp>

#include "common/config/flags.h"
#include "common/kube/curl_kube_client.h"
#include "common/kube/kubeconfig.h"
#include "common/log/log.h"
#include "common/strings/str.h"
#include "services/common/runtime.h"
#include "services/common/topology.h"
#include "services/planner/drift_detector.h"
#include "services/planner/planner_service.h"

// Plans wait on the cluster (lists, gets) far more than on the CPU.
constexpr int kDefaultWorkers = 8;

int main(int argc, char** argv) {
  using namespace driftless;
  CLI::App app{"driftless-planner: diffs desired against live and decides what a sync does"};
  config::ServiceFlags flags;
  config::RegisterServiceFlags(app, &flags);
  std::string kubeconfig;
  config::AddStringFlag(app, "kubeconfig", &kubeconfig, "kubeconfig of the in-cluster destination")
      ->required();
  std::string context;
  config::AddStringFlag(app, "context", &context, "kubeconfig context (default: current)");
  double qps = 500;
  config::AddDoubleFlag(app, "kube-qps", &qps,
                        "Kubernetes API requests per second (<= 0: no limit)");
  std::chrono::milliseconds inputs_interval{std::chrono::seconds(60)};
  config::AddDurationFlag(app, "render-inputs-interval", &inputs_interval,
                          "How often the cluster's version and API list and every "
                          "application's valuesFrom/substituteFrom objects are read again");
  std::chrono::milliseconds drift_interval{std::chrono::minutes(3)};
  config::AddDurationFlag(app, "drift-check-interval", &drift_interval,
                          "How often every application is compared with its live objects even "
                          "without a watch event (drift is otherwise seen as it happens)");
  std::chrono::milliseconds heal_backoff{std::chrono::seconds(1)};
  config::AddDurationFlag(app, "self-heal-backoff", &heal_backoff,
                          "Wait before the second self-heal of an application within two "
                          "minutes, doubled per further heal (at most 5m)");
  if (auto code = config::ParseFlags(app, argc, argv)) return *code;

  absl::StatusOr<kube::RestConfig> rest = kube::LoadKubeconfig(kubeconfig, context);
  if (!rest.ok()) {
    std::cerr << "driftless-planner: --kubeconfig " << kubeconfig << ": " << rest.status() << "\n";
    return 2;
  }
  absl::StatusOr<std::unique_ptr<kube::CurlKubeClient>> kube =
      kube::CurlKubeClient::New(*rest, {.qps = qps,
                                        .burst = static_cast<int>(std::max(10.0, qps * 2)),
                                        .max_idle_connections = kDefaultWorkers * 2});
  if (!kube.ok()) {
    std::cerr << "driftless-planner: " << kube.status() << "\n";
    return 2;
  }
  auto rt = service::Runtime::Start("planner", flags);
  if (!rt.ok()) {
    std::cerr << "driftless-planner: " << rt.status() << "\n";
    return 1;
  }
  service::Runtime& runtime = **rt;
  log::Info("planning", {{"cluster", rest->server}});
  planner::DriftDetector drift(kube->get(), &runtime.kv(), &runtime.blobs(), &runtime.bus(),
                               runtime.emitter(),
                               {.interval = absl::FromChrono(drift_interval),
                                .heal_backoff = absl::FromChrono(heal_backoff)});
  std::jthread drift_thread([&](std::stop_token stop) {
    while (!stop.stop_requested()) {
      absl::Status s = drift.Run(stop);
      if (s.ok()) return;
      log::Warn("drift detection stopped, restarting", {{"error", s}});
      if (runtime.WaitForShutdown(absl::Seconds(1))) return;
    }
  });
  planner::PlannerService planner(kube->get(), &runtime.kv(), &runtime.blobs(), &runtime.bus(),
                                  runtime.emitter(), &drift.cache());
  // `driftless app diff`, asked by the api.
  absl::StatusOr<std::unique_ptr<bus::Subscription>> diffs = runtime.bus().Serve(
      service::kDiffSubject, service::kPlannerQueue, [&planner](std::string_view data) {
        v1::DiffRequest request;
        v1::DiffReply reply;
        if (!request.ParseFromArray(data.data(), static_cast<int>(data.size()))) {
          reply.set_error_code(static_cast<int32_t>(absl::StatusCode::kInvalidArgument));
          reply.set_error("diff request is not a driftless.v1.DiffRequest");
          return reply.SerializeAsString();
        }
        try {
          reply = planner.Diff(request.application());
        } catch (const std::exception& e) {  // a responder must not throw
          reply.Clear();
          reply.set_error_code(static_cast<int32_t>(absl::StatusCode::kInternal));
          reply.set_error(strings::Cat("diff of ", request.application(), " failed: ", e.what()));
        }
        return reply.SerializeAsString();
      });
  if (!diffs.ok()) {
    std::cerr << "driftless-planner: " << diffs.status() << "\n";
    return 1;
  }
  // The render inputs: first before any render needs them, then every interval.
  std::thread refresh([&] {
    do {
      if (absl::Status s = planner.RefreshInputs(); !s.ok()) {
        log::Warn("cannot refresh the render inputs", {{"error", s}});
      }
    } while (!runtime.WaitForShutdown(absl::FromChrono(inputs_interval)));
  });
  int code = runtime.ServeStageWorkers(
      service::kStagePlan,
      [&planner](int) -> service::EventHandler {
        return
            [&planner](const v1::Event& e, const bus::Message& m) { return planner.Handle(e, m); };
      },
      kDefaultWorkers);
  runtime.RequestShutdown();
  refresh.join();
  (*diffs)->Stop();
  drift_thread.request_stop();
  drift_thread.join();
  return code;
}
