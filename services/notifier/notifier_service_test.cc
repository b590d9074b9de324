#include "services/notifier/notifier_service.h"

#include <deque>
#include <mutex>

#include "common/bus/testing/fake_kv_store.h"
#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace driftless::notifier {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using Kind = bus::Disposition::Kind;

// Answers each POST with the next scripted result (the last one repeats), recording requests.
class FakeSender : public WebhookSender {
 public:
  struct Request {
    std::string url;
    std::string body;
    std::map<std::string, std::string> headers;
  };
  void Script(const std::string& url, std::vector<absl::StatusOr<int>> results) {
    scripts_[url] = std::deque<absl::StatusOr<int>>(results.begin(), results.end());
  }
  absl::StatusOr<int> Post(const std::string& url, std::string_view body,
                           const std::map<std::string, std::string>& headers,
                           absl::Duration) override {
    std::lock_guard<std::mutex> lock(mu_);
    requests_.push_back({url, std::string(body), headers});
    auto& script = scripts_[url];
    if (script.empty()) return 200;
    // (Copied as status + value: gcc -O2 warns about StatusOr<int>'s copy constructor.)
    const absl::StatusOr<int>& front = script.front();
    const absl::Status status = front.status();
    const int code = front.ok() ? *front : 0;
    if (script.size() > 1) script.pop_front();
    if (!status.ok()) return status;
    return code;
  }
  std::vector<Request> requests() {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_;
  }
  int CountFor(const std::string& url) {
    int n = 0;
    for (const Request& r : requests()) n += r.url == url;
    return n;
  }

 private:
  std::mutex mu_;
  std::map<std::string, std::deque<absl::StatusOr<int>>> scripts_;
  std::vector<Request> requests_;
};

v1::Event SyncFailed(const std::string& id) {
  v1::Event e;
  e.set_id(id);
  e.set_type("sync.failed");
  e.set_application("guestbook");
  return e;
}

bus::Message Delivery(uint64_t n) {
  bus::Message m;
  m.delivery_count = n;
  return m;
}

class NotifierServiceTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_OK(kv_.EnsureBucket("deliveries", 1, absl::ZeroDuration())); }
  NotifierService Make(std::vector<std::string> urls) {
    return NotifierService(&kv_, &sender_, {.urls = std::move(urls), .bucket = "deliveries"});
  }
  bus::testing::FakeKvStore kv_;
  FakeSender sender_;
};

TEST_F(NotifierServiceTest, DeliversToEveryUrlOnceWithHeadersAndRecordsIt) {
  NotifierService n = Make({"http://a/1", "http://b/2"});
  EXPECT_EQ(n.Handle(SyncFailed("e1"), Delivery(1)).kind(), Kind::kAck);
  auto reqs = sender_.requests();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(reqs[0].headers["Content-Type"], "application/json");
  EXPECT_EQ(reqs[0].headers["X-Driftless-Event-Id"], "e1");
  EXPECT_EQ(nlohmann::json::parse(reqs[0].body)["application"], "guestbook");
  ASSERT_OK_AND_ASSIGN(bus::KvEntry logged, kv_.Get("deliveries", DeliveryKey("e1", "http://a/1")));
  EXPECT_THAT(logged.value, Not(HasSubstr("http://a/1")));  // no URLs in the delivery log

  // A redelivery of the same event sends nothing.
  EXPECT_EQ(n.Handle(SyncFailed("e1"), Delivery(2)).kind(), Kind::kAck);
  EXPECT_EQ(sender_.requests().size(), 2u);
}

TEST_F(NotifierServiceTest, IgnoresOtherTypes) {
  NotifierService n = Make({"http://a/1"});
  v1::Event e = SyncFailed("e2");
  e.set_type("app.rendered");
  EXPECT_EQ(n.Handle(e, Delivery(1)).kind(), Kind::kAck);
  EXPECT_TRUE(sender_.requests().empty());
}

TEST_F(NotifierServiceTest, TransientFailureNaksWithBackoffAndRetriesOnlyUndelivered) {
  sender_.Script("http://b/2", {500, 200});
  NotifierService n = Make({"http://a/1", "http://b/2"});
  bus::Disposition d = n.Handle(SyncFailed("e3"), Delivery(3));
  EXPECT_EQ(d.kind(), Kind::kNak);
  EXPECT_EQ(d.delay(), absl::Seconds(4));
  EXPECT_THAT(d.error(), HasSubstr("HTTP 500"));
  EXPECT_EQ(n.Handle(SyncFailed("e3"), Delivery(4)).kind(), Kind::kAck);
  EXPECT_EQ(sender_.CountFor("http://a/1"), 1);
  EXPECT_EQ(sender_.CountFor("http://b/2"), 2);
}

TEST_F(NotifierServiceTest, TransportErrorsAnd429Retry) {
  sender_.Script("http://a/1", {absl::UnavailableError("POST http://a/1: connection refused")});
  sender_.Script("http://b/2", {429});
  NotifierService n = Make({"http://a/1", "http://b/2"});
  EXPECT_EQ(n.Handle(SyncFailed("e4"), Delivery(1)).kind(), Kind::kNak);
}

TEST_F(NotifierServiceTest, ClientErrorTermsWithoutSecrets) {
  sender_.Script("https://u:pw@a/1?token=s3cret", {400});
  NotifierService n = Make({"https://u:pw@a/1?token=s3cret"});
  bus::Disposition d = n.Handle(SyncFailed("e5"), Delivery(1));
  EXPECT_EQ(d.kind(), Kind::kTerm);
  EXPECT_THAT(d.error(), HasSubstr("HTTP 400"));
  EXPECT_THAT(d.error(), Not(HasSubstr("s3cret")));
  EXPECT_THAT(d.error(), Not(HasSubstr("pw")));
  EXPECT_THAT(kv_.Get("deliveries", DeliveryKey("e5", "https://u:pw@a/1?token=s3cret")),
              testing::StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(NotifierServiceTest, LastAttemptRecordsTheFailure) {
  sender_.Script("http://a/1", {503});
  NotifierService n = Make({"http://a/1"});
  EXPECT_EQ(n.Handle(SyncFailed("e8"), Delivery(4)).kind(), Kind::kNak);
  EXPECT_THAT(kv_.Get("deliveries", FailureKey("e8", "http://a/1")),
              testing::StatusIs(absl::StatusCode::kNotFound));
  EXPECT_EQ(n.Handle(SyncFailed("e8"), Delivery(5)).kind(), Kind::kNak);  // the bus dead-letters
  ASSERT_OK_AND_ASSIGN(bus::KvEntry failed, kv_.Get("deliveries", FailureKey("e8", "http://a/1")));
  nlohmann::json j = nlohmann::json::parse(failed.value);
  EXPECT_EQ(j["status"], "failed");
  EXPECT_EQ(j["attempts"], 5);
  EXPECT_THAT(j["error"].get<std::string>(), HasSubstr("HTTP 503"));
  // Not a delivery: the event would still be sent if replayed from the dead-letter stream.
  EXPECT_THAT(kv_.Get("deliveries", DeliveryKey("e8", "http://a/1")),
              testing::StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(NotifierServiceTest, RetryWinsOverRejectWhenBothHappen) {
  sender_.Script("http://a/1", {404});
  sender_.Script("http://b/2", {503});
  NotifierService n = Make({"http://a/1", "http://b/2"});
  EXPECT_EQ(n.Handle(SyncFailed("e6"), Delivery(1)).kind(), Kind::kNak);
}

TEST_F(NotifierServiceTest, NoUrlsAcksEverything) {
  NotifierService n = Make({});
  EXPECT_EQ(n.Handle(SyncFailed("e7"), Delivery(1)).kind(), Kind::kAck);
  EXPECT_TRUE(sender_.requests().empty());
}

}  // namespace
}  // namespace driftless::notifier
