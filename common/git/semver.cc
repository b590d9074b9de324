#include "common/git/semver.h"

#include <algorithm>
#include <cctype>
#include <utility>

#include "common/git/internal/str.h"

namespace driftless::git {
namespace {

using internal::Cat;
using internal::Join;
using internal::Split;

bool IsDigits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

bool IsIdentChar(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '-'; }

bool IsWildcard(std::string_view s) { return s == "x" || s == "X" || s == "*"; }

// Numeric part without leading zeros, fitting in uint64.
std::optional<uint64_t> ParseNumber(std::string_view s) {
  if (!IsDigits(s) || (s.size() > 1 && s[0] == '0') || s.size() > 19) return std::nullopt;
  uint64_t n = 0;
  for (char c : s) n = n * 10 + static_cast<uint64_t>(c - '0');
  return n;
}

// Splits "core-pre+build" into its three pieces; validates pre and build identifiers.
absl::Status SplitSuffixes(std::string_view text, std::string_view& core,
                           std::vector<std::string>& pre, std::string& build) {
  size_t plus = text.find('+');
  if (plus != std::string_view::npos) {
    std::string_view b = text.substr(plus + 1);
    for (std::string_view id : Split(b, ".")) {
      if (id.empty()) return absl::InvalidArgumentError("empty build identifier");
      for (char c : id) {
        if (!IsIdentChar(c)) return absl::InvalidArgumentError("bad character in build metadata");
      }
    }
    build = std::string(b);
    text = text.substr(0, plus);
  }
  size_t dash = text.find('-');
  if (dash != std::string_view::npos) {
    for (std::string_view id : Split(text.substr(dash + 1), ".")) {
      if (id.empty()) return absl::InvalidArgumentError("empty prerelease identifier");
      for (char c : id) {
        if (!IsIdentChar(c)) return absl::InvalidArgumentError("bad character in prerelease");
      }
      if (IsDigits(id) && id.size() > 1 && id[0] == '0') {
        return absl::InvalidArgumentError("leading zero in numeric prerelease identifier");
      }
      pre.emplace_back(id);
    }
    text = text.substr(0, dash);
  }
  core = text;
  return absl::OkStatus();
}

std::string_view StripV(std::string_view s) {
  if (!s.empty() && (s[0] == 'v' || s[0] == 'V')) s.remove_prefix(1);
  return s;
}

int CompareIdentifiers(const std::string& a, const std::string& b) {
  bool an = IsDigits(a), bn = IsDigits(b);
  if (an && bn) {
    if (a.size() != b.size()) return a.size() < b.size() ? -1 : 1;
    return a.compare(b) < 0 ? -1 : (a == b ? 0 : 1);
  }
  if (an) return -1;  // numeric identifiers have lower precedence
  if (bn) return 1;
  int c = a.compare(b);
  return c < 0 ? -1 : (c > 0 ? 1 : 0);
}

// A version as written in a range: some leading numeric parts, the rest wildcards.
struct Partial {
  int known = 0;  // 0..3 numeric parts before the first wildcard/missing part
  Version v;      // unknown parts are 0
};

absl::StatusOr<Partial> ParsePartial(std::string_view text) {
  std::string_view core;
  std::vector<std::string> pre;
  std::string build;
  DL_RETURN_IF_ERROR(SplitSuffixes(StripV(text), core, pre, build));
  std::vector<std::string_view> parts = Split(core, ".");
  if (parts.empty() || parts.size() > 3) {
    return absl::InvalidArgumentError(Cat("bad version \"", text, "\""));
  }
  Partial p;
  uint64_t* fields[3] = {&p.v.major, &p.v.minor, &p.v.patch};
  bool wild = false;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (IsWildcard(parts[i])) {
      wild = true;
      continue;
    }
    if (wild) {
      return absl::InvalidArgumentError(Cat("number after a wildcard in \"", text, "\""));
    }
    std::optional<uint64_t> n = ParseNumber(parts[i]);
    if (!n) return absl::InvalidArgumentError(Cat("bad version \"", text, "\""));
    *fields[i] = *n;
    ++p.known;
  }
  if ((!pre.empty() || !build.empty()) && p.known < 3) {
    return absl::InvalidArgumentError(
        Cat("prerelease or build on a partial version \"", text, "\""));
  }
  p.v.prerelease = std::move(pre);
  p.v.build = std::move(build);
  return p;
}

Version Make(uint64_t major, uint64_t minor, uint64_t patch, bool min_prerelease) {
  Version v{major, minor, patch, {}, {}};
  // "X.Y.Z-0" is the lowest version with that core, so "< X.Y.Z-0" excludes its prereleases.
  if (min_prerelease) v.prerelease = {"0"};
  return v;
}

using Op = Range::Op;
using Comparator = Range::Comparator;

// Lower bound of an x-range / tilde / caret: the partial with zeros.
Comparator Ge(const Partial& p) { return {Op::kGe, p.v, {}}; }
Comparator LtCore(uint64_t major, uint64_t minor, uint64_t patch) {
  return {Op::kLt, Make(major, minor, patch, true), {}};
}

// Exclusive upper bound of the x-range of `p` (known must be 1 or 2).
Comparator XUpper(const Partial& p) {
  if (p.known == 1) return LtCore(p.v.major + 1, 0, 0);
  return LtCore(p.v.major, p.v.minor + 1, 0);
}

// Appends the comparators for one written comparator `op` + `p` to `set`.
absl::Status Expand(std::string_view op, const Partial& p, Range::Set& set) {
  std::vector<Comparator>& out = set.comparators;
  if (p.v.IsPrerelease()) set.allows_prerelease = true;
  if (op.empty() || op == "=" || op == "==") {
    if (p.known == 3) {
      out.push_back({Op::kEq, p.v, {}});
    } else if (p.known > 0) {
      out.push_back(Ge(p));
      out.push_back(XUpper(p));
    }
  } else if (op == "!=") {
    if (p.known == 3) {
      out.push_back({Op::kNe, p.v, {}});
    } else if (p.known == 0) {
      set.never = true;
    } else {
      out.push_back({Op::kOutside, p.v, XUpper(p).v});
    }
  } else if (op == ">") {
    if (p.known == 3) {
      out.push_back({Op::kGt, p.v, {}});
    } else if (p.known == 0) {
      set.never = true;
    } else if (p.known == 1) {
      out.push_back({Op::kGe, Make(p.v.major + 1, 0, 0, false), {}});
    } else {
      out.push_back({Op::kGe, Make(p.v.major, p.v.minor + 1, 0, false), {}});
    }
  } else if (op == ">=") {
    if (p.known > 0) out.push_back(Ge(p));
  } else if (op == "<") {
    if (p.known == 3 && p.v.IsPrerelease()) {
      out.push_back({Op::kLt, p.v, {}});
    } else if (p.known == 3) {  // "<2.0.0" also excludes 2.0.0-rc.1
      out.push_back(LtCore(p.v.major, p.v.minor, p.v.patch));
    } else if (p.known == 0) {
      set.never = true;
    } else {
      out.push_back(LtCore(p.v.major, p.v.minor, 0));
    }
  } else if (op == "<=" || op == "=<") {
    if (p.known == 3) {
      out.push_back({Op::kLe, p.v, {}});
    } else if (p.known > 0) {
      out.push_back(XUpper(p));
    }
  } else if (op == "~" || op == "~>") {
    if (p.known == 0) return absl::OkStatus();
    out.push_back(Ge(p));
    if (p.known == 1) {
      out.push_back(LtCore(p.v.major + 1, 0, 0));
    } else {
      out.push_back(LtCore(p.v.major, p.v.minor + 1, 0));
    }
  } else if (op == "^") {
    if (p.known == 0) return absl::OkStatus();
    out.push_back(Ge(p));
    if (p.v.major > 0 || p.known == 1) {
      out.push_back(LtCore(p.v.major + 1, 0, 0));
    } else if (p.v.minor > 0 || p.known == 2) {
      out.push_back(LtCore(0, p.v.minor + 1, 0));
    } else {
      out.push_back(LtCore(0, 0, p.v.patch + 1));
    }
  } else {
    return absl::InvalidArgumentError(Cat("unknown operator \"", op, "\""));
  }
  return absl::OkStatus();
}

bool IsOperatorOnly(std::string_view t) {
  return t == "=" || t == "==" || t == "!=" || t == ">" || t == ">=" || t == "<" || t == "<=" ||
         t == "=<" || t == "~" || t == "~>" || t == "^";
}

// Splits a token like ">=1.2" into (">=", "1.2").
std::pair<std::string_view, std::string_view> SplitOperator(std::string_view t) {
  size_t i = 0;
  while (i < t.size() &&
         (t[i] == '<' || t[i] == '>' || t[i] == '=' || t[i] == '!' || t[i] == '~' || t[i] == '^')) {
    ++i;
  }
  return {t.substr(0, i), t.substr(i)};
}

absl::StatusOr<Range::Set> ParseSet(std::string_view text) {
  std::string spaced(text);
  for (char& c : spaced) {
    if (c == ',' || c == '\t') c = ' ';
  }
  std::vector<std::string_view> tokens = Split(spaced, " ", true);
  // Glue a lone operator to the version that follows it (">= 1.2").
  std::vector<std::string> glued;
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (IsOperatorOnly(tokens[i])) {
      if (i + 1 >= tokens.size()) {
        return absl::InvalidArgumentError(Cat("operator \"", tokens[i], "\" without a version"));
      }
      glued.push_back(Cat(tokens[i], tokens[i + 1]));
      ++i;
    } else {
      glued.emplace_back(tokens[i]);
    }
  }
  Range::Set set;
  for (size_t i = 0; i < glued.size(); ++i) {
    if (i + 2 < glued.size() && glued[i + 1] == "-") {  // hyphen range "A - B"
      DL_ASSIGN_OR_RETURN(Partial lo, ParsePartial(glued[i]));
      DL_ASSIGN_OR_RETURN(Partial hi, ParsePartial(glued[i + 2]));
      DL_RETURN_IF_ERROR(Expand(">=", lo, set));
      DL_RETURN_IF_ERROR(Expand("<=", hi, set));
      i += 2;
      continue;
    }
    if (glued[i] == "-") return absl::InvalidArgumentError("dangling \"-\"");
    auto [op, version] = SplitOperator(glued[i]);
    if (version.empty()) {
      return absl::InvalidArgumentError(Cat("no version in \"", glued[i], "\""));
    }
    DL_ASSIGN_OR_RETURN(Partial p, ParsePartial(version));
    DL_RETURN_IF_ERROR(Expand(op, p, set));
  }
  return set;
}

bool Satisfies(const Comparator& c, const Version& v) {
  int cmp = CompareVersions(v, c.v);
  switch (c.op) {
    case Op::kEq:
      return cmp == 0;
    case Op::kNe:
      return cmp != 0;
    case Op::kGt:
      return cmp > 0;
    case Op::kGe:
      return cmp >= 0;
    case Op::kLt:
      return cmp < 0;
    case Op::kLe:
      return cmp <= 0;
    case Op::kOutside:
      return cmp < 0 || CompareVersions(v, c.upper) >= 0;
  }
  return false;
}

}  // namespace

std::string Version::ToString() const {
  std::string s = Cat(major, ".", minor, ".", patch);
  if (!prerelease.empty()) s += Cat("-", Join(prerelease, "."));
  if (!build.empty()) s += Cat("+", build);
  return s;
}

absl::StatusOr<Version> ParseVersion(std::string_view text) {
  auto fail = [&](const auto& why) {
    return absl::InvalidArgumentError(Cat("invalid version \"", text, "\": ", why));
  };
  std::string_view core;
  Version v;
  if (absl::Status s = SplitSuffixes(StripV(text), core, v.prerelease, v.build); !s.ok()) {
    return fail(s.message());
  }
  std::vector<std::string_view> parts = Split(core, ".");
  if (parts.size() != 3) return fail("want MAJOR.MINOR.PATCH");
  uint64_t* fields[3] = {&v.major, &v.minor, &v.patch};
  for (int i = 0; i < 3; ++i) {
    std::optional<uint64_t> n = ParseNumber(parts[i]);
    if (!n) return fail("numeric parts must be numbers without leading zeros");
    *fields[i] = *n;
  }
  return v;
}

int CompareVersions(const Version& a, const Version& b) {
  if (a.major != b.major) return a.major < b.major ? -1 : 1;
  if (a.minor != b.minor) return a.minor < b.minor ? -1 : 1;
  if (a.patch != b.patch) return a.patch < b.patch ? -1 : 1;
  if (a.prerelease.empty() != b.prerelease.empty()) return a.prerelease.empty() ? 1 : -1;
  size_t n = std::min(a.prerelease.size(), b.prerelease.size());
  for (size_t i = 0; i < n; ++i) {
    if (int c = CompareIdentifiers(a.prerelease[i], b.prerelease[i]); c != 0) return c;
  }
  if (a.prerelease.size() != b.prerelease.size()) {
    return a.prerelease.size() < b.prerelease.size() ? -1 : 1;
  }
  return 0;
}

absl::StatusOr<Range> Range::Parse(std::string_view text) {
  Range r;
  r.text_ = std::string(text);
  for (std::string_view part : Split(text, "||")) {
    absl::StatusOr<Set> set = ParseSet(part);
    if (!set.ok()) {
      return absl::InvalidArgumentError(
          Cat("invalid version range \"", text, "\": ", set.status().message()));
    }
    r.sets_.push_back(*std::move(set));
  }
  return r;
}

bool Range::Matches(const Version& v) const {
  for (const Set& set : sets_) {
    if (set.never) continue;
    if (v.IsPrerelease() && !set.allows_prerelease) continue;
    bool all = true;
    for (const Comparator& c : set.comparators) {
      if (!Satisfies(c, v)) {
        all = false;
        break;
      }
    }
    if (all) return true;
  }
  return false;
}

std::optional<size_t> HighestMatching(const Range& range, const std::vector<Version>& versions) {
  std::optional<size_t> best;
  for (size_t i = 0; i < versions.size(); ++i) {
    if (!range.Matches(versions[i])) continue;
    if (!best || CompareVersions(versions[*best], versions[i]) < 0) best = i;
  }
  return best;
}

}  // namespace driftless::git
