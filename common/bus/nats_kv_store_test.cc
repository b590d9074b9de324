#include <gtest/gtest.h>

#include <atomic>
#include <iostream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/bus/blob_store.h"
#include "common/bus/lease.h"
#include "common/bus/nats_test_util.h"
#include "common/manifest/manifest.h"

namespace driftless::bus {
namespace {

using ::driftless::testing::StatusIs;

class NatsKvStoreTest : public NatsTest {
 protected:
  void SetUp() override {
    NatsTest::SetUp();
    if (HasFatalFailure()) return;
    ASSERT_OK(kv_->EnsureBucket("state", 5, absl::ZeroDuration()));
  }
};

TEST_F(NatsKvStoreTest, GetPutCreateUpdateDelete) {
  EXPECT_THAT(kv_->Get("state", "apps.guestbook"), StatusIs(absl::StatusCode::kNotFound));
  ASSERT_OK_AND_ASSIGN(uint64_t r1, kv_->Create("state", "apps.guestbook", "v1"));
  EXPECT_THAT(kv_->Create("state", "apps.guestbook", "again"),
              StatusIs(absl::StatusCode::kAlreadyExists));
  ASSERT_OK_AND_ASSIGN(KvEntry e, kv_->Get("state", "apps.guestbook"));
  EXPECT_EQ(e.key, "apps.guestbook");
  EXPECT_EQ(e.value, "v1");
  EXPECT_EQ(e.revision, r1);
  ASSERT_OK_AND_ASSIGN(uint64_t r2, kv_->Update("state", "apps.guestbook", "v2", r1));
  EXPECT_GT(r2, r1);
  // A writer holding the old revision loses the compare-and-set.
  EXPECT_THAT(kv_->Update("state", "apps.guestbook", "stale", r1),
              StatusIs(absl::StatusCode::kAborted));
  ASSERT_OK_AND_ASSIGN(e, kv_->Get("state", "apps.guestbook"));
  EXPECT_EQ(e.value, "v2");
  ASSERT_OK_AND_ASSIGN(uint64_t r3, kv_->Put("state", "apps.guestbook", ""));
  EXPECT_GT(r3, r2);
  ASSERT_OK_AND_ASSIGN(e, kv_->Get("state", "apps.guestbook"));
  EXPECT_EQ(e.value, "");
  ASSERT_OK(kv_->Delete("state", "apps.guestbook"));
  EXPECT_THAT(kv_->Get("state", "apps.guestbook"), StatusIs(absl::StatusCode::kNotFound));
  ASSERT_OK(kv_->Create("state", "apps.guestbook", "reborn").status());  // after a delete
  EXPECT_THAT(kv_->Get("nobucket", "k"), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(kv_->EnsureBucket("state", 0, absl::ZeroDuration()),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(NatsKvStoreTest, ConcurrentCasHasExactlyOneWinner) {
  ASSERT_OK_AND_ASSIGN(uint64_t rev, kv_->Put("state", "counter", "0"));
  constexpr int kWriters = 8;
  std::atomic<int> won{0}, aborted{0};
  std::vector<std::thread> writers;
  for (int i = 0; i < kWriters; ++i) {
    writers.emplace_back([&, i] {
      auto r = kv_->Update("state", "counter", std::to_string(i), rev);
      if (r.ok()) ++won;
      if (r.status().code() == absl::StatusCode::kAborted) ++aborted;
    });
  }
  for (auto& t : writers) t.join();
  EXPECT_EQ(won.load(), 1);
  EXPECT_EQ(aborted.load(), kWriters - 1);
}

TEST_F(NatsKvStoreTest, KeysByPrefix) {
  ASSERT_OK_AND_ASSIGN(auto none, kv_->Keys("state", ""));
  EXPECT_TRUE(none.empty());
  ASSERT_OK(kv_->Put("state", "apps.b", "1").status());
  ASSERT_OK(kv_->Put("state", "apps.a", "1").status());
  ASSERT_OK(kv_->Put("state", "projects.x", "1").status());
  ASSERT_OK(kv_->Put("state", "apps.gone", "1").status());
  ASSERT_OK(kv_->Delete("state", "apps.gone"));
  ASSERT_OK_AND_ASSIGN(auto apps, kv_->Keys("state", "apps."));
  EXPECT_EQ(apps, (std::vector<std::string>{"apps.a", "apps.b"}));
  ASSERT_OK_AND_ASSIGN(auto all, kv_->Keys("state", ""));
  EXPECT_EQ(all.size(), 3u);
  // Token prefixes are filtered by the server; none matching is an empty list, at once.
  ASSERT_OK_AND_ASSIGN(auto none_here, kv_->Keys("state", "clusters."));
  EXPECT_TRUE(none_here.empty());
  ASSERT_OK(kv_->Put("state", "apps.a.h1", "1").status());
  ASSERT_OK_AND_ASSIGN(auto nested, kv_->Keys("state", "apps.a."));
  EXPECT_EQ(nested, (std::vector<std::string>{"apps.a.h1"}));
  // A prefix that is not a whole token still matches by string.
  ASSERT_OK_AND_ASSIGN(auto partial, kv_->Keys("state", "apps.g"));
  EXPECT_TRUE(partial.empty());
}

TEST_F(NatsKvStoreTest, WatchDeliversCurrentValuesThenChanges) {
  ASSERT_OK(kv_->Put("state", "apps.a", "1").status());
  ASSERT_OK(kv_->Put("state", "projects.x", "p").status());
  std::mutex mu;
  std::vector<std::string> seen;
  ASSERT_OK_AND_ASSIGN(auto watch, kv_->Watch("state", "apps.*", [&](const WatchEvent& e) {
    std::lock_guard<std::mutex> lock(mu);
    switch (e.kind) {
      case WatchEvent::Kind::kPut:
        seen.push_back("put " + e.entry.key + "=" + e.entry.value);
        break;
      case WatchEvent::Kind::kDelete:
        seen.push_back("del " + e.entry.key);
        break;
      case WatchEvent::Kind::kInitialValuesDone:
        seen.push_back("done");
        break;
    }
  }));
  auto count = [&] {
    std::lock_guard<std::mutex> lock(mu);
    return seen.size();
  };
  ASSERT_TRUE(WaitFor([&] { return count() >= 2; }));
  ASSERT_OK(kv_->Put("state", "apps.b", "2").status());
  ASSERT_OK(kv_->Delete("state", "apps.a"));
  ASSERT_TRUE(WaitFor([&] { return count() >= 4; }));
  watch->Stop();
  std::lock_guard<std::mutex> lock(mu);
  EXPECT_EQ(seen, (std::vector<std::string>{"put apps.a=1", "done", "put apps.b=2", "del apps.a"}));
}

TEST_F(NatsKvStoreTest, LeaseOneWinnerAcrossProcessesAndTakeoverAfterTtl) {
  ASSERT_OK(kv_->EnsureBucket("leases", 1, absl::ZeroDuration()));
  // Two "processes": separate connections, separate stores.
  ASSERT_OK_AND_ASSIGN(auto conn_b, Connect("replica-b"));
  NatsKvStore kv_b(conn_b);
  Lease lease_a(kv_.get());
  Lease lease_b(&kv_b);

  // Race for 20 keys at once; each key must have exactly one winner.
  constexpr int kKeys = 20;
  std::vector<int> winners(kKeys, 0);
  std::mutex mu;
  auto contend = [&](Lease* lease, const std::string& holder) {
    for (int k = 0; k < kKeys; ++k) {
      auto g =
          lease->TryAcquire("leases", "sync.app" + std::to_string(k), holder, absl::Minutes(1));
      if (g.ok()) {
        std::lock_guard<std::mutex> lock(mu);
        ++winners[k];
      } else {
        EXPECT_THAT(g, StatusIs(absl::StatusCode::kAborted));
      }
    }
  };
  std::thread ta(contend, &lease_a, "a");
  std::thread tb(contend, &lease_b, "b");
  ta.join();
  tb.join();
  for (int k = 0; k < kKeys; ++k) EXPECT_EQ(winners[k], 1) << "key " << k;

  // Takeover: a holds with a short ttl and then "crashes" (never renews).
  const absl::Duration ttl = absl::Milliseconds(500);
  const absl::Time acquired = absl::Now();
  ASSERT_OK_AND_ASSIGN(LeaseGrant a, lease_a.TryAcquire("leases", "sync.takeover", "a", ttl));
  EXPECT_THAT(lease_b.TryAcquire("leases", "sync.takeover", "b", ttl),
              StatusIs(absl::StatusCode::kAborted, ::testing::HasSubstr("held by a")));
  absl::StatusOr<LeaseGrant> b;
  ASSERT_TRUE(WaitFor([&] {
    b = lease_b.TryAcquire("leases", "sync.takeover", "b", absl::Minutes(1));
    return b.ok();
  }));
  EXPECT_GE(absl::Now() - acquired, ttl);
  EXPECT_EQ(b->holder, "b");
  EXPECT_THAT(lease_a.Renew(a, ttl), StatusIs(absl::StatusCode::kAborted));
  ASSERT_OK(lease_b.Release(*b));
  ASSERT_OK(lease_a.TryAcquire("leases", "sync.takeover", "a", ttl).status());
}

std::string PseudoRandomBytes(size_t n) {
  std::string s(n, '\0');
  uint64_t x = 88172645463325252ull;
  for (auto& c : s) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    c = static_cast<char>(x);
  }
  return s;
}

TEST_F(NatsKvStoreTest, FiveMegabyteBlobRoundTripsAndCorruptionIsDetected) {
  ASSERT_OK(kv_->EnsureBucket("blobs", 1, absl::ZeroDuration()));
  BlobStore blobs(kv_.get(), "blobs");
  const std::string data = PseudoRandomBytes(5 * 1024 * 1024);
  ASSERT_GT(static_cast<int64_t>(data.size()), conn_->max_payload());
  const absl::Time start = absl::Now();
  ASSERT_OK_AND_ASSIGN(std::string digest, blobs.PutBlob(data));
  const absl::Duration put_time = absl::Now() - start;
  EXPECT_EQ(digest, "sha256:" + manifest::Sha256Hex(data));
  ASSERT_OK_AND_ASSIGN(std::string back, blobs.GetBlob(digest));
  EXPECT_TRUE(back == data);
  std::cerr << "5 MiB blob: put " << absl::FormatDuration(put_time) << "\n";

  // Idempotent: same bytes, same digest, chunks untouched.
  const std::string hex = digest.substr(7);
  ASSERT_OK_AND_ASSIGN(KvEntry chunk3, kv_->Get("blobs", BlobStore::ChunkKey(hex, 3)));
  ASSERT_OK_AND_ASSIGN(std::string again, blobs.PutBlob(data));
  EXPECT_EQ(again, digest);
  ASSERT_OK_AND_ASSIGN(KvEntry chunk3_again, kv_->Get("blobs", BlobStore::ChunkKey(hex, 3)));
  EXPECT_EQ(chunk3_again.revision, chunk3.revision);

  // Through the bus: the message carries only the digest.
  ASSERT_OK_AND_ASSIGN(std::string encoded, blobs.EncodePayload(data, 64 * 1024));
  EXPECT_LT(encoded.size(), 100u);
  ASSERT_OK_AND_ASSIGN(std::string decoded, blobs.DecodePayload(encoded));
  EXPECT_TRUE(decoded == data);

  std::string corrupted = chunk3.value;
  corrupted[100] ^= 0x01;
  ASSERT_OK(kv_->Put("blobs", BlobStore::ChunkKey(hex, 3), corrupted).status());
  EXPECT_THAT(blobs.GetBlob(digest), StatusIs(absl::StatusCode::kDataLoss));
}

}  // namespace
}  // namespace driftless::bus
