#include "common/git/ref_resolve.h"

#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/testing/status_matchers.h"

namespace driftless::git {
namespace {

using ::driftless::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;

constexpr char kUrl[] = "https://git.example.com/team/deploy.git";

std::string Sha(char c) { return std::string(40, c); }

RefMap Refs() {
  return {
      {"HEAD", Sha('a')},
      {"refs/heads/main", Sha('a')},
      {"refs/heads/release/1.x", Sha('b')},
      {"refs/tags/v1.0.0", Sha('c')},
      {"refs/tags/v1.4.0", Sha('d')},
      {"refs/tags/1.10.0", Sha('e')},
      {"refs/tags/v1.11.0-rc.1", "f1" + std::string(38, '0')},
      {"refs/tags/v2.0.0", "f2" + std::string(38, '0')},
      {"refs/tags/latest", Sha('a')},
      {"refs/tags/v1.2", Sha('9')},  // not a full version: never a semver candidate
  };
}

TEST(ResolveTest, Branch) {
  ASSERT_OK_AND_ASSIGN(Resolved r, Resolve(Refs(), RefSpec::Branch("main"), kUrl));
  EXPECT_EQ(r.commit, Sha('a'));
  EXPECT_EQ(r.ref, "refs/heads/main");
  ASSERT_OK_AND_ASSIGN(Resolved slash, Resolve(Refs(), RefSpec::Branch("release/1.x"), kUrl));
  EXPECT_EQ(slash.commit, Sha('b'));
  ASSERT_OK_AND_ASSIGN(Resolved full, Resolve(Refs(), RefSpec::Branch("refs/heads/main"), kUrl));
  EXPECT_EQ(full.commit, Sha('a'));
}

// An application without spec.source.ref follows the default branch (regression: the CLI's
// offline render looked for a branch named refs/heads/HEAD).
TEST(ResolveTest, BranchHeadIsTheDefaultBranch) {
  RefMap refs = Refs();
  refs["HEAD"] = Sha('b');
  ASSERT_OK_AND_ASSIGN(Resolved r, Resolve(refs, RefSpec::Branch("HEAD"), kUrl));
  EXPECT_EQ(r.commit, Sha('b'));
  EXPECT_EQ(r.ref, "HEAD");
  refs.erase("HEAD");
  EXPECT_THAT(Resolve(refs, RefSpec::Branch("HEAD"), kUrl),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("branch HEAD")));
}

TEST(ResolveTest, MissingBranchNamesRefAndUrl) {
  EXPECT_THAT(
      Resolve(Refs(), RefSpec::Branch("develop"), kUrl),
      StatusIs(absl::StatusCode::kNotFound, AllOf(HasSubstr("branch develop"), HasSubstr(kUrl))));
  // A tag is not a branch.
  EXPECT_THAT(Resolve(Refs(), RefSpec::Branch("latest"), kUrl),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(Resolve(Refs(), RefSpec::Branch(""), kUrl),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(ResolveTest, Tag) {
  ASSERT_OK_AND_ASSIGN(Resolved r, Resolve(Refs(), RefSpec::Tag("v1.0.0"), kUrl));
  EXPECT_EQ(r.commit, Sha('c'));
  EXPECT_EQ(r.ref, "refs/tags/v1.0.0");
  EXPECT_THAT(Resolve(Refs(), RefSpec::Tag("v9.9.9"), kUrl),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("tag v9.9.9")));
}

TEST(ResolveTest, SemverPicksHighestMatchingTag) {
  ASSERT_OK_AND_ASSIGN(Resolved r, Resolve(Refs(), RefSpec::Semver(">=1.0.0 <2.0.0"), kUrl));
  EXPECT_EQ(r.ref, "refs/tags/1.10.0");  // numeric order, with or without "v"
  EXPECT_EQ(r.commit, Sha('e'));
  EXPECT_EQ(r.version, "1.10.0");
  ASSERT_OK_AND_ASSIGN(Resolved star, Resolve(Refs(), RefSpec::Semver("*"), kUrl));
  EXPECT_EQ(star.ref, "refs/tags/v2.0.0");
  ASSERT_OK_AND_ASSIGN(Resolved tilde, Resolve(Refs(), RefSpec::Semver("~1.4"), kUrl));
  EXPECT_EQ(tilde.ref, "refs/tags/v1.4.0");
  ASSERT_OK_AND_ASSIGN(Resolved pre, Resolve(Refs(), RefSpec::Semver(">=1.11.0-0 <2"), kUrl));
  EXPECT_EQ(pre.ref, "refs/tags/v1.11.0-rc.1");
  EXPECT_EQ(pre.version, "1.11.0-rc.1");
}

TEST(ResolveTest, SemverEqualPrecedencePicksSmallerName) {
  RefMap refs = {{"refs/tags/v1.0.0", Sha('1')}, {"refs/tags/1.0.0", Sha('2')}};
  ASSERT_OK_AND_ASSIGN(Resolved r, Resolve(refs, RefSpec::Semver("1.x"), kUrl));
  EXPECT_EQ(r.ref, "refs/tags/1.0.0");
}

TEST(ResolveTest, SemverErrors) {
  EXPECT_THAT(Resolve(Refs(), RefSpec::Semver(">=3.0.0"), kUrl),
              StatusIs(absl::StatusCode::kNotFound, AllOf(HasSubstr(">=3.0.0"), HasSubstr(kUrl))));
  EXPECT_THAT(
      Resolve(Refs(), RefSpec::Semver(">=banana"), kUrl),
      StatusIs(absl::StatusCode::kInvalidArgument, AllOf(HasSubstr("banana"), HasSubstr(kUrl))));
}

TEST(ResolveTest, CommitWithoutMirror) {
  ASSERT_OK_AND_ASSIGN(Resolved full, Resolve(Refs(), RefSpec::Commit(Sha('A')), kUrl));
  EXPECT_EQ(full.commit, Sha('a'));  // lowercased
  EXPECT_EQ(full.ref, "");
  ASSERT_OK_AND_ASSIGN(Resolved prefix, Resolve(Refs(), RefSpec::Commit("ccccccc"), kUrl));
  EXPECT_EQ(prefix.commit, Sha('c'));
  // "f" prefix: two different commits share "f" but not "f1".
  ASSERT_OK_AND_ASSIGN(Resolved f1, Resolve(Refs(), RefSpec::Commit("f100000"), kUrl));
  EXPECT_EQ(f1.commit, "f1" + std::string(38, '0'));
  EXPECT_THAT(Resolve(Refs(), RefSpec::Commit("1234567"), kUrl),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("commit 1234567")));
  EXPECT_THAT(Resolve(Refs(), RefSpec::Commit("abc"), kUrl),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(Resolve(Refs(), RefSpec::Commit("main"), kUrl),
              StatusIs(absl::StatusCode::kInvalidArgument));
  RefMap ambiguous = {{"refs/heads/a", "abcdef1" + std::string(33, '0')},
                      {"refs/heads/b", "abcdef1" + std::string(33, '1')}};
  EXPECT_THAT(Resolve(ambiguous, RefSpec::Commit("abcdef1"), kUrl),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("ambiguous")));
}

TEST(ResolveTest, CommitWithExpander) {
  std::string seen;
  CommitExpander expand = [&](std::string_view sha) -> absl::StatusOr<std::string> {
    seen = std::string(sha);
    if (sha == "deadbee") return "deadbee" + std::string(33, '0');
    return absl::NotFoundError("no such commit");
  };
  ASSERT_OK_AND_ASSIGN(Resolved r, Resolve(Refs(), RefSpec::Commit("DEADBEE"), kUrl, expand));
  EXPECT_EQ(seen, "deadbee");
  EXPECT_EQ(r.commit, "deadbee" + std::string(33, '0'));
  EXPECT_THAT(Resolve(Refs(), RefSpec::Commit("1234567"), kUrl, expand),
              StatusIs(absl::StatusCode::kNotFound));
}

}  // namespace
}  // namespace driftless::git
