#include "services/api/webhook.h"

#include <openssl/crypto.h>

#include <algorithm>
#include <set>

#include "absl/strings/escaping.h"
#include "common/git/url.h"
#include "common/manifest/manifest.h"
#include "common/strings/str.h"

namespace driftless::api {
namespace {

using manifest::Json;

const Json& At(const Json& value, std::initializer_list<const char*> path) {
  static const Json kNull;
  const Json* at = &value;
  for (const char* key : path) {
    if (!at->is_object()) return kNull;
    auto it = at->find(key);
    if (it == at->end()) return kNull;
    at = &*it;
  }
  return *at;
}

std::string Str(const Json& value) { return value.is_string() ? value.get<std::string>() : ""; }

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

// For secrets of any length: comparing digests hides the secret's length too.
bool SecretEquals(std::string_view given, std::string_view secret) {
  return ConstantTimeEquals(manifest::Sha256Hex(given), manifest::Sha256Hex(secret));
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

// "receiver "gh" (github)": the start of every message.
std::string Who(const WebhookInput& in) {
  return strings::Cat("receiver \"", in.receiver, "\" (", in.provider, ")");
}

absl::Status Unauthenticated(const WebhookInput& in, std::string_view what) {
  return absl::UnauthenticatedError(strings::Cat(Who(in), ": ", what));
}

absl::Status NoSecret(const WebhookInput& in, std::string_view header_name) {
  return absl::UnauthenticatedError(strings::Cat(Who(in), " has no secret to check ", header_name,
                                                 " (spec.secret is empty): refused"));
}

// `header` holds "<prefix><hex HMAC of body>" (prefix may be empty).
absl::Status CheckHmac(const WebhookInput& in, std::string_view header_name,
                       std::string_view prefix) {
  if (in.secret.empty()) return NoSecret(in, header_name);
  std::string given = in.header(header_name);
  if (given.empty()) return Unauthenticated(in, strings::Cat("missing ", header_name, " header"));
  std::string expected = strings::Cat(prefix, manifest::HmacSha256Hex(in.secret, in.body));
  if (!ConstantTimeEquals(Lower(given), expected)) {
    return Unauthenticated(in, strings::Cat(header_name, " does not match the body"));
  }
  return absl::OkStatus();
}

// GitLab: the secret itself in a header.
absl::Status CheckToken(const WebhookInput& in, std::string_view header_name) {
  if (in.secret.empty()) return NoSecret(in, header_name);
  std::string given = in.header(header_name);
  if (given.empty()) return Unauthenticated(in, strings::Cat("missing ", header_name, " header"));
  if (!SecretEquals(given, in.secret)) {
    return Unauthenticated(in, strings::Cat("wrong ", header_name));
  }
  return absl::OkStatus();
}

// "Authorization: <scheme> <credentials>"; the scheme is case-insensitive (RFC 9110 §11.1).
absl::StatusOr<std::string> AuthorizationCredentials(const WebhookInput& in,
                                                     std::string_view scheme) {
  std::string header = in.header("Authorization");
  if (header.empty()) {
    return Unauthenticated(in, strings::Cat("missing Authorization header (", scheme, " <",
                                            scheme == "Basic" ? "user:secret" : "secret", ">)"));
  }
  size_t space = header.find(' ');
  if (space == std::string::npos || Lower(header.substr(0, space)) != Lower(scheme)) {
    return Unauthenticated(in, strings::Cat("Authorization header is not ", scheme, " auth"));
  }
  std::string credentials = header.substr(space + 1);
  while (!credentials.empty() && credentials.front() == ' ') credentials.erase(0, 1);
  while (!credentials.empty() && credentials.back() == ' ') credentials.pop_back();
  return credentials;
}

// `generic`: Authorization: Bearer <secret>.
absl::Status CheckBearer(const WebhookInput& in) {
  if (in.secret.empty()) {
    return absl::UnauthenticatedError(
        strings::Cat(Who(in), " has no secret (spec.secret is empty): a generic receiver needs ",
                     "one, sent as Authorization: Bearer <secret>; refused"));
  }
  absl::StatusOr<std::string> token = AuthorizationCredentials(in, "Bearer");
  if (!token.ok()) return token.status();
  if (!SecretEquals(*token, in.secret)) {
    return Unauthenticated(in, "wrong bearer token in the Authorization header");
  }
  return absl::OkStatus();
}

// Azure DevOps service hooks: HTTP Basic auth whose password is the secret (any user name).
absl::Status CheckBasic(const WebhookInput& in) {
  if (in.secret.empty()) return NoSecret(in, "the Authorization header");
  absl::StatusOr<std::string> encoded = AuthorizationCredentials(in, "Basic");
  if (!encoded.ok()) return encoded.status();
  std::string decoded;
  if (!absl::Base64Unescape(absl::string_view(encoded->data(), encoded->size()), &decoded)) {
    return Unauthenticated(in, "Authorization header: Basic credentials are not base64");
  }
  size_t colon = decoded.find(':');
  if (colon == std::string::npos) {
    return Unauthenticated(in, "Authorization header: Basic credentials have no password");
  }
  if (!SecretEquals(std::string_view(decoded).substr(colon + 1), in.secret)) {
    return Unauthenticated(in, "wrong password in the Authorization header");
  }
  return absl::OkStatus();
}

bool AllZeros(std::string_view sha) {
  return !sha.empty() && sha.find_first_not_of('0') == std::string_view::npos;
}

// Paths touched by the pushed commits (GitHub, Gitea, Gogs and GitLab list them per commit).
// Empty ("unknown") when the list may be incomplete: `commit_limit` is where the host
// truncates the list, `total_commits_count` (GitLab) and `total_commits` (Gitea) say how many
// there were.
std::vector<std::string> ChangedPaths(const Json& body, size_t commit_limit) {
  const Json& commits = At(body, {"commits"});
  if (!commits.is_array() || commits.empty() || commits.size() >= commit_limit) return {};
  for (const char* count : {"total_commits_count", "total_commits"}) {
    const Json& total = At(body, {count});
    if (total.is_number_integer() && total.get<int64_t>() > static_cast<int64_t>(commits.size())) {
      return {};
    }
  }
  std::set<std::string> paths;
  for (const Json& commit : commits) {
    for (const char* key : {"added", "modified", "removed"}) {
      const Json& list = At(commit, {key});
      if (!list.is_array()) return {};  // a host that does not list files
      for (const Json& p : list) {
        if (p.is_string()) paths.insert(p.get<std::string>());
      }
    }
  }
  return {paths.begin(), paths.end()};
}

std::string SafeId(std::string_view id) {
  std::string out;
  for (char c : id.substr(0, 128)) {
    out.push_back(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' ? c : '_');
  }
  return out;
}

absl::Status Missing(const WebhookInput& in, std::string_view field) {
  return absl::InvalidArgumentError(strings::Cat(Who(in), ": push body has no ", field));
}

// The first non-empty string at `paths`, normalised; "" if none.
std::string RepoUrl(const Json& body,
                    std::initializer_list<std::initializer_list<const char*>> paths) {
  for (const auto& path : paths) {
    std::string url = Str(At(body, path));
    if (!url.empty()) return git::NormalizeUrl(url);
  }
  return "";
}

// Fills `out` from a GitHub/Gitea/Gogs/GitLab style push body.
absl::Status FromCommitList(const WebhookInput& in, const Json& body,
                            std::initializer_list<std::initializer_list<const char*>> url_paths,
                            std::string_view url_field, size_t commit_limit, WebhookOutcome& out) {
  v1::WebhookPush& push = out.push;
  push.set_repo_url(RepoUrl(body, url_paths));
  push.set_ref(Str(At(body, {"ref"})));
  push.set_before(Str(At(body, {"before"})));
  push.set_after(Str(At(body, {"after"})));
  if (push.repo_url().empty()) return Missing(in, strings::Cat("repository URL (", url_field, ")"));
  if (push.ref().empty()) return Missing(in, "ref");
  if (AllZeros(push.after()) || At(body, {"deleted"}) == true) {
    out.is_push = false;
    out.reason = strings::Cat(push.ref(), " was deleted");
    return absl::OkStatus();
  }
  if (push.after().empty()) return Missing(in, "after");
  if (!AllZeros(push.before()) && At(body, {"forced"}) != true) {
    for (std::string& p : ChangedPaths(body, commit_limit)) push.add_changed_paths(std::move(p));
  }
  out.is_push = true;
  return absl::OkStatus();
}

// Gogs sends no push event for a tag, only `create` {"ref": "<tag>", "ref_type": "tag",
// "sha"}; a new branch gets both `create` and `push`, so its `create` is ignored.
absl::Status FromGogsCreate(const WebhookInput& in, const Json& body, WebhookOutcome& out) {
  std::string ref_type = Str(At(body, {"ref_type"}));
  if (ref_type != "tag") {
    out.reason = strings::Cat("create event for a ", ref_type.empty() ? "ref" : ref_type,
                              ": its push event carries it");
    return absl::OkStatus();
  }
  v1::WebhookPush& push = out.push;
  push.set_repo_url(RepoUrl(body, {{"repository", "clone_url"}, {"repository", "html_url"}}));
  if (push.repo_url().empty()) return Missing(in, "repository URL (repository.clone_url)");
  std::string ref = Str(At(body, {"ref"}));
  if (ref.empty()) return Missing(in, "ref");
  push.set_ref(StartsWith(ref, "refs/") ? ref : "refs/tags/" + ref);
  push.set_after(Str(At(body, {"sha"})));
  out.is_push = true;
  return absl::OkStatus();
}

absl::Status FromBitbucketCloud(const WebhookInput& in, const Json& body, WebhookOutcome& out) {
  v1::WebhookPush& push = out.push;
  push.set_repo_url(RepoUrl(body, {{"repository", "links", "html", "href"}}));
  if (push.repo_url().empty()) return Missing(in, "repository.links.html.href");
  const Json& changes = At(body, {"push", "changes"});
  if (!changes.is_array()) return Missing(in, "push.changes");
  for (const Json& change : changes) {
    const Json& next = At(change, {"new"});
    if (!next.is_object()) continue;  // a deleted branch or tag
    std::string name = Str(At(next, {"name"}));
    std::string type = Str(At(next, {"type"}));
    if (name.empty()) continue;
    push.set_ref(strings::Cat(type == "tag" ? "refs/tags/" : "refs/heads/", name));
    push.set_after(Str(At(next, {"target", "hash"})));
    push.set_before(Str(At(change, {"old", "target", "hash"})));
    out.is_push = true;
    return absl::OkStatus();
  }
  out.reason = "the push only deleted refs";
  return absl::OkStatus();
}

// Bitbucket Data Center: repository.links.clone[] {href, name: http|ssh}, changes[] {ref.id,
// fromHash, toHash, type: ADD|UPDATE|DELETE}. The http clone URL is preferred: WebhookPush has
// one URL and Applications are mostly written with https URLs.
absl::Status FromBitbucketServer(const WebhookInput& in, const Json& body, WebhookOutcome& out) {
  v1::WebhookPush& push = out.push;
  std::string http, ssh, other;
  if (const Json& clones = At(body, {"repository", "links", "clone"}); clones.is_array()) {
    for (const Json& clone : clones) {
      std::string href = Str(At(clone, {"href"}));
      std::string name = Str(At(clone, {"name"}));
      if (href.empty()) continue;
      std::string& slot = name == "http" || name == "https" ? http : name == "ssh" ? ssh : other;
      if (slot.empty()) slot = href;
    }
  }
  std::string url = !http.empty() ? http : !ssh.empty() ? ssh : other;
  if (url.empty()) return Missing(in, "repository.links.clone[].href");
  push.set_repo_url(git::NormalizeUrl(url));
  const Json& changes = At(body, {"changes"});
  if (!changes.is_array()) return Missing(in, "changes");
  std::vector<std::string> deleted;
  for (const Json& change : changes) {
    std::string ref = Str(At(change, {"ref", "id"}));
    if (ref.empty()) ref = Str(At(change, {"refId"}));
    if (ref.empty()) return Missing(in, "changes[].ref.id");
    std::string to = Str(At(change, {"toHash"}));
    if (Str(At(change, {"type"})) == "DELETE" || AllZeros(to)) {
      deleted.push_back(ref);
      continue;
    }
    if (to.empty()) return Missing(in, "changes[].toHash");
    push.set_ref(ref);
    push.set_before(Str(At(change, {"fromHash"})));
    push.set_after(to);
    out.is_push = true;
    return absl::OkStatus();
  }
  out.reason = deleted.empty() ? "the event changed no refs"
                               : strings::Cat(strings::Join(deleted, ", "), " was deleted");
  return absl::OkStatus();
}

// Azure DevOps `git.push`: resource.refUpdates[] {name, oldObjectId, newObjectId},
// resource.repository.remoteUrl. The payload lists no changed files.
absl::Status FromAzureDevOps(const WebhookInput& in, const Json& body, WebhookOutcome& out) {
  v1::WebhookPush& push = out.push;
  push.set_repo_url(RepoUrl(body, {{"resource", "repository", "remoteUrl"}}));
  if (push.repo_url().empty()) return Missing(in, "resource.repository.remoteUrl");
  const Json& updates = At(body, {"resource", "refUpdates"});
  if (!updates.is_array()) return Missing(in, "resource.refUpdates");
  std::vector<std::string> deleted;
  for (const Json& update : updates) {
    std::string ref = Str(At(update, {"name"}));
    std::string to = Str(At(update, {"newObjectId"}));
    if (ref.empty()) return Missing(in, "resource.refUpdates[].name");
    if (AllZeros(to)) {
      deleted.push_back(ref);
      continue;
    }
    if (to.empty()) return Missing(in, "resource.refUpdates[].newObjectId");
    push.set_ref(ref);
    push.set_before(Str(At(update, {"oldObjectId"})));
    push.set_after(to);
    out.is_push = true;
    return absl::OkStatus();
  }
  out.reason = deleted.empty() ? "the push updated no refs"
                               : strings::Cat(strings::Join(deleted, ", "), " was deleted");
  return absl::OkStatus();
}

absl::Status FromGenericBody(const WebhookInput& in, const Json& body, WebhookOutcome& out) {
  v1::WebhookPush& push = out.push;
  push.set_repo_url(RepoUrl(body, {{"repoURL"}}));
  push.set_ref(Str(At(body, {"ref"})));
  push.set_before(Str(At(body, {"before"})));
  push.set_after(Str(At(body, {"after"})));
  if (push.repo_url().empty()) return Missing(in, "repoURL");
  if (push.ref().empty()) return Missing(in, "ref");
  if (AllZeros(push.after())) {
    out.reason = strings::Cat(push.ref(), " was deleted");
    return absl::OkStatus();
  }
  const Json& paths = At(body, {"changedPaths"});
  if (paths.is_array()) {
    for (const Json& path : paths) {
      if (path.is_string()) push.add_changed_paths(path.get<std::string>());
    }
  }
  out.is_push = true;
  return absl::OkStatus();
}

// GitHub lists at most 20 commits per push; Gitea and Gogs cut the list at
// [ui] FEED_MAX_COMMIT_NUM (default 5), Gitea saying how many there were in total_commits,
// Gogs not at all. GitLab says total_commits_count.
constexpr size_t kGitHubCommitLimit = 20;
constexpr size_t kGiteaGogsCommitLimit = 5;
constexpr size_t kNoCommitLimit = 1000000;

}  // namespace

absl::StatusOr<WebhookOutcome> ParseWebhook(const WebhookInput& in) {
  WebhookOutcome out;
  out.push.set_receiver(in.receiver);
  out.push.set_provider(in.provider);
  const std::string& p = in.provider;
  std::string delivery;
  std::string event_header;  // where the event name comes from ("" = not a header)
  absl::Status auth;
  if (p == "github") {
    auth = CheckHmac(in, "X-Hub-Signature-256", "sha256=");
    event_header = "X-GitHub-Event";
    delivery = in.header("X-GitHub-Delivery");
  } else if (p == "gitea") {
    auth = CheckHmac(in, "X-Gitea-Signature", "");
    event_header = "X-Gitea-Event";
    delivery = in.header("X-Gitea-Delivery");
  } else if (p == "gogs") {
    auth = CheckHmac(in, "X-Gogs-Signature", "");
    event_header = "X-Gogs-Event";
    delivery = in.header("X-Gogs-Delivery");
  } else if (p == "gitlab") {
    auth = CheckToken(in, "X-Gitlab-Token");
    event_header = "X-Gitlab-Event";
    delivery = in.header("X-Gitlab-Event-UUID");
  } else if (p == "bitbucket") {
    auth = CheckHmac(in, "X-Hub-Signature", "sha256=");
    event_header = "X-Event-Key";
    delivery = in.header("X-Request-UUID");
  } else if (p == "bitbucket-server") {
    auth = CheckHmac(in, "X-Hub-Signature", "sha256=");
    event_header = "X-Event-Key";
    delivery = in.header("X-Request-Id");
  } else if (p == "azuredevops") {
    auth = CheckBasic(in);
    out.event = "git.push";  // checked against the body's eventType below
  } else if (p == "generic-hmac" || p == "generic") {
    auth = p == "generic" ? CheckBearer(in) : CheckHmac(in, "X-Signature", "sha256=");
    out.event = "push";
    delivery = in.header("X-Delivery-Id");
  } else {
    return absl::UnimplementedError(
        strings::Cat("receiver \"", in.receiver, "\": unknown type \"", p, "\""));
  }
  if (!auth.ok()) return auth;
  if (!event_header.empty()) {
    out.event = in.header(event_header);
    if (out.event.empty()) {
      return absl::InvalidArgumentError(
          strings::Cat(Who(in), ": missing ", event_header, " header"));
    }
  }
  auto set_delivery = [&out, &in](const std::string& id) {
    out.delivery_id =
        id.empty() ? "body-" + manifest::Sha256Hex(in.body).substr(0, 32) : SafeId(id);
  };
  set_delivery(delivery);

  const std::string& e = out.event;
  // Events that may be pushes; everything else (pings, issues, merge requests) is ignored
  // without reading the body.
  bool maybe_push = (p == "github" || p == "gitea") ? e == "push"
                    : p == "gogs"                   ? (e == "push" || e == "create")
                    : p == "gitlab"
                        ? (e == "Push Hook" || e == "Tag Push Hook" || e == "System Hook")
                    : p == "bitbucket"        ? e == "repo:push"
                    : p == "bitbucket-server" ? e == "repo:refs_changed"
                                              : true;
  if (!maybe_push) {
    out.reason = strings::Cat("event \"", e, "\" is not a push");
    return out;
  }
  Json body = Json::parse(in.body, nullptr, /*allow_exceptions=*/false);
  if (!body.is_object()) {
    return absl::InvalidArgumentError(strings::Cat(Who(in), ": body is not a JSON object"));
  }
  absl::Status s;
  if (p == "github") {
    s = FromCommitList(in, body, {{"repository", "clone_url"}, {"repository", "html_url"}},
                       "repository.clone_url", kGitHubCommitLimit, out);
  } else if (p == "gitea" || (p == "gogs" && e == "push")) {
    s = FromCommitList(in, body, {{"repository", "clone_url"}, {"repository", "html_url"}},
                       "repository.clone_url", kGiteaGogsCommitLimit, out);
  } else if (p == "gogs") {
    s = FromGogsCreate(in, body, out);
  } else if (p == "gitlab") {
    if (e == "System Hook") {
      // System hooks carry every kind of event; only pushes and tag pushes are wanted.
      std::string name = Str(At(body, {"event_name"}));
      if (name != "push" && name != "tag_push") {
        out.reason = strings::Cat("system hook event \"", name, "\" is not a push");
        return out;
      }
    }
    s = FromCommitList(
        in, body,
        {{"project", "git_http_url"}, {"repository", "git_http_url"}, {"project", "web_url"}},
        "project.git_http_url", kNoCommitLimit, out);
  } else if (p == "bitbucket") {
    s = FromBitbucketCloud(in, body, out);
  } else if (p == "bitbucket-server") {
    s = FromBitbucketServer(in, body, out);
  } else if (p == "azuredevops") {
    out.event = Str(At(body, {"eventType"}));
    if (out.event.empty()) return Missing(in, "eventType");
    set_delivery(Str(At(body, {"id"})));
    if (out.event != "git.push") {
      out.reason = strings::Cat("event \"", out.event, "\" is not a push");
      return out;
    }
    s = FromAzureDevOps(in, body, out);
  } else {
    s = FromGenericBody(in, body, out);
  }
  if (!s.ok()) return s;
  return out;
}

}  // namespace driftless::api
