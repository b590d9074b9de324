#include "common/config/units.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/testing/status_matchers.h"

namespace driftless::config {
namespace {

using ::driftless::testing::StatusIs;
using std::chrono::milliseconds;
using ::testing::AllOf;
using ::testing::HasSubstr;

struct DurationCase {
  const char* text;
  int64_t ms;
};

TEST(ParseDurationTest, Valid) {
  const DurationCase cases[] = {
      {"0", 0},
      {"0s", 0},
      {"500ms", 500},
      {"5s", 5000},
      {"3m", 180000},
      {"1h", 3600000},
      {"1h30m", 5400000},
      {"1h30m15s", 5415000},
      {"2m500ms", 120500},
      {"1.5s", 1500},
      {"1.5h", 5400000},
      {" 10s ", 10000},
      {"1d", 86400000},
      {"+7s", 7000},
      {"0.0005s", 0},
      {"90m", 5400000},
  };
  for (const auto& c : cases) {
    absl::StatusOr<milliseconds> d = ParseDuration(c.text);
    ASSERT_TRUE(d.ok()) << c.text << ": " << d.status();
    EXPECT_EQ(d->count(), c.ms) << c.text;
  }
}

TEST(ParseDurationTest, InvalidNamesOffendingText) {
  const char* cases[] = {"", "   ", "5", "5x", "abc", "1h30", "-5s", "ms", "1..5s", "5 s", "s5"};
  for (const char* text : cases) {
    EXPECT_THAT(ParseDuration(text), StatusIs(absl::StatusCode::kInvalidArgument,
                                              HasSubstr("\"" + std::string(text) + "\"")))
        << text;
  }
  EXPECT_THAT(ParseDuration("5fortnights"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("5fortnights"), HasSubstr("unknown unit \"fortnights\""))));
  EXPECT_THAT(ParseDuration("10"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("missing unit")));
}

TEST(ParseDurationTest, Overflow) {
  EXPECT_THAT(ParseDuration("99999999999999999999h"), StatusIs(absl::StatusCode::kOutOfRange));
}

TEST(FormatDurationTest, RoundTrips) {
  const std::pair<int64_t, const char*> cases[] = {
      {0, "0s"},          {500, "500ms"},      {5000, "5s"},     {180000, "3m"},
      {5400000, "1h30m"}, {120500, "2m500ms"}, {90000000, "25h"}};
  for (const auto& [ms, text] : cases) {
    EXPECT_EQ(FormatDuration(milliseconds(ms)), text);
    absl::StatusOr<milliseconds> back = ParseDuration(text);
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(back->count(), ms);
  }
}

TEST(ParseByteSizeTest, Valid) {
  const std::pair<const char*, uint64_t> cases[] = {
      {"0", 0},
      {"1024", 1024},
      {"100B", 100},
      {"512Ki", 512 * 1024},
      {"3Mi", 3 * 1024 * 1024},
      {"3MiB", 3 * 1024 * 1024},
      {"2Gi", 2ull << 30},
      {"1Ti", 1ull << 40},
      {"10MB", 10000000},
      {"10M", 10000000},
      {"64k", 64000},
      {"64KB", 64000},
      {"1G", 1000000000},
      {"1.5Mi", 1572864},
      {" 7Ki ", 7168},
  };
  for (const auto& [text, want] : cases) {
    absl::StatusOr<uint64_t> n = ParseByteSize(text);
    ASSERT_TRUE(n.ok()) << text << ": " << n.status();
    EXPECT_EQ(*n, want) << text;
  }
}

TEST(ParseByteSizeTest, InvalidNamesOffendingText) {
  const char* cases[] = {"", "Mi", "-1Ki", "3Xi", "3 M i", "1e6", "ten"};
  for (const char* text : cases) {
    EXPECT_THAT(ParseByteSize(text), StatusIs(absl::StatusCode::kInvalidArgument,
                                              HasSubstr("\"" + std::string(text) + "\"")))
        << text;
  }
}

TEST(ParseByteSizeTest, Overflow) {
  EXPECT_THAT(ParseByteSize("99999999999999999999"), StatusIs(absl::StatusCode::kOutOfRange));
  EXPECT_THAT(ParseByteSize("20000000Ti"), StatusIs(absl::StatusCode::kOutOfRange));
}

TEST(FormatByteSizeTest, RoundTrips) {
  const std::pair<uint64_t, const char*> cases[] = {
      {0, "0"},         {1000, "1000"},      {1024, "1Ki"}, {524288, "512Ki"},
      {3 << 20, "3Mi"}, {1ull << 40, "1Ti"}, {1536, "1536"}};
  for (const auto& [n, text] : cases) {
    EXPECT_EQ(FormatByteSize(n), text);
    absl::StatusOr<uint64_t> back = ParseByteSize(text);
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(*back, n);
  }
}

}  // namespace
}  // namespace driftless::config
