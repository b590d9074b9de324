#include "cli/api/format.h"

#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <cctype>

#include "absl/time/time.h"
#include "common/strings/str.h"

namespace driftless::cli {
namespace {

using manifest::Json;

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string Short(std::string_view revision) { return std::string(revision.substr(0, 7)); }

// One line: newlines in messages would break table rows.
std::string OneLine(std::string_view text) {
  std::string out(text);
  std::replace(out.begin(), out.end(), '\n', ' ');
  return out;
}

std::string SyncNameOfJson(const Json& value) {
  if (!value.is_string()) return "Unknown";
  v1::SyncStatusCode code;
  if (!v1::SyncStatusCode_Parse(value.get<std::string>(), &code)) return "Unknown";
  return SyncName(code);
}

std::string HealthNameOfJson(const Json& value) {
  if (!value.is_string()) return "Unknown";
  v1::HealthStatusCode code;
  if (!v1::HealthStatusCode_Parse(value.get<std::string>(), &code)) return "Unknown";
  return HealthName(code);
}

std::string RefText(const v1::ObjectRef& ref) {
  std::string kind = ref.group().empty() ? ref.kind() : strings::Cat(ref.kind(), ".", ref.group());
  return ref.namespace_().empty() ? strings::Cat(kind, " ", ref.name())
                                  : strings::Cat(kind, " ", ref.namespace_(), "/", ref.name());
}

const Json& Field(const Json& object, std::initializer_list<const char*> path) {
  static const Json kNull;
  const Json* at = &object;
  for (const char* key : path) {
    if (!at->is_object()) return kNull;
    auto it = at->find(key);
    if (it == at->end()) return kNull;
    at = &*it;
  }
  return *at;
}

std::string Text(const Json& value) {
  if (value.is_string()) return value.get<std::string>();
  if (value.is_null()) return "";
  return value.dump();
}

}  // namespace

std::string SyncName(v1::SyncStatusCode code) {
  switch (code) {
    case v1::SYNC_STATUS_CODE_SYNCED:
      return "Synced";
    case v1::SYNC_STATUS_CODE_OUT_OF_SYNC:
      return "OutOfSync";
    default:
      return "Unknown";
  }
}

std::string HealthName(v1::HealthStatusCode code) {
  switch (code) {
    case v1::HEALTH_STATUS_CODE_HEALTHY:
      return "Healthy";
    case v1::HEALTH_STATUS_CODE_PROGRESSING:
      return "Progressing";
    case v1::HEALTH_STATUS_CODE_DEGRADED:
      return "Degraded";
    case v1::HEALTH_STATUS_CODE_SUSPENDED:
      return "Suspended";
    case v1::HEALTH_STATUS_CODE_MISSING:
      return "Missing";
    default:
      return "Unknown";
  }
}

std::string ApplyLine(const v1::ApplyResult& result) {
  return strings::Cat(Lower(result.kind()), ".driftless.dev/", result.name(), " ", result.action());
}

Json StatusJson(const v1::AppStatus& status) {
  std::string text;
  google::protobuf::util::JsonPrintOptions options;
  Json json = Json::object();
  if (google::protobuf::util::MessageToJsonString(status, &text, options).ok()) {
    json = Json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (!json.is_object()) json = Json::object();
  }
  json["sync"] = SyncNameOfJson(json.value("sync", Json()));
  json["health"] = HealthNameOfJson(json.value("health", Json()));
  if (auto it = json.find("resources"); it != json.end() && it->is_array()) {
    for (Json& r : *it) {
      if (!r.is_object()) continue;
      r["sync"] = SyncNameOfJson(r.value("sync", Json()));
      r["health"] = HealthNameOfJson(r.value("health", Json()));
    }
  }
  return json;
}

absl::StatusOr<Json> ApplicationJson(const v1::Application& app) {
  Json resource = Json::parse(app.resource().json(), nullptr, /*allow_exceptions=*/false);
  if (!resource.is_object()) {
    return absl::InvalidArgumentError(strings::Cat("the server sent application \"",
                                                   app.resource().name(),
                                                   "\" as something that is not a JSON object"));
  }
  Json out = Json::object();
  for (const char* key : {"apiVersion", "kind", "metadata", "spec"}) {
    if (resource.contains(key)) out[key] = resource[key];
  }
  out["status"] = StatusJson(app.status());
  return out;
}

absl::StatusOr<Json> ApplicationListJson(const std::vector<v1::Application>& apps) {
  Json items = Json::array();
  for (const v1::Application& app : apps) {
    absl::StatusOr<Json> item = ApplicationJson(app);
    if (!item.ok()) return item.status();
    items.push_back(*std::move(item));
  }
  return Json{{"apiVersion", "v1"}, {"kind", "List"}, {"items", std::move(items)}};
}

std::string Table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> widths;
  for (const auto& row : rows) {
    if (widths.size() < row.size()) widths.resize(row.size(), 0);
    for (size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  }
  std::string out;
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(widths[i] - row[i].size() + 3, ' ');
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line + "\n";
  }
  return out;
}

std::string AppsTable(const std::vector<v1::Application>& apps) {
  std::vector<std::vector<std::string>> rows = {{"NAME", "SYNC", "HEALTH", "REVISION", "MESSAGE"}};
  for (const v1::Application& app : apps) {
    const v1::AppStatus& s = app.status();
    std::string revision =
        s.last_applied_revision().empty() ? s.last_attempted_revision() : s.last_applied_revision();
    rows.push_back({app.resource().name(), SyncName(s.sync()), HealthName(s.health()),
                    Short(revision), OneLine(s.message())});
  }
  return Table(rows);
}

std::string KindPlural(std::string_view kind) {
  std::string lower = Lower(kind);
  if (!lower.empty() && lower.back() == 'y') return lower.substr(0, lower.size() - 1) + "ies";
  return lower + "s";
}

std::string ResourcesTable(const std::vector<v1::Resource>& resources) {
  std::vector<std::vector<std::string>> rows = {{"NAME", "GENERATION"}};
  for (const v1::Resource& r : resources) {
    rows.push_back({r.name(), strings::Cat(r.generation())});
  }
  return Table(rows);
}

absl::StatusOr<Json> ResourceListJson(const std::vector<v1::Resource>& resources) {
  Json items = Json::array();
  for (const v1::Resource& r : resources) {
    Json doc = Json::parse(r.json(), nullptr, /*allow_exceptions=*/false);
    if (!doc.is_object()) {
      return absl::InvalidArgumentError(strings::Cat("the server sent ", r.kind(), " \"", r.name(),
                                                     "\" as something that is not a JSON object"));
    }
    items.push_back(std::move(doc));
  }
  return Json{{"apiVersion", "v1"}, {"kind", "List"}, {"items", std::move(items)}};
}

std::string DescribeApplication(const v1::Application& app) {
  Json resource = Json::parse(app.resource().json(), nullptr, /*allow_exceptions=*/false);
  const v1::AppStatus& s = app.status();
  std::vector<std::vector<std::string>> fields;
  fields.push_back({"Name:", app.resource().name()});
  std::string project = Text(Field(resource, {"spec", "project"}));
  fields.push_back({"Project:", project.empty() ? "default" : project});
  std::string source = Text(Field(resource, {"spec", "source", "repoURL"}));
  std::string path = Text(Field(resource, {"spec", "source", "path"}));
  const Json& ref = Field(resource, {"spec", "source", "ref"});
  if (!path.empty()) strings::Append(source, " path ", path);
  if (ref.is_object()) {
    for (auto it = ref.begin(); it != ref.end(); ++it) {
      strings::Append(source, " ", it.key(), " ", Text(it.value()));
    }
  }
  fields.push_back({"Source:", source});
  std::string destination = Text(Field(resource, {"spec", "destination", "cluster"}));
  std::string ns = Text(Field(resource, {"spec", "destination", "namespace"}));
  if (!ns.empty()) strings::Append(destination, " namespace ", ns);
  fields.push_back({"Destination:", destination});
  fields.push_back({"Generation:", strings::Cat(app.resource().generation(), " (observed ",
                                                s.observed_generation(), ")")});
  fields.push_back({"Sync:", SyncName(s.sync())});
  fields.push_back({"Health:", HealthName(s.health())});
  fields.push_back({"Applied revision:", s.last_applied_revision()});
  fields.push_back({"Attempted revision:", s.last_attempted_revision()});
  if (!s.message().empty()) fields.push_back({"Message:", OneLine(s.message())});
  std::string out = Table(fields);

  if (s.conditions_size() > 0) {
    out += "\nConditions:\n";
    std::vector<std::vector<std::string>> rows = {{"  TYPE", "STATUS", "REASON", "MESSAGE"}};
    for (const v1::Condition& c : s.conditions()) {
      rows.push_back(
          {"  " + c.type(), c.status() ? "True" : "False", c.reason(), OneLine(c.message())});
    }
    out += Table(rows);
  }
  if (s.resources_size() > 0) {
    out += "\nObjects:\n";
    std::vector<std::vector<std::string>> rows = {{"  OBJECT", "SYNC", "HEALTH", "MESSAGE"}};
    for (const v1::ResourceStatus& r : s.resources()) {
      rows.push_back({"  " + RefText(r.ref()), SyncName(r.sync()), HealthName(r.health()),
                      OneLine(r.message())});
    }
    out += Table(rows);
  }
  return out;
}

bool WaitSatisfied(const v1::Application& app, const WaitConditions& conditions) {
  const v1::AppStatus& s = app.status();
  if (conditions.synced) {
    if (s.sync() != v1::SYNC_STATUS_CODE_SYNCED) return false;
    // The status must be about the current spec: an older generation's "Synced" does not
    // count (0: the pipeline does not report generations yet).
    if (s.observed_generation() != 0 && s.observed_generation() < app.resource().generation()) {
      return false;
    }
    if (!s.last_attempted_revision().empty() && s.last_applied_revision().empty()) return false;
  }
  if (conditions.healthy && s.health() != v1::HEALTH_STATUS_CODE_HEALTHY) return false;
  if (!conditions.for_revision.empty() &&
      (s.last_applied_revision().rfind(conditions.for_revision, 0) != 0)) {
    return false;
  }
  return true;
}

std::string WaitSummary(const v1::Application& app) {
  const v1::AppStatus& s = app.status();
  std::vector<std::vector<std::string>> fields = {
      {"Sync:", SyncName(s.sync())},
      {"Health:", HealthName(s.health())},
      {"Applied revision:", s.last_applied_revision()},
      {"Attempted revision:", s.last_attempted_revision()},
      {"Message:", OneLine(s.message())},
  };
  std::string out = Table(fields);
  if (s.conditions_size() > 0) {
    out += "Conditions:\n";
    std::vector<std::vector<std::string>> rows;
    for (const v1::Condition& c : s.conditions()) {
      rows.push_back(
          {"  " + c.type(), c.status() ? "True" : "False", c.reason(), OneLine(c.message())});
    }
    out += Table(rows);
  }
  return out;
}

std::string EventLine(const v1::Event& event) {
  absl::Time time = absl::FromUnixSeconds(event.time().seconds());
  std::string line = absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", time, absl::UTCTimeZone());
  strings::Append(line, "  ", event.type(), "  ",
                  event.application().empty() ? "-" : event.application());
  if (!event.revision().empty()) strings::Append(line, "  ", Short(event.revision()));
  if (!event.message().empty()) strings::Append(line, "  ", OneLine(event.message()));
  return line;
}

std::string EventJsonLine(const v1::Event& event) {
  std::string text;
  google::protobuf::util::JsonPrintOptions options;
  if (!google::protobuf::util::MessageToJsonString(event, &text, options).ok()) {
    return Json{{"id", event.id()}, {"type", event.type()}}.dump();
  }
  return text;
}

namespace {

std::string Rfc3339(const google::protobuf::Timestamp& time) {
  if (time.seconds() == 0 && time.nanos() == 0) return "";
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::FromUnixSeconds(time.seconds()),
                          absl::UTCTimeZone());
}

std::string OrDash(const std::string& text) { return text.empty() ? "-" : text; }

}  // namespace

std::string DeadLettersTable(const std::vector<v1::DeadLetter>& letters) {
  std::vector<std::vector<std::string>> rows = {
      {"SEQ", "TIME", "SUBJECT", "TYPE", "APPLICATION", "DELIVERIES", "ERROR"}};
  for (const v1::DeadLetter& d : letters) {
    rows.push_back({strings::Cat(d.sequence()), OrDash(Rfc3339(d.time())), OrDash(d.subject()),
                    OrDash(d.type()), OrDash(d.application()),
                    d.deliveries() > 0 ? strings::Cat(d.deliveries()) : "-", OneLine(d.error())});
  }
  return Table(rows);
}

Json DeadLetterJson(const v1::DeadLetter& d) {
  return Json{{"sequence", d.sequence()},
              {"time", Rfc3339(d.time())},
              {"subject", d.subject()},
              {"stream", d.stream()},
              {"streamSequence", d.stream_sequence()},
              {"deliveries", d.deliveries()},
              {"error", d.error()},
              {"type", d.type()},
              {"application", d.application()},
              {"eventId", d.event_id()},
              {"sizeBytes", d.size_bytes()}};
}

Json DeadLetterListJson(const std::vector<v1::DeadLetter>& letters) {
  Json items = Json::array();
  for (const v1::DeadLetter& d : letters) items.push_back(DeadLetterJson(d));
  return Json{{"apiVersion", "v1"}, {"kind", "List"}, {"items", std::move(items)}};
}

std::string DeliveriesTable(const std::vector<v1::Delivery>& deliveries) {
  std::vector<std::vector<std::string>> rows = {
      {"TIME", "APPLICATION", "EVENT", "DESTINATION", "STATUS", "ATTEMPTS", "ERROR"}};
  for (const v1::Delivery& d : deliveries) {
    const std::string status =
        d.http_status() > 0 ? strings::Cat(d.status(), " (", d.http_status(), ")") : d.status();
    rows.push_back({OrDash(Rfc3339(d.time())), OrDash(d.application()), OrDash(d.type()),
                    OrDash(d.destination()), status,
                    d.attempts() > 0 ? strings::Cat(d.attempts()) : "-", OneLine(d.error())});
  }
  return Table(rows);
}

Json DeliveryListJson(const std::vector<v1::Delivery>& deliveries) {
  Json items = Json::array();
  for (const v1::Delivery& d : deliveries) {
    items.push_back(Json{{"time", Rfc3339(d.time())},
                         {"eventId", d.event_id()},
                         {"type", d.type()},
                         {"application", d.application()},
                         {"destination", d.destination()},
                         {"status", d.status()},
                         {"httpStatus", d.http_status()},
                         {"attempts", d.attempts()},
                         {"error", d.error()}});
  }
  return Json{{"apiVersion", "v1"}, {"kind", "List"}, {"items", std::move(items)}};
}

std::string HistoryTable(const std::vector<v1::SyncHistoryEntry>& entries) {
  std::vector<std::vector<std::string>> rows = {
      {"ID", "REVISION", "FINISHED", "RESULT", "BY", "OBJECTS", "REASON", "MESSAGE"}};
  for (const v1::SyncHistoryEntry& e : entries) {
    rows.push_back({strings::Cat(e.id()), OrDash(e.revision().substr(0, 7)),
                    OrDash(Rfc3339(e.finished_at())), e.succeeded() ? "Succeeded" : "Failed",
                    OrDash(e.initiated_by()), strings::Cat(e.object_count()),
                    OrDash(OneLine(e.reason())), OneLine(e.message())});
  }
  return Table(rows);
}

Json HistoryListJson(const std::vector<v1::SyncHistoryEntry>& entries) {
  Json items = Json::array();
  for (const v1::SyncHistoryEntry& e : entries) {
    Json objects = Json::array();
    for (const v1::SyncHistoryObject& o : e.objects()) {
      objects.push_back(
          Json{{"kind", o.ref().kind()},
               {"apiVersion", o.ref().group().empty()
                                  ? o.ref().version()
                                  : strings::Cat(o.ref().group(), "/", o.ref().version())},
               {"namespace", o.ref().namespace_()},
               {"name", o.ref().name()},
               {"action", o.action()},
               {"result", o.result()},
               {"message", o.message()}});
    }
    items.push_back(Json{{"id", e.id()},
                         {"attempt", e.attempt()},
                         {"syncId", e.sync_id()},
                         {"revision", e.revision()},
                         {"initiatedBy", e.initiated_by()},
                         {"reason", e.reason()},
                         {"succeeded", e.succeeded()},
                         {"message", e.message()},
                         {"startedAt", Rfc3339(e.started_at())},
                         {"finishedAt", Rfc3339(e.finished_at())},
                         {"objectCount", e.object_count()},
                         {"objects", std::move(objects)}});
  }
  return Json{{"apiVersion", "v1"}, {"kind", "List"}, {"items", std::move(items)}};
}

std::string RedriveLine(uint64_t sequence, const v1::RedriveDeadLetterResponse& response) {
  return strings::Cat("dead letter #", sequence, " redriven to ", response.subject(),
                      " (stream sequence ", response.stream_sequence(), ")");
}

absl::StatusOr<v1::ObjectRef> ParseObjectRef(std::string_view text) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    size_t slash = text.find('/', start);
    parts.emplace_back(text.substr(start, slash == std::string_view::npos ? slash : slash - start));
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  bool empty_part = std::any_of(parts.begin(), parts.end(), [](auto& p) { return p.empty(); });
  if ((parts.size() != 2 && parts.size() != 3) || empty_part) {
    return absl::InvalidArgumentError(
        strings::Cat("resource \"", text,
                     "\": expected KIND/NAME or KIND/NAMESPACE/NAME (KIND may be "
                     "Kind.group, e.g. Deployment.apps/web)"));
  }
  v1::ObjectRef ref;
  const std::string& kind = parts[0];
  size_t dot = kind.find('.');
  ref.set_kind(kind.substr(0, dot));
  if (dot != std::string::npos) ref.set_group(kind.substr(dot + 1));
  if (parts.size() == 3) ref.set_namespace_(parts[1]);
  ref.set_name(parts.back());
  return ref;
}

}  // namespace driftless::cli
