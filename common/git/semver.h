// Semantic versions (SemVer 2.0.0) and version ranges in the dialect Flux and Helm accept
// (Masterminds/semver), used to pick the highest matching git tag (repo-poller) and Helm chart
// version (renderer). Written here because Debian ships no C++ semver library.
//
//   DL_ASSIGN_OR_RETURN(Range range, Range::Parse(">=1.0.0 <2.0.0 || ^3.1"));
//   DL_ASSIGN_OR_RETURN(Version v, ParseVersion("v1.4.2"));
//   if (range.Matches(v)) { ... }
//
// Versions: `MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD]` with an optional leading `v`/`V`; no
// leading zeros in numeric parts; build metadata is kept but ignored in comparisons.
//
// Ranges: comparator sets joined by `||`; a set is comparators separated by spaces or commas,
// all of which must hold. Comparators:
//   `1.2.3`, `=1.2.3`     exactly (with `x`/`X`/`*` or missing parts: an x-range, below)
//   `!=1.2.3`             anything else (`!=1.2.x`: outside 1.2.*)
//   `>`, `>=`, `<`, `<=`/`=<` with a full or partial version; partial parts are wildcards:
//                         `>=1.2` = `>=1.2.0`, `<=1.2` = `<1.3.0`, `>1.2` = `>=1.3.0`,
//                         `<1.2` = `<1.2.0`
//   `1.x`, `1.2.*`, `1`   x-ranges: `>=1.0.0 <2.0.0`, `>=1.2.0 <1.3.0`, `>=1.0.0 <2.0.0`
//   `*`, `x`, empty       any version
//   `~1.2.3`, `~>1.2.3`   `>=1.2.3 <1.3.0` (`~1` = `>=1.0.0 <2.0.0`)
//   `^1.2.3`              `>=1.2.3 <2.0.0`; `^0.2.3` = `>=0.2.3 <0.3.0`;
//                         `^0.0.3` = `>=0.0.3 <0.0.4`; `^0.0` = `<0.1.0`; `^0` = `<1.0.0`
//   `1.2 - 2.3.4`         hyphen range: `>=1.2.0 <=2.3.4` (partial upper: `<=` rules)
// An operator may be separated from its version by spaces (`>= 1.2`); versions in ranges may
// carry the `v` prefix.
//
// Prereleases: a version with a prerelease (1.2.0-rc.1) matches a comparator set only if some
// comparator in that set was written with a prerelease (`>=1.2.0-0 <2.0.0`); then it is compared
// by SemVer precedence, except that exclusive upper bounds, written (`<2.0.0`) or derived
// (`^1.2` → `<2.0.0`), also exclude the prereleases of the bound: 2.0.0-rc.1 is in neither
// `>=1.0.0-0 <2.0.0` nor `^1.2.0-0`, as users mean "below the 2.0.0 line".
// This is per set, slightly more permissive than Masterminds (which checks per comparator and
// so can never match a prerelease in `>=1.0.0-0 <2.0.0`).
//
// All functions are pure and thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status/status.h"

namespace driftless::git {

struct Version {
  uint64_t major = 0;
  uint64_t minor = 0;
  uint64_t patch = 0;
  std::vector<std::string> prerelease;  // dot-separated identifiers; empty for a release
  std::string build;                    // without the '+'; ignored by comparisons

  bool IsPrerelease() const { return !prerelease.empty(); }
  // Canonical form without the `v` prefix: "1.2.3-rc.1+build.5".
  std::string ToString() const;
};

// Parses a full version (three numeric parts), optional `v` prefix. kInvalidArgument naming
// the text otherwise.
absl::StatusOr<Version> ParseVersion(std::string_view text);

// SemVer 2.0.0 precedence: <0, 0, >0. Build metadata is ignored.
int CompareVersions(const Version& a, const Version& b);

inline bool operator<(const Version& a, const Version& b) { return CompareVersions(a, b) < 0; }
inline bool operator==(const Version& a, const Version& b) { return CompareVersions(a, b) == 0; }

class Range {
 public:
  // Parses a range (grammar above). kInvalidArgument naming the range and the offending part.
  static absl::StatusOr<Range> Parse(std::string_view text);

  // True if `v` satisfies at least one comparator set (prerelease rule above).
  bool Matches(const Version& v) const;

  // The text this range was parsed from.
  const std::string& text() const { return text_; }

  // Internal representation, public for the parser in semver.cc only.
  enum class Op { kEq, kNe, kGt, kGe, kLt, kLe, kOutside };
  struct Comparator {
    Op op = Op::kEq;
    Version v;
    Version upper;  // only for kOutside: matches v < this->v || v >= upper
  };
  struct Set {
    std::vector<Comparator> comparators;
    bool never = false;              // e.g. `>*`: matches nothing
    bool allows_prerelease = false;  // some comparator was written with a prerelease
  };

 private:
  std::string text_;
  std::vector<Set> sets_;
};

// Index into `versions` of the highest version matching `range` (ties: the first one), or
// nullopt when none matches.
std::optional<size_t> HighestMatching(const Range& range, const std::vector<Version>& versions);

}  // namespace driftless::git
