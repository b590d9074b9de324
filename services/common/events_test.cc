#include "services/common/events.h"

#include <gtest/gtest.h>

#include "common/bus/testing/fake_kv_store.h"
#include "common/testing/status_matchers.h"
#include "services/common/topology.h"

namespace driftless::service {
namespace {

using ::driftless::testing::StatusIs;

TEST(EventsTest, IdsAndEnvelope) {
  EXPECT_EQ(EventId("app.rendered", "guestbook", "abc", "sha256:1"),
            "app.rendered/guestbook/abc/sha256:1");
  EXPECT_EQ(EventId("source.changed", "", "", "", "x"), "source.changed/-/-/-/x");
  v1::Event e = NewEvent("app.rendered", "guestbook", "0123456789", "renderer/r1");
  EXPECT_EQ(e.type(), "app.rendered");
  EXPECT_GT(e.time().seconds(), 1700000000);
  EXPECT_EQ(Describe(e), "app.rendered guestbook@0123456");
  std::string data;
  ASSERT_TRUE(e.SerializeToString(&data));
  ASSERT_OK_AND_ASSIGN(v1::Event back, DecodeEvent(data));
  EXPECT_EQ(back.application(), "guestbook");
  EXPECT_THAT(DecodeEvent("not a protobuf at all").status(),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(WorkSubject(kStageRender), "driftless.work.render");
  EXPECT_EQ(EventSubject("sync.failed"), "driftless.events.sync.failed");
}

TEST(EventsTest, SmallManifestsInlineLargeOnesByDigest) {
  bus::testing::FakeKvStore kv;
  ASSERT_OK(kv.EnsureBucket(kBlobsBucket, 1, absl::ZeroDuration()));
  bus::BlobStore blobs(&kv, kBlobsBucket);
  manifest::Json small = manifest::Json::array({{{"kind", "ConfigMap"}}});
  ASSERT_OK_AND_ASSIGN(auto p1, EncodeManifests(blobs, small));
  EXPECT_EQ(p1.location_case(), v1::ManifestPayload::kInlineJson);
  EXPECT_EQ(p1.object_count(), 1);
  ASSERT_OK_AND_ASSIGN(auto back1, DecodeManifests(blobs, p1));
  EXPECT_EQ(back1, small);

  // 5 MB of manifests: stored by digest, never inline.
  manifest::Json big = manifest::Json::array();
  for (int i = 0; i < 500; ++i) {
    big.push_back({{"kind", "ConfigMap"},
                   {"metadata", {{"name", "cm-" + std::to_string(i)}}},
                   {"data", {{"blob", std::string(10000, 'x')}}}});
  }
  ASSERT_OK_AND_ASSIGN(auto p2, EncodeManifests(blobs, big));
  EXPECT_EQ(p2.location_case(), v1::ManifestPayload::kBlobDigest);
  EXPECT_GT(p2.size_bytes(), 5000000);
  std::string wire;
  ASSERT_TRUE(p2.SerializeToString(&wire));
  EXPECT_LT(wire.size(), 200u);
  ASSERT_OK_AND_ASSIGN(auto back2, DecodeManifests(blobs, p2));
  EXPECT_EQ(back2, big);
}

TEST(RetryDelayTest, DoublesPerDeliveryWithJitterAndACap) {
  bus::Message m;
  for (uint64_t delivery : {1u, 2u, 3u, 10u}) {
    m.delivery_count = delivery;
    const absl::Duration expected =
        std::min(absl::Seconds(30), absl::Seconds(1) * (1 << (std::min<uint64_t>(delivery, 7) - 1)));
    for (int i = 0; i < 20; ++i) {
      const absl::Duration d = RetryDelay(m);
      EXPECT_GE(d, expected * 0.8) << delivery;
      EXPECT_LE(d, expected * 1.2) << delivery;
    }
  }
}

TEST(TimestampTest, RoundTripsOneInstant) {
  const absl::Time t = absl::FromUnixNanos(1'700'000'000'123'456'789);
  google::protobuf::Timestamp ts;
  SetTimestamp(&ts, t);
  EXPECT_EQ(ts.seconds(), 1'700'000'000);
  EXPECT_EQ(ts.nanos(), 123'456'789);
  EXPECT_EQ(TimeOf(ts), t);
  google::protobuf::Duration d;
  SetDuration(&d, absl::Milliseconds(2500));
  EXPECT_EQ(d.seconds(), 2);
  EXPECT_EQ(d.nanos(), 500'000'000);
}

}  // namespace
}  // namespace driftless::service
