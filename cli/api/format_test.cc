#include "cli/api/format.h"

#include <gtest/gtest.h>

#include "cli/api/client.h"
#include "common/testing/status_matchers.h"

namespace driftless::cli {
namespace {

using ::testing::HasSubstr;

v1::Application App(const std::string& name, v1::SyncStatusCode sync, v1::HealthStatusCode health,
                    const std::string& applied = "") {
  v1::Application app;
  app.mutable_resource()->set_kind("Application");
  app.mutable_resource()->set_name(name);
  app.mutable_resource()->set_generation(1);
  app.mutable_resource()->set_json(
      R"({"apiVersion":"driftless.dev/v1alpha1","kind":"Application","metadata":{"name":")" + name +
      R"(","generation":1},"spec":{"project":"default","source":{"repoURL":"file:///r","path":"p","ref":{"branch":"main"}},"destination":{"cluster":"in-cluster","namespace":"ns"}}})");
  app.mutable_status()->set_sync(sync);
  app.mutable_status()->set_health(health);
  app.mutable_status()->set_last_applied_revision(applied);
  return app;
}

TEST(FormatTest, StatusNames) {
  EXPECT_EQ(SyncName(v1::SYNC_STATUS_CODE_SYNCED), "Synced");
  EXPECT_EQ(SyncName(v1::SYNC_STATUS_CODE_OUT_OF_SYNC), "OutOfSync");
  EXPECT_EQ(SyncName(v1::SYNC_STATUS_CODE_UNSPECIFIED), "Unknown");
  EXPECT_EQ(HealthName(v1::HEALTH_STATUS_CODE_HEALTHY), "Healthy");
  EXPECT_EQ(HealthName(v1::HEALTH_STATUS_CODE_DEGRADED), "Degraded");
  EXPECT_EQ(HealthName(v1::HEALTH_STATUS_CODE_MISSING), "Missing");
  EXPECT_EQ(HealthName(v1::HEALTH_STATUS_CODE_UNSPECIFIED), "Unknown");
}

TEST(FormatTest, ApplyLineLowerCasesTheKind) {
  v1::ApplyResult r;
  r.set_kind("NotificationProvider");
  r.set_name("slack");
  r.set_action("configured");
  EXPECT_EQ(ApplyLine(r), "notificationprovider.driftless.dev/slack configured");
}

TEST(FormatTest, AppsTableAlignsColumnsAndShortensRevisions) {
  std::string table =
      AppsTable({App("guestbook", v1::SYNC_STATUS_CODE_SYNCED, v1::HEALTH_STATUS_CODE_HEALTHY,
                     "1a2b3c4d5e6f"),
                 App("db", v1::SYNC_STATUS_CODE_OUT_OF_SYNC, v1::HEALTH_STATUS_CODE_PROGRESSING)});
  EXPECT_EQ(table,
            "NAME        SYNC        HEALTH        REVISION   MESSAGE\n"
            "guestbook   Synced      Healthy       1a2b3c4\n"
            "db          OutOfSync   Progressing\n");
}

TEST(FormatTest, ApplicationJsonHasTheDocumentAndNamedStatusCodes) {
  v1::Application app =
      App("guestbook", v1::SYNC_STATUS_CODE_SYNCED, v1::HEALTH_STATUS_CODE_HEALTHY, "abc");
  v1::ResourceStatus* r = app.mutable_status()->add_resources();
  r->mutable_ref()->set_kind("Deployment");
  r->mutable_ref()->set_name("web");
  r->set_health(v1::HEALTH_STATUS_CODE_DEGRADED);
  ASSERT_OK_AND_ASSIGN(manifest::Json json, ApplicationJson(app));
  EXPECT_EQ(json["kind"], "Application");
  EXPECT_EQ(json["metadata"]["name"], "guestbook");
  EXPECT_EQ(json["spec"]["source"]["path"], "p");
  EXPECT_EQ(json["status"]["sync"], "Synced");
  EXPECT_EQ(json["status"]["health"], "Healthy");
  EXPECT_EQ(json["status"]["lastAppliedRevision"], "abc");
  EXPECT_EQ(json["status"]["resources"][0]["health"], "Degraded");
  EXPECT_EQ(json["status"]["resources"][0]["sync"], "Unknown");

  v1::Application broken = app;
  broken.mutable_resource()->set_json("not json");
  EXPECT_THAT(ApplicationJson(broken).status(),
              testing::StatusIs(absl::StatusCode::kInvalidArgument));
  ASSERT_OK_AND_ASSIGN(manifest::Json list, ApplicationListJson({app, app}));
  EXPECT_EQ(list["kind"], "List");
  EXPECT_EQ(list["items"].size(), 2u);
}

TEST(FormatTest, DescribeShowsStatusConditionsAndObjects) {
  v1::Application app =
      App("guestbook", v1::SYNC_STATUS_CODE_OUT_OF_SYNC, v1::HEALTH_STATUS_CODE_DEGRADED);
  app.mutable_status()->set_message("apply failed");
  v1::Condition* c = app.mutable_status()->add_conditions();
  c->set_type("Stalled");
  c->set_status(true);
  c->set_reason("RenderError");
  c->set_message("kustomization.yaml line 3: bad");
  v1::ResourceStatus* r = app.mutable_status()->add_resources();
  r->mutable_ref()->set_group("apps");
  r->mutable_ref()->set_kind("Deployment");
  r->mutable_ref()->set_namespace_("ns");
  r->mutable_ref()->set_name("web");
  r->set_sync(v1::SYNC_STATUS_CODE_SYNCED);
  r->set_health(v1::HEALTH_STATUS_CODE_PROGRESSING);
  std::string text = DescribeApplication(app);
  EXPECT_THAT(text, HasSubstr("Name:"));
  EXPECT_THAT(text, HasSubstr("file:///r path p branch main"));
  EXPECT_THAT(text, HasSubstr("in-cluster namespace ns"));
  EXPECT_THAT(text, HasSubstr("OutOfSync"));
  EXPECT_THAT(text, HasSubstr("Degraded"));
  EXPECT_THAT(text, HasSubstr("apply failed"));
  EXPECT_THAT(text, HasSubstr("Stalled"));
  EXPECT_THAT(text, HasSubstr("RenderError"));
  EXPECT_THAT(text, HasSubstr("Deployment.apps ns/web"));
  EXPECT_THAT(text, HasSubstr("Progressing"));
}

TEST(FormatTest, WaitConditions) {
  v1::Application app =
      App("guestbook", v1::SYNC_STATUS_CODE_SYNCED, v1::HEALTH_STATUS_CODE_PROGRESSING, "abcdef1");
  EXPECT_TRUE(WaitSatisfied(app, {}));
  EXPECT_TRUE(WaitSatisfied(app, {.synced = true}));
  EXPECT_FALSE(WaitSatisfied(app, {.synced = true, .healthy = true}));
  EXPECT_TRUE(WaitSatisfied(app, {.synced = true, .for_revision = "abcd"}));
  EXPECT_FALSE(WaitSatisfied(app, {.synced = true, .for_revision = "1234"}));

  // Synced at an older generation does not count.
  app.mutable_status()->set_observed_generation(1);
  app.mutable_resource()->set_generation(2);
  EXPECT_FALSE(WaitSatisfied(app, {.synced = true}));
  app.mutable_status()->set_observed_generation(2);
  EXPECT_TRUE(WaitSatisfied(app, {.synced = true}));

  // A revision was attempted but nothing applied yet.
  app.mutable_status()->set_last_applied_revision("");
  app.mutable_status()->set_last_attempted_revision("fff");
  EXPECT_FALSE(WaitSatisfied(app, {.synced = true}));

  std::string summary = WaitSummary(app);
  EXPECT_THAT(summary, HasSubstr("Synced"));
  EXPECT_THAT(summary, HasSubstr("Progressing"));
  EXPECT_THAT(summary, HasSubstr("fff"));
}

TEST(FormatTest, ParseObjectRef) {
  ASSERT_OK_AND_ASSIGN(v1::ObjectRef a, ParseObjectRef("ConfigMap/settings"));
  EXPECT_EQ(a.kind(), "ConfigMap");
  EXPECT_EQ(a.group(), "");
  EXPECT_EQ(a.namespace_(), "");
  EXPECT_EQ(a.name(), "settings");
  ASSERT_OK_AND_ASSIGN(v1::ObjectRef b, ParseObjectRef("Deployment.apps/web/frontend"));
  EXPECT_EQ(b.kind(), "Deployment");
  EXPECT_EQ(b.group(), "apps");
  EXPECT_EQ(b.namespace_(), "web");
  EXPECT_EQ(b.name(), "frontend");
  for (const char* bad : {"", "web", "a//b", "a/b/c/d", "Kind/"}) {
    EXPECT_THAT(ParseObjectRef(bad).status(),
                testing::StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("KIND/NAME")))
        << bad;
  }
}

TEST(FormatTest, EventLines) {
  v1::Event e;
  e.set_type("sync.requested");
  e.set_application("guestbook");
  e.set_revision("0123456789abcdef");
  e.set_message("sync of guestbook\nrequested");
  e.mutable_time()->set_seconds(1795860000);  // 2026-11-28T10:00:00Z
  EXPECT_EQ(
      EventLine(e),
      "2026-11-28T10:00:00Z  sync.requested  guestbook  0123456  sync of guestbook requested");
  manifest::Json json = manifest::Json::parse(EventJsonLine(e));
  EXPECT_EQ(json["type"], "sync.requested");
  EXPECT_EQ(json["time"], "2026-11-28T10:00:00Z");
}

TEST(FormatTest, ResourceLists) {
  EXPECT_EQ(KindPlural("Repository"), "repositories");
  EXPECT_EQ(KindPlural("NotificationProvider"), "notificationproviders");
  EXPECT_EQ(KindPlural("Cluster"), "clusters");
  v1::Resource r;
  r.set_kind("Cluster");
  r.set_name("prod");
  r.set_generation(3);
  r.set_json(R"({"kind":"Cluster","metadata":{"name":"prod"},"spec":{"token":"<redacted>"}})");
  EXPECT_EQ(ResourcesTable({r}), "NAME   GENERATION\nprod   3\n");
  ASSERT_OK_AND_ASSIGN(manifest::Json list, ResourceListJson({r}));
  EXPECT_EQ(list["items"][0]["spec"]["token"], "<redacted>");
  r.set_json("[");
  EXPECT_THAT(ResourceListJson({r}).status(),
              testing::StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(FormatTest, DeadLetters) {
  v1::DeadLetter plan;
  plan.set_sequence(12);
  plan.mutable_time()->set_seconds(1795860000);  // 2026-11-28T10:00:00Z
  plan.set_subject("driftless.work.plan");
  plan.set_stream("DRIFTLESS_WORK");
  plan.set_stream_sequence(345);
  plan.set_deliveries(5);
  plan.set_error("apply failed:\nboom");
  plan.set_type("plan.ready");
  plan.set_application("guestbook");
  plan.set_event_id("plan.ready/guestbook/abc");
  plan.set_size_bytes(99);
  v1::DeadLetter raw;
  raw.set_sequence(13);
  raw.set_subject("driftless.work.apply");
  raw.set_error("undecodable");
  EXPECT_EQ(DeadLettersTable({plan, raw}),
            "SEQ   TIME                   SUBJECT                TYPE         APPLICATION   "
            "DELIVERIES   ERROR\n"
            "12    2026-11-28T10:00:00Z   driftless.work.plan    plan.ready   guestbook     "
            "5            apply failed: boom\n"
            "13    -                      driftless.work.apply   -            -             "
            "-            undecodable\n");
  manifest::Json json = DeadLetterListJson({plan});
  EXPECT_EQ(json["kind"], "List");
  ASSERT_EQ(json["items"].size(), 1u);
  const manifest::Json& item = json["items"][0];
  EXPECT_EQ(item["sequence"], 12);  // numbers stay numbers
  EXPECT_EQ(item["time"], "2026-11-28T10:00:00Z");
  EXPECT_EQ(item["subject"], "driftless.work.plan");
  EXPECT_EQ(item["streamSequence"], 345);
  EXPECT_EQ(item["deliveries"], 5);
  EXPECT_EQ(item["application"], "guestbook");
  EXPECT_EQ(item["eventId"], "plan.ready/guestbook/abc");
  v1::RedriveDeadLetterResponse redriven;
  redriven.set_subject("driftless.work.plan");
  redriven.set_stream_sequence(346);
  EXPECT_EQ(RedriveLine(12, redriven),
            "dead letter #12 redriven to driftless.work.plan (stream sequence 346)");
}

TEST(ClientTest, ApiAddressFromEndpoints) {
  EXPECT_EQ(ApiAddressFromEndpoints(R"({"api":"127.0.0.1:1234"})"), "127.0.0.1:1234");
  EXPECT_EQ(ApiAddressFromEndpoints(R"({"api":{"grpc":"127.0.0.1:99","http":"x"}})"),
            "127.0.0.1:99");
  EXPECT_EQ(ApiAddressFromEndpoints(R"({"nats":"x"})"), "");
  EXPECT_EQ(ApiAddressFromEndpoints("garbage"), "");
  EXPECT_EQ(ResolveServerAddress("10.0.0.1:5"), "10.0.0.1:5");
}

}  // namespace
}  // namespace driftless::cli
