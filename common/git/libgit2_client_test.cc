// Libgit2Client against real repositories made with the git CLI, served over file://, by
// `git daemon` and by an HTTP(S) server on 127.0.0.1, and against stub servers that stall.
#include "common/git/libgit2_client.h"

#include <arpa/inet.h>
#include <malloc.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#endif

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/git/ref_resolve.h"
#include "common/git/testing/git_http_server.h"
#include "common/git/testing/stub_tcp_server.h"
#include "common/git/url.h"
#include "common/testing/status_matchers.h"

namespace driftless::git {
namespace {

namespace fs = std::filesystem;
using ::driftless::testing::IsOk;
using ::driftless::testing::StatusIs;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

// Runs a shell command; returns its stdout with the trailing newline removed. Fails the test
// (and returns "") if it exits non-zero.
std::string Sh(const std::string& cmd) {
  std::string full = cmd + " 2>&1";
  FILE* p = popen(full.c_str(), "r");
  if (!p) {
    ADD_FAILURE() << "popen failed: " << cmd;
    return "";
  }
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  int rc = pclose(p);
  EXPECT_EQ(rc, 0) << cmd << "\n" << out;
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

void WriteFile(const fs::path& path, const std::string& content) {
  fs::create_directories(path.parent_path());
  std::ofstream(path) << content;
}

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

bool CanConnect(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  close(fd);
  return ok;
}

class GitClientTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    setenv("GIT_CONFIG_NOSYSTEM", "1", 1);
    setenv("GIT_CONFIG_GLOBAL", "/dev/null", 1);
    setenv("GIT_AUTHOR_NAME", "Test", 1);
    setenv("GIT_AUTHOR_EMAIL", "test@example.com", 1);
    setenv("GIT_COMMITTER_NAME", "Test", 1);
    setenv("GIT_COMMITTER_EMAIL", "test@example.com", 1);
  }

  // The fixture repository is built once (the git CLI is slow on a busy machine) and copied
  // into every test's own directory.
  static void BuildTemplate() {
    char tmpl[] = "/tmp/driftless-git-template-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    template_root_ = new fs::path(tmpl);
    fs::path work = *template_root_ / "repo";
    fs::create_directories(work);
    auto git = [&](const std::string& args) {
      return Sh("git -C '" + work.string() + "' " + args);
    };
    git("init -q -b main .");
    // Commit 1: two apps and shared config.
    WriteFile(work / "apps/web/deploy.yaml", "kind: Deployment\n");
    WriteFile(work / "apps/web/svc.yaml", "kind: Service\n");
    WriteFile(work / "apps/db/sts.yaml", "kind: StatefulSet\n");
    WriteFile(work / "README.md", "hello\n");
    WriteFile(work / "apps/web/run.sh", "#!/bin/sh\n");
    fs::permissions(work / "apps/web/run.sh", fs::perms::owner_exec, fs::perm_options::add);
    fs::create_symlink("deploy.yaml", work / "apps/web/link.yaml");
    git("add -A");
    git("commit -q -m one");
    *c1_template_ = git("rev-parse HEAD");
    git("tag -a v1.0.0 -m release-1.0.0");
    git("tag 1.2.0");  // lightweight, no "v"
    // Commit 2: touches only apps/db.
    WriteFile(work / "apps/db/sts.yaml", "kind: StatefulSet\nreplicas: 3\n");
    git("commit -q -am two");
    *c2_template_ = git("rev-parse HEAD");
    git("tag -a v1.10.0 -m release-1.10.0");
    git("tag -a v2.0.0-rc.1 -m rc");
    git("branch release/1.x " + *c1_template_);
  }

  static void TearDownTestSuite() {
    if (template_root_) {
      std::error_code ec;
      fs::remove_all(*template_root_, ec);
      delete template_root_;
      template_root_ = nullptr;
    }
  }

  void SetUp() override {
    if (!template_root_) {
      c1_template_ = new std::string;
      c2_template_ = new std::string;
      BuildTemplate();
    }
    char tmpl[] = "/tmp/driftless-git-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    work_ = root_ / "served" / "repo";
    fs::create_directories(root_ / "served");
    fs::copy(*template_root_ / "repo", work_,
             fs::copy_options::recursive | fs::copy_options::copy_symlinks);
    c1_ = *c1_template_;
    c2_ = *c2_template_;
    url_ = "file://" + work_.string();
    cache_ = (root_ / "cache").string();
  }

  void TearDown() override {
    if (daemon_pid_ > 0) {
      kill(daemon_pid_, SIGTERM);
      // Poll until it is gone (the daemon detached, so init reaps it).
      auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
      while (kill(daemon_pid_, 0) == 0 && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::yield();
      }
      EXPECT_NE(kill(daemon_pid_, 0), 0) << "git daemon " << daemon_pid_ << " did not exit";
    }
    std::error_code ec;
    fs::remove_all(root_, ec);
  }

  std::string Git(const std::string& args) { return Sh("git -C '" + work_.string() + "' " + args); }

  Libgit2Client MakeClient(Libgit2ClientOptions extra = {}) {
    extra.cache_dir = cache_;
    return Libgit2Client(std::move(extra));
  }

  // Starts `git daemon` serving root_/served; returns the git:// URL of the work repo.
  std::string StartDaemon() {
    int port = FreePort();
    std::string pid_file = (root_ / "daemon.pid").string();
    Sh("git daemon --reuseaddr --base-path='" + (root_ / "served").string() +
       "' --export-all --listen=127.0.0.1 --port=" + std::to_string(port) + " --pid-file='" +
       pid_file + "' --detach '" + (root_ / "served").string() + "'");
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < deadline) {
      std::string pid = ReadFile(pid_file);
      if (!pid.empty() && daemon_pid_ <= 0) daemon_pid_ = std::atoi(pid.c_str());
      if (daemon_pid_ > 0 && CanConnect(port)) break;
      std::this_thread::yield();
    }
    EXPECT_GT(daemon_pid_, 0);
    EXPECT_TRUE(CanConnect(port));
    daemon_port_ = port;
    return "git://127.0.0.1:" + std::to_string(port) + "/repo";
  }

  static inline fs::path* template_root_ = nullptr;
  static inline std::string* c1_template_ = nullptr;
  static inline std::string* c2_template_ = nullptr;

  fs::path root_;
  fs::path work_;
  std::string url_;
  std::string cache_;
  std::string c1_, c2_;
  pid_t daemon_pid_ = -1;
  int daemon_port_ = 0;
};

TEST_F(GitClientTest, ListRemoteRefsPeelsTags) {
  Libgit2Client git = MakeClient();
  ASSERT_OK_AND_ASSIGN(RefMap refs, git.ListRemoteRefs(url_, {}));
  EXPECT_EQ(refs["HEAD"], c2_);
  EXPECT_EQ(refs["refs/heads/main"], c2_);
  EXPECT_EQ(refs["refs/heads/release/1.x"], c1_);
  EXPECT_EQ(refs["refs/tags/v1.0.0"], c1_);  // annotated: peeled to the commit
  EXPECT_EQ(refs["refs/tags/1.2.0"], c1_);   // lightweight
  EXPECT_EQ(refs["refs/tags/v1.10.0"], c2_);
  EXPECT_EQ(refs.count("refs/tags/v1.0.0^{}"), 0u);
  // ls-remote does not create a mirror.
  EXPECT_FALSE(fs::exists(git.MirrorPathForTest(url_)));
}

TEST_F(GitClientTest, FetchCreatesMirrorAndResolvesEveryRefKind) {
  Libgit2Client git = MakeClient();
  ASSERT_OK_AND_ASSIGN(RefMap fetched, git.Fetch(url_, {}));
  ASSERT_OK_AND_ASSIGN(RefMap remote, git.ListRemoteRefs(url_, {}));
  EXPECT_EQ(fetched, remote);
  EXPECT_TRUE(fs::exists(fs::path(git.MirrorPathForTest(url_)) / "HEAD"));

  ASSERT_OK_AND_ASSIGN(Resolved branch, Resolve(fetched, RefSpec::Branch("main"), url_));
  EXPECT_EQ(branch.commit, c2_);
  ASSERT_OK_AND_ASSIGN(Resolved tag, Resolve(fetched, RefSpec::Tag("v1.0.0"), url_));
  EXPECT_EQ(tag.commit, c1_);
  ASSERT_OK_AND_ASSIGN(Resolved semver, Resolve(fetched, RefSpec::Semver("^1.0"), url_));
  EXPECT_EQ(semver.ref, "refs/tags/v1.10.0");
  EXPECT_EQ(semver.commit, c2_);
  ASSERT_OK_AND_ASSIGN(Resolved older, Resolve(fetched, RefSpec::Semver("~1.2"), url_));
  EXPECT_EQ(older.ref, "refs/tags/1.2.0");
  ASSERT_OK_AND_ASSIGN(Resolved pre, Resolve(fetched, RefSpec::Semver(">=2.0.0-0"), url_));
  EXPECT_EQ(pre.ref, "refs/tags/v2.0.0-rc.1");

  CommitExpander expand = [&](std::string_view sha) { return git.ExpandCommit(url_, sha); };
  ASSERT_OK_AND_ASSIGN(Resolved commit,
                       Resolve(fetched, RefSpec::Commit(c1_.substr(0, 8)), url_, expand));
  EXPECT_EQ(commit.commit, c1_);
  EXPECT_THAT(Resolve(fetched, RefSpec::Commit("0123456789abcdef"), url_, expand),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("0123456789abcdef")));
  EXPECT_THAT(
      Resolve(fetched, RefSpec::Branch("nope"), url_),
      StatusIs(absl::StatusCode::kNotFound, AllOf(HasSubstr("branch nope"), HasSubstr(url_))));

  // Idempotent.
  ASSERT_OK_AND_ASSIGN(RefMap again, git.Fetch(url_, {}));
  EXPECT_EQ(again, fetched);
}

TEST_F(GitClientTest, CheckoutSubpathWritesFilesModesAndSymlinks) {
  Libgit2Client git = MakeClient();
  ASSERT_OK(git.Fetch(url_, {}).status());
  fs::path dest = root_ / "out";
  ASSERT_OK_AND_ASSIGN(CheckoutResult r, git.Checkout(url_, c1_, dest.string(), "./apps/web/"));
  EXPECT_EQ(r.commit, c1_);
  EXPECT_EQ(r.files, 4u);  // deploy.yaml, svc.yaml, run.sh, link.yaml
  EXPECT_EQ(ReadFile(dest / "deploy.yaml"), "kind: Deployment\n");
  EXPECT_EQ(ReadFile(dest / "svc.yaml"), "kind: Service\n");
  EXPECT_TRUE(fs::is_symlink(dest / "link.yaml"));
  EXPECT_EQ(fs::read_symlink(dest / "link.yaml"), "deploy.yaml");
  EXPECT_NE(fs::status(dest / "run.sh").permissions() & fs::perms::owner_exec, fs::perms::none);
  EXPECT_EQ(fs::status(dest / "svc.yaml").permissions() & fs::perms::owner_exec, fs::perms::none);
  EXPECT_FALSE(fs::exists(dest / "apps"));
  EXPECT_FALSE(fs::exists(dest / "README.md"));

  // Whole tree at another commit.
  fs::path all = root_ / "all";
  ASSERT_OK_AND_ASSIGN(CheckoutResult whole, git.Checkout(url_, c2_, all.string(), ""));
  EXPECT_EQ(ReadFile(all / "apps/db/sts.yaml"), "kind: StatefulSet\nreplicas: 3\n");
  EXPECT_EQ(whole.files, 6u);

  // The destination must be empty.
  EXPECT_THAT(git.Checkout(url_, c2_, all.string(), ""),
              StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST_F(GitClientTest, CheckoutErrors) {
  Libgit2Client git = MakeClient();
  EXPECT_THAT(git.Checkout(url_, c1_, (root_ / "o0").string(), ""),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("fetch it first")));
  ASSERT_OK(git.Fetch(url_, {}).status());
  EXPECT_THAT(git.Checkout(url_, c1_, (root_ / "o1").string(), "apps/../.."),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("..")));
  EXPECT_THAT(git.Checkout(url_, c1_, (root_ / "o2").string(), "/etc"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(
      git.Checkout(url_, c1_, (root_ / "o3").string(), "apps/nope"),
      StatusIs(absl::StatusCode::kNotFound, AllOf(HasSubstr("apps/nope"), HasSubstr(url_))));
  EXPECT_THAT(git.Checkout(url_, c1_, (root_ / "o4").string(), "README.md"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not a directory")));
  EXPECT_THAT(git.Checkout(url_, std::string(40, 'e'), (root_ / "o5").string(), ""),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr(std::string(40, 'e'))));
}

TEST_F(GitClientTest, CheckoutEnforcesLimits) {
  Libgit2Client few_files = MakeClient({.max_checkout_files = 3});
  ASSERT_OK(few_files.Fetch(url_, {}).status());
  fs::path dest = root_ / "limited";
  EXPECT_THAT(
      few_files.Checkout(url_, c1_, dest.string(), ""),
      StatusIs(absl::StatusCode::kResourceExhausted, AllOf(HasSubstr("3 files"), HasSubstr(url_))));
  EXPECT_TRUE(fs::is_empty(dest));
  Libgit2Client few_bytes = MakeClient({.max_checkout_bytes = 10});
  EXPECT_THAT(few_bytes.Checkout(url_, c1_, dest.string(), ""),
              StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("10 bytes")));
  EXPECT_TRUE(fs::is_empty(dest));
}

TEST_F(GitClientTest, SymlinksEscapingTheCheckoutAreRefused) {
  fs::create_symlink("../../../etc/passwd", work_ / "apps/web/evil");
  Git("add -A");
  Git("commit -q -m evil");
  std::string evil = Git("rev-parse HEAD");
  Libgit2Client git = MakeClient();
  ASSERT_OK(git.Fetch(url_, {}).status());
  fs::path dest = root_ / "evil";
  EXPECT_THAT(git.Checkout(url_, evil, dest.string(), ""),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("apps/web/evil")));
  EXPECT_TRUE(fs::is_empty(dest));

  // Inside the repository but outside the checked-out subpath: refused too.
  Git("rm -q apps/web/evil");
  fs::create_symlink("../db/sts.yaml", work_ / "apps/web/db.yaml");
  Git("add -A");
  Git("commit -q -m sibling");
  std::string sibling = Git("rev-parse HEAD");
  ASSERT_OK(git.Fetch(url_, {}).status());
  EXPECT_THAT(git.Checkout(url_, sibling, (root_ / "s1").string(), "apps/web"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("db.yaml")));
  ASSERT_OK(git.Checkout(url_, sibling, (root_ / "s2").string(), "apps").status());
  EXPECT_EQ(ReadFile(root_ / "s2/web/db.yaml"), "kind: StatefulSet\nreplicas: 3\n");

  // Lexically inside, but through another link it climbs out: a/up -> .., a/out -> up/..
  Git("rm -q apps/web/db.yaml");
  fs::create_directories(work_ / "a");
  fs::create_symlink("..", work_ / "a/up");
  fs::create_symlink("up/..", work_ / "a/out");
  Git("add -A");
  Git("commit -q -m chain");
  std::string chain = Git("rev-parse HEAD");
  ASSERT_OK(git.Fetch(url_, {}).status());
  EXPECT_THAT(git.Checkout(url_, chain, (root_ / "c1").string(), ""),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("a/out")));
}

TEST_F(GitClientTest, ChangedPathsBetweenCommits) {
  Libgit2Client git = MakeClient();
  WriteFile(work_ / "apps/web/new.yaml", "kind: ConfigMap\n");
  Git("mv apps/web/svc.yaml apps/web/service.yaml");
  Git("add -A");
  Git("commit -q -m three");
  std::string c3 = Git("rev-parse HEAD");
  ASSERT_OK(git.Fetch(url_, {}).status());
  ASSERT_OK_AND_ASSIGN(std::vector<std::string> one_two, git.ChangedPaths(url_, c1_, c2_));
  EXPECT_THAT(one_two, ElementsAre("apps/db/sts.yaml"));
  ASSERT_OK_AND_ASSIGN(std::vector<std::string> two_three, git.ChangedPaths(url_, c2_, c3));
  EXPECT_THAT(two_three,
              ElementsAre("apps/web/new.yaml", "apps/web/service.yaml", "apps/web/svc.yaml"));
  ASSERT_OK_AND_ASSIGN(std::vector<std::string> from_empty, git.ChangedPaths(url_, "", c1_));
  EXPECT_EQ(from_empty.size(), 6u);
  ASSERT_OK_AND_ASSIGN(std::vector<std::string> same, git.ChangedPaths(url_, c2_, c2_));
  EXPECT_TRUE(same.empty());
  EXPECT_THAT(git.ChangedPaths(url_, c1_, std::string(40, 'd')),
              StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(GitClientTest, FetchFollowsMovedBranchesForcePushesAndDeletions) {
  Libgit2Client git = MakeClient();
  ASSERT_OK(git.Fetch(url_, {}).status());
  // Branch moved by a new commit.
  WriteFile(work_ / "apps/web/deploy.yaml", "kind: Deployment\nreplicas: 2\n");
  Git("commit -q -am three");
  std::string c3 = Git("rev-parse HEAD");
  ASSERT_OK_AND_ASSIGN(RefMap moved, git.Fetch(url_, {}));
  EXPECT_EQ(moved["refs/heads/main"], c3);
  // History rewritten: main reset to c1 plus a different commit; a branch and a tag deleted;
  // a tag moved.
  Git("reset -q --hard " + c1_);
  WriteFile(work_ / "other.txt", "rewritten\n");
  Git("add -A");
  Git("commit -q -m rewritten");
  std::string rewritten = Git("rev-parse HEAD");
  Git("branch -D release/1.x");
  Git("tag -d v2.0.0-rc.1");
  Git("tag -f -a v1.10.0 -m moved");
  ASSERT_OK_AND_ASSIGN(RefMap forced, git.Fetch(url_, {}));
  EXPECT_EQ(forced["refs/heads/main"], rewritten);
  EXPECT_EQ(forced["refs/tags/v1.10.0"], rewritten);
  EXPECT_EQ(forced.count("refs/heads/release/1.x"), 0u);
  EXPECT_EQ(forced.count("refs/tags/v2.0.0-rc.1"), 0u);
  ASSERT_OK_AND_ASSIGN(RefMap remote, git.ListRemoteRefs(url_, {}));
  EXPECT_EQ(forced, remote);
  fs::path dest = root_ / "rw";
  ASSERT_OK(git.Checkout(url_, rewritten, dest.string(), "").status());
  EXPECT_EQ(ReadFile(dest / "other.txt"), "rewritten\n");
}

TEST_F(GitClientTest, BrokenMirrorIsRecreated) {
  Libgit2Client first = MakeClient();
  std::string mirror = first.MirrorPathForTest(url_);
  // A crash after mkdir but before init: a directory that is not a repository.
  fs::create_directories(fs::path(mirror) / "objects");
  WriteFile(fs::path(mirror) / "HEAD", "garbage");
  // And the leftovers of an interrupted creation.
  fs::create_directories(mirror + ".tmp-1-0/objects");
  ASSERT_OK_AND_ASSIGN(RefMap refs, first.Fetch(url_, {}));
  EXPECT_EQ(refs["refs/heads/main"], c2_);
  EXPECT_FALSE(fs::exists(mirror + ".tmp-1-0"));

  // A crash mid-fetch leaves lock files; a new process (client) clears them.
  WriteFile(fs::path(mirror) / "packed-refs.lock", "");
  WriteFile(fs::path(mirror) / "refs/heads/main.lock", "");
  WriteFile(work_ / "x.txt", "x\n");
  Git("add -A");
  Git("commit -q -m x");
  Libgit2Client second = MakeClient();
  ASSERT_OK_AND_ASSIGN(RefMap after, second.Fetch(url_, {}));
  EXPECT_EQ(after["refs/heads/main"], Git("rev-parse HEAD"));
}

TEST_F(GitClientTest, SubmodulesAreSkippedAndReported) {
  Git("update-index --add --cacheinfo 160000," + c1_ + ",vendor/lib");
  Git("commit -q -m submodule");
  std::string c3 = Git("rev-parse HEAD");
  Libgit2Client git = MakeClient();
  ASSERT_OK(git.Fetch(url_, {}).status());
  fs::path dest = root_ / "sub";
  ASSERT_OK_AND_ASSIGN(CheckoutResult r, git.Checkout(url_, c3, dest.string(), ""));
  EXPECT_THAT(r.skipped_submodules, ElementsAre("vendor/lib"));
  EXPECT_TRUE(fs::is_directory(dest / "vendor/lib"));
  EXPECT_TRUE(fs::is_empty(dest / "vendor/lib"));
  ASSERT_OK_AND_ASSIGN(std::vector<std::string> changed, git.ChangedPaths(url_, c2_, c3));
  EXPECT_THAT(changed, ElementsAre("vendor/lib"));
}

TEST_F(GitClientTest, UnreachableHostIsUnavailable) {
  Libgit2Client git = MakeClient();
  int port = FreePort();  // nothing listens there
  std::string url = "git://127.0.0.1:" + std::to_string(port) + "/repo";
  EXPECT_THAT(git.ListRemoteRefs(url, {}),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr(url)));
  EXPECT_THAT(git.Fetch(url, {}), StatusIs(absl::StatusCode::kUnavailable, HasSubstr(url)));
}

TEST_F(GitClientTest, CredentialsNeverAppearInErrors) {
  Libgit2Client git = MakeClient();
  int port = FreePort();
  std::string url = "https://alice:s3cr3t-t0ken@127.0.0.1:" + std::to_string(port) + "/team/x";
  Credentials creds{.username = "bob", .password = "hunter2-password"};
  absl::StatusOr<RefMap> refs = git.ListRemoteRefs(url, creds);
  EXPECT_THAT(refs, StatusIs(absl::StatusCode::kUnavailable,
                             HasSubstr("https://127.0.0.1:" + std::to_string(port) + "/team/x")));
  EXPECT_THAT(refs, StatusIs(absl::StatusCode::kUnavailable,
                             AllOf(Not(HasSubstr("s3cr3t")), Not(HasSubstr("hunter2")),
                                   Not(HasSubstr("alice")))));
  absl::StatusOr<RefMap> fetched = git.Fetch(url, creds);
  EXPECT_THAT(fetched, StatusIs(absl::StatusCode::kUnavailable, Not(HasSubstr("s3cr3t"))));
}

TEST_F(GitClientTest, MissingRepositoryIsNotFound) {
  Libgit2Client git = MakeClient();
  std::string url = "file://" + (root_ / "no-such-repo").string();
  EXPECT_THAT(git.ListRemoteRefs(url, {}), StatusIs(absl::StatusCode::kNotFound, HasSubstr(url)));
  EXPECT_THAT(git.Fetch(url, {}), StatusIs(absl::StatusCode::kNotFound, HasSubstr(url)));
}

TEST_F(GitClientTest, GitDaemonEndToEnd) {
  std::string url = StartDaemon();
  Libgit2Client git = MakeClient();
  ASSERT_OK_AND_ASSIGN(RefMap remote, git.ListRemoteRefs(url, {}));
  EXPECT_EQ(remote["refs/heads/main"], c2_);
  EXPECT_EQ(remote["refs/tags/v1.0.0"], c1_);

  auto start = std::chrono::steady_clock::now();
  ASSERT_OK_AND_ASSIGN(RefMap fetched, git.Fetch(url, {}));
  auto fetch_time = std::chrono::steady_clock::now() - start;
  EXPECT_LT(fetch_time, std::chrono::seconds(1));
  std::cerr << "first fetch over git://: "
            << std::chrono::duration_cast<std::chrono::milliseconds>(fetch_time).count() << " ms\n";
  EXPECT_EQ(fetched, remote);

  ASSERT_OK_AND_ASSIGN(Resolved r, Resolve(fetched, RefSpec::Semver(">=1.0.0 <2.0.0"), url));
  EXPECT_EQ(r.commit, c2_);
  fs::path dest = root_ / "d";
  ASSERT_OK(git.Checkout(url, r.commit, dest.string(), "apps/db").status());
  EXPECT_EQ(ReadFile(dest / "sts.yaml"), "kind: StatefulSet\nreplicas: 3\n");

  // New commit pushed → the next fetch sees it; an up-to-date fetch is fast.
  WriteFile(work_ / "apps/web/svc.yaml", "kind: Service\nport: 80\n");
  Git("commit -q -am four");
  std::string c3 = Git("rev-parse HEAD");
  ASSERT_OK_AND_ASSIGN(RefMap moved, git.Fetch(url, {}));
  EXPECT_EQ(moved["refs/heads/main"], c3);
  ASSERT_OK_AND_ASSIGN(std::vector<std::string> changed, git.ChangedPaths(url, c2_, c3));
  EXPECT_THAT(changed, ElementsAre("apps/web/svc.yaml"));

  // Missing repository on a live daemon.
  std::string missing = "git://127.0.0.1:" + std::to_string(daemon_port_) + "/nope";
  EXPECT_THAT(git.ListRemoteRefs(missing, {}),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr(missing)));
}

TEST_F(GitClientTest, FetchOverDeadlineIsDeadlineExceeded) {
  std::string url = StartDaemon();
  Libgit2Client git = MakeClient({.timeout = std::chrono::milliseconds(0)});
  EXPECT_THAT(git.Fetch(url, {}), StatusIs(absl::StatusCode::kDeadlineExceeded,
                                           AllOf(HasSubstr(url), HasSubstr("0ms"))));
  // The aborted fetch leaves a usable mirror: a client with time to spare completes it.
  Libgit2Client patient = MakeClient();
  ASSERT_OK_AND_ASSIGN(RefMap refs, patient.Fetch(url, {}));
  EXPECT_EQ(refs["refs/heads/main"], c2_);
}

// Regression: a server that accepted the connection and then sent nothing blocked ls-remote and
// fetch forever (libgit2 1.5 waits in recv() with no timeout, and the operation deadline was
// only checked in progress callbacks), stalling the repo-poller.
TEST_F(GitClientTest, SilentServerHitsTheReadTimeout) {
  testing::StubTcpServer silent;
  std::string host = "127.0.0.1:" + std::to_string(silent.port());
  Libgit2Client git = MakeClient({.read_timeout = std::chrono::milliseconds(500)});
  for (const std::string& url : {"http://" + host + "/repo.git", "git://" + host + "/repo.git",
                                 "https://" + host + "/repo.git"}) {
    SCOPED_TRACE(url);
    auto start = std::chrono::steady_clock::now();
    absl::StatusOr<RefMap> refs = git.ListRemoteRefs(url, {});
    auto took = std::chrono::steady_clock::now() - start;
    std::cerr << "ls-remote " << url << " against a silent server failed after "
              << std::chrono::duration_cast<std::chrono::milliseconds>(took).count()
              << " ms: " << refs.status() << "\n";
    EXPECT_THAT(refs, StatusIs(absl::StatusCode::kDeadlineExceeded,
                               AllOf(HasSubstr(url), HasSubstr("read timed out after 500ms"),
                                     HasSubstr("from " + host))));
    EXPECT_LT(took, std::chrono::seconds(5));
  }
  auto start = std::chrono::steady_clock::now();
  EXPECT_THAT(git.Fetch("git://" + host + "/repo.git", {}),
              StatusIs(absl::StatusCode::kDeadlineExceeded, HasSubstr("read timed out")));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  EXPECT_GE(silent.accepted(), 4);
}

TEST_F(GitClientTest, OperationTimeoutEndsAWaitForASilentServer) {
  testing::StubTcpServer silent;
  std::string url = "http://alice:s3cr3t@127.0.0.1:" + std::to_string(silent.port()) + "/repo";
  Libgit2Client git = MakeClient({.timeout = std::chrono::milliseconds(700)});  // read: 60 s
  auto start = std::chrono::steady_clock::now();
  absl::StatusOr<RefMap> fetched = git.Fetch(url, {});
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_THAT(fetched, StatusIs(absl::StatusCode::kDeadlineExceeded,
                                AllOf(HasSubstr(RedactUrl(url)), HasSubstr("700ms"),
                                      Not(HasSubstr("s3cr3t")))));
  EXPECT_GE(took, std::chrono::milliseconds(650));
  EXPECT_LT(took, std::chrono::seconds(5));
}

// libgit2 1.5's SSH transport connects through the registered stream and then hands its
// descriptor to libssh2 (casting it to libgit2's own socket stream struct): libssh2 must talk
// on that socket.
TEST_F(GitClientTest, SshTalksOnTheConnectedSocket) {
  if (!Libgit2Client::SupportsSsh()) GTEST_SKIP() << "libgit2 without SSH";
  std::mutex mu;
  std::string received;  // guarded by mu
  testing::StubTcpServer server({.on_connection = [&](int fd) {
    timeval tv{2, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    std::string line;
    char c;
    while (line.size() < 200 && recv(fd, &c, 1, 0) == 1 && c != '\n') line += c;
    {
      std::lock_guard<std::mutex> lock(mu);
      received = line;
    }
    shutdown(fd, SHUT_RDWR);  // no server banner: the handshake fails
  }});
  std::string url = "ssh://git@127.0.0.1:" + std::to_string(server.port()) + "/repo";
  Libgit2Client git = MakeClient();
  absl::StatusOr<RefMap> refs;
  {
#if defined(__SANITIZE_ADDRESS__)
    // libgit2 1.5 leaks 32 bytes when an SSH handshake fails (also with its own socket stream).
    __lsan::ScopedDisabler libgit2_leak;
#endif
    refs = git.ListRemoteRefs(url, {.ssh_private_key = "not a key"});
  }
  EXPECT_THAT(refs, StatusIs(absl::StatusCode::kUnavailable, HasSubstr(RedactUrl(url))));
  EXPECT_EQ(server.accepted(), 1);
  std::lock_guard<std::mutex> lock(mu);
  EXPECT_THAT(received, ::testing::StartsWith("SSH-2.0-"));
}

TEST_F(GitClientTest, ConcurrentFetchesOfOneAndManyRepositories) {
  fs::path second = root_ / "served" / "second";
  Sh("git clone -q --bare '" + work_.string() + "' '" + second.string() + "'");
  std::string url2 = "file://" + second.string();
  Libgit2Client git = MakeClient();
  std::vector<std::thread> threads;
  std::vector<absl::Status> results(8);
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      absl::StatusOr<RefMap> r = git.Fetch(i % 2 ? url_ : url2, {});
      results[i] = r.status();
      if (r.ok() && (*r)["refs/heads/main"] != c2_) results[i] = absl::InternalError("wrong sha");
    });
  }
  for (std::thread& t : threads) t.join();
  for (const absl::Status& s : results) EXPECT_OK(s);
  EXPECT_NE(git.MirrorPathForTest(url_), git.MirrorPathForTest(url2));
}

TEST_F(GitClientTest, SshWithoutSupportOrWithBadHostIsClassified) {
  Libgit2Client git = MakeClient();
  int port = FreePort();
  std::string url = "ssh://git@127.0.0.1:" + std::to_string(port) + "/repo";
  Credentials creds{.ssh_private_key = "not a key"};
  absl::StatusOr<RefMap> refs = git.ListRemoteRefs(url, creds);
  if (Libgit2Client::SupportsSsh()) {
    EXPECT_THAT(refs, StatusIs(absl::StatusCode::kUnavailable, HasSubstr(RedactUrl(url))));
  } else {
    EXPECT_THAT(refs, StatusIs(absl::StatusCode::kUnimplemented, HasSubstr("SSH")));
  }
}

// Regression: Debian's libgit2 1.5 leaked pcre2 match data (~250 KB) on every fetch through
// url.*.insteadOf matching of anonymous remotes; a poller fetching all day must not grow.
TEST_F(GitClientTest, RepeatedFetchesDoNotLeak) {
  Libgit2Client git = MakeClient();
  ASSERT_OK(git.Fetch(url_, {}).status());
  size_t before = mallinfo2().uordblks;
  for (int i = 0; i < 20; ++i) ASSERT_OK(git.Fetch(url_, {}).status());
  size_t after = mallinfo2().uordblks;
  EXPECT_LT(after, before + (2u << 20)) << "heap grew by " << (after - before) << " bytes";
}

// --- Smart HTTP(S) through git http-backend: authentication and TLS trust. ---------------------

TEST_F(GitClientTest, HttpBasicAuth) {
  ASSERT_OK_AND_ASSIGN(auto server,
                       testing::GitHttpServer::Start({.project_root = (root_ / "served").string(),
                                                      .username = "alice",
                                                      .password = "s3cret"}));
  std::string url = server->BaseUrl() + "/repo";
  Libgit2Client git = MakeClient();
  EXPECT_THAT(git.ListRemoteRefs(url, {}),
              StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr(url)));
  Credentials wrong{.username = "alice", .password = "guess"};
  absl::StatusOr<RefMap> rejected = git.ListRemoteRefs(url, wrong);
  EXPECT_THAT(rejected, StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("rejected")));
  EXPECT_THAT(rejected, StatusIs(absl::StatusCode::kUnauthenticated, Not(HasSubstr("guess"))));
  EXPECT_THAT(git.Fetch(url, wrong), StatusIs(absl::StatusCode::kUnauthenticated));

  Credentials right{.username = "alice", .password = "s3cret"};
  ASSERT_OK_AND_ASSIGN(RefMap remote, git.ListRemoteRefs(url, right));
  EXPECT_EQ(remote["refs/heads/main"], c2_);
  EXPECT_EQ(remote["refs/tags/v1.0.0"], c1_);
  auto start = std::chrono::steady_clock::now();
  ASSERT_OK_AND_ASSIGN(RefMap fetched, git.Fetch(url, right));
  auto took = std::chrono::steady_clock::now() - start;
  std::cerr << "first fetch over http://: "
            << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms\n";
  EXPECT_EQ(fetched, remote);
  fs::path dest = root_ / "http";
  ASSERT_OK(git.Checkout(url, c1_, dest.string(), "apps/web").status());
  EXPECT_EQ(ReadFile(dest / "svc.yaml"), "kind: Service\n");

  // Credentials embedded in the URL work too and are redacted from errors.
  std::string with_userinfo =
      "http://alice:s3cret@127.0.0.1:" + std::to_string(server->port()) + "/repo";
  ASSERT_OK(git.ListRemoteRefs(with_userinfo, {}).status());
  std::string bad_userinfo =
      "http://alice:nope-pw@127.0.0.1:" + std::to_string(server->port()) + "/missing";
  absl::StatusOr<RefMap> missing = git.ListRemoteRefs(bad_userinfo, {});
  EXPECT_FALSE(missing.ok());
  EXPECT_THAT(std::string(missing.status().message()), Not(HasSubstr("nope-pw")));
}

TEST_F(GitClientTest, HttpBearerTokenAndMissingRepository) {
  ASSERT_OK_AND_ASSIGN(
      auto server, testing::GitHttpServer::Start(
                       {.project_root = (root_ / "served").string(), .bearer_token = "tok-123"}));
  Libgit2Client git = MakeClient();
  std::string url = server->BaseUrl() + "/repo";
  EXPECT_THAT(git.ListRemoteRefs(url, {}), StatusIs(absl::StatusCode::kUnauthenticated));
  Credentials bearer{.bearer_token = "tok-123"};
  ASSERT_OK_AND_ASSIGN(RefMap refs, git.Fetch(url, bearer));
  EXPECT_EQ(refs["refs/heads/main"], c2_);
  EXPECT_THAT(git.ListRemoteRefs(server->BaseUrl() + "/nope", bearer),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("/nope")));
}

TEST_F(GitClientTest, HttpsTrustsOnlyTheConfiguredCa) {
  std::string d = root_.string();
  ASSERT_EQ(std::system(("sh -c \"set -e; cd '" + d +
                         "';"
                         "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 "
                         "-nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=test-ca "
                         "-addext basicConstraints=critical,CA:TRUE 2>/dev/null;"
                         "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 "
                         "-nodes -keyout other.key -out other.pem -days 2 -subj /CN=other "
                         "-addext basicConstraints=critical,CA:TRUE 2>/dev/null;"
                         "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
                         "-keyout leaf.key -out leaf.csr -subj /CN=localhost 2>/dev/null;"
                         "printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' > ext.cnf;"
                         "openssl x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
                         "-days 2 -extfile ext.cnf -out leaf.pem 2>/dev/null\"")
                            .c_str()),
            0);
  ASSERT_OK_AND_ASSIGN(auto server,
                       testing::GitHttpServer::Start({.project_root = (root_ / "served").string(),
                                                      .cert_file = d + "/leaf.pem",
                                                      .key_file = d + "/leaf.key"}));
  std::string url = server->BaseUrl() + "/repo";
  Libgit2Client git = MakeClient();
  EXPECT_THAT(git.ListRemoteRefs(url, {}), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(git.ListRemoteRefs(url, {.ca_data = ReadFile(root_ / "other.pem")}),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("not trusted")));
  Credentials trusted{.ca_data = ReadFile(root_ / "ca.pem")};
  ASSERT_OK_AND_ASSIGN(RefMap refs, git.Fetch(url, trusted));
  EXPECT_EQ(refs["refs/heads/main"], c2_);
}

}  // namespace
}  // namespace driftless::git
