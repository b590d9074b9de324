#include "common/kube/rate_limiter.h"

#include <gtest/gtest.h>

#include <thread>

#include "absl/time/clock.h"

namespace driftless::kube {
namespace {

const absl::Time kStart = absl::FromUnixSeconds(1'700'000'000);

TEST(TokenBucketTest, BurstThenQps) {
  TokenBucket bucket(/*qps=*/5, /*burst=*/10, kStart);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(bucket.Reserve(kStart), absl::ZeroDuration()) << i;
  // The 11th waits one refill interval (1/5 s), the 12th two.
  EXPECT_EQ(bucket.Reserve(kStart), absl::Milliseconds(200));
  EXPECT_EQ(bucket.Reserve(kStart), absl::Milliseconds(400));
}

TEST(TokenBucketTest, RefillsOverTimeUpToBurst) {
  TokenBucket bucket(/*qps=*/50, /*burst=*/100, kStart);
  for (int i = 0; i < 100; ++i) ASSERT_EQ(bucket.Reserve(kStart), absl::ZeroDuration());
  EXPECT_NEAR(bucket.Tokens(kStart), 0, 1e-9);
  absl::Time later = kStart + absl::Seconds(1);
  EXPECT_NEAR(bucket.Tokens(later), 50, 1e-9);
  // Long idle never exceeds the burst.
  EXPECT_NEAR(bucket.Tokens(kStart + absl::Hours(1)), 100, 1e-9);
  for (int i = 0; i < 50; ++i) ASSERT_EQ(bucket.Reserve(later), absl::ZeroDuration()) << i;
  EXPECT_EQ(bucket.Reserve(later), absl::Milliseconds(20));
}

TEST(TokenBucketTest, QueuedReservationsAreSpacedAndHonouredLater) {
  TokenBucket bucket(/*qps=*/10, /*burst=*/1, kStart);
  EXPECT_EQ(bucket.Reserve(kStart), absl::ZeroDuration());
  EXPECT_EQ(bucket.Reserve(kStart), absl::Milliseconds(100));
  EXPECT_EQ(bucket.Reserve(kStart), absl::Milliseconds(200));
  // 150 ms later: the second caller has gone, the third still waits 50 ms, a fourth 150 ms.
  EXPECT_EQ(bucket.Reserve(kStart + absl::Milliseconds(150)), absl::Milliseconds(150));
}

TEST(TokenBucketTest, ZeroQpsDisablesLimiting) {
  TokenBucket bucket(/*qps=*/0, /*burst=*/1, kStart);
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(bucket.Reserve(kStart), absl::ZeroDuration());
}

TEST(RateLimiterTest, StopInterruptsWait) {
  RateLimiter limiter(/*qps=*/0.01, /*burst=*/1);  // second token in 100 s
  EXPECT_TRUE(limiter.Wait());
  std::stop_source stop;
  std::thread stopper([&] { stop.request_stop(); });
  absl::Time start = absl::Now();
  EXPECT_FALSE(limiter.Wait(stop.get_token()));
  stopper.join();
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
}

}  // namespace
}  // namespace driftless::kube
