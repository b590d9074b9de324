#include "services/api/webhook.h"

#include <gtest/gtest.h>

#include <map>

#include "common/testing/status_matchers.h"

namespace driftless::api {
namespace {

using ::driftless::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr char kSecret[] = "s3cret";

constexpr char kGitHubPush[] = R"({
  "ref": "refs/heads/main",
  "before": "1111111111111111111111111111111111111111",
  "after": "2222222222222222222222222222222222222222",
  "repository": {"clone_url": "https://github.com/acme/deploy.git",
                 "html_url": "https://github.com/acme/deploy"},
  "commits": [
    {"added": ["apps/web/new.yaml"], "modified": ["apps/web/deploy.yaml"], "removed": []},
    {"added": [], "modified": ["apps/web/deploy.yaml"], "removed": ["old.yaml"]}
  ]
})";

struct Request {
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
};

absl::StatusOr<WebhookOutcome> Parse(const std::string& provider, const Request& r,
                                     const std::string& secret = kSecret) {
  WebhookInput in;
  in.receiver = "hooks";
  in.provider = provider;
  in.secret = secret;
  in.header = [&r](std::string_view name) {
    std::string lower(name);
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    auto it = r.headers.find(lower);
    return it == r.headers.end() ? std::string() : it->second;
  };
  in.body = r.body;
  return ParseWebhook(in);
}

TEST(HmacTest, KnownVector) {
  // RFC 4231 test case 2.
  EXPECT_EQ(HmacSha256Hex("Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(WebhookTest, GitHubPushWithValidSignature) {
  Request r{{{"x-github-event", "push"},
             {"x-github-delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958"},
             {"x-hub-signature-256", "sha256=" + HmacSha256Hex(kSecret, kGitHubPush)}},
            kGitHubPush};
  ASSERT_OK_AND_ASSIGN(WebhookOutcome out, Parse("github", r));
  EXPECT_TRUE(out.is_push);
  EXPECT_EQ(out.delivery_id, "72d3162e-cc78-11e3-81ab-4c9367dc0958");
  EXPECT_EQ(out.push.receiver(), "hooks");
  EXPECT_EQ(out.push.provider(), "github");
  EXPECT_EQ(out.push.repo_url(), "https://github.com/acme/deploy.git");
  EXPECT_EQ(out.push.ref(), "refs/heads/main");
  EXPECT_EQ(out.push.before(), "1111111111111111111111111111111111111111");
  EXPECT_EQ(out.push.after(), "2222222222222222222222222222222222222222");
  EXPECT_THAT(out.push.changed_paths(),
              ElementsAre("apps/web/deploy.yaml", "apps/web/new.yaml", "old.yaml"));
}

TEST(WebhookTest, SignatureProblemsAreUnauthenticated) {
  Request r{{{"x-github-event", "push"}}, kGitHubPush};
  EXPECT_THAT(Parse("github", r), StatusIs(absl::StatusCode::kUnauthenticated,
                                           HasSubstr("missing X-Hub-Signature-256")));
  r.headers["x-hub-signature-256"] = "sha256=" + HmacSha256Hex("wrong", kGitHubPush);
  EXPECT_THAT(Parse("github", r),
              StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("does not match")));
  // A body changed after signing.
  r.headers["x-hub-signature-256"] = "sha256=" + HmacSha256Hex(kSecret, kGitHubPush);
  r.body += " ";
  EXPECT_THAT(Parse("github", r), StatusIs(absl::StatusCode::kUnauthenticated));
  // No secret configured: nothing can be verified.
  r.body = kGitHubPush;
  EXPECT_THAT(Parse("github", r, ""),
              StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("no secret")));
}

TEST(WebhookTest, GitHubPingAndDeletedBranchAreNotPushes) {
  std::string ping = R"({"zen": "Keep it logically awesome."})";
  Request r{{{"x-github-event", "ping"},
             {"x-hub-signature-256", "sha256=" + HmacSha256Hex(kSecret, ping)}},
            ping};
  ASSERT_OK_AND_ASSIGN(WebhookOutcome out, Parse("github", r));
  EXPECT_FALSE(out.is_push);
  EXPECT_THAT(out.reason, HasSubstr("ping"));

  std::string deleted = R"({"ref": "refs/heads/old", "before": "1111", "deleted": true,
    "after": "0000000000000000000000000000000000000000",
    "repository": {"clone_url": "https://github.com/acme/deploy.git"}})";
  Request d{{{"x-github-event", "push"},
             {"x-hub-signature-256", "sha256=" + HmacSha256Hex(kSecret, deleted)}},
            deleted};
  ASSERT_OK_AND_ASSIGN(WebhookOutcome del, Parse("github", d));
  EXPECT_FALSE(del.is_push);
  EXPECT_THAT(del.reason, HasSubstr("deleted"));
}

TEST(WebhookTest, NewBranchAndForcePushHaveUnknownPaths) {
  std::string created = kGitHubPush;
  created.replace(created.find("1111111111111111111111111111111111111111"), 40,
                  "0000000000000000000000000000000000000000");
  Request r{{{"x-github-event", "push"},
             {"x-hub-signature-256", "sha256=" + HmacSha256Hex(kSecret, created)}},
            created};
  ASSERT_OK_AND_ASSIGN(WebhookOutcome out, Parse("github", r));
  EXPECT_TRUE(out.is_push);
  EXPECT_TRUE(out.push.changed_paths().empty());
  // Without a delivery header the id is derived from the body.
  EXPECT_EQ(out.delivery_id.rfind("body-", 0), 0u);
}

TEST(WebhookTest, MalformedPushIsInvalidArgument) {
  std::string body = R"({"ref": "refs/heads/main", "after": "2222"})";
  Request r{{{"x-github-event", "push"},
             {"x-hub-signature-256", "sha256=" + HmacSha256Hex(kSecret, body)}},
            body};
  EXPECT_THAT(Parse("github", r),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("repository URL")));
  r.body = "not json";
  r.headers["x-hub-signature-256"] = "sha256=" + HmacSha256Hex(kSecret, r.body);
  EXPECT_THAT(Parse("github", r), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(WebhookTest, GiteaSignsWithoutPrefix) {
  Request r{{{"x-gitea-event", "push"},
             {"x-gitea-delivery", "d-1"},
             {"x-gitea-signature", HmacSha256Hex(kSecret, kGitHubPush)}},
            kGitHubPush};
  ASSERT_OK_AND_ASSIGN(WebhookOutcome out, Parse("gitea", r));
  EXPECT_TRUE(out.is_push);
  EXPECT_EQ(out.delivery_id, "d-1");
  EXPECT_EQ(out.push.ref(), "refs/heads/main");
}

TEST(WebhookTest, GitLabTokenAndTagPush) {
  std::string body = R"({"object_kind": "tag_push", "ref": "refs/tags/v1.2.0",
    "before": "0000000000000000000000000000000000000000", "after": "3333",
    "project": {"git_http_url": "https://gitlab.com/acme/deploy.git"},
    "commits": [], "total_commits_count": 0})";
  Request r{{{"x-gitlab-event", "Tag Push Hook"}, {"x-gitlab-token", kSecret}}, body};
  ASSERT_OK_AND_ASSIGN(WebhookOutcome out, Parse("gitlab", r));
  EXPECT_TRUE(out.is_push);
  EXPECT_EQ(out.push.repo_url(), "https://gitlab.com/acme/deploy.git");
  EXPECT_EQ(out.push.ref(), "refs/tags/v1.2.0");
  r.headers["x-gitlab-token"] = "nope";
  EXPECT_THAT(Parse("gitlab", r),
              StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("wrong X-Gitlab-Token")));
}

TEST(WebhookTest, GitLabTruncatedCommitListMeansUnknownPaths) {
  std::string body = R"({"ref": "refs/heads/main", "before": "1111", "after": "2222",
    "project": {"git_http_url": "https://gitlab.com/acme/deploy.git"},
    "commits": [{"added": ["a"], "modified": [], "removed": []}], "total_commits_count": 30})";
  Request r{{{"x-gitlab-event", "Push Hook"}, {"x-gitlab-token", kSecret}}, body};
  ASSERT_OK_AND_ASSIGN(WebhookOutcome out, Parse("gitlab", r));
  EXPECT_TRUE(out.push.changed_paths().empty());
}

TEST(WebhookTest, BitbucketPush) {
  std::string body =
      R"({"repository": {"links": {"html": {"href": "https://bitbucket.org/acme/deploy"}}},
    "push": {"changes": [{"old": {"target": {"hash": "aaaa"}},
                          "new": {"type": "branch", "name": "main", "target": {"hash": "bbbb"}}}]}})";
  Request r{{{"x-event-key", "repo:push"},
             {"x-request-uuid", "uuid-1"},
             {"x-hub-signature", "sha256=" + HmacSha256Hex(kSecret, body)}},
            body};
  ASSERT_OK_AND_ASSIGN(WebhookOutcome out, Parse("bitbucket", r));
  EXPECT_TRUE(out.is_push);
  EXPECT_EQ(out.push.repo_url(), "https://bitbucket.org/acme/deploy");
  EXPECT_EQ(out.push.ref(), "refs/heads/main");
  EXPECT_EQ(out.push.before(), "aaaa");
  EXPECT_EQ(out.push.after(), "bbbb");
  EXPECT_EQ(out.delivery_id, "uuid-1");
}

TEST(WebhookTest, GenericBodies) {
  std::string body = R"({"repoURL": "file:///srv/repo", "ref": "refs/heads/main", "after": "cccc",
    "changedPaths": ["a/b.yaml"]})";
  Request r{{{"x-signature", "sha256=" + HmacSha256Hex(kSecret, body)},
             {"x-delivery-id", "weird id/../x"}},
            body};
  ASSERT_OK_AND_ASSIGN(WebhookOutcome out, Parse("generic-hmac", r));
  EXPECT_EQ(out.push.repo_url(), "file:///srv/repo");
  EXPECT_THAT(out.push.changed_paths(), ElementsAre("a/b.yaml"));
  // Delivery ids become safe KV key parts.
  EXPECT_EQ(out.delivery_id, "weird_id____x");
  Request unsigned_request{{}, body};
  EXPECT_THAT(Parse("generic-hmac", unsigned_request),
              StatusIs(absl::StatusCode::kUnauthenticated));
  ASSERT_OK_AND_ASSIGN(WebhookOutcome open, Parse("generic", unsigned_request, ""));
  EXPECT_TRUE(open.is_push);
  EXPECT_THAT(Parse("svn", r), StatusIs(absl::StatusCode::kUnimplemented));
}

}  // namespace
}  // namespace driftless::api
