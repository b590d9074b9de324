// Kubernetes API errors as absl::Status values.
//
// The API server answers failures with a `Status` object (kind: Status) carrying an HTTP
// code, a machine-readable reason and causes. StatusFromResponse turns such a response into
// an absl::Status with the most specific canonical code, and attaches the parsed KubeError
// as a payload so callers can get the details back:
//
//   absl::StatusOr<Json> r = kube->Apply(obj, {.field_manager = "driftless"});
//   if (absl::IsAborted(r.status())) {
//     for (const FieldConflict& c : ApplyConflicts(r.status())) { ... c.manager, c.field ... }
//   }
//   if (std::optional<KubeError> e = GetKubeError(r.status()); e && e->reason == "Invalid") ...
//
// Code mapping (reason first, then HTTP code):
//   NotFound 404                  -> kNotFound
//   AlreadyExists 409             -> kAlreadyExists
//   Conflict 409 (incl. SSA field conflicts, failed preconditions, stale resourceVersion)
//                                 -> kAborted
//   Invalid 422, BadRequest 400, RequestEntityTooLarge 413, UnsupportedMediaType 415,
//   NotAcceptable 406             -> kInvalidArgument
//   Gone / Expired 410            -> kOutOfRange (resourceVersion or continue token too old:
//                                    relist; chosen because it is what "Expired" means and no
//                                    other Kubernetes error maps to it)
//   Unauthorized 401              -> kUnauthenticated
//   Forbidden 403                 -> kPermissionDenied
//   MethodNotAllowed 405          -> kUnimplemented
//   TooManyRequests 429, ServiceUnavailable 503, 502 -> kUnavailable
//   Timeout 504 / reason Timeout  -> kDeadlineExceeded
//   InternalError 500 and others  -> kInternal (ServerTimeout 500 -> kUnavailable)
//
// Thread-safety: all functions are pure.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status/status.h"

namespace driftless::kube {

struct KubeStatusCause {
  std::string type;  // "FieldValueRequired", "FieldManagerConflict", ...
  std::string message;
  std::string field;  // ".spec.replicas", "spec.template.spec.containers[0].image"
  friend bool operator==(const KubeStatusCause&, const KubeStatusCause&) = default;
};

// The parsed Status body of a failed response.
struct KubeError {
  int http_code = 0;
  std::string reason;   // "NotFound", "Conflict", "Invalid", ... ("" if the body was not a Status)
  std::string message;  // the server's message (or a prefix of a non-Status body)
  std::string group;    // details.group
  std::string kind;     // details.kind
  std::string name;     // details.name
  std::vector<KubeStatusCause> causes;
  int retry_after_seconds = 0;  // details.retryAfterSeconds or the Retry-After header
};

// An SSA field conflict: `manager` owns `field`.
struct FieldConflict {
  std::string manager;  // "kubectl-client-side-apply"
  std::string field;    // ".spec.replicas"
  friend bool operator==(const FieldConflict&, const FieldConflict&) = default;
};

// Builds the error for a non-2xx response. `context` names the verb and object
// ("apply apps/v1 Deployment guestbook/web"); the message is
// "<context>: <server message> (<reason>, HTTP <code>)". The KubeError is attached as a
// payload. `retry_after_seconds` is the Retry-After header (0 if absent).
absl::Status StatusFromResponse(int http_code, std::string_view body, std::string_view context,
                                int retry_after_seconds = 0);

// Parses a Status object (JSON text). Works for non-Status bodies too: reason stays empty
// and message holds the start of the body.
KubeError ParseKubeError(int http_code, std::string_view body);

// The canonical code for a Kubernetes reason and HTTP code (table above).
absl::StatusCode CodeForKubeError(int http_code, std::string_view reason);

// The KubeError attached by StatusFromResponse (survives Annotate()-style copies only if
// the payload is copied; use WithKubeError when re-wrapping). nullopt if none.
std::optional<KubeError> GetKubeError(const absl::Status& status);

// Attaches `error` as the payload of `status` (returns the modified copy).
absl::Status WithKubeError(absl::Status status, const KubeError& error);

// The [{manager, field}] of an SSA conflict (409, causes of type FieldManagerConflict whose
// message reads `conflict with "<manager>" ...`). Empty when `status` is not one.
std::vector<FieldConflict> ApplyConflicts(const absl::Status& status);
std::vector<FieldConflict> ApplyConflicts(const KubeError& error);

}  // namespace driftless::kube
