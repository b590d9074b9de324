#include "common/match/glob.h"

#include <gtest/gtest.h>

namespace driftless::match {
namespace {

struct Case {
  const char* pattern;
  const char* text;
  bool match;
  bool slash_special = true;
};

class GlobTest : public ::testing::TestWithParam<Case> {};

TEST_P(GlobTest, Matches) {
  const Case& c = GetParam();
  EXPECT_EQ(GlobMatch(c.pattern, c.text, {.slash_is_special = c.slash_special}), c.match)
      << c.pattern << " vs " << c.text;
}

INSTANTIATE_TEST_SUITE_P(
    Table, GlobTest,
    ::testing::Values(
        Case{"*", "", true}, Case{"*", "abc", true}, Case{"*", "a/b", false},
        Case{"team-*", "team-a", true}, Case{"team-*", "other", false},
        Case{"*.yaml", "deploy.yaml", true}, Case{"*.yaml", "dir/deploy.yaml", false},
        Case{"**/*.yaml", "dir/deploy.yaml", true}, Case{"**/*.yaml", "deploy.yaml", true},
        Case{"apps/**/*.yaml", "apps/a/b/x.yaml", true}, Case{"apps/**", "apps/a/b", true},
        Case{"apps/**/x.yaml", "apps/x.yaml", true}, Case{"test/*", "test/a.yaml", true},
        Case{"test/*", "test/a/b.yaml", false}, Case{"?.yaml", "a.yaml", true},
        Case{"?.yaml", "ab.yaml", false}, Case{"[abc].txt", "b.txt", true},
        Case{"[!abc].txt", "b.txt", false}, Case{"[a-c]x", "cx", true}, Case{"[a-c]x", "dx", false},
        Case{"*.{yaml,yml}", "x.yml", true}, Case{"*.{yaml,yml}", "x.json", false},
        Case{"{a,b{c,d}}", "bd", true}, Case{"\\*", "*", true}, Case{"\\*", "a", false},
        Case{"a[", "a[", true},
        Case{"https://git.example.com/team/*", "https://git.example.com/team/x.git", true},
        Case{"https://git.example.com/team/*", "https://git.example.com/team/a/b.git", true, false},
        Case{"https://git.example.com/team/*", "https://git.example.com/other/x", false, false},
        Case{"*", "anything/at/all", true, false}, Case{"a*b*c", "axxbyyc", true},
        Case{"a*b*c", "axxbyy", false}, Case{"", "", true}, Case{"", "a", false}));

}  // namespace
}  // namespace driftless::match
