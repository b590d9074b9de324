#include "services/api/webhook.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <set>

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

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// `header` holds "<prefix><hex HMAC of body>" (prefix may be empty).
absl::Status CheckHmac(const WebhookInput& in, std::string_view header_name,
                       std::string_view prefix) {
  if (in.secret.empty()) {
    return absl::UnauthenticatedError(strings::Cat("receiver \"", in.receiver, "\" (", in.provider,
                                                   ") has no secret to check ", header_name));
  }
  std::string given = in.header(header_name);
  if (given.empty()) {
    return absl::UnauthenticatedError(
        strings::Cat("receiver \"", in.receiver, "\": missing ", header_name, " header"));
  }
  std::string expected = strings::Cat(prefix, HmacSha256Hex(in.secret, in.body));
  if (!ConstantTimeEquals(Lower(given), expected)) {
    return absl::UnauthenticatedError(
        strings::Cat("receiver \"", in.receiver, "\": ", header_name, " does not match the body"));
  }
  return absl::OkStatus();
}

bool AllZeros(std::string_view sha) {
  return !sha.empty() && sha.find_first_not_of('0') == std::string_view::npos;
}

// Paths touched by the pushed commits (GitHub, Gitea and GitLab list them per commit).
// Empty ("unknown") when the list may be incomplete.
std::vector<std::string> ChangedPaths(const Json& body, size_t commit_limit) {
  const Json& commits = At(body, {"commits"});
  if (!commits.is_array() || commits.empty() || commits.size() >= commit_limit) return {};
  const Json& total = At(body, {"total_commits_count"});
  if (total.is_number_integer() && total.get<int64_t>() > static_cast<int64_t>(commits.size())) {
    return {};
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
  return absl::InvalidArgumentError(
      strings::Cat("receiver \"", in.receiver, "\" (", in.provider, "): push body has no ", field));
}

// Fills `out` from a GitHub/Gitea/GitLab style push body.
absl::Status FromCommitList(const WebhookInput& in, const Json& body,
                            std::initializer_list<std::initializer_list<const char*>> url_paths,
                            size_t commit_limit, WebhookOutcome& out) {
  v1::WebhookPush& push = out.push;
  for (const auto& path : url_paths) {
    push.set_repo_url(Str(At(body, path)));
    if (!push.repo_url().empty()) break;
  }
  push.set_ref(Str(At(body, {"ref"})));
  push.set_before(Str(At(body, {"before"})));
  push.set_after(Str(At(body, {"after"})));
  if (push.repo_url().empty()) return Missing(in, "repository URL");
  if (push.ref().empty()) return Missing(in, "ref");
  if (AllZeros(push.after()) || At(body, {"deleted"}) == true) {
    out.is_push = false;
    out.reason = strings::Cat(push.ref(), " was deleted");
    return absl::OkStatus();
  }
  if (!AllZeros(push.before()) && At(body, {"forced"}) != true) {
    for (std::string& p : ChangedPaths(body, commit_limit)) push.add_changed_paths(std::move(p));
  }
  out.is_push = true;
  return absl::OkStatus();
}

}  // namespace

std::string HmacSha256Hex(std::string_view key, std::string_view data) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac, &length);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(length * 2);
  for (unsigned int i = 0; i < length; ++i) {
    hex.push_back(kHex[mac[i] >> 4]);
    hex.push_back(kHex[mac[i] & 0xf]);
  }
  return hex;
}

absl::StatusOr<WebhookOutcome> ParseWebhook(const WebhookInput& in) {
  WebhookOutcome out;
  out.push.set_receiver(in.receiver);
  out.push.set_provider(in.provider);
  const std::string& p = in.provider;
  std::string delivery;
  absl::Status auth;
  if (p == "github") {
    auth = CheckHmac(in, "X-Hub-Signature-256", "sha256=");
    out.event = in.header("X-GitHub-Event");
    delivery = in.header("X-GitHub-Delivery");
  } else if (p == "gitea") {
    auth = CheckHmac(in, "X-Gitea-Signature", "");
    out.event = in.header("X-Gitea-Event");
    delivery = in.header("X-Gitea-Delivery");
  } else if (p == "gitlab") {
    std::string token = in.header("X-Gitlab-Token");
    if (in.secret.empty() || !ConstantTimeEquals(token, in.secret)) {
      auth = absl::UnauthenticatedError(strings::Cat("receiver \"", in.receiver,
                                                     "\": ", token.empty() ? "missing" : "wrong",
                                                     " X-Gitlab-Token"));
    }
    out.event = in.header("X-Gitlab-Event");
    delivery = in.header("X-Gitlab-Event-UUID");
  } else if (p == "bitbucket") {
    auth = CheckHmac(in, "X-Hub-Signature", "sha256=");
    out.event = in.header("X-Event-Key");
    delivery = in.header("X-Request-UUID");
  } else if (p == "generic-hmac" || p == "generic") {
    if (p == "generic-hmac") auth = CheckHmac(in, "X-Signature", "sha256=");
    out.event = "push";
    delivery = in.header("X-Delivery-Id");
  } else {
    return absl::UnimplementedError(
        strings::Cat("receiver \"", in.receiver, "\": unknown type \"", p, "\""));
  }
  if (!auth.ok()) return auth;
  out.delivery_id =
      delivery.empty() ? "body-" + manifest::Sha256Hex(in.body).substr(0, 32) : SafeId(delivery);

  bool push_event = (p == "github" || p == "gitea") ? out.event == "push"
                    : p == "gitlab"    ? (out.event == "Push Hook" || out.event == "Tag Push Hook")
                    : p == "bitbucket" ? out.event == "repo:push"
                                       : true;
  if (!push_event) {
    out.reason = strings::Cat("event \"", out.event, "\" is not a push");
    return out;
  }
  Json body = Json::parse(in.body, nullptr, /*allow_exceptions=*/false);
  if (!body.is_object()) {
    return absl::InvalidArgumentError(
        strings::Cat("receiver \"", in.receiver, "\" (", p, "): body is not a JSON object"));
  }
  if (p == "github") {
    // GitHub lists at most 20 commits per push.
    absl::Status s = FromCommitList(
        in, body, {{"repository", "clone_url"}, {"repository", "html_url"}}, 20, out);
    if (!s.ok()) return s;
  } else if (p == "gitea") {
    absl::Status s = FromCommitList(
        in, body, {{"repository", "clone_url"}, {"repository", "html_url"}}, 1000000, out);
    if (!s.ok()) return s;
  } else if (p == "gitlab") {
    absl::Status s = FromCommitList(
        in, body,
        {{"project", "git_http_url"}, {"repository", "git_http_url"}, {"project", "web_url"}},
        1000000, out);
    if (!s.ok()) return s;
  } else if (p == "bitbucket") {
    v1::WebhookPush& push = out.push;
    push.set_repo_url(Str(At(body, {"repository", "links", "html", "href"})));
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
      break;
    }
    if (!out.is_push) out.reason = "the push only deleted refs";
  } else {
    v1::WebhookPush& push = out.push;
    push.set_repo_url(Str(At(body, {"repoURL"})));
    push.set_ref(Str(At(body, {"ref"})));
    push.set_before(Str(At(body, {"before"})));
    push.set_after(Str(At(body, {"after"})));
    if (push.repo_url().empty()) return Missing(in, "repoURL");
    if (push.ref().empty()) return Missing(in, "ref");
    const Json& paths = At(body, {"changedPaths"});
    if (paths.is_array()) {
      for (const Json& path : paths) {
        if (path.is_string()) push.add_changed_paths(path.get<std::string>());
      }
    }
    out.is_push = true;
  }
  return out;
}

}  // namespace driftless::api
