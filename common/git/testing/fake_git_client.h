// FakeGitClient: an in-memory GitClient for tests of the repo-poller and renderer. Remote
// repositories are maps (URL → refs, commit → files); Fetch copies a remote's state into the
// "mirror", and ExpandCommit / Checkout / ChangedPaths see only fetched commits, like
// Libgit2Client. Errors can be injected per URL. Thread-safe.
//
//   FakeGitClient git;
//   git.SetCommit(url, sha1, {{"apps/web/deploy.yaml", "kind: Deployment\n"}});
//   git.SetRef(url, "refs/heads/main", sha1);
//   ... code under test calls git.ListRemoteRefs / Fetch / Checkout ...
//   EXPECT_EQ(git.CallCount(url, "ListRemoteRefs"), 1);
#pragma once

#include <map>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/git/git_client.h"

namespace driftless::git::testing {

class FakeGitClient : public GitClient {
 public:
  using Files = std::map<std::string, std::string>;  // path → content

  // Remote state. A commit's files are its whole tree.
  void SetRef(std::string_view url, std::string_view ref, std::string_view commit);
  void DeleteRef(std::string_view url, std::string_view ref);
  void SetCommit(std::string_view url, std::string_view commit, Files files);
  // Every call on `url` returns `status` until cleared with an OK status.
  void SetError(std::string_view url, absl::Status status);
  // Number of calls of `method` ("ListRemoteRefs", "Fetch", ...) on `url`.
  int CallCount(std::string_view url, std::string_view method) const;

  absl::StatusOr<RefMap> ListRemoteRefs(std::string_view url,
                                        const Credentials& credentials) override;
  absl::StatusOr<RefMap> Fetch(std::string_view url, const Credentials& credentials) override;
  absl::StatusOr<std::string> ExpandCommit(std::string_view url, std::string_view sha) override;
  absl::StatusOr<CheckoutResult> Checkout(std::string_view url, std::string_view commit,
                                          const std::string& dest_dir,
                                          std::string_view subpath) override;
  absl::StatusOr<std::vector<std::string>> ChangedPaths(std::string_view url,
                                                        std::string_view from_commit,
                                                        std::string_view to_commit) override;

 private:
  struct Repo {
    RefMap refs;
    std::map<std::string, Files> commits;
    absl::Status error;
  };
  // Records a call and returns the injected error for `url` (OK if none). Requires mu_.
  absl::Status Enter(std::string_view url, std::string_view method);
  // Full sha of a fetched commit. Requires mu_.
  absl::StatusOr<std::string> ExpandLocked(std::string_view url, std::string_view sha);

  mutable std::mutex mu_;
  std::map<std::string, Repo, std::less<>> remote_;
  std::map<std::string, Repo, std::less<>> mirror_;
  std::map<std::string, int, std::less<>> calls_;  // "url method" → count
};

}  // namespace driftless::git::testing
