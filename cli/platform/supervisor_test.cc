#include "cli/platform/supervisor.h"

#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <mutex>
#include <thread>

#include "absl/synchronization/notification.h"

#include "cli/platform/io.h"
#include "cli/platform/process.h"
#include "common/config/shutdown_signal.h"
#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace driftless::cli::platform {
namespace {

using ::driftless::testing::StatusIs;
using ::testing::HasSubstr;

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::getenv("TEST_TMPDIR") ? std::getenv("TEST_TMPDIR") : "/tmp") +
                       std::string("/supervisor_test.XXXXXX");
    path_ = mkdtemp(tmpl.data());
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// A child that marks itself ready by creating `marker`, then sleeps.
ChildSpec Sleeper(const std::string& name, const std::string& dir) {
  std::string marker = dir + "/" + name + ".ready";
  return {.name = name,
          .argv =
              [marker] {
                return std::vector<std::string>{
                    "/bin/sh", "-c", "echo started; touch " + marker + "; exec sleep 600"};
              },
          .probe = [marker]() -> absl::Status {
            if (std::filesystem::exists(marker)) return absl::OkStatus();
            return absl::UnavailableError("no marker");
          },
          .log_path = dir + "/" + name + ".log",
          .ready_file = marker};
}

TEST(Supervisor, StartsWaitsAndStopsInReverseOrder) {
  TempDir dir;
  std::vector<std::string> said;
  Supervisor sup(nullptr, [&](const std::string& s) { said.push_back(s); });
  sup.Add(Sleeper("a", dir.path()));
  sup.Add(Sleeper("b", dir.path()));
  ASSERT_OK(sup.Start("a"));
  ASSERT_OK(sup.Start("b"));
  ASSERT_OK(sup.WaitReady("a", absl::Now() + absl::Seconds(10)));
  ASSERT_OK(sup.WaitReady("b", absl::Now() + absl::Seconds(10)));
  auto pids = sup.Pids();
  ASSERT_EQ(pids.size(), 2u);
  EXPECT_TRUE(IsRunning(pids["a"].pid, pids["a"].start_time));
  // Children run in their own process groups.
  EXPECT_EQ(getpgid(pids["a"].pid), pids["a"].pid);
  sup.StopAll(absl::Seconds(5));
  EXPECT_TRUE(sup.Pids().empty());
  EXPECT_EQ(kill(pids["a"].pid, 0), -1);
  EXPECT_EQ(kill(pids["b"].pid, 0), -1);
  EXPECT_THAT(Tail(dir.path() + "/a.log", 5), HasSubstr("started"));
}

TEST(Supervisor, WaitReadyReportsAnEarlyExitWithTheLog) {
  TempDir dir;
  Supervisor sup(nullptr, [](const std::string&) {});
  sup.Add({.name = "boom",
           .argv =
               [] {
                 return std::vector<std::string>{"/bin/sh", "-c", "echo kaboom >&2; exit 3"};
               },
           .probe = [] { return absl::UnavailableError("never"); },
           .log_path = dir.path() + "/boom.log"});
  ASSERT_OK(sup.Start("boom"));
  EXPECT_THAT(sup.WaitReady("boom", absl::Now() + absl::Seconds(10)),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       ::testing::AllOf(HasSubstr("exit status 3"), HasSubstr("kaboom"))));
}

TEST(Supervisor, WaitReadyTimesOutWithTheLastProbeError) {
  TempDir dir;
  Supervisor sup(nullptr, [](const std::string&) {});
  sup.Add({.name = "slow",
           .argv =
               [] {
                 return std::vector<std::string>{"/bin/sleep", "600"};
               },
           .probe = [] { return absl::UnavailableError("readyz answered 503"); },
           .log_path = dir.path() + "/slow.log"});
  ASSERT_OK(sup.Start("slow"));
  EXPECT_THAT(sup.WaitReady("slow", absl::Now() + absl::Milliseconds(300)),
              StatusIs(absl::StatusCode::kDeadlineExceeded, HasSubstr("readyz answered 503")));
  EXPECT_THAT(sup.Start("nope"), StatusIs(absl::StatusCode::kNotFound));
}

TEST(Supervisor, RestartsAChildThatDies) {
  TempDir dir;
  auto shutdown = config::ShutdownSignal::Install();
  ASSERT_OK(shutdown.status());
  std::mutex mu;
  std::map<std::string, ProcessRecord> seen;
  std::vector<std::string> said;
  pid_t first = 0;
  absl::Notification started;
  // One thread owns the supervisor (children die with the thread that spawned them).
  std::thread owner([&] {
    Supervisor sup(shutdown->get(), [&](const std::string& s) {
      std::lock_guard<std::mutex> lock(mu);
      said.push_back(s);
    });
    sup.SetBackoffForTest(absl::Milliseconds(50), absl::Seconds(1), absl::Seconds(60));
    sup.Add(Sleeper("a", dir.path()));
    if (!sup.Start("a").ok() || !sup.WaitReady("a", absl::Now() + absl::Seconds(10)).ok()) {
      started.Notify();
      return;
    }
    first = sup.Pids()["a"].pid;
    started.Notify();
    sup.Supervise(
        [&] {
          std::lock_guard<std::mutex> lock(mu);
          seen = sup.Pids();
        },
        absl::Milliseconds(20));
    sup.StopAll(absl::Seconds(5));
  });
  started.WaitForNotification();
  ASSERT_GT(first, 0);
  ASSERT_EQ(kill(first, SIGKILL), 0);
  pid_t second = 0;
  bool ready_again = false;
  for (absl::Time deadline = absl::Now() + absl::Seconds(20); absl::Now() < deadline;) {
    {
      std::lock_guard<std::mutex> lock(mu);
      if (seen.count("a") && seen["a"].pid != first) second = seen["a"].pid;
      for (const std::string& s : said)
        ready_again = ready_again || s.find("ready again") != std::string::npos;
    }
    if (second > 0 && ready_again) break;
    absl::SleepFor(absl::Milliseconds(20));
  }
  (*shutdown)->RequestShutdown();
  owner.join();
  ASSERT_GT(second, 0) << "no restart seen";
  EXPECT_TRUE(ready_again);
  EXPECT_EQ(kill(second, 0), -1) << "StopAll left the restarted child running";
  std::lock_guard<std::mutex> lock(mu);
  ASSERT_FALSE(said.empty());
  EXPECT_THAT(said.front(), HasSubstr("exited unexpectedly (killed by signal 9"));
}

}  // namespace
}  // namespace driftless::cli::platform
