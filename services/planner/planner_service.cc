#include "services/planner/planner_service.h"

#include <algorithm>
#include <map>
#include <set>

#include "absl/time/clock.h"
#include "common/health/health.h"
#include "common/log/log.h"
#include "common/manifest/object.h"
#include "common/strings/str.h"
#include "services/common/events.h"
#include "services/common/identity.h"
#include "services/common/render_inputs.h"
#include "services/common/state.h"
#include "services/common/topology.h"
#include "services/sync/app_spec.h"
#include "services/sync/drift.h"
#include "services/sync/live.h"
#include "services/sync/plan.h"

namespace driftless::planner {
namespace {

using manifest::Json;
using sync::Action;
using sync::AppSpec;
using sync::BuildPlan;
using sync::IsTransient;
using sync::KeyOf;
using sync::kInCluster;
using sync::KindRef;
using sync::KubeRefOf;
using sync::ListTracked;
using sync::ParseAppSpec;
using sync::PhaseName;
using sync::Plan;
using sync::PlanItem;
using sync::PlanOptions;
using sync::PrepareDesired;
using sync::PrepareOptions;
using sync::ProtoRefOf;
using sync::ToProto;

using service::kApplication;
constexpr char kPlanReady[] = "plan.ready";
constexpr char kSyncFailed[] = "sync.failed";

v1::Action ToProto(Action action) {
  switch (action) {
    case Action::kNone:
      return v1::ACTION_NONE;
    case Action::kCreate:
      return v1::ACTION_CREATE;
    case Action::kUpdate:
      return v1::ACTION_UPDATE;
    case Action::kDelete:
      return v1::ACTION_DELETE;
  }
  return v1::ACTION_UNSPECIFIED;
}

// Whether `object` is one of the objects a selective sync names (empty group / namespace in
// the request match any).
bool Selected(const Json& object, const v1::ObjectRef& ref) {
  return manifest::KindOf(object) == ref.kind() && manifest::NameOf(object) == ref.name() &&
         (ref.group().empty() || manifest::GroupOf(object) == ref.group()) &&
         (ref.namespace_().empty() || manifest::NamespaceOf(object) == ref.namespace_());
}

std::string ResourceMessage(const PlanItem& item) {
  if (item.requires_pruning) return "not in git any more: requires pruning";
  switch (item.action) {
    case Action::kCreate:
      return "missing from the cluster";
    case Action::kDelete:
      return "not in git any more: pruned on sync";
    case Action::kUpdate: {
      std::string out = "differs from git";
      size_t shown = 0;
      for (const std::string& path : item.diff.changed_paths) {
        if (path.empty()) continue;
        strings::Append(out, shown == 0 ? ": " : ", ", path);
        if (++shown == 5) {
          if (item.diff.changed_paths.size() > 5) out += ", ...";
          break;
        }
      }
      return out;
    }
    case Action::kNone:
      return "";
  }
  return "";
}

absl::Duration Backoff(const bus::Message& message) {
  return service::RetryDelay(message, absl::Milliseconds(500));
}

}  // namespace

std::string AutomatedSyncId(std::string_view application, std::string_view revision,
                            std::string_view render_digest, std::string_view spec_digest) {
  return "auto-" + manifest::Sha256Hex(strings::Cat(application, "/", revision, "/", render_digest,
                                                    "/", spec_digest))
                       .substr(0, 16);
}

PlannerService::PlannerService(kube::KubeClient* kube, bus::KvStore* kv, bus::BlobStore* blobs,
                               bus::EventBus* bus, std::string emitter, LiveCache* cache)
    : kube_(kube), kv_(kv), blobs_(blobs), bus_(bus), emitter_(std::move(emitter)), cache_(cache) {}

bus::Disposition PlannerService::Handle(const v1::Event& event, const bus::Message& message) {
  if (event.type() == "app.rendered" && event.has_app_rendered()) {
    return HandleRendered(event, message);
  }
  if (event.type() == "app.changed" && event.has_app_changed()) {
    return HandleDeleted(event, message);
  }
  if (event.type() == service::event_type::kRenderInputsRequested) {
    return HandleInputsRequested(event, message);
  }
  log::Info("ignoring work item", {{"event", service::Describe(event)}});
  return bus::Disposition::Ack();
}

bus::Disposition PlannerService::HandleInputsRequested(const v1::Event& event,
                                                       const bus::Message& message) {
  absl::StatusOr<service::StoredResource> app =
      service::ResourceStore(kv_).Get(kApplication, event.application());
  if (absl::IsNotFound(app.status())) return bus::Disposition::Ack();
  absl::Status s = app.status();
  if (s.ok()) s = ResolveInputs(*app, /*mint=*/false, event.sync_requested().sync_id());
  if (s.ok()) return bus::Disposition::Ack();
  log::Warn("cannot resolve render inputs", {{"application", event.application()}, {"error", s}});
  return bus::Disposition::Nak(Backoff(message), std::string(s.message()));
}

absl::Status PlannerService::ResolveInputs(const service::StoredResource& application, bool mint,
                                           const std::string& request) {
  const std::vector<service::InputRef> refs = service::InputRefsOf(application.object);
  service::RenderInputsStore store(kv_);
  if (refs.empty()) return store.Delete(application.name);  // the spec dropped them
  DL_ASSIGN_OR_RETURN(std::optional<service::RenderInputs> before, store.Get(application.name));
  DL_ASSIGN_OR_RETURN(
      service::RenderInputs inputs,
      service::ResolveRenderInputs(application.uid, refs, sync::InputFetcherFor(*kube_)));
  // A refresh keeps the request it answered (a redelivered render then needs no new one).
  inputs.request = !request.empty() ? request : before ? before->request : "";
  DL_ASSIGN_OR_RETURN(bool wrote, store.Put(application.name, inputs));
  // A first record (or one for other references) is what a waiting render asked for; only a
  // change of the data behind the same references needs a new generation.
  if (!wrote || !mint || !before.has_value() || !before->Matches(application.uid, refs) ||
      before->digest == inputs.digest) {
    return absl::OkStatus();
  }
  log::Info("render inputs changed", {{"application", application.name}});
  return service::RequestGeneration(
      *bus_, application.name, nullptr, "inputs",
      strings::Cat(application.name,
                   ": a ConfigMap or Secret its render reads changed: re-rendering"),
      "", emitter_);
}

absl::Status PlannerService::RefreshInputs() {
  DL_ASSIGN_OR_RETURN(service::ClusterFacts facts, sync::ReadClusterFacts(*kube_));
  DL_RETURN_IF_ERROR(service::RenderInputsStore(kv_).PutCluster(kInCluster, facts).status());
  // Only applications with a record: the renderer asks for one at their first render, so an
  // idle fleet without valuesFrom/substituteFrom costs one key listing.
  DL_ASSIGN_OR_RETURN(std::vector<std::string> names,
                      service::RenderInputsStore(kv_).Applications());
  service::ResourceStore resources(kv_);
  for (const std::string& name : names) {
    absl::StatusOr<service::StoredResource> app = resources.Get(kApplication, name);
    if (absl::IsNotFound(app.status())) continue;  // FinalizeDeletion removes its record
    DL_RETURN_IF_ERROR(app.status());
    if (service::IsDeleting(*app)) continue;
    if (absl::Status s = ResolveInputs(*app, /*mint=*/true); !s.ok()) {
      // One application's trouble (a Secret that is not base64) must not stop the others.
      if (IsTransient(s)) return s;
      log::Warn("cannot resolve render inputs", {{"application", name}, {"error", s}});
    }
  }
  return absl::OkStatus();
}

bus::Disposition PlannerService::Retry(const v1::Event& event, const bus::Message& message,
                                       const absl::Status& status) {
  if (static_cast<int>(message.delivery_count) >= service::kMaxDeliver) {
    return Fail(event, "ClusterUnavailable",
                strings::Cat("application ", event.application(), ": planning failed after ",
                             message.delivery_count, " attempts: ", status.message()),
                "", message);
  }
  return bus::Disposition::Nak(Backoff(message), std::string(status.message()));
}

bus::Disposition PlannerService::Fail(const v1::Event& event, std::string_view reason,
                                      const std::string& message, std::string_view digest,
                                      const bus::Message& delivery) {
  const std::string& app = event.application();
  log::Warn("planning failed", {{"application", app}, {"reason", reason}, {"error", message}});
  absl::StatusOr<v1::AppStatus> updated =
      service::StatusStore(kv_).Update(app, [&](v1::AppStatus& s) {
        service::SetCondition(s, "Stalled", true, reason, message);
        s.set_message(message);
        if (!event.revision().empty()) s.set_last_attempted_revision(event.revision());
        if (s.sync() == v1::SYNC_STATUS_CODE_UNSPECIFIED) s.set_sync(v1::SYNC_STATUS_CODE_UNKNOWN);
        service::SetTimestamp(s.mutable_reconciled_at(), absl::Now());
        return true;
      });
  if (!updated.ok()) return bus::Disposition::Nak(Backoff(delivery), updated.status().ToString());
  std::string sync_id;
  std::string initiated_by = "automated";
  if (event.has_app_rendered() && event.app_rendered().has_sync_request()) {
    sync_id = event.app_rendered().sync_request().sync_id();
    initiated_by = event.app_rendered().sync_request().requested_by();
  }
  v1::Event failed = service::NewEvent(kSyncFailed, app, event.revision(), emitter_);
  if (const service::SyncIdentity identity = service::IdentityOf(event); identity.known()) {
    service::SetIdentity(failed, identity);
    failed.set_id(service::IdentityEventId(kSyncFailed, app, identity, "plan"));
  } else {
    failed.set_id(service::EventId(
        kSyncFailed, app, event.revision(),
        digest.empty() ? manifest::Sha256Hex(message).substr(0, 16) : std::string(digest),
        sync_id));
  }
  failed.set_correlation_id(event.correlation_id());
  failed.set_severity(v1::SEVERITY_ERROR);
  failed.set_message(message);
  v1::SyncFinished* finished = failed.mutable_sync_finished();
  finished->set_sync_id(sync_id);
  finished->set_succeeded(false);
  finished->set_error(message);
  finished->set_initiated_by(initiated_by);
  if (absl::Status s = service::Emit(*bus_, failed); !s.ok()) {
    return bus::Disposition::Nak(Backoff(delivery), s.ToString());
  }
  return bus::Disposition::Ack();
}

absl::StatusOr<std::vector<Json>> PlannerService::ReadLive(const std::string& app,
                                                           const std::string& destination,
                                                           const std::vector<Json>& desired,
                                                           const v1::AppStatus& previous,
                                                           std::map<std::string, Json>& live) {
  // Kinds of the desired objects and of the inventory (for pruning), in their namespaces;
  // cluster-scoped objects (desired, or in the inventory) are read by name.
  std::set<KindRef> kinds;
  std::set<std::string> namespaces;
  std::map<KindRef, std::set<std::string>> cluster_names;
  if (!destination.empty()) namespaces.insert(destination);
  for (const Json& o : desired) {
    const KindRef kind{manifest::ApiVersionOf(o), manifest::KindOf(o)};
    kinds.insert(kind);
    if (std::string ns = manifest::NamespaceOf(o); !ns.empty()) {
      namespaces.insert(ns);
    } else {
      cluster_names[kind].insert(manifest::NameOf(o));
    }
  }
  for (const v1::ResourceStatus& r : previous.resources()) {
    const KindRef kind{KubeRefOf(r.ref()).api_version, r.ref().kind()};
    kinds.insert(kind);
    if (!r.ref().namespace_().empty()) {
      namespaces.insert(r.ref().namespace_());
    } else {
      cluster_names[kind].insert(r.ref().name());
    }
  }
  bool cached = cache_ != nullptr;
  for (const KindRef& kind : kinds) {
    if (!cache_) break;
    cache_->Track(kind);
    cached = cached && cache_->Synced(kind);
  }
  if (!cached) return ListTracked(*kube_, app, kinds, namespaces, &live, cluster_names);
  std::vector<Json> tracked;
  for (const KindRef& kind : kinds) {
    for (Json& o : cache_->TrackedOf(kind, app)) {
      live.emplace(manifest::ObjectKey(o), o);
      tracked.push_back(std::move(o));
    }
  }
  // Desired objects the cache does not hold are new, or exist without the label (created by
  // someone else, or labelled for another application): read those from the cluster.
  std::set<KindRef> missing_kinds;
  std::set<std::string> missing_namespaces;
  std::map<KindRef, std::set<std::string>> missing_names;
  for (const Json& o : desired) {
    if (live.contains(manifest::ObjectKey(o))) continue;
    const KindRef kind{manifest::ApiVersionOf(o), manifest::KindOf(o)};
    missing_kinds.insert(kind);
    if (std::string ns = manifest::NamespaceOf(o); !ns.empty()) {
      missing_namespaces.insert(ns);
    } else {
      missing_names[kind].insert(manifest::NameOf(o));
    }
  }
  if (missing_kinds.empty()) return tracked;
  std::map<std::string, Json> read;
  DL_ASSIGN_OR_RETURN(
      std::vector<Json> listed,
      ListTracked(*kube_, app, missing_kinds, missing_namespaces, &read, missing_names));
  for (Json& o : listed) {
    if (!live.contains(manifest::ObjectKey(o))) tracked.push_back(std::move(o));
  }
  for (auto& [key, o] : read) live.emplace(key, std::move(o));
  return tracked;
}

v1::DiffReply PlannerService::Diff(const std::string& app) {
  v1::DiffReply reply;
  auto fail = [&](const absl::Status& status) {
    reply.set_error_code(static_cast<int32_t>(status.code()));
    reply.set_error(std::string(status.message()));
    return reply;
  };
  absl::StatusOr<service::StoredResource> stored =
      service::ResourceStore(kv_).Get(kApplication, app);
  if (!stored.ok()) return fail(stored.status());
  absl::StatusOr<v1::AppStatus> status = service::StatusStore(kv_).Get(app);
  if (!status.ok()) return fail(status.status());
  if (status->desired_digest().empty() || status->application_uid() != stored->uid) {
    return fail(absl::FailedPreconditionError(
        strings::Cat("application ", app, " has not been planned yet: nothing to compare with")));
  }
  absl::StatusOr<std::vector<Json>> loaded =
      service::LoadDesired(*blobs_, status->desired_digest());
  if (!loaded.ok()) {
    return fail(
        absl::Status(loaded.status().code(),
                     strings::Cat("application ", app, " (planned generation ",
                                  status->desired_seq(), "): ", loaded.status().message())));
  }
  const std::vector<Json>& desired = *loaded;
  const AppSpec spec = ParseAppSpec(stored->object);
  std::map<std::string, Json> live;
  absl::StatusOr<std::vector<Json>> tracked = ReadLive(app, spec.ns, desired, *status, live);
  if (!tracked.ok()) {
    return fail(absl::Status(tracked.status().code(),
                             strings::Cat("application ", app, ": ", tracked.status().message())));
  }
  sync::DiffOptions diff;
  diff.ignore = spec.ignore;
  absl::StatusOr<sync::LiveDiff> result = sync::DiffLive(
      desired,
      [&](const Json& o) -> std::optional<Json> {
        auto it = live.find(manifest::ObjectKey(o));
        if (it == live.end()) return std::nullopt;
        return it->second;
      },
      *tracked, (spec.automated && spec.auto_prune), diff);
  if (!result.ok()) return fail(result.status());
  reply.set_differing(result->differing);
  // A reply is one NATS message: a huge diff is cut (the objects are all counted).
  constexpr size_t kMaxDiffBytes = 512 * 1024;
  if (result->text.size() > kMaxDiffBytes) {
    result->text.resize(kMaxDiffBytes);
    result->text += strings::Cat("\n... (diff cut at ", kMaxDiffBytes, " bytes)\n");
  }
  reply.set_text(std::move(result->text));
  reply.set_revision(status->last_attempted_revision());
  reply.set_desired_seq(status->desired_seq());
  return reply;
}

bus::Disposition PlannerService::HandleRendered(const v1::Event& event,
                                                const bus::Message& message) {
  const v1::AppRendered& rendered = event.app_rendered();
  const std::string& app = event.application();
  const v1::SyncRequested* request =
      rendered.has_sync_request() && !rendered.sync_request().automated() ? &rendered.sync_request()
                                                                          : nullptr;

  absl::StatusOr<service::StoredResource> stored =
      service::ResourceStore(kv_).Get(kApplication, app);
  if (absl::IsNotFound(stored.status()) || (stored.ok() && service::IsDeleting(*stored))) {
    log::Info(stored.ok() ? "application being deleted, dropping" : "application gone, dropping",
              {{"event", service::Describe(event)}});
    return bus::Disposition::Ack();
  }
  if (!stored.ok()) return Retry(event, message, stored.status());
  if (!rendered.error().empty()) return bus::Disposition::Ack();  // the renderer reported it
  const service::SyncIdentity identity = service::IdentityOf(event);
  if (identity.known() && identity.uid != stored->uid) {
    log::Info("application re-created since, dropping", {{"event", service::Describe(event)}});
    return bus::Disposition::Ack();
  }
  if (stored->spec_digest != rendered.spec_digest()) {
    log::Info("spec changed since rendering, dropping (a newer render follows)",
              {{"event", service::Describe(event)}});
    return bus::Disposition::Ack();
  }
  const AppSpec spec = ParseAppSpec(stored->object);
  if (spec.cluster != kInCluster) {
    return Fail(event, "ClusterNotRegistered",
                strings::Cat("application ", app, ": cluster \"", spec.cluster,
                             "\" not registered (spec.destination.cluster)"),
                "", message);
  }

  absl::StatusOr<Json> manifests = service::DecodeManifests(*blobs_, rendered.manifests());
  if (absl::IsNotFound(manifests.status())) {
    // The blob expired (an item re-driven long after it was rendered): render it again,
    // unless a newer generation has been planned since.
    absl::StatusOr<v1::AppStatus> current = service::StatusStore(kv_).Get(app);
    if (!current.ok()) return Retry(event, message, current.status());
    if (service::SupersededByStatus(identity, *current)) {
      log::Info("expired manifests of a superseded generation, dropping",
                {{"event", service::Describe(event)}});
      return bus::Disposition::Ack();
    }
    log::Warn("rendered manifests expired, re-rendering as a new generation",
              {{"event", service::Describe(event)}, {"error", manifests.status()}});
    if (absl::Status s = service::RequestGeneration(
            *bus_, app, request, "rerender",
            strings::Cat(app, ": rendered manifests expired: re-rendering"), event.correlation_id(),
            emitter_);
        !s.ok()) {
      return Retry(event, message, s);
    }
    return bus::Disposition::Ack();
  }
  if (!manifests.ok()) {
    if (IsTransient(manifests.status())) return Retry(event, message, manifests.status());
    return Fail(event, "ManifestsUnavailable",
                strings::Cat("application ", app,
                             ": rendered manifests unavailable: ", manifests.status().message()),
                "", message);
  }
  // Reachability, and discovery into the client's cache (one fetch per TTL, not per object).
  if (absl::StatusOr<std::vector<kube::ResourceInfo>> d = kube_->Discover(); !d.ok()) {
    if (IsTransient(d.status())) return Retry(event, message, d.status());
    return Fail(event, "ClusterError",
                strings::Cat("application ", app, ": ", d.status().message()), "", message);
  }

  std::vector<Json> objects;
  if (manifests->is_array()) objects.assign(manifests->begin(), manifests->end());
  absl::Status scope_error;
  PrepareOptions prepare{.application = app,
                         .destination_namespace = spec.ns,
                         .create_namespace = spec.create_namespace,
                         .is_namespaced = sync::ClusterScope(*kube_, &scope_error)};
  absl::StatusOr<std::vector<Json>> desired = PrepareDesired(std::move(objects), prepare);
  if (!scope_error.ok()) return Retry(event, message, scope_error);
  if (!desired.ok()) {
    return Fail(event, "InvalidManifests",
                strings::Cat("application ", app, ": ", desired.status().message()),
                rendered.render_digest(), message);
  }

  service::StatusStore statuses(kv_);
  absl::StatusOr<v1::AppStatus> previous = statuses.Get(app);
  if (!previous.ok()) return Retry(event, message, previous.status());
  if (service::SupersededByStatus(identity, *previous)) {
    log::Info("superseded by a newer desired generation, dropping",
              {{"event", service::Describe(event)},
               {"seq", identity.seq},
               {"statusSeq", previous->desired_seq()},
               {"appliedSeq", previous->applied_seq()}});
    return bus::Disposition::Ack();
  }

  std::map<std::string, Json> live;
  absl::StatusOr<std::vector<Json>> tracked = ReadLive(app, spec.ns, *desired, *previous, live);
  if (!tracked.ok()) {
    if (IsTransient(tracked.status())) return Retry(event, message, tracked.status());
    return Fail(event, "ClusterError",
                strings::Cat("application ", app, ": ", tracked.status().message()), "", message);
  }

  PlanOptions options{
      .application = app,
      .prune = (spec.automated && spec.auto_prune) || (request && request->prune())};
  options.diff.ignore = spec.ignore;
  absl::StatusOr<Plan> full = BuildPlan(*desired, live, *tracked, options);
  if (!full.ok()) {
    return Fail(event, "PlanFailed",
                strings::Cat("application ", app, ": ", full.status().message()),
                rendered.render_digest(), message);
  }

  // Automated syncs run when there is something to do (objects that only require pruning
  // with prune off keep the app OutOfSync but give the applier nothing to do).
  const bool automated = spec.automated && !spec.suspend;
  const bool actionable = full->creates + full->updates + full->deletes > 0;
  const bool will_sync = request || (automated && actionable);

  // What drift is judged against once this generation is applied (drift_detector.h).
  absl::StatusOr<std::string> desired_digest = service::StoreDesired(*blobs_, *desired);
  if (!desired_digest.ok()) return Retry(event, message, desired_digest.status());

  // Status: what the planner owns. Guarded by the identity: a plan of an older desired
  // generation never overwrites a newer one.
  bool superseded = false;
  absl::StatusOr<v1::AppStatus> updated = statuses.Update(
      app,
      [&](v1::AppStatus& s) {
        if (service::SupersededByStatus(identity, s)) {
          superseded = true;
          return false;
        }
        if (identity.known()) {
          s.set_desired_seq(identity.seq);
          s.set_attempt(identity.attempt);
          // Nothing to run for this generation: it is checked, and so done.
          if (!will_sync) s.set_applied_seq(identity.seq);
        }
        std::map<std::string, std::pair<v1::HealthStatusCode, std::string>> previous_health;
        for (const v1::ResourceStatus& r : s.resources()) {
          previous_health[KeyOf(r.ref())] = {r.health(), r.message()};
        }
        s.clear_resources();
        health::HealthCode worst = health::HealthCode::kHealthy;
        for (const PlanItem& item : full->items) {
          v1::ResourceStatus* r = s.add_resources();
          *r->mutable_ref() = ProtoRefOf(item.object);
          bool synced = item.action == Action::kNone && !item.requires_pruning;
          r->set_sync(synced ? v1::SYNC_STATUS_CODE_SYNCED : v1::SYNC_STATUS_CODE_OUT_OF_SYNC);
          r->set_message(ResourceMessage(item));
          if (full->in_sync) {
            auto it = live.find(item.key);
            health::Health h = it == live.end() ? health::Health{health::HealthCode::kMissing, ""}
                                                : health::AssessHealthOrHealthy(it->second);
            worst = health::Worst(worst, h.code);
            r->set_health(ToProto(h.code));
            if (!h.message.empty()) r->set_message(h.message);
          } else if (item.action == Action::kCreate) {
            r->set_health(v1::HEALTH_STATUS_CODE_MISSING);
          } else if (auto it = previous_health.find(item.key); it != previous_health.end()) {
            r->set_health(it->second.first);
          } else {
            r->set_health(v1::HEALTH_STATUS_CODE_UNKNOWN);
          }
        }
        s.set_sync(full->in_sync ? v1::SYNC_STATUS_CODE_SYNCED : v1::SYNC_STATUS_CODE_OUT_OF_SYNC);
        if (full->in_sync) s.set_health(ToProto(worst));
        s.set_spec_digest(stored->spec_digest);
        s.set_desired_digest(*desired_digest);
        s.set_observed_generation(stored->generation);
        s.set_last_attempted_revision(event.revision());
        if (event.has_app_rendered()) {
          *s.mutable_render_duration() = event.app_rendered().duration();
          s.set_generator(event.app_rendered().generator());
        }
        service::SetTimestamp(s.mutable_reconciled_at(), absl::Now());
        for (const char* type :
             {"Stalled", service::kDeadLetteredCondition, service::kDriftedCondition}) {
          if (const v1::Condition* c = service::FindCondition(s, type); c && c->status()) {
            service::SetCondition(s, type, false, "Planned", "");
            s.clear_message();
          }
        }
        return true;
      },
      identity.known() ? std::string_view(identity.uid) : std::string_view());
  if (absl::IsNotFound(updated.status())) {
    log::Info("application deleted meanwhile, dropping", {{"event", service::Describe(event)}});
    return bus::Disposition::Ack();
  }
  if (!updated.ok()) return Retry(event, message, updated.status());
  if (superseded) {
    log::Info("superseded by a newer desired generation, dropping",
              {{"event", service::Describe(event)}, {"seq", identity.seq}});
    return bus::Disposition::Ack();
  }

  if (!will_sync) {
    log::Info("planned", {{"application", app},
                          {"revision", event.revision()},
                          {"inSync", full->in_sync},
                          {"sync", "not started (manual or suspended)"}});
    return bus::Disposition::Ack();
  }

  // The plan to run: selective sync and ApplyOutOfSyncOnly narrow the full plan.
  const Plan* plan = &*full;
  absl::StatusOr<Plan> narrowed;
  if ((request && request->resources_size() > 0) || spec.apply_out_of_sync_only) {
    PlanOptions narrow = options;
    narrow.apply_out_of_sync_only = spec.apply_out_of_sync_only;
    if (request) {
      for (const v1::ObjectRef& ref : request->resources()) {
        size_t before = narrow.only.size();
        for (const Json& o : *desired) {
          if (Selected(o, ref)) narrow.only.push_back(manifest::ObjectKey(o));
        }
        for (const Json& o : *tracked) {
          if (Selected(o, ref)) narrow.only.push_back(manifest::ObjectKey(o));
        }
        if (narrow.only.size() == before) {
          return Fail(
              event, "UnknownResource",
              strings::Cat("application ", app, ": sync of ", ref.kind(), " ",
                           ref.namespace_().empty() ? "" : ref.namespace_() + "/", ref.name(),
                           " requested, but the application has no such object"),
              rendered.render_digest(), message);
        }
      }
    }
    narrowed = BuildPlan(*desired, live, *tracked, narrow);
    if (!narrowed.ok()) {
      return Fail(event, "PlanFailed",
                  strings::Cat("application ", app, ": ", narrowed.status().message()),
                  rendered.render_digest(), message);
    }
    plan = &*narrowed;
  }

  std::string sync_id;
  if (request && !request->sync_id().empty()) {
    // The id the user's CLI waits for; a retry of it is a sync of its own.
    sync_id = identity.attempt > 1 ? strings::Cat(request->sync_id(), "-", identity.attempt)
                                   : request->sync_id();
  } else if (identity.known()) {
    sync_id = service::SyncIdOf(identity);
  } else {
    sync_id =
        AutomatedSyncId(app, event.revision(), rendered.render_digest(), rendered.spec_digest());
  }
  v1::Event out = service::NewEvent(kPlanReady, app, event.revision(), emitter_);
  out.set_cluster(spec.cluster);
  if (identity.known()) {
    service::SetIdentity(out, identity);
    out.set_id(service::IdentityEventId(kPlanReady, app, identity));
  } else {
    out.set_id(
        service::EventId(kPlanReady, app, event.revision(), rendered.render_digest(), sync_id));
  }
  out.set_correlation_id(event.correlation_id());
  v1::PlanReady* ready = out.mutable_plan_ready();
  ready->set_sync_id(sync_id);
  ready->set_spec_digest(rendered.spec_digest());
  ready->set_render_digest(rendered.render_digest());
  ready->set_prune(options.prune);
  ready->set_no_force_conflicts(!spec.force_conflicts);
  if (rendered.has_sync_request()) ready->set_reason(rendered.sync_request().reason());
  ready->set_dry_run(request && request->dry_run());
  ready->set_initiated_by(!request                          ? std::string("automated")
                          : request->requested_by().empty() ? std::string("user")
                                                            : request->requested_by());
  Json apply = Json::array();
  for (const PlanItem& item : plan->items) {
    if (item.requires_pruning) continue;  // not pruned: nothing to do with it
    v1::PlannedObject* o = ready->add_objects();
    *o->mutable_ref() = ProtoRefOf(item.object);
    o->set_action(ToProto(item.action));
    o->set_wave(item.order.wave);
    o->set_phase(std::string(PhaseName(item.order.phase)));
    if (item.action != Action::kDelete) apply.push_back(item.object);
  }
  absl::StatusOr<v1::ManifestPayload> payload = service::EncodeManifests(*blobs_, apply);
  if (!payload.ok()) return Retry(event, message, payload.status());
  *ready->mutable_manifests() = *std::move(payload);
  out.set_message(strings::Cat("sync of ", app, " planned: ", plan->creates, " to create, ",
                               plan->updates, " to update, ", plan->deletes, " to prune, ",
                               plan->unchanged, " unchanged"));
  if (absl::Status s = service::Emit(*bus_, out, service::kStageApply); !s.ok()) {
    return Retry(event, message, s);
  }
  log::Info("plan ready", {{"application", app},
                           {"revision", event.revision()},
                           {"syncId", sync_id},
                           {"creates", plan->creates},
                           {"updates", plan->updates},
                           {"deletes", plan->deletes}});
  return bus::Disposition::Ack();
}

bus::Disposition PlannerService::HandleDeleted(const v1::Event& event,
                                               const bus::Message& message) {
  const v1::AppChanged& changed = event.app_changed();
  const std::string& app = event.application();
  if (changed.reason() != v1::AppChanged::REASON_DELETED) return bus::Disposition::Ack();
  absl::StatusOr<Json> doc = manifest::ParseJson(changed.object_json(), "app.changed");
  if (changed.object_json().empty() || !doc.ok() || !doc->is_object()) {
    log::Error("cannot prune a deleted application: the event carries no document",
               {{"application", app}, {"event", event.id()}});
    return bus::Disposition::Ack();
  }
  // The api marks the application deleting, then queues this; it stays until the prune is
  // done (finalizer-style). Spec digests include the uid: equal digests, same incarnation.
  // Gone already: a non-cascade delete overtook this one, or an item queued by an older api
  // (which removed the application first): prune what is left, there is nothing to finalize.
  absl::StatusOr<service::StoredResource> again =
      service::ResourceStore(kv_).Get(kApplication, app);
  if (!again.ok() && !absl::IsNotFound(again.status())) {
    return Retry(event, message, again.status());
  }
  if (again.ok() && again->spec_digest != changed.spec_digest()) {
    log::Info("application re-created since its deletion, not pruning", {{"application", app}});
    return bus::Disposition::Ack();
  }
  if (again.ok() && !service::IsDeleting(*again)) {
    return bus::Disposition::Nak(absl::Milliseconds(200), "deletion not visible yet");
  }
  const std::string uid = again.ok() ? again->uid : "";
  const AppSpec spec = ParseAppSpec(*doc);
  if (spec.cluster != kInCluster) {
    log::Error("cannot prune a deleted application: cluster not registered",
               {{"application", app}, {"cluster", spec.cluster}});
    return bus::Disposition::Ack();
  }
  absl::StatusOr<std::vector<kube::ResourceInfo>> resources = kube_->Discover();
  if (!resources.ok()) {
    if (IsTransient(resources.status()) &&
        static_cast<int>(message.delivery_count) < service::kMaxDeliver) {
      return bus::Disposition::Nak(Backoff(message), resources.status().ToString());
    }
    log::Error("cannot prune a deleted application",
               {{"application", app}, {"error", resources.status()}});
    return bus::Disposition::Ack();
  }
  // Every listable kind (the status with the inventory is deleted along with the app).
  std::set<KindRef> kinds;
  std::set<std::string> seen;
  for (const kube::ResourceInfo& r : *resources) {
    if (r.kind == "Event" || r.kind.ends_with("Review")) continue;
    if (!r.verbs.empty() && std::find(r.verbs.begin(), r.verbs.end(), "list") == r.verbs.end()) {
      continue;
    }
    if (!seen.insert(r.group + "/" + r.kind).second) continue;  // one version per kind
    kinds.insert({r.ApiVersion(), r.kind});
  }
  absl::StatusOr<std::vector<Json>> tracked = ListTracked(*kube_, app, kinds, {}, nullptr);
  if (!tracked.ok()) {
    if (IsTransient(tracked.status()) &&
        static_cast<int>(message.delivery_count) < service::kMaxDeliver) {
      return bus::Disposition::Nak(Backoff(message), tracked.status().ToString());
    }
    log::Error("cannot prune a deleted application",
               {{"application", app}, {"error", tracked.status()}});
    return bus::Disposition::Ack();
  }
  absl::StatusOr<Plan> plan = BuildPlan({}, {}, *tracked, {.application = app, .prune = true});
  if (!plan.ok()) {
    log::Error("cannot plan the pruning of a deleted application",
               {{"application", app}, {"error", plan.status()}});
    return bus::Disposition::Ack();
  }
  if (plan->deletes == 0) {
    log::Info("deleted application has nothing to prune", {{"application", app}});
    if (uid.empty()) return bus::Disposition::Ack();
    if (absl::Status s = service::FinishDeletion(
            *bus_, kv_, app, uid, changed.spec_digest(),
            strings::Cat("application ", app, " deleted (nothing to prune)"),
            event.correlation_id(), emitter_);
        !s.ok()) {
      return Retry(event, message, s);
    }
    return bus::Disposition::Ack();
  }
  if (!uid.empty()) {
    // Visible while the applier prunes: `get apps` shows it deleting, and why it stays.
    const std::string note =
        strings::Cat("deleting: pruning ", plan->deletes, " objects of application ", app);
    absl::StatusOr<v1::AppStatus> updated = service::StatusStore(kv_).Update(
        app,
        [&](v1::AppStatus& s) {
          service::SetCondition(s, "Deleting", true, "Pruning", note);
          s.set_message(note);
          return true;
        },
        uid);
    if (!updated.ok() && !absl::IsNotFound(updated.status())) {
      return Retry(event, message, updated.status());
    }
  }
  const std::string sync_id = "delete-" + manifest::Sha256Hex(event.id()).substr(0, 16);
  v1::Event out = service::NewEvent(kPlanReady, app, "", emitter_);
  out.set_id(service::EventId(kPlanReady, app, "", "", sync_id));
  out.set_correlation_id(event.correlation_id());
  out.set_message(
      strings::Cat("application ", app, " deleted: pruning ", plan->deletes, " objects"));
  v1::PlanReady* ready = out.mutable_plan_ready();
  ready->set_sync_id(sync_id);
  ready->set_spec_digest(changed.spec_digest());
  ready->set_prune(true);
  ready->set_initiated_by("user:cli");
  ready->set_delete_application_uid(uid);
  for (const PlanItem& item : plan->items) {
    if (item.action != Action::kDelete) continue;
    v1::PlannedObject* o = ready->add_objects();
    *o->mutable_ref() = ProtoRefOf(item.object);
    o->set_action(v1::ACTION_DELETE);
    o->set_wave(item.order.wave);
    o->set_phase(std::string(PhaseName(item.order.phase)));
  }
  absl::StatusOr<v1::ManifestPayload> payload = service::EncodeManifests(*blobs_, Json::array());
  if (!payload.ok()) return bus::Disposition::Nak(Backoff(message), payload.status().ToString());
  *ready->mutable_manifests() = *std::move(payload);
  if (absl::Status s = service::Emit(*bus_, out, service::kStageApply); !s.ok()) {
    return bus::Disposition::Nak(Backoff(message), s.ToString());
  }
  log::Info("prune of deleted application planned",
            {{"application", app}, {"syncId", sync_id}, {"deletes", plan->deletes}});
  return bus::Disposition::Ack();
}

}  // namespace driftless::planner
