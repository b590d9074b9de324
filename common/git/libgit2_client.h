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
// Timeouts (ListRemoteRefs and Fetch; all other methods are local). libgit2 1.5 has none of
// its own, so this client registers its own TCP stream with libgit2 (internal/socket_stream.h),
// used for http://, git://, https:// (under mbedTLS) and to connect ssh://:
//   - connect_timeout: establishing the TCP connection (DNS lookup excluded);
//   - read_timeout: the longest time without any byte arriving (or any byte accepted for
//     sending); every read or write starts a new wait, so slow but live transfers continue;
//   - timeout: the whole operation. Enforced by every socket wait (no wait extends past it) and
//     by libgit2's callbacks (progress, sideband, credentials, certificate, ref updates).
// Each is reported as kDeadlineExceeded naming the redacted URL and the limit: "listing refs of
// http://host/repo.git: read timed out after 60s without data from host:80", "... connect to
// host:443 timed out after 10s", "git operation on <url> exceeded its timeout of 120000ms".
// The settings apply per call on the calling thread: clients with different options may run
// side by side. The stream is registered process-wide, so other libgit2 users in the process
// get its defaults (10 s connect, 60 s read). Not covered: SSH after connecting (libssh2 reads
// the socket itself and libgit2 1.5 gives it no timeout: a silent SSH server blocks the call
// indefinitely, callbacks aside) and local file:// repositories.
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
  // See "Timeouts" above; zero or negative disables one (the operation timeout still applies).
  std::chrono::milliseconds connect_timeout{10'000};
  std::chrono::milliseconds read_timeout{60'000};
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
