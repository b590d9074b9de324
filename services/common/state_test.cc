#include "services/common/state.h"

#include <gtest/gtest.h>

#include "common/bus/testing/fake_kv_store.h"
#include "common/testing/status_matchers.h"
#include "services/common/topology.h"

namespace driftless::service {
namespace {

using ::driftless::testing::StatusIs;

class StateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* b : {kResourcesBucket, kStatusBucket, kHistoryBucket, kSourcesBucket,
                          kPendingBucket, kReadSetsBucket, kRenderInputsBucket}) {
      ASSERT_OK(kv_.EnsureBucket(b, 1, absl::ZeroDuration()));
    }
  }
  bus::testing::FakeKvStore kv_;
};

manifest::Json App(std::string path) {
  return {{"apiVersion", "driftless.dev/v1alpha1"},
          {"kind", "Application"},
          {"metadata", {{"name", "guestbook"}}},
          {"spec", {{"source", {{"repoURL", "file:///r"}, {"path", path}}}}}};
}

TEST_F(StateTest, PutCreatesThenUnchangedThenConfiguredWithGenerationBump) {
  ResourceStore store(&kv_);
  ASSERT_OK_AND_ASSIGN(auto r1, store.Put(App("a")));
  EXPECT_EQ(r1, ResourceStore::PutResult::kCreated);
  ASSERT_OK_AND_ASSIGN(auto r2, store.Put(App("a")));
  EXPECT_EQ(r2, ResourceStore::PutResult::kUnchanged);
  ASSERT_OK_AND_ASSIGN(auto got1, store.Get("Application", "guestbook"));
  EXPECT_EQ(got1.generation, 1);
  ASSERT_OK_AND_ASSIGN(auto r3, store.Put(App("b")));
  EXPECT_EQ(r3, ResourceStore::PutResult::kConfigured);
  ASSERT_OK_AND_ASSIGN(auto got2, store.Get("Application", "guestbook"));
  EXPECT_EQ(got2.generation, 2);
  EXPECT_EQ(got2.object["metadata"]["generation"], 2);
  EXPECT_NE(got1.spec_digest, got2.spec_digest);
  // A label change configures without bumping the generation (the spec did not change).
  manifest::Json labelled = App("b");
  labelled["metadata"]["labels"] = {{"team", "web"}};
  ASSERT_OK_AND_ASSIGN(auto r4, store.Put(labelled));
  EXPECT_EQ(r4, ResourceStore::PutResult::kConfigured);
  ASSERT_OK_AND_ASSIGN(auto got3, store.Get("Application", "guestbook"));
  EXPECT_EQ(got3.generation, 2);
  ASSERT_OK_AND_ASSIGN(auto all, store.List("Application"));
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].name, "guestbook");
  ASSERT_OK(store.Delete("Application", "guestbook"));
  EXPECT_THAT(store.Get("Application", "guestbook").status(),
              StatusIs(absl::StatusCode::kNotFound));
}

// Regression: an application deleted and re-created with the same spec got the same spec
// digest, so every event id and automated sync id matched its predecessor's and the pipeline
// dropped the new incarnation's work as duplicates.
TEST_F(StateTest, EachIncarnationHasItsOwnUidAndSpecDigest) {
  ResourceStore store(&kv_);
  ASSERT_OK(store.Put(App("a")).status());
  ASSERT_OK_AND_ASSIGN(auto first, store.Get("Application", "guestbook"));
  const std::string uid = first.object["metadata"].value("uid", "");
  EXPECT_EQ(uid.size(), 36u) << uid;
  // Re-applying what `get -o yaml` printed (uid and generation included) changes nothing.
  ASSERT_OK_AND_ASSIGN(auto again, store.Put(first.object));
  EXPECT_EQ(again, ResourceStore::PutResult::kUnchanged);
  manifest::Json labelled = App("a");
  labelled["metadata"]["labels"] = {{"team", "web"}};
  ASSERT_OK(store.Put(labelled).status());
  ASSERT_OK_AND_ASSIGN(auto updated, store.Get("Application", "guestbook"));
  EXPECT_EQ(updated.object["metadata"]["uid"], uid);
  EXPECT_EQ(updated.spec_digest, first.spec_digest);

  ASSERT_OK(store.Delete("Application", "guestbook"));
  ASSERT_OK(store.Put(App("a")).status());
  ASSERT_OK_AND_ASSIGN(auto reborn, store.Get("Application", "guestbook"));
  EXPECT_NE(reborn.object["metadata"]["uid"], uid);
  EXPECT_NE(reborn.spec_digest, first.spec_digest);
  EXPECT_EQ(reborn.generation, 1);
}

// Hand-edited or foreign records: wrong types and non-objects are errors (or skipped in a
// listing), never an exception out of a service.
TEST_F(StateTest, MalformedRecordsAreDataLossNotExceptions) {
  ResourceStore store(&kv_);
  ASSERT_OK(store.Put(App("a")).status());
  ASSERT_OK(kv_.Put(kResourcesBucket, "Application.broken", "[1, 2]").status());
  ASSERT_OK(kv_.Put(kResourcesBucket, "Application.typed",
                    R"({"object": {"kind": "Application", "metadata": {"name": "typed"}},
                        "generation": "3", "specDigest": 7})")
                .status());
  EXPECT_THAT(store.Get("Application", "broken").status(), StatusIs(absl::StatusCode::kDataLoss));
  ASSERT_OK_AND_ASSIGN(auto typed, store.Get("Application", "typed"));
  EXPECT_EQ(typed.generation, 0);
  EXPECT_EQ(typed.spec_digest, "");
  ASSERT_OK_AND_ASSIGN(auto all, store.List("Application"));
  EXPECT_EQ(all.size(), 2u);  // guestbook and typed; broken skipped
  ASSERT_OK(kv_.Put(kSourcesBucket, StatusKey("x"), "[]").status());
  EXPECT_THAT(SourceStore(&kv_).Get("x").status(), StatusIs(absl::StatusCode::kDataLoss));
  ASSERT_OK(
      kv_.Put(kHistoryBucket, "app.x.s1", R"({"succeeded": "yes", "objectCount": []})").status());
  ASSERT_OK_AND_ASSIGN(auto h, HistoryStore(&kv_).Get("x", "s1"));
  EXPECT_FALSE(h.succeeded);
}

TEST_F(StateTest, StatusUpdateIsReadModifyWrite) {
  StatusStore statuses(&kv_);
  ASSERT_OK_AND_ASSIGN(auto initial, statuses.Get("guestbook"));
  EXPECT_EQ(initial.sync(), v1::SYNC_STATUS_CODE_UNKNOWN);
  ASSERT_OK(statuses
                .Update("guestbook",
                        [](v1::AppStatus& s) {
                          s.set_sync(v1::SYNC_STATUS_CODE_SYNCED);
                          SetCondition(s, "Ready", true, "Synced", "applied abc");
                          return true;
                        })
                .status());
  ASSERT_OK(statuses
                .Update("guestbook",
                        [](v1::AppStatus& s) {
                          s.set_health(v1::HEALTH_STATUS_CODE_HEALTHY);
                          return true;
                        })
                .status());
  ASSERT_OK_AND_ASSIGN(auto got, statuses.Get("guestbook"));
  EXPECT_EQ(got.sync(), v1::SYNC_STATUS_CODE_SYNCED);
  EXPECT_EQ(got.health(), v1::HEALTH_STATUS_CODE_HEALTHY);
  const v1::Condition* ready = FindCondition(got, "Ready");
  ASSERT_NE(ready, nullptr);
  EXPECT_TRUE(ready->status());
  EXPECT_EQ(ready->message(), "applied abc");
  // Returning false leaves the entry as it is.
  ASSERT_OK(statuses
                .Update("guestbook",
                        [](v1::AppStatus& s) {
                          s.set_sync(v1::SYNC_STATUS_CODE_OUT_OF_SYNC);
                          return false;
                        })
                .status());
  ASSERT_OK_AND_ASSIGN(auto same, statuses.Get("guestbook"));
  EXPECT_EQ(same.sync(), v1::SYNC_STATUS_CODE_SYNCED);
}

TEST_F(StateTest, HistoryAndSources) {
  HistoryStore history(&kv_);
  EXPECT_THAT(history.Get("guestbook", "s1").status(), StatusIs(absl::StatusCode::kNotFound));
  ASSERT_OK(history.Record("guestbook", {.sync_id = "s1",
                                         .revision = "abc",
                                         .succeeded = true,
                                         .finished_at = "2026-01-01T00:00:00Z"}));
  ASSERT_OK(history.Record("guestbook", {.sync_id = "s2",
                                         .revision = "def",
                                         .succeeded = false,
                                         .finished_at = "2026-01-01T00:00:01Z"}));
  ASSERT_OK_AND_ASSIGN(auto s1, history.Get("guestbook", "s1"));
  EXPECT_EQ(s1.revision, "abc");
  EXPECT_TRUE(s1.succeeded);
  ASSERT_OK_AND_ASSIGN(auto all, history.List("guestbook"));
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[1].sync_id, "s2");

  SourceStore sources(&kv_);
  ASSERT_OK_AND_ASSIGN(auto none, sources.Get("guestbook"));
  EXPECT_FALSE(none.has_value());
  ASSERT_OK(sources.Put("guestbook", {.revision = "abc", .spec_digest = "sha256:1"}));
  ASSERT_OK_AND_ASSIGN(auto some, sources.Get("guestbook"));
  ASSERT_TRUE(some.has_value());
  EXPECT_EQ(some->revision, "abc");
}

TEST_F(StateTest, SourceRecordWriteIsCompareAndSet) {
  SourceStore sources(&kv_);
  SourceRecord r{.revision = "abc", .uid = "u1", .desired_seq = 1, .reason = "created"};
  ASSERT_OK_AND_ASSIGN(uint64_t rev, sources.Write("guestbook", r, 0));
  EXPECT_THAT(sources.Write("guestbook", r, 0), StatusIs(absl::StatusCode::kAborted));
  r.desired_seq = 2;
  r.emitted = false;
  r.request = std::string("\x0a\x01x", 3);  // binary survives the JSON record
  ASSERT_OK(sources.Write("guestbook", r, rev).status());
  EXPECT_THAT(sources.Write("guestbook", r, rev), StatusIs(absl::StatusCode::kAborted));
  ASSERT_OK_AND_ASSIGN(std::optional<SourceRecord> got, sources.Get("guestbook"));
  ASSERT_TRUE(got);
  EXPECT_EQ(got->desired_seq, 2);
  EXPECT_EQ(got->uid, "u1");
  EXPECT_FALSE(got->emitted);
  EXPECT_EQ(got->request, std::string("\x0a\x01x", 3));
  EXPECT_EQ(got->target_revision, "");
}

TEST_F(StateTest, PendingKeepsTheNewestPlan) {
  PendingStore pending(&kv_);
  auto plan = [](int64_t seq) {
    v1::Event e;
    e.set_type("plan.ready");
    e.set_application("guestbook");
    e.set_schema_version(2);
    e.set_application_uid("u1");
    e.set_desired_seq(seq);
    e.set_attempt(1);
    return e;
  };
  ASSERT_OK(pending.Offer(plan(5)));
  ASSERT_OK(pending.Offer(plan(3)));  // older: coalesced into 5
  ASSERT_OK_AND_ASSIGN(auto got, pending.Get("guestbook"));
  ASSERT_TRUE(got);
  EXPECT_EQ(got->first.desired_seq(), 5);
  ASSERT_OK(pending.Offer(plan(7)));
  EXPECT_THAT(pending.Take("guestbook", got->second), StatusIs(absl::StatusCode::kAborted));
  ASSERT_OK_AND_ASSIGN(got, pending.Get("guestbook"));
  EXPECT_EQ(got->first.desired_seq(), 7);
  ASSERT_OK(pending.Take("guestbook", got->second));
  ASSERT_OK_AND_ASSIGN(got, pending.Get("guestbook"));
  EXPECT_FALSE(got);
}

TEST_F(StateTest, LateWriterDoesNotRecreateTheStatusOfADeletedApplication) {
  ResourceStore resources(&kv_);
  ASSERT_OK(resources.Put(App("apps/a")).status());
  ASSERT_OK_AND_ASSIGN(StoredResource stored, resources.Get("Application", "guestbook"));
  StatusStore statuses(&kv_);
  ASSERT_OK(statuses
                .Update(
                    "guestbook", [](v1::AppStatus&) { return true; }, stored.uid)
                .status());
  ASSERT_OK(resources.Delete("Application", "guestbook"));
  ASSERT_OK(statuses.Delete("guestbook"));
  EXPECT_THAT(statuses.Update(
                  "guestbook", [](v1::AppStatus&) { return true; }, stored.uid),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(kv_.Get(kStatusBucket, StatusKey("guestbook")),
              StatusIs(absl::StatusCode::kNotFound));
  // Re-created: a writer of the old incarnation is refused, the new one writes.
  ASSERT_OK(resources.Put(App("apps/a")).status());
  ASSERT_OK_AND_ASSIGN(StoredResource again, resources.Get("Application", "guestbook"));
  ASSERT_OK(statuses
                .Update(
                    "guestbook", [](v1::AppStatus&) { return true; }, again.uid)
                .status());
  EXPECT_THAT(statuses.Update(
                  "guestbook", [](v1::AppStatus&) { return true; }, stored.uid),
              StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(StateTest, HistoryIsBounded) {
  HistoryStore history(&kv_, 3);
  for (int i = 0; i < 5; ++i) {
    ASSERT_OK(history.Record("guestbook",
                             {.sync_id = "s" + std::to_string(i),
                              .desired_seq = i + 1,
                              .finished_at = "2026-01-01T00:00:0" + std::to_string(i) + "Z"}));
  }
  ASSERT_OK_AND_ASSIGN(std::vector<HistoryEntry> all, history.List("guestbook"));
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all.front().sync_id, "s2");
  EXPECT_EQ(all.back().desired_seq, 5);
  ASSERT_OK(history.DeleteAll("guestbook"));
  ASSERT_OK_AND_ASSIGN(all, history.List("guestbook"));
  EXPECT_TRUE(all.empty());
}

// Upgrading loses no history: a record written by a v1 applier (content-hash sync id, no seq
// or attempt) is read in place, listed with the v2 records in time order, and counts towards
// the bound like any other.
TEST_F(StateTest, HistoryOfAV1ApplierIsReadInPlace) {
  ASSERT_OK(kv_.Put(kHistoryBucket, "app.guestbook.auto-0123456789abcdef",
                    R"({"syncId":"auto-0123456789abcdef","revision":"abc123","specDigest":"d1",)"
                    R"("succeeded":true,"message":"sync of guestbook succeeded",)"
                    R"("initiatedBy":"automated","startedAt":"2026-01-01T00:00:00Z",)"
                    R"("finishedAt":"2026-01-01T00:00:01Z","objectCount":3})")
                .status());
  HistoryStore history(&kv_, 2);
  ASSERT_OK(history.Record(
      "guestbook",
      {.sync_id = "s-1", .desired_seq = 1, .attempt = 1, .finished_at = "2026-01-02T00:00:00Z"}));
  ASSERT_OK_AND_ASSIGN(std::vector<HistoryEntry> all, history.List("guestbook"));
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].sync_id, "auto-0123456789abcdef");
  EXPECT_EQ(all[0].desired_seq, 0);
  EXPECT_EQ(all[0].revision, "abc123");
  EXPECT_TRUE(all[0].succeeded);
  EXPECT_EQ(all[0].object_count, 3);
  EXPECT_EQ(all[1].desired_seq, 1);
  ASSERT_OK(history.Record(
      "guestbook",
      {.sync_id = "s-2", .desired_seq = 2, .attempt = 1, .finished_at = "2026-01-03T00:00:00Z"}));
  ASSERT_OK_AND_ASSIGN(all, history.List("guestbook"));
  ASSERT_EQ(all.size(), 2u);  // the oldest (the v1 record) trimmed first
  EXPECT_EQ(all[0].sync_id, "s-1");
}

TEST_F(StateTest, DeletingResourceRefusesPutAndFinalizesOnlyItsIncarnation) {
  ResourceStore resources(&kv_);
  ASSERT_OK(resources
                .Put(manifest::Json::parse(
                    R"({"apiVersion":"driftless.dev/v1alpha1","kind":"Application",)"
                    R"("metadata":{"name":"a"},"spec":{"x":1}})"))
                .status());
  ASSERT_OK_AND_ASSIGN(StoredResource stored, resources.Get("Application", "a"));
  ASSERT_OK(StatusStore(&kv_).Update("a", [](v1::AppStatus&) { return true; }).status());
  ASSERT_OK_AND_ASSIGN(StoredResource marked,
                       resources.MarkDeleting("Application", "a", absl::FromUnixSeconds(1)));
  EXPECT_TRUE(IsDeleting(marked));
  EXPECT_EQ(marked.object["metadata"]["deletionTimestamp"], "1970-01-01T00:00:01Z");
  EXPECT_EQ(marked.generation, stored.generation);
  EXPECT_EQ(marked.spec_digest, stored.spec_digest);
  // Marking again keeps the first timestamp.
  ASSERT_OK_AND_ASSIGN(marked, resources.MarkDeleting("Application", "a", absl::Now()));
  EXPECT_EQ(marked.object["metadata"]["deletionTimestamp"], "1970-01-01T00:00:01Z");
  EXPECT_THAT(resources.Put(stored.object).status(),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  // Another incarnation's finalizer leaves it alone; its own removes it and its records.
  ASSERT_OK(FinalizeDeletion(&kv_, "a", "some-other-uid"));
  ASSERT_OK(resources.Get("Application", "a").status());
  ASSERT_OK(FinalizeDeletion(&kv_, "a", stored.uid));
  EXPECT_THAT(resources.Get("Application", "a").status(), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(kv_.Get(kStatusBucket, StatusKey("a")).status(),
              StatusIs(absl::StatusCode::kNotFound));
  ASSERT_OK(FinalizeDeletion(&kv_, "a", stored.uid));  // idempotent
}

}  // namespace
}  // namespace driftless::service