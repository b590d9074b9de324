#include "common/bus/testing/fake_kv_store.h"

#include <gtest/gtest.h>

#include <vector>

#include "common/testing/status_matchers.h"

namespace driftless::bus::testing {
namespace {

using ::driftless::testing::StatusIs;

TEST(KeyMatchesTest, Wildcards) {
  EXPECT_TRUE(KeyMatches(">", "a"));
  EXPECT_TRUE(KeyMatches(">", "a.b.c"));
  EXPECT_TRUE(KeyMatches("a.*", "a.b"));
  EXPECT_FALSE(KeyMatches("a.*", "a.b.c"));
  EXPECT_TRUE(KeyMatches("a.>", "a.b.c"));
  EXPECT_FALSE(KeyMatches("a.>", "a"));
  EXPECT_FALSE(KeyMatches("a.b", "a.c"));
}

TEST(FakeKvStoreTest, CreateUpdateDeleteSemantics) {
  FakeKvStore kv;
  EXPECT_THAT(kv.Get("b", "k"), StatusIs(absl::StatusCode::kNotFound));
  ASSERT_OK(kv.EnsureBucket("b", 1, absl::ZeroDuration()));
  ASSERT_OK_AND_ASSIGN(uint64_t r1, kv.Create("b", "k", "v1"));
  EXPECT_THAT(kv.Create("b", "k", "v2"), StatusIs(absl::StatusCode::kAlreadyExists));
  EXPECT_THAT(kv.Update("b", "k", "v2", r1 + 7), StatusIs(absl::StatusCode::kAborted));
  ASSERT_OK_AND_ASSIGN(uint64_t r2, kv.Update("b", "k", "v2", r1));
  EXPECT_GT(r2, r1);
  ASSERT_OK(kv.Delete("b", "k"));
  EXPECT_THAT(kv.Get("b", "k"), StatusIs(absl::StatusCode::kNotFound));
  ASSERT_OK(kv.Create("b", "k", "v3").status());  // allowed again after delete
  ASSERT_OK_AND_ASSIGN(auto keys, kv.Keys("b", ""));
  EXPECT_EQ(keys, std::vector<std::string>{"k"});
}

TEST(FakeKvStoreTest, WatchStartsWithCurrentValues) {
  FakeKvStore kv;
  ASSERT_OK(kv.EnsureBucket("b", 1, absl::ZeroDuration()));
  ASSERT_OK(kv.Put("b", "apps.a", "1").status());
  ASSERT_OK(kv.Put("b", "other", "x").status());
  std::vector<std::string> seen;
  ASSERT_OK_AND_ASSIGN(auto watch, kv.Watch("b", "apps.*", [&](const WatchEvent& e) {
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
  ASSERT_OK(kv.Put("b", "apps.b", "2").status());
  ASSERT_OK(kv.Delete("b", "apps.a"));
  watch->Stop();
  ASSERT_OK(kv.Put("b", "apps.c", "3").status());
  EXPECT_EQ(seen, (std::vector<std::string>{"put apps.a=1", "done", "put apps.b=2", "del apps.a"}));
}

}  // namespace
}  // namespace driftless::bus::testing
