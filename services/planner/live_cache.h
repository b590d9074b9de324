// The planner's live cache (../shared/DESIGN.md §1): one watch per resource type of the
// cluster, shared by every application, selecting the objects that carry the
// `driftless.dev/application` label. A type is watched from the first Track() on: listed,
// then watched from the list's resourceVersion, resumed from the last version seen when a
// watch ends, relisted when the server answers 410 Gone. Each change is reported to
// `on_change` with the application that owns the object (its tracking annotation), so drift
// is seen as it happens instead of by listing namespaces; changes of status alone (controllers
// reporting progress) are not reported.
//
//   LiveCache cache(kube, [&](std::string_view app) { detector.Touch(app); });
//   cache.Track({"apps/v1", "Deployment"});
//   if (cache.Synced(kind)) std::optional<Json> live = cache.Get(kind, key);
//
// Objects are kept as compact JSON text (a parsed object costs several times its text) and
// parsed on Get. Thread-safe; `on_change` runs on the watch threads, without locks held.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/time/time.h"
#include "common/kube/kube_client.h"
#include "common/manifest/manifest.h"
#include "services/sync/live.h"

namespace driftless::planner {

using manifest::Json;
using sync::KindRef;

class LiveCache {
 public:
  using ChangeFn = std::function<void(std::string_view application)>;

  struct Options {
    // Server-side duration of one watch request; the next resumes where it ended.
    int watch_timeout_seconds = 300;
    // Wait after a failed list or watch before the next (doubled per failure, at most 30 s).
    absl::Duration retry_delay = absl::Milliseconds(500);
    // A kind the cluster does not serve (its CRD not installed yet) is asked for again after.
    absl::Duration unserved_retry = absl::Seconds(10);
  };

  // `kube` must outlive the cache.
  LiveCache(kube::KubeClient* kube, ChangeFn on_change, Options options);
  LiveCache(kube::KubeClient* kube, ChangeFn on_change)
      : LiveCache(kube, std::move(on_change), Options{}) {}
  ~LiveCache();  // stops every watch
  LiveCache(const LiveCache&) = delete;
  LiveCache& operator=(const LiveCache&) = delete;

  // Starts watching `kind` unless it is watched already.
  void Track(const KindRef& kind);

  // True once `kind`'s first list is in: from then on its objects are current up to the
  // watch's latency. A kind the cluster does not serve counts as synced (and empty).
  bool Synced(const KindRef& kind) const;

  // The labelled object `key` (manifest::ObjectKey) of `kind`; nullopt when absent. Only
  // meaningful when Synced(kind).
  std::optional<Json> Get(const KindRef& kind, const std::string& key) const;

  // A digest of the cached object `key` of `kind` without what the server and controllers
  // change on their own (status, resourceVersion, managedFields); "" when absent. Tells,
  // without parsing, whether an object changed in a way drift could see since last looked at.
  std::string ContentDigest(const KindRef& kind, const std::string& key) const;

  // Every cached object of `kind` whose tracking annotation names `application`.
  std::vector<Json> TrackedOf(const KindRef& kind, std::string_view application) const;

  // The number of objects cached, over every kind.
  size_t size() const;

 private:
  struct Entry {
    std::string application;  // the tracking annotation ("" when absent)
    std::string content;      // ContentDigest
    std::string json;         // compact
  };
  struct KindState {
    KindRef kind;
    mutable std::mutex mu;
    std::map<std::string, Entry> objects;  // by manifest::ObjectKey
    bool synced = false;
    std::jthread thread;
  };

  void Run(KindState& state, std::stop_token stop);
  // Replaces the contents with a fresh list; returns the applications whose objects changed.
  std::set<std::string> Replace(KindState& state, const std::vector<Json>& items);
  // One watch event; returns the applications it touched.
  std::set<std::string> Apply(KindState& state, const kube::WatchEvent& event);
  KindState* Find(const KindRef& kind) const;
  void Notify(const std::set<std::string>& applications) const;

  kube::KubeClient* kube_;
  ChangeFn on_change_;
  Options options_;
  mutable std::mutex mu_;  // guards kinds_ (the map; each KindState has its own lock)
  std::map<KindRef, std::unique_ptr<KindState>> kinds_;
};

}  // namespace driftless::planner
