#include "common/config/shutdown_signal.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <thread>

#include "common/testing/status_matchers.h"

namespace driftless::config {
namespace {

using ::driftless::testing::StatusIs;

TEST(ShutdownSignalTest, SigtermWakesWaiter) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<ShutdownSignal> shutdown, ShutdownSignal::Install());
  EXPECT_FALSE(shutdown->IsShutdownRequested());
  EXPECT_FALSE(shutdown->WaitForShutdownFor(std::chrono::milliseconds(10)));

  std::atomic<int> woke_with{-1};
  std::thread waiter([&] { woke_with = shutdown->WaitForShutdown(); });
  ASSERT_EQ(raise(SIGTERM), 0);
  waiter.join();  // hangs (and the ctest timeout fails the test) if the waiter never wakes
  EXPECT_EQ(woke_with.load(), SIGTERM);
  EXPECT_TRUE(shutdown->IsShutdownRequested());
  // Level-triggered: later waits return at once.
  EXPECT_TRUE(shutdown->WaitForShutdownFor(std::chrono::milliseconds(0)));
  EXPECT_EQ(shutdown->WaitForShutdown(), SIGTERM);
}

TEST(ShutdownSignalTest, SigintWakesTimedWaiter) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<ShutdownSignal> shutdown, ShutdownSignal::Install());
  std::atomic<bool> woke{false};
  std::thread waiter([&] { woke = shutdown->WaitForShutdownFor(std::chrono::seconds(30)); });
  ASSERT_EQ(raise(SIGINT), 0);
  waiter.join();
  EXPECT_TRUE(woke.load());
}

TEST(ShutdownSignalTest, RequestShutdownWakesWithZero) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<ShutdownSignal> shutdown, ShutdownSignal::Install());
  std::thread requester([&] { shutdown->RequestShutdown(); });
  EXPECT_EQ(shutdown->WaitForShutdown(), 0);
  requester.join();
}

TEST(ShutdownSignalTest, OnlyOneInstance) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<ShutdownSignal> first, ShutdownSignal::Install());
  EXPECT_THAT(ShutdownSignal::Install(), StatusIs(absl::StatusCode::kFailedPrecondition));
  first.reset();
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<ShutdownSignal> again, ShutdownSignal::Install());
  EXPECT_FALSE(again->IsShutdownRequested());
}

TEST(ShutdownSignalTest, RestoresPreviousHandler) {
  struct sigaction before;
  ASSERT_EQ(sigaction(SIGTERM, nullptr, &before), 0);
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<ShutdownSignal> shutdown, ShutdownSignal::Install());
    struct sigaction during;
    ASSERT_EQ(sigaction(SIGTERM, nullptr, &during), 0);
    EXPECT_NE(during.sa_handler, before.sa_handler);
  }
  struct sigaction after;
  ASSERT_EQ(sigaction(SIGTERM, nullptr, &after), 0);
  EXPECT_EQ(after.sa_handler, before.sa_handler);
}

}  // namespace
}  // namespace driftless::config
