// Small string helpers for common/git. Debian's abseil is built with its own string_view type
// (ABSL_OPTION_USE_STD_STRING_VIEW == 0), so absl::StrCat / StrSplit do not take
// std::string_view; these do.
#pragma once

#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "absl/strings/string_view.h"

namespace driftless::git::internal {

inline std::string_view Piece(std::string_view s) { return s; }
inline std::string_view Piece(const std::string& s) { return s; }
inline std::string_view Piece(const char* s) { return s; }
inline std::string_view Piece(absl::string_view s) { return {s.data(), s.size()}; }
template <typename T>
requires std::is_integral_v<T> std::string Piece(T n) { return std::to_string(n); }

template <typename... A>
std::string Cat(const A&... args) {
  std::string out;
  ((out += Piece(args)), ...);
  return out;
}

// Splits on every occurrence of `sep` (non-empty); keeps empty pieces unless `skip_empty`.
inline std::vector<std::string_view> Split(std::string_view s, std::string_view sep,
                                           bool skip_empty = false) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (true) {
    size_t pos = s.find(sep, start);
    std::string_view piece = s.substr(start, pos == std::string_view::npos ? pos : pos - start);
    if (!skip_empty || !piece.empty()) out.push_back(piece);
    if (pos == std::string_view::npos) break;
    start = pos + sep.size();
  }
  return out;
}

inline std::string Join(const std::vector<std::string>& parts, std::string_view sep) {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i > 0) out += sep;
    out += parts[i];
  }
  return out;
}

}  // namespace driftless::git::internal
