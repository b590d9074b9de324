// Parsing and printing of human-written durations and byte sizes, as used by flags
// (`--interval 3m`), Application specs (`interval: 1h30m`) and retry backoff settings.
//
//   ASSIGN_OR_RETURN(std::chrono::milliseconds d, ParseDuration("1h30m"));   // 5400000ms
//   ASSIGN_OR_RETURN(uint64_t n, ParseByteSize("512Ki"));                    // 524288
//
// Pure functions: no I/O, no global state, thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace driftless::config {

// Parses a Go-style duration: a sequence of <number><unit> terms with units ms, s, m, h
// (and d for days), e.g. "500ms", "5s", "3m", "1h30m", "1.5h", "0". Fractions are allowed
// per term ("1.5s"); the result is rounded down to whole milliseconds. Surrounding
// whitespace is ignored. Negative durations are not accepted.
// Errors: kInvalidArgument naming the offending text (empty input, missing or unknown unit,
// bad number, a bare number other than 0); kOutOfRange when the total overflows.
absl::StatusOr<std::chrono::milliseconds> ParseDuration(std::string_view text);

// Prints a duration in the form ParseDuration reads back: "0s", "500ms", "5s", "1h30m",
// sub-second remainders are printed as a ms term ("2m500ms"); days are printed as hours.
std::string FormatDuration(std::chrono::milliseconds d);

// Parses a byte size: a non-negative integer or decimal number with an optional unit.
// Binary units Ki, Mi, Gi, Ti (also KiB, MiB, ...) are powers of 1024; decimal units
// k/K, M, G, T (also kB, KB, MB, GB, TB) are powers of 1000; "B" or no unit means bytes.
// "1.5Mi" is allowed when the result is a whole number of bytes after rounding down.
// Errors: kInvalidArgument naming the offending text; kOutOfRange on uint64 overflow.
absl::StatusOr<uint64_t> ParseByteSize(std::string_view text);

// Prints a byte size exactly, using the largest binary unit that divides it ("3Mi",
// "512Ki", "1000"); ParseByteSize reads it back to the same value.
std::string FormatByteSize(uint64_t bytes);

}  // namespace driftless::config
