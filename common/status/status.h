// Error values for all of driftless: absl::Status / absl::StatusOr<T> plus the two
// propagation macros that Debian's abseil (20220623) does not ship.
//
//   absl::StatusOr<Manifest> m = ParseManifest(text);
//   DL_ASSIGN_OR_RETURN(auto docs, ParseYamlDocuments(text, "app.yaml"));
//   DL_RETURN_IF_ERROR(Validate(docs));
//
// Codes are the canonical ones (they map 1:1 to gRPC codes). Pick the most specific code:
// kInvalidArgument for bad user input, kNotFound, kAlreadyExists, kFailedPrecondition for
// state that must change before a retry helps, kAborted for conflicts, kUnavailable /
// kDeadlineExceeded for transient failures that a caller may retry.
#pragma once

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace driftless {

// True for codes a caller should retry with backoff; false for ones that need the input to
// change first (see STYLE.md, "Classify at the shell").
inline bool IsTransient(const absl::Status& s) {
  switch (s.code()) {
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
    case absl::StatusCode::kAborted:
    case absl::StatusCode::kResourceExhausted:
      return true;
    default:
      return false;
  }
}

// Returns a copy of `s` whose message is prefixed with `context` ("app guestbook: ...").
inline absl::Status Annotate(const absl::Status& s, std::string_view context) {
  if (s.ok()) return s;
  return absl::Status(s.code(), std::string(context) + ": " + std::string(s.message()));
}

}  // namespace driftless

#define DL_STATUS_CONCAT_INNER_(a, b) a##b
#define DL_STATUS_CONCAT_(a, b) DL_STATUS_CONCAT_INNER_(a, b)

// Evaluates `expr` (an absl::Status); returns it from the current function if not ok.
#define DL_RETURN_IF_ERROR(expr)             \
  do {                                       \
    ::absl::Status dl_status_ = (expr);      \
    if (!dl_status_.ok()) return dl_status_; \
  } while (0)

// Evaluates `rexpr` (an absl::StatusOr<T>); returns its status if not ok, else moves the
// value into `lhs` (which may be a declaration: `DL_ASSIGN_OR_RETURN(auto x, F());`).
#define DL_ASSIGN_OR_RETURN(lhs, rexpr) \
  DL_ASSIGN_OR_RETURN_IMPL_(DL_STATUS_CONCAT_(dl_statusor_, __LINE__), lhs, rexpr)

#define DL_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, rexpr)    \
  auto statusor = (rexpr);                                 \
  if (!statusor.ok()) return std::move(statusor).status(); \
  lhs = std::move(statusor).value()
