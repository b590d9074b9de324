#include "services/common/identity.h"

#include <gtest/gtest.h>

#include "common/testing/status_matchers.h"

namespace driftless::service {
namespace {

using ::driftless::testing::StatusIs;

TEST(Identity, RoundTripsThroughTheEnvelope) {
  v1::Event e;
  SetIdentity(e, {.uid = "0123456789abcdef", .seq = 7, .attempt = 2});
  EXPECT_EQ(e.schema_version(), kSchemaVersion);
  const SyncIdentity id = IdentityOf(e);
  EXPECT_EQ(id, (SyncIdentity{"0123456789abcdef", 7, 2}));
  EXPECT_EQ(SyncIdOf(id), "s-01234567-7-2");
  EXPECT_EQ(IdentityEventId("plan.ready", "web", id), "plan.ready/web/01234567-7-2");
}

// v1 items in flight at an upgrade are converted to "no identity"; unknown versions refused.
TEST(Identity, VersionOneIsConvertedUnknownIsRefused) {
  v1::Event old;
  old.set_type("plan.ready");
  old.set_application("web");
  old.set_desired_seq(9);  // ignored without schema_version 2
  EXPECT_FALSE(IdentityOf(old).known());
  EXPECT_OK(CheckSchema(old));
  old.set_schema_version(3);
  EXPECT_THAT(CheckSchema(old), StatusIs(absl::StatusCode::kInvalidArgument,
                                         ::testing::HasSubstr("application web")));
}

TEST(Identity, OlderThanStatusComparesWithinOneIncarnation) {
  v1::AppStatus status;
  status.set_application_uid("u1");
  status.set_desired_seq(5);
  status.set_attempt(2);
  EXPECT_TRUE(OlderThanStatus({"u1", 4, 9}, status));
  EXPECT_TRUE(OlderThanStatus({"u1", 5, 1}, status));
  EXPECT_FALSE(OlderThanStatus({"u1", 5, 2}, status));
  EXPECT_FALSE(OlderThanStatus({"u1", 6, 1}, status));
  EXPECT_FALSE(OlderThanStatus({"u2", 1, 1}, status));  // another incarnation: not ordered
  EXPECT_FALSE(OlderThanStatus({}, status));            // unidentified
}

TEST(Identity, SupersededByStatusAlsoCountsTheAppliedWatermark) {
  v1::AppStatus status;
  status.set_application_uid("u1");
  status.set_desired_seq(5);
  status.set_attempt(1);
  status.set_applied_seq(7);  // a later generation found nothing to do
  EXPECT_TRUE(SupersededByStatus({"u1", 4, 1}, status));
  EXPECT_TRUE(SupersededByStatus({"u1", 7, 1}, status));
  EXPECT_FALSE(SupersededByStatus({"u1", 8, 1}, status));
  EXPECT_FALSE(SupersededByStatus({"u2", 1, 1}, status));
  EXPECT_FALSE(SupersededByStatus({}, status));
}

}  // namespace
}  // namespace driftless::service
