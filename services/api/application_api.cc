#include "services/api/application_api.h"

#include <algorithm>
#include <optional>
#include <random>
#include <utility>
#include <vector>

#include "common/match/glob.h"
#include "common/resources/resources.h"
#include "common/status/status.h"
#include "common/strings/str.h"
#include "services/common/events.h"
#include "services/common/state.h"
#include "services/common/topology.h"

namespace driftless::api {
namespace {

constexpr char kApplication[] = "Application";
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

// Keeps the code, adds what the API was doing to the message.
absl::Status Context(const absl::Status& status, std::string_view what) {
  return Annotate(status, what);
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
                               EventWatcher* watcher)
    : bus_(bus), kv_(kv), emitter_(std::move(emitter)), watcher_(watcher) {}

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
    absl::StatusOr<service::ResourceStore::PutResult> put =
        request.dry_run() ? PredictPut(store, r) : store.Put(r.object);
    if (!put.ok()) return Context(put.status(), what);
    response.mutable_results(static_cast<int>(index))->set_action(ActionName(*put));
    if (request.dry_run() || r.kind != kApplication ||
        *put == service::ResourceStore::PutResult::kUnchanged) {
      continue;
    }
    absl::StatusOr<service::StoredResource> stored = store.Get(r.kind, r.name);
    if (!stored.ok()) return Context(stored.status(), what);
    bool created = *put == service::ResourceStore::PutResult::kCreated;
    v1::Event event = service::NewEvent(kAppChanged, r.name, "", emitter_);
    // One logical event per write: a re-publish of the same write is deduplicated.
    event.set_id(service::EventId(kAppChanged, r.name, "", stored->spec_digest,
                                  strings::Cat("r", stored->kv_revision)));
    event.set_message(strings::Cat("application ", r.name, created ? " created" : " configured",
                                   " (generation ", stored->generation, ")"));
    v1::AppChanged* changed = event.mutable_app_changed();
    changed->set_reason(created ? v1::AppChanged::REASON_CREATED : v1::AppChanged::REASON_UPDATED);
    changed->set_spec_digest(stored->spec_digest);
    changed->set_generation(stored->generation);
    changed->set_object_json(stored->object.dump());
    DL_RETURN_IF_ERROR(Context(service::Emit(*bus_, event), what));
  }
  return response;
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
  service::ResourceStore resources(kv_);
  absl::StatusOr<std::vector<service::StoredResource>> stored = resources.List(kApplication);
  if (!stored.ok()) return Context(stored.status(), "listing applications");
  std::sort(stored->begin(), stored->end(),
            [](const auto& a, const auto& b) { return a.name < b.name; });
  v1::ListApplicationsResponse response;
  for (const service::StoredResource& app : *stored) {
    if (!request.project().empty() && ProjectOf(app.object) != request.project()) continue;
    if (!request.name_pattern().empty() &&
        !match::GlobMatch(request.name_pattern(), app.name, {.slash_is_special = false})) {
      continue;
    }
    absl::StatusOr<v1::AppStatus> status = ReadStatus(kv_, app.name);
    if (!status.ok()) {
      return Context(status.status(),
                     strings::Cat("reading the status of application \"", app.name, "\""));
    }
    v1::Application* out = response.add_applications();
    *out->mutable_resource() = ToResource(app);
    *out->mutable_status() = *std::move(status);
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
  if (request.cascade()) {
    // Queued before the resource goes away: if this fails, nothing was deleted and the
    // caller can retry; if the deletes below fail, the retry re-queues the same event id.
    v1::Event event = service::NewEvent(kAppChanged, request.name(), "", emitter_);
    event.set_id(service::EventId(kAppChanged, request.name(), "", stored->spec_digest,
                                  strings::Cat("deleted-r", stored->kv_revision)));
    event.set_message(strings::Cat("application ", request.name(),
                                   " deleted with cascade: its objects are pruned"));
    v1::AppChanged* changed = event.mutable_app_changed();
    changed->set_reason(v1::AppChanged::REASON_DELETED);
    changed->set_spec_digest(stored->spec_digest);
    changed->set_generation(stored->generation);
    // The application is gone from the store when the planner reads this: the destination
    // (cluster, namespace) of the objects to prune comes from here.
    changed->set_object_json(stored->object.dump());
    DL_RETURN_IF_ERROR(Context(service::Emit(*bus_, event, service::kStagePlan), what));
  }
  DL_RETURN_IF_ERROR(Context(resources.Delete(kApplication, request.name()), what));
  DL_RETURN_IF_ERROR(Context(service::StatusStore(kv_).Delete(request.name()), what));
  // Its history and any plan waiting for it go with it (a re-created application starts
  // afresh; late writers of the old incarnation are refused by uid).
  DL_RETURN_IF_ERROR(Context(service::HistoryStore(kv_).DeleteAll(request.name()), what));
  return Context(kv_->Delete(service::kPendingBucket, service::StatusKey(request.name())), what);
}

absl::StatusOr<v1::SyncApplicationResponse> ApplicationApi::Sync(
    const v1::SyncApplicationRequest& request) {
  if (request.name().empty()) return absl::InvalidArgumentError("application name is empty");
  service::ResourceStore resources(kv_);
  absl::StatusOr<service::StoredResource> stored = resources.Get(kApplication, request.name());
  if (absl::IsNotFound(stored.status())) return ApplicationNotFound(request.name());
  std::string what = strings::Cat("requesting a sync of application \"", request.name(), "\"");
  if (!stored.ok()) return Context(stored.status(), what);

  std::string sync_id = NewSyncId();
  v1::Event event = service::NewEvent(kSyncRequested, request.name(), request.revision(), emitter_);
  event.set_id(service::EventId(kSyncRequested, request.name(), request.revision(),
                                stored->spec_digest, sync_id));
  event.set_correlation_id(sync_id);
  event.set_message(strings::Cat(
      "sync of ", request.name(), " requested",
      request.revision().empty() ? std::string() : strings::Cat(" at ", request.revision()),
      request.dry_run() ? " (dry run)" : ""));
  v1::SyncRequested* sync = event.mutable_sync_requested();
  sync->set_sync_id(sync_id);
  sync->set_revision(request.revision());
  *sync->mutable_resources() = request.resources();
  sync->set_prune(request.prune());
  sync->set_dry_run(request.dry_run());
  sync->set_refresh(true);
  sync->set_requested_by("user:cli");
  DL_RETURN_IF_ERROR(Context(service::Emit(*bus_, event, service::kStagePoll), what));
  v1::SyncApplicationResponse response;
  response.set_sync_id(sync_id);
  return response;
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
  return watcher_->Watch(
      request.include_history(),
      [&](const v1::Event& event) { return !wanted(event) || sink(event); }, cancelled);
}

}  // namespace driftless::api
