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

#include <cstdint>
#include <functional>
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

}  // namespace driftless::bus
