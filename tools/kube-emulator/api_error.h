// Kubernetes-shaped API errors carried inside absl::Status.
//
// The core returns absl::Status values whose payload (type URL kStatusPayloadUrl) holds the
// exact `Status` object the API server would send (kind Status, apiVersion v1, status
// Failure, message, reason, details, code). The HTTP layer sends that object verbatim with
// its `code`; code paths that produce a plain absl::Status get a generic mapping.
//
//   return NotFoundError({"apps", "deployments"}, "web");
//   // -> 404 {"reason":"NotFound","message":"deployments.apps \"web\" not found",...}
//
// Thread-safety: all functions are pure.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/status/status.h"

namespace driftless::kube_emulator {

using Json = nlohmann::json;

inline constexpr std::string_view kStatusPayloadUrl = "type.driftless.dev/k8s-status";

// A (group, resource) pair as Kubernetes names it in messages: "deployments.apps".
struct GroupResource {
  std::string group;
  std::string resource;
  std::string ToString() const { return group.empty() ? resource : resource + "." + group; }
};

struct StatusCause {
  std::string type;  // "FieldValueInvalid", "FieldValueRequired", "FieldManagerConflict", ...
  std::string message;
  std::string field;
};

// Builds an absl::Status carrying a Kubernetes Status object.
absl::Status KubeError(int http_code, std::string_view reason, std::string_view message,
                       Json details = nullptr);

absl::Status NotFoundError(const GroupResource& gr, std::string_view name);
absl::Status AlreadyExistsError(const GroupResource& gr, std::string_view name);
// Optimistic-concurrency conflict (stale resourceVersion).
absl::Status ConflictError(const GroupResource& gr, std::string_view name, std::string_view why);
// 422 Invalid: "Kind.group \"name\" is invalid: field: msg, field2: msg2".
absl::Status InvalidError(std::string_view group, std::string_view kind, std::string_view name,
                          const std::vector<StatusCause>& causes);
absl::Status BadRequestError(std::string_view message);
absl::Status ForbiddenError(const GroupResource& gr, std::string_view name, std::string_view why);
absl::Status MethodNotAllowedError();
absl::Status UnsupportedMediaTypeError(std::string_view accepted);
absl::Status GoneError(std::string_view message);  // 410, reason Expired
absl::Status UnauthorizedError();
absl::Status RequestEntityTooLargeError(size_t limit);
absl::Status ResourceNotFoundError();  // "the server could not find the requested resource"
// Server-side apply conflict: 409 with FieldManagerConflict causes. `managers[i]` is the
// already-printed manager ("\"mgr\"" or "\"mgr\" using apps/v1"), `fields[i]` its path.
absl::Status ApplyConflictError(const std::vector<std::string>& managers,
                                const std::vector<std::string>& fields);

// The Status object for `status` (its payload when present, else a mapping of the code).
Json ToKubeStatus(const absl::Status& status);
// The HTTP code of ToKubeStatus(status).
int HttpCode(const absl::Status& status);
// A {"kind":"Status","status":"Success",...} object.
Json SuccessStatus(const Json& details);

}  // namespace driftless::kube_emulator
