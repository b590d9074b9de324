// Webhook ingestion, the pure part: given a Receiver's type and secret and an HTTP request
// from a git host, check the signature and turn a push into a driftless.v1.WebhookPush.
// No I/O: webhook_receiver.h looks up the Receiver, refuses replays and publishes.
//
//   provider       signature                                    push event
//   github         X-Hub-Signature-256: sha256=<hex HMAC>       X-GitHub-Event: push
//   gitea          X-Gitea-Signature: <hex HMAC>                X-Gitea-Event: push
//   gitlab         X-Gitlab-Token: <secret>                     X-Gitlab-Event: Push Hook,
//                                                               Tag Push Hook
//   bitbucket      X-Hub-Signature: sha256=<hex HMAC>           X-Event-Key: repo:push
//   generic-hmac   X-Signature: sha256=<hex HMAC>               any; body below
//   generic        none (secret unused)                         any; body below
//
// HMACs are HMAC-SHA256 of the raw body keyed by the secret, compared in constant time.
// The generic body is {"repoURL", "ref", "before", "after", "changedPaths": [...]}.
// The HMAC is OpenSSL's (no project library had one when this was written).
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "driftless/v1/events.pb.h"

namespace driftless::api {

namespace v1 = ::driftless::v1;

struct WebhookInput {
  std::string receiver;  // the Receiver's name (from the URL)
  std::string provider;  // Receiver spec.type
  std::string secret;    // Receiver spec.secret; may be empty only for "generic"
  // The request header `name` (case-insensitive), "" if absent.
  std::function<std::string(std::string_view name)> header;
  std::string_view body;
};

struct WebhookOutcome {
  // False for deliveries that are fine but not pushes (GitHub's ping, an issue event):
  // answered 200 and otherwise ignored; `reason` says why.
  bool is_push = false;
  std::string reason;
  std::string event;        // the provider's event name ("push", "Push Hook", "repo:push")
  std::string delivery_id;  // the provider's delivery id, else a digest of the body
  v1::WebhookPush push;     // set when is_push
};

// Errors: kUnauthenticated (signature or token missing or wrong, or no secret configured for
// a provider that needs one), kInvalidArgument (a push whose body is not the provider's JSON,
// or that lacks the repository URL or ref; the message says which field), kUnimplemented
// (unknown provider).
absl::StatusOr<WebhookOutcome> ParseWebhook(const WebhookInput& input);

// Hex HMAC-SHA256 of `data` keyed by `key` (exposed for tests and senders).
std::string HmacSha256Hex(std::string_view key, std::string_view data);

}  // namespace driftless::api
