// Glob patterns, as used in Application directory include/exclude, Project sourceRepos and
// destinations, Alert application filters.
//
//   GlobMatch("team-*", "team-a")                 -> true
//   GlobMatch("apps/**/*.yaml", "apps/a/b/x.yaml") -> true
//   GlobMatch("*.{yaml,yml}", "x.yml")            -> true
//
// Syntax: `*` any run of characters except '/', `**` any run including '/', `?` one character
// except '/', `[abc]` `[a-z]` `[!a]` a class, `{a,b}` alternatives (may nest), `\x` a literal x.
// With GlobOptions::slash_is_special = false, `*` and `?` also match '/' (for URLs and
// names where '/' has no meaning).
// Pure and thread-safe. A malformed pattern (unclosed '[' or '{') matches itself literally.
#pragma once

#include <string_view>

namespace driftless::match {

struct GlobOptions {
  bool slash_is_special = true;
};

bool GlobMatch(std::string_view pattern, std::string_view text, GlobOptions options = {});

}  // namespace driftless::match
