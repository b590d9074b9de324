#include "common/match/glob.h"

#include <string>
#include <vector>

namespace driftless::match {
namespace {

// Expands the first top-level {a,b} group; returns false when there is none.
bool ExpandBraces(std::string_view p, std::vector<std::string>& out) {
  size_t open = std::string_view::npos;
  for (size_t i = 0; i < p.size(); ++i) {
    if (p[i] == '\\') {
      ++i;
      continue;
    }
    if (p[i] == '{') {
      open = i;
      break;
    }
  }
  if (open == std::string_view::npos) return false;
  int depth = 0;
  std::vector<size_t> commas;
  size_t close = std::string_view::npos;
  for (size_t i = open; i < p.size(); ++i) {
    if (p[i] == '\\') {
      ++i;
      continue;
    }
    if (p[i] == '{') ++depth;
    if (p[i] == '}' && --depth == 0) {
      close = i;
      break;
    }
    if (p[i] == ',' && depth == 1) commas.push_back(i);
  }
  if (close == std::string_view::npos) return false;
  std::string_view prefix = p.substr(0, open);
  std::string_view suffix = p.substr(close + 1);
  size_t start = open + 1;
  commas.push_back(close);
  for (size_t c : commas) {
    std::string alt =
        std::string(prefix) + std::string(p.substr(start, c - start)) + std::string(suffix);
    std::vector<std::string> nested;
    if (ExpandBraces(alt, nested)) {
      for (auto& n : nested) out.push_back(std::move(n));
    } else {
      out.push_back(std::move(alt));
    }
    start = c + 1;
  }
  return true;
}

// Matches a class at p[pi] == '['; sets `next` to the index after ']'. Returns false with
// next == npos when the class is not closed.
bool MatchClass(std::string_view p, size_t pi, char c, size_t& next) {
  size_t i = pi + 1;
  bool negate = false;
  if (i < p.size() && (p[i] == '!' || p[i] == '^')) {
    negate = true;
    ++i;
  }
  bool matched = false;
  bool first = true;
  while (i < p.size() && (p[i] != ']' || first)) {
    first = false;
    char lo = p[i];
    if (lo == '\\' && i + 1 < p.size()) lo = p[++i];
    char hi = lo;
    if (i + 2 < p.size() && p[i + 1] == '-' && p[i + 2] != ']') {
      hi = p[i + 2];
      i += 2;
    }
    if (c >= lo && c <= hi) matched = true;
    ++i;
  }
  if (i >= p.size()) {
    next = std::string_view::npos;
    return false;
  }
  next = i + 1;
  return matched != negate;
}

bool MatchSimple(std::string_view p, std::string_view t, bool slash_special) {
  size_t pi = 0, ti = 0;
  while (pi < p.size()) {
    const char pc = p[pi];
    if (pc == '*') {
      const bool dbl = pi + 1 < p.size() && p[pi + 1] == '*';
      const bool crosses = dbl || !slash_special;
      size_t rest = pi;
      while (rest < p.size() && p[rest] == '*') ++rest;
      std::string_view rp = p.substr(rest);
      // "**/" also matches zero directories.
      if (dbl && !rp.empty() && rp[0] == '/' &&
          MatchSimple(rp.substr(1), t.substr(ti), slash_special)) {
        return true;
      }
      for (size_t i = ti; i <= t.size(); ++i) {
        if (MatchSimple(rp, t.substr(i), slash_special)) return true;
        if (i < t.size() && t[i] == '/' && !crosses) break;
      }
      return false;
    }
    if (ti >= t.size()) return false;
    const char c = t[ti];
    if (pc == '?') {
      if (c == '/' && slash_special) return false;
      ++pi;
    } else if (pc == '[') {
      size_t next;
      if (MatchClass(p, pi, c, next)) {
        if (c == '/' && slash_special) return false;
        pi = next;
      } else if (next == std::string_view::npos && c == '[') {  // unclosed: a literal '['
        ++pi;
      } else {
        return false;
      }
    } else if (pc == '\\' && pi + 1 < p.size()) {
      if (p[pi + 1] != c) return false;
      pi += 2;
    } else {
      if (pc != c) return false;
      ++pi;
    }
    ++ti;
  }
  return ti == t.size();
}

}  // namespace

bool GlobMatch(std::string_view pattern, std::string_view text, GlobOptions options) {
  std::vector<std::string> alternatives;
  if (ExpandBraces(pattern, alternatives)) {
    for (const std::string& a : alternatives) {
      if (MatchSimple(a, text, options.slash_is_special)) return true;
    }
    return false;
  }
  return MatchSimple(pattern, text, options.slash_is_special);
}

}  // namespace driftless::match
