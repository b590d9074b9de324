#include "common/bus/lease.h"

#include <utility>

#include "common/bus/internal/str.h"
#include "common/status/status.h"

namespace driftless::bus {
namespace {

// Lease value: "<expires unix ms> <holder>"; an empty value is a released lease.
struct LeaseValue {
  absl::Time expires;
  std::string holder;
};

// Milliseconds rounded up: others must never see a lease expire before its holder does (the
// holder checks its grant's exact time), so the stored time is never earlier than that.
std::string Encode(absl::Time expires, std::string_view holder) {
  int64_t ms = absl::ToUnixMillis(expires);
  if (absl::FromUnixMillis(ms) < expires) ++ms;
  return internal::Cat(ms, " ", holder);
}

absl::StatusOr<LeaseValue> Decode(std::string_view value) {
  const size_t space = value.find(' ');
  int64_t ms = 0;
  if (space == std::string_view::npos || !internal::ParseInt(value.substr(0, space), &ms)) {
    return absl::DataLossError(internal::Cat("malformed lease value \"", value, "\""));
  }
  return LeaseValue{absl::FromUnixMillis(ms), std::string(value.substr(space + 1))};
}

absl::Status ValidateTtl(absl::Duration ttl) {
  if (ttl <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        internal::Cat("lease ttl must be positive, got ", absl::FormatDuration(ttl)));
  }
  return absl::OkStatus();
}

}  // namespace

Lease::Lease(KvStore* kv, NowFn now) : kv_(kv), now_(std::move(now)) {
  if (!now_) now_ = [] { return absl::Now(); };
}

absl::StatusOr<LeaseGrant> Lease::TryAcquire(std::string_view bucket, std::string_view key,
                                             std::string_view holder, absl::Duration ttl) {
  DL_RETURN_IF_ERROR(ValidateTtl(ttl));
  if (holder.empty() || holder.find(' ') != std::string_view::npos) {
    return absl::InvalidArgumentError("lease holder must be non-empty and contain no spaces");
  }
  const std::string what = internal::Cat("lease ", bucket, "/", key);
  LeaseGrant grant{std::string(bucket), std::string(key), std::string(holder), 0, now_() + ttl};
  const std::string value = Encode(grant.expires, holder);

  absl::StatusOr<KvEntry> current = kv_->Get(bucket, key);
  if (current.status().code() == absl::StatusCode::kNotFound) {
    absl::StatusOr<uint64_t> rev = kv_->Create(bucket, key, value);
    if (rev.status().code() == absl::StatusCode::kAlreadyExists) {
      return absl::AbortedError(internal::Cat(what, ": acquired concurrently by another holder"));
    }
    DL_RETURN_IF_ERROR(rev.status());
    grant.revision = *rev;
    return grant;
  }
  DL_RETURN_IF_ERROR(current.status());
  if (!current->value.empty()) {
    absl::StatusOr<LeaseValue> held = Decode(current->value);
    // A malformed value is treated as free: overwriting it (by CAS) is the only way forward.
    if (held.ok() && held->holder != holder && held->expires > now_()) {
      return absl::AbortedError(internal::Cat(what, ": held by ", held->holder, " until ",
                                              absl::FormatTime(held->expires)));
    }
  }
  absl::StatusOr<uint64_t> rev = kv_->Update(bucket, key, value, current->revision);
  if (rev.status().code() == absl::StatusCode::kAborted) {
    return absl::AbortedError(internal::Cat(what, ": acquired concurrently by another holder"));
  }
  DL_RETURN_IF_ERROR(rev.status());
  grant.revision = *rev;
  return grant;
}

absl::Status Lease::Renew(LeaseGrant& grant, absl::Duration ttl) {
  DL_RETURN_IF_ERROR(ValidateTtl(ttl));
  const absl::Time expires = now_() + ttl;
  absl::StatusOr<uint64_t> rev =
      kv_->Update(grant.bucket, grant.key, Encode(expires, grant.holder), grant.revision);
  if (rev.status().code() == absl::StatusCode::kAborted) {
    return absl::AbortedError(internal::Cat("lease ", grant.bucket, "/", grant.key, ": ",
                                            grant.holder, " lost it (taken over or released)"));
  }
  DL_RETURN_IF_ERROR(rev.status());
  grant.revision = *rev;
  grant.expires = expires;
  return absl::OkStatus();
}

absl::Status Lease::Release(const LeaseGrant& grant) {
  absl::StatusOr<uint64_t> rev = kv_->Update(grant.bucket, grant.key, "", grant.revision);
  if (rev.status().code() == absl::StatusCode::kAborted) {
    return absl::AbortedError(internal::Cat("lease ", grant.bucket, "/", grant.key, ": ",
                                            grant.holder, " no longer holds it"));
  }
  return rev.status();
}

absl::StatusOr<LeaseGrant> Lease::Holder(std::string_view bucket, std::string_view key) {
  const std::string what = internal::Cat("lease ", bucket, "/", key);
  DL_ASSIGN_OR_RETURN(KvEntry current, kv_->Get(bucket, key));
  if (current.value.empty()) return absl::NotFoundError(what + ": released");
  DL_ASSIGN_OR_RETURN(LeaseValue held, Decode(current.value));
  if (held.expires <= now_()) return absl::NotFoundError(what + ": expired");
  return LeaseGrant{std::string(bucket), std::string(key), held.holder, current.revision,
                    held.expires};
}

LeaseKeeper::LeaseKeeper(Lease* lease, LeaseGrant grant, absl::Duration ttl)
    : lease_(lease),
      ttl_(ttl),
      grant_(std::move(grant)),
      valid_until_(SteadyClock::now() + absl::ToChronoNanoseconds(ttl)) {
  renewer_ = std::thread([this] { Loop(); });
}

LeaseKeeper::~LeaseKeeper() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  renewer_.join();
  LeaseGrant grant;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (lost_) return;
    grant = grant_;
  }
  (void)lease_->Release(grant);
}

void LeaseKeeper::Loop() {
  const auto period = absl::ToChronoNanoseconds(ttl_ / 3);
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_ && !lost_) {
    if (cv_.wait_for(lock, period, [this] { return stopping_; })) return;
    LeaseGrant grant = grant_;
    const SteadyClock::time_point started = SteadyClock::now();
    lock.unlock();
    absl::Status s = lease_->Renew(grant, ttl_);
    lock.lock();
    if (s.ok()) {
      grant_ = grant;
      valid_until_ = started + absl::ToChronoNanoseconds(ttl_);
    } else if (absl::IsAborted(s)) {
      lost_ = true;
    }
    // Other errors (the KV store unreachable): validity runs down; Check fails in time.
  }
}

absl::Status LeaseKeeper::Check(absl::Duration needed) const {
  std::lock_guard<std::mutex> lock(mu_);
  if (lost_) {
    return absl::AbortedError(internal::Cat("lease ", grant_.key, " was taken over"));
  }
  if (SteadyClock::now() + absl::ToChronoNanoseconds(needed) > valid_until_) {
    return absl::AbortedError(internal::Cat("lease ", grant_.key, " may run out before a ",
                                            absl::FormatDuration(needed),
                                            " request would finish: stopping"));
  }
  return absl::OkStatus();
}

bool LeaseKeeper::lost() const {
  std::lock_guard<std::mutex> lock(mu_);
  return lost_;
}

uint64_t LeaseKeeper::revision() const {
  std::lock_guard<std::mutex> lock(mu_);
  return grant_.revision;
}

}  // namespace driftless::bus
