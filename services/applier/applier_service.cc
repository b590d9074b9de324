#include "services/applier/applier_service.h"

#include <algorithm>
#include <map>
#include <optional>
#include <utility>
#include <vector>

#include "absl/time/clock.h"
#include "common/bus/lease.h"
#include "common/health/health.h"
#include "common/log/log.h"
#include "common/manifest/object.h"
#include "common/strings/str.h"
#include "services/common/events.h"
#include "services/common/identity.h"
#include "services/common/state.h"
#include "services/common/topology.h"
#include "services/sync/app_spec.h"
#include "services/sync/live.h"
#include "services/sync/plan.h"

namespace driftless::applier {
namespace {

using manifest::Json;
using service::SyncIdentity;
using sync::KeyOf;
using sync::KubeRefOf;
namespace event_type = service::event_type;

std::string ActionText(v1::Action action) {
  switch (action) {
    case v1::ACTION_CREATE:
      return "create";
    case v1::ACTION_UPDATE:
      return "update";
    case v1::ACTION_DELETE:
      return "delete";
    default:
      return "none";
  }
}

using service::kApplication;

std::string Rfc3339(absl::Time t) {
  return absl::FormatTime(absl::RFC3339_full, t, absl::UTCTimeZone());
}

// An event about the sync of `plan_event`, with its identity and an id derived from it.
v1::Event ResultEvent(std::string_view type, const v1::Event& plan_event, std::string_view emitter,
                      std::string_view extra = "") {
  const std::string& app = plan_event.application();
  v1::Event e = service::NewEvent(type, app, plan_event.revision(), emitter);
  const SyncIdentity identity = service::IdentityOf(plan_event);
  if (identity.known()) {
    service::SetIdentity(e, identity);
    e.set_id(service::IdentityEventId(type, app, identity, extra));
  } else {
    e.set_id(service::EventId(type, app, plan_event.revision(), plan_event.plan_ready().sync_id(),
                              extra));
  }
  e.set_cluster(plan_event.cluster());
  e.set_correlation_id(plan_event.correlation_id());
  return e;
}

// Whether a plan newer than `identity` waits in the application's pending record.
bool NewerPending(bus::KvStore* kv, const std::string& app, const SyncIdentity& identity) {
  if (!identity.known()) return false;
  absl::StatusOr<std::optional<std::pair<v1::Event, uint64_t>>> pending =
      service::PendingStore(kv).Get(app);
  if (!pending.ok() || !*pending) return false;
  const SyncIdentity waiting = service::IdentityOf((*pending)->first);
  return waiting.uid == identity.uid && waiting.seq > identity.seq;
}

health::HealthCode WorstOf(const v1::AppStatus& status) {
  health::HealthCode worst = health::HealthCode::kHealthy;
  for (const v1::ResourceStatus& r : status.resources()) {
    worst = health::Worst(worst, sync::FromProto(r.health()));
  }
  return worst;
}

}  // namespace

ApplierService::ApplierService(kube::KubeClient* kube, bus::KvStore* kv, bus::BlobStore* blobs,
                               bus::EventBus* bus, ApplierOptions options)
    : kube_(kube), kv_(kv), blobs_(blobs), bus_(bus), options_(std::move(options)) {}

std::string ApplierService::holder() const {
  return strings::Cat(options_.emitter, "/w", options_.worker);
}

bus::Disposition ApplierService::Handle(const v1::Event& event, const bus::Message& message) {
  if (event.type() == event_type::kPlanReady && event.has_plan_ready()) {
    return HandlePlan(event, message);
  }
  if (event.type() == event_type::kHealthCheck && event.has_health_check()) {
    return HandleHealthCheck(event, message);
  }
  log::Info("ignoring work item", {{"event", service::Describe(event)}});
  return bus::Disposition::Ack();
}

absl::Status ApplierService::Republish(const v1::Event& plan_event, bool succeeded,
                                       const std::string& message, const std::string& sync_id,
                                       const std::string& initiated_by) {
  v1::Event finished = ResultEvent(succeeded ? event_type::kSyncSucceeded : event_type::kSyncFailed,
                                   plan_event, options_.emitter);
  finished.set_severity(succeeded ? v1::SEVERITY_INFO : v1::SEVERITY_ERROR);
  finished.set_message(message);
  v1::SyncFinished* f = finished.mutable_sync_finished();
  f->set_sync_id(sync_id);
  f->set_succeeded(succeeded);
  if (!succeeded) f->set_error(message);
  f->set_initiated_by(initiated_by);
  DL_RETURN_IF_ERROR(service::Emit(*bus_, finished));
  absl::StatusOr<v1::AppStatus> status = service::StatusStore(kv_).Get(plan_event.application());
  if (!status.ok()) return absl::OkStatus();
  v1::Event st = ResultEvent(event_type::kAppStatus, plan_event, options_.emitter);
  *st.mutable_app_status() = *status;
  return service::Emit(*bus_, st);
}

bus::Disposition ApplierService::HandlePlan(const v1::Event& event, const bus::Message& message) {
  const v1::PlanReady& plan = event.plan_ready();
  const std::string& app = event.application();
  const SyncIdentity identity = service::IdentityOf(event);
  const bool last_delivery = static_cast<int>(message.delivery_count) >= options_.max_deliver;

  // 1. Done before (a redelivery, or the same plan published again): re-publish the result.
  absl::StatusOr<service::HistoryEntry> done =
      service::HistoryStore(kv_, options_.history_limit).Get(app, plan.sync_id());
  if (done.ok()) {
    if (absl::Status s =
            Republish(event, done->succeeded, done->message, done->sync_id, done->initiated_by);
        !s.ok()) {
      return bus::Disposition::Nak(service::RetryDelay(message), s.ToString());
    }
    log::Info("sync already done, result re-published",
              {{"application", app}, {"syncId", plan.sync_id()}});
    return bus::Disposition::Ack();
  }
  if (!absl::IsNotFound(done.status())) {
    return bus::Disposition::Nak(service::RetryDelay(message), done.status().ToString());
  }
  if (identity.known()) {
    absl::StatusOr<v1::AppStatus> status = service::StatusStore(kv_).Get(app);
    if (!status.ok())
      return bus::Disposition::Nak(service::RetryDelay(message), status.status().ToString());
    if (status->application_uid() == identity.uid && status->applied_seq() >= identity.seq) {
      log::Info(
          "plan superseded (at or below the applied watermark), dropped",
          {{"application", app}, {"seq", identity.seq}, {"appliedSeq", status->applied_seq()}});
      return bus::Disposition::Ack();
    }
  }

  // 2-3. Under the application's lease, then its pending plans.
  std::string error;
  RunResult result = RunResult::kDone;
  if (identity.known()) {
    result = Drain(app, &event, last_delivery, &error);
  } else {
    // An unidentified (v1) plan: it cannot be ordered against others, so it is not coalesced;
    // it waits for the lease like before the upgrade.
    bus::Lease lease(kv_);
    absl::StatusOr<bus::LeaseGrant> grant = lease.TryAcquire(
        service::kLeasesBucket, strings::Cat("sync.", app), holder(), options_.lease_ttl);
    if (absl::IsAborted(grant.status())) {
      return bus::Disposition::Nak(options_.lease_busy_delay,
                                   strings::Cat("a sync of ", app, " is running elsewhere"));
    }
    if (!grant.ok())
      return bus::Disposition::Nak(service::RetryDelay(message), grant.status().ToString());
    bus::LeaseKeeper keeper(&lease, *grant, options_.lease_ttl);
    result = RunPlan(event, keeper, false, last_delivery, &error);
  }
  switch (result) {
    case RunResult::kDone:
      return bus::Disposition::Ack();
    case RunResult::kLeaseLost:
      // Another worker holds the application now: it (or the history) decides about this item.
      log::Warn("lease lost mid-sync: stopped without further writes",
                {{"application", app}, {"syncId", plan.sync_id()}, {"error", error}});
      return bus::Disposition::Nak(options_.lease_busy_delay, error);
    case RunResult::kRetryLater:
      break;
  }
  return bus::Disposition::Nak(service::RetryDelay(message), error);
}

ApplierService::RunResult ApplierService::Drain(const std::string& app, const v1::Event* first,
                                                bool last_delivery, std::string* error) {
  bus::Lease lease(kv_);
  service::PendingStore pending(kv_);
  const std::string key = strings::Cat("sync.", app);
  for (int round = 0; round < 100; ++round) {
    absl::StatusOr<bus::LeaseGrant> grant =
        lease.TryAcquire(service::kLeasesBucket, key, holder(), options_.lease_ttl);
    if (absl::IsAborted(grant.status()) && first != nullptr) {
      // Busy: leave it to the holder, which runs the newest pending plan when its sync ends.
      if (absl::Status s = pending.Offer(*first); !s.ok()) {
        *error = s.ToString();
        return RunResult::kRetryLater;
      }
      log::Info("application busy: plan queued as pending",
                {{"application", app}, {"seq", first->desired_seq()}});
      first = nullptr;
      // The holder may have finished between the two steps: look once more.
      grant = lease.TryAcquire(service::kLeasesBucket, key, holder(), options_.lease_ttl);
    }
    if (absl::IsAborted(grant.status())) return RunResult::kDone;
    if (!grant.ok()) {
      if (first == nullptr) return RunResult::kDone;  // pending: the sweep picks it up
      *error = grant.status().ToString();
      return RunResult::kRetryLater;
    }
    {
      bus::LeaseKeeper keeper(&lease, *grant, options_.lease_ttl);
      std::optional<v1::Event> taken;
      while (true) {
        const v1::Event* plan = first;
        first = nullptr;
        bool stale = false;
        if (plan == nullptr) {
          absl::StatusOr<std::optional<std::pair<v1::Event, uint64_t>>> p = pending.Get(app);
          if (!p.ok()) {
            log::Warn("cannot read the pending plan",
                      {{"application", app}, {"error", p.status()}});
            return RunResult::kDone;  // the sweep retries
          }
          if (!*p) break;
          if (absl::Status s = pending.Take(app, (*p)->second); !s.ok()) {
            if (absl::IsAborted(s)) continue;  // replaced by a newer one: read it
            log::Warn("cannot take the pending plan", {{"application", app}, {"error", s}});
            return RunResult::kDone;
          }
          taken = std::move((*p)->first);
          plan = &*taken;
          stale = true;  // planned while the previous sync ran
        }
        RunResult r = RunPlan(*plan, keeper, stale, last_delivery, error);
        if (r != RunResult::kDone) {
          if (stale) (void)pending.Offer(*plan);  // a pending plan is not lost: run it later
          return r;
        }
      }
    }  // the lease is released here
    // A plan offered while this worker released the lease finds the lease free only now.
    absl::StatusOr<std::optional<std::pair<v1::Event, uint64_t>>> left = pending.Get(app);
    if (!left.ok() || !*left) return RunResult::kDone;
  }
  return RunResult::kDone;
}

ApplierService::RunResult ApplierService::RunDeletion(const v1::Event& event,
                                                      bus::LeaseKeeper& keeper, bool last_delivery,
                                                      std::string* error) {
  const v1::PlanReady& plan = event.plan_ready();
  const std::string& app = event.application();
  const std::string& uid = plan.delete_application_uid();
  absl::StatusOr<service::StoredResource> stored =
      service::ResourceStore(kv_).Get(kApplication, app);
  if (absl::IsNotFound(stored.status()) || (stored.ok() && stored->uid != uid)) {
    // Finalized already (a redelivery), removed without cascade meanwhile, or re-created.
    log::Info("application no longer being deleted, prune plan dropped", {{"application", app}});
    return RunResult::kDone;
  }
  if (!stored.ok()) {
    *error = stored.status().ToString();
    return RunResult::kRetryLater;
  }

  SyncRun run(kube_, options_.run, plan, app,
              {.may_write = [&keeper](absl::Duration d) { return keeper.Check(d); },
               .superseded = [] { return false; }});
  if (absl::Status s = run.Run(Json::array(), false); !s.ok()) {
    *error = s.ToString();
    return RunResult::kLeaseLost;
  }
  if (absl::Status s = keeper.Check(options_.kv_timeout); !s.ok()) {
    *error = s.ToString();
    return RunResult::kLeaseLost;
  }
  if (run.failed()) {
    // It stays deleting, and says why.
    const bool again = run.transient_failure() && !last_delivery;
    const std::string message = strings::Cat(
        "deletion of application ", app, " is stuck: ", run.error(),
        again ? " (retrying)"
              : strings::Cat(" (run `driftless app delete ", app, " --cascade` to retry)"));
    absl::StatusOr<v1::AppStatus> updated = service::StatusStore(kv_).Update(
        app,
        [&](v1::AppStatus& s) {
          service::SetCondition(s, "Deleting", true, "PruneFailed", message);
          s.set_message(message);
          service::SetTimestamp(s.mutable_reconciled_at(), absl::Now());
          return true;
        },
        uid);
    if (!updated.ok() && !absl::IsNotFound(updated.status())) {
      *error = updated.status().ToString();
      return RunResult::kRetryLater;
    }
    v1::Event failed =
        ResultEvent(event_type::kSyncFailed, event, options_.emitter,
                    strings::Cat("deleting-", manifest::Sha256Hex(run.error()).substr(0, 12)));
    failed.set_severity(v1::SEVERITY_ERROR);
    failed.set_message(message);
    failed.mutable_sync_finished()->set_sync_id(plan.sync_id());
    failed.mutable_sync_finished()->set_error(message);
    failed.mutable_sync_finished()->set_initiated_by(plan.initiated_by());
    if (absl::Status s = service::Emit(*bus_, failed); !s.ok()) {
      *error = s.ToString();
      return RunResult::kRetryLater;
    }
    *error = run.error();
    return again ? RunResult::kRetryLater : RunResult::kDone;
  }
  int pruned = 0;
  for (const SyncEntry& e : run.entries()) pruned += e.result == "pruned";
  if (absl::Status s = service::FinishDeletion(
          *bus_, kv_, app, uid, plan.spec_digest(),
          strings::Cat("application ", app, " deleted (", pruned, " objects pruned)"),
          event.correlation_id(), options_.emitter);
      !s.ok()) {
    *error = s.ToString();
    return RunResult::kRetryLater;
  }
  log::Info("application deleted", {{"application", app}, {"pruned", pruned}});
  return RunResult::kDone;
}

void ApplierService::SweepPending() {
  absl::StatusOr<std::vector<std::string>> apps = service::PendingStore(kv_).Applications();
  if (!apps.ok()) return;
  for (const std::string& app : *apps) {
    std::string error;
    if (Drain(app, nullptr, false, &error) != RunResult::kDone) {
      log::Warn("pending plan not run yet", {{"application", app}, {"error", error}});
    }
  }
}

ApplierService::RunResult ApplierService::RunPlan(const v1::Event& event, bus::LeaseKeeper& keeper,
                                                  bool stale, bool last_delivery,
                                                  std::string* error) {
  const v1::PlanReady& plan = event.plan_ready();
  if (!plan.delete_application_uid().empty()) {
    return RunDeletion(event, keeper, last_delivery, error);
  }
  const std::string& app = event.application();
  const SyncIdentity identity = service::IdentityOf(event);
  service::HistoryStore history(kv_, options_.history_limit);
  service::StatusStore statuses(kv_);
  auto retry_later = [&](const absl::Status& s) {
    *error = s.ToString();
    return RunResult::kRetryLater;
  };

  // Under the lease, look again: another worker may have run this very plan meanwhile, or
  // the application moved on.
  absl::StatusOr<service::HistoryEntry> done = history.Get(app, plan.sync_id());
  if (done.ok()) {
    absl::Status s =
        Republish(event, done->succeeded, done->message, done->sync_id, done->initiated_by);
    return s.ok() ? RunResult::kDone : retry_later(s);
  }
  if (!absl::IsNotFound(done.status())) return retry_later(done.status());
  absl::StatusOr<service::StoredResource> stored =
      service::ResourceStore(kv_).Get(kApplication, app);
  if (!stored.ok() && !absl::IsNotFound(stored.status())) return retry_later(stored.status());
  if (stored.ok() && service::IsDeleting(*stored)) {
    log::Info("application being deleted, plan dropped",
              {{"application", app}, {"syncId", plan.sync_id()}});
    return RunResult::kDone;
  }
  if (identity.known()) {
    if (!stored.ok() || stored->uid != identity.uid) {
      log::Info("application deleted or re-created since planning, plan dropped",
                {{"application", app}, {"syncId", plan.sync_id()}});
      return RunResult::kDone;
    }
    absl::StatusOr<v1::AppStatus> status = statuses.Get(app);
    if (!status.ok()) return retry_later(status.status());
    if (status->application_uid() == identity.uid && status->applied_seq() >= identity.seq) {
      log::Info("plan superseded (at or below the applied watermark), dropped",
                {{"application", app}, {"seq", identity.seq}});
      return RunResult::kDone;
    }
    if (NewerPending(kv_, app, identity)) {
      log::Info("plan superseded by a newer pending plan, dropped",
                {{"application", app}, {"seq", identity.seq}});
      return RunResult::kDone;
    }
  } else if (stored.ok() && !plan.spec_digest().empty() &&
             stored->spec_digest != plan.spec_digest()) {
    log::Info("plan superseded by a newer application spec, dropped",
              {{"application", app}, {"syncId", plan.sync_id()}});
    return RunResult::kDone;
  }

  const absl::Time started = absl::Now();
  {
    v1::Event e = ResultEvent(event_type::kSyncStarted, event, options_.emitter);
    e.set_message(strings::Cat(
        "sync of ", app, " started (", plan.objects_size(), " objects",
        identity.known() ? strings::Cat(", desired generation ", identity.seq) : std::string(),
        identity.attempt > 1 ? strings::Cat(", attempt ", identity.attempt) : std::string(), ")"));
    e.mutable_sync_started()->set_sync_id(plan.sync_id());
    e.mutable_sync_started()->set_object_count(plan.objects_size());
    if (absl::Status s = service::Emit(*bus_, e); !s.ok()) return retry_later(s);
  }

  SyncRun run(kube_, options_.run, plan, app,
              {.may_write = [&keeper](absl::Duration d) { return keeper.Check(d); },
               .superseded = [&] { return NewerPending(kv_, app, identity); }});
  std::string decode_error;
  absl::StatusOr<Json> manifests = service::DecodeManifests(*blobs_, plan.manifests());
  if (!manifests.ok()) {
    if (sync::IsTransient(manifests.status()) && !last_delivery) {
      return retry_later(manifests.status());
    }
    decode_error = strings::Cat(
        "sync of application ", app,
        " failed: the plan's manifests are unavailable: ", manifests.status().message());
    if (absl::IsNotFound(manifests.status())) {
      // The blob expired (a plan re-driven long after it was made): render it again, as the
      // user's sync when it was one.
      v1::SyncRequested user;
      if (plan.initiated_by().starts_with("user:") || plan.initiated_by().starts_with("token:")) {
        user.set_sync_id(plan.sync_id());
        user.set_prune(plan.prune());
        user.set_dry_run(plan.dry_run());
        user.set_refresh(true);
        user.set_requested_by(plan.initiated_by());
        user.set_reason(plan.reason());
      }
      const bool by_user = !user.sync_id().empty();
      absl::Status requested = service::RequestGeneration(
          *bus_, app, by_user ? &user : nullptr, "rerender",
          strings::Cat(app, ": the plan's manifests expired: re-rendering"), event.correlation_id(),
          options_.emitter);
      if (!requested.ok()) return retry_later(requested);
      decode_error += " (re-rendering as a new generation)";
    }
  } else if (absl::Status s = run.Run(*manifests, stale || plan.stale()); !s.ok()) {
    *error = s.ToString();
    return RunResult::kLeaseLost;
  }
  const bool superseded = run.superseded();
  const bool succeeded = decode_error.empty() && !run.failed() && !superseded;
  const std::string failure = !decode_error.empty() ? decode_error : run.error();
  const health::HealthCode app_health = run.AppHealth();
  const std::string health_summary = run.HealthSummary();
  const absl::Time finished_at = absl::Now();
  std::string summary = succeeded
                            ? strings::Cat("sync of ", app, " succeeded (", plan.objects_size(),
                                           " objects); health ", health::Name(app_health),
                                           health_summary.empty() ? "" : ": " + health_summary)
                            : failure;

  // Retry decision (a new desired generation at the same revision, minted by the poller).
  std::optional<absl::Duration> retry_in;
  if (!succeeded && !superseded && identity.known() && stored.ok() && !plan.dry_run()) {
    const sync::AppSpec spec = sync::ParseAppSpec(stored->object);
    const bool transient = decode_error.empty() ? run.transient_failure() : true;
    if (sync::ShouldRetry(spec, identity.attempt, transient)) {
      retry_in = absl::FromChrono(sync::RetryBackoff(spec.retry, identity.attempt + 1));
      strings::Append(summary, " (retrying in ", absl::FormatDuration(*retry_in), ", attempt ",
                      identity.attempt + 1,
                      spec.retry.limit > 0 ? strings::Cat(" of ", spec.retry.limit + 1) : "", ")");
    }
  }

  // Status (unless the application is gone: a cascade delete; or a dry run; or superseded).
  absl::StatusOr<v1::AppStatus> status = absl::NotFoundError("no status");
  bool older = false;
  if (stored.ok() && !plan.dry_run() && !superseded) {
    if (absl::Status s = keeper.Check(options_.kv_timeout); !s.ok()) {
      *error = s.ToString();
      return RunResult::kLeaseLost;
    }
    status = statuses.Update(
        app,
        [&](v1::AppStatus& s) {
          if (service::OlderThanStatus(identity, s)) {
            older = true;
            return false;
          }
          // The inventory: entries of this plan replace those of the same object; pruned
          // objects leave; objects the plan did not touch (selective sync) stay.
          std::map<std::string, const SyncEntry*> by_key;
          for (const SyncEntry& e : run.entries()) by_key[e.key] = &e;
          google::protobuf::RepeatedPtrField<v1::ResourceStatus> kept;
          for (const v1::ResourceStatus& r : s.resources()) {
            if (!by_key.count(KeyOf(r.ref()))) *kept.Add() = r;
          }
          s.mutable_resources()->Swap(&kept);
          for (const SyncEntry& e : run.entries()) {
            if (!e.in_inventory() && e.result == "pruned") continue;
            v1::ResourceStatus* r = s.add_resources();
            *r->mutable_ref() = e.planned.ref();
            const bool synced = e.result == "applied" || e.result == "unchanged";
            r->set_sync(synced ? v1::SYNC_STATUS_CODE_SYNCED : v1::SYNC_STATUS_CODE_OUT_OF_SYNC);
            r->set_health(e.in_inventory() ? sync::ToProto(e.health.code)
                                           : v1::HEALTH_STATUS_CODE_UNKNOWN);
            r->set_message(!e.message.empty() ? e.message : e.health.message);
          }
          if (succeeded) {
            // Synced only if nothing is left over: a selective sync leaves the objects it did
            // not name as the planner found them, and with prune off, objects that left git
            // stay OutOfSync (as in Argo CD), so the application does too.
            const bool all_synced = std::all_of(s.resources().begin(), s.resources().end(),
                                                [](const v1::ResourceStatus& r) {
                                                  return r.sync() == v1::SYNC_STATUS_CODE_SYNCED;
                                                });
            s.set_sync(all_synced ? v1::SYNC_STATUS_CODE_SYNCED : v1::SYNC_STATUS_CODE_OUT_OF_SYNC);
            if (!event.revision().empty()) s.set_last_applied_revision(event.revision());
          }
          if (identity.known()) {
            s.set_desired_seq(identity.seq);
            s.set_attempt(identity.attempt);
            s.set_applied_seq(std::max(s.applied_seq(), identity.seq));
          }
          s.set_health(sync::ToProto(app_health));
          if (!plan.spec_digest().empty()) s.set_spec_digest(plan.spec_digest());
          s.set_observed_generation(stored->generation);
          const bool ready = succeeded && app_health == health::HealthCode::kHealthy;
          service::SetCondition(s, "Ready", ready,
                                !succeeded
                                    ? "SyncFailed"
                                    : (ready ? "Succeeded" : std::string(health::Name(app_health))),
                                summary);
          s.set_message(summary);
          service::SetTimestamp(s.mutable_reconciled_at(), finished_at);
          return true;
        },
        identity.known() ? std::string_view(identity.uid) : std::string_view());
    if (!status.ok() && !absl::IsNotFound(status.status())) return retry_later(status.status());
    if (older) {
      log::Info("a newer desired generation wrote the status first; this result is history only",
                {{"application", app}, {"seq", identity.seq}});
    }
  }

  // History, then the broadcasts (a redelivery after a crash here re-publishes from history).
  int object_count = 0;
  std::vector<service::HistoryObject> outcomes;
  for (const SyncEntry& e : run.entries()) {
    object_count += e.result == "applied" || e.result == "pruned";
    outcomes.push_back({.ref = e.planned.ref(),
                        .action = ActionText(e.planned.action()),
                        .result = e.result.empty() ? std::string("not run") : e.result,
                        .message = e.message});
  }
  if (absl::Status s = keeper.Check(options_.kv_timeout); !s.ok()) {
    *error = s.ToString();
    return RunResult::kLeaseLost;
  }
  if (absl::Status s = history.Record(app, {.sync_id = plan.sync_id(),
                                            .desired_seq = identity.seq,
                                            .attempt = identity.known() ? identity.attempt : 0,
                                            .revision = event.revision(),
                                            .spec_digest = plan.spec_digest(),
                                            .succeeded = succeeded,
                                            .message = summary,
                                            .initiated_by = plan.initiated_by(),
                                            .started_at = Rfc3339(started),
                                            .finished_at = Rfc3339(finished_at),
                                            .object_count = object_count,
                                            .reason = plan.reason(),
                                            .objects = std::move(outcomes)});
      !s.ok()) {
    return retry_later(s);
  }

  if (retry_in) {
    v1::Event retry = ResultEvent(event_type::kSyncRetry, event, options_.emitter);
    retry.set_severity(v1::SEVERITY_WARNING);
    retry.set_message(summary);
    v1::SyncRetry* r = retry.mutable_sync_retry();
    r->set_failed_seq(identity.seq);
    r->set_next_attempt(identity.attempt + 1);
    service::SetTimestamp(r->mutable_not_before(), finished_at + *retry_in);
    r->set_revision(event.revision());
    r->set_error(failure);
    if (plan.initiated_by() != "automated" && !plan.initiated_by().empty()) {
      // Keep a user's request (and so a manual application's sync) alive across the retry.
      v1::SyncRequested* req = r->mutable_sync_request();
      req->set_sync_id(plan.sync_id());
      req->set_revision(event.revision());
      req->set_prune(plan.prune());
      req->set_requested_by(plan.initiated_by());
    }
    if (absl::Status s = service::Emit(*bus_, retry, service::kStagePoll); !s.ok()) {
      return retry_later(s);
    }
  }

  v1::Event finished = ResultEvent(succeeded ? event_type::kSyncSucceeded : event_type::kSyncFailed,
                                   event, options_.emitter);
  finished.set_severity(succeeded ? v1::SEVERITY_INFO
                                  : (superseded ? v1::SEVERITY_WARNING : v1::SEVERITY_ERROR));
  finished.set_message(summary);
  v1::SyncFinished* f = finished.mutable_sync_finished();
  f->set_sync_id(plan.sync_id());
  f->set_succeeded(succeeded);
  f->set_error(succeeded ? "" : failure);
  f->set_initiated_by(plan.initiated_by());
  if (retry_in) {
    service::SetTimestamp(f->mutable_next_attempt_at(), finished_at + *retry_in);
    f->set_next_attempt(identity.attempt + 1);
  }
  const absl::Duration took = finished_at - started;
  service::SetDuration(f->mutable_duration(), took);
  for (const SyncEntry& e : run.entries()) {
    v1::ObjectResult* r = f->add_results();
    *r->mutable_ref() = e.planned.ref();
    r->set_action(e.planned.action());
    r->set_result(e.result.empty() ? "skipped" : e.result);
    r->set_message(e.message);
  }
  if (absl::Status s = service::Emit(*bus_, finished); !s.ok()) return retry_later(s);
  if (status.ok() && !older) {
    v1::Event st = ResultEvent(event_type::kAppStatus, event, options_.emitter);
    *st.mutable_app_status() = *status;
    if (absl::Status s = service::Emit(*bus_, st); !s.ok()) return retry_later(s);
  }

  // Objects still progressing: followed by health checks, not by this worker.
  if (succeeded && status.ok() && !older && identity.known()) {
    if (std::vector<v1::ObjectRef> unsettled = run.Unsettled(); !unsettled.empty()) {
      v1::Event check = ResultEvent(event_type::kHealthCheck, event, options_.emitter, "r1");
      v1::HealthCheck* hc = check.mutable_health_check();
      hc->set_sync_id(plan.sync_id());
      for (v1::ObjectRef& ref : unsettled) *hc->add_objects() = std::move(ref);
      service::SetTimestamp(hc->mutable_not_before(), absl::Now() + absl::Milliseconds(250));
      service::SetTimestamp(hc->mutable_deadline(), finished_at + options_.health_timeout);
      hc->set_round(1);
      check.set_message(
          strings::Cat(app, ": waiting for ", hc->objects_size(), " objects to settle"));
      if (absl::Status s = service::Emit(*bus_, check, service::kStageApply); !s.ok()) {
        log::Warn("cannot queue the health check", {{"application", app}, {"error", s}});
      }
    }
  }
  log::Info(succeeded ? "sync succeeded" : (superseded ? "sync superseded" : "sync failed"),
            {{"application", app},
             {"revision", event.revision()},
             {"syncId", plan.sync_id()},
             {"seq", identity.seq},
             {"attempt", identity.attempt},
             {"health", health::Name(app_health)},
             {"durationMs", absl::ToInt64Milliseconds(took)},
             {"applyMs", absl::ToInt64Milliseconds(run.applied_at() - started)},
             {"error", failure}});
  return RunResult::kDone;
}

bus::Disposition ApplierService::HandleHealthCheck(const v1::Event& event,
                                                   const bus::Message& message) {
  const v1::HealthCheck& hc = event.health_check();
  const std::string& app = event.application();
  const SyncIdentity identity = service::IdentityOf(event);
  if (const absl::Duration wait = service::TimeOf(hc.not_before()) - absl::Now();
      wait > absl::ZeroDuration()) {
    return bus::Disposition::Nak(wait, "health check not due yet");
  }
  service::StatusStore statuses(kv_);
  absl::StatusOr<v1::AppStatus> current = statuses.Get(app);
  if (!current.ok())
    return bus::Disposition::Nak(service::RetryDelay(message), current.status().ToString());
  auto moot = [&](const v1::AppStatus& s) {
    return s.application_uid() != identity.uid || s.desired_seq() != identity.seq;
  };
  if (moot(*current)) return bus::Disposition::Ack();  // a newer generation owns the status

  std::map<std::string, health::Health> assessed;
  bool unsettled = false;
  for (const v1::ObjectRef& ref : hc.objects()) {
    absl::StatusOr<Json> live = kube_->Get(KubeRefOf(ref));
    health::Health h;
    if (absl::IsNotFound(live.status())) {
      h = {health::HealthCode::kMissing, "not found in the cluster"};
    } else if (!live.ok()) {
      if (sync::IsTransient(live.status())) {
        return bus::Disposition::Nak(service::RetryDelay(message), live.status().ToString());
      }
      h = {health::HealthCode::kUnknown, std::string(live.status().message())};
    } else {
      h = health::AssessHealthOrHealthy(*live);
    }
    unsettled |= !Settled(h.code);
    assessed[KeyOf(ref)] = std::move(h);
  }
  const absl::Time deadline = service::TimeOf(hc.deadline());
  const bool again = unsettled && absl::Now() < deadline;
  bool skipped = false;
  absl::StatusOr<v1::AppStatus> updated = statuses.Update(
      app,
      [&](v1::AppStatus& s) {
        if (moot(s)) {
          skipped = true;
          return false;
        }
        bool changed = false;
        for (v1::ResourceStatus& r : *s.mutable_resources()) {
          auto it = assessed.find(KeyOf(r.ref()));
          if (it == assessed.end()) continue;
          const v1::HealthStatusCode code = sync::ToProto(it->second.code);
          changed |= r.health() != code || r.message() != it->second.message;
          r.set_health(code);
          r.set_message(it->second.message);
        }
        const health::HealthCode worst = WorstOf(s);
        const bool timed_out = unsettled && !again;
        if (!changed && !timed_out && sync::ToProto(worst) == s.health()) return false;
        s.set_health(sync::ToProto(worst));
        const bool ready =
            worst == health::HealthCode::kHealthy && s.sync() == v1::SYNC_STATUS_CODE_SYNCED;
        std::string summary = strings::Cat("health ", health::Name(worst));
        if (timed_out) strings::Append(summary, " after the health timeout");
        service::SetCondition(s, "Ready", ready,
                              ready ? "Succeeded" : std::string(health::Name(worst)), summary);
        return true;
      },
      identity.uid);
  if (absl::IsNotFound(updated.status())) return bus::Disposition::Ack();
  if (!updated.ok())
    return bus::Disposition::Nak(service::RetryDelay(message), updated.status().ToString());
  if (!skipped) {
    v1::Event st =
        ResultEvent(event_type::kAppStatus, event, options_.emitter, strings::Cat("h", hc.round()));
    *st.mutable_app_status() = *updated;
    if (absl::Status s = service::Emit(*bus_, st); !s.ok()) {
      return bus::Disposition::Nak(service::RetryDelay(message), s.ToString());
    }
  }
  if (again && !skipped) {
    const int round = hc.round() + 1;
    v1::Event next =
        ResultEvent(event_type::kHealthCheck, event, options_.emitter, strings::Cat("r", round));
    v1::HealthCheck* n = next.mutable_health_check();
    *n = hc;
    n->clear_objects();
    for (const v1::ObjectRef& ref : hc.objects()) {
      if (!Settled(assessed[KeyOf(ref)].code)) *n->add_objects() = ref;
    }
    n->set_round(round);
    const absl::Duration backoff =
        std::min(absl::Milliseconds(250) * (1 << std::min(round - 1, 5)), absl::Seconds(5));
    service::SetTimestamp(n->mutable_not_before(), absl::Now() + backoff);
    next.set_message(event.message());
    if (absl::Status s = service::Emit(*bus_, next, service::kStageApply); !s.ok()) {
      return bus::Disposition::Nak(service::RetryDelay(message), s.ToString());
    }
  }
  return bus::Disposition::Ack();
}

}  // namespace driftless::applier
