// nats-server restarts (same port, same JetStream store dir) while services publish and
// consume: nothing is lost, and with a graceful restart nothing is processed twice.
#include <gtest/gtest.h>

#include <atomic>
#include <iostream>
#include <map>
#include <mutex>
#include <string>

#include "common/bus/nats_test_util.h"

namespace driftless::bus {
namespace {

class NatsRestartTest : public NatsTest {
 protected:
  void SetUp() override {
    NatsTest::SetUp();
    if (HasFatalFailure()) return;
    StreamSpec stream;
    stream.name = "WORK";
    stream.subjects = {"work.>"};
    stream.retention = Retention::kWorkQueue;
    ASSERT_OK(bus_->EnsureStream(stream));
    ConsumerSpec consumer;
    consumer.stream = "WORK";
    consumer.durable = "worker";
    consumer.ack_wait = absl::Seconds(5);
    ASSERT_OK(bus_->EnsureConsumer(consumer));
  }

  // Consumes with a handler that counts how often each payload was processed.
  absl::StatusOr<std::unique_ptr<Subscription>> StartCounting() {
    ConsumeOptions options;
    options.fetch_wait = absl::Milliseconds(100);
    return bus_->Consume(
        "WORK", "worker",
        [this](const Message& m) {
          absl::SleepFor(absl::Milliseconds(2));  // simulated work, so the restart lands mid-stream
          std::lock_guard<std::mutex> lock(mu_);
          ++processed_[m.data];
          return Disposition::Ack();
        },
        options);
  }

  size_t Distinct() {
    std::lock_guard<std::mutex> lock(mu_);
    return processed_.size();
  }

  void PublishRange(const std::string& prefix, int n) {
    for (int i = 0; i < n; ++i) {
      const std::string id = prefix + std::to_string(i);
      ASSERT_OK(bus_->Publish("work.item", id, id, {}).status()) << id;
    }
  }

  std::string Describe() {
    auto c = bus_->GetConsumerState("WORK", "worker");
    auto s = bus_->GetStreamState("WORK");
    if (!c.ok() || !s.ok()) return "state unavailable";
    return "pending=" + std::to_string(c->num_pending) +
           " ack_pending=" + std::to_string(c->num_ack_pending) +
           " ack_floor=" + std::to_string(c->ack_floor_stream_sequence) +
           " stream_msgs=" + std::to_string(s->messages) +
           " first=" + std::to_string(s->first_sequence) +
           " last=" + std::to_string(s->last_sequence);
  }

  // Nothing left to deliver or in flight; with `stream_empty`, also every message removed from
  // the work queue. After a SIGKILL the server may have lost the removal of messages it had
  // already seen acknowledged (its consumer state says done), so that test skips the latter.
  bool WaitDrained(bool stream_empty = true) {
    return WaitFor(
        [&] {
          auto c = bus_->GetConsumerState("WORK", "worker");
          auto s = bus_->GetStreamState("WORK");
          return c.ok() && s.ok() && c->num_pending == 0 && c->num_ack_pending == 0 &&
                 (!stream_empty || s->messages == 0);
        },
        absl::Seconds(30));
  }

  std::mutex mu_;
  std::map<std::string, int> processed_;
};

TEST_F(NatsRestartTest, GracefulRestartMidStreamLosesAndDuplicatesNothing) {
  constexpr int kBefore = 150;
  constexpr int kAfter = 150;
  ASSERT_OK_AND_ASSIGN(auto sub, StartCounting());
  PublishRange("before-", kBefore);
  ASSERT_TRUE(WaitFor([&] { return Distinct() >= 20; }));
  ASSERT_LT(Distinct(), static_cast<size_t>(kBefore)) << "restart must land mid-stream";

  ASSERT_OK(server_->Restart());
  PublishRange("after-", kAfter);  // retried internally until the connection is back

  ASSERT_TRUE(WaitFor([&] { return Distinct() >= kBefore + kAfter; }, absl::Seconds(60)))
      << Distinct();
  ASSERT_TRUE(WaitDrained()) << Describe();
  sub->Stop();
  EXPECT_TRUE(WaitFor([&] { return conn_->reconnects() >= 1 && conn_->Ready().ok(); }));
  std::lock_guard<std::mutex> lock(mu_);
  ASSERT_EQ(processed_.size(), static_cast<size_t>(kBefore + kAfter));
  int duplicates = 0;
  for (const auto& [id, count] : processed_) {
    EXPECT_EQ(count, 1) << id;
    duplicates += count - 1;
  }
  EXPECT_EQ(duplicates, 0);
}

TEST_F(NatsRestartTest, KilledServerLosesNothing) {
  constexpr int kBefore = 100;
  constexpr int kAfter = 100;
  ASSERT_OK_AND_ASSIGN(auto sub, StartCounting());
  PublishRange("before-", kBefore);
  ASSERT_TRUE(WaitFor([&] { return Distinct() >= 20; }));

  ASSERT_OK(server_->Kill());  // SIGKILL, as in a crash
  ASSERT_OK(server_->StartAgain());
  PublishRange("after-", kAfter);

  ASSERT_TRUE(WaitFor([&] { return Distinct() >= kBefore + kAfter; }, absl::Seconds(60)))
      << Distinct();
  ASSERT_TRUE(WaitDrained(/*stream_empty=*/false)) << Describe();
  sub->Stop();
  std::lock_guard<std::mutex> lock(mu_);
  EXPECT_EQ(processed_.size(), static_cast<size_t>(kBefore + kAfter));  // nothing lost
  int duplicates = 0;
  for (const auto& [id, count] : processed_) {
    duplicates += count - 1;
    // Messages published after the crash are processed exactly once.
    if (id.starts_with("after-")) {
      EXPECT_EQ(count, 1) << id;
    }
  }
  // At-least-once for the rest: nats-server flushes consumer and stream state lazily, so work
  // acknowledged shortly before a SIGKILL can be redelivered (handlers are idempotent).
  std::cerr << "duplicates after SIGKILL: " << duplicates << " of " << kBefore << "\n";
  EXPECT_LE(duplicates, kBefore);
}

TEST_F(NatsRestartTest, KvAndStateSurviveRestart) {
  ASSERT_OK(kv_->EnsureBucket("state", 1, absl::ZeroDuration()));
  ASSERT_OK_AND_ASSIGN(uint64_t rev, kv_->Put("state", "apps.a", "v1"));
  ASSERT_OK(server_->Restart());
  // The first calls may race the reconnect; retry with a deadline.
  absl::StatusOr<KvEntry> e;
  ASSERT_TRUE(WaitFor([&] {
    e = kv_->Get("state", "apps.a");
    return e.ok();
  }));
  EXPECT_EQ(e->value, "v1");
  EXPECT_EQ(e->revision, rev);
  ASSERT_OK(kv_->Update("state", "apps.a", "v2", rev).status());
  EXPECT_TRUE(WaitFor([&] { return conn_->Ready().ok(); }));
}

TEST_F(NatsRestartTest, ReadyReportsDisconnection) {
  std::atomic<int> changes{0};
  NatsConnectionOptions options;
  options.url = server_->url();
  options.name = "watcher";
  options.reconnect_wait = absl::Milliseconds(100);
  options.on_state_change = [&](ConnectionState) { ++changes; };
  ASSERT_OK_AND_ASSIGN(auto conn, NatsConnection::Connect(options));
  EXPECT_OK(conn->Ready());
  ASSERT_OK(server_->Stop());
  ASSERT_TRUE(WaitFor([&] { return !conn->Ready().ok(); }));
  EXPECT_THAT(conn->Ready(), ::driftless::testing::StatusIs(absl::StatusCode::kUnavailable));
  ASSERT_OK(server_->StartAgain());
  ASSERT_TRUE(WaitFor([&] { return conn->Ready().ok(); }));
  // State callbacks run on cnats' callback thread, possibly a little after the fact.
  EXPECT_TRUE(WaitFor([&] { return changes.load() >= 2 && conn->reconnects() == 1; }));
}

TEST_F(NatsRestartTest, KvWatchSurvivesRestart) {
  ASSERT_OK(kv_->EnsureBucket("state", 1, absl::ZeroDuration()));
  std::mutex mu;
  std::map<std::string, std::string> latest;
  ASSERT_OK_AND_ASSIGN(auto watch, kv_->Watch("state", ">", [&](const WatchEvent& e) {
    if (e.kind != WatchEvent::Kind::kPut) return;
    std::lock_guard<std::mutex> lock(mu);
    latest[e.entry.key] = e.entry.value;
  }));
  auto value_of = [&](const std::string& key) {
    std::lock_guard<std::mutex> lock(mu);
    auto it = latest.find(key);
    return it == latest.end() ? std::string() : it->second;
  };
  ASSERT_OK(kv_->Put("state", "a", "1").status());
  ASSERT_TRUE(WaitFor([&] { return value_of("a") == "1"; }));
  ASSERT_OK(server_->Restart());
  ASSERT_TRUE(WaitFor([&] { return kv_->Put("state", "a", "2").ok(); }));
  EXPECT_TRUE(WaitFor([&] { return value_of("a") == "2"; }, absl::Seconds(15)));
  // Not exercised here: a SIGKILL restart. Delivery resumes then too, but stopping a watcher
  // whose ordered consumer cnats 3.4 is resetting at that moment reads freed memory inside
  // cnats (jsSub_deleteConsumer formats an error with the replaced consumer name; seen with
  // ASan), which would make this test flaky under the sanitizer build.
}

}  // namespace
}  // namespace driftless::bus
