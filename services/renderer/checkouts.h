// Checkouts shared by the renders of one revision: applications of a monorepo render from a
// single checkout, in parallel, and a checkout is written once per (repository, commit,
// subpath) however many applications use it. Kustomize and Helm renders take the whole
// repository (bases, value files and dependencies may be anywhere in it); a plain directory
// takes only its path, which costs a few files instead of the whole tree of a large monorepo.
// Checkouts are read-only to renders (tools run in private directories); the `keep` most recently
// used stay on disk, older ones are removed when the last render using them lets go.
//
//   CheckoutCache checkouts(&git, state_dir + "/checkouts");
//   DL_ASSIGN_OR_RETURN(CheckoutCache::Handle c, checkouts.Get(url, commit, "apps/web"));
//   Generate({.checkout = c->path, ...});   // c->path/apps/web holds the files
//
// Thread-safe.
#pragma once

#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "common/git/git_client.h"
#include "common/status/status.h"

namespace driftless::renderer {

class CheckoutCache {
 public:
  struct Checkout {
    std::string path;  // absolute; the repository root at the commit (only `subpath` filled)
    ~Checkout();
  };
  using Handle = std::shared_ptr<const Checkout>;

  // `dir` is emptied (leftovers of an earlier run) and created.
  CheckoutCache(git::GitClient* git, std::string dir, size_t keep = 8);

  // The checkout of `commit` (full sha, in the mirror) of `url`: the whole tree, or with a
  // non-empty `subpath` (normalized, repository-relative) only that directory, at the same
  // place below the root. Errors: the git client's (kNotFound for a missing subpath).
  absl::StatusOr<Handle> Get(const std::string& url, const std::string& commit,
                             const std::string& subpath = "");

 private:
  struct Entry {
    std::mutex mu;  // held while the checkout is written
    Handle checkout;
  };

  git::GitClient* git_;
  std::string dir_;
  size_t keep_;
  std::mutex mu_;
  uint64_t next_id_ = 0;
  std::map<std::string, std::shared_ptr<Entry>> entries_;  // key: url, commit, subpath
  std::list<std::string> recent_;                          // most recent first
};

}  // namespace driftless::renderer
