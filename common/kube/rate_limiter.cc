#include "common/kube/rate_limiter.h"

#include <algorithm>
#include <condition_variable>
#include <thread>

#include "absl/time/clock.h"

namespace driftless::kube {

TokenBucket::TokenBucket(double qps, int burst, absl::Time now)
    : qps_(qps), burst_(std::max(1, burst)), tokens_(burst_), last_(now) {}

double TokenBucket::Tokens(absl::Time now) const {
  if (qps_ <= 0) return burst_;
  double elapsed = std::max(0.0, absl::ToDoubleSeconds(now - last_));
  return std::min(burst_, tokens_ + elapsed * qps_);
}

absl::Duration TokenBucket::Reserve(absl::Time now) {
  if (qps_ <= 0) return absl::ZeroDuration();
  if (now > last_) {
    tokens_ = Tokens(now);
    last_ = now;
  }
  tokens_ -= 1;
  if (tokens_ >= 0) return absl::ZeroDuration();
  // The token we took becomes available when the deficit has refilled; measured from
  // last_ (which may be later than `now` is never the case here, as last_ <= now).
  return absl::Seconds(-tokens_ / qps_) - (now - last_);
}

RateLimiter::RateLimiter(double qps, int burst) : bucket_(qps, burst, absl::Now()) {}

bool RateLimiter::Wait(std::stop_token stop) {
  absl::Duration wait;
  {
    std::lock_guard<std::mutex> lock(mu_);
    wait = bucket_.Reserve(absl::Now());
  }
  if (wait <= absl::ZeroDuration()) return true;
  // Wait on a condition that only a stop request signals, so stop is prompt.
  std::mutex m;
  std::condition_variable_any cv;
  std::unique_lock<std::mutex> lock(m);
  cv.wait_for(lock, stop, absl::ToChronoMilliseconds(wait) + std::chrono::milliseconds(1),
              [] { return false; });
  return !stop.stop_requested();
}

}  // namespace driftless::kube
