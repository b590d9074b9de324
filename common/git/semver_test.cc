#include "common/git/semver.h"

#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/testing/status_matchers.h"

namespace driftless::git {
namespace {

using ::driftless::testing::StatusIs;
using ::testing::HasSubstr;

TEST(ParseVersionTest, AcceptsFullVersionsWithOptionalV) {
  ASSERT_OK_AND_ASSIGN(Version v, ParseVersion("v1.22.333-rc.1+build.7"));
  EXPECT_EQ(v.major, 1u);
  EXPECT_EQ(v.minor, 22u);
  EXPECT_EQ(v.patch, 333u);
  EXPECT_EQ(v.prerelease, (std::vector<std::string>{"rc", "1"}));
  EXPECT_EQ(v.build, "build.7");
  EXPECT_EQ(v.ToString(), "1.22.333-rc.1+build.7");
  ASSERT_OK_AND_ASSIGN(Version w, ParseVersion("0.0.0"));
  EXPECT_FALSE(w.IsPrerelease());
}

TEST(ParseVersionTest, RejectsMalformed) {
  for (const char* bad : {"", "1", "1.2", "1.2.3.4", "01.2.3", "1.02.3", "1.2.03", "a.b.c",
                          "1.2.3-", "1.2.3-01", "1.2.3+", "1.2.3-a..b", "1.2.x", "vv1.2.3",
                          "1.2.3-a$b", " 1.2.3", "99999999999999999999.0.0"}) {
    EXPECT_THAT(ParseVersion(bad), StatusIs(absl::StatusCode::kInvalidArgument)) << bad;
  }
  EXPECT_THAT(ParseVersion("1.2"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("\"1.2\"")));
}

TEST(CompareVersionsTest, FollowsSemverPrecedence) {
  // The ordering example from semver.org section 11, plus build metadata being ignored.
  std::vector<std::string> ordered = {"1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta",
                                      "1.0.0-beta",  "1.0.0-beta.2",  "1.0.0-beta.11",
                                      "1.0.0-rc.1",  "1.0.0",         "1.0.1",
                                      "1.1.0",       "2.0.0",         "10.0.0"};
  for (size_t i = 0; i + 1 < ordered.size(); ++i) {
    ASSERT_OK_AND_ASSIGN(Version a, ParseVersion(ordered[i]));
    ASSERT_OK_AND_ASSIGN(Version b, ParseVersion(ordered[i + 1]));
    EXPECT_LT(CompareVersions(a, b), 0) << ordered[i] << " < " << ordered[i + 1];
    EXPECT_GT(CompareVersions(b, a), 0) << ordered[i + 1] << " > " << ordered[i];
  }
  ASSERT_OK_AND_ASSIGN(Version x, ParseVersion("1.0.0+a"));
  ASSERT_OK_AND_ASSIGN(Version y, ParseVersion("v1.0.0+b"));
  EXPECT_EQ(CompareVersions(x, y), 0);
}

struct MatchCase {
  const char* range;
  const char* version;
  bool want;
};

void PrintTo(const MatchCase& c, std::ostream* os) {
  *os << "\"" << c.range << "\" " << c.version << (c.want ? " matches" : " does not match");
}

class RangeMatchTest : public ::testing::TestWithParam<MatchCase> {};

TEST_P(RangeMatchTest, Matches) {
  const MatchCase& c = GetParam();
  ASSERT_OK_AND_ASSIGN(Range r, Range::Parse(c.range));
  ASSERT_OK_AND_ASSIGN(Version v, ParseVersion(c.version));
  EXPECT_EQ(r.Matches(v), c.want) << "range \"" << c.range << "\" version " << c.version;
}

INSTANTIATE_TEST_SUITE_P(
    Table, RangeMatchTest,
    ::testing::Values(
        // Plain comparisons and AND sets (Flux's canonical example).
        MatchCase{">=1.0.0 <2.0.0", "1.0.0", true}, MatchCase{">=1.0.0 <2.0.0", "1.9.9", true},
        MatchCase{">=1.0.0 <2.0.0", "2.0.0", false}, MatchCase{">=1.0.0 <2.0.0", "0.9.9", false},
        MatchCase{">=1.0.0, <2.0.0", "1.5.0", true},   // comma separated
        MatchCase{">= 1.0.0 < 2.0.0", "1.5.0", true},  // operator spaced from version
        MatchCase{">1.2.3", "1.2.3", false}, MatchCase{">1.2.3", "1.2.4", true},
        MatchCase{"<1.2.3", "1.2.2", true}, MatchCase{"<=1.2.3", "1.2.3", true},
        MatchCase{"=<1.2.3", "1.2.4", false}, MatchCase{"=1.2.3", "1.2.3", true},
        MatchCase{"1.2.3", "1.2.4", false}, MatchCase{"v1.2.3", "1.2.3", true},
        MatchCase{"!=1.2.3", "1.2.3", false}, MatchCase{"!=1.2.3", "1.2.4", true},
        MatchCase{"!=1.2.x", "1.2.9", false}, MatchCase{"!=1.2.x", "1.3.0", true},
        // Caret.
        MatchCase{"^1.2", "1.2.0", true}, MatchCase{"^1.2", "1.9.0", true},
        MatchCase{"^1.2", "1.1.9", false}, MatchCase{"^1.2", "2.0.0", false},
        MatchCase{"^1.2.3", "1.2.2", false}, MatchCase{"^0.2.3", "0.2.9", true},
        MatchCase{"^0.2.3", "0.3.0", false}, MatchCase{"^0.0.3", "0.0.3", true},
        MatchCase{"^0.0.3", "0.0.4", false}, MatchCase{"^0.0", "0.0.9", true},
        MatchCase{"^0.0", "0.1.0", false}, MatchCase{"^0", "0.9.0", true},
        MatchCase{"^0", "1.0.0", false},
        // Tilde.
        MatchCase{"~1.2.3", "1.2.9", true}, MatchCase{"~1.2.3", "1.3.0", false},
        MatchCase{"~1.2.3", "1.2.2", false}, MatchCase{"~1", "1.9.0", true},
        MatchCase{"~1", "2.0.0", false}, MatchCase{"~>2.3", "2.3.7", true},
        MatchCase{"~2.3", "2.4.0", false},
        // Wildcards and x-ranges.
        MatchCase{"1.x", "1.99.0", true}, MatchCase{"1.x", "2.0.0", false},
        MatchCase{"1.x", "0.9.0", false}, MatchCase{"1.2.*", "1.2.5", true},
        MatchCase{"1.2.X", "1.3.0", false}, MatchCase{"1", "1.4.0", true},
        MatchCase{"1.2", "1.3.0", false}, MatchCase{"*", "0.0.1", true},
        MatchCase{"*", "99.0.0", true}, MatchCase{"x", "3.0.0", true}, MatchCase{"", "3.0.0", true},
        MatchCase{">=1.2.x", "1.2.0", true}, MatchCase{"<=2.x", "2.9.9", true},
        MatchCase{"<=2.x", "3.0.0", false}, MatchCase{"<=1.2", "1.2.9", true},
        MatchCase{"<1.2", "1.2.0", false}, MatchCase{">1.2", "1.2.9", false},
        MatchCase{">1.2", "1.3.0", true}, MatchCase{">1", "2.0.0", true},
        MatchCase{">*", "1.0.0", false}, MatchCase{"<*", "1.0.0", false},
        // Hyphen ranges.
        MatchCase{"1.2 - 1.4.5", "1.2.0", true}, MatchCase{"1.2 - 1.4.5", "1.4.5", true},
        MatchCase{"1.2 - 1.4.5", "1.4.6", false}, MatchCase{"2.3.4 - 4.5", "4.5.9", true},
        MatchCase{"2.3.4 - 4.5", "4.6.0", false},
        // OR.
        MatchCase{"^1.0 || ^3.0", "3.1.0", true}, MatchCase{"^1.0 || ^3.0", "2.1.0", false},
        MatchCase{"<1.0.0 || >=2.0.0", "1.5.0", false}, MatchCase{"<1.0.0||>=2.0.0", "2.0.0", true},
        // Prereleases: excluded unless the set has one; bounds exclude their own prereleases.
        MatchCase{">=1.0.0", "1.5.0-rc.1", false}, MatchCase{"*", "1.0.0-alpha", false},
        MatchCase{"^1.2", "1.3.0-beta", false}, MatchCase{">=1.0.0-0 <2.0.0", "1.5.0-rc.1", true},
        MatchCase{">=1.0.0-0 <2.0.0", "2.0.0-rc.1", false},
        MatchCase{"^1.2.3-beta.2", "1.2.3-beta.3", true},
        MatchCase{"^1.2.3-beta.2", "1.2.3-beta.1", false},
        MatchCase{"^1.2.3-beta.2", "2.0.0-beta.1", false},
        MatchCase{"1.0.0-rc.1 || ^3", "3.1.0-rc.1", false},  // prerelease only in set 1
        MatchCase{">=1.0.0-rc.1 || ^3", "3.1.0-rc.1", true},
        MatchCase{"1.2.3-rc.1", "1.2.3-rc.1", true}, MatchCase{"1.2.3-rc.1", "1.2.3", false},
        // Build metadata is ignored.
        MatchCase{"1.2.3", "1.2.3+build.9", true}, MatchCase{"1.2.3+abc", "1.2.3", true}));

TEST(RangeParseTest, RejectsMalformedWithTheRangeInTheMessage) {
  for (const char* bad : {">=", "1.2.3.4", "a.b", ">=1.x.2", "1.x-rc", "?1.2", ">>1.2.3", "1.2 -",
                          "^01.2", "1.2.3 - ", "- 1.2"}) {
    EXPECT_THAT(Range::Parse(bad), StatusIs(absl::StatusCode::kInvalidArgument,
                                            HasSubstr(std::string("\"") + bad + "\"")))
        << bad;
  }
}

TEST(HighestMatchingTest, PicksTheHighestMatchingVersion) {
  std::vector<Version> versions;
  for (const char* s : {"1.0.0", "1.4.2", "1.10.0", "2.0.0", "1.11.0-rc.1", "0.9.0"}) {
    ASSERT_OK_AND_ASSIGN(Version v, ParseVersion(s));
    versions.push_back(v);
  }
  ASSERT_OK_AND_ASSIGN(Range caret, Range::Parse("^1.0"));
  EXPECT_EQ(HighestMatching(caret, versions), std::optional<size_t>(2));  // 1.10.0 > 1.4.2
  ASSERT_OK_AND_ASSIGN(Range pre, Range::Parse(">=1.0.0-0 <2.0.0"));
  EXPECT_EQ(HighestMatching(pre, versions), std::optional<size_t>(4));  // 1.11.0-rc.1
  ASSERT_OK_AND_ASSIGN(Range none, Range::Parse(">=3"));
  EXPECT_EQ(HighestMatching(none, versions), std::nullopt);
}

}  // namespace
}  // namespace driftless::git
