// Webhook ingestion, the pure part: given a Receiver's type and secret and an HTTP request
// from a git host, check the authentication and turn a push into a driftless.v1.WebhookPush.
// No I/O: webhook_receiver.h looks up the Receiver, refuses replays and publishes.
//
//   provider          authentication                            push events
//   github            X-Hub-Signature-256: sha256=<hex HMAC>    X-GitHub-Event: push
//   gitea             X-Gitea-Signature: <hex HMAC>             X-Gitea-Event: push
//   gogs              X-Gogs-Signature: <hex HMAC>              X-Gogs-Event: push, create (tag)
//   gitlab            X-Gitlab-Token: <secret>                  X-Gitlab-Event: Push Hook,
//                                                               Tag Push Hook, System Hook
//   bitbucket         X-Hub-Signature: sha256=<hex HMAC>        X-Event-Key: repo:push
//   bitbucket-server  X-Hub-Signature: sha256=<hex HMAC>        X-Event-Key: repo:refs_changed
//   azuredevops       Authorization: Basic <user:secret>        body eventType: git.push
//   generic-hmac      X-Signature: sha256=<hex HMAC>            any; body below
//   generic           Authorization: Bearer <secret>            any; body below
//
// HMACs are HMAC-SHA256 of the raw body keyed by the secret; signatures, tokens and passwords
// are compared in constant time. Every provider needs a secret: a receiver without one is
// refused. The generic body is {"repoURL", "ref", "before", "after", "changedPaths": [...]}.
// The HMAC is OpenSSL's (no project library had one when this was written).
//
// What a WebhookPush carries:
//   repo_url  the repository's clone URL (https where the host sends one) passed through
//             git::NormalizeUrl, the key the repo-poller indexes sources by;
//   ref       always the full ref: "refs/heads/<branch>" or "refs/tags/<tag>" (Gogs' tag
//             `create` event and Bitbucket Cloud's short names are expanded);
//   before/after  commit ids as the host sends them; `after` may be empty when the host does
//             not send one (a Gogs tag without a sha);
//   changed_paths  the union of paths touched by the pushed commits when the host lists them
//             all; empty means "unknown" (new branch, force push, truncated list, hosts that
//             do not list files), and consumers must then treat every path as changed.
// A delivery that only deletes refs (after = 0000…, `deleted`, Bitbucket DELETE changes) is
// not a push: is_push is false and `reason` names the deleted ref.
// A delivery with several ref changes (Bitbucket, Azure DevOps) yields the first ref that was
// not deleted; the poller re-polls every source of the repository anyway.
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
  std::string secret;    // Receiver spec.secret; required by every provider
  // The request header `name` (case-insensitive), "" if absent.
  std::function<std::string(std::string_view name)> header;
  std::string_view body;
};

struct WebhookOutcome {
  // False for deliveries that are fine but not pushes (a ping, an issue event, a deleted
  // branch): answered 200 and otherwise ignored; `reason` says why.
  bool is_push = false;
  std::string reason;
  std::string event;        // the provider's event name ("push", "Push Hook", "git.push")
  std::string delivery_id;  // the provider's delivery id, else a digest of the body
  v1::WebhookPush push;     // set when is_push
};

// Checks and parses one delivery. Thread-safe (no state).
// Errors, each naming the receiver and the header or body field at fault:
//   kUnauthenticated  signature, token or password missing or wrong, or the receiver has no
//                     secret (every provider needs one, `generic` included);
//   kInvalidArgument  the event header is missing, or a push whose body is not the provider's
//                     JSON or lacks the repository URL or ref;
//   kUnimplemented    unknown provider.
absl::StatusOr<WebhookOutcome> ParseWebhook(const WebhookInput& input);

}  // namespace driftless::api
