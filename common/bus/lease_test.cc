#include "common/bus/lease.h"

#include <gtest/gtest.h>

#include "common/bus/testing/fake_kv_store.h"
#include "common/testing/status_matchers.h"

namespace driftless::bus {
namespace {

using ::driftless::testing::StatusIs;

class LeaseTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_OK(kv_.EnsureBucket("leases", 1, absl::ZeroDuration())); }
  testing::FakeKvStore kv_;
  absl::Time now_ = absl::FromUnixSeconds(1'700'000'000);
  Lease lease_{&kv_, [this] { return now_; }};
};

TEST_F(LeaseTest, OnlyOneHolderUntilExpiry) {
  ASSERT_OK_AND_ASSIGN(LeaseGrant a,
                       lease_.TryAcquire("leases", "sync.app", "a", absl::Seconds(10)));
  EXPECT_THAT(lease_.TryAcquire("leases", "sync.app", "b", absl::Seconds(10)),
              StatusIs(absl::StatusCode::kAborted, ::testing::HasSubstr("held by a")));
  ASSERT_OK_AND_ASSIGN(LeaseGrant h, lease_.Holder("leases", "sync.app"));
  EXPECT_EQ(h.holder, "a");
  now_ += absl::Seconds(11);
  EXPECT_THAT(lease_.Holder("leases", "sync.app"), StatusIs(absl::StatusCode::kNotFound));
  ASSERT_OK_AND_ASSIGN(LeaseGrant b,
                       lease_.TryAcquire("leases", "sync.app", "b", absl::Seconds(10)));
  EXPECT_EQ(b.holder, "b");
  // The old holder finds out it lost the lease.
  EXPECT_THAT(lease_.Renew(a, absl::Seconds(10)), StatusIs(absl::StatusCode::kAborted));
  EXPECT_THAT(lease_.Release(a), StatusIs(absl::StatusCode::kAborted));
  ASSERT_OK_AND_ASSIGN(h, lease_.Holder("leases", "sync.app"));
  EXPECT_EQ(h.holder, "b");
}

TEST_F(LeaseTest, RenewExtendsAndReleaseFrees) {
  ASSERT_OK_AND_ASSIGN(LeaseGrant a, lease_.TryAcquire("leases", "k", "a", absl::Seconds(10)));
  now_ += absl::Seconds(8);
  ASSERT_OK(lease_.Renew(a, absl::Seconds(10)));
  now_ += absl::Seconds(8);  // 16 s after acquiring: still held thanks to the renewal
  EXPECT_THAT(lease_.TryAcquire("leases", "k", "b", absl::Seconds(10)),
              StatusIs(absl::StatusCode::kAborted));
  ASSERT_OK(lease_.Release(a));
  EXPECT_THAT(lease_.Holder("leases", "k"), StatusIs(absl::StatusCode::kNotFound));
  ASSERT_OK_AND_ASSIGN(LeaseGrant b, lease_.TryAcquire("leases", "k", "b", absl::Seconds(10)));
  EXPECT_EQ(b.holder, "b");
}

TEST_F(LeaseTest, SameHolderReacquires) {
  ASSERT_OK_AND_ASSIGN(LeaseGrant a1, lease_.TryAcquire("leases", "k", "a", absl::Seconds(10)));
  ASSERT_OK_AND_ASSIGN(LeaseGrant a2, lease_.TryAcquire("leases", "k", "a", absl::Seconds(10)));
  EXPECT_GT(a2.revision, a1.revision);
}

TEST_F(LeaseTest, RejectsBadArguments) {
  EXPECT_THAT(lease_.TryAcquire("leases", "k", "a", absl::ZeroDuration()),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(lease_.TryAcquire("leases", "k", "", absl::Seconds(1)),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(lease_.TryAcquire("nobucket", "k", "a", absl::Seconds(1)),
              StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(LeaseTest, StoreOutageIsReportedNotMistakenForContention) {
  kv_.FailAllForTest(absl::UnavailableError("down"));
  EXPECT_THAT(lease_.TryAcquire("leases", "k", "a", absl::Seconds(1)),
              StatusIs(absl::StatusCode::kUnavailable));
}

// The keeper renews in the background and fences: Check refuses a write that could outlive
// the lease, and everything once another holder took it over.
TEST(LeaseKeeperTest, ChecksValidityAndNoticesATakeover) {
  testing::FakeKvStore kv;
  ASSERT_OK(kv.EnsureBucket("leases", 1, absl::ZeroDuration()));
  Lease lease(&kv);
  ASSERT_OK_AND_ASSIGN(LeaseGrant g,
                       lease.TryAcquire("leases", "sync.app", "w0", absl::Milliseconds(300)));
  {
    LeaseKeeper keeper(&lease, g, absl::Milliseconds(300));
    EXPECT_OK(keeper.Check(absl::Milliseconds(50)));
    // A request that may take longer than the lease has left must not start.
    EXPECT_THAT(keeper.Check(absl::Seconds(1)),
                StatusIs(absl::StatusCode::kAborted, ::testing::HasSubstr("may run out")));
    // Renewed in the background: still valid after several ttls.
    absl::SleepFor(absl::Milliseconds(700));
    EXPECT_OK(keeper.Check(absl::Milliseconds(50)));
    // Someone else writes the lease (a takeover): the next renewal finds out, for good.
    ASSERT_OK(kv.Put("leases", "sync.app", "99999999999999 other").status());
    const absl::Time deadline = absl::Now() + absl::Seconds(5);
    while (!keeper.lost() && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(20));
    EXPECT_TRUE(keeper.lost());
    EXPECT_THAT(keeper.Check(absl::ZeroDuration()),
                StatusIs(absl::StatusCode::kAborted, ::testing::HasSubstr("taken over")));
  }
  // A lost lease is not released by the keeper: the other holder keeps it.
  ASSERT_OK_AND_ASSIGN(LeaseGrant h, lease.Holder("leases", "sync.app"));
  EXPECT_EQ(h.holder, "other");
}

TEST(LeaseKeeperTest, ReleasesOnDestruction) {
  testing::FakeKvStore kv;
  ASSERT_OK(kv.EnsureBucket("leases", 1, absl::ZeroDuration()));
  Lease lease(&kv);
  ASSERT_OK_AND_ASSIGN(LeaseGrant g, lease.TryAcquire("leases", "k", "w0", absl::Seconds(30)));
  { LeaseKeeper keeper(&lease, g, absl::Seconds(30)); }
  EXPECT_THAT(lease.Holder("leases", "k"), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_OK(lease.TryAcquire("leases", "k", "w1", absl::Seconds(30)).status());
}

}  // namespace
}  // namespace driftless::bus
