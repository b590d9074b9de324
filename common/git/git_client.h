// GitClient: the git operations driftless needs, behind one narrow interface so the
// repo-poller and renderer can be tested with fakes. The real implementation is
// Libgit2Client (libgit2_client.h): bare mirrors in a local cache directory.
//
//   Libgit2Client git({.cache_dir = "/var/cache/driftless/git"});
//   DL_ASSIGN_OR_RETURN(RefMap refs, git.ListRemoteRefs(url, creds));       // repo-poller
//   DL_ASSIGN_OR_RETURN(Resolved r, Resolve(refs, RefSpec::Branch("main"), RedactUrl(url)));
//   ...
//   DL_RETURN_IF_ERROR(git.Fetch(url, creds).status());                      // renderer
//   DL_ASSIGN_OR_RETURN(CheckoutResult out,
//                       git.Checkout(url, r.commit, "/tmp/render-123", "apps/guestbook"));
//
// Error codes (every message names the URL with credentials stripped, and the ref/commit/path):
//   kUnavailable       host unreachable, connection refused, transport failures (retry)
//   kDeadlineExceeded  the operation ran over its timeout (retry)
//   kUnauthenticated   credentials missing or rejected
//   kNotFound          repository, branch, tag, commit or path does not exist
//   kInvalidArgument   malformed input: subpath with "..", symlink escaping the checkout, ...
//   kResourceExhausted checkout over the size or file-count limit
//   kUnimplemented     a transport or credential kind this build cannot use
//   kFailedPrecondition TLS certificate not trusted, SSH host key unknown, dest_dir not empty
//   kInternal          local repository corruption that recreating the mirror did not fix
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/git/ref_resolve.h"
#include "common/status/status.h"

namespace driftless::git {

// How to authenticate to a repository. At most one method applies: ssh_private_key for ssh://
// and scp-like URLs; bearer_token, else username/password (a token goes in `password`, with any
// non-empty username the host accepts, "git" if empty) for https://. ca_data adds a trust
// anchor for https://. Never logged; never part of an error message.
struct Credentials {
  std::string username;
  std::string password;         // password or personal access token
  std::string bearer_token;     // sent as "Authorization: Bearer <token>"
  std::string ssh_private_key;  // PEM / OpenSSH private key text
  std::string ssh_passphrase;
  std::string ssh_known_hosts;  // known_hosts lines; empty = accept any host key (TOFU off)
  std::string ca_data;          // PEM certificates trusted for https:// in addition to the system
};

struct CheckoutResult {
  std::string commit;                           // the full sha written
  uint64_t files = 0;                           // regular files and symlinks written
  uint64_t bytes = 0;                           // total bytes of regular files written
  std::vector<std::string> skipped_submodules;  // paths (relative to dest_dir) left empty
};

class GitClient {
 public:
  virtual ~GitClient() = default;

  // Refs of the remote repository with one ls-remote: "HEAD", "refs/heads/*" and
  // "refs/tags/*" → commit sha (annotated tags peeled to their commit). Does not touch the
  // mirror. Thread-safe.
  virtual absl::StatusOr<RefMap> ListRemoteRefs(std::string_view url,
                                                const Credentials& credentials) = 0;

  // Brings the local mirror of `url` up to date with the remote (all branches and tags, force
  // updates, deleted refs pruned), creating the mirror if missing and recreating it if a
  // previous run left it broken. Returns the mirror's refs after the fetch (same shape as
  // ListRemoteRefs). Idempotent. Thread-safe: calls for the same URL are serialized.
  virtual absl::StatusOr<RefMap> Fetch(std::string_view url, const Credentials& credentials) = 0;

  // Full sha of the commit `sha` (full, or a unique prefix of at least 7 hex digits) in the
  // mirror of `url`. kNotFound if the mirror lacks it (fetch first), kInvalidArgument if
  // ambiguous or malformed. Usable as a CommitExpander for Resolve().
  virtual absl::StatusOr<std::string> ExpandCommit(std::string_view url, std::string_view sha) = 0;

  // Writes the tree of `commit` (only the directory `subpath` of it if non-empty, which then
  // becomes the root of `dest_dir`) into `dest_dir`, which must be missing or empty. Regular
  // files keep the executable bit; symlinks are written only when their target stays inside
  // dest_dir, otherwise kInvalidArgument naming the link. Submodules are skipped (left as an
  // empty directory) and listed in the result: their content is not in this repository. The
  // whole tree is validated (paths, symlinks, limits) before anything is written; on any
  // failure dest_dir is left empty. kInvalidArgument for a subpath that is absolute or has "..";
  // kNotFound for a missing commit or subpath; kResourceExhausted naming the limits.
  virtual absl::StatusOr<CheckoutResult> Checkout(std::string_view url, std::string_view commit,
                                                  const std::string& dest_dir,
                                                  std::string_view subpath) = 0;

  // Paths (files, symlinks, submodules; relative to the repository root, sorted, unique) that
  // differ between the trees of two commits in the mirror. A rename lists both paths. An empty
  // `from_commit` means the empty tree (every path of `to_commit`).
  virtual absl::StatusOr<std::vector<std::string>> ChangedPaths(std::string_view url,
                                                                std::string_view from_commit,
                                                                std::string_view to_commit) = 0;
};

}  // namespace driftless::git
