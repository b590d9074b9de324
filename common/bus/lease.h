// Leases in a KV bucket: at most one holder of a key at a time across all processes, with a
// time-to-live so the lease of a crashed holder can be taken over. Used for "at most one sync
// per application in flight across replicas".
//
//   Lease lease(&kv);
//   absl::StatusOr<LeaseGrant> g = lease.TryAcquire("leases", "sync.guestbook", holder_id,
//                                                   absl::Seconds(30));
//   if (g.status().code() == absl::StatusCode::kAborted) { /* held elsewhere: requeue */ }
//   ... work, calling lease.Renew(*g, ttl) (updates *g) well before the ttl runs out ...
//   lease.Release(*g);
//
// Every transition is a compare-and-set on the key's revision, so two contenders can never both
// succeed. Expiry is judged by the caller's clock against the expiry the holder wrote with its
// clock: keep clock skew between replicas well below the ttl. Thread-safe if the KvStore is.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/bus/kv_store.h"

namespace driftless::bus {

struct LeaseGrant {
  std::string bucket;
  std::string key;
  std::string holder;
  uint64_t revision = 0;  // of the lease's KV entry, for the next compare-and-set
  absl::Time expires;
};

class Lease {
 public:
  using NowFn = std::function<absl::Time()>;

  // `kv` must outlive this object. `now` defaults to the wall clock.
  explicit Lease(KvStore* kv, NowFn now = nullptr);

  // Takes the lease if it is free, released, expired, or already held by `holder` (then it is
  // refreshed). kAborted if another holder has an unexpired lease or won a race; other codes
  // from the store (kNotFound for a missing bucket, kUnavailable, ...).
  absl::StatusOr<LeaseGrant> TryAcquire(std::string_view bucket, std::string_view key,
                                        std::string_view holder, absl::Duration ttl);

  // Extends `grant` to now + ttl and updates it in place. kAborted if the lease was taken over
  // (this holder must stop its work).
  absl::Status Renew(LeaseGrant& grant, absl::Duration ttl);

  // Frees the lease. kAborted if it had already been taken over (harmless).
  absl::Status Release(const LeaseGrant& grant);

  // Who holds `key` right now; kNotFound if nobody (free, released or expired).
  absl::StatusOr<LeaseGrant> Holder(std::string_view bucket, std::string_view key);

 private:
  KvStore* kv_;
  NowFn now_;
};

// Holds a granted lease for as long as it lives: renews it every ttl/3 on its own thread and
// releases it on destruction.
//
// Fencing. Kubernetes has no fencing token, so a holder must never start a write that could
// outlive its lease. Check(needed) is OK only while the lease is known to be held for at least
// `needed` more, judged on this process's monotonic clock from the start of the last
// successful renewal (the grant counts as a renewal at construction). A holder calls it before
// every cluster request (with that request's deadline) and every KV write, and stops on an
// error. A process stopped (SIGSTOP, a long GC-like stall) past its ttl therefore makes no
// write after it resumes: its validity ran out while it was stopped, unless it renews first
// and nobody took the lease meanwhile (then it is still the holder). Once lost (a renewal
// found it taken over) it stays lost.
//
//   LeaseKeeper keeper(&lease, *grant, absl::Seconds(30));
//   DL_RETURN_IF_ERROR(keeper.Check(request_timeout));
//   kube.Apply(...);
//
// Thread-safe.
class LeaseKeeper {
 public:
  // `lease` must outlive the keeper; `grant` was just acquired with `ttl`.
  LeaseKeeper(Lease* lease, LeaseGrant grant, absl::Duration ttl);
  ~LeaseKeeper();
  LeaseKeeper(const LeaseKeeper&) = delete;
  LeaseKeeper& operator=(const LeaseKeeper&) = delete;

  // OK while the lease is held for at least `needed` more; kAborted naming the lease
  // otherwise (the caller must stop: another holder may take over).
  absl::Status Check(absl::Duration needed) const;
  bool lost() const;
  // The lease's KV revision at the last renewal (a fencing token to stamp records with).
  uint64_t revision() const;

 private:
  using SteadyClock = std::chrono::steady_clock;
  void Loop();

  Lease* lease_;
  const absl::Duration ttl_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  LeaseGrant grant_;
  SteadyClock::time_point valid_until_;
  bool lost_ = false;
  bool stopping_ = false;
  std::thread renewer_;
};

}  // namespace driftless::bus
