#include "services/notifier/providers.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/testing/status_matchers.h"
#include "services/common/events.h"

namespace driftless::notifier {
namespace {

using ::driftless::testing::StatusIs;
using manifest::Json;
using ::testing::HasSubstr;
namespace v1 = ::driftless::v1;

Json Resource(Json spec) { return {{"spec", std::move(spec)}}; }

v1::Event Failed(const std::string& app, const std::string& message) {
  v1::Event e = service::NewEvent("sync.failed", app, "0123456789abcdef0123", "applier/1");
  e.set_id("sync.failed/" + app + "/1");
  e.set_severity(v1::SEVERITY_ERROR);
  e.set_message(message);
  e.mutable_sync_finished()->set_initiated_by("user:alice");
  return e;
}

TEST(ProviderOf, NamesTheProviderAndFieldOfWhatCannotBeSent) {
  EXPECT_THAT(ProviderOf("p", Resource({{"type", "pagerduty"}, {"address", "https://x"}})),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("NotificationProvider p: spec.type \"pagerduty\"")));
  EXPECT_THAT(ProviderOf("p", Resource({{"type", "slack"}})),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("spec.address is not set")));
  EXPECT_THAT(ProviderOf("p", Resource({{"type", "generic-hmac"}, {"address", "https://x"}})),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("spec.secret is not set")));
  ASSERT_OK_AND_ASSIGN(Provider p, ProviderOf("p", Resource({{"type", "webhook"},
                                                             {"address", "https://x/y"},
                                                             {"headers", {{"X-Team", "a"}}},
                                                             {"timeout", "15s"}})));
  EXPECT_EQ(p.timeout, absl::Seconds(15));
  ASSERT_OK_AND_ASSIGN(OutgoingRequest r, RequestFor(p, Failed("web", "boom")));
  EXPECT_EQ(r.url, "https://x/y");
  EXPECT_EQ(r.headers["X-Team"], "a");
  EXPECT_EQ(r.headers["X-Driftless-Event-Id"], "sync.failed/web/1");
  EXPECT_EQ(Json::parse(r.body)["message"], "boom");
}

TEST(AlertOf, TypesApplicationsSeverityAndMessageListsFilterEvents) {
  ASSERT_OK_AND_ASSIGN(Alert a,
                       AlertOf("a", Resource({{"providerRef", {{"name", "chat"}}},
                                              {"eventTypes", {"sync.*", "health.degraded"}},
                                              {"applications", {"team-*"}},
                                              {"severity", "warning"},
                                              {"inclusionList", {"timeout|refused"}},
                                              {"exclusionList", {"^dry-run"}}})));
  EXPECT_EQ(a.provider, "chat");
  EXPECT_TRUE(a.Matches(Failed("team-web", "connection refused")));
  EXPECT_FALSE(a.Matches(Failed("web", "connection refused")));                // application
  EXPECT_FALSE(a.Matches(Failed("team-web", "invalid object")));               // inclusion
  EXPECT_FALSE(a.Matches(Failed("team-web", "dry-run: connection refused")));  // exclusion
  v1::Event info = Failed("team-web", "connection refused");
  info.set_severity(v1::SEVERITY_INFO);
  EXPECT_FALSE(a.Matches(info));  // below warning
  v1::Event other = Failed("team-web", "connection refused");
  other.set_type("source.changed");
  EXPECT_FALSE(a.Matches(other));

  ASSERT_OK_AND_ASSIGN(Alert everything,
                       AlertOf("all", Resource({{"providerRef", {{"name", "x"}}}})));
  EXPECT_TRUE(everything.Matches(info));
  ASSERT_OK_AND_ASSIGN(
      Alert suspended,
      AlertOf("s", Resource({{"providerRef", {{"name", "x"}}}, {"suspend", true}})));
  EXPECT_FALSE(suspended.Matches(info));
  EXPECT_THAT(AlertOf("bad", Resource({{"exclusionList", {"(unclosed"}}})),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("Alert bad: spec.exclusionList: \"(unclosed\"")));
}

TEST(SubscriptionsOf, AnApplicationsOwnNotificationRules) {
  const Json app = {{"spec",
                     {{"notifications",
                       {{{"on", {"sync.failed", "health.*"}}, {"provider", "chat"}},
                        {{"provider", "pager"}},         // no `on`: every type
                        {{"on", {"sync.failed"}}}}}}}};  // no provider: ignored
  std::vector<Subscription> subs = SubscriptionsOf(app);
  ASSERT_EQ(subs.size(), 2u);
  EXPECT_EQ(subs[0].provider, "chat");
  EXPECT_TRUE(subs[0].on.Matches("health.degraded"));
  EXPECT_FALSE(subs[0].on.Matches("sync.succeeded"));
  EXPECT_EQ(subs[1].provider, "pager");
  EXPECT_TRUE(subs[1].on.Matches("anything"));
  EXPECT_TRUE(SubscriptionsOf(Json{{"spec", Json::object()}}).empty());
}

TEST(RequestFor, GenericHmacSignsTheBodyItSends) {
  ASSERT_OK_AND_ASSIGN(
      Provider p,
      ProviderOf(
          "h", Resource({{"type", "generic-hmac"}, {"address", "https://r/h"}, {"secret", "k"}})));
  ASSERT_OK_AND_ASSIGN(OutgoingRequest r, RequestFor(p, Failed("web", "boom")));
  EXPECT_EQ(r.headers["X-Signature"], "sha256=" + manifest::HmacSha256Hex("k", r.body));
  EXPECT_EQ(Json::parse(r.body)["type"], "sync.failed");
}

// The shapes of ../shared/corpus/notifications (PAYLOAD-SHAPES.md): Slack Block Kit, a Teams
// Workflows Adaptive Card, Discord's native Execute-Webhook body.
TEST(RequestFor, SlackTeamsAndDiscordGetTheirOwnFormats) {
  const v1::Event e = Failed("web", "apply apps/v1 Deployment web/api: 500 Internal error");
  ASSERT_OK_AND_ASSIGN(
      Provider slack,
      ProviderOf("s", Resource({{"type", "slack"},
                                {"address", "https://hooks.slack.com/services/T/B/X"},
                                {"channel", "#ops"},
                                {"username", "driftless"}})));
  ASSERT_OK_AND_ASSIGN(OutgoingRequest s, RequestFor(slack, e));
  Json sb = Json::parse(s.body);
  EXPECT_EQ(sb["channel"], "#ops");
  EXPECT_EQ(sb["username"], "driftless");
  EXPECT_THAT(sb["text"].get<std::string>(), HasSubstr("web: sync failed"));
  ASSERT_GE(sb["blocks"].size(), 3u);
  EXPECT_EQ(sb["blocks"][0]["type"], "header");
  EXPECT_EQ(sb["blocks"][0]["text"]["type"], "plain_text");
  EXPECT_EQ(sb["blocks"][1]["text"]["type"], "mrkdwn");
  EXPECT_THAT(sb["blocks"][2]["fields"].dump(), HasSubstr("Initiated by"));

  ASSERT_OK_AND_ASSIGN(Provider teams,
                       ProviderOf("t", Resource({{"type", "msteams"}, {"address", "https://x"}})));
  ASSERT_OK_AND_ASSIGN(OutgoingRequest t, RequestFor(teams, e));
  Json tb = Json::parse(t.body);
  EXPECT_EQ(tb["type"], "message");
  const Json& card = tb["attachments"][0];
  EXPECT_EQ(card["contentType"], "application/vnd.microsoft.card.adaptive");
  EXPECT_EQ(card["content"]["type"], "AdaptiveCard");
  EXPECT_EQ(card["content"]["version"], "1.4");
  const Json& items = card["content"]["body"][0]["items"];
  EXPECT_EQ(items[0]["weight"], "bolder");
  EXPECT_EQ(items[1]["color"], "attention");  // an error
  EXPECT_EQ(items[2]["type"], "FactSet");

  ASSERT_OK_AND_ASSIGN(Provider discord,
                       ProviderOf("d", Resource({{"type", "discord"}, {"address", "https://x"}})));
  ASSERT_OK_AND_ASSIGN(OutgoingRequest d, RequestFor(discord, e));
  const Json embed = Json::parse(d.body)["embeds"][0];
  EXPECT_EQ(embed["title"], "web: sync failed");
  EXPECT_TRUE(embed["color"].is_number_integer());
  EXPECT_EQ(embed["footer"]["text"], "driftless event sync.failed/web/1");
  EXPECT_FALSE(embed["fields"].empty());
}

TEST(RequestFor, LongAndNonUtf8MessagesStillMakeAValidBody) {
  ASSERT_OK_AND_ASSIGN(Provider discord,
                       ProviderOf("d", Resource({{"type", "discord"}, {"address", "https://x"}})));
  std::string long_message(5000, 'x');
  long_message.replace(4094, 3, "\xe2\x82\xac");  // a euro sign across the 4096-byte limit
  ASSERT_OK_AND_ASSIGN(OutgoingRequest r, RequestFor(discord, Failed("web", long_message)));
  EXPECT_EQ(Json::parse(r.body)["embeds"][0]["description"].get<std::string>().size(), 4094u);
  ASSERT_OK_AND_ASSIGN(OutgoingRequest bad, RequestFor(discord, Failed("web", "bad \xff byte")));
  EXPECT_NO_THROW(Json::parse(bad.body));
}

}  // namespace
}  // namespace driftless::notifier
