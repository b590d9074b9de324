// Client-side rate limiting for API requests: a token bucket (QPS refill, burst capacity),
// the same model as client-go's flowcontrol (defaults 5 QPS / burst 10).
//
// TokenBucket is pure: callers pass the time, so tests drive it with a fake clock.
//
//   TokenBucket bucket(/*qps=*/50, /*burst=*/100, start);
//   absl::Duration wait = bucket.Reserve(now);   // sleep this long, then send
//
// RateLimiter wraps it with a mutex and the real clock for concurrent callers.
#pragma once

#include <mutex>
#include <stop_token>

#include "absl/time/time.h"

namespace driftless::kube {

class TokenBucket {
 public:
  // qps <= 0 disables limiting (Reserve always returns zero). burst < 1 is treated as 1.
  TokenBucket(double qps, int burst, absl::Time now);

  // Takes one token and returns how long the caller must wait before using it (zero when a
  // token is available now). Tokens may go negative: later callers queue behind earlier
  // reservations, so N callers at once are spread out at 1/qps intervals. Not thread-safe.
  absl::Duration Reserve(absl::Time now);

  // Tokens available at `now` (may be negative while reservations are outstanding).
  double Tokens(absl::Time now) const;

 private:
  double qps_;
  double burst_;
  double tokens_;
  absl::Time last_;
};

// Thread-safe, blocking limiter over the real clock.
class RateLimiter {
 public:
  RateLimiter(double qps, int burst);
  // Blocks until the caller may send a request. Returns false if `stop` was requested
  // while waiting.
  bool Wait(std::stop_token stop = {});

 private:
  std::mutex mu_;
  TokenBucket bucket_;
};

}  // namespace driftless::kube
