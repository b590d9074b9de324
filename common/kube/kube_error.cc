#include "common/kube/kube_error.h"

#include <nlohmann/json.hpp>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "common/kube/internal/strings.h"

namespace driftless::kube {
namespace {

constexpr char kPayloadUrl[] = "type.driftless.dev/kube.KubeError";
constexpr size_t kMaxForeignBody = 256;

std::string Str(const nlohmann::json& j, const char* key) {
  if (!j.is_object()) return "";
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

nlohmann::json ToJson(const KubeError& e) {
  nlohmann::json causes = nlohmann::json::array();
  for (const KubeStatusCause& c : e.causes) {
    causes.push_back({{"reason", c.type}, {"message", c.message}, {"field", c.field}});
  }
  return {{"code", e.http_code},
          {"reason", e.reason},
          {"message", e.message},
          {"details",
           {{"group", e.group},
            {"kind", e.kind},
            {"name", e.name},
            {"causes", causes},
            {"retryAfterSeconds", e.retry_after_seconds}}}};
}

}  // namespace

KubeError ParseKubeError(int http_code, std::string_view body) {
  KubeError e;
  e.http_code = http_code;
  nlohmann::json j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || (Str(j, "kind") != "Status" && !j.contains("reason"))) {
    std::string_view text = body.substr(0, std::min(body.size(), kMaxForeignBody));
    e.message = std::string(text);
    if (e.message.empty()) e.message = absl::StrCat("HTTP ", http_code, " with an empty body");
    return e;
  }
  e.reason = Str(j, "reason");
  e.message = Str(j, "message");
  if (auto it = j.find("code"); it != j.end() && it->is_number_integer() && http_code == 0) {
    e.http_code = it->get<int>();
  }
  if (auto d = j.find("details"); d != j.end() && d->is_object()) {
    e.group = Str(*d, "group");
    e.kind = Str(*d, "kind");
    e.name = Str(*d, "name");
    if (auto r = d->find("retryAfterSeconds"); r != d->end() && r->is_number_integer()) {
      e.retry_after_seconds = r->get<int>();
    }
    if (auto c = d->find("causes"); c != d->end() && c->is_array()) {
      for (const nlohmann::json& cause : *c) {
        // StatusCause.Type is serialized as "reason"; accept "type" from lenient servers.
        std::string type = Str(cause, "reason");
        if (type.empty()) type = Str(cause, "type");
        e.causes.push_back(KubeStatusCause{
            .type = type, .message = Str(cause, "message"), .field = Str(cause, "field")});
      }
    }
  }
  return e;
}

absl::StatusCode CodeForKubeError(int http_code, std::string_view reason) {
  using C = absl::StatusCode;
  if (reason == "NotFound") return C::kNotFound;
  if (reason == "AlreadyExists") return C::kAlreadyExists;
  if (reason == "Conflict") return C::kAborted;
  if (reason == "Invalid" || reason == "BadRequest" || reason == "RequestEntityTooLarge" ||
      reason == "UnsupportedMediaType" || reason == "NotAcceptable") {
    return C::kInvalidArgument;
  }
  if (reason == "Gone" || reason == "Expired") return C::kOutOfRange;
  if (reason == "Unauthorized") return C::kUnauthenticated;
  if (reason == "Forbidden") return C::kPermissionDenied;
  if (reason == "MethodNotAllowed") return C::kUnimplemented;
  if (reason == "TooManyRequests" || reason == "ServiceUnavailable") return C::kUnavailable;
  if (reason == "Timeout") return C::kDeadlineExceeded;
  if (reason == "ServerTimeout") return C::kUnavailable;
  switch (http_code) {
    case 400:
    case 406:
    case 413:
    case 415:
    case 422:
      return C::kInvalidArgument;
    case 401:
      return C::kUnauthenticated;
    case 403:
      return C::kPermissionDenied;
    case 404:
      return C::kNotFound;
    case 405:
      return C::kUnimplemented;
    case 409:
      return C::kAborted;
    case 410:
      return C::kOutOfRange;
    case 429:
    case 502:
    case 503:
      return C::kUnavailable;
    case 504:
      return C::kDeadlineExceeded;
    default:
      return C::kInternal;
  }
}

absl::Status WithKubeError(absl::Status status, const KubeError& error) {
  if (status.ok()) return status;
  status.SetPayload(kPayloadUrl, absl::Cord(ToJson(error).dump()));
  return status;
}

absl::Status StatusFromResponse(int http_code, std::string_view body, std::string_view context,
                                int retry_after_seconds) {
  KubeError e = ParseKubeError(http_code, body);
  if (retry_after_seconds > 0 && e.retry_after_seconds == 0)
    e.retry_after_seconds = retry_after_seconds;
  std::string msg = absl::StrCat(internal::Av(context), ": ", e.message, " (",
                                 e.reason.empty() ? "HTTP" : e.reason,
                                 e.reason.empty() ? "" : ", HTTP", " ", http_code, ")");
  return WithKubeError(absl::Status(CodeForKubeError(http_code, e.reason), msg), e);
}

std::optional<KubeError> GetKubeError(const absl::Status& status) {
  auto payload = status.GetPayload(kPayloadUrl);  // absl::optional in Debian abseil
  if (!payload) return std::nullopt;
  nlohmann::json j = nlohmann::json::parse(std::string(*payload), nullptr, false);
  if (!j.is_object()) return std::nullopt;
  int code = j.value("code", 0);
  KubeError e = ParseKubeError(code, std::string(*payload));
  e.http_code = code;
  return e;
}

std::vector<FieldConflict> ApplyConflicts(const KubeError& error) {
  std::vector<FieldConflict> out;
  if (error.http_code != 409 && error.reason != "Conflict") return out;
  for (const KubeStatusCause& c : error.causes) {
    if (c.type != "FieldManagerConflict") continue;
    FieldConflict fc{.manager = "", .field = c.field};
    size_t open = c.message.find('"');
    size_t close = open == std::string::npos ? open : c.message.find('"', open + 1);
    if (close != std::string::npos) fc.manager = c.message.substr(open + 1, close - open - 1);
    out.push_back(std::move(fc));
  }
  return out;
}

std::vector<FieldConflict> ApplyConflicts(const absl::Status& status) {
  std::optional<KubeError> e = GetKubeError(status);
  if (!e) return {};
  return ApplyConflicts(*e);
}

}  // namespace driftless::kube
