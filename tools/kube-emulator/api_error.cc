#include "tools/kube-emulator/api_error.h"

#include <map>

#include "absl/strings/cord.h"

namespace driftless::kube_emulator {
namespace {

absl::StatusCode CodeFor(int http) {
  switch (http) {
    case 400:
      return absl::StatusCode::kInvalidArgument;
    case 401:
      return absl::StatusCode::kUnauthenticated;
    case 403:
      return absl::StatusCode::kPermissionDenied;
    case 404:
      return absl::StatusCode::kNotFound;
    case 405:
      return absl::StatusCode::kUnimplemented;
    case 409:
      return absl::StatusCode::kAborted;
    case 410:
      return absl::StatusCode::kOutOfRange;
    case 413:
      return absl::StatusCode::kResourceExhausted;
    case 415:
      return absl::StatusCode::kInvalidArgument;
    case 422:
      return absl::StatusCode::kInvalidArgument;
    default:
      return absl::StatusCode::kInternal;
  }
}

Json Details(const GroupResource& gr, std::string_view name) {
  Json d = Json::object();
  d["name"] = std::string(name);
  if (!gr.group.empty()) d["group"] = gr.group;
  d["kind"] = gr.resource;
  return d;
}

}  // namespace

absl::Status KubeError(int http_code, std::string_view reason, std::string_view message,
                       Json details) {
  Json s = {{"kind", "Status"},
            {"apiVersion", "v1"},
            {"metadata", Json::object()},
            {"status", "Failure"},
            {"message", std::string(message)},
            {"reason", std::string(reason)},
            {"code", http_code}};
  if (!details.is_null()) s["details"] = std::move(details);
  absl::Status st(CodeFor(http_code), std::string(message));
  st.SetPayload(std::string(kStatusPayloadUrl), absl::Cord(s.dump()));
  return st;
}

absl::Status NotFoundError(const GroupResource& gr, std::string_view name) {
  return KubeError(404, "NotFound", gr.ToString() + " \"" + std::string(name) + "\" not found",
                   Details(gr, name));
}

absl::Status AlreadyExistsError(const GroupResource& gr, std::string_view name) {
  return KubeError(409, "AlreadyExists",
                   gr.ToString() + " \"" + std::string(name) + "\" already exists",
                   Details(gr, name));
}

absl::Status ConflictError(const GroupResource& gr, std::string_view name, std::string_view why) {
  return KubeError(409, "Conflict",
                   "Operation cannot be fulfilled on " + gr.ToString() + " \"" + std::string(name) +
                       "\": " + std::string(why),
                   Details(gr, name));
}

absl::Status InvalidError(std::string_view group, std::string_view kind, std::string_view name,
                          const std::vector<StatusCause>& causes) {
  std::string qualified = std::string(kind) + (group.empty() ? "" : "." + std::string(group));
  std::string msg = qualified + " \"" + std::string(name) + "\" is invalid: ";
  Json jc = Json::array();
  for (size_t i = 0; i < causes.size(); ++i) {
    if (i > 0) msg += ", ";
    msg += causes[i].field + ": " + causes[i].message;
    jc.push_back(
        {{"reason", causes[i].type}, {"message", causes[i].message}, {"field", causes[i].field}});
  }
  if (causes.size() > 1) {
    msg = qualified + " \"" + std::string(name) + "\" is invalid: [";
    for (size_t i = 0; i < causes.size(); ++i) {
      if (i > 0) msg += ", ";
      msg += causes[i].field + ": " + causes[i].message;
    }
    msg += "]";
  }
  Json d = {{"name", std::string(name)}, {"kind", std::string(kind)}, {"causes", jc}};
  if (!group.empty()) d["group"] = std::string(group);
  return KubeError(422, "Invalid", msg, d);
}

absl::Status BadRequestError(std::string_view message) {
  return KubeError(400, "BadRequest", message);
}

absl::Status ForbiddenError(const GroupResource& gr, std::string_view name, std::string_view why) {
  return KubeError(
      403, "Forbidden",
      gr.ToString() + " \"" + std::string(name) + "\" is forbidden: " + std::string(why),
      Details(gr, name));
}

absl::Status MethodNotAllowedError() {
  return KubeError(405, "MethodNotAllowed",
                   "the server does not allow this method on the requested resource",
                   Json::object());
}

absl::Status UnsupportedMediaTypeError(std::string_view accepted) {
  return KubeError(415, "UnsupportedMediaType",
                   "the body of the request was in an unknown format - accepted media types "
                   "include: " +
                       std::string(accepted));
}

absl::Status GoneError(std::string_view message) { return KubeError(410, "Expired", message); }

absl::Status UnauthorizedError() { return KubeError(401, "Unauthorized", "Unauthorized"); }

absl::Status RequestEntityTooLargeError(size_t limit) {
  return KubeError(413, "RequestEntityTooLarge",
                   "Request entity too large: limit is " + std::to_string(limit));
}

absl::Status ResourceNotFoundError() {
  return KubeError(404, "NotFound", "the server could not find the requested resource",
                   Json::object());
}

absl::Status ApplyConflictError(const std::vector<std::string>& managers,
                                const std::vector<std::string>& fields) {
  Json causes = Json::array();
  for (size_t i = 0; i < managers.size(); ++i) {
    causes.push_back({{"reason", "FieldManagerConflict"},
                      {"message", "conflict with " + managers[i]},
                      {"field", fields[i]}});
  }
  std::string msg;
  if (managers.size() == 1) {
    msg = "Apply failed with 1 conflict: conflict with " + managers[0] + ": " + fields[0];
  } else {
    // Grouped by manager, managers sorted, as structured-merge-diff prints them.
    std::map<std::string, std::vector<std::string>> by_manager;
    for (size_t i = 0; i < managers.size(); ++i) by_manager[managers[i]].push_back(fields[i]);
    msg = "Apply failed with " + std::to_string(managers.size()) + " conflicts: ";
    bool first = true;
    for (const auto& [m, fs] : by_manager) {
      if (!first) msg += "\n";
      first = false;
      msg += "conflicts with " + m + ":";
      for (const auto& f : fs) msg += "\n- " + f;
    }
  }
  return KubeError(409, "Conflict", msg, Json{{"causes", causes}});
}

Json ToKubeStatus(const absl::Status& status) {
  auto payload = status.GetPayload(std::string(kStatusPayloadUrl));
  if (payload.has_value()) {
    Json j = Json::parse(std::string(*payload), nullptr, false);
    if (!j.is_discarded()) return j;
  }
  int code = 500;
  std::string reason = "InternalError";
  switch (status.code()) {
    case absl::StatusCode::kInvalidArgument:
      code = 400;
      reason = "BadRequest";
      break;
    case absl::StatusCode::kNotFound:
      code = 404;
      reason = "NotFound";
      break;
    case absl::StatusCode::kAlreadyExists:
      code = 409;
      reason = "AlreadyExists";
      break;
    case absl::StatusCode::kAborted:
      code = 409;
      reason = "Conflict";
      break;
    case absl::StatusCode::kUnauthenticated:
      code = 401;
      reason = "Unauthorized";
      break;
    case absl::StatusCode::kPermissionDenied:
      code = 403;
      reason = "Forbidden";
      break;
    case absl::StatusCode::kUnimplemented:
      code = 405;
      reason = "MethodNotAllowed";
      break;
    case absl::StatusCode::kOutOfRange:
      code = 410;
      reason = "Expired";
      break;
    case absl::StatusCode::kResourceExhausted:
      code = 413;
      reason = "RequestEntityTooLarge";
      break;
    case absl::StatusCode::kDeadlineExceeded:
      code = 504;
      reason = "Timeout";
      break;
    case absl::StatusCode::kUnavailable:
      code = 503;
      reason = "ServiceUnavailable";
      break;
    default:
      break;
  }
  return {{"kind", "Status"},
          {"apiVersion", "v1"},
          {"metadata", Json::object()},
          {"status", "Failure"},
          {"message", std::string(status.message())},
          {"reason", reason},
          {"code", code}};
}

int HttpCode(const absl::Status& status) {
  Json s = ToKubeStatus(status);
  return s.value("code", 500);
}

Json SuccessStatus(const Json& details) {
  Json s = {{"kind", "Status"},
            {"apiVersion", "v1"},
            {"metadata", Json::object()},
            {"status", "Success"}};
  if (!details.is_null()) s["details"] = details;
  return s;
}

}  // namespace driftless::kube_emulator
