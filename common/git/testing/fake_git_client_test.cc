#include "common/git/testing/fake_git_client.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/testing/status_matchers.h"

namespace driftless::git::testing {
namespace {

using ::driftless::testing::StatusIs;
using ::testing::ElementsAre;

constexpr char kUrl[] = "https://git.example.com/team/deploy.git";

TEST(FakeGitClientTest, BehavesLikeAMirror) {
  FakeGitClient git;
  std::string c1(40, '1'), c2(40, '2');
  git.SetCommit(kUrl, c1, {{"apps/web/a.yaml", "a"}, {"apps/db/b.yaml", "b"}});
  git.SetCommit(kUrl, c2, {{"apps/web/a.yaml", "a"}, {"apps/db/b.yaml", "b2"}});
  git.SetRef(kUrl, "refs/heads/main", c2);
  ASSERT_OK_AND_ASSIGN(RefMap refs, git.ListRemoteRefs(kUrl, {}));
  EXPECT_EQ(refs["refs/heads/main"], c2);
  EXPECT_THAT(git.ExpandCommit(kUrl, "1111111"), StatusIs(absl::StatusCode::kNotFound));
  ASSERT_OK(git.Fetch(kUrl, {}).status());
  ASSERT_OK_AND_ASSIGN(std::string full, git.ExpandCommit(kUrl, "1111111"));
  EXPECT_EQ(full, c1);
  ASSERT_OK_AND_ASSIGN(std::vector<std::string> changed, git.ChangedPaths(kUrl, c1, c2));
  EXPECT_THAT(changed, ElementsAre("apps/db/b.yaml"));

  char tmpl[] = "/tmp/driftless-fake-git-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  std::filesystem::path dest = std::filesystem::path(tmpl) / "out";
  ASSERT_OK_AND_ASSIGN(CheckoutResult r, git.Checkout(kUrl, c2, dest.string(), "apps/db"));
  EXPECT_EQ(r.files, 1u);
  std::ifstream in(dest / "b.yaml");
  std::stringstream ss;
  ss << in.rdbuf();
  EXPECT_EQ(ss.str(), "b2");
  EXPECT_THAT(git.Checkout(kUrl, c2, (dest / "x").string(), "../etc"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  std::filesystem::remove_all(tmpl);

  git.SetError(kUrl, absl::UnavailableError("down"));
  EXPECT_THAT(git.Fetch(kUrl, {}), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_EQ(git.CallCount(kUrl, "Fetch"), 2);
  EXPECT_EQ(git.CallCount(kUrl, "ListRemoteRefs"), 1);
}

}  // namespace
}  // namespace driftless::git::testing
