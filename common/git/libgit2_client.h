// Libgit2Client: GitClient over libgit2 (Debian 1.5; HTTPS via mbedTLS, SSH via libssh2, no
// shallow clones). Keeps one bare mirror per normalized URL under `cache_dir`:
//   <cache_dir>/<first 32 hex of sha256(NormalizeUrl(url))>.git
// Mirrors are created in a temporary directory and renamed into place, so a crash never leaves
// a half-initialized mirror under the final name; a mirror that fails to open, or whose fetch
// fails with local corruption, is deleted and recreated once. Stale lock files left by a crash
// are removed the first time this process uses a mirror. One cache_dir per process: replicas
// must not share one (no cross-process locking).
//
// Thread-safety: all methods may be called concurrently; calls touching the same mirror are
// serialized by a per-mirror mutex, different mirrors proceed in parallel.
//
// Timeouts: libgit2 1.5 has no connect/read timeouts, so `timeout` is enforced from its
// callbacks (transfer progress, sideband, credentials, certificate check, ref updates), which
// fire while data flows; a server that accepts the connection and then sends nothing can still
// block until the OS gives up on the socket.
//
// Mirrors ignore git configuration of the host (url.*.insteadOf, credential helpers): the URL
// and Credentials passed in are all that is used.
//
// Credentials: see git_client.h. SSH known_hosts checking compares the raw host key offered by
// the server with the keys listed for that host (plain host names; hashed entries are not
// supported and never match).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "common/git/git_client.h"

namespace driftless::git {

struct Libgit2ClientOptions {
  std::string cache_dir;                       // created if missing
  std::chrono::milliseconds timeout{120'000};  // per ListRemoteRefs / Fetch
  uint64_t max_checkout_bytes = 512ull << 20;  // total size of files written by Checkout
  uint64_t max_checkout_files = 50'000;        // files + symlinks written by Checkout
};

class Libgit2Client : public GitClient {
 public:
  explicit Libgit2Client(Libgit2ClientOptions options);
  ~Libgit2Client() override;

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

  // Directory of the mirror for `url` (whether or not it exists yet).
  std::string MirrorPathForTest(std::string_view url) const;

  // True if this libgit2 build can use ssh:// URLs.
  static bool SupportsSsh();

 private:
  struct Mirror;
  // The mirror record for `url` (created on first use; never removed).
  Mirror& MirrorFor(std::string_view url);

  Libgit2ClientOptions options_;
  std::mutex mirrors_mu_;
  std::map<std::string, std::unique_ptr<Mirror>> mirrors_;  // by mirror path
};

}  // namespace driftless::git
