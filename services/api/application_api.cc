#include "services/api/application_api.h"

#include <algorithm>
#include <cctype>
#include <optional>
#include <random>
#include <tuple>
#include <utility>
#include <vector>

#include <google/protobuf/util/time_util.h>

#include "absl/strings/escaping.h"
#include "common/log/log.h"
#include "common/match/glob.h"
#include "common/resources/resources.h"
#include "common/status/status.h"
#include "common/strings/str.h"
#include "services/common/events.h"
#include "services/common/state.h"
#include "services/common/topology.h"

namespace driftless::api {
namespace {

using service::kApplication;
constexpr char kAppChanged[] = "app.changed";
constexpr char kSyncRequested[] = "sync.requested";

const char* ActionName(service::ResourceStore::PutResult result) {
  switch (result) {
    case service::ResourceStore::PutResult::kCreated:
      return "created";
    case service::ResourceStore::PutResult::kConfigured:
      return "configured";
    case service::ResourceStore::PutResult::kUnchanged:
      return "unchanged";
  }
  return "unchanged";
}

// The object without the fields the store maintains, for dry-run comparisons.
manifest::Json WithoutStoreFields(manifest::Json object) {
  if (object.is_object() && object.contains("metadata") && object["metadata"].is_object()) {
    object["metadata"].erase("generation");
    object["metadata"].erase("uid");
  }
  return object;
}

// What Put would answer, without writing.
absl::StatusOr<service::ResourceStore::PutResult> PredictPut(const service::ResourceStore& store,
                                                             const resources::Resource& resource) {
  absl::StatusOr<service::StoredResource> existing = store.Get(resource.kind, resource.name);
  if (absl::IsNotFound(existing.status())) return service::ResourceStore::PutResult::kCreated;
  if (!existing.ok()) return existing.status();
  DL_RETURN_IF_ERROR(service::CheckNotDeleting(*existing));
  if (WithoutStoreFields(existing->object) == WithoutStoreFields(resource.object)) {
    return service::ResourceStore::PutResult::kUnchanged;
  }
  return service::ResourceStore::PutResult::kConfigured;
}

v1::Resource ToResource(const service::StoredResource& stored) {
  v1::Resource out;
  out.set_kind(stored.kind);
  out.set_name(stored.name);
  out.set_json(resources::Redact(stored.object).dump());
  out.set_generation(stored.generation);
  return out;
}

std::string ProjectOf(const manifest::Json& object) {
  const manifest::Json* spec = nullptr;
  if (object.is_object()) {
    auto it = object.find("spec");
    if (it != object.end() && it->is_object()) spec = &*it;
  }
  if (spec == nullptr) return "default";
  auto it = spec->find("project");
  if (it == spec->end() || !it->is_string() || it->get<std::string>().empty()) return "default";
  return it->get<std::string>();
}

// The status of record, with last_attempted_revision falling back to the revision the
// repo-poller last published for the application (before the pipeline records an attempt),
// so clients can tell "nothing applied yet" from "nothing to apply".
absl::StatusOr<v1::AppStatus> ReadStatus(bus::KvStore* kv, const std::string& application) {
  absl::StatusOr<v1::AppStatus> status = service::StatusStore(kv).Get(application);
  if (!status.ok() || !status->last_attempted_revision().empty()) return status;
  absl::StatusOr<std::optional<service::SourceRecord>> source =
      service::SourceStore(kv).Get(application);
  if (!source.ok()) return source.status();
  if (source->has_value()) status->set_last_attempted_revision((*source)->revision);
  return status;
}

// Keeps the code, adds what the API was doing to the message. A dependency's timeout is
// kUnavailable: the caller's deadline did not pass (kDeadlineExceeded would say it did, and
// clients would blame their connection to the API), NATS did not answer one call in time.
absl::Status Context(const absl::Status& status, std::string_view what) {
  if (absl::IsDeadlineExceeded(status)) {
    return absl::UnavailableError(
        strings::Cat(what, ": NATS did not answer in time (", status.message(), ")"));
  }
  return Annotate(status, what);
}

// The page size of a List* request: `requested` if positive (at most `max`), `fallback` if 0.
absl::StatusOr<int> PageSize(int32_t requested, int fallback, int max) {
  if (requested < 0) {
    return absl::InvalidArgumentError(strings::Cat("limit ", requested, " is negative"));
  }
  if (requested == 0) return fallback;
  return std::min<int>(requested, max);
}

// Page tokens are base64url of a small JSON document: opaque to clients, and checked here so
// a token from another call (or other filters) is refused instead of silently misused.
std::string EncodeToken(const manifest::Json& token) {
  return absl::WebSafeBase64Escape(token.dump());
}

absl::StatusOr<manifest::Json> DecodeToken(std::string_view token, std::string_view kind) {
  std::string text;
  manifest::Json json;
  if (absl::WebSafeBase64Unescape(absl::string_view(token.data(), token.size()), &text)) {
    json = manifest::Json::parse(text, nullptr, /*allow_exceptions=*/false);
  }
  if (!json.is_object() || json.value("k", std::string()) != kind) {
    return absl::InvalidArgumentError(
        strings::Cat("page_token \"", token.substr(0, 64), "\" is not a ", kind,
                     " page token issued by this server (pass next_page_token back unchanged)"));
  }
  return json;
}

constexpr char kApplicationsToken[] = "applications";
constexpr char kDeadLettersToken[] = "dead-letters";

// The name an application page token resumes after. Bound to the filters it was issued for.
absl::StatusOr<std::string> ApplicationsTokenPosition(const v1::ListApplicationsRequest& request) {
  if (request.page_token().empty()) return std::string();
  absl::StatusOr<manifest::Json> token = DecodeToken(request.page_token(), kApplicationsToken);
  if (!token.ok()) return token.status();
  const manifest::Json after = token->value("after", manifest::Json());
  if (!after.is_string() || after.get<std::string>().empty()) {
    return absl::InvalidArgumentError("page_token has no position");
  }
  if (token->value("project", std::string()) != request.project() ||
      token->value("pattern", std::string()) != request.name_pattern()) {
    return absl::InvalidArgumentError(strings::Cat(
        "page_token was issued for project \"", token->value("project", std::string()),
        "\" and name pattern \"", token->value("pattern", std::string()), "\", not for project \"",
        request.project(), "\" and name pattern \"", request.name_pattern(), "\""));
  }
  return after.get<std::string>();
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

bool StartsWithIgnoreCase(std::string_view text, std::string_view prefix) {
  return text.size() >= prefix.size() && EqualsIgnoreCase(text.substr(0, prefix.size()), prefix);
}

// A header's value (names compared case-insensitively, as NATS and HTTP do); "" if absent.
std::string HeaderValue(const bus::Headers& headers, std::string_view name) {
  for (const auto& [key, value] : headers) {
    if (EqualsIgnoreCase(key, name)) return value;
  }
  return "";
}

// "driftless.dlq."
std::string DeadLetterPrefix() { return bus::DeadLetterSubject(service::kSubjectPrefix, ""); }

// The subject a dead letter came from: its Driftless-Dlq-Subject header, else its DLQ subject
// without the prefix. "" if neither names one.
std::string OriginalSubject(const StoredDeadLetter& letter) {
  std::string subject = HeaderValue(letter.headers, bus::kDlqSubjectHeader);
  if (!subject.empty()) return subject;
  const std::string prefix = DeadLetterPrefix();
  if (letter.subject.starts_with(prefix)) return letter.subject.substr(prefix.size());
  return "";
}

v1::DeadLetter ToDeadLetter(const StoredDeadLetter& letter) {
  v1::DeadLetter out;
  out.set_sequence(letter.sequence);
  out.set_subject(OriginalSubject(letter));
  out.set_error(HeaderValue(letter.headers, bus::kDlqErrorHeader));
  int64_t deliveries = 0;
  if (strings::ParseInt(HeaderValue(letter.headers, bus::kDlqDeliveriesHeader), &deliveries)) {
    out.set_deliveries(deliveries);
  }
  out.set_stream(HeaderValue(letter.headers, bus::kDlqStreamHeader));
  int64_t stream_sequence = 0;
  if (strings::ParseInt(HeaderValue(letter.headers, bus::kDlqSequenceHeader), &stream_sequence) &&
      stream_sequence > 0) {
    out.set_stream_sequence(static_cast<uint64_t>(stream_sequence));
  }
  if (letter.time != absl::InfinitePast()) {
    const int64_t nanos = absl::ToUnixNanos(letter.time);
    out.mutable_time()->set_seconds(nanos / 1000000000);
    out.mutable_time()->set_nanos(static_cast<int32_t>(nanos % 1000000000));
  }
  out.set_size_bytes(static_cast<int64_t>(letter.data.size()));
  // Bodies that are not Events (or not decodable) are still listed, without these.
  absl::StatusOr<v1::Event> event = service::DecodeEvent(letter.data);
  if (event.ok()) {
    out.set_type(event->type());
    out.set_application(event->application());
    out.set_event_id(event->id());
  }
  return out;
}

// Event types name a subject token sequence ("sync.failed"): no wildcards, no spaces.
absl::Status ValidateType(std::string_view type, int index) {
  auto bad = [&](std::string_view why) {
    return absl::InvalidArgumentError(strings::Cat("types[", index, "] \"", type, "\" ", why));
  };
  if (type.empty()) return bad("is empty");
  for (char c : type) {
    if (c == '*' || c == '>') return bad("holds a wildcard (types are exact, e.g. sync.failed)");
    if (std::isspace(static_cast<unsigned char>(c)) ||
        std::iscntrl(static_cast<unsigned char>(c))) {
      return bad("holds white space or a control character");
    }
  }
  if (type.front() == '.' || type.back() == '.' || type.find("..") != std::string_view::npos) {
    return bad("has an empty part between dots");
  }
  return absl::OkStatus();
}

// Seconds range of google.protobuf.Timestamp: 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59Z.
constexpr int64_t kMinTimestampSeconds = -62135596800;
constexpr int64_t kMaxTimestampSeconds = 253402300799;

absl::StatusOr<WatchStart> StartOf(const v1::WatchEventsRequest& request) {
  WatchStart start;
  switch (request.start_case()) {
    case v1::WatchEventsRequest::kStartSequence:
      if (request.start_sequence() == 0) {
        return absl::InvalidArgumentError(
            "start_sequence 0: stream sequences start at 1 (use include_history for all)");
      }
      start.from = WatchStart::From::kSequence;
      start.sequence = request.start_sequence();
      return start;
    case v1::WatchEventsRequest::kStartTime: {
      const google::protobuf::Timestamp& t = request.start_time();
      if (t.seconds() < kMinTimestampSeconds || t.seconds() > kMaxTimestampSeconds ||
          t.nanos() < 0 || t.nanos() > 999999999) {
        return absl::InvalidArgumentError(strings::Cat("start_time (", t.seconds(), " s, ",
                                                       t.nanos(), " ns) is not a valid time"));
      }
      start.from = WatchStart::From::kTime;
      start.time = absl::FromUnixSeconds(t.seconds()) + absl::Nanoseconds(t.nanos());
      return start;
    }
    case v1::WatchEventsRequest::START_NOT_SET:
      break;
  }
  start.from = request.include_history() ? WatchStart::From::kFirst : WatchStart::From::kNew;
  return start;
}

}  // namespace

absl::Status ApplicationNotFound(std::string_view name) {
  return absl::NotFoundError(strings::Cat("application \"", name, "\" not found"));
}

std::string NewSyncId() {
  static thread_local std::mt19937_64 engine{[] {
    std::random_device device;
    return (static_cast<uint64_t>(device()) << 32) ^ device();
  }()};
  uint64_t value = engine();
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id(16, '0');
  for (int i = 15; i >= 0; --i) {
    id[i] = kHex[value & 0xf];
    value >>= 4;
  }
  return id;
}

ApplicationApi::ApplicationApi(bus::EventBus* bus, bus::KvStore* kv, std::string emitter,
                               EventWatcher* watcher, DeadLetterStore* dead_letters)
    : bus_(bus),
      kv_(kv),
      emitter_(std::move(emitter)),
      watcher_(watcher),
      dead_letters_(dead_letters) {}

absl::StatusOr<v1::ApplyResponse> ApplicationApi::Apply(const v1::ApplyRequest& request) {
  absl::StatusOr<std::vector<resources::Resource>> parsed =
      resources::ParseResources(request.yaml(), "<request>");
  if (!parsed.ok()) {
    // Anything wrong with the documents is the caller's input, whatever the parser's code.
    return absl::InvalidArgumentError(parsed.status().message());
  }
  if (parsed->empty()) return absl::InvalidArgumentError("no resources in the request");

  // Registration order: credentials and targets before what refers to them. The response
  // keeps the documents' order.
  std::vector<size_t> order(parsed->size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  const std::vector<std::string>& kinds = resources::Kinds();
  auto rank = [&](const std::string& kind) {
    return std::find(kinds.begin(), kinds.end(), kind) - kinds.begin();
  };
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return rank((*parsed)[a].kind) < rank((*parsed)[b].kind);
  });

  service::ResourceStore store(kv_);
  v1::ApplyResponse response;
  for (const resources::Resource& r : *parsed) {
    v1::ApplyResult* result = response.add_results();
    result->set_kind(r.kind);
    result->set_name(r.name);
  }
  for (size_t index : order) {
    const resources::Resource& r = (*parsed)[index];
    std::string what = strings::Cat("applying ", r.kind, " \"", r.name, "\"");
    // The resource as written (not read back: a replica that has not applied the write yet
    // could answer the read).
    std::optional<service::StoredResource> stored;
    if (!request.dry_run()) stored.emplace();
    absl::StatusOr<service::ResourceStore::PutResult> put =
        request.dry_run() ? PredictPut(store, r) : store.Put(r.object, &*stored);
    if (!put.ok()) return Context(put.status(), what);
    response.mutable_results(static_cast<int>(index))->set_action(ActionName(*put));
    if (request.dry_run() || r.kind != kApplication ||
        *put == service::ResourceStore::PutResult::kUnchanged) {
      continue;
    }
    DL_RETURN_IF_ERROR(Context(
        AnnounceChange(*stored, *put == service::ResourceStore::PutResult::kCreated), what));
  }
  return response;
}

absl::Status ApplicationApi::AnnounceChange(const service::StoredResource& stored, bool created) {
  v1::Event event = service::NewEvent(kAppChanged, stored.name, "", emitter_);
  // One logical event per write: a re-publish of the same write is deduplicated.
  event.set_id(service::EventId(kAppChanged, stored.name, "", stored.spec_digest,
                                strings::Cat("r", stored.kv_revision)));
  event.set_message(strings::Cat("application ", stored.name, created ? " created" : " configured",
                                 " (generation ", stored.generation, ")"));
  v1::AppChanged* changed = event.mutable_app_changed();
  changed->set_reason(created ? v1::AppChanged::REASON_CREATED : v1::AppChanged::REASON_UPDATED);
  changed->set_spec_digest(stored.spec_digest);
  changed->set_generation(stored.generation);
  changed->set_object_json(stored.object.dump());
  return service::Emit(*bus_, event);
}

absl::StatusOr<v1::Application> ApplicationApi::Get(const v1::GetApplicationRequest& request) {
  if (request.name().empty()) return absl::InvalidArgumentError("application name is empty");
  service::ResourceStore resources(kv_);
  absl::StatusOr<service::StoredResource> stored = resources.Get(kApplication, request.name());
  if (absl::IsNotFound(stored.status())) return ApplicationNotFound(request.name());
  std::string what = strings::Cat("reading application \"", request.name(), "\"");
  if (!stored.ok()) return Context(stored.status(), what);
  absl::StatusOr<v1::AppStatus> status = ReadStatus(kv_, request.name());
  if (!status.ok()) return Context(status.status(), what);
  v1::Application app;
  *app.mutable_resource() = ToResource(*stored);
  *app.mutable_status() = *std::move(status);
  return app;
}

absl::StatusOr<v1::ListApplicationsResponse> ApplicationApi::List(
    const v1::ListApplicationsRequest& request) {
  absl::StatusOr<int> limit = PageSize(request.limit(), kDefaultPageSize, kMaxPageSize);
  if (!limit.ok()) return limit.status();
  absl::StatusOr<std::string> after = ApplicationsTokenPosition(request);
  if (!after.ok()) return after.status();

  // Names only: the one read that grows with the number of applications.
  const std::string prefix = service::ResourceKey(kApplication, "");
  absl::StatusOr<std::vector<std::string>> keys = kv_->Keys(service::kResourcesBucket, prefix);
  if (!keys.ok()) return Context(keys.status(), "listing applications");
  std::vector<std::string> names;
  names.reserve(keys->size());
  for (const std::string& key : *keys) names.push_back(key.substr(prefix.size()));
  std::sort(names.begin(), names.end());

  // This page: the next `limit` names after the token that match the pattern, and whether
  // one more follows.
  std::vector<std::string> page;
  bool more = false;
  for (auto it = std::upper_bound(names.begin(), names.end(), *after); it != names.end(); ++it) {
    if (!request.name_pattern().empty() &&
        !match::GlobMatch(request.name_pattern(), *it, {.slash_is_special = false})) {
      continue;
    }
    if (static_cast<int>(page.size()) == *limit) {
      more = true;
      break;
    }
    page.push_back(*it);
  }

  service::ResourceStore resources(kv_);
  v1::ListApplicationsResponse response;
  for (const std::string& name : page) {
    std::string what = strings::Cat("reading application \"", name, "\"");
    absl::StatusOr<service::StoredResource> app = resources.Get(kApplication, name);
    if (absl::IsNotFound(app.status())) continue;  // deleted since the keys were listed
    if (absl::IsDataLoss(app.status())) {
      // One bad record must not hide every other application.
      log::Warn("skipping a malformed application record",
                {{"application", name}, {"error", app.status().ToString()}});
      continue;
    }
    if (!app.ok()) return Context(app.status(), what);
    if (!request.project().empty() && ProjectOf(app->object) != request.project()) continue;
    absl::StatusOr<v1::AppStatus> status = ReadStatus(kv_, name);
    if (!status.ok()) {
      return Context(status.status(),
                     strings::Cat("reading the status of application \"", name, "\""));
    }
    v1::Application* out = response.add_applications();
    *out->mutable_resource() = ToResource(*app);
    *out->mutable_status() = *std::move(status);
  }
  if (more) {
    response.set_next_page_token(EncodeToken({{"k", kApplicationsToken},
                                              {"after", page.back()},
                                              {"project", request.project()},
                                              {"pattern", request.name_pattern()}}));
  }
  return response;
}

absl::Status ApplicationApi::Delete(const v1::DeleteApplicationRequest& request) {
  if (request.name().empty()) return absl::InvalidArgumentError("application name is empty");
  service::ResourceStore resources(kv_);
  absl::StatusOr<service::StoredResource> stored = resources.Get(kApplication, request.name());
  if (absl::IsNotFound(stored.status())) return ApplicationNotFound(request.name());
  std::string what = strings::Cat("deleting application \"", request.name(), "\"");
  if (!stored.ok()) return Context(stored.status(), what);
  if (!request.cascade()) {
    // Its objects stay in the cluster; the application, its status, history and pending plan
    // go now (a re-created application starts afresh; late writers are refused by uid).
    return Context(service::FinalizeDeletion(kv_, request.name(), stored->uid), what);
  }
  // Finalizer-style: marked deleting (it stays visible, refuses re-apply and syncs), then the
  // planner plans the prune of everything it tracks and the applier removes it when done.
  // Deleting it again re-drives a stuck deletion.
  const bool again = service::IsDeleting(*stored);
  absl::StatusOr<service::StoredResource> marked =
      resources.MarkDeleting(kApplication, request.name(), absl::Now());
  if (!marked.ok()) return Context(marked.status(), what);
  v1::Event event = service::NewEvent(kAppChanged, request.name(), "", emitter_);
  event.set_id(service::EventId(kAppChanged, request.name(), "", marked->spec_digest,
                                again ? strings::Cat("deleted-again-", NewSyncId())
                                      : strings::Cat("deleted-r", marked->kv_revision)));
  event.set_message(strings::Cat("application ", request.name(),
                                 " deleted with cascade: its objects are pruned"));
  v1::AppChanged* changed = event.mutable_app_changed();
  changed->set_reason(v1::AppChanged::REASON_DELETED);
  changed->set_spec_digest(marked->spec_digest);
  changed->set_generation(marked->generation);
  // The destination (cluster, namespace) of the objects to prune.
  changed->set_object_json(marked->object.dump());
  return Context(service::Emit(*bus_, event, service::kStagePlan), what);
}

absl::StatusOr<v1::SyncApplicationResponse> ApplicationApi::Sync(
    const v1::SyncApplicationRequest& request) {
  if (request.name().empty()) return absl::InvalidArgumentError("application name is empty");
  service::ResourceStore resources(kv_);
  absl::StatusOr<service::StoredResource> stored = resources.Get(kApplication, request.name());
  if (absl::IsNotFound(stored.status())) return ApplicationNotFound(request.name());
  std::string what = strings::Cat("requesting a sync of application \"", request.name(), "\"");
  if (!stored.ok()) return Context(stored.status(), what);
  if (service::IsDeleting(*stored)) {
    return absl::FailedPreconditionError(
        strings::Cat("application \"", request.name(), "\" is being deleted: it is not synced"));
  }

  absl::StatusOr<std::string> sync_id = RequestSync(*stored, request);
  if (!sync_id.ok()) return Context(sync_id.status(), what);
  v1::SyncApplicationResponse response;
  response.set_sync_id(*sync_id);
  return response;
}

absl::StatusOr<std::string> ApplicationApi::RequestSync(const service::StoredResource& stored,
                                                        const v1::SyncApplicationRequest& request) {
  std::string sync_id = NewSyncId();
  v1::Event event = service::NewEvent(kSyncRequested, stored.name, request.revision(), emitter_);
  event.set_id(service::EventId(kSyncRequested, stored.name, request.revision(), stored.spec_digest,
                                sync_id));
  event.set_correlation_id(sync_id);
  event.set_message(strings::Cat(
      "sync of ", stored.name, " requested",
      request.revision().empty() ? std::string() : strings::Cat(" at ", request.revision()),
      request.dry_run() ? " (dry run)" : "",
      request.reason().empty() ? std::string() : strings::Cat(": ", request.reason())));
  v1::SyncRequested* sync = event.mutable_sync_requested();
  sync->set_sync_id(sync_id);
  sync->set_revision(request.revision());
  *sync->mutable_resources() = request.resources();
  sync->set_prune(request.prune());
  sync->set_dry_run(request.dry_run());
  sync->set_refresh(true);
  sync->set_requested_by("user:cli");
  sync->set_reason(request.reason());
  DL_RETURN_IF_ERROR(service::Emit(*bus_, event, service::kStagePoll));
  return sync_id;
}

namespace {

// What the rollback and suspend RPCs read of spec.syncPolicy (validated when stored; a wrong
// type reads as absent).
struct SyncPolicyView {
  bool automated = false;  // spec.syncPolicy.automated present
  bool suspended = false;  // spec.syncPolicy.suspend
};

SyncPolicyView SyncPolicyOf(const manifest::Json& application) {
  SyncPolicyView view;
  auto spec = application.find("spec");
  if (spec == application.end() || !spec->is_object()) return view;
  auto policy = spec->find("syncPolicy");
  if (policy == spec->end() || !policy->is_object()) return view;
  auto automated = policy->find("automated");
  view.automated = automated != policy->end() && automated->is_object();
  auto suspend = policy->find("suspend");
  view.suspended = suspend != policy->end() && suspend->is_boolean() && suspend->get<bool>();
  return view;
}

}  // namespace

absl::StatusOr<service::StoredResource> ApplicationApi::FindApplication(const std::string& name,
                                                                        std::string_view what) {
  if (name.empty()) return absl::InvalidArgumentError("application name is empty");
  absl::StatusOr<service::StoredResource> stored =
      service::ResourceStore(kv_).Get(kApplication, name);
  if (absl::IsNotFound(stored.status())) return ApplicationNotFound(name);
  if (!stored.ok()) return Context(stored.status(), what);
  return stored;
}

absl::StatusOr<v1::ListHistoryResponse> ApplicationApi::ListHistory(
    const v1::ListHistoryRequest& request) {
  const std::string what =
      strings::Cat("reading the history of application \"", request.name(), "\"");
  if (absl::Status s = FindApplication(request.name(), what).status(); !s.ok()) return s;
  absl::StatusOr<std::vector<service::HistoryEntry>> entries =
      service::HistoryStore(kv_).List(request.name());
  if (!entries.ok()) return Context(entries.status(), what);
  v1::ListHistoryResponse response;
  for (auto it = entries->rbegin(); it != entries->rend(); ++it) {
    v1::SyncHistoryEntry* e = response.add_entries();
    e->set_id(it->desired_seq);
    e->set_attempt(it->attempt);
    e->set_sync_id(it->sync_id);
    e->set_revision(it->revision);
    e->set_initiated_by(it->initiated_by);
    e->set_reason(it->reason);
    e->set_succeeded(it->succeeded);
    e->set_message(it->message);
    google::protobuf::util::TimeUtil::FromString(it->started_at, e->mutable_started_at());
    google::protobuf::util::TimeUtil::FromString(it->finished_at, e->mutable_finished_at());
    e->set_object_count(it->object_count);
    for (const service::HistoryObject& o : it->objects) {
      v1::SyncHistoryObject* out = e->add_objects();
      *out->mutable_ref() = o.ref;
      out->set_action(o.action);
      out->set_result(o.result);
      out->set_message(o.message);
    }
  }
  return response;
}

absl::StatusOr<v1::RollbackResponse> ApplicationApi::Rollback(const v1::RollbackRequest& request) {
  if (request.id() <= 0 && !request.name().empty()) {
    return absl::InvalidArgumentError(
        "history id must be positive (the ID column of driftless app history)");
  }
  const std::string what = strings::Cat("rolling back application \"", request.name(), "\"");
  absl::StatusOr<service::StoredResource> stored = FindApplication(request.name(), what);
  if (!stored.ok()) return stored.status();
  if (service::IsDeleting(*stored)) {
    return absl::FailedPreconditionError(
        strings::Cat("application \"", request.name(), "\" is being deleted"));
  }
  absl::StatusOr<std::vector<service::HistoryEntry>> entries =
      service::HistoryStore(kv_).List(request.name());
  if (!entries.ok()) return Context(entries.status(), what);
  auto entry =
      std::find_if(entries->rbegin(), entries->rend(),
                   [&](const service::HistoryEntry& e) { return e.desired_seq == request.id(); });
  if (entry == entries->rend()) {
    return absl::NotFoundError(strings::Cat("application \"", request.name(),
                                            "\" has no history entry ", request.id(),
                                            " (see driftless app history ", request.name(), ")"));
  }
  if (entry->revision.empty()) {
    return absl::FailedPreconditionError(strings::Cat("history entry ", request.id(),
                                                      " of application \"", request.name(),
                                                      "\" records no revision to go back to"));
  }
  const SyncPolicyView policy = SyncPolicyOf(stored->object);
  v1::RollbackResponse response;
  if (policy.automated && !policy.suspended) {
    if (!request.force()) {
      return absl::FailedPreconditionError(strings::Cat(
          "application \"", request.name(),
          "\" syncs automatically, so the next commit would undo a rollback; "
          "--force suspends automated sync (spec.syncPolicy.suspend) until driftless app resume ",
          request.name()));
    }
    // Suspended first, and the suspension's own generation minted, so that the rollback's
    // generation is the newest one and nothing automated follows it.
    absl::StatusOr<service::StoredResource> written = WriteSuspended(*stored, true);
    if (!written.ok()) return Context(written.status(), what);
    if (absl::Status s = WaitForSpecGeneration(*written); !s.ok()) {
      return Context(s, strings::Cat(what,
                                     " (automated sync is suspended now; nothing was "
                                     "rolled back: run it again, or driftless app resume ",
                                     request.name(), ")"));
    }
    *stored = *std::move(written);
    response.set_suspended(true);
  }
  v1::SyncApplicationRequest sync;
  sync.set_name(request.name());
  sync.set_revision(entry->revision);
  sync.set_reason(request.reason().empty()
                      ? strings::Cat("rollback to ", request.id())
                      : strings::Cat("rollback to ", request.id(), ": ", request.reason()));
  absl::StatusOr<std::string> sync_id = RequestSync(*stored, sync);
  if (!sync_id.ok()) return Context(sync_id.status(), what);
  response.set_sync_id(*sync_id);
  response.set_revision(entry->revision);
  return response;
}

absl::StatusOr<service::StoredResource> ApplicationApi::WriteSuspended(
    const service::StoredResource& stored, bool suspended) {
  manifest::Json object = stored.object;
  object["spec"]["syncPolicy"]["suspend"] = suspended;
  service::StoredResource written;
  DL_ASSIGN_OR_RETURN(service::ResourceStore::PutResult put,
                      service::ResourceStore(kv_).Put(object, &written));
  if (put != service::ResourceStore::PutResult::kUnchanged) {
    DL_RETURN_IF_ERROR(AnnounceChange(written, false));
  }
  return written;
}

absl::StatusOr<v1::SuspendResponse> ApplicationApi::Suspend(const v1::SuspendRequest& request) {
  const std::string what = strings::Cat(request.suspended() ? "suspending" : "resuming",
                                        " application \"", request.name(), "\"");
  absl::StatusOr<service::StoredResource> stored = FindApplication(request.name(), what);
  if (!stored.ok()) return stored.status();
  if (service::IsDeleting(*stored)) {
    return absl::FailedPreconditionError(
        strings::Cat("application \"", request.name(), "\" is being deleted"));
  }
  v1::SuspendResponse response;
  if (SyncPolicyOf(stored->object).suspended == request.suspended()) return response;
  absl::StatusOr<service::StoredResource> written = WriteSuspended(*stored, request.suspended());
  if (!written.ok()) return Context(written.status(), what);
  response.set_changed(true);
  return response;
}

absl::StatusOr<v1::DiffReply> ApplicationApi::Diff(const v1::DiffRequest& request) {
  const std::string what = strings::Cat("diffing application \"", request.application(), "\"");
  if (absl::Status s = FindApplication(request.application(), what).status(); !s.ok()) return s;
  absl::StatusOr<std::string> answer =
      bus_->Request(service::kDiffSubject, request.SerializeAsString(), absl::Seconds(30));
  if (!answer.ok()) {
    return absl::UnavailableError(
        strings::Cat(what, ": the planner did not answer (", answer.status().message(), ")"));
  }
  v1::DiffReply reply;
  if (!reply.ParseFromString(*answer)) {
    return absl::InternalError(strings::Cat(what, ": the planner's answer does not decode"));
  }
  if (!reply.error().empty()) {
    const int code = reply.error_code();
    return absl::Status(code > 0 && code <= static_cast<int>(absl::StatusCode::kUnauthenticated)
                            ? static_cast<absl::StatusCode>(code)
                            : absl::StatusCode::kUnknown,
                        reply.error());
  }
  return reply;
}

absl::Status ApplicationApi::WaitForSpecGeneration(const service::StoredResource& written) {
  const absl::Time deadline = absl::Now() + absl::Seconds(15);
  service::SourceStore sources(kv_);
  while (true) {
    absl::StatusOr<std::optional<service::SourceRecord>> record = sources.Get(written.name);
    if (!record.ok()) return record.status();
    if (*record && (*record)->spec_digest == written.spec_digest) return absl::OkStatus();
    if (absl::Now() > deadline) {
      return absl::DeadlineExceededError(
          "the repo-poller did not take up the suspended spec within 15 s (is it running?)");
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
}

absl::StatusOr<v1::ListResourcesResponse> ApplicationApi::ListResources(
    const v1::ListResourcesRequest& request) {
  const std::vector<std::string>& kinds = resources::Kinds();
  if (std::find(kinds.begin(), kinds.end(), request.kind()) == kinds.end()) {
    std::string known;
    for (const std::string& k : kinds) strings::Append(known, known.empty() ? "" : ", ", k);
    return absl::InvalidArgumentError(
        strings::Cat("unknown kind \"", request.kind(), "\" (known: ", known, ")"));
  }
  absl::StatusOr<std::vector<service::StoredResource>> stored =
      service::ResourceStore(kv_).List(request.kind());
  if (!stored.ok()) return Context(stored.status(), strings::Cat("listing ", request.kind()));
  std::sort(stored->begin(), stored->end(),
            [](const auto& a, const auto& b) { return a.name < b.name; });
  v1::ListResourcesResponse response;
  for (const service::StoredResource& r : *stored) *response.add_resources() = ToResource(r);
  return response;
}

absl::Status ApplicationApi::WatchEvents(const v1::WatchEventsRequest& request,
                                         const std::function<bool(const v1::Event&)>& sink,
                                         const std::function<bool()>& cancelled) {
  for (int i = 0; i < request.types_size(); ++i) {
    DL_RETURN_IF_ERROR(ValidateType(request.types(i), i));
  }
  absl::StatusOr<WatchStart> start = StartOf(request);
  if (!start.ok()) return start.status();
  if (watcher_ == nullptr) {
    return absl::UnimplementedError("WatchEvents is not available on this server");
  }
  auto wanted = [&](const v1::Event& event) {
    if (!request.application().empty() && event.application() != request.application()) {
      return false;
    }
    if (request.types().empty()) return true;
    return std::find(request.types().begin(), request.types().end(), event.type()) !=
           request.types().end();
  };
  // One type narrows the subscription itself; several (NATS 2.9 consumers have one filter
  // subject) and the application are filtered here, before anything is sent.
  const std::string subject_type = request.types_size() == 1 ? request.types(0) : "";
  return watcher_->Watch(
      *start, subject_type, [&](const v1::Event& event) { return !wanted(event) || sink(event); },
      cancelled);
}

absl::StatusOr<v1::ListDeadLettersResponse> ApplicationApi::ListDeadLetters(
    const v1::ListDeadLettersRequest& request) {
  absl::StatusOr<int> limit = PageSize(request.limit(), kDefaultDeadLetterPageSize, kMaxPageSize);
  if (!limit.ok()) return limit.status();
  uint64_t start = request.start_sequence();
  if (!request.page_token().empty()) {
    absl::StatusOr<manifest::Json> token = DecodeToken(request.page_token(), kDeadLettersToken);
    if (!token.ok()) return token.status();
    const manifest::Json next = token->value("next", manifest::Json());
    if (!next.is_number_unsigned() || next.get<uint64_t>() == 0) {
      return absl::InvalidArgumentError("page_token has no position");
    }
    start = next.get<uint64_t>();
  }
  if (dead_letters_ == nullptr) {
    return absl::UnimplementedError("ListDeadLetters is not available on this server");
  }
  absl::StatusOr<DeadLetterStore::Page> page =
      dead_letters_->List(std::max<uint64_t>(start, 1), *limit);
  if (!page.ok()) {
    return Context(page.status(),
                   strings::Cat("listing dead letters of ", service::kDeadLetterStream));
  }
  v1::ListDeadLettersResponse response;
  for (const StoredDeadLetter& letter : page->letters) {
    *response.add_dead_letters() = ToDeadLetter(letter);
  }
  if (page->more && !page->letters.empty()) {
    response.set_next_page_token(
        EncodeToken({{"k", kDeadLettersToken}, {"next", page->letters.back().sequence + 1}}));
  }
  return response;
}

absl::StatusOr<v1::ListDeliveriesResponse> ApplicationApi::ListDeliveries(
    const v1::ListDeliveriesRequest& request) {
  absl::StatusOr<int> limit = PageSize(request.limit(), kDefaultPageSize, kMaxPageSize);
  if (!limit.ok()) return limit.status();
  if (request.since_seconds() < 0) {
    return absl::InvalidArgumentError("since_seconds must not be negative");
  }
  const std::string what =
      strings::Cat("reading the delivery log (bucket ", service::kDeliveriesBucket, ")");
  absl::StatusOr<std::vector<std::string>> keys = kv_->Keys(service::kDeliveriesBucket, "");
  if (!keys.ok()) return Context(keys.status(), what);
  const absl::Time oldest = request.since_seconds() > 0
                                ? absl::Now() - absl::Seconds(request.since_seconds())
                                : absl::InfinitePast();
  std::vector<v1::Delivery> found;
  for (const std::string& key : *keys) {
    absl::StatusOr<bus::KvEntry> entry = kv_->Get(service::kDeliveriesBucket, key);
    if (absl::IsNotFound(entry.status())) continue;  // expired meanwhile
    if (!entry.ok()) return Context(entry.status(), what);
    absl::StatusOr<manifest::Json> record = manifest::ParseJson(entry->value, key);
    if (!record.ok() || !record->is_object()) continue;
    v1::Delivery d;
    d.set_event_id(record->value("event", ""));
    d.set_type(record->value("type", ""));
    d.set_application(record->value("application", ""));
    d.set_destination(record->value("destination", ""));
    const bool failed = key.starts_with("f.");
    d.set_status(failed ? "failed" : "delivered");
    if (const manifest::Json& st = record->value("status", manifest::Json()); st.is_number()) {
      d.set_http_status(st.get<int32_t>());
    }
    d.set_attempts(record->value("attempts", record->value("attempt", int64_t{0})));
    d.set_error(record->value("error", ""));
    google::protobuf::Timestamp time;
    if (google::protobuf::util::TimeUtil::FromString(
            record->value(failed ? "failedAt" : "deliveredAt", ""), &time)) {
      *d.mutable_time() = time;
    }
    if (!request.application().empty() && d.application() != request.application()) continue;
    if (!request.destination().empty() &&
        d.destination().find(request.destination()) == std::string::npos) {
      continue;
    }
    if (absl::FromUnixSeconds(d.time().seconds()) < oldest) continue;
    found.push_back(std::move(d));
  }
  std::sort(found.begin(), found.end(), [](const v1::Delivery& a, const v1::Delivery& b) {
    return std::make_pair(b.time().seconds(), b.time().nanos()) <
           std::make_pair(a.time().seconds(), a.time().nanos());
  });
  v1::ListDeliveriesResponse response;
  for (size_t i = 0; i < found.size() && static_cast<int>(i) < *limit; ++i) {
    *response.add_deliveries() = std::move(found[i]);
  }
  return response;
}

absl::StatusOr<v1::RedriveDeadLetterResponse> ApplicationApi::RedriveDeadLetter(
    const v1::RedriveDeadLetterRequest& request) {
  if (request.sequence() == 0) {
    return absl::InvalidArgumentError("dead letter sequence 0: sequences start at 1");
  }
  if (dead_letters_ == nullptr) {
    return absl::UnimplementedError("RedriveDeadLetter is not available on this server");
  }
  const std::string what = strings::Cat("redriving dead letter #", request.sequence(), " of ",
                                        service::kDeadLetterStream);
  absl::StatusOr<StoredDeadLetter> letter = dead_letters_->Get(request.sequence());
  if (absl::IsNotFound(letter.status())) {
    return absl::NotFoundError(strings::Cat("dead letter #", request.sequence(), " not found in ",
                                            service::kDeadLetterStream,
                                            " (redriven already, or aged out)"));
  }
  if (!letter.ok()) return Context(letter.status(), what);

  const std::string subject = OriginalSubject(*letter);
  if (subject.empty() || subject.starts_with(DeadLetterPrefix())) {
    return absl::FailedPreconditionError(
        strings::Cat(what, ": it names no subject to go back to (header ", bus::kDlqSubjectHeader,
                     " is \"", subject, "\", subject ", letter->subject, ")"));
  }
  // The original headers go back with the body (trace context and the like); what the
  // dead-lettering added, and NATS' own (the message id), do not.
  bus::Headers headers;
  for (const auto& [key, value] : letter->headers) {
    if (StartsWithIgnoreCase(key, "Driftless-Dlq-") || StartsWithIgnoreCase(key, "Nats-")) {
      continue;
    }
    headers[key] = value;
  }
  // A new id (the original one may still be inside the duplicate window), the same for
  // every retry of this redrive.
  const std::string msg_id = strings::Cat("redrive:", service::kDeadLetterStream, ":",
                                          letter->sequence, ":", absl::ToUnixNanos(letter->time));
  absl::StatusOr<bus::PublishAck> ack = bus_->Publish(subject, letter->data, msg_id, headers);
  if (!ack.ok()) return Context(ack.status(), strings::Cat(what, ": publishing to ", subject));
  absl::Status deleted = dead_letters_->Delete(letter->sequence);
  if (!deleted.ok() && !absl::IsNotFound(deleted)) {  // not found: a concurrent redrive won
    return Context(deleted,
                   strings::Cat(what, ": republished to ", subject, " (", ack->stream, " #",
                                ack->sequence, ") but not deleted from the DLQ; retrying is safe"));
  }
  v1::RedriveDeadLetterResponse response;
  response.set_subject(subject);
  response.set_stream_sequence(ack->sequence);
  return response;
}

}  // namespace driftless::api
