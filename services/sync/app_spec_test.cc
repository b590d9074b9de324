#include "services/sync/app_spec.h"

#include <gtest/gtest.h>

namespace driftless::sync {
namespace {

using manifest::Json;
using std::chrono::milliseconds;

Json App(Json policy) {
  return {
      {"kind", "Application"}, {"metadata", {{"name", "web"}}}, {"spec", {{"syncPolicy", policy}}}};
}

TEST(RetryPolicy, AutomatedAppsRetryTransientFailuresByDefault) {
  const AppSpec spec = ParseAppSpec(App({{"automated", Json::object()}}));
  EXPECT_FALSE(spec.retry.explicit_policy);
  EXPECT_TRUE(ShouldRetry(spec, 1, /*transient=*/true));
  EXPECT_FALSE(ShouldRetry(spec, 1, /*transient=*/false));  // invalid input: Stalled
  EXPECT_TRUE(ShouldRetry(spec, kDefaultRetryLimit, true));
  EXPECT_FALSE(ShouldRetry(spec, kDefaultRetryLimit + 1, true));
  const AppSpec manual = ParseAppSpec(App(Json::object()));
  EXPECT_FALSE(ShouldRetry(manual, 1, true));
}

TEST(RetryPolicy, ExplicitPolicyRetriesEveryFailureWithBackoff) {
  const AppSpec spec = ParseAppSpec(
      App({{"retry",
            {{"limit", 3},
             {"backoff", {{"duration", "2s"}, {"factor", 3}, {"maxDuration", "10s"}}}}}}));
  EXPECT_TRUE(spec.retry.explicit_policy);
  EXPECT_TRUE(ShouldRetry(spec, 1, /*transient=*/false));
  EXPECT_TRUE(ShouldRetry(spec, 3, false));
  EXPECT_FALSE(ShouldRetry(spec, 4, false));
  EXPECT_EQ(RetryBackoff(spec.retry, 2), milliseconds(2000));
  EXPECT_EQ(RetryBackoff(spec.retry, 3), milliseconds(6000));
  EXPECT_EQ(RetryBackoff(spec.retry, 4), milliseconds(10000));  // capped
  const AppSpec unlimited = ParseAppSpec(App({{"retry", {{"limit", -1}}}}));
  EXPECT_TRUE(ShouldRetry(unlimited, 100, false));
}

}  // namespace
}  // namespace driftless::sync
