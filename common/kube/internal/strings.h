// Bridges std::string_view and Debian abseil's own absl::string_view (built without
// ABSL_USES_STD_STRING_VIEW, so the two do not convert implicitly).
#pragma once

#include <string_view>

#include "absl/strings/string_view.h"

namespace driftless::kube::internal {

inline absl::string_view Av(std::string_view s) { return absl::string_view(s.data(), s.size()); }

inline std::string_view Trim(std::string_view s) {
  auto space = [](char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
  };
  while (!s.empty() && space(s.front())) s.remove_prefix(1);
  while (!s.empty() && space(s.back())) s.remove_suffix(1);
  return s;
}

}  // namespace driftless::kube::internal
