#include "common/log/log.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "common/testing/status_matchers.h"

namespace driftless::log {
namespace {

using ::driftless::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::Not;
using Json = nlohmann::json;

std::chrono::system_clock::time_point FixedTime() {
  // 2026-11-28T10:00:00.123Z
  return std::chrono::system_clock::time_point(std::chrono::milliseconds(1795860000123));
}

std::string Line(Format format, std::string_view msg, std::initializer_list<Field> fields,
                 const Fields* bound = nullptr) {
  Record r;
  r.time = FixedTime();
  r.level = Level::kInfo;
  r.logger = "renderer";
  r.message = msg;
  r.bound = bound;
  r.fields = fields;
  return FormatLine(r, format);
}

TEST(FormatTimestampTest, Rfc3339UtcMillis) {
  EXPECT_EQ(FormatTimestamp(FixedTime()), "2026-11-28T10:00:00.123Z");
  EXPECT_EQ(FormatTimestamp(std::chrono::system_clock::time_point()), "1970-01-01T00:00:00.000Z");
}

TEST(FormatLineTest, JsonShapeIsExact) {
  EXPECT_EQ(Line(Format::kJson, "synced",
                 {{"app", "guestbook"},
                  {"objects", 12},
                  {"ok", true},
                  {"ratio", 0.5},
                  {"bytes", uint64_t{18446744073709551615u}},
                  {"took", std::chrono::seconds(2)}}),
            R"({"ts":"2026-11-28T10:00:00.123Z","level":"info","logger":"renderer","msg":"synced",)"
            R"("app":"guestbook","objects":12,"ok":true,"ratio":0.5,)"
            R"("bytes":18446744073709551615,"took":2000})");
}

TEST(FormatLineTest, JsonEscapingKeepsOneValidLine) {
  const std::string nasty = "quote\" backslash\\ newline\n tab\t bell\x07 del\x7f uni\xc3\xa9";
  const std::string invalid_utf8 = "bad\xff\xc3(";
  const std::string line = Line(Format::kJson, nasty, {{"k\"ey", nasty}, {"bytes", invalid_utf8}});
  EXPECT_EQ(line.find('\n'), std::string::npos);
  Json j = Json::parse(line);  // throws (fails the test) if not valid JSON
  EXPECT_EQ(j["msg"], nasty);
  EXPECT_EQ(j["k\"ey"], nasty);
  EXPECT_EQ(j["bytes"], "bad\xef\xbf\xbd\xef\xbf\xbd(");
  EXPECT_THAT(line, HasSubstr(R"(\u0007)"));
  EXPECT_THAT(line, HasSubstr("uni\xc3\xa9"));  // valid UTF-8 passes through
}

TEST(FormatLineTest, NonFiniteDoublesAreStrings) {
  Json j = Json::parse(Line(Format::kJson, "m", {{"nan", std::nan("")}, {"inf", 1.0 / 0.0}}));
  EXPECT_EQ(j["nan"], "NaN");
  EXPECT_EQ(j["inf"], "+Inf");
}

TEST(FormatLineTest, BoundFieldsComeFirst) {
  Fields bound = {{"app", "guestbook"}};
  Json j = Json::parse(Line(Format::kJson, "m", {{"revision", "abc"}}, &bound));
  EXPECT_EQ(j["app"], "guestbook");
  EXPECT_EQ(j["revision"], "abc");
}

TEST(FormatLineTest, StatusField) {
  Json j = Json::parse(
      Line(Format::kJson, "failed", {{"error", absl::NotFoundError("app guestbook: no repo")}}));
  EXPECT_EQ(j["error"], "NOT_FOUND: app guestbook: no repo");
}

TEST(FormatLineTest, TextFormat) {
  EXPECT_EQ(Line(Format::kText, "synced\nnow",
                 {{"app", "guestbook"}, {"note", "two words"}, {"empty", ""}, {"n", 3}}),
            R"(2026-11-28T10:00:00.123Z INFO  renderer: synced\nnow app=guestbook )"
            R"(note="two words" empty="" n=3)");
}

TEST(RedactionTest, SensitiveKeys) {
  for (const char* key : {"password", "Password", "db_password", "token", "accessToken", "secret",
                          "clientSecret", "key", "privateKey", "private_key", "sshKey", "apiKey",
                          "Authorization", "cookie", "credentials", "passphrase"}) {
    EXPECT_TRUE(IsSensitiveKey(key)) << key;
  }
  for (const char* key : {"app", "revision", "object", "keyring_path", "url", "user", "monkeys"}) {
    EXPECT_FALSE(IsSensitiveKey(key)) << key;
  }
}

TEST(RedactionTest, SensitiveValuesAreRedactedInBothFormats) {
  const std::string json = Line(Format::kJson, "login",
                                {{"user", "bob"},
                                 {"password", "hunter2"},
                                 {"token", 1234},
                                 {"privateKey", "-----BEGIN KEY-----"}});
  EXPECT_THAT(json, Not(HasSubstr("hunter2")));
  EXPECT_THAT(json, Not(HasSubstr("1234")));
  EXPECT_THAT(json, Not(HasSubstr("BEGIN")));
  Json j = Json::parse(json);
  EXPECT_EQ(j["user"], "bob");
  EXPECT_EQ(j["password"], "<redacted>");
  EXPECT_EQ(j["token"], "<redacted>");
  EXPECT_EQ(j["privateKey"], "<redacted>");
  const std::string text = Line(Format::kText, "login", {{"password", "hunter2"}});
  EXPECT_THAT(text, HasSubstr("password=<redacted>"));
  EXPECT_THAT(text, Not(HasSubstr("hunter2")));
}

TEST(RedactionTest, UrlsInValuesLoseCredentials) {
  Json j = Json::parse(Line(Format::kJson, "fetch",
                            {{"repo", "https://bob:hunter2@git.example.com/org/repo.git"},
                             {"error", "clone https://tok@github.com/x failed: 401"}}));
  EXPECT_EQ(j["repo"], "https://git.example.com/org/repo.git");
  EXPECT_EQ(j["error"], "clone https://github.com/x failed: 401");
}

TEST(RedactUrlTest, Table) {
  const std::pair<const char*, const char*> cases[] = {
      {"https://user:pass@host.example/path", "https://host.example/path"},
      {"https://user:p@ss@host:8443", "https://host:8443"},
      {"nats://u:p@127.0.0.1:4222", "nats://127.0.0.1:4222"},
      {"ssh://git@github.com/org/repo", "ssh://github.com/org/repo"},
      {"https://host/path?ref=main&token=abc#frag",
       "https://host/path?ref=main&token=<redacted>#frag"},
      {"https://host/x?access_token=abc", "https://host/x?access_token=<redacted>"},
      {"https://host/p@th", "https://host/p@th"},
      {"no url here", "no url here"},
      {"git@github.com:org/repo.git", "git@github.com:org/repo.git"},
      {"a https://u:p@h/x and http://v:q@i", "a https://h/x and http://i"},
      {"://weird@x", "://weird@x"},
      {"", ""},
  };
  for (const auto& [in, want] : cases) EXPECT_EQ(RedactUrl(in), want) << in;
}

TEST(ParseTest, LevelsAndFormats) {
  ASSERT_OK_AND_ASSIGN(Level l, ParseLevel("WARN"));
  EXPECT_EQ(l, Level::kWarn);
  EXPECT_THAT(ParseLevel("loud"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("\"loud\"")));
  ASSERT_OK_AND_ASSIGN(Format f, ParseFormat("text"));
  EXPECT_EQ(f, Format::kText);
  EXPECT_THAT(ParseFormat("xml"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("\"xml\"")));
}

class SinkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Init({.service = "guestbook-svc",
          .level = Level::kInfo,
          .format = Format::kJson,
          .output = &out_});
  }
  void TearDown() override { Init(Options{}); }

  std::vector<Json> Lines() {
    Flush();
    std::vector<Json> lines;
    std::istringstream in(out_.str());
    for (std::string line; std::getline(in, line);) lines.push_back(Json::parse(line));
    return lines;
  }

  std::ostringstream out_;
};

TEST_F(SinkTest, WritesJsonLinesWithLevelFiltering) {
  Info("synced", {{"app", "guestbook"}, {"revision", "3f2a"}});
  Debug("hidden");
  Logger("renderer").With({{"app", "guestbook"}}).Warn("slow", {{"took", 1500}});
  Error("failed", {{"error", absl::UnavailableError("nats down")}});
  std::vector<Json> lines = Lines();
  ASSERT_EQ(lines.size(), 3u) << out_.str();
  EXPECT_EQ(lines[0]["level"], "info");
  EXPECT_EQ(lines[0]["logger"], "guestbook-svc");
  EXPECT_EQ(lines[0]["msg"], "synced");
  EXPECT_EQ(lines[0]["revision"], "3f2a");
  EXPECT_THAT(lines[0]["ts"].get<std::string>(),
              ::testing::MatchesRegex(
                  R"([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z)"));
  EXPECT_EQ(lines[1]["logger"], "renderer");
  EXPECT_EQ(lines[1]["app"], "guestbook");
  EXPECT_EQ(lines[1]["took"], 1500);
  EXPECT_EQ(lines[2]["level"], "error");
}

TEST_F(SinkTest, SetLevelTakesEffect) {
  SetLevel(Level::kDebug);
  EXPECT_TRUE(Enabled(Level::kDebug));
  Debug("now visible");
  SetLevel(Level::kOff);
  EXPECT_FALSE(Enabled(Level::kError));
  Error("dropped");
  std::vector<Json> lines = Lines();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0]["msg"], "now visible");
}

TEST_F(SinkTest, InitFromFlagStrings) {
  EXPECT_THAT(Init("svc", "loud", "json"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(GetLevel(), Level::kInfo);  // unchanged
}

TEST_F(SinkTest, ConcurrentWritersProduceWholeLines) {
  constexpr int kThreads = 4;
  constexpr int kPerThread = 200;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([t] {
      Logger logger("worker");
      for (int i = 0; i < kPerThread; ++i) {
        logger.Info("tick", {{"thread", t}, {"i", i}, {"pad", std::string(100, 'x')}});
      }
    });
  }
  for (std::thread& th : threads) th.join();
  std::vector<Json> lines = Lines();  // every line parses as JSON
  ASSERT_EQ(lines.size(), static_cast<size_t>(kThreads * kPerThread));
  std::vector<int> per_thread(kThreads);
  for (const Json& j : lines) per_thread[j["thread"].get<int>()]++;
  for (int n : per_thread) EXPECT_EQ(n, kPerThread);
}

}  // namespace
}  // namespace driftless::log
