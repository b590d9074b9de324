#include "common/config/units.h"

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>

namespace driftless::config {
namespace {

// Debian's abseil has its own string_view type, so absl::StrCat does not take
// std::string_view; this is the small part of it we need.
std::string Cat(std::initializer_list<std::string_view> parts) {
  std::string out;
  for (std::string_view p : parts) out.append(p);
  return out;
}

bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}
bool IsAlpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

std::string_view Strip(std::string_view s) {
  while (!s.empty() && IsSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsSpace(s.back())) s.remove_suffix(1);
  return s;
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// Reads "<digits>[.<digits>]" from the front of `s`. Returns false if no digit was read.
bool ConsumeNumber(std::string_view& s, double* value) {
  size_t i = 0;
  double v = 0;
  bool any = false;
  while (i < s.size() && IsDigit(s[i])) {
    v = v * 10 + (s[i] - '0');
    ++i;
    any = true;
  }
  if (i < s.size() && s[i] == '.') {
    ++i;
    double scale = 0.1;
    while (i < s.size() && IsDigit(s[i])) {
      v += (s[i] - '0') * scale;
      scale /= 10;
      ++i;
      any = true;
    }
  }
  if (!any) return false;
  s.remove_prefix(i);
  *value = v;
  return true;
}

std::string_view ConsumeUnit(std::string_view& s) {
  size_t i = 0;
  while (i < s.size() && IsAlpha(s[i])) ++i;
  std::string_view unit = s.substr(0, i);
  s.remove_prefix(i);
  return unit;
}

}  // namespace

absl::StatusOr<std::chrono::milliseconds> ParseDuration(std::string_view text) {
  std::string_view s = Strip(text);
  auto invalid = [&](std::string_view why) {
    return absl::InvalidArgumentError(
        Cat({"invalid duration \"", text, "\": ", why,
             " (want e.g. 500ms, 5s, 3m, 1h30m; units ms, s, m, h, d)"}));
  };
  if (s.empty()) return invalid("empty");
  if (s == "0") return std::chrono::milliseconds(0);
  if (s.front() == '-') return invalid("negative durations are not allowed");
  if (s.front() == '+') s.remove_prefix(1);
  double total_ms = 0;
  while (!s.empty()) {
    double value = 0;
    if (!ConsumeNumber(s, &value)) {
      return invalid(Cat({"expected a number at \"", s, "\""}));
    }
    std::string_view unit = ConsumeUnit(s);
    double scale = 0;
    if (unit == "ms") {
      scale = 1;
    } else if (unit == "s") {
      scale = 1000;
    } else if (unit == "m") {
      scale = 60.0 * 1000;
    } else if (unit == "h") {
      scale = 3600.0 * 1000;
    } else if (unit == "d") {
      scale = 86400.0 * 1000;
    } else if (unit.empty()) {
      return invalid("missing unit (ms, s, m, h, d)");
    } else {
      return invalid(Cat({"unknown unit \"", unit, "\""}));
    }
    total_ms += value * scale;
  }
  // Stay well inside int64 so the cast below is defined.
  if (!(total_ms < 9.2e18)) {
    return absl::OutOfRangeError(Cat({"duration \"", text, "\" is too large"}));
  }
  return std::chrono::milliseconds(static_cast<int64_t>(std::floor(total_ms + 1e-6)));
}

std::string FormatDuration(std::chrono::milliseconds d) {
  int64_t ms = d.count();
  if (ms == 0) return "0s";
  std::string out;
  if (ms < 0) {
    out = "-";
    ms = -ms;
  }
  const int64_t h = ms / 3600000;
  ms %= 3600000;
  const int64_t m = ms / 60000;
  ms %= 60000;
  const int64_t s = ms / 1000;
  ms %= 1000;
  if (h > 0) out += std::to_string(h) + "h";
  if (m > 0) out += std::to_string(m) + "m";
  if (s > 0) out += std::to_string(s) + "s";
  if (ms > 0) out += std::to_string(ms) + "ms";
  return out;
}

absl::StatusOr<uint64_t> ParseByteSize(std::string_view text) {
  std::string_view s = Strip(text);
  auto invalid = [&](std::string_view why) {
    return absl::InvalidArgumentError(
        Cat({"invalid byte size \"", text, "\": ", why,
             " (want e.g. 1048576, 512Ki, 3Mi, 10MB; units B, Ki, Mi, Gi, Ti, K, M, G, T)"}));
  };
  if (s.empty()) return invalid("empty");
  if (s.front() == '-') return invalid("negative sizes are not allowed");
  // Integers are parsed exactly; only a fractional part goes through double.
  uint64_t whole = 0;
  size_t i = 0;
  for (; i < s.size() && IsDigit(s[i]); ++i) {
    if (whole > (std::numeric_limits<uint64_t>::max() - 9) / 10) {
      return absl::OutOfRangeError(Cat({"byte size \"", text, "\" is too large"}));
    }
    whole = whole * 10 + static_cast<uint64_t>(s[i] - '0');
  }
  double fraction = 0;
  bool has_fraction = false;
  if (i < s.size() && s[i] == '.') {
    ++i;
    double scale = 0.1;
    for (; i < s.size() && IsDigit(s[i]); ++i) {
      fraction += (s[i] - '0') * scale;
      scale /= 10;
      has_fraction = true;
    }
  }
  if (i == 0 || (i == 1 && s[0] == '.' && !has_fraction)) return invalid("expected a number");
  std::string_view unit = Strip(s.substr(i));
  uint64_t mult = 0;
  if (unit.empty() || unit == "B") {
    mult = 1;
  } else if (unit == "Ki" || unit == "KiB") {
    mult = uint64_t{1} << 10;
  } else if (unit == "Mi" || unit == "MiB") {
    mult = uint64_t{1} << 20;
  } else if (unit == "Gi" || unit == "GiB") {
    mult = uint64_t{1} << 30;
  } else if (unit == "Ti" || unit == "TiB") {
    mult = uint64_t{1} << 40;
  } else if (unit == "k" || unit == "K" || unit == "kB" || unit == "KB") {
    mult = 1000;
  } else if (unit == "M" || unit == "MB") {
    mult = 1000 * 1000;
  } else if (unit == "G" || unit == "GB") {
    mult = 1000ull * 1000 * 1000;
  } else if (unit == "T" || unit == "TB") {
    mult = 1000ull * 1000 * 1000 * 1000;
  } else {
    return invalid(Cat({"unknown unit \"", unit, "\""}));
  }
  if (whole > std::numeric_limits<uint64_t>::max() / mult) {
    return absl::OutOfRangeError(Cat({"byte size \"", text, "\" is too large"}));
  }
  uint64_t result = whole * mult;
  if (has_fraction) {
    const uint64_t extra = static_cast<uint64_t>(std::floor(fraction * static_cast<double>(mult)));
    if (result > std::numeric_limits<uint64_t>::max() - extra) {
      return absl::OutOfRangeError(Cat({"byte size \"", text, "\" is too large"}));
    }
    result += extra;
  }
  return result;
}

std::string FormatByteSize(uint64_t bytes) {
  if (bytes == 0) return "0";
  static constexpr struct {
    int shift;
    const char* unit;
  } kUnits[] = {{40, "Ti"}, {30, "Gi"}, {20, "Mi"}, {10, "Ki"}};
  for (const auto& u : kUnits) {
    const uint64_t m = uint64_t{1} << u.shift;
    if (bytes % m == 0) return std::to_string(bytes / m) + u.unit;
  }
  return std::to_string(bytes);
}

}  // namespace driftless::config
