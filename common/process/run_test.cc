#include "common/process/run.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/testing/status_matchers.h"

namespace driftless::process {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(Run, CapturesOutputAndExitCode) {
  ASSERT_OK_AND_ASSIGN(RunResult r,
                       process::Run({.argv = {"/bin/sh", "-c", "echo out; echo err >&2; exit 3"}}));
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_EQ(r.out, "out\n");
  EXPECT_EQ(r.err, "err\n");
}

TEST(Run, RunsInCwdWithOnlyTheGivenEnvironment) {
  setenv("DRIFTLESS_RUN_TEST_SECRET", "hunter2", 1);
  ASSERT_OK_AND_ASSIGN(RunResult r, process::Run({.argv = {"/bin/sh", "-c", "pwd; env"},
                                                  .cwd = "/tmp",
                                                  .env = ScrubbedEnv({"HOME=/tmp/home"})}));
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_THAT(r.out, HasSubstr("/tmp\n"));
  EXPECT_THAT(r.out, HasSubstr("HOME=/tmp/home"));
  EXPECT_THAT(r.out, Not(HasSubstr("hunter2")));
  ASSERT_OK_AND_ASSIGN(RunResult inherited,
                       process::Run({.argv = {"/bin/sh", "-c", "env"}, .inherit_env = true}));
  EXPECT_THAT(inherited.out, HasSubstr("hunter2"));
  unsetenv("DRIFTLESS_RUN_TEST_SECRET");
}

TEST(Run, KillsTheProcessGroupAtTheDeadline) {
  const auto start = absl::Now();
  // The grandchild (sleep) holds the pipes open: only killing the group ends the run.
  absl::StatusOr<RunResult> r = process::Run(
      {.argv = {"/bin/sh", "-c", "sleep 30 & sleep 30"}, .timeout = absl::Milliseconds(300)});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(r.status().message(), HasSubstr("/bin/sh: stopped after 300ms"));
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
}

TEST(Run, StopsAToolThatPrintsTooMuch) {
  absl::StatusOr<RunResult> r = process::Run(
      {.argv = {"/bin/sh", "-c", "yes 0123456789012345678901234567890"}, .max_output = 1 << 20});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(r.status().message(), HasSubstr("more than 1 MB"));
}

TEST(Run, MissingProgramIsNotFound) {
  EXPECT_EQ(process::Run({.argv = {"/nonexistent/tool"}}).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(process::Run({.argv = {}}).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(FirstLines, JoinsNonEmptyLines) {
  EXPECT_EQ(FirstLines("\nError: a\n\n  b  \nc\n", 2), "Error: a; b");
}

}  // namespace
}  // namespace driftless::process
