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
// Start() runs passes on a thread that sleeps until the store changes (a change listener) or a
// rollout in progress is due, at most one pass per `tick`: an idle emulator does no work.
// Thread-safety: Controllers::RunOnce must not run concurrently with itself (nor with the
// thread of Start()).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
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
  std::chrono::milliseconds tick{20};  // minimum time between two passes (batches changes)
};

class Controllers {
 public:
  // `store` and `clock` must outlive this object.
  Controllers(Store* store, const Clock* clock, ControllerOptions options);
  ~Controllers();

  // One pass over changed objects and due rollouts. Returns the number of status writes.
  int RunOnce();
  // When the next rollout in progress is due (after RunOnce), if any.
  std::optional<std::chrono::system_clock::time_point> NextDue() const;
  // Runs RunOnce on a thread after each change of the store and when a rollout is due, until
  // Stop(). Idempotent.
  void Start();
  void Stop();
  // Passes run so far (RunOnce calls).
  int PassesForTest() const { return passes_; }

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
  void Loop();

  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;     // guarded by mu_
  bool changed_ = false;  // guarded by mu_: the store changed since the last pass began
  int listener_ = -1;
  std::atomic<int> passes_{0};
  std::thread thread_;
};

}  // namespace driftless::kube_emulator
