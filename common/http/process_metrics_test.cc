#include "common/http/process_metrics.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <time.h>

#include "common/testing/status_matchers.h"

namespace driftless::metrics {
namespace {

using ::driftless::testing::StatusIs;
using ::testing::HasSubstr;

// A real /proc/<pid>/stat line whose command name contains spaces and a ')'.
constexpr char kPidStat[] =
    "4242 (my (odd) name) S 1 4242 4242 0 -1 4194560 1200 0 0 0 250 50 0 0 20 0 3 0 "
    "100000 104857600 2560 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n";
constexpr char kProcStat[] = "cpu  1 2 3 4\nintr 5\nbtime 1795860000\nprocesses 9\n";

TEST(ProcessMetricsTest, ParsesProcStat) {
  ASSERT_OK_AND_ASSIGN(ProcessStats s, ParseProcStat(kPidStat, kProcStat, 100, 4096));
  EXPECT_DOUBLE_EQ(s.cpu_seconds, 3.0);                         // (250 + 50) / 100
  EXPECT_DOUBLE_EQ(s.start_time_seconds, 1795860000 + 1000.0);  // btime + 100000 / 100
  EXPECT_DOUBLE_EQ(s.virtual_bytes, 104857600);
  EXPECT_DOUBLE_EQ(s.resident_bytes, 2560.0 * 4096);
}

TEST(ProcessMetricsTest, MalformedInput) {
  EXPECT_THAT(ParseProcStat("4242 no-parens", kProcStat, 100, 4096),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseProcStat("1 (x) S 1 2", kProcStat, 100, 4096),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("fields")));
  EXPECT_THAT(ParseProcStat(kPidStat, "cpu 1 2\n", 100, 4096),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("btime")));
}

TEST(ProcessMetricsTest, ReadsThisProcess) {
  ASSERT_OK_AND_ASSIGN(ProcessStats s, ReadProcessStats());
  EXPECT_GT(s.resident_bytes, 1 << 20);
  EXPECT_GT(s.open_fds, 2);  // stdin, stdout, stderr at least
  EXPECT_GT(s.max_fds, 0);
  const double now = static_cast<double>(time(nullptr));
  EXPECT_LE(s.start_time_seconds, now + 1);
  EXPECT_GT(s.start_time_seconds, now - 3600);  // this test process started recently
}

TEST(ProcessMetricsTest, RegisteredOnceRendersAllNames) {
  Registry r;
  RegisterProcessMetrics(r);
  RegisterProcessMetrics(r);  // idempotent
  const std::string text = r.Render();
  for (const char* name :
       {"process_cpu_seconds_total", "process_resident_memory_bytes", "process_start_time_seconds",
        "process_open_fds", "process_virtual_memory_bytes"}) {
    const std::string type_line = std::string("# TYPE ") + name;
    EXPECT_THAT(text, HasSubstr(type_line)) << name;
    EXPECT_EQ(text.find(type_line), text.rfind(type_line)) << name << " rendered twice";
  }
}

}  // namespace
}  // namespace driftless::metrics
