#include "services/notifier/providers.h"

#include <google/protobuf/util/time_util.h>

#include <algorithm>

#include "common/config/units.h"
#include "common/match/glob.h"
#include "common/strings/str.h"

namespace driftless::notifier {
namespace {

using manifest::Json;
namespace v1 = ::driftless::v1;

const Json& SpecOf(const Json& object) {
  static const Json kEmpty = Json::object();
  if (!object.is_object() || !object.contains("spec") || !object["spec"].is_object()) {
    return kEmpty;
  }
  return object["spec"];
}

std::vector<std::string> Strings(const Json& spec, const char* field) {
  std::vector<std::string> out;
  if (auto it = spec.find(field); it != spec.end() && it->is_array()) {
    for (const Json& v : *it) {
      if (v.is_string()) out.push_back(v.get<std::string>());
    }
  }
  return out;
}

absl::StatusOr<std::vector<std::regex>> Regexes(std::string_view alert, const Json& spec,
                                                const char* field) {
  std::vector<std::regex> out;
  for (const std::string& text : Strings(spec, field)) {
    try {
      out.emplace_back(text, std::regex::ECMAScript);
    } catch (const std::regex_error& e) {
      return absl::InvalidArgumentError(strings::Cat("Alert ", alert, ": spec.", field, ": \"",
                                                     text,
                                                     "\" is not a regular expression: ", e.what()));
    }
  }
  return out;
}

v1::Severity SeverityOf(std::string_view name) {
  if (name == "error") return v1::SEVERITY_ERROR;
  if (name == "warning") return v1::SEVERITY_WARNING;
  return v1::SEVERITY_INFO;
}

// At most `max` bytes of `text`, never cutting a UTF-8 sequence.
std::string Truncate(std::string_view text, size_t max) {
  if (text.size() <= max) return std::string(text);
  size_t end = max;
  while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) --end;
  return std::string(text.substr(0, end));
}

// JSON text of a body; bytes that are not UTF-8 (a commit message, a tool's output) are
// replaced rather than failing the notification.
std::string Dump(const Json& body) {
  return body.dump(-1, ' ', false, Json::error_handler_t::replace);
}

// "guestbook: sync failed" (or the type alone for events about no application).
std::string Title(const v1::Event& e) {
  std::string what = e.type();
  std::replace(what.begin(), what.end(), '.', ' ');
  return e.application().empty() ? what : strings::Cat(e.application(), ": ", what);
}

// The facts every format shows, in this order; empty values left out.
std::vector<std::pair<std::string, std::string>> Facts(const v1::Event& e) {
  std::vector<std::pair<std::string, std::string>> facts;
  auto add = [&](std::string name, std::string value) {
    if (!value.empty()) facts.emplace_back(std::move(name), std::move(value));
  };
  add("Application", e.application());
  add("Revision", e.revision().substr(0, 12));
  add("Severity", std::string(SeverityName(e.severity())));
  add("Event", e.type());
  if (e.has_sync_finished() && !e.sync_finished().initiated_by().empty()) {
    add("Initiated by", e.sync_finished().initiated_by());
  }
  return facts;
}

std::string Time(const v1::Event& e) {
  return e.has_time() ? google::protobuf::util::TimeUtil::ToString(e.time()) : "";
}

Json SlackBody(const Provider& p, const v1::Event& e) {
  Json fields = Json::array();
  for (const auto& [name, value] : Facts(e)) {
    fields.push_back({{"type", "mrkdwn"}, {"text", strings::Cat("*", name, "*\n", value)}});
  }
  Json blocks = Json::array();
  blocks.push_back({{"type", "header"}, {"text", {{"type", "plain_text"}, {"text", Title(e)}}}});
  if (!e.message().empty()) {
    blocks.push_back({{"type", "section"},
                      {"text", {{"type", "mrkdwn"}, {"text", Truncate(e.message(), 3000)}}}});
  }
  if (!fields.empty()) blocks.push_back({{"type", "section"}, {"fields", fields}});
  blocks.push_back(
      {{"type", "context"},
       {"elements",
        Json::array({{{"type", "mrkdwn"}, {"text", strings::Cat("driftless event ", e.id())}}})}});
  Json body = {{"text", strings::Cat(Title(e), e.message().empty() ? "" : ": ", e.message())},
               {"blocks", std::move(blocks)}};
  if (!p.channel.empty()) body["channel"] = p.channel;
  if (!p.username.empty()) body["username"] = p.username;
  return body;
}

Json TeamsBody(const v1::Event& e) {
  Json facts = Json::array();
  for (const auto& [name, value] : Facts(e)) facts.push_back({{"title", name}, {"value", value}});
  Json message = {{"type", "TextBlock"}, {"text", e.message()}, {"wrap", true}};
  if (e.severity() == v1::SEVERITY_ERROR) message["color"] = "attention";
  Json card = {
      {"$schema", "http://adaptivecards.io/schemas/adaptive-card.json"},
      {"type", "AdaptiveCard"},
      {"version", "1.4"},
      {"body", Json::array({{{"type", "Container"},
                             {"items", Json::array({{{"type", "TextBlock"},
                                                     {"text", Title(e)},
                                                     {"size", "large"},
                                                     {"weight", "bolder"},
                                                     {"wrap", true}},
                                                    message,
                                                    {{"type", "FactSet"}, {"facts", facts}}})}}})},
      {"msteams", {{"width", "Full"}}}};
  return {{"type", "message"},
          {"attachments", Json::array({{{"contentType", "application/vnd.microsoft.card.adaptive"},
                                        {"content", std::move(card)}}})}};
}

Json DiscordBody(const Provider& p, const v1::Event& e) {
  Json fields = Json::array();
  for (const auto& [name, value] : Facts(e)) {
    fields.push_back({{"name", name}, {"value", value}, {"inline", true}});
  }
  const int color = e.severity() == v1::SEVERITY_ERROR     ? 0xE74C3C
                    : e.severity() == v1::SEVERITY_WARNING ? 0xF1C40F
                                                           : 0x2ECC71;
  Json embed = {{"title", Truncate(Title(e), 256)},
                {"description", Truncate(e.message(), 4096)},
                {"color", color},
                {"fields", std::move(fields)},
                {"footer", {{"text", strings::Cat("driftless event ", e.id())}}}};
  if (const std::string t = Time(e); !t.empty()) embed["timestamp"] = t;
  Json body = {{"embeds", Json::array({std::move(embed)})}};
  if (!p.username.empty()) body["username"] = p.username;
  return body;
}

}  // namespace

absl::StatusOr<Provider> ProviderOf(std::string_view name, const Json& object) {
  const Json& spec = SpecOf(object);
  Provider p{.name = std::string(name),
             .type = spec.value("type", ""),
             .address = spec.value("address", ""),
             .channel = spec.value("channel", ""),
             .username = spec.value("username", ""),
             .secret = spec.value("secret", ""),
             .suspend = spec.value("suspend", false)};
  auto invalid = [&](std::string_view why) {
    return absl::InvalidArgumentError(strings::Cat("NotificationProvider ", name, ": ", why));
  };
  static const std::vector<std::string> kTypes = {"webhook", "generic-hmac", "slack", "msteams",
                                                  "discord"};
  if (std::find(kTypes.begin(), kTypes.end(), p.type) == kTypes.end()) {
    return invalid(strings::Cat("spec.type \"", p.type, "\" is not sent by this notifier (",
                                "webhook, generic-hmac, slack, msteams, discord)"));
  }
  if (p.address.empty()) return invalid("spec.address is not set");
  if (p.type == "generic-hmac" && p.secret.empty()) {
    return invalid("spec.secret is not set (generic-hmac signs with it)");
  }
  if (auto h = spec.find("headers"); h != spec.end() && h->is_object()) {
    for (auto it = h->begin(); it != h->end(); ++it) {
      if (it.value().is_string()) p.headers[it.key()] = it.value().get<std::string>();
    }
  }
  if (auto t = spec.find("timeout"); t != spec.end() && t->is_string()) {
    absl::StatusOr<std::chrono::milliseconds> d = config::ParseDuration(t->get<std::string>());
    if (!d.ok()) return invalid(strings::Cat("spec.timeout: ", d.status().message()));
    p.timeout = absl::FromChrono(*d);
  }
  return p;
}

absl::StatusOr<Alert> AlertOf(std::string_view name, const Json& object) {
  const Json& spec = SpecOf(object);
  Alert a{.name = std::string(name),
          .applications = Strings(spec, "applications"),
          .min_severity = SeverityOf(spec.value("severity", "info")),
          .suspend = spec.value("suspend", false)};
  if (auto ref = spec.find("providerRef"); ref != spec.end() && ref->is_object()) {
    a.provider = ref->value("name", "");
  }
  a.event_types = EventFilter::Of(Strings(spec, "eventTypes"));
  DL_ASSIGN_OR_RETURN(a.inclusions, Regexes(name, spec, "inclusionList"));
  DL_ASSIGN_OR_RETURN(a.exclusions, Regexes(name, spec, "exclusionList"));
  return a;
}

bool Alert::Matches(const v1::Event& event) const {
  if (suspend) return false;
  if (!event_types.patterns().empty() && !event_types.Matches(event.type())) return false;
  if (!applications.empty() &&
      std::none_of(applications.begin(), applications.end(), [&](const std::string& glob) {
        return match::GlobMatch(glob, event.application());
      })) {
    return false;
  }
  // An event without a severity counts as info.
  const v1::Severity severity =
      event.severity() == v1::SEVERITY_UNSPECIFIED ? v1::SEVERITY_INFO : event.severity();
  if (severity < min_severity) return false;
  auto matches = [&](const std::regex& r) { return std::regex_search(event.message(), r); };
  if (!inclusions.empty() && std::none_of(inclusions.begin(), inclusions.end(), matches)) {
    return false;
  }
  return std::none_of(exclusions.begin(), exclusions.end(), matches);
}

std::vector<Subscription> SubscriptionsOf(const Json& application) {
  std::vector<Subscription> out;
  const Json& spec = SpecOf(application);
  auto rules = spec.find("notifications");
  if (rules == spec.end() || !rules->is_array()) return out;
  for (const Json& rule : *rules) {
    if (!rule.is_object() || !rule.contains("provider")) continue;
    std::vector<std::string> on = Strings(rule, "on");
    out.push_back({.on = EventFilter::Of(on.empty() ? std::vector<std::string>{"*"} : on),
                   .provider = rule.value("provider", "")});
  }
  return out;
}

absl::StatusOr<OutgoingRequest> RequestFor(const Provider& provider, const v1::Event& event) {
  OutgoingRequest r{.url = provider.address, .headers = provider.headers};
  r.headers["Content-Type"] = "application/json";
  r.headers["X-Driftless-Event-Id"] = event.id();
  if (provider.type == "slack") {
    r.body = Dump(SlackBody(provider, event));
  } else if (provider.type == "msteams") {
    r.body = Dump(TeamsBody(event));
  } else if (provider.type == "discord") {
    r.body = Dump(DiscordBody(provider, event));
  } else {
    DL_ASSIGN_OR_RETURN(r.body, WebhookBody(event));
    if (provider.type == "generic-hmac") {
      r.headers["X-Signature"] = "sha256=" + manifest::HmacSha256Hex(provider.secret, r.body);
    }
  }
  return r;
}

}  // namespace driftless::notifier
