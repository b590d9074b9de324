// Ref resolution: which commit a source's `ref` ({branch} | {tag} | {semver} | {commit}) points
// to, given the refs of a repository (one `ls-remote` or one fetch per repository per poll).
//
//   DL_ASSIGN_OR_RETURN(RefMap refs, client.ListRemoteRefs(url, creds));
//   DL_ASSIGN_OR_RETURN(Resolved r, Resolve(refs, RefSpec::Semver("^1.2"), url));
//   // r.commit = "9fceb02...", r.ref = "refs/tags/v1.4.0", r.version = "1.4.0"
//
// Pure (no libgit2, no I/O) and thread-safe; the only lookup that needs the mirror (expanding a
// short commit sha) goes through the optional `CommitExpander` passed in.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <string_view>

#include "common/status/status.h"

namespace driftless::git {

// Full ref name ("refs/heads/main", "refs/tags/v1.0.0", "HEAD") → 40-hex commit sha. Annotated
// tags are already peeled to the commit they point at.
using RefMap = std::map<std::string, std::string>;

struct RefSpec {
  enum class Kind { kBranch, kTag, kSemver, kCommit };
  Kind kind = Kind::kBranch;
  // Branch or tag name (short "main" or full "refs/heads/main"), semver range, or commit sha
  // (40 hex digits, or a prefix of at least 7).
  std::string value;

  static RefSpec Branch(std::string name) { return {Kind::kBranch, std::move(name)}; }
  static RefSpec Tag(std::string name) { return {Kind::kTag, std::move(name)}; }
  static RefSpec Semver(std::string range) { return {Kind::kSemver, std::move(range)}; }
  static RefSpec Commit(std::string sha) { return {Kind::kCommit, std::move(sha)}; }

  // For messages: "branch main", "tag v1.0.0", "semver ^1.2", "commit 9fceb02".
  std::string ToString() const;
};

struct Resolved {
  std::string commit;   // 40 lowercase hex digits
  std::string ref;      // full ref name that matched; empty for a commit spec
  std::string version;  // for semver: the canonical version of the chosen tag ("1.4.0")
};

// Expands a (possibly short) commit sha to the full sha of a commit that exists, e.g. by a
// lookup in the mirror. Returns kNotFound if no such commit, kInvalidArgument if ambiguous.
using CommitExpander = std::function<absl::StatusOr<std::string>(std::string_view sha)>;

// Resolves `spec` against `refs`. `url` (already redacted) is only used in messages.
//  - branch / tag: exact name (short names get "refs/heads/" / "refs/tags/" prepended).
//  - semver: every tag whose name (minus "refs/tags/" and an optional "v") is a full SemVer
//    version is a candidate; the highest one matching the range wins (equal precedence, e.g.
//    "v1.0.0" and "1.0.0": the lexicographically smaller tag name).
//  - commit: must be hex, 7..40 digits. With `expand` it is expanded/verified by it; without,
//    a full sha is accepted as is and a prefix must match exactly one commit among `refs`.
// Errors: kNotFound naming the ref and URL (missing branch/tag/commit, no tag in range);
// kInvalidArgument for a malformed spec (bad range, non-hex or too short sha, empty name).
absl::StatusOr<Resolved> Resolve(const RefMap& refs, const RefSpec& spec, std::string_view url,
                                 const CommitExpander& expand = nullptr);

// True if `s` is 7..40 lowercase or uppercase hex digits.
bool LooksLikeSha(std::string_view s);

}  // namespace driftless::git
