// A three-node JetStream cluster on 127.0.0.1 (NatsClusterProcess): R3 streams and buckets, a
// connection given every node's URL, and SIGKILL of the node that connection is attached to,
// mid-flow. Nothing is lost, work is processed once (except what was in flight when the
// connection died), KV reads and writes continue, and a KV watch resumes on another node.
#include <gtest/gtest.h>

#include <iostream>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "common/bus/nats_test_util.h"

namespace driftless::bus {
namespace {

constexpr int kNodes = 3;

class NatsClusterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(tmp_.path().empty());
    auto cluster = testing::NatsClusterProcess::Start(tmp_.path(), kNodes);
    ASSERT_OK(cluster.status());
    cluster_ = std::move(*cluster);
    NatsConnectionOptions options;
    options.url = cluster_->urls();
    options.name = "cluster-test";
    options.reconnect_wait = absl::Milliseconds(100);
    auto conn = NatsConnection::Connect(options);
    ASSERT_OK(conn.status());
    conn_ = *conn;
    bus_ = std::make_unique<NatsEventBus>(conn_);
    kv_ = std::make_unique<NatsKvStore>(conn_, NatsKvStoreOptions{.replicas = kNodes});
  }

  // The index of the node the connection is attached to, or -1 while disconnected.
  int ConnectedNode() {
    const std::string url = conn_->connected_url();
    const size_t colon = url.rfind(':');
    int port = 0;
    if (colon == std::string::npos || !absl::SimpleAtoi(url.substr(colon + 1), &port)) return -1;
    return cluster_->NodeWithPort(port);
  }

  // SIGKILLs the node the connection is attached to; returns its index.
  int KillConnectedNode() {
    const int node = ConnectedNode();
    EXPECT_GE(node, 0) << conn_->connected_url();
    if (node < 0) return node;
    EXPECT_OK(cluster_->node(node).Kill());
    return node;
  }

  // The nodes hosting a consumer of `stream` (an R1 ephemeral consumer, such as a KV
  // watcher's, is listed by its node's /jsz only).
  std::vector<int> ConsumerNodes(const std::string& stream) {
    std::vector<int> out;
    for (int i = 0; i < cluster_->size(); ++i) {
      if (!cluster_->node(i).running()) continue;
      auto jsz = testing::HttpGetLocal(cluster_->node(i).monitor_port(),
                                       "/jsz?accounts=true&streams=true&consumers=true");
      if (jsz.ok() && jsz->find("\"stream_name\": \"" + stream + "\"") != std::string::npos) {
        out.push_back(i);
      }
    }
    return out;
  }

  // Right after a kill, requests may time out while the cluster elects new leaders.
  static bool Eventually(const std::function<bool()>& pred) {
    return WaitFor(pred, absl::Seconds(60));
  }

  testing::TempDir tmp_;
  std::unique_ptr<testing::NatsClusterProcess> cluster_;
  std::shared_ptr<NatsConnection> conn_;
  std::unique_ptr<NatsEventBus> bus_;
  std::unique_ptr<NatsKvStore> kv_;
};

TEST_F(NatsClusterTest, ConnectsWithEveryUrl) {
  EXPECT_OK(conn_->Ready());
  EXPECT_GE(ConnectedNode(), 0) << conn_->connected_url();
}

TEST_F(NatsClusterTest, R3StreamLosesAndDuplicatesNothingWhenTheConnectedNodeIsKilled) {
  ASSERT_OK(bus_->EnsureStream({.name = "WORK",
                                .subjects = {"work.>"},
                                .retention = Retention::kWorkQueue,
                                .replicas = kNodes}));
  ASSERT_OK(
      bus_->EnsureConsumer({.stream = "WORK", .durable = "worker", .ack_wait = absl::Seconds(5)}));
  std::mutex mu;
  std::map<std::string, int> processed;
  auto distinct = [&] {
    std::lock_guard<std::mutex> lock(mu);
    return processed.size();
  };
  ConsumeOptions options;
  options.fetch_wait = absl::Milliseconds(100);
  ASSERT_OK_AND_ASSIGN(auto sub, bus_->Consume(
                                     "WORK", "worker",
                                     [&](const Message& m) {
                                       absl::SleepFor(absl::Milliseconds(2));  // simulated work
                                       std::lock_guard<std::mutex> lock(mu);
                                       ++processed[m.data];
                                       return Disposition::Ack();
                                     },
                                     options));
  constexpr int kBefore = 150;
  constexpr int kAfter = 150;
  for (int i = 0; i < kBefore; ++i) {
    const std::string id = "before-" + std::to_string(i);
    ASSERT_OK(bus_->Publish("work.item", id, id, {}).status()) << id;
  }
  ASSERT_TRUE(WaitFor([&] { return distinct() >= 20; }));
  ASSERT_LT(distinct(), static_cast<size_t>(kBefore)) << "the kill must land mid-stream";

  const int killed = KillConnectedNode();
  ASSERT_GE(killed, 0);
  for (int i = 0; i < kAfter; ++i) {
    const std::string id = "after-" + std::to_string(i);
    // Publish retries transient failures (reconnecting, leader election) for 15 s with the
    // same msg id, so a retry of a stored message is deduplicated; retry beyond that here.
    absl::Status last;
    ASSERT_TRUE(Eventually([&] {
      last = bus_->Publish("work.item", id, id, {}).status();
      return last.ok();
    })) << id
        << ": " << last;
  }
  ASSERT_TRUE(Eventually([&] { return distinct() >= kBefore + kAfter; })) << distinct();
  ASSERT_TRUE(Eventually([&] {
    auto c = bus_->GetConsumerState("WORK", "worker");
    return c.ok() && c->num_pending == 0 && c->num_ack_pending == 0;
  }));
  sub->Stop();
  EXPECT_GE(conn_->reconnects(), 1);
  EXPECT_NE(ConnectedNode(), killed);
  std::lock_guard<std::mutex> lock(mu);
  EXPECT_EQ(processed.size(), static_cast<size_t>(kBefore + kAfter));  // nothing lost
  int duplicates = 0;
  for (const auto& [id, count] : processed) {
    duplicates += count - 1;
    if (id.starts_with("after-")) {
      EXPECT_EQ(count, 1) << id;
    }
  }
  // The only repeats: items whose handler had run when the connection died, so their AckSync
  // never reached the cluster (at most one fetched batch; handlers are idempotent). Acks that
  // got an answer are replicated: nothing acknowledged is redelivered by the new leader.
  std::cerr << "duplicates after killing node n" << killed << ": " << duplicates << "\n";
  EXPECT_LE(duplicates, options.batch);
}

TEST_F(NatsClusterTest, R3BucketReadsAndWritesSurviveKillingTheConnectedNode) {
  ASSERT_OK(kv_->EnsureBucket("state", 1, absl::ZeroDuration()));
  ASSERT_OK_AND_ASSIGN(uint64_t rev, kv_->Put("state", "apps.a", "v1"));
  const int killed = KillConnectedNode();
  ASSERT_GE(killed, 0);
  absl::StatusOr<KvEntry> e;
  ASSERT_TRUE(Eventually([&] {
    e = kv_->Get("state", "apps.a");
    return e.ok();
  })) << e.status();
  EXPECT_EQ(e->value, "v1");
  EXPECT_EQ(e->revision, rev);
  absl::StatusOr<uint64_t> updated;
  ASSERT_TRUE(Eventually([&] {
    updated = kv_->Update("state", "apps.a", "v2", rev);
    // A retried update that did land the first time reports a stale revision: re-read.
    if (updated.status().code() == absl::StatusCode::kAborted) {
      auto now = kv_->Get("state", "apps.a");
      return now.ok() && now->value == "v2";
    }
    return updated.ok();
  })) << updated.status();
  ASSERT_OK_AND_ASSIGN(KvEntry after, kv_->Get("state", "apps.a"));
  EXPECT_EQ(after.value, "v2");
  EXPECT_NE(ConnectedNode(), killed);
}

// A KV watcher is an ordered consumer (R1, ephemeral) on some node of the bucket's stream,
// reached through the node the connection is attached to. Killing the consumer's node: cnats
// re-creates the consumer after missed heartbeats. Killing the connection's node: the
// connection fails over and NatsKvStore::Watch re-creates the watcher (see nats_kv_store.h).
TEST_F(NatsClusterTest, KvWatchResumesAfterTheNodeItIsAttachedToIsKilled) {
  ASSERT_OK(kv_->EnsureBucket("state", 1, absl::ZeroDuration()));
  ASSERT_OK(kv_->Put("state", "before", "0").status());
  std::mutex mu;
  std::map<std::string, std::string> latest;
  std::map<std::string, int> puts;
  int initial_done = 0;
  ASSERT_OK_AND_ASSIGN(auto watch, kv_->Watch("state", ">", [&](const WatchEvent& e) {
    std::lock_guard<std::mutex> lock(mu);
    if (e.kind == WatchEvent::Kind::kInitialValuesDone) ++initial_done;
    if (e.kind != WatchEvent::Kind::kPut) return;
    latest[e.entry.key] = e.entry.value;
    ++puts[e.entry.key];
  }));
  auto value_of = [&](const std::string& key) {
    std::lock_guard<std::mutex> lock(mu);
    auto it = latest.find(key);
    return it == latest.end() ? std::string() : it->second;
  };
  ASSERT_TRUE(WaitFor([&] { return value_of("before") == "0"; }));

  // Round 1 kills the node holding the watcher's consumer (possibly not the one the
  // connection uses), round 2 the node the connection is attached to.
  for (int round = 1; round <= 2; ++round) {
    int killed = -1;
    if (round == 1) {
      const std::vector<int> nodes = ConsumerNodes("KV_state");
      ASSERT_EQ(nodes.size(), 1u);
      killed = nodes[0];
      std::cerr << "watch consumer on n" << killed << ", connected to n" << ConnectedNode() << "\n";
      ASSERT_OK(cluster_->node(killed).Kill());
    } else {
      killed = KillConnectedNode();
    }
    ASSERT_GE(killed, 0);
    const std::string key = "k" + std::to_string(round);
    ASSERT_TRUE(Eventually([&] { return kv_->Put("state", key, "1").ok(); })) << key;
    // Round 1 (no reconnect): cnats notices the consumer's missed heartbeats and re-creates
    // it, 13-45 s here. Round 2 (reconnect): our re-created watcher, usually milliseconds,
    // up to ~30 s while the cluster re-elects leaders. What matters is that it resumes.
    const absl::Time written = absl::Now();
    EXPECT_TRUE(WaitFor([&] { return value_of(key) == "1"; }, absl::Seconds(120)))
        << "round " << round;
    std::cerr << "round " << round << ": killed n" << killed << ", watch resumed after "
              << absl::FormatDuration(absl::Now() - written) << "\n";
    ASSERT_TRUE(Eventually([&] { return kv_->Put("state", key, "2").ok(); })) << key;
    EXPECT_TRUE(Eventually([&] { return value_of(key) == "2"; })) << "round " << round;
    // Bring the node back so that the cluster keeps a quorum for the next kill.
    ASSERT_OK(cluster_->node(killed).StartAgain());
    ASSERT_OK(cluster_->WaitForMetaLeader());
    ASSERT_TRUE(Eventually([&] { return conn_->Ready().ok(); }));
  }
  std::lock_guard<std::mutex> lock(mu);
  EXPECT_EQ(initial_done, 1);
  EXPECT_EQ(puts["before"], 1) << "re-created watchers skip what was delivered";
  watch->Stop();
}

}  // namespace
}  // namespace driftless::bus
