// Small string helpers shared by common/ libraries. Debian's abseil is built with its own
// string_view type (ABSL_OPTION_USE_STD_STRING_VIEW 0), so absl::StrCat / StrSplit do not take
// std::string_view; these take std::string_view, strings, C strings, chars and integers.
//
//   std::string path = Cat(dir, "/", name, ".git");   Split("a/b", '/') == {"a", "b"}
#pragma once

#include <charconv>
#include <concepts>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/string_view.h"

namespace driftless::strings {

inline void AppendOne(std::string& out, std::string_view s) { out.append(s); }
inline void AppendOne(std::string& out, const char* s) { out.append(s == nullptr ? "" : s); }
inline void AppendOne(std::string& out, const std::string& s) { out.append(s); }
inline void AppendOne(std::string& out, absl::string_view s) { out.append(s.data(), s.size()); }
inline void AppendOne(std::string& out, char c) { out.push_back(c); }
template <std::integral T>
requires(!std::same_as<T, char> && !std::same_as<T, bool>) void AppendOne(std::string& out, T v) {
  out.append(std::to_string(v));
}

template <typename... Args>
void Append(std::string& out, const Args&... args) {
  (AppendOne(out, args), ...);
}

template <typename... Args>
std::string Cat(const Args&... args) {
  std::string out;
  (AppendOne(out, args), ...);
  return out;
}

inline bool Contains(std::string_view haystack, std::string_view needle) {
  return haystack.find(needle) != std::string_view::npos;
}

// Splits on every occurrence of `sep` (non-empty); keeps empty pieces unless `skip_empty`.
inline std::vector<std::string_view> Split(std::string_view s, std::string_view sep,
                                           bool skip_empty = false) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (true) {
    const size_t pos = s.find(sep, start);
    std::string_view piece = s.substr(start, pos == std::string_view::npos ? pos : pos - start);
    if (!skip_empty || !piece.empty()) out.push_back(piece);
    if (pos == std::string_view::npos) return out;
    start = pos + sep.size();
  }
}
inline std::vector<std::string_view> Split(std::string_view s, char sep,
                                           bool skip_empty = false) {
  return Split(s, std::string_view(&sep, 1), skip_empty);
}

inline std::string Join(const std::vector<std::string>& parts, std::string_view sep) {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i > 0) out += sep;
    out += parts[i];
  }
  return out;
}

template <std::integral T>
bool ParseInt(std::string_view s, T* out) {
  if (s.empty()) return false;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && ptr == s.data() + s.size();
}

}  // namespace driftless::strings
