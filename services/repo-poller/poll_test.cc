#include "services/repo-poller/poll.h"

#include <map>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace driftless::repo_poller {
namespace {

using ::testing::ElementsAre;
using ::testing::SizeIs;

const std::string kA(40, 'a');
const std::string kB(40, 'b');
const std::string kC(40, 'c');

std::vector<std::string> Apps(const std::vector<Moved>& moved) {
  std::vector<std::string> out;
  for (const auto& m : moved) out.push_back(m.application);
  return out;
}

TEST(GroupByRepository, OneGroupPerNormalizedUrl) {
  auto groups = GroupByRepository(
      {{"a", "https://Git.example.com/team/deploy/", git::RefSpec::Branch("main"), "a"},
       {"b", "https://user@git.example.com/team/deploy", git::RefSpec::Branch("main"), "b"},
       {"c", "https://git.example.com/other", git::RefSpec::Branch("main"), ""}});
  EXPECT_THAT(groups, SizeIs(2));
}

TEST(DecidePoll, ReportsMovesFirstSightsAndErrors) {
  git::RefMap refs = {{"refs/heads/main", kB}, {"refs/tags/v1.2.0", kC}, {"HEAD", kB}};
  std::vector<AppSource> sources = {{"same", "file:///r", git::RefSpec::Branch("main"), "x"},
                                    {"moved", "file:///r", git::RefSpec::Branch("main"), "y"},
                                    {"new", "file:///r", git::RefSpec::Semver("^1.0.0"), "z"},
                                    {"broken", "file:///r", git::RefSpec::Branch("nope"), "w"}};
  PollResult r = DecidePoll(sources, refs, {{"same", kB}, {"moved", kA}});
  EXPECT_THAT(Apps(r.moved), ElementsAre("moved", "new"));
  EXPECT_EQ(r.moved[0].previous, kA);
  EXPECT_EQ(r.moved[0].revision, kB);
  EXPECT_EQ(r.moved[0].ref, "refs/heads/main");
  EXPECT_EQ(r.moved[1].revision, kC);
  ASSERT_THAT(r.errors, SizeIs(1));
  EXPECT_EQ(r.errors[0].application, "broken");
  EXPECT_EQ(r.errors[0].status.code(), absl::StatusCode::kNotFound);
}

TEST(AffectedByPaths, OnlyApplicationsWhosePathChanged) {
  std::vector<AppSource> sources = {{"web", "u", git::RefSpec::Branch("main"), "apps/web"},
                                    {"webby", "u", git::RefSpec::Branch("main"), "./apps/webby/"},
                                    {"root", "u", git::RefSpec::Branch("main"), ""},
                                    {"new", "u", git::RefSpec::Branch("main"), "apps/new"}};
  std::vector<Moved> moved = {{"web", kA, kB, "refs/heads/main"},
                              {"webby", kA, kB, "refs/heads/main"},
                              {"root", kA, kB, "refs/heads/main"},
                              {"new", "", kB, "refs/heads/main"}};
  EXPECT_THAT(Apps(AffectedByPaths(moved, sources, {"apps/webby/deploy.yaml"}, true)),
              ElementsAre("webby", "root", "new"));
  EXPECT_THAT(Apps(AffectedByPaths(moved, sources, {"README.md"}, true)),
              ElementsAre("root", "new"));
  EXPECT_THAT(Apps(AffectedByPaths(moved, sources, {}, false)),
              ElementsAre("web", "webby", "root", "new"));
}

TEST(OwnerOf, OneOwnerPerRepositoryAndOnlyTheLeaversShareMoves) {
  const std::vector<std::string> three = {"a", "b", "c"};
  const std::vector<std::string> two = {"a", "c"};
  std::map<std::string, int> load;
  int moved = 0;
  for (int i = 0; i < 300; ++i) {
    const std::string repo = "https://git.example.com/team/repo-" + std::to_string(i);
    const std::string owner = OwnerOf(repo, three);
    EXPECT_EQ(owner, OwnerOf(repo, three));  // stable
    ++load[owner];
    const std::string after = OwnerOf(repo, two);
    if (owner != "b") {
      EXPECT_EQ(after, owner) << repo;  // only b's repositories move
    }
    moved += owner != after;
  }
  EXPECT_EQ(moved, load["b"]);
  for (const auto& [member, n] : load) EXPECT_GT(n, 60) << member;  // roughly even
  EXPECT_EQ(OwnerOf("r", {}), "");
}

}  // namespace
}  // namespace driftless::repo_poller
