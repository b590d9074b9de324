#include "common/kube/kube_error.h"

#include <gtest/gtest.h>

#include "common/testing/status_matchers.h"

namespace driftless::kube {
namespace {

using ::driftless::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr char kSsaConflict[] = R"({"kind":"Status","apiVersion":"v1","metadata":{},
  "status":"Failure",
  "message":"Apply failed with 2 conflicts: conflicts with \"kubectl-client-side-apply\" using apps/v1:\n- .spec.replicas\nconflicts with \"helm\" using apps/v1:\n- .spec.template.spec.containers[name=\"web\"].image",
  "reason":"Conflict",
  "details":{"causes":[
    {"reason":"FieldManagerConflict","message":"conflict with \"kubectl-client-side-apply\" using apps/v1","field":".spec.replicas"},
    {"reason":"FieldManagerConflict","message":"conflict with \"helm\" using apps/v1","field":".spec.template.spec.containers[name=\"web\"].image"}]},
  "code":409})";

constexpr char kInvalid[] = R"({"kind":"Status","apiVersion":"v1","status":"Failure",
  "message":"Deployment.apps \"web\" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0",
  "reason":"Invalid",
  "details":{"name":"web","group":"apps","kind":"Deployment","causes":[
    {"reason":"FieldValueInvalid","message":"Invalid value: -1: must be greater than or equal to 0","field":"spec.replicas"}]},
  "code":422})";

TEST(StatusFromResponseTest, MapsReasonsAndCodes) {
  struct Case {
    int code;
    std::string body;
    absl::StatusCode want;
  };
  auto status = [](int code, const char* reason) {
    return std::string(R"({"kind":"Status","status":"Failure","message":"m","reason":")") + reason +
           R"(","code":)" + std::to_string(code) + "}";
  };
  const Case cases[] = {
      {404, status(404, "NotFound"), absl::StatusCode::kNotFound},
      {409, status(409, "AlreadyExists"), absl::StatusCode::kAlreadyExists},
      {409, status(409, "Conflict"), absl::StatusCode::kAborted},
      {422, status(422, "Invalid"), absl::StatusCode::kInvalidArgument},
      {400, status(400, "BadRequest"), absl::StatusCode::kInvalidArgument},
      {410, status(410, "Expired"), absl::StatusCode::kOutOfRange},
      {410, status(410, "Gone"), absl::StatusCode::kOutOfRange},
      {401, status(401, "Unauthorized"), absl::StatusCode::kUnauthenticated},
      {403, status(403, "Forbidden"), absl::StatusCode::kPermissionDenied},
      {405, status(405, "MethodNotAllowed"), absl::StatusCode::kUnimplemented},
      {429, status(429, "TooManyRequests"), absl::StatusCode::kUnavailable},
      {503, status(503, "ServiceUnavailable"), absl::StatusCode::kUnavailable},
      {504, status(504, "Timeout"), absl::StatusCode::kDeadlineExceeded},
      {500, status(500, "InternalError"), absl::StatusCode::kInternal},
      {500, status(500, "ServerTimeout"), absl::StatusCode::kUnavailable},
      // Bodies that are not Status objects fall back to the HTTP code.
      {404, "404 page not found", absl::StatusCode::kNotFound},
      {502, "<html>bad gateway</html>", absl::StatusCode::kUnavailable},
      {403, "", absl::StatusCode::kPermissionDenied},
      {410, "", absl::StatusCode::kOutOfRange},
      {418, "teapot", absl::StatusCode::kInternal},
  };
  for (const Case& c : cases) {
    EXPECT_THAT(StatusFromResponse(c.code, c.body, "get v1 Pod a/b"), StatusIs(c.want))
        << c.code << " " << c.body;
  }
}

TEST(StatusFromResponseTest, MessageNamesVerbObjectReasonAndCode) {
  absl::Status s = StatusFromResponse(422, kInvalid, "apply apps/v1 Deployment guestbook/web");
  EXPECT_THAT(s, StatusIs(absl::StatusCode::kInvalidArgument,
                          HasSubstr("apply apps/v1 Deployment guestbook/web: Deployment.apps "
                                    "\"web\" is invalid")));
  EXPECT_THAT(std::string(s.message()), HasSubstr("(Invalid, HTTP 422)"));
  absl::Status foreign = StatusFromResponse(502, "bad gateway", "get v1 Pod a/b");
  EXPECT_EQ(foreign.message(), "get v1 Pod a/b: bad gateway (HTTP 502)");
}

TEST(KubeErrorTest, PayloadRoundTripsWithCauses) {
  absl::Status s = StatusFromResponse(422, kInvalid, "apply apps/v1 Deployment guestbook/web");
  std::optional<KubeError> e = GetKubeError(s);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->http_code, 422);
  EXPECT_EQ(e->reason, "Invalid");
  EXPECT_EQ(e->kind, "Deployment");
  EXPECT_EQ(e->group, "apps");
  EXPECT_EQ(e->name, "web");
  ASSERT_EQ(e->causes.size(), 1u);
  EXPECT_EQ(e->causes[0].field, "spec.replicas");
  EXPECT_EQ(e->causes[0].type, "FieldValueInvalid");
  EXPECT_FALSE(GetKubeError(absl::NotFoundError("x")).has_value());
  EXPECT_FALSE(GetKubeError(absl::OkStatus()).has_value());
}

TEST(KubeErrorTest, RetryAfterFromHeaderOrDetails) {
  absl::Status header = StatusFromResponse(429, "", "list v1 Pod", /*retry_after_seconds=*/7);
  EXPECT_EQ(GetKubeError(header)->retry_after_seconds, 7);
  absl::Status details = StatusFromResponse(
      429,
      R"({"kind":"Status","reason":"TooManyRequests","details":{"retryAfterSeconds":3},"code":429})",
      "list v1 Pod");
  EXPECT_EQ(GetKubeError(details)->retry_after_seconds, 3);
}

TEST(ApplyConflictsTest, ExtractsManagersAndFields) {
  absl::Status s = StatusFromResponse(409, kSsaConflict, "apply apps/v1 Deployment gb/web");
  EXPECT_THAT(s, StatusIs(absl::StatusCode::kAborted));
  EXPECT_THAT(
      ApplyConflicts(s),
      ElementsAre(FieldConflict{"kubectl-client-side-apply", ".spec.replicas"},
                  FieldConflict{"helm", ".spec.template.spec.containers[name=\"web\"].image"}));
}

TEST(ApplyConflictsTest, AcceptsCauseTypeKey) {
  absl::Status s =
      StatusFromResponse(409,
                         R"({"kind":"Status","reason":"Conflict","code":409,"details":{"causes":[
        {"type":"FieldManagerConflict","message":"conflict with \"alice\"","field":".data.key"}]}})",
                         "apply v1 ConfigMap kt/web");
  EXPECT_THAT(ApplyConflicts(s), ElementsAre(FieldConflict{"alice", ".data.key"}));
}

TEST(ApplyConflictsTest, EmptyForOtherErrors) {
  EXPECT_TRUE(ApplyConflicts(StatusFromResponse(422, kInvalid, "apply")).empty());
  EXPECT_TRUE(ApplyConflicts(absl::AbortedError("x")).empty());
  // A 409 resourceVersion conflict has no FieldManagerConflict causes.
  EXPECT_TRUE(
      ApplyConflicts(
          StatusFromResponse(
              409,
              R"({"kind":"Status","reason":"Conflict","message":"the object has been modified","code":409})",
              "update"))
          .empty());
}

}  // namespace
}  // namespace driftless::kube
