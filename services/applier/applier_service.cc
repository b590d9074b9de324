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
#include "services/common/state.h"
#include "services/common/topology.h"
#include "services/planner/live.h"
#include "services/planner/plan.h"

namespace driftless::applier {
namespace {

using manifest::Json;
using planner::DescribeRef;
using planner::KeyOf;
using planner::KubeRefOf;

constexpr char kApplication[] = "Application";

void SetTime(google::protobuf::Timestamp* t, absl::Time time) {
  const int64_t seconds = absl::ToUnixSeconds(time);
  t->set_seconds(seconds);
  t->set_nanos(static_cast<int32_t>(absl::ToInt64Nanoseconds(time - absl::FromUnixSeconds(seconds))));
}

std::string Rfc3339(absl::Time t) {
  return absl::FormatTime(absl::RFC3339_full, t, absl::UTCTimeZone());
}

bool Terminal(health::HealthCode code) {
  return code == health::HealthCode::kHealthy || code == health::HealthCode::kDegraded ||
         code == health::HealthCode::kSuspended;
}

// One object of the plan as the sync goes.
struct Entry {
  v1::PlannedObject planned;
  std::string key;
  const Json* desired = nullptr;  // for applies
  std::string result;             // "applied", "unchanged", "pruned", "failed", "" = not done
  std::string message;
  std::optional<Json> live;       // last seen live object (apply response or GET)
  health::Health health{health::HealthCode::kUnknown, ""};
  bool in_inventory() const { return planned.action() != v1::ACTION_DELETE; }
};

// What the run of one plan needs; lives for one Handle call.
class Sync {
 public:
  Sync(kube::KubeClient* kube, bus::Lease* lease, bus::LeaseGrant* grant,
       const ApplierOptions& options, const v1::Event& event)
      : kube_(kube), lease_(lease), grant_(grant), options_(options),
        plan_(event.plan_ready()), app_(event.application()) {}

  // Applies and prunes. Returns a non-OK status only when the work item must be retried
  // (transient errors on a delivery that is not the last one); the outcome otherwise is in
  // failed_ / error_.
  absl::Status Run(const Json& manifests, bool last_delivery) {
    std::map<std::string, const Json*> by_key;
    if (manifests.is_array()) {
      for (const Json& o : manifests) by_key[manifest::ObjectKey(o)] = &o;
    }
    for (const v1::PlannedObject& p : plan_.objects()) {
      Entry e;
      e.planned = p;
      e.key = KeyOf(p.ref());
      if (p.action() == v1::ACTION_CREATE || p.action() == v1::ACTION_UPDATE) {
        auto it = by_key.find(e.key);
        if (it != by_key.end()) e.desired = it->second;
      }
      entries_.push_back(std::move(e));
    }
    // Applies, wave by wave (consecutive entries with the same phase and wave).
    size_t i = 0;
    while (i < entries_.size()) {
      size_t end = i;
      while (end < entries_.size() && entries_[end].planned.phase() == entries_[i].planned.phase() &&
             entries_[end].planned.wave() == entries_[i].planned.wave()) {
        ++end;
      }
      bool applied_any = false;
      for (size_t k = i; k < end; ++k) {
        Entry& e = entries_[k];
        if (e.planned.action() == v1::ACTION_DELETE) continue;
        DL_RETURN_IF_ERROR(RenewIfDue());
        if (e.planned.action() == v1::ACTION_NONE || e.planned.action() == v1::ACTION_UNSPECIFIED) {
          e.result = "unchanged";
          continue;
        }
        if (e.desired == nullptr) {
          Fail(e, strings::Cat(DescribeRef(e.planned.ref()), ": not in the plan's manifests"));
          continue;
        }
        absl::StatusOr<Json> live = ApplyWithRetries(*e.desired);
        if (!live.ok()) {
          if (planner::IsTransient(live.status()) && !last_delivery) return live.status();
          Fail(e, std::string(live.status().message()));
          continue;
        }
        e.result = "applied";
        e.live = *std::move(live);
        applied_any = true;
      }
      if (failed_) break;  // later waves wait for this one
      bool later_applies = false;
      for (size_t k = end; k < entries_.size(); ++k) {
        later_applies |= entries_[k].planned.action() == v1::ACTION_CREATE ||
                         entries_[k].planned.action() == v1::ACTION_UPDATE;
      }
      if (applied_any && later_applies && !plan_.dry_run()) {
        DL_RETURN_IF_ERROR(WaitHealthy(i, end));
      }
      i = end;
    }
    // Prune (entries are already in reverse apply order at the end of the plan).
    if (!failed_) {
      for (Entry& e : entries_) {
        if (e.planned.action() != v1::ACTION_DELETE) continue;
        if (!plan_.prune()) continue;
        DL_RETURN_IF_ERROR(RenewIfDue());
        absl::Status s = DeleteWithRetries(e.planned.ref());
        if (s.ok() || absl::IsNotFound(s)) {
          e.result = "pruned";
          continue;
        }
        if (planner::IsTransient(s) && !last_delivery) return s;
        Fail(e, std::string(s.message()));
      }
    }
    applied_at_ = absl::Now();
    if (!plan_.dry_run()) DL_RETURN_IF_ERROR(WaitHealthy(0, entries_.size()));
    return absl::OkStatus();
  }

  bool failed() const { return failed_; }
  // When the applies and prunes were done (before the final health wait).
  absl::Time applied_at() const { return applied_at_; }
  const std::string& error() const { return error_; }
  const std::vector<Entry>& entries() const { return entries_; }

  health::HealthCode AppHealth() const {
    health::HealthCode worst = health::HealthCode::kHealthy;
    for (const Entry& e : entries_) {
      if (e.in_inventory()) worst = health::Worst(worst, e.health.code);
    }
    return worst;
  }
  // "Deployment web/api: <message>" of the worst unhealthy objects, for the status message.
  std::string HealthSummary() const {
    std::string out;
    for (const Entry& e : entries_) {
      if (!e.in_inventory() || e.health.code == health::HealthCode::kHealthy) continue;
      if (!out.empty()) out += "; ";
      strings::Append(out, e.planned.ref().kind(), " ",
                      e.planned.ref().namespace_().empty() ? "" : e.planned.ref().namespace_() + "/",
                      e.planned.ref().name(), " is ", health::Name(e.health.code));
      if (!e.health.message.empty()) strings::Append(out, ": ", e.health.message);
    }
    return out;
  }

 private:
  void Fail(Entry& e, std::string message) {
    e.result = "failed";
    e.message = message;
    if (!failed_) error_ = strings::Cat("sync of application ", app_, " failed: ", message);
    failed_ = true;
  }

  absl::Status RenewIfDue() {
    if (absl::Now() - last_renew_ < options_.lease_ttl / 3) return absl::OkStatus();
    absl::Status s = lease_->Renew(*grant_, options_.lease_ttl);
    last_renew_ = absl::Now();
    if (absl::IsAborted(s)) {
      return absl::AbortedError(strings::Cat("lease sync.", app_, " was taken over"));
    }
    return absl::OkStatus();  // a KV hiccup: the lease still has most of its ttl
  }

  absl::StatusOr<Json> ApplyWithRetries(const Json& object) {
    absl::StatusOr<Json> r;
    for (int attempt = 1; attempt <= options_.apply_attempts; ++attempt) {
      r = kube_->Apply(object, {.field_manager = std::string(planner::kFieldManager),
                                .force = true,
                                .dry_run = plan_.dry_run()});
      if (r.ok() || !planner::IsTransient(r.status())) return r;
      if (attempt < options_.apply_attempts) absl::SleepFor(options_.retry_backoff * attempt);
    }
    return r;
  }

  absl::Status DeleteWithRetries(const v1::ObjectRef& ref) {
    absl::Status s;
    for (int attempt = 1; attempt <= options_.apply_attempts; ++attempt) {
      s = kube_->Delete(KubeRefOf(ref), {.propagation_policy = kube::PropagationPolicy::kBackground,
                                         .dry_run = plan_.dry_run()});
      if (s.ok() || !planner::IsTransient(s)) return s;
      if (attempt < options_.apply_attempts) absl::SleepFor(options_.retry_backoff * attempt);
    }
    return s;
  }

  // Assesses entries [from, to) that are in the inventory: first from what is known (apply
  // responses), reading the others once; then polls the ones still progressing at short
  // intervals until all are settled or the health timeout passes.
  absl::Status WaitHealthy(size_t from, size_t to) {
    const absl::Time deadline = health_deadline_.value_or(absl::Now() + options_.health_timeout);
    if (!health_deadline_) health_deadline_ = deadline;
    bool first = true;
    const absl::Time started = absl::Now();
    absl::Duration interval = absl::Milliseconds(10);
    while (true) {
      bool pending = false;
      for (size_t k = from; k < to; ++k) {
        Entry& e = entries_[k];
        if (!e.in_inventory() || e.result == "failed") continue;
        if (!first || !e.live) {
          if (!first && Terminal(e.health.code)) continue;
          absl::StatusOr<Json> live = kube_->Get(KubeRefOf(e.planned.ref()));
          if (absl::IsNotFound(live.status())) {
            e.live.reset();
            e.health = {health::HealthCode::kMissing, "not found in the cluster"};
            pending = true;
            continue;
          }
          if (!live.ok()) {
            e.health = {health::HealthCode::kUnknown, std::string(live.status().message())};
            pending = true;
            continue;
          }
          e.live = *std::move(live);
        }
        e.health = health::AssessHealthOrHealthy(*e.live);
        if (!Terminal(e.health.code)) pending = true;
      }
      first = false;
      if (!pending || absl::Now() >= deadline) return absl::OkStatus();
      DL_RETURN_IF_ERROR(RenewIfDue());
      absl::SleepFor(std::min(interval, deadline - absl::Now()));
      // Short intervals first (simulated and small rollouts finish in well under a second),
      // then back off for the long ones.
      interval = std::min(interval * 2, absl::Now() - started < absl::Seconds(2)
                                            ? absl::Milliseconds(40)
                                            : absl::Milliseconds(250));
    }
  }

  kube::KubeClient* kube_;
  bus::Lease* lease_;
  bus::LeaseGrant* grant_;
  const ApplierOptions& options_;
  const v1::PlanReady& plan_;
  const std::string& app_;
  std::vector<Entry> entries_;
  bool failed_ = false;
  std::string error_;
  absl::Time last_renew_ = absl::Now();
  std::optional<absl::Time> health_deadline_;
  absl::Time applied_at_ = absl::Now();
};

v1::Event ResultEvent(std::string_view type, const v1::Event& plan_event, std::string_view emitter) {
  const std::string& app = plan_event.application();
  v1::Event e = service::NewEvent(type, app, plan_event.revision(), emitter);
  e.set_id(service::EventId(type, app, plan_event.revision(), plan_event.plan_ready().sync_id()));
  e.set_correlation_id(plan_event.correlation_id());
  return e;
}

}  // namespace

ApplierService::ApplierService(kube::KubeClient* kube, bus::KvStore* kv, bus::BlobStore* blobs,
                               bus::EventBus* bus, ApplierOptions options)
    : kube_(kube), kv_(kv), blobs_(blobs), bus_(bus), options_(std::move(options)) {}

bus::Disposition ApplierService::Handle(const v1::Event& event, const bus::Message& message) {
  if (event.type() != "plan.ready" || !event.has_plan_ready()) {
    log::Info("ignoring work item", {{"event", service::Describe(event)}});
    return bus::Disposition::Ack();
  }
  const v1::PlanReady& plan = event.plan_ready();
  const std::string& app = event.application();
  const bool last_delivery = static_cast<int>(message.delivery_count) >= options_.max_deliver;
  service::HistoryStore history(kv_);
  service::StatusStore statuses(kv_);

  // 1. Done before (a redelivery, or the same plan published again): re-publish the result.
  auto republish = [&](const service::HistoryEntry& done) {
    v1::Event finished = ResultEvent(done.succeeded ? "sync.succeeded" : "sync.failed", event,
                                     options_.emitter);
    finished.set_severity(done.succeeded ? v1::SEVERITY_INFO : v1::SEVERITY_ERROR);
    finished.set_message(done.message);
    v1::SyncFinished* f = finished.mutable_sync_finished();
    f->set_sync_id(done.sync_id);
    f->set_succeeded(done.succeeded);
    if (!done.succeeded) f->set_error(done.message);
    f->set_initiated_by(done.initiated_by);
    absl::Status s = service::Emit(*bus_, finished);
    if (s.ok()) {
      absl::StatusOr<v1::AppStatus> status = statuses.Get(app);
      if (status.ok()) {
        v1::Event st = ResultEvent("app.status", event, options_.emitter);
        *st.mutable_app_status() = *status;
        s = service::Emit(*bus_, st);
      }
    }
    if (!s.ok()) return bus::Disposition::Nak(service::RetryDelay(message), s.ToString());
    log::Info("sync already done, result re-published",
              {{"application", app}, {"syncId", plan.sync_id()}});
    return bus::Disposition::Ack();
  };
  absl::StatusOr<service::HistoryEntry> done = history.Get(app, plan.sync_id());
  if (done.ok()) return republish(*done);
  if (!absl::IsNotFound(done.status())) {
    return bus::Disposition::Nak(service::RetryDelay(message), done.status().ToString());
  }

  // 2. At most one sync per application.
  bus::Lease lease(kv_);
  const std::string lease_key = strings::Cat("sync.", app);
  absl::StatusOr<bus::LeaseGrant> grant =
      lease.TryAcquire(service::kLeasesBucket, lease_key, options_.emitter, options_.lease_ttl);
  // Held elsewhere: wait a little here (the runtime tells the server the item is in progress,
  // so waiting costs no delivery): a crashed holder's lease runs out within the ttl, and most
  // syncs are short.
  // On the last delivery a Nak would dead-letter a valid plan: wait the holder out instead.
  const absl::Time wait_until =
      absl::Now() + (last_delivery ? absl::Minutes(10) : options_.lease_wait);
  while (absl::IsAborted(grant.status()) && absl::Now() < wait_until) {
    absl::SleepFor(absl::Milliseconds(100));
    grant = lease.TryAcquire(service::kLeasesBucket, lease_key, options_.emitter,
                             options_.lease_ttl);
  }
  if (absl::IsAborted(grant.status())) {
    // Come back when the holder's lease would have run out (it renews it while it works).
    absl::Duration delay = options_.lease_busy_delay;
    if (absl::StatusOr<bus::LeaseGrant> holder =
            lease.Holder(service::kLeasesBucket, lease_key);
        holder.ok()) {
      delay = std::clamp(holder->expires - absl::Now() + absl::Milliseconds(100),
                         options_.lease_busy_delay, options_.lease_ttl);
    }
    return bus::Disposition::Nak(delay,
                                 strings::Cat("a sync of ", app, " is running elsewhere"));
  }
  if (!grant.ok()) return bus::Disposition::Nak(service::RetryDelay(message), grant.status().ToString());
  struct Release {
    bus::Lease& lease;
    bus::LeaseGrant& grant;
    ~Release() { (void)lease.Release(grant); }
  } release{lease, *grant};

  // Under the lease, look again: another replica may have run this very plan while we
  // waited (a redelivery after a NATS blip), or the application moved on.
  done = history.Get(app, plan.sync_id());
  if (done.ok()) return republish(*done);
  if (!absl::IsNotFound(done.status())) {
    return bus::Disposition::Nak(service::RetryDelay(message), done.status().ToString());
  }
  if (absl::StatusOr<service::StoredResource> current =
          service::ResourceStore(kv_).Get(kApplication, app);
      current.ok() && !plan.spec_digest().empty() && current->spec_digest != plan.spec_digest()) {
    log::Info("plan superseded by a newer application spec, dropped",
              {{"application", app}, {"syncId", plan.sync_id()}});
    return bus::Disposition::Ack();
  }

  const absl::Time started = absl::Now();
  // 3. Announce.
  {
    v1::Event e = ResultEvent("sync.started", event, options_.emitter);
    e.set_message(strings::Cat("sync of ", app, " started (", plan.objects_size(), " objects)"));
    e.mutable_sync_started()->set_sync_id(plan.sync_id());
    e.mutable_sync_started()->set_object_count(plan.objects_size());
    if (absl::Status s = service::Emit(*bus_, e); !s.ok()) {
      return bus::Disposition::Nak(service::RetryDelay(message), s.ToString());
    }
  }

  // 4. Apply, prune, wait for health.
  Sync sync(kube_, &lease, &*grant, options_, event);
  std::string decode_error;
  absl::StatusOr<Json> manifests = service::DecodeManifests(*blobs_, plan.manifests());
  if (!manifests.ok()) {
    if (planner::IsTransient(manifests.status()) && !last_delivery) {
      return bus::Disposition::Nak(service::RetryDelay(message), manifests.status().ToString());
    }
    decode_error = strings::Cat("sync of application ", app,
                                " failed: the plan's manifests are unavailable: ",
                                manifests.status().message());
  } else if (absl::Status s = sync.Run(*manifests, last_delivery); !s.ok()) {
    if (absl::IsAborted(s)) return bus::Disposition::Nak(options_.lease_busy_delay, s.ToString());
    return bus::Disposition::Nak(service::RetryDelay(message), s.ToString());
  }
  const bool succeeded = decode_error.empty() && !sync.failed();
  const std::string error = !decode_error.empty() ? decode_error : sync.error();
  const health::HealthCode app_health = sync.AppHealth();
  const std::string health_summary = sync.HealthSummary();
  const absl::Time finished_at = absl::Now();
  std::string summary =
      succeeded ? strings::Cat("sync of ", app, " succeeded (", plan.objects_size(),
                               " objects); health ", health::Name(app_health),
                               health_summary.empty() ? "" : ": " + health_summary)
                : error;

  // 5. Status (unless the application is gone: a cascade delete, or a dry run).
  absl::StatusOr<service::StoredResource> stored =
      service::ResourceStore(kv_).Get(kApplication, app);
  if (!stored.ok() && !absl::IsNotFound(stored.status())) {
    return bus::Disposition::Nak(service::RetryDelay(message), stored.status().ToString());
  }
  absl::StatusOr<v1::AppStatus> status = absl::NotFoundError("no status");
  if (stored.ok() && !plan.dry_run()) {
    status = statuses.Update(app, [&](v1::AppStatus& s) {
      // The inventory: entries of this plan replace those of the same object; pruned
      // objects leave; objects the plan did not touch (selective sync) stay.
      std::map<std::string, const Entry*> by_key;
      for (const Entry& e : sync.entries()) by_key[e.key] = &e;
      google::protobuf::RepeatedPtrField<v1::ResourceStatus> kept;
      for (const v1::ResourceStatus& r : s.resources()) {
        if (!by_key.count(KeyOf(r.ref()))) *kept.Add() = r;
      }
      s.mutable_resources()->Swap(&kept);
      for (const Entry& e : sync.entries()) {
        if (!e.in_inventory() && e.result == "pruned") continue;
        v1::ResourceStatus* r = s.add_resources();
        *r->mutable_ref() = e.planned.ref();
        bool synced = e.result == "applied" || e.result == "unchanged";
        r->set_sync(synced ? v1::SYNC_STATUS_CODE_SYNCED : v1::SYNC_STATUS_CODE_OUT_OF_SYNC);
        r->set_health(e.in_inventory() ? planner::ToProto(e.health.code)
                                       : v1::HEALTH_STATUS_CODE_UNKNOWN);
        r->set_message(!e.message.empty() ? e.message : e.health.message);
      }
      if (succeeded) {
        // Synced only if nothing is left over: a selective sync leaves the objects it did not
        // name as the planner found them, and with prune off, objects that left git stay
        // OutOfSync (as in Argo CD), so the application does too.
        const bool all_synced =
            std::all_of(s.resources().begin(), s.resources().end(),
                        [](const v1::ResourceStatus& r) {
                          return r.sync() == v1::SYNC_STATUS_CODE_SYNCED;
                        });
        s.set_sync(all_synced ? v1::SYNC_STATUS_CODE_SYNCED : v1::SYNC_STATUS_CODE_OUT_OF_SYNC);
        if (!event.revision().empty()) s.set_last_applied_revision(event.revision());
      }
      s.set_health(planner::ToProto(app_health));
      if (!plan.spec_digest().empty()) s.set_spec_digest(plan.spec_digest());
      s.set_observed_generation(stored->generation);
      const bool ready = succeeded && app_health == health::HealthCode::kHealthy;
      service::SetCondition(
          s, "Ready", ready,
          !succeeded ? "SyncFailed"
                     : (ready ? "Succeeded" : std::string(health::Name(app_health))),
          summary);
      s.set_message(summary);
      SetTime(s.mutable_reconciled_at(), finished_at);
      return true;
    });
    if (!status.ok()) return bus::Disposition::Nak(service::RetryDelay(message), status.status().ToString());
  }

  // History, then the broadcasts (a redelivery after a crash here re-publishes from history).
  int object_count = 0;
  for (const Entry& e : sync.entries()) object_count += e.result == "applied" || e.result == "pruned";
  service::HistoryEntry entry{.sync_id = plan.sync_id(),
                              .revision = event.revision(),
                              .spec_digest = plan.spec_digest(),
                              .succeeded = succeeded,
                              .message = summary,
                              .initiated_by = plan.initiated_by(),
                              .started_at = Rfc3339(started),
                              .finished_at = Rfc3339(finished_at),
                              .object_count = object_count};
  if (absl::Status s = history.Record(app, entry); !s.ok()) {
    return bus::Disposition::Nak(service::RetryDelay(message), s.ToString());
  }

  v1::Event finished =
      ResultEvent(succeeded ? "sync.succeeded" : "sync.failed", event, options_.emitter);
  finished.set_severity(succeeded ? v1::SEVERITY_INFO : v1::SEVERITY_ERROR);
  finished.set_message(summary);
  v1::SyncFinished* f = finished.mutable_sync_finished();
  f->set_sync_id(plan.sync_id());
  f->set_succeeded(succeeded);
  f->set_error(succeeded ? "" : error);
  f->set_initiated_by(plan.initiated_by());
  const absl::Duration took = finished_at - started;
  f->mutable_duration()->set_seconds(absl::ToInt64Seconds(took));
  f->mutable_duration()->set_nanos(
      static_cast<int32_t>(absl::ToInt64Nanoseconds(took - absl::Seconds(absl::ToInt64Seconds(took)))));
  for (const Entry& e : sync.entries()) {
    v1::ObjectResult* r = f->add_results();
    *r->mutable_ref() = e.planned.ref();
    r->set_action(e.planned.action());
    r->set_result(e.result.empty() ? "skipped" : e.result);
    r->set_message(e.message);
  }
  if (absl::Status s = service::Emit(*bus_, finished); !s.ok()) {
    return bus::Disposition::Nak(service::RetryDelay(message), s.ToString());
  }
  if (status.ok()) {
    v1::Event st = ResultEvent("app.status", event, options_.emitter);
    *st.mutable_app_status() = *status;
    if (absl::Status s = service::Emit(*bus_, st); !s.ok()) {
      return bus::Disposition::Nak(service::RetryDelay(message), s.ToString());
    }
  }
  log::Info(succeeded ? "sync succeeded" : "sync failed",
            {{"application", app},
             {"revision", event.revision()},
             {"syncId", plan.sync_id()},
             {"health", health::Name(app_health)},
             {"durationMs", absl::ToInt64Milliseconds(took)},
             {"applyMs", absl::ToInt64Milliseconds(sync.applied_at() - started)},
             {"error", error}});
  return bus::Disposition::Ack();
}

}  // namespace driftless::applier
