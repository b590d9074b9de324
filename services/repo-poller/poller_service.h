// The repo-poller's shell (docs/design/repo-poller.md, pipeline contract §1): knows the
// Applications from a watch on the `resources` bucket (plus a periodic full list as a safety
// net), polls each application's repository at spec.interval with one ls-remote per repository
// URL, and emits `source.changed` (work item on stage render + broadcast) whenever the
// (commit, spec digest) pair differs from the one recorded in the `sources` bucket.
//
//   git::Libgit2Client git({.cache_dir = state_dir + "/mirrors"});
//   PollerService poller(&rt.bus(), &rt.kv(), &git, {.emitter = rt.emitter()});
//   DL_RETURN_IF_ERROR(poller.Start());                     // KV watch + timer thread
//   auto sub = rt.ConsumeStage(service::kStagePoll,
//       [&](const v1::Event& e, const bus::Message& m) { return poller.Handle(e, m); });
//
// Work items on stage poll:
//   sync.retry      a failed sync's next attempt (from the applier), minted when due.
//   sync.requested  re-resolves the application's ref (or takes request.revision) now and always
//                   emits source.changed carrying the request, even when nothing moved.
//   webhook.push    polls now every application whose normalized repository URL matches.
// Errors (missing repository/branch, bad URL, unreachable host) set the SourceError condition
// and broadcast sync.failed once per distinct error; the next tick retries. Work items are
// Acked after handling; Nak only for transient NATS errors.
//
// Thread-safe: Handle runs on the subscription thread, polls driven by the timer on the
// service's own thread; the per-application record is updated under a per-application lock.
#pragma once

#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/bus/event_bus.h"
#include "common/bus/kv_store.h"
#include "common/git/git_client.h"
#include "driftless/v1/events.pb.h"
#include "services/common/state.h"
#include "services/repo-poller/poll.h"

namespace driftless::repo_poller {

struct PollerOptions {
  std::string emitter = "repo-poller/local";
  // Poll period of an application without spec.interval.
  absl::Duration default_interval = absl::Minutes(3);
  // Period of the full ResourceStore.List safety net next to the KV watch (jittered by up
  // to +10%).
  absl::Duration resync_interval = absl::Minutes(3);
  // This replica's name among the live pollers (bucket pollers); "" = the emitter. Timer polls
  // cover only the repositories this replica owns; requests and webhooks are served by
  // whichever replica receives them.
  std::string replica_id;
  // How often membership is refreshed (its entries expire after service::kPollerMemberTtl).
  absl::Duration membership_interval = absl::Seconds(5);
};

class PollerService {
 public:
  // `bus`, `kv` and `git` are not owned and must outlive this object.
  PollerService(bus::EventBus* bus, bus::KvStore* kv, git::GitClient* git, PollerOptions options);
  ~PollerService();

  // Starts the KV watch on Application resources and the timer thread. Errors: the watch
  // cannot be created (the caller retries or exits).
  absl::Status Start();
  // Stops the watch and the timer thread. Idempotent.
  void Stop();

  // A work item of stage poll (sync.requested, webhook.push; other types are Acked).
  bus::Disposition Handle(const v1::Event& event, const bus::Message& message);

  // Polls `application` now, as the timer would (for tests and tools).
  absl::Status PollNow(const std::string& application);

  // Whether this replica polls `normalized_url` on its timer (it owns it, or no membership is
  // known yet).
  bool Owns(const std::string& normalized_url);

 private:
  struct Tracked {
    service::StoredResource resource;
    std::chrono::steady_clock::time_point next_due;
    std::string url;  // git::NormalizeUrl of spec.source.repoURL ("" if it has none)
  };
  // One application resolved against its repository.
  struct Target {
    service::StoredResource resource;
    AppSource source;
    bool default_head = false;  // no spec.source.ref: the remote's HEAD
  };

  void OnWatch(const bus::WatchEvent& event);
  // Adds or refreshes an application; a new one or a changed spec digest is due now.
  void Track(const service::StoredResource& resource);
  void Untrack(const std::string& application);
  void Resync();
  void TimerLoop();
  // Registers this replica in the pollers bucket and reads the live members, every
  // membership_interval until Stop.
  void MembershipLoop();
  // Owns() with mu_ held.
  bool OwnsLocked(const std::string& normalized_url) const;

  absl::Status PollApps(const std::vector<service::StoredResource>& apps,
                        const v1::SyncRequested* request, const std::string& correlation_id);
  absl::Status PollRepository(const std::vector<Target>& targets, const v1::SyncRequested* request,
                              const std::string& correlation_id);
  // Changed paths from a previous revision to the polled one; nullopt when unknown.
  using ChangedPathsFn =
      std::function<std::optional<std::vector<std::string>>(const std::string& previous)>;
  // The one writer of an application's desired generation: when the spec changed (or the
  // application is new), the ref moved to a commit that touches the application's path, or
  // a user requested a sync, mints desired_seq + 1 in the source record (compare-and-set)
  // and then publishes source.changed with that identity. Records the resolved revision and
  // clears SourceError. With `deferred` set, an application the move does not affect
  // (nothing to mint, no error to clear) is left untouched and the record it read goes to
  // `*deferred`: the caller records it later (RecordMoved), so that the applications a push
  // touches are minted first.
  absl::Status Publish(const Target& target, const std::string& commit, const std::string& ref,
                       const v1::SyncRequested* request, const std::string& correlation_id,
                       const ChangedPathsFn& changed_paths,
                       std::optional<service::SourceRecord>* deferred = nullptr);
  // Records the revision a ref moved to for an application it does not affect, over `seen`
  // (the record Publish read); falls back to Publish when the record changed since.
  absl::Status RecordMoved(const Target& target, const std::string& commit, const std::string& ref,
                           const service::SourceRecord& seen, const std::string& correlation_id,
                           const ChangedPathsFn& changed_paths);
  // The paths the renderer recorded for `application` (incarnation `uid`), or none.
  std::vector<std::string> ReadSetOf(const std::string& application, const std::string& uid);
  // Publishes source.changed for the desired generation `record` holds (work item on stage
  // render), then marks the record (stored at `kv_revision`) published.
  absl::Status EmitMinted(const Target& target, service::SourceRecord record, uint64_t kv_revision,
                          const std::string& previous,
                          const std::vector<std::string>& changed_paths);
  // sync.retry: mints the next attempt of a failed desired generation once it is due, unless
  // a newer one was minted meanwhile.
  bus::Disposition HandleRetry(const v1::Event& event, const bus::Message& message);
  // SourceError condition + sync.failed broadcast (once per distinct error, always for a
  // request).
  absl::Status ReportError(const service::StoredResource& resource, const std::string& message,
                           absl::StatusCode code, const v1::SyncRequested* request,
                           const std::string& correlation_id);
  absl::Status BroadcastFailure(const std::string& application, const std::string& message,
                                const v1::SyncRequested* request,
                                const std::string& correlation_id);
  std::shared_ptr<std::mutex> AppLock(const std::string& application);
  std::chrono::steady_clock::duration IntervalOf(const service::StoredResource& resource) const;

  bus::EventBus* bus_;
  bus::KvStore* kv_;
  git::GitClient* git_;
  PollerOptions options_;

  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  bool started_ = false;
  std::map<std::string, Tracked> apps_;
  std::map<std::string, std::set<std::string>> by_url_;  // normalized URL -> applications
  std::map<std::string, std::shared_ptr<std::mutex>> app_locks_;
  std::unique_ptr<bus::KvWatch> watch_;
  std::thread timer_;
  std::thread membership_;
  std::string member_key_;
  std::vector<std::string> members_;  // sorted live replica keys; guarded by mu_
};

}  // namespace driftless::repo_poller
