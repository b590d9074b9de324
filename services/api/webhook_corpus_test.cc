// ParseWebhook over real deliveries in ../shared/corpus/webhooks (go-playground/webhooks
// testdata, octokit/webhooks examples, the GitLab and Gitea docs) and the signature vectors
// computed over those exact bytes (signature-test-vectors.json): registered only when the
// corpus is present (DRIFTLESS_REQUIRE_CORPUS makes its absence an error, as in CI).
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/escaping.h"
#include "common/manifest/manifest.h"
#include "common/testing/status_matchers.h"
#include "services/api/webhook.h"

namespace driftless::api {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// The secret every vector in signature-test-vectors.json is computed with.
constexpr char kVectorSecret[] = "It's a Secret to Everybody";

std::filesystem::path Corpus() { return std::filesystem::path(DRIFTLESS_CORPUS_DIR) / "webhooks"; }

std::string Read(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in) << path;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The vector for `file` and `header` in signature-test-vectors.json ("" if none).
std::string Vector(const std::string& file, const std::string& header) {
  manifest::Json vectors = manifest::Json::parse(Read(Corpus() / "signature-test-vectors.json"));
  for (const manifest::Json& v : vectors["vectors"]) {
    if (v.value("file", "") == file && v.value("header", "") == header) {
      return v.value("value", "");
    }
  }
  ADD_FAILURE() << "no " << header << " vector for " << file;
  return "";
}

struct Delivery {
  std::string provider;
  std::string file;                            // under webhooks/
  std::map<std::string, std::string> headers;  // lower-case names
  std::string secret = kVectorSecret;
};

absl::StatusOr<WebhookOutcome> Parse(const Delivery& d, const std::string& body) {
  WebhookInput in;
  in.receiver = "corpus";
  in.provider = d.provider;
  in.secret = d.secret;
  in.header = [&d](std::string_view name) {
    std::string lower(name);
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    auto it = d.headers.find(lower);
    return it == d.headers.end() ? std::string() : it->second;
  };
  in.body = body;
  return ParseWebhook(in);
}

absl::StatusOr<WebhookOutcome> Parse(const Delivery& d) {
  return Parse(d, Read(Corpus() / d.file));
}

// Headers from a "<Name>: <value>" per line file (gitlab-docs/*.headers.txt).
std::map<std::string, std::string> Headers(const std::string& file) {
  std::map<std::string, std::string> out;
  std::istringstream in(Read(Corpus() / file));
  std::string line;
  while (std::getline(in, line)) {
    size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string name = line.substr(0, colon);
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    std::string value = line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ')) value.erase(0, 1);
    while (!value.empty() && (value.back() == '\r' || value.back() == ' ')) value.pop_back();
    out[name] = value;
  }
  return out;
}

// Our HMAC agrees with every SHA-256 vector (GitHub's official one and those over the files).
TEST(WebhookCorpus, SignatureVectorsMatchOurHmac) {
  manifest::Json vectors = manifest::Json::parse(Read(Corpus() / "signature-test-vectors.json"));
  int checked = 0;
  for (const manifest::Json& v : vectors["vectors"]) {
    std::string value = v["value"];
    if (value.rfind("sha1=", 0) == 0) continue;  // legacy X-Hub-Signature SHA-1: not accepted
    std::string payload;
    if (v.contains("payload_text")) {
      payload = v["payload_text"];
    } else {
      std::filesystem::path file = Corpus() / v["file"].get<std::string>();
      if (!std::filesystem::exists(file)) continue;  // vectors for files not in this corpus
      payload = Read(file);
    }
    std::string hex = value.substr(value.find('=') == std::string::npos ? 0 : value.find('=') + 1);
    EXPECT_EQ(manifest::HmacSha256Hex(v["secret"].get<std::string>(), payload), hex) << v.dump();
    ++checked;
  }
  EXPECT_GE(checked, 9);
}

TEST(WebhookCorpus, GitHubPush) {
  const std::string file = "go-playground-testdata/github/push.json";
  Delivery d{"github",
             file,
             {{"x-github-event", "push"},
              {"x-github-delivery", "f6266f16-1bf3-46a5-9ea4-602e06ead473"},
              {"x-hub-signature-256", Vector(file, "X-Hub-Signature-256")}}};
  ASSERT_OK_AND_ASSIGN(WebhookOutcome out, Parse(d));
  EXPECT_TRUE(out.is_push);
  EXPECT_EQ(out.delivery_id, "f6266f16-1bf3-46a5-9ea4-602e06ead473");
  EXPECT_EQ(out.push.repo_url(), "https://github.com/binkkatal/sample_app.git");
  EXPECT_EQ(out.push.ref(), "refs/heads/master");
  EXPECT_EQ(out.push.before(), "737d38c599c1b2991664dfc6155d6bf516fcce36");
  EXPECT_EQ(out.push.after(), "fd489864e7642b48eaad6e3f155c10e46810ec72");
  EXPECT_THAT(out.push.changed_paths(),
              ElementsAre(".razorops.yaml", "app/controllers/application_controller.rb"));

  // One byte more and the vector no longer matches.
  EXPECT_THAT(Parse(d, Read(Corpus() / file) + "\n"),
              ::driftless::testing::StatusIs(absl::StatusCode::kUnauthenticated));
}

TEST(WebhookCorpus, GitHubNewBranchHasUnknownPaths) {
  const std::string file = "github-octokit/payload-examples/push/with-new-branch.payload.json";
  Delivery d{
      "github",
      file,
      {{"x-github-event", "push"}, {"x-hub-signature-256", Vector(file, "X-Hub-Signature-256")}}};
  ASSERT_OK_AND_ASSIGN(WebhookOutcome out, Parse(d));
  EXPECT_TRUE(out.is_push);
  EXPECT_EQ(out.push.repo_url(), "https://github.com/Codertocat/Hello-World.git");
  EXPECT_EQ(out.push.ref(), "refs/heads/master");
  EXPECT_EQ(out.push.before(), "0000000000000000000000000000000000000000");
  EXPECT_EQ(out.push.after(), "6113728f27ae82c7b1a177c8d03f9e96e0adf246");
  EXPECT_TRUE(out.push.changed_paths().empty());
}

// octokit's push examples delete the tag refs/tags/simple-tag: not a push.
TEST(WebhookCorpus, GitHubTagDeletionsAreNotPushes) {
  int seen = 0;
  for (const auto& entry :
       std::filesystem::directory_iterator(Corpus() / "github-octokit/payload-examples/push")) {
    std::string body = Read(entry.path());
    if (manifest::Json::parse(body).value("deleted", false) != true) continue;
    Delivery d{"github", "", {{"x-github-event", "push"}}};
    d.headers["x-hub-signature-256"] = "sha256=" + manifest::HmacSha256Hex(kVectorSecret, body);
    ASSERT_OK_AND_ASSIGN(WebhookOutcome out, Parse(d, body));
    EXPECT_FALSE(out.is_push) << entry.path();
    EXPECT_THAT(out.reason, HasSubstr("refs/tags/simple-tag was deleted"));
    ++seen;
  }
  EXPECT_GE(seen, 3);
}

TEST(WebhookCorpus, GitHubPingCreateAndDeleteAreNotPushes) {
  const std::string ping = "github-octokit/payload-examples/ping/payload.json";
  Delivery p{
      "github",
      ping,
      {{"x-github-event", "ping"}, {"x-hub-signature-256", Vector(ping, "X-Hub-Signature-256")}}};
  ASSERT_OK_AND_ASSIGN(WebhookOutcome out, Parse(p));
  EXPECT_FALSE(out.is_push);
  EXPECT_THAT(out.reason, HasSubstr("\"ping\""));
  for (const char* event : {"create", "delete"}) {
    std::string file = std::string("go-playground-testdata/github/") + event + ".json";
    std::string body = Read(Corpus() / file);
    Delivery d{"github",
               file,
               {{"x-github-event", event},
                {"x-hub-signature-256", "sha256=" + manifest::HmacSha256Hex(kVectorSecret, body)}}};
    ASSERT_OK_AND_ASSIGN(WebhookOutcome o, Parse(d));
    EXPECT_FALSE(o.is_push) << event;
  }
}

TEST(WebhookCorpus, GiteaPush) {
  const std::string file = "go-playground-testdata/gitea/push-event.json";
  Delivery d{"gitea",
             file,
             {{"x-gitea-event", "push"},
              {"x-gitea-delivery", "d-9"},
              {"x-gitea-signature", Vector(file, "X-Gitea-Signature")}}};
  ASSERT_OK_AND_ASSIGN(WebhookOutcome out, Parse(d));
  EXPECT_TRUE(out.is_push);
  EXPECT_EQ(out.delivery_id, "d-9");
  EXPECT_EQ(out.push.repo_url(), "http://localhost:3000/example/example.git");
  EXPECT_EQ(out.push.ref(), "refs/heads/master");
  EXPECT_EQ(out.push.after(), "67b56589a45103f891bdee7c0546e5d40bc02001");
  EXPECT_TRUE(out.push.changed_paths().empty());  // a new branch (before = 0000…)
}

TEST(WebhookCorpus, GiteaDocsPushWithDocumentedHeaders) {
  const std::string file = "gitea-docs/push-event.json";
  std::string body = Read(Corpus() / file);
  Delivery d{"gitea", file, Headers("gitea-docs/push-event.headers.txt")};
  d.headers["x-gitea-signature"] = manifest::HmacSha256Hex(kVectorSecret, body);
  ASSERT_OK_AND_ASSIGN(WebhookOutcome out, Parse(d));
  EXPECT_TRUE(out.is_push);
  EXPECT_EQ(out.delivery_id, "f6266f16-1bf3-46a5-9ea4-602e06ead473");
  EXPECT_EQ(out.push.repo_url(), "http://localhost:3000/gitea/webhooks.git");
  EXPECT_EQ(out.push.ref(), "refs/heads/develop");
  EXPECT_EQ(out.push.before(), "28e1879d029cb852e4844d9c718537df08844e03");
  EXPECT_EQ(out.push.after(), "bffeb74224043ba2feb48d137756c8a9331c449a");
  EXPECT_TRUE(out.push.changed_paths().empty());  // the example lists no files
}

TEST(WebhookCorpus, GiteaCreateAndDeleteAreNotPushes) {
  for (const char* event : {"create", "delete"}) {
    std::string file = std::string("go-playground-testdata/gitea/") + event + "-event.json";
    std::string body = Read(Corpus() / file);
    Delivery d{"gitea",
               file,
               {{"x-gitea-event", event},
                {"x-gitea-signature", manifest::HmacSha256Hex(kVectorSecret, body)}}};
    ASSERT_OK_AND_ASSIGN(WebhookOutcome out, Parse(d));
    EXPECT_FALSE(out.is_push) << event;
  }
}

TEST(WebhookCorpus, GogsPush) {
  const std::string file = "go-playground-testdata/gogs/push-event.json";
  Delivery d{"gogs",
             file,
             {{"x-gogs-event", "push"},
              {"x-gogs-delivery", "f6266f16-1bf3-46a5-9ea4-602e06ead473"},
              {"x-gogs-signature", Vector(file, "X-Gogs-Signature")}}};
  ASSERT_OK_AND_ASSIGN(WebhookOutcome out, Parse(d));
  EXPECT_TRUE(out.is_push);
  EXPECT_EQ(out.event, "push");
  EXPECT_EQ(out.delivery_id, "f6266f16-1bf3-46a5-9ea4-602e06ead473");
  EXPECT_EQ(out.push.repo_url(), "http://localhost:3000/unknwon/webhooks.git");
  EXPECT_EQ(out.push.ref(), "refs/heads/develop");
  EXPECT_EQ(out.push.before(), "28e1879d029cb852e4844d9c718537df08844e03");
  EXPECT_EQ(out.push.after(), "bffeb74224043ba2feb48d137756c8a9331c449a");
  EXPECT_TRUE(out.push.changed_paths().empty());  // this commit lists no files

  d.headers["x-gogs-signature"] = Vector(file, "X-Gogs-Signature").substr(1) + "0";
  EXPECT_THAT(Parse(d), ::driftless::testing::StatusIs(absl::StatusCode::kUnauthenticated,
                                                       HasSubstr("X-Gogs-Signature")));
}

// The corpus' Gogs create event is for a branch: its push event carries it.
TEST(WebhookCorpus, GogsBranchCreateIsNotAPush) {
  const std::string file = "go-playground-testdata/gogs/create-event.json";
  std::string body = Read(Corpus() / file);
  Delivery d{"gogs",
             file,
             {{"x-gogs-event", "create"},
              {"x-gogs-signature", manifest::HmacSha256Hex(kVectorSecret, body)}}};
  ASSERT_OK_AND_ASSIGN(WebhookOutcome out, Parse(d));
  EXPECT_FALSE(out.is_push);
  EXPECT_THAT(out.reason, HasSubstr("branch"));
}

TEST(WebhookCorpus, GitLabDocsPushAndTagPush) {
  Delivery push{"gitlab", "gitlab-docs/push-hook.json",
                Headers("gitlab-docs/push-hook.headers.txt")};
  push.headers["x-gitlab-token"] = kVectorSecret;
  ASSERT_OK_AND_ASSIGN(WebhookOutcome out, Parse(push));
  EXPECT_TRUE(out.is_push);
  EXPECT_EQ(out.event, "Push Hook");
  EXPECT_EQ(out.push.repo_url(), "http://example.com/mike/diaspora.git");
  EXPECT_EQ(out.push.ref(), "refs/heads/master");
  EXPECT_EQ(out.push.before(), "95790bf891e76fee5e1747ab589903a6a1f80f22");
  EXPECT_EQ(out.push.after(), "da1560886d4f094c3e6c9ef40349f7d38b5d27d7");
  // total_commits_count 4 with 2 commits listed: the paths are unknown.
  EXPECT_TRUE(out.push.changed_paths().empty());

  Delivery tag{"gitlab", "gitlab-docs/tag-push-hook.json",
               Headers("gitlab-docs/tag-push-hook.headers.txt")};
  tag.headers["x-gitlab-token"] = kVectorSecret;
  ASSERT_OK_AND_ASSIGN(WebhookOutcome t, Parse(tag));
  EXPECT_TRUE(t.is_push);
  EXPECT_EQ(t.event, "Tag Push Hook");
  EXPECT_EQ(t.push.repo_url(), "http://example.com/jsmith/example.git");
  EXPECT_EQ(t.push.ref(), "refs/tags/v1.0.0");
  EXPECT_EQ(t.push.after(), "82b3d5ae55f7080f1e6022629cdb57bfae7cccc7");

  tag.headers["x-gitlab-token"] = "It's a secret to everybody";
  EXPECT_THAT(Parse(tag), ::driftless::testing::StatusIs(absl::StatusCode::kUnauthenticated,
                                                         HasSubstr("wrong X-Gitlab-Token")));
}

TEST(WebhookCorpus, GitLabSystemHookPushAndTag) {
  Delivery push{"gitlab",
                "go-playground-testdata/gitlab/system-push-event.json",
                {{"x-gitlab-event", "System Hook"}, {"x-gitlab-token", kVectorSecret}}};
  ASSERT_OK_AND_ASSIGN(WebhookOutcome out, Parse(push));
  EXPECT_TRUE(out.is_push);
  EXPECT_EQ(out.push.ref(), "refs/heads/master");
  EXPECT_EQ(out.push.repo_url(), "http://example.com/mike/diaspora.git");
  Delivery tag{"gitlab",
               "go-playground-testdata/gitlab/system-tag-event.json",
               {{"x-gitlab-event", "System Hook"}, {"x-gitlab-token", kVectorSecret}}};
  ASSERT_OK_AND_ASSIGN(WebhookOutcome t, Parse(tag));
  EXPECT_TRUE(t.is_push);
  EXPECT_EQ(t.push.ref(), "refs/tags/v1.0.0");
}

TEST(WebhookCorpus, GitLabOtherEventsAreNotPushes) {
  for (const auto& [file, event] : std::map<std::string, std::string>{
           {"go-playground-testdata/gitlab/merge-request-event.json", "Merge Request Hook"},
           {"go-playground-testdata/gitlab/pipeline-event.json", "Pipeline Hook"}}) {
    Delivery d{"gitlab", file, {{"x-gitlab-event", event}, {"x-gitlab-token", kVectorSecret}}};
    ASSERT_OK_AND_ASSIGN(WebhookOutcome out, Parse(d));
    EXPECT_FALSE(out.is_push) << file;
    EXPECT_THAT(out.reason, HasSubstr(event));
  }
}

TEST(WebhookCorpus, BitbucketCloudPush) {
  const std::string file = "go-playground-testdata/bitbucket/repo-push.json";
  Delivery d{"bitbucket",
             file,
             {{"x-event-key", "repo:push"},
              {"x-request-uuid", "uuid-2"},
              {"x-hub-signature", Vector(file, "X-Hub-Signature")}}};
  ASSERT_OK_AND_ASSIGN(WebhookOutcome out, Parse(d));
  EXPECT_TRUE(out.is_push);
  EXPECT_EQ(out.delivery_id, "uuid-2");
  EXPECT_EQ(out.push.repo_url(), "https://api.bitbucket.org/bitbucket/bitbucket");
  EXPECT_EQ(out.push.ref(), "refs/heads/name-of-branch");
  EXPECT_EQ(out.push.after(), "709d658dc5b6d6afcd46049c2f332ee3f515a67d");
}

TEST(WebhookCorpus, BitbucketServerRefsChanged) {
  const std::string file = "go-playground-testdata/bitbucket-server/repo-refs-changed.json";
  Delivery d{"bitbucket-server",
             file,
             {{"x-event-key", "repo:refs_changed"},
              {"x-request-id", "8d4e9c9f-0a1b-4c2d-9e8f-7a6b5c4d3e2f"},
              {"x-hub-signature", Vector(file, "X-Hub-Signature")}}};
  // The corpus delivery deletes refs/heads/feature/wip: not a push.
  ASSERT_OK_AND_ASSIGN(WebhookOutcome out, Parse(d));
  EXPECT_FALSE(out.is_push);
  EXPECT_EQ(out.event, "repo:refs_changed");
  EXPECT_THAT(out.reason, HasSubstr("refs/heads/feature/wip was deleted"));

  // The same delivery as an update of the branch (re-signed): a push of the http clone URL.
  std::string body = Read(Corpus() / file);
  manifest::Json json = manifest::Json::parse(body);
  json["changes"][0]["type"] = "UPDATE";
  json["changes"][0]["toHash"] = "0123456789abcdef0123456789abcdef01234567";
  body = json.dump();
  d.headers["x-hub-signature"] = "sha256=" + manifest::HmacSha256Hex(kVectorSecret, body);
  ASSERT_OK_AND_ASSIGN(WebhookOutcome upd, Parse(d, body));
  EXPECT_TRUE(upd.is_push);
  EXPECT_EQ(upd.delivery_id, "8d4e9c9f-0a1b-4c2d-9e8f-7a6b5c4d3e2f");
  EXPECT_EQ(upd.push.repo_url(), "https://server.bitbucket.local/scm/~gopher/webhook-test.git");
  EXPECT_EQ(upd.push.ref(), "refs/heads/feature/wip");
  EXPECT_EQ(upd.push.before(), "32a0b8a740c2963c6f56bd8baf3dc05683d299e0");
  EXPECT_EQ(upd.push.after(), "0123456789abcdef0123456789abcdef01234567");
}

TEST(WebhookCorpus, AzureDevOpsGitPush) {
  Delivery d{"azuredevops",
             "go-playground-testdata/azuredevops/git.push.json",
             {{"authorization",
               "Basic " + absl::Base64Escape(std::string("driftless:") + kVectorSecret)}}};
  ASSERT_OK_AND_ASSIGN(WebhookOutcome out, Parse(d));
  EXPECT_TRUE(out.is_push);
  EXPECT_EQ(out.event, "git.push");
  EXPECT_EQ(out.delivery_id, "03c164c2-8912-4d5e-8009-3707d5f83734");
  EXPECT_EQ(out.push.repo_url(),
            "https://dev.azure.com/fabrikam-fiber-inc/DefaultCollection/_git/Fabrikam-Fiber-Git");
  EXPECT_EQ(out.push.ref(), "refs/heads/main");
  EXPECT_EQ(out.push.before(), "aad331d8d3b131fa9ae03cf5e53965b51942618a");
  EXPECT_EQ(out.push.after(), "33b55f7cb7e7e245323987634f960cf4a6e6bc74");

  d.headers["authorization"] = "Basic " + absl::Base64Escape("driftless:wrong");
  EXPECT_THAT(Parse(d), ::driftless::testing::StatusIs(absl::StatusCode::kUnauthenticated,
                                                       HasSubstr("wrong password")));
}

}  // namespace
}  // namespace driftless::api
