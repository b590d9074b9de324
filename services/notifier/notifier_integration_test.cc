// The notifier against a real nats-server (through service::Runtime) and a real local HTTP
// receiver: deliveries arrive once, 500-then-200 is retried, the same event published twice
// is delivered once, a 400 is dead-lettered.
#include <atomic>
#include <deque>
#include <mutex>

#include "common/bus/testing/nats_server.h"
#include "common/http/server.h"
#include "common/manifest/manifest.h"
#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "services/common/events.h"
#include "services/common/runtime.h"
#include "services/common/state.h"
#include "services/common/topology.h"
#include "services/notifier/notifier_service.h"

namespace driftless::notifier {
namespace {

using bus::testing::NatsServerProcess;
using bus::testing::TempDir;

// Records POSTs; answers each path with its scripted statuses (the last one repeats).
class Receiver {
 public:
  struct Post {
    std::string path;
    std::string body;
    std::string event_id;
    std::string content_type;
    std::string signature;  // X-Signature
  };
  absl::Status Start(const std::map<std::string, std::vector<int>>& scripts) {
    for (const auto& [path, statuses] : scripts) {
      scripts_[path] = std::deque<int>(statuses.begin(), statuses.end());
      DL_RETURN_IF_ERROR(server_.HandlePost(path, 1 << 20, [this](const http::Request& r) {
        std::lock_guard<std::mutex> lock(mu_);
        posts_.push_back({r.path, r.body, r.Header("X-Driftless-Event-Id"),
                          r.Header("Content-Type"), r.Header("X-Signature")});
        auto& script = scripts_[r.path];
        http::Response response;
        response.status = script.front();
        if (script.size() > 1) script.pop_front();
        return response;
      }));
    }
    return server_.Start();
  }
  std::string Url(const std::string& path) const { return server_.BaseUrl() + path; }
  std::vector<Post> Posts() {
    std::lock_guard<std::mutex> lock(mu_);
    return posts_;
  }
  int Count(const std::string& path) {
    int n = 0;
    for (const Post& p : Posts()) n += p.path == path;
    return n;
  }
  bool WaitForCount(const std::string& path, int n, absl::Duration d) {
    for (absl::Time deadline = absl::Now() + d; absl::Now() < deadline;) {
      if (Count(path) >= n) return true;
      absl::SleepFor(absl::Milliseconds(20));
    }
    return Count(path) >= n;
  }

 private:
  http::Server server_;
  std::mutex mu_;
  std::map<std::string, std::deque<int>> scripts_;
  std::vector<Post> posts_;
};

class NotifierIntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(nats_, NatsServerProcess::Start(dir_.path() + "/js"));
    ASSERT_OK(receiver_.Start({{"/hook", {200}},
                               {"/flaky", {500, 200}},
                               {"/reject", {400}},
                               {"/hmac", {200}},
                               {"/slack", {200}}}));
  }
  void TearDown() override {
    if (sub_) sub_->Stop();
    sub_.reset();
    notifier_.reset();
    runtime_.reset();
  }

  void StartNotifier(std::vector<std::string> urls) {
    config::ServiceFlags flags;
    flags.nats_url = nats_->url();
    flags.log_format = "text";
    ASSERT_OK_AND_ASSIGN(runtime_, service::Runtime::Start("notifier", flags));
    notifier_ = std::make_unique<NotifierService>(
        &runtime_->kv(), &sender_,
        NotifierOptions{.urls = std::move(urls),
                        .initial_backoff = absl::Milliseconds(200),
                        .bucket = service::kDeliveriesBucket});
    ASSERT_OK_AND_ASSIGN(sub_, runtime_->Consume(service::kEventsStream, service::kNotifierDurable,
                                                 [this](const v1::Event& e, const bus::Message& m) {
                                                   return notifier_->Handle(e, m);
                                                 }));
  }

  v1::Event Event(const std::string& type, const std::string& app) {
    v1::Event e = service::NewEvent(type, app, "abc123", "test/1");
    e.set_id(service::EventId(type, app, "abc123", "sha256:d"));
    e.set_severity(type == "sync.failed" ? v1::SEVERITY_ERROR : v1::SEVERITY_INFO);
    e.mutable_sync_finished()->set_sync_id("s1");
    e.mutable_sync_finished()->set_succeeded(type == "sync.succeeded");
    return e;
  }

  // Waits until the notifier handled everything published (nothing pending or unacked).
  void WaitIdle() {
    for (absl::Time deadline = absl::Now() + absl::Seconds(20); absl::Now() < deadline;) {
      auto state =
          runtime_->bus().GetConsumerState(service::kEventsStream, service::kNotifierDurable);
      if (state.ok() && state->num_pending == 0 && state->num_ack_pending == 0) return;
      absl::SleepFor(absl::Milliseconds(50));
    }
    ADD_FAILURE() << "the notifier did not drain the events stream";
  }

  TempDir dir_;
  std::unique_ptr<NatsServerProcess> nats_;
  Receiver receiver_;
  CurlWebhookSender sender_;
  std::unique_ptr<service::Runtime> runtime_;
  std::unique_ptr<NotifierService> notifier_;
  std::unique_ptr<bus::Subscription> sub_;
};

TEST_F(NotifierIntegrationTest, DeliversMatchingEventsOnceWithTheDocumentedBody) {
  StartNotifier({receiver_.Url("/hook")});
  v1::Event e = Event("sync.succeeded", "guestbook");
  ASSERT_OK(service::Emit(runtime_->bus(), Event("app.rendered", "guestbook")));
  ASSERT_OK(service::Emit(runtime_->bus(), e));
  ASSERT_TRUE(receiver_.WaitForCount("/hook", 1, absl::Seconds(20)));
  WaitIdle();
  std::vector<Receiver::Post> posts = receiver_.Posts();
  ASSERT_EQ(posts.size(), 1u);  // app.rendered is filtered out
  EXPECT_EQ(posts[0].event_id, e.id());
  EXPECT_EQ(posts[0].content_type, "application/json");
  nlohmann::json body = nlohmann::json::parse(posts[0].body);
  EXPECT_EQ(body["id"], e.id());
  EXPECT_EQ(body["type"], "sync.succeeded");
  EXPECT_EQ(body["application"], "guestbook");
  EXPECT_EQ(body["revision"], "abc123");
  EXPECT_EQ(body["severity"], "info");
  EXPECT_EQ(body["payload"]["syncId"], "s1");
  EXPECT_FALSE(body["time"].get<std::string>().empty());
}

TEST_F(NotifierIntegrationTest, ServerErrorIsRetriedUntilDelivered) {
  StartNotifier({receiver_.Url("/flaky"), receiver_.Url("/hook")});
  ASSERT_OK(service::Emit(runtime_->bus(), Event("sync.failed", "guestbook")));
  ASSERT_TRUE(receiver_.WaitForCount("/flaky", 2, absl::Seconds(20)));
  WaitIdle();
  EXPECT_EQ(receiver_.Count("/flaky"), 2);  // 500, then 200
  EXPECT_EQ(receiver_.Count("/hook"), 1);   // delivered on the first attempt, not again
  auto dlq = runtime_->bus().GetStreamState(service::kDeadLetterStream);
  ASSERT_OK(dlq.status());
  EXPECT_EQ(dlq->messages, 0u);
}

TEST_F(NotifierIntegrationTest, SameEventPublishedTwiceIsDeliveredOnce) {
  StartNotifier({receiver_.Url("/hook")});
  v1::Event e = Event("sync.failed", "guestbook");
  ASSERT_OK(service::Emit(runtime_->bus(), e));
  // The same logical event again under another message id (as after the duplicate window).
  ASSERT_OK(
      runtime_->bus()
          .Publish(service::EventSubject(e.type()), e.SerializeAsString(), e.id() + "/again", {})
          .status());
  auto stream = runtime_->bus().GetStreamState(service::kEventsStream);
  ASSERT_OK(stream.status());
  EXPECT_EQ(stream->messages, 2u);
  ASSERT_TRUE(receiver_.WaitForCount("/hook", 1, absl::Seconds(20)));
  WaitIdle();
  EXPECT_EQ(receiver_.Count("/hook"), 1);
}

TEST_F(NotifierIntegrationTest, ClientErrorIsDeadLettered) {
  StartNotifier({receiver_.Url("/reject")});
  ASSERT_OK(service::Emit(runtime_->bus(), Event("sync.failed", "guestbook")));
  ASSERT_TRUE(receiver_.WaitForCount("/reject", 1, absl::Seconds(20)));
  WaitIdle();
  EXPECT_EQ(receiver_.Count("/reject"), 1);
  absl::StatusOr<bus::StreamState> dlq;
  for (absl::Time deadline = absl::Now() + absl::Seconds(10); absl::Now() < deadline;) {
    dlq = runtime_->bus().GetStreamState(service::kDeadLetterStream);
    if (dlq.ok() && dlq->messages == 1) break;
    absl::SleepFor(absl::Milliseconds(50));
  }
  ASSERT_OK(dlq.status());
  EXPECT_EQ(dlq->messages, 1u);
}

// NotificationProvider and Alert resources route events: each Alert's filters pick events,
// generic-hmac signs the body so the receiver can verify it, slack gets a Block Kit message,
// two Alerts to one provider deliver once, and an unusable provider is skipped.
TEST_F(NotifierIntegrationTest, ProvidersAndAlertsFromResourcesRouteEvents) {
  StartNotifier({});
  service::ResourceStore store(&runtime_->kv());
  auto put = [&](const std::string& kind, const std::string& name, nlohmann::json spec) {
    ASSERT_OK(store
                  .Put({{"apiVersion", "driftless.dev/v1alpha1"},
                        {"kind", kind},
                        {"metadata", {{"name", name}}},
                        {"spec", std::move(spec)}})
                  .status());
  };
  put("NotificationProvider", "signed",
      {{"type", "generic-hmac"}, {"address", receiver_.Url("/hmac")}, {"secret", "s3cret"}});
  put("NotificationProvider", "chat",
      {{"type", "slack"}, {"address", receiver_.Url("/slack")}, {"channel", "#deploys"}});
  put("NotificationProvider", "broken", {{"type", "slack"}});  // no address
  put("Alert", "failures",
      {{"providerRef", {{"name", "signed"}}},
       {"eventTypes", {"sync.failed"}},
       {"applications", {"guest*"}}});
  put("Alert", "errors-to-chat", {{"providerRef", {{"name", "chat"}}}, {"severity", "error"}});
  put("Alert", "also-chat",
      {{"providerRef", {{"name", "chat"}}}, {"eventTypes", {"sync.*"}}, {"severity", "error"}});
  put("Alert", "to-broken", {{"providerRef", {{"name", "broken"}}}});

  // An application's own subscription, besides the alerts.
  ASSERT_OK(
      store
          .Put({{"apiVersion", "driftless.dev/v1alpha1"},
                {"kind", "Application"},
                {"metadata", {{"name", "subscribed"}}},
                {"spec",
                 {{"source", {{"repoURL", "file:///r"}}},
                  {"destination", {{"cluster", "in-cluster"}}},
                  {"notifications", {{{"on", {"sync.succeeded"}}, {"provider", "signed"}}}}}}})
          .status());
  ASSERT_OK(service::Emit(runtime_->bus(), Event("sync.succeeded", "subscribed")));
  ASSERT_OK(service::Emit(runtime_->bus(), Event("sync.succeeded", "guestbook")));  // info
  ASSERT_OK(service::Emit(runtime_->bus(), Event("sync.failed", "other")));         // not guest*
  const v1::Event failed = Event("sync.failed", "guestbook");
  ASSERT_OK(service::Emit(runtime_->bus(), failed));
  ASSERT_TRUE(receiver_.WaitForCount("/hmac", 2, absl::Seconds(20)));
  ASSERT_TRUE(receiver_.WaitForCount("/slack", 2, absl::Seconds(20)));
  WaitIdle();
  EXPECT_EQ(receiver_.Count("/hmac"), 2);   // subscribed's success, guestbook's failure
  EXPECT_EQ(receiver_.Count("/slack"), 2);  // both failures, each once for two alerts
  for (const Receiver::Post& p : receiver_.Posts()) {
    if (p.path == "/hmac") {
      EXPECT_EQ(p.signature, "sha256=" + manifest::HmacSha256Hex("s3cret", p.body));
      const nlohmann::json body = nlohmann::json::parse(p.body);
      EXPECT_EQ(body["application"], p.event_id == failed.id() ? "guestbook" : "subscribed");
    } else if (p.path == "/slack") {
      nlohmann::json body = nlohmann::json::parse(p.body);
      EXPECT_EQ(body["channel"], "#deploys");
      EXPECT_EQ(body["blocks"][0]["type"], "header");
      EXPECT_THAT(body["text"].get<std::string>(), ::testing::HasSubstr("sync failed"));
    }
  }
}

}  // namespace
}  // namespace driftless::notifier
