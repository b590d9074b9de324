// The repo-poller's pure core: which applications moved, given one ls-remote per repository.
//
//   auto groups = GroupByRepository(sources);            // one ls-remote per repository URL
//   for (auto& [url, apps] : groups) {
//     DL_ASSIGN_OR_RETURN(git::RefMap refs, git.ListRemoteRefs(url, creds));    // the shell
//     PollResult r = DecidePoll(apps, refs, last_seen);
//     ... fetch, ChangedPaths(prev, new) ...
//     r.moved = AffectedByPaths(r.moved, changed_paths);   // monorepo-aware
//   }
//
// Pure and thread-safe.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "common/git/ref_resolve.h"
#include "common/status/status.h"

namespace driftless::repo_poller {

struct AppSource {
  std::string application;
  std::string repo_url;
  git::RefSpec ref;
  std::string path;  // "" = the repository root
  // Other repository paths its last render read (Kustomize bases, value files; the renderer's
  // read set): a commit touching any of them affects the application too.
  std::vector<std::string> reads;
};

// A source whose resolved commit differs from the last one seen.
struct Moved {
  std::string application;
  std::string previous;  // "" when first seen
  std::string revision;
  std::string ref;  // full ref name ("refs/heads/main"), "" for a commit spec
};

struct AppError {
  std::string application;
  absl::Status status;  // kNotFound for a missing branch/tag, kInvalidArgument for bad specs
};

struct PollResult {
  std::vector<Moved> moved;
  std::vector<AppError> errors;
};

// Sources grouped by git::NormalizeUrl(repo_url), so applications sharing a repository share
// one ls-remote and one mirror. Order within a group is preserved.
std::map<std::string, std::vector<AppSource>> GroupByRepository(
    const std::vector<AppSource>& sources);

// Resolves each source's ref against the repository's refs and reports those whose commit is
// not `last_seen[application]`. A source that does not resolve is an AppError, not a move.
PollResult DecidePoll(const std::vector<AppSource>& sources, const git::RefMap& refs,
                      const std::map<std::string, std::string>& last_seen);

// Keeps the moves whose application path, or a path of its read set, contains a changed path
// (monorepo-aware refresh).
// A move with no previous revision, or an empty `changed_paths` when the previous revision
// is unknown to the caller, always counts. `paths_known` false means "could not compute
// changed paths" (e.g. force-push): everything counts.
std::vector<Moved> AffectedByPaths(const std::vector<Moved>& moved,
                                   const std::vector<AppSource>& sources,
                                   const std::vector<std::string>& changed_paths, bool paths_known);

// The poll owner of `repository` (a normalized URL) among `members` (live replica ids):
// rendezvous hashing, so a replica joining or leaving moves only its share of repositories.
// "" when there are no members.
std::string OwnerOf(std::string_view repository, const std::vector<std::string>& members);

}  // namespace driftless::repo_poller
