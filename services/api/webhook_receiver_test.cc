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
                        {"spec", {{"type", "generic"}, {"events", {"tag"}}}}})
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
      {"X-Signature", "sha256=" + HmacSha256Hex("s3cret", kBody)}, {"X-Delivery-Id", "d-1"}};
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
  EXPECT_EQ(Post("hooks", {{"X-Signature", "sha256=" + HmacSha256Hex("s3cret", bad)}}, bad).status,
            400);
  // A receiver filtering on events ignores (200) what it does not want.
  WebhookReceiver::Reply filtered = Post("tags-only", {}, kBody);
  EXPECT_EQ(filtered.status, 200) << filtered.body;
  EXPECT_THAT(filtered.body, HasSubstr("ignored"));
  EXPECT_EQ(PollItems(), 0u);
}

}  // namespace
}  // namespace driftless::api
