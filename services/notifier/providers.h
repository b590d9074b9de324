// NotificationProvider and Alert resources (../shared/DESIGN.md §2) as the notifier uses them,
// and the request each provider type sends for an event. Pure: no I/O.
//
//   DL_ASSIGN_OR_RETURN(Provider slack, ProviderOf("team-slack", provider_object));
//   Alert alert = AlertOf("failures", alert_object);
//   if (alert.Matches(event)) {
//     DL_ASSIGN_OR_RETURN(OutgoingRequest r, RequestFor(slack, event));
//     ... POST r.body to r.url with r.headers ...
//   }
//
// Provider types and their bodies:
//   webhook       the driftless JSON event (WebhookBody), plus the provider's headers
//   generic-hmac  the same, signed: X-Signature: sha256=<hex HMAC-SHA256(secret, body)>
//   slack         an incoming-webhook message: `text` (the fallback) and Block Kit blocks
//                 (header, message, fields, context with the event id); channel/username
//   msteams       a Workflows message with an Adaptive Card 1.4 (title, message, facts)
//   discord       Discord's Execute-Webhook body: one embed (title, description, colour by
//                 severity, fields, footer with the event id, timestamp); username
// Every request carries X-Driftless-Event-Id so receivers can drop duplicates.
#pragma once

#include <map>
#include <regex>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/manifest/manifest.h"
#include "driftless/v1/events.pb.h"
#include "services/notifier/notify.h"

namespace driftless::notifier {

struct Provider {
  std::string name;
  std::string type;     // webhook | generic-hmac | slack | msteams | discord
  std::string address;  // the URL (a secret: only UrlForLog of it is ever shown)
  std::string channel;
  std::string username;
  std::string secret;  // generic-hmac key
  std::map<std::string, std::string> headers;
  absl::Duration timeout = absl::Seconds(5);
  bool suspend = false;
};

// A stored NotificationProvider's spec. kInvalidArgument naming the provider and field for a
// type this notifier does not send, a missing address or a generic-hmac without secret.
absl::StatusOr<Provider> ProviderOf(std::string_view name, const manifest::Json& object);

struct Alert {
  std::string name;
  std::string provider;                   // spec.providerRef.name
  EventFilter event_types;                // empty: every type
  std::vector<std::string> applications;  // globs; empty: every application
  driftless::v1::Severity min_severity = driftless::v1::SEVERITY_INFO;
  std::vector<std::regex> inclusions;  // when set, the message must match one
  std::vector<std::regex> exclusions;  // a message matching one is not sent
  bool suspend = false;

  bool Matches(const driftless::v1::Event& event) const;
};

// A stored Alert's spec. kInvalidArgument naming the alert for a regex that does not compile.
absl::StatusOr<Alert> AlertOf(std::string_view name, const manifest::Json& object);

// An Application's own `spec.notifications: [{on: [types], provider}]` (no `on`: every type).
struct Subscription {
  EventFilter on;
  std::string provider;
};
std::vector<Subscription> SubscriptionsOf(const manifest::Json& application);

struct OutgoingRequest {
  std::string url;
  std::string body;
  std::map<std::string, std::string> headers;
};

// What `provider` POSTs for `event`. kInternal if the event cannot be converted.
absl::StatusOr<OutgoingRequest> RequestFor(const Provider& provider,
                                           const driftless::v1::Event& event);

}  // namespace driftless::notifier
