// Drift detection and self-heal (../shared/DESIGN.md §1; the sync-engine issue). The detector
// owns the planner's live cache (live_cache.h) and judges each application against the desired
// objects of its last planned generation (status.desired_digest, a blob the planner writes):
//
//  - A change to one of an application's live objects (a watch event), a finished sync
//    (a status write with applied_seq >= desired_seq) or the periodic --drift-check-interval
//    schedules a check of that application.
//  - Only applications that are settled (no sync in flight) and Synced, or that the detector
//    itself reported drifted, are checked: an application never synced is not "drifted".
//  - Drift (sync::FindDrift) seen twice, `confirm` apart (a watch lagging an apply is not
//    drift), turns the application OutOfSync, names each object and field in its status
//    (condition service::kDriftedCondition) and broadcasts app.drifted once per distinct drift.
//    When the application is automated with selfHeal (and not suspended), it asks for a new desired
//    generation ("heal"), which re-applies through the normal pipeline; consecutive heals
//    within `heal_window` wait sync::HealDelay. A drift that goes away by itself (reverted
//    by hand) turns the application Synced again.
//
// Across replicas one detector is active at a time (the lease "planner.drift"); the others
// keep their caches warm for their own plans and take over when the lease expires.
//
//   DriftDetector detector(kube, &kv, &blobs, &bus, emitter, {});
//   std::jthread drift([&](std::stop_token stop) { detector.Run(stop); });
//   PlannerService planner(..., &detector.cache());
//
// Thread-safe.
#pragma once

#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <stop_token>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "common/bus/blob_store.h"
#include "common/bus/event_bus.h"
#include "common/bus/kv_store.h"
#include "common/bus/lease.h"
#include "common/kube/kube_client.h"
#include "driftless/v1/events.pb.h"
#include "services/planner/live_cache.h"
#include "services/sync/drift.h"

namespace driftless::planner {

class DriftDetector {
 public:
  struct Options {
    absl::Duration debounce = absl::Milliseconds(20);    // after a live object changed
    absl::Duration confirm = absl::Milliseconds(100);    // drift must persist this long
    absl::Duration settle = absl::Milliseconds(100);     // after a sync finished
    absl::Duration interval = absl::Minutes(3);          // every application re-checked
    absl::Duration heal_backoff = absl::Seconds(1);      // sync::HealDelay's base
    absl::Duration heal_backoff_max = absl::Minutes(5);  // and its cap
    // Heals further apart than this (plus the wait the last one imposed) start over.
    absl::Duration heal_window = absl::Minutes(2);
    // A heal whose generation was not planned after this is asked for again.
    absl::Duration heal_timeout = absl::Seconds(30);
    absl::Duration lease_ttl = absl::Seconds(15);
    LiveCache::Options cache;
  };

  // Nothing is owned; everything must outlive the detector.
  DriftDetector(kube::KubeClient* kube, bus::KvStore* kv, bus::BlobStore* blobs, bus::EventBus* bus,
                std::string emitter, Options options);

  // The live cache (for the planner's plans).
  LiveCache& cache() { return cache_; }

  // Watches the status bucket and checks applications as they fall due until `stop`.
  // Errors: the status watch cannot start (NATS unreachable).
  absl::Status Run(std::stop_token stop);

  // One of `application`'s live objects changed.
  void Touch(std::string_view application);

  // Checks `application` now, as Run does when a check falls due (tests, while Run is not
  // checking the same application). Returns whether it is drifted.
  absl::StatusOr<bool> CheckNowForTest(const std::string& application);

 private:
  struct Desired {
    KindRef kind;
    std::string key;   // manifest::ObjectKey
    std::string json;  // compact
  };
  struct Target {
    // From the status of record.
    std::string uid;
    int64_t seq = 0;
    int64_t applied = 0;
    std::string digest;
    std::string revision;
    bool synced = false;   // status.sync == SYNCED
    bool drifted = false;  // condition Drifted set
    // Loaded for (uid, seq): the spec and the desired objects of `loaded_digest`.
    int64_t loaded_seq = -1;
    std::string loaded_digest;
    bool automated = false, self_heal = false, suspend = false;
    std::vector<sync::IgnoreRule> ignore;
    std::vector<Desired> desired;
    // Drift bookkeeping.
    // The live objects' content digests (LiveCache::ContentDigest) when last found in sync: a
    // check that finds the same ones (a periodic pass, a status write) has nothing to diff.
    std::string clean_versions;
    sync::DriftMemory memory;     // confirmation, reports and heals (sync::NextDriftStep)
    std::string rerender_digest;  // an expired desired state a re-render was asked for
    absl::Time due = absl::InfiniteFuture();
  };

  void OnStatus(const bus::WatchEvent& event);
  void Schedule(const std::string& application, absl::Time when);  // mu_ held
  // Loads the spec and the desired objects into `target` (a copy) for its (seq, digest).
  // kNotFound / kFailedPrecondition when the application is gone or was re-created.
  absl::Status Load(const std::string& application, Target& target);
  absl::StatusOr<bool> Check(const std::string& application);
  absl::Status Report(const std::string& application, const Target& target,
                      const std::vector<sync::ObjectDrift>& drift);
  absl::Status Heal(const std::string& application, const Target& target,
                    const std::string& summary);
  bool Active(absl::Time now);

  kube::KubeClient* kube_;
  bus::KvStore* kv_;
  bus::BlobStore* blobs_;
  bus::EventBus* bus_;
  std::string emitter_;
  Options options_;
  sync::HealPolicy heal_policy_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, Target> targets_;
  std::set<std::pair<absl::Time, std::string>> queue_;  // (due, application)
  // Leadership among replicas: touched only by the Run loop's thread (no lock).
  bool active_ = false;
  absl::Time lease_checked_ = absl::InfinitePast();
  bus::Lease lease_;
  std::optional<bus::LeaseGrant> grant_;
  // Last: its watch threads call Touch, so it stops before the state above goes.
  LiveCache cache_;
};

}  // namespace driftless::planner
