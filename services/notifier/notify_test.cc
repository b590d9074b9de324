#include "services/notifier/notify.h"

#include <google/protobuf/util/time_util.h>

#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace driftless::notifier {
namespace {

using ::testing::ElementsAre;
using ::testing::MatchesRegex;

TEST(EventFilter, ExactPrefixAndStar) {
  EventFilter f = EventFilter::Parse(" sync.succeeded, ,sync.failed ,app.*");
  EXPECT_THAT(f.patterns(), ElementsAre("sync.succeeded", "sync.failed", "app.*"));
  EXPECT_TRUE(f.Matches("sync.succeeded"));
  EXPECT_TRUE(f.Matches("sync.failed"));
  EXPECT_TRUE(f.Matches("app.rendered"));
  EXPECT_FALSE(f.Matches("sync.started"));
  EXPECT_FALSE(f.Matches("app"));
  EXPECT_FALSE(f.Matches("application.x"));
  EXPECT_TRUE(EventFilter::Parse("*").Matches("anything"));
  EXPECT_FALSE(EventFilter::Parse("").Matches("sync.failed"));
}

TEST(WebhookBody, EnvelopeFieldsAndPayloadAsJson) {
  v1::Event e;
  e.set_id("sync.failed/guestbook/abc/sha256:1/s1");
  e.set_type("sync.failed");
  *e.mutable_time() = google::protobuf::util::TimeUtil::SecondsToTimestamp(1795000000);
  e.set_application("guestbook");
  e.set_revision("abc");
  e.set_severity(v1::SEVERITY_ERROR);
  e.set_message("apply failed: apps/v1 Deployment guestbook/web");
  e.set_correlation_id("corr-1");
  e.set_emitter("applier/r1");
  v1::SyncFinished* f = e.mutable_sync_finished();
  f->set_sync_id("s1");
  f->set_succeeded(false);
  f->set_error("boom");
  ASSERT_OK_AND_ASSIGN(std::string body, WebhookBody(e));
  nlohmann::json j = nlohmann::json::parse(body);
  EXPECT_EQ(j["id"], e.id());
  EXPECT_EQ(j["type"], "sync.failed");
  EXPECT_EQ(j["time"], "2026-11-18T11:06:40Z");
  EXPECT_EQ(j["application"], "guestbook");
  EXPECT_EQ(j["revision"], "abc");
  EXPECT_EQ(j["severity"], "error");
  EXPECT_EQ(j["message"], e.message());
  EXPECT_EQ(j["correlationId"], "corr-1");
  EXPECT_EQ(j["payload"]["syncId"], "s1");
  EXPECT_EQ(j["payload"]["error"], "boom");
}

TEST(WebhookBody, NoPayloadIsNull) {
  v1::Event e;
  e.set_id("x");
  e.set_type("sync.succeeded");
  ASSERT_OK_AND_ASSIGN(std::string body, WebhookBody(e));
  nlohmann::json j = nlohmann::json::parse(body);
  EXPECT_TRUE(j["payload"].is_null());
  EXPECT_EQ(j["severity"], "");
  EXPECT_EQ(j["time"], "");
}

TEST(DeliveryKey, StableHashedAndDistinct) {
  std::string k = DeliveryKey("sync.failed/app/rev/d", "https://user:pw@hooks.example/x?token=t");
  EXPECT_THAT(k, MatchesRegex("d\\.[0-9a-f]{16}\\.[0-9a-f]{16}"));
  EXPECT_EQ(k, DeliveryKey("sync.failed/app/rev/d", "https://user:pw@hooks.example/x?token=t"));
  EXPECT_NE(k, DeliveryKey("sync.failed/app/rev/d", "https://hooks.example/y"));
  EXPECT_NE(k, DeliveryKey("sync.failed/app/rev/e", "https://user:pw@hooks.example/x?token=t"));
  EXPECT_EQ(k.find("token"), std::string::npos);
}

TEST(Classify, HttpStatusesAndTransportErrors) {
  struct Case {
    int status;
    absl::Status transport;
    Outcome want;
  };
  const Case cases[] = {
      {200, absl::OkStatus(), Outcome::kDelivered},
      {204, absl::OkStatus(), Outcome::kDelivered},
      {500, absl::OkStatus(), Outcome::kRetry},
      {503, absl::OkStatus(), Outcome::kRetry},
      {429, absl::OkStatus(), Outcome::kRetry},
      {408, absl::OkStatus(), Outcome::kRetry},
      {400, absl::OkStatus(), Outcome::kReject},
      {404, absl::OkStatus(), Outcome::kReject},
      {301, absl::OkStatus(), Outcome::kReject},
      {0, absl::UnavailableError("connection refused"), Outcome::kRetry},
      {0, absl::DeadlineExceededError("timeout"), Outcome::kRetry},
      {0, absl::InvalidArgumentError("malformed URL"), Outcome::kReject},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(Classify(c.status, c.transport), c.want) << c.status << " " << c.transport;
  }
}

TEST(UrlForLog, DropsUserinfoQueryAndFragment) {
  EXPECT_EQ(UrlForLog("https://u:p@hooks.example:8443/a/b?token=t#f"),
            "https://hooks.example:8443/a/b");
  EXPECT_EQ(UrlForLog("http://127.0.0.1:9/hook"), "http://127.0.0.1:9/hook");
  EXPECT_EQ(UrlForLog("http://h?x=1"), "http://h");
  EXPECT_EQ(UrlForLog("not a url?secret"), "not a url");
}

TEST(RetryDelay, DoublesUpToTheCap) {
  EXPECT_EQ(RetryDelay(1), absl::Seconds(1));
  EXPECT_EQ(RetryDelay(2), absl::Seconds(2));
  EXPECT_EQ(RetryDelay(4), absl::Seconds(8));
  EXPECT_EQ(RetryDelay(30), absl::Seconds(60));
  EXPECT_EQ(RetryDelay(3, absl::Milliseconds(100), absl::Milliseconds(250)),
            absl::Milliseconds(250));
}

}  // namespace
}  // namespace driftless::notifier
