#include "common/git/ref_resolve.h"

#include <algorithm>
#include <cctype>
#include <optional>
#include <vector>

#include "common/git/internal/str.h"
#include "common/git/semver.h"

namespace driftless::git {
namespace {

using internal::Cat;
using internal::Join;
using internal::Split;

constexpr std::string_view kHeads = "refs/heads/";
constexpr std::string_view kTags = "refs/tags/";

std::string FullName(std::string_view name, std::string_view prefix) {
  if (name.starts_with("refs/")) return std::string(name);
  return Cat(prefix, name);
}

absl::Status NotFound(const RefSpec& spec, std::string_view url, std::string_view extra = "") {
  return absl::NotFoundError(
      Cat(spec.ToString(), " not found in ", url, extra.empty() ? "" : ": ", extra));
}

std::string ToLower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

std::string RefSpec::ToString() const {
  switch (kind) {
    case Kind::kBranch:
      return Cat("branch ", value);
    case Kind::kTag:
      return Cat("tag ", value);
    case Kind::kSemver:
      return Cat("semver \"", value, "\"");
    case Kind::kCommit:
      return Cat("commit ", value);
  }
  return value;
}

bool LooksLikeSha(std::string_view s) {
  if (s.size() < 7 || s.size() > 40) return false;
  for (char c : s) {
    if (!std::isxdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

absl::StatusOr<Resolved> Resolve(const RefMap& refs, const RefSpec& spec, std::string_view url,
                                 const CommitExpander& expand) {
  switch (spec.kind) {
    case RefSpec::Kind::kBranch:
    case RefSpec::Kind::kTag: {
      if (spec.value.empty()) {
        return absl::InvalidArgumentError(Cat(
            "empty ", spec.kind == RefSpec::Kind::kBranch ? "branch" : "tag", " name for ", url));
      }
      // No ref in the application: the repository's default branch (HEAD), as in Argo CD.
      std::string full = spec.kind == RefSpec::Kind::kBranch && spec.value == "HEAD"
                             ? std::string("HEAD")
                             : FullName(spec.value,
                                        spec.kind == RefSpec::Kind::kBranch ? kHeads : kTags);
      auto it = refs.find(full);
      if (it == refs.end()) return NotFound(spec, url);
      return Resolved{it->second, full, ""};
    }
    case RefSpec::Kind::kSemver: {
      absl::StatusOr<Range> range = Range::Parse(spec.value);
      if (!range.ok()) {
        return absl::InvalidArgumentError(Cat(range.status().message(), " for ", url));
      }
      const std::string* best_ref = nullptr;
      std::optional<Version> best;
      for (const auto& [name, sha] : refs) {
        if (!name.starts_with(kTags)) continue;
        absl::StatusOr<Version> v = ParseVersion(std::string_view(name).substr(kTags.size()));
        if (!v.ok() || !range->Matches(*v)) continue;
        // refs is ordered by name, so on equal precedence the first (smaller) name stays.
        if (!best || CompareVersions(*best, *v) < 0) {
          best = *v;
          best_ref = &name;
        }
      }
      if (!best) return NotFound(spec, url, "no tag matches the range");
      Version canonical = *best;
      canonical.build.clear();
      return Resolved{refs.at(*best_ref), *best_ref, canonical.ToString()};
    }
    case RefSpec::Kind::kCommit: {
      if (!LooksLikeSha(spec.value)) {
        return absl::InvalidArgumentError(
            Cat(spec.ToString(), " for ", url, ": want a hex commit sha of 7 to 40 digits"));
      }
      std::string sha = ToLower(spec.value);
      if (expand) {
        absl::StatusOr<std::string> full = expand(sha);
        if (!full.ok()) return full.status();
        return Resolved{*std::move(full), "", ""};
      }
      if (sha.size() == 40) return Resolved{sha, "", ""};
      std::vector<std::string> found;
      for (const auto& [name, target] : refs) {
        if (target.starts_with(sha) &&
            std::find(found.begin(), found.end(), target) == found.end()) {
          found.push_back(target);
        }
      }
      if (found.empty()) return NotFound(spec, url, "no ref points at it and no mirror to search");
      if (found.size() > 1) {
        return absl::InvalidArgumentError(
            Cat(spec.ToString(), " is ambiguous in ", url, "; give more digits"));
      }
      return Resolved{found.front(), "", ""};
    }
  }
  return absl::InvalidArgumentError("unknown ref kind");
}

}  // namespace driftless::git
