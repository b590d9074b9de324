#include "services/api/webhook.h"

#include <gtest/gtest.h>

#include <map>
#include <vector>

#include "absl/strings/escaping.h"

#include "common/manifest/manifest.h"
#include "common/testing/status_matchers.h"

namespace driftless::api {
namespace {

using ::driftless::testing::StatusIs;
using ::testing::AllOf;
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
  EXPECT_EQ(manifest::HmacSha256Hex("Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(WebhookTest, GitHubPushWithValidSignature) {
  Request r{{{"x-github-event", "push"},
             {"x-github-delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958"},
             {"x-hub-signature-256", "sha256=" + manifest::HmacSha256Hex(kSecret, kGitHubPush)}},
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
  r.headers["x-hub-signature-256"] = "sha256=" + manifest::HmacSha256Hex("wrong", kGitHubPush);
  EXPECT_THAT(Parse("github", r),
              StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("does not match")));
  // A body changed after signing.
  r.headers["x-hub-signature-256"] = "sha256=" + manifest::HmacSha256Hex(kSecret, kGitHubPush);
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
             {"x-hub-signature-256", "sha256=" + manifest::HmacSha256Hex(kSecret, ping)}},
            ping};
  ASSERT_OK_AND_ASSIGN(WebhookOutcome out, Parse("github", r));
  EXPECT_FALSE(out.is_push);
  EXPECT_THAT(out.reason, HasSubstr("ping"));

  std::string deleted = R"({"ref": "refs/heads/old", "before": "1111", "deleted": true,
    "after": "0000000000000000000000000000000000000000",
    "repository": {"clone_url": "https://github.com/acme/deploy.git"}})";
  Request d{{{"x-github-event", "push"},
             {"x-hub-signature-256", "sha256=" + manifest::HmacSha256Hex(kSecret, deleted)}},
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
             {"x-hub-signature-256", "sha256=" + manifest::HmacSha256Hex(kSecret, created)}},
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
             {"x-hub-signature-256", "sha256=" + manifest::HmacSha256Hex(kSecret, body)}},
            body};
  EXPECT_THAT(Parse("github", r),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("repository URL")));
  r.body = "not json";
  r.headers["x-hub-signature-256"] = "sha256=" + manifest::HmacSha256Hex(kSecret, r.body);
  EXPECT_THAT(Parse("github", r), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(WebhookTest, GiteaSignsWithoutPrefix) {
  Request r{{{"x-gitea-event", "push"},
             {"x-gitea-delivery", "d-1"},
             {"x-gitea-signature", manifest::HmacSha256Hex(kSecret, kGitHubPush)}},
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
             {"x-hub-signature", "sha256=" + manifest::HmacSha256Hex(kSecret, body)}},
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
  Request r{{{"x-signature", "sha256=" + manifest::HmacSha256Hex(kSecret, body)},
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
  EXPECT_THAT(Parse("svn", r), StatusIs(absl::StatusCode::kUnimplemented));
}

constexpr char kZeros[] = "0000000000000000000000000000000000000000";

std::string Basic(const std::string& user, const std::string& password) {
  return "Basic " + absl::Base64Escape(user + ":" + password);
}

TEST(WebhookTest, GenericRequiresABearerSecret) {
  std::string body = R"({"repoURL": "https://git.example.com/deploy.git", "ref": "refs/heads/main",
    "after": "cccc"})";
  Request r{{{"authorization", std::string("Bearer ") + kSecret}}, body};
  ASSERT_OK_AND_ASSIGN(WebhookOutcome out, Parse("generic", r));
  EXPECT_TRUE(out.is_push);
  EXPECT_EQ(out.push.repo_url(), "https://git.example.com/deploy.git");
  // The scheme is case-insensitive; the token is not.
  r.headers["authorization"] = std::string("bearer ") + kSecret;
  EXPECT_OK(Parse("generic", r).status());
  r.headers["authorization"] = "Bearer S3CRET";
  EXPECT_THAT(Parse("generic", r),
              StatusIs(absl::StatusCode::kUnauthenticated,
                       AllOf(HasSubstr("receiver \"hooks\""), HasSubstr("wrong bearer token"))));
  r.headers["authorization"] = std::string("Bearer ") + kSecret + "x";  // a longer token
  EXPECT_THAT(Parse("generic", r), StatusIs(absl::StatusCode::kUnauthenticated));
  r.headers["authorization"] = std::string("Token ") + kSecret;
  EXPECT_THAT(Parse("generic", r),
              StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("not Bearer")));
  r.headers.clear();
  EXPECT_THAT(Parse("generic", r),
              StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("missing Authorization")));
}

TEST(WebhookTest, GenericReceiverWithoutSecretIsRefused) {
  std::string body = R"({"repoURL": "https://git.example.com/deploy.git", "ref": "refs/heads/main",
    "after": "cccc"})";
  // Even with a matching (empty) bearer token: an open receiver is a sync trigger for anyone.
  Request r{{{"authorization", "Bearer "}}, body};
  EXPECT_THAT(Parse("generic", r, ""),
              StatusIs(absl::StatusCode::kUnauthenticated,
                       AllOf(HasSubstr("receiver \"hooks\""), HasSubstr("has no secret"))));
}

TEST(WebhookTest, EveryProviderRefusesAReceiverWithoutSecret) {
  for (const char* provider : {"github", "gitea", "gogs", "gitlab", "bitbucket", "bitbucket-server",
                               "azuredevops", "generic-hmac", "generic"}) {
    Request r{{}, kGitHubPush};
    EXPECT_THAT(Parse(provider, r, ""),
                StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("no secret")))
        << provider;
  }
}

TEST(WebhookTest, GitHubTagPushKeepsTheFullRef) {
  std::string body =
      R"({"ref": "refs/tags/v1.2.0", "before": "0000000000000000000000000000000000000000",
    "after": "4444444444444444444444444444444444444444", "created": true,
    "repository": {"clone_url": "https://GitHub.com/acme/deploy.git"}, "commits": []})";
  Request r{{{"x-github-event", "push"},
             {"x-hub-signature-256", "sha256=" + manifest::HmacSha256Hex(kSecret, body)}},
            body};
  ASSERT_OK_AND_ASSIGN(WebhookOutcome out, Parse("github", r));
  EXPECT_TRUE(out.is_push);
  EXPECT_EQ(out.push.ref(), "refs/tags/v1.2.0");
  EXPECT_EQ(out.push.after(), "4444444444444444444444444444444444444444");
  // The URL is emitted in the poller's normal form (git::NormalizeUrl: host lowercased).
  EXPECT_EQ(out.push.repo_url(), "https://github.com/acme/deploy.git");
  EXPECT_TRUE(out.push.changed_paths().empty());
}

TEST(WebhookTest, GitHubCreateEventIsNotAPush) {
  // GitHub also sends a push for every new tag or branch: the create event is redundant.
  std::string body = R"({"ref": "v1.2.0", "ref_type": "tag"})";
  Request r{{{"x-github-event", "create"},
             {"x-hub-signature-256", "sha256=" + manifest::HmacSha256Hex(kSecret, body)}},
            body};
  ASSERT_OK_AND_ASSIGN(WebhookOutcome out, Parse("github", r));
  EXPECT_FALSE(out.is_push);
  EXPECT_THAT(out.reason, HasSubstr("\"create\" is not a push"));
}

TEST(WebhookTest, MissingEventHeaderNamesTheHeader) {
  Request r{{{"x-hub-signature-256", "sha256=" + manifest::HmacSha256Hex(kSecret, kGitHubPush)}},
            kGitHubPush};
  EXPECT_THAT(Parse("github", r),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("receiver \"hooks\""), HasSubstr("X-GitHub-Event"))));
}

TEST(WebhookTest, GiteaTagPushAndTruncatedCommitList) {
  std::string tag =
      R"({"ref": "refs/tags/v2.0.0", "before": "0000000000000000000000000000000000000000",
    "after": "5555", "repository": {"clone_url": "https://gitea.example.com/acme/deploy.git"},
    "commits": []})";
  Request r{
      {{"x-gitea-event", "push"}, {"x-gitea-signature", manifest::HmacSha256Hex(kSecret, tag)}},
      tag};
  ASSERT_OK_AND_ASSIGN(WebhookOutcome out, Parse("gitea", r));
  EXPECT_TRUE(out.is_push);
  EXPECT_EQ(out.push.ref(), "refs/tags/v2.0.0");

  // Gitea cuts the commit list and says how many there were in total_commits.
  std::string truncated = R"({"ref": "refs/heads/main", "before": "1111", "after": "2222",
    "repository": {"clone_url": "https://gitea.example.com/acme/deploy.git"},
    "commits": [{"added": ["a"], "modified": [], "removed": []}], "total_commits": 9})";
  Request t{{{"x-gitea-event", "push"},
             {"x-gitea-signature", manifest::HmacSha256Hex(kSecret, truncated)}},
            truncated};
  ASSERT_OK_AND_ASSIGN(WebhookOutcome partial, Parse("gitea", t));
  EXPECT_TRUE(partial.is_push);
  EXPECT_TRUE(partial.push.changed_paths().empty());
}

constexpr char kGogsPush[] = R"({"ref": "refs/heads/main",
  "before": "1111111111111111111111111111111111111111",
  "after": "2222222222222222222222222222222222222222",
  "commits": [{"id": "2222222222222222222222222222222222222222",
               "added": ["apps/a.yaml"], "removed": [], "modified": ["apps/b.yaml"]}],
  "repository": {"html_url": "https://gogs.example.com/acme/deploy",
                 "ssh_url": "ssh://git@gogs.example.com:2222/acme/deploy.git",
                 "clone_url": "https://gogs.example.com/acme/deploy.git"}})";

TEST(WebhookTest, GogsPush) {
  Request r{{{"x-gogs-event", "push"},
             {"x-gogs-delivery", "f6266f16-1bf3-46a5-9ea4-602e06ead473"},
             {"x-gogs-signature", manifest::HmacSha256Hex(kSecret, kGogsPush)}},
            kGogsPush};
  ASSERT_OK_AND_ASSIGN(WebhookOutcome out, Parse("gogs", r));
  EXPECT_TRUE(out.is_push);
  EXPECT_EQ(out.event, "push");
  EXPECT_EQ(out.delivery_id, "f6266f16-1bf3-46a5-9ea4-602e06ead473");
  EXPECT_EQ(out.push.provider(), "gogs");
  EXPECT_EQ(out.push.repo_url(), "https://gogs.example.com/acme/deploy.git");
  EXPECT_EQ(out.push.ref(), "refs/heads/main");
  EXPECT_EQ(out.push.before(), "1111111111111111111111111111111111111111");
  EXPECT_EQ(out.push.after(), "2222222222222222222222222222222222222222");
  EXPECT_THAT(out.push.changed_paths(), ElementsAre("apps/a.yaml", "apps/b.yaml"));

  // Gogs signs like Gitea (bare hex), under its own header.
  r.headers.erase("x-gogs-signature");
  r.headers["x-gitea-signature"] = manifest::HmacSha256Hex(kSecret, kGogsPush);
  EXPECT_THAT(Parse("gogs", r), StatusIs(absl::StatusCode::kUnauthenticated,
                                         AllOf(HasSubstr("receiver \"hooks\" (gogs)"),
                                               HasSubstr("missing X-Gogs-Signature"))));
  r.headers["x-gogs-signature"] = "sha256=" + manifest::HmacSha256Hex(kSecret, kGogsPush);
  EXPECT_THAT(Parse("gogs", r),
              StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("does not match")));
}

TEST(WebhookTest, GogsTagCreateIsATagPush) {
  // Gogs sends no push event for a tag: only `create`, with the short name and the sha.
  std::string body = R"({"ref": "v1.0.0", "ref_type": "tag",
    "sha": "3333333333333333333333333333333333333333", "default_branch": "main",
    "repository": {"clone_url": "https://gogs.example.com/acme/deploy.git"}})";
  Request r{
      {{"x-gogs-event", "create"}, {"x-gogs-signature", manifest::HmacSha256Hex(kSecret, body)}},
      body};
  ASSERT_OK_AND_ASSIGN(WebhookOutcome out, Parse("gogs", r));
  EXPECT_TRUE(out.is_push);
  EXPECT_EQ(out.push.ref(), "refs/tags/v1.0.0");
  EXPECT_EQ(out.push.after(), "3333333333333333333333333333333333333333");
  EXPECT_EQ(out.push.repo_url(), "https://gogs.example.com/acme/deploy.git");

  // A branch's create event is followed by its push event: not a push itself.
  std::string branch = R"({"ref": "feature", "ref_type": "branch",
    "repository": {"clone_url": "https://gogs.example.com/acme/deploy.git"}})";
  Request b{
      {{"x-gogs-event", "create"}, {"x-gogs-signature", manifest::HmacSha256Hex(kSecret, branch)}},
      branch};
  ASSERT_OK_AND_ASSIGN(WebhookOutcome created, Parse("gogs", b));
  EXPECT_FALSE(created.is_push);
  EXPECT_THAT(created.reason, HasSubstr("branch"));

  // Tag deletions arrive as `delete`: not a push.
  Request d{
      {{"x-gogs-event", "delete"}, {"x-gogs-signature", manifest::HmacSha256Hex(kSecret, body)}},
      body};
  ASSERT_OK_AND_ASSIGN(WebhookOutcome deleted, Parse("gogs", d));
  EXPECT_FALSE(deleted.is_push);
}

TEST(WebhookTest, GogsCommitListAtTheFeedLimitMeansUnknownPaths) {
  // Gogs cuts the list at FEED_MAX_COMMIT_NUM (5) and does not say how many there were.
  std::string body = R"({"ref": "refs/heads/main", "before": "1111", "after": "2222",
    "repository": {"clone_url": "https://gogs.example.com/acme/deploy.git"}, "commits": [
    {"added": ["a"], "modified": [], "removed": []}, {"added": ["b"], "modified": [], "removed": []},
    {"added": ["c"], "modified": [], "removed": []}, {"added": ["d"], "modified": [], "removed": []},
    {"added": ["e"], "modified": [], "removed": []}]})";
  Request r{
      {{"x-gogs-event", "push"}, {"x-gogs-signature", manifest::HmacSha256Hex(kSecret, body)}},
      body};
  ASSERT_OK_AND_ASSIGN(WebhookOutcome out, Parse("gogs", r));
  EXPECT_TRUE(out.is_push);
  EXPECT_TRUE(out.push.changed_paths().empty());
}

constexpr char kBitbucketServerPush[] = R"({"eventKey": "repo:refs_changed",
  "repository": {"slug": "deploy", "links": {
    "clone": [{"href": "ssh://git@bitbucket.example.com:7999/team/deploy.git", "name": "ssh"},
              {"href": "https://bitbucket.example.com/scm/team/deploy.git", "name": "http"}],
    "self": [{"href": "https://bitbucket.example.com/projects/TEAM/repos/deploy/browse"}]}},
  "changes": [
    {"ref": {"id": "refs/heads/old", "displayId": "old", "type": "BRANCH"},
     "refId": "refs/heads/old", "fromHash": "9999999999999999999999999999999999999999",
     "toHash": "0000000000000000000000000000000000000000", "type": "DELETE"},
    {"ref": {"id": "refs/tags/v3.0.0", "displayId": "v3.0.0", "type": "TAG"},
     "refId": "refs/tags/v3.0.0", "fromHash": "0000000000000000000000000000000000000000",
     "toHash": "6666666666666666666666666666666666666666", "type": "ADD"}]})";

TEST(WebhookTest, BitbucketServerRefsChanged) {
  Request r{
      {{"x-event-key", "repo:refs_changed"},
       {"x-request-id", "req-7"},
       {"x-hub-signature", "sha256=" + manifest::HmacSha256Hex(kSecret, kBitbucketServerPush)}},
      kBitbucketServerPush};
  ASSERT_OK_AND_ASSIGN(WebhookOutcome out, Parse("bitbucket-server", r));
  EXPECT_TRUE(out.is_push);
  EXPECT_EQ(out.event, "repo:refs_changed");
  EXPECT_EQ(out.delivery_id, "req-7");
  EXPECT_EQ(out.push.provider(), "bitbucket-server");
  // The http clone URL (WebhookPush holds one URL), in normal form.
  EXPECT_EQ(out.push.repo_url(), "https://bitbucket.example.com/scm/team/deploy.git");
  // The deleted branch is skipped; the tag is the push.
  EXPECT_EQ(out.push.ref(), "refs/tags/v3.0.0");
  EXPECT_EQ(out.push.before(), kZeros);
  EXPECT_EQ(out.push.after(), "6666666666666666666666666666666666666666");
  EXPECT_TRUE(out.push.changed_paths().empty());
}

TEST(WebhookTest, BitbucketServerPingAndProblems) {
  std::string ping = R"({"test": true})";
  Request p{{{"x-event-key", "diagnostics:ping"},
             {"x-hub-signature", "sha256=" + manifest::HmacSha256Hex(kSecret, ping)}},
            ping};
  ASSERT_OK_AND_ASSIGN(WebhookOutcome out, Parse("bitbucket-server", p));
  EXPECT_FALSE(out.is_push);
  EXPECT_THAT(out.reason, HasSubstr("diagnostics:ping"));

  // Bitbucket Cloud's header name, but a wrong signature.
  p.headers["x-hub-signature"] = "sha256=" + manifest::HmacSha256Hex("other", ping);
  EXPECT_THAT(Parse("bitbucket-server", p),
              StatusIs(absl::StatusCode::kUnauthenticated,
                       AllOf(HasSubstr("(bitbucket-server)"), HasSubstr("X-Hub-Signature"))));

  std::string no_clone = R"({"repository": {"links": {}}, "changes": []})";
  Request n{{{"x-event-key", "repo:refs_changed"},
             {"x-hub-signature", "sha256=" + manifest::HmacSha256Hex(kSecret, no_clone)}},
            no_clone};
  EXPECT_THAT(
      Parse("bitbucket-server", n),
      StatusIs(absl::StatusCode::kInvalidArgument,
               AllOf(HasSubstr("receiver \"hooks\""), HasSubstr("repository.links.clone[].href"))));

  std::string no_ref = R"({"repository": {"links": {"clone": [{"href": "ssh://git@h/x.git",
    "name": "ssh"}]}}, "changes": [{"toHash": "1234"}]})";
  Request f{{{"x-event-key", "repo:refs_changed"},
             {"x-hub-signature", "sha256=" + manifest::HmacSha256Hex(kSecret, no_ref)}},
            no_ref};
  EXPECT_THAT(Parse("bitbucket-server", f),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("changes[].ref.id")));
}

TEST(WebhookTest, BitbucketServerOnlyDeletionsAreNotPushes) {
  std::string body = R"({"repository": {"links": {"clone": [
    {"href": "ssh://git@bitbucket.example.com:7999/team/deploy.git", "name": "ssh"}]}},
    "changes": [{"ref": {"id": "refs/heads/old"}, "fromHash": "9999",
                 "toHash": "0000000000000000000000000000000000000000", "type": "DELETE"}]})";
  Request r{{{"x-event-key", "repo:refs_changed"},
             {"x-hub-signature", "sha256=" + manifest::HmacSha256Hex(kSecret, body)}},
            body};
  ASSERT_OK_AND_ASSIGN(WebhookOutcome out, Parse("bitbucket-server", r));
  EXPECT_FALSE(out.is_push);
  EXPECT_THAT(out.reason, HasSubstr("refs/heads/old was deleted"));
}

constexpr char kAzurePush[] = R"({"id": "03c164c2-8912-4d5e-8009-3707d5f83734",
  "eventType": "git.push", "publisherId": "tfs",
  "resource": {
    "refUpdates": [{"name": "refs/heads/main",
                    "oldObjectId": "aad331d8d3b131fa9ae03cf5e53965b51942618a",
                    "newObjectId": "33b55f7cb7e7e245323987634f960cf4a6e6bc74"}],
    "repository": {"name": "deploy",
                   "remoteUrl": "https://acme@dev.azure.com/acme/Platform/_git/deploy"}}})";

TEST(WebhookTest, AzureDevOpsPushWithBasicAuth) {
  Request r{{{"authorization", Basic("anyone", kSecret)}}, kAzurePush};
  ASSERT_OK_AND_ASSIGN(WebhookOutcome out, Parse("azuredevops", r));
  EXPECT_TRUE(out.is_push);
  EXPECT_EQ(out.event, "git.push");
  EXPECT_EQ(out.delivery_id, "03c164c2-8912-4d5e-8009-3707d5f83734");
  EXPECT_EQ(out.push.provider(), "azuredevops");
  // Azure puts the organisation as a user name in remoteUrl; the normal form drops it.
  EXPECT_EQ(out.push.repo_url(), "https://dev.azure.com/acme/Platform/_git/deploy");
  EXPECT_EQ(out.push.ref(), "refs/heads/main");
  EXPECT_EQ(out.push.before(), "aad331d8d3b131fa9ae03cf5e53965b51942618a");
  EXPECT_EQ(out.push.after(), "33b55f7cb7e7e245323987634f960cf4a6e6bc74");
  EXPECT_TRUE(out.push.changed_paths().empty());
  // A password containing ':' is fine: only the first ':' separates the user name.
  ASSERT_OK(
      Parse("azuredevops", {{{"authorization", Basic("u", "a:b")}}, kAzurePush}, "a:b").status());
}

TEST(WebhookTest, AzureDevOpsAuthProblems) {
  Request r{{}, kAzurePush};
  EXPECT_THAT(Parse("azuredevops", r), StatusIs(absl::StatusCode::kUnauthenticated,
                                                AllOf(HasSubstr("receiver \"hooks\" (azuredevops)"),
                                                      HasSubstr("missing Authorization header"))));
  r.headers["authorization"] = Basic("anyone", "wrong");
  EXPECT_THAT(Parse("azuredevops", r),
              StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("wrong password")));
  r.headers["authorization"] = "Basic " + absl::Base64Escape(kSecret);  // no "user:"
  EXPECT_THAT(Parse("azuredevops", r),
              StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("no password")));
  r.headers["authorization"] = "Basic !!!not-base64!!!";
  EXPECT_THAT(Parse("azuredevops", r),
              StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("not base64")));
  r.headers["authorization"] = std::string("Bearer ") + kSecret;
  EXPECT_THAT(Parse("azuredevops", r),
              StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("not Basic")));
}

TEST(WebhookTest, AzureDevOpsOtherEventsAndDeletions) {
  std::string pr = R"({"id": "e1", "eventType": "git.pullrequest.created", "resource": {}})";
  Request r{{{"authorization", Basic("u", kSecret)}}, pr};
  ASSERT_OK_AND_ASSIGN(WebhookOutcome out, Parse("azuredevops", r));
  EXPECT_FALSE(out.is_push);
  EXPECT_THAT(out.reason, HasSubstr("git.pullrequest.created"));

  std::string deleted = R"({"id": "e2", "eventType": "git.push", "resource": {
    "refUpdates": [{"name": "refs/heads/old", "oldObjectId": "aaaa",
                    "newObjectId": "0000000000000000000000000000000000000000"}],
    "repository": {"remoteUrl": "https://dev.azure.com/acme/Platform/_git/deploy"}}})";
  r.body = deleted;
  ASSERT_OK_AND_ASSIGN(WebhookOutcome del, Parse("azuredevops", r));
  EXPECT_FALSE(del.is_push);
  EXPECT_THAT(del.reason, HasSubstr("refs/heads/old was deleted"));

  r.body = R"({"id": "e3", "eventType": "git.push", "resource": {"refUpdates": []}})";
  EXPECT_THAT(Parse("azuredevops", r), StatusIs(absl::StatusCode::kInvalidArgument,
                                                AllOf(HasSubstr("receiver \"hooks\""),
                                                      HasSubstr("resource.repository.remoteUrl"))));
  r.body = R"({"id": "e4"})";
  EXPECT_THAT(Parse("azuredevops", r),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("eventType")));
}

// A deleted branch is not a push of commit 0000…: every provider reports it as ignored
// with the ref in the reason, so nothing is queued.
TEST(WebhookTest, DeletedBranchIsNotAPushForEveryProvider) {
  std::string commit_list = std::string(R"({"ref": "refs/heads/gone", "before": "1111",
    "after": ")") + kZeros + R"(", "commits": [],
    "repository": {"clone_url": "https://git.example.com/acme/deploy.git"},
    "project": {"git_http_url": "https://git.example.com/acme/deploy.git"}})";
  struct Case {
    const char* provider;
    std::map<std::string, std::string> headers;
  };
  std::vector<Case> cases = {
      {"github",
       {{"x-github-event", "push"},
        {"x-hub-signature-256", "sha256=" + manifest::HmacSha256Hex(kSecret, commit_list)}}},
      {"gitea",
       {{"x-gitea-event", "push"},
        {"x-gitea-signature", manifest::HmacSha256Hex(kSecret, commit_list)}}},
      {"gogs",
       {{"x-gogs-event", "push"},
        {"x-gogs-signature", manifest::HmacSha256Hex(kSecret, commit_list)}}},
      {"gitlab", {{"x-gitlab-event", "Push Hook"}, {"x-gitlab-token", kSecret}}},
      {"generic", {{"authorization", std::string("Bearer ") + kSecret}}},
  };
  for (const Case& c : cases) {
    std::string body = commit_list;
    if (std::string(c.provider) == "generic") {
      body = std::string(R"({"repoURL": "https://git.example.com/acme/deploy.git",
        "ref": "refs/heads/gone", "after": ")") +
             kZeros + R"("})";
    }
    ASSERT_OK_AND_ASSIGN(WebhookOutcome out, Parse(c.provider, {c.headers, body}));
    EXPECT_FALSE(out.is_push) << c.provider;
    EXPECT_THAT(out.reason, HasSubstr("refs/heads/gone was deleted")) << c.provider;
  }
}

TEST(WebhookTest, GitLabTagDeletionAndSystemHooks) {
  std::string deleted = std::string(R"({"object_kind": "tag_push", "ref": "refs/tags/v1.0.0",
    "before": "82b3d5ae55f7080f1e6022629cdb57bfae7cccc7", "after": ")") +
                        kZeros + R"(", "checkout_sha": null,
    "project": {"git_http_url": "http://example.com/jsmith/example.git"}, "commits": [],
    "total_commits_count": 0})";
  Request r{{{"x-gitlab-event", "Tag Push Hook"}, {"x-gitlab-token", kSecret}}, deleted};
  ASSERT_OK_AND_ASSIGN(WebhookOutcome out, Parse("gitlab", r));
  EXPECT_FALSE(out.is_push);
  EXPECT_THAT(out.reason, HasSubstr("refs/tags/v1.0.0 was deleted"));

  // System hooks: only push and tag_push are pushes.
  std::string other = R"({"event_name": "project_create"})";
  Request s{{{"x-gitlab-event", "System Hook"}, {"x-gitlab-token", kSecret}}, other};
  ASSERT_OK_AND_ASSIGN(WebhookOutcome sys, Parse("gitlab", s));
  EXPECT_FALSE(sys.is_push);
  EXPECT_THAT(sys.reason, HasSubstr("project_create"));

  Request m{{{"x-gitlab-event", "Merge Request Hook"}, {"x-gitlab-token", kSecret}}, "{}"};
  ASSERT_OK_AND_ASSIGN(WebhookOutcome mr, Parse("gitlab", m));
  EXPECT_FALSE(mr.is_push);
  EXPECT_THAT(mr.reason, HasSubstr("Merge Request Hook"));
}

TEST(WebhookTest, BitbucketCloudTagPush) {
  std::string body =
      R"({"repository": {"links": {"html": {"href": "https://bitbucket.org/acme/deploy"}}},
    "push": {"changes": [{"old": null,
                          "new": {"type": "tag", "name": "v4", "target": {"hash": "cccc"}}}]}})";
  Request r{{{"x-event-key", "repo:push"},
             {"x-hub-signature", "sha256=" + manifest::HmacSha256Hex(kSecret, body)}},
            body};
  ASSERT_OK_AND_ASSIGN(WebhookOutcome out, Parse("bitbucket", r));
  EXPECT_TRUE(out.is_push);
  EXPECT_EQ(out.push.ref(), "refs/tags/v4");
  EXPECT_EQ(out.push.after(), "cccc");
}

}  // namespace
}  // namespace driftless::api
