#include "services/repo-poller/poll.h"

#include "common/git/url.h"

namespace driftless::repo_poller {
namespace {

std::string Normalize(std::string_view path) {
  std::string p(path);
  while (p.starts_with("./")) p.erase(0, 2);
  while (p.starts_with("/")) p.erase(0, 1);
  while (!p.empty() && p.back() == '/') p.pop_back();
  if (p == ".") p.clear();
  return p;
}

// True if `file` is `dir` itself or below it.
bool Contains(const std::string& dir, const std::string& file) {
  if (dir.empty() || file == dir) return true;
  return file.size() > dir.size() && file.compare(0, dir.size(), dir) == 0 &&
         file[dir.size()] == '/';
}

}  // namespace

std::map<std::string, std::vector<AppSource>> GroupByRepository(
    const std::vector<AppSource>& sources) {
  std::map<std::string, std::vector<AppSource>> out;
  for (const AppSource& s : sources) out[git::NormalizeUrl(s.repo_url)].push_back(s);
  return out;
}

PollResult DecidePoll(const std::vector<AppSource>& sources, const git::RefMap& refs,
                      const std::map<std::string, std::string>& last_seen) {
  PollResult result;
  for (const AppSource& s : sources) {
    auto resolved = git::Resolve(refs, s.ref, git::RedactUrl(s.repo_url));
    if (!resolved.ok()) {
      result.errors.push_back({s.application, resolved.status()});
      continue;
    }
    auto it = last_seen.find(s.application);
    const std::string previous = it == last_seen.end() ? "" : it->second;
    if (previous == resolved->commit) continue;
    result.moved.push_back({s.application, previous, resolved->commit, resolved->ref});
  }
  return result;
}

std::vector<Moved> AffectedByPaths(const std::vector<Moved>& moved,
                                   const std::vector<AppSource>& sources,
                                   const std::vector<std::string>& changed_paths,
                                   bool paths_known) {
  std::map<std::string, std::vector<std::string>> paths_of;
  for (const AppSource& s : sources) {
    std::vector<std::string>& paths = paths_of[s.application];
    paths.push_back(Normalize(s.path));
    for (const std::string& r : s.reads) paths.push_back(Normalize(r));
  }
  std::vector<Moved> out;
  for (const Moved& m : moved) {
    if (!paths_known || m.previous.empty()) {
      out.push_back(m);
      continue;
    }
    bool touched = false;
    for (const std::string& dir : paths_of[m.application]) {
      for (const std::string& changed : changed_paths) {
        touched = touched || Contains(dir, Normalize(changed));
      }
    }
    if (touched) out.push_back(m);
  }
  return out;
}

namespace {

// FNV-1a, 64 bits: stable across processes and builds (std::hash is not promised to be).
uint64_t Fnv1a(std::string_view a, std::string_view b) {
  uint64_t h = 1469598103934665603ULL;
  auto mix = [&h](std::string_view s) {
    for (unsigned char c : s) {
      h ^= c;
      h *= 1099511628211ULL;
    }
  };
  mix(a);
  mix("\n");
  mix(b);
  // A final avalanche: FNV's low bits vary little for inputs differing only at the end.
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  return h;
}

}  // namespace

std::string OwnerOf(std::string_view repository, const std::vector<std::string>& members) {
  std::string owner;
  uint64_t best = 0;
  for (const std::string& m : members) {
    const uint64_t score = Fnv1a(repository, m);
    if (owner.empty() || score > best || (score == best && m < owner)) {
      owner = m;
      best = score;
    }
  }
  return owner;
}

}  // namespace driftless::repo_poller
