// Simulated controllers: they write the status a real cluster's controllers would, so that
// health assessment can be tested against the emulator.
//
// Deployment: status converges (observedGeneration, replicas, updatedReplicas,
//   readyReplicas, availableReplicas, Available/Progressing with NewReplicaSetAvailable)
//   `rollout_delay` after each new generation; the annotation
//   emulator.driftless.dev/rollout-delay-ms overrides the delay per object and
//   emulator.driftless.dev/fail: "true" makes it end in ProgressDeadlineExceeded.
// StatefulSet/DaemonSet/ReplicaSet: ready after the delay. Job: Complete (Failed when
// annotated). Pod: Running and Ready (CrashLoopBackOff when annotated). PVC: Bound.
// CRD: NamesAccepted + Established at once. Service type LoadBalancer and Ingress: a
// load-balancer ingress IP after the delay. Terminating namespaces go away once empty.
//
// SimulateStatus is the pure part; Controllers drives it from the store's change history.
// Thread-safety: Controllers::RunOnce must not run concurrently with itself; Start() runs
// it on its own thread.
#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "tools/kube-emulator/clock.h"
#include "tools/kube-emulator/store.h"

namespace driftless::kube_emulator {

inline constexpr char kRolloutDelayAnnotation[] = "emulator.driftless.dev/rollout-delay-ms";
inline constexpr char kFailAnnotation[] = "emulator.driftless.dev/fail";

struct StatusDecision {
  bool handled = false;  // the kind has a simulated controller
  Json status;           // the status to write (compare with the current one)
  // Evaluate again after this long (the rollout is still in progress).
  std::optional<std::chrono::milliseconds> recheck_after;
};

// The status `object` should have when its current generation was first seen `elapsed`
// ago. `now` (RFC 3339) stamps conditions that change; unchanged conditions keep their
// times from the current status.
StatusDecision SimulateStatus(const ResourceType& rt, const Json& object,
                              std::chrono::milliseconds elapsed,
                              std::chrono::milliseconds default_delay, const std::string& now);

struct ControllerOptions {
  std::chrono::milliseconds rollout_delay{200};
  std::chrono::milliseconds tick{20};
};

class Controllers {
 public:
  // `store` and `clock` must outlive this object.
  Controllers(Store* store, const Clock* clock, ControllerOptions options);
  ~Controllers();

  // One pass over changed objects and due rollouts. Returns the number of status writes.
  int RunOnce();
  // Runs RunOnce every `tick` on a thread until Stop().
  void Start();
  void Stop();

 private:
  void Reconcile(const std::string& store_key, const std::string& key, bool* wrote);

  struct Seen {
    std::string uid;
    long long generation = 0;
    std::chrono::system_clock::time_point since;
  };
  Store* store_;
  const Clock* clock_;
  ControllerOptions options_;
  long long cursor_ = -1;
  std::map<std::string, Seen> seen_;  // store_key|key ->
  std::map<std::string, std::chrono::system_clock::time_point> due_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace driftless::kube_emulator
