// WebhookReceiver against a real nats-server: Receiver lookup, replay refusal, the work item
// for the repo-poller.
#include "services/api/webhook_receiver.h"

#include <gtest/gtest.h>

#include <map>

#include "common/bus/nats_connection.h"
#include "common/bus/nats_event_bus.h"
#include "common/bus/nats_kv_store.h"
#include "common/bus/testing/nats_server.h"
#include "common/manifest/manifest.h"
#include "common/testing/status_matchers.h"
#include "services/api/webhook.h"
#include "services/common/state.h"
#include "services/common/topology.h"

namespace driftless::api {
namespace {

using ::testing::HasSubstr;

constexpr char kBody[] =
    R"({"repoURL": "https://git.example.com/deploy.git", "ref": "refs/heads/main",
        "before": "1111", "after": "2222", "changedPaths": ["apps/web/deploy.yaml"]})";

class WebhookReceiverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(server_, bus::testing::NatsServerProcess::Start(tmp_.path() + "/js"));
    ASSERT_OK_AND_ASSIGN(conn_, bus::NatsConnection::Connect(server_->url(), "webhook-test"));
    bus_ = std::make_unique<bus::NatsEventBus>(conn_);
    kv_ = std::make_unique<bus::NatsKvStore>(conn_);
    ASSERT_OK(service::Provision(*bus_, *kv_));
    receiver_ = std::make_unique<WebhookReceiver>(bus_.get(), kv_.get(), "api/test");
    service::ResourceStore store(kv_.get());
    ASSERT_OK(store
                  .Put({{"apiVersion", "driftless.dev/v1alpha1"},
                        {"kind", "Receiver"},
                        {"metadata", {{"name", "hooks"}}},
                        {"spec", {{"type", "generic-hmac"}, {"secret", "s3cret"}}}})
                  .status());
    ASSERT_OK(store
                  .Put({{"apiVersion", "driftless.dev/v1alpha1"},
                        {"kind", "Receiver"},
                        {"metadata", {{"name", "tags-only"}}},
                        {"spec", {{"type", "generic"}, {"secret", "t0ken"}, {"events", {"tag"}}}}})
                  .status());
  }

  WebhookReceiver::Reply Post(const std::string& receiver,
                              std::map<std::string, std::string> headers, const std::string& body) {
    return receiver_->Handle(
        receiver,
        [&headers](std::string_view name) {
          auto it = headers.find(std::string(name));
          return it == headers.end() ? std::string() : it->second;
        },
        body);
  }

  uint64_t PollItems() {
    auto state = bus_->GetConsumerState(service::kWorkStream, service::kStagePoll);
    return state.ok() ? state->num_pending : 0;
  }

  bus::testing::TempDir tmp_;
  std::unique_ptr<bus::testing::NatsServerProcess> server_;
  std::shared_ptr<bus::NatsConnection> conn_;
  std::unique_ptr<bus::NatsEventBus> bus_;
  std::unique_ptr<bus::NatsKvStore> kv_;
  std::unique_ptr<WebhookReceiver> receiver_;
};

TEST_F(WebhookReceiverTest, QueuesAPushOnceAndRefusesTheReplay) {
  std::map<std::string, std::string> headers = {
      {"X-Signature", "sha256=" + manifest::HmacSha256Hex("s3cret", kBody)},
      {"X-Delivery-Id", "d-1"}};
  WebhookReceiver::Reply first = Post("hooks", headers, kBody);
  EXPECT_EQ(first.status, 202) << first.body;
  EXPECT_THAT(first.body, HasSubstr("webhook.push"));
  EXPECT_EQ(PollItems(), 1u);

  WebhookReceiver::Reply replay = Post("hooks", headers, kBody);
  EXPECT_EQ(replay.status, 409) << replay.body;
  EXPECT_THAT(replay.body, HasSubstr("d-1"));
  EXPECT_EQ(PollItems(), 1u);

  // The queued work item carries the push.
  std::mutex mu;
  std::vector<v1::Event> got;
  ASSERT_OK_AND_ASSIGN(auto sub, bus_->Consume(service::kWorkStream, service::kStagePoll,
                                               [&](const bus::Message& m) {
                                                 v1::Event e;
                                                 EXPECT_TRUE(e.ParseFromString(m.data));
                                                 std::lock_guard<std::mutex> lock(mu);
                                                 got.push_back(e);
                                                 return bus::Disposition::Ack();
                                               },
                                               {}));
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (absl::Now() < deadline) {
    {
      std::lock_guard<std::mutex> lock(mu);
      if (!got.empty()) break;
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
  sub->Stop();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].type(), "webhook.push");
  EXPECT_EQ(got[0].revision(), "2222");
  EXPECT_EQ(got[0].webhook_push().receiver(), "hooks");
  EXPECT_EQ(got[0].webhook_push().repo_url(), "https://git.example.com/deploy.git");
  EXPECT_EQ(got[0].webhook_push().ref(), "refs/heads/main");
  ASSERT_EQ(got[0].webhook_push().changed_paths_size(), 1);
}

TEST_F(WebhookReceiverTest, RefusalsAndIgnoredDeliveries) {
  EXPECT_EQ(Post("nope", {}, kBody).status, 404);
  EXPECT_EQ(Post("", {}, kBody).status, 404);
  WebhookReceiver::Reply unsigned_reply = Post("hooks", {}, kBody);
  EXPECT_EQ(unsigned_reply.status, 401);
  EXPECT_THAT(unsigned_reply.body, HasSubstr("X-Signature"));
  std::string bad = "{}";
  EXPECT_EQ(
      Post("hooks", {{"X-Signature", "sha256=" + manifest::HmacSha256Hex("s3cret", bad)}}, bad)
          .status,
      400);
  // A receiver filtering on events ignores (200) what it does not want.
  WebhookReceiver::Reply filtered = Post("tags-only", {{"Authorization", "Bearer t0ken"}}, kBody);
  EXPECT_EQ(filtered.status, 200) << filtered.body;
  EXPECT_THAT(filtered.body, HasSubstr("ignored"));
  // A generic receiver needs its bearer token.
  WebhookReceiver::Reply no_token = Post("tags-only", {}, kBody);
  EXPECT_EQ(no_token.status, 401) << no_token.body;
  EXPECT_THAT(no_token.body, HasSubstr("Authorization"));
  EXPECT_EQ(PollItems(), 0u);
}

// A generic receiver stored without a secret (applied before secrets were required) accepts
// nothing: anyone could trigger syncs through it.
TEST_F(WebhookReceiverTest, GenericReceiverWithoutSecretIsRefused) {
  ASSERT_OK(service::ResourceStore(kv_.get())
                .Put({{"apiVersion", "driftless.dev/v1alpha1"},
                      {"kind", "Receiver"},
                      {"metadata", {{"name", "open"}}},
                      {"spec", {{"type", "generic"}}}})
                .status());
  WebhookReceiver::Reply reply = Post("open", {{"Authorization", "Bearer "}}, kBody);
  EXPECT_EQ(reply.status, 401) << reply.body;
  EXPECT_THAT(reply.body, HasSubstr("receiver \\\"open\\\" (generic) has no secret"));
  EXPECT_EQ(PollItems(), 0u);
}

// Flood limits are per receiver and per repository; forged deliveries spend nothing, other
// receivers are not starved, and a limited delivery can be retried once the budget refills.
TEST_F(WebhookReceiverTest, FloodLimitedPerReceiverAndPerRepository) {
  service::ResourceStore store(kv_.get());
  ASSERT_OK(store
                .Put({{"apiVersion", "driftless.dev/v1alpha1"},
                      {"kind", "Receiver"},
                      {"metadata", {{"name", "other"}}},
                      {"spec", {{"type", "generic-hmac"}, {"secret", "s3cret"}}}})
                .status());
  auto now = std::chrono::steady_clock::time_point() + std::chrono::hours(1);
  WebhookLimits limits;
  limits.receiver_burst = 3;
  limits.receiver_interval = std::chrono::seconds(1);
  limits.repository_burst = 2;
  limits.repository_interval = std::chrono::seconds(10);
  limits.now = [&now] { return now; };
  WebhookReceiver limited(bus_.get(), kv_.get(), "api/test", limits);
  auto post = [&](const std::string& receiver, const std::string& repo, const std::string& id,
                  const std::string& secret = "s3cret") {
    std::string body =
        R"({"repoURL": ")" + repo + R"(", "ref": "refs/heads/main", "after": ")" + id + R"("})";
    std::map<std::string, std::string> headers = {
        {"X-Signature", "sha256=" + manifest::HmacSha256Hex(secret, body)}, {"X-Delivery-Id", id}};
    return limited.Handle(
        receiver,
        [&headers](std::string_view name) {
          auto it = headers.find(std::string(name));
          return it == headers.end() ? std::string() : it->second;
        },
        body);
  };
  const std::string a = "https://git.example.com/a.git", b = "https://git.example.com/b.git";
  for (int i = 0; i < 5; ++i) EXPECT_EQ(post("hooks", a, "forged", "wrong").status, 401);

  EXPECT_EQ(post("hooks", a, "d-1").status, 202);
  EXPECT_EQ(post("hooks", a, "d-2").status, 202);
  WebhookReceiver::Reply repo_full = post("hooks", a, "d-3");
  EXPECT_EQ(repo_full.status, 429) << repo_full.body;
  EXPECT_THAT(repo_full.body, HasSubstr("repository https://git.example.com/a.git"));
  EXPECT_EQ(post("hooks", b, "d-4").status, 202);  // another repository: its own budget
  WebhookReceiver::Reply receiver_full = post("hooks", b, "d-5");
  EXPECT_EQ(receiver_full.status, 429) << receiver_full.body;
  EXPECT_THAT(receiver_full.body, HasSubstr("receiver \\\"hooks\\\" is over its flood limit"));
  // Another receiver is not starved, even for the same repository.
  EXPECT_EQ(post("other", a, "o-1").status, 202);

  // Ten seconds later both budgets have refilled: the host's retry of d-3 is accepted, not
  // refused as a replay (a limited delivery is not recorded).
  now += std::chrono::seconds(10);
  EXPECT_EQ(post("hooks", a, "d-3").status, 202);
  EXPECT_EQ(PollItems(), 5u);
}

TEST_F(WebhookReceiverTest, OversizedBodyIsRefusedBeforeParsing) {
  std::string body(kMaxWebhookBodyBytes + 1, ' ');
  WebhookReceiver::Reply reply = Post("hooks", {}, body);
  EXPECT_EQ(reply.status, 413) << reply.body;
  EXPECT_THAT(reply.body, HasSubstr("receiver \\\"hooks\\\""));
  EXPECT_EQ(PollItems(), 0u);
}

}  // namespace
}  // namespace driftless::api
