#include "services/planner/drift_detector.h"

#include "common/log/log.h"
#include "common/manifest/object.h"
#include "common/strings/str.h"
#include "services/common/events.h"
#include "services/common/identity.h"
#include "services/common/state.h"
#include "services/common/topology.h"
#include "services/sync/app_spec.h"

namespace driftless::planner {
namespace {

using service::kApplication;
constexpr std::string_view kDriftedPrefix = "drifted: ";
// A check that could not run (a kind still listing, KV unreachable) is tried again after.
constexpr absl::Duration kRecheck = absl::Milliseconds(200);
// An application whose kinds the cache is still listing is looked at again after.
constexpr absl::Duration kKindRecheck = absl::Seconds(1);

bool Settled(int64_t seq, int64_t applied, const std::string& digest) {
  return seq > 0 && applied >= seq && !digest.empty();
}

}  // namespace

DriftDetector::DriftDetector(kube::KubeClient* kube, bus::KvStore* kv, bus::BlobStore* blobs,
                             bus::EventBus* bus, std::string emitter, Options options)
    : kube_(kube),
      kv_(kv),
      blobs_(blobs),
      bus_(bus),
      emitter_(std::move(emitter)),
      options_(options),
      heal_policy_{.confirm = options.confirm,
                   .backoff = options.heal_backoff,
                   .backoff_max = options.heal_backoff_max,
                   .window = options.heal_window,
                   .timeout = options.heal_timeout},
      lease_(kv),
      cache_(
          kube, [this](std::string_view application) { Touch(application); }, options.cache) {}

void DriftDetector::Schedule(const std::string& application, absl::Time when) {
  auto it = targets_.find(application);
  if (it == targets_.end()) return;
  Target& t = it->second;
  if (t.due <= when) return;  // an earlier check is due already
  if (t.due != absl::InfiniteFuture()) queue_.erase({t.due, application});
  t.due = when;
  const bool earliest = queue_.empty() || when < queue_.begin()->first;
  queue_.insert({when, application});
  if (earliest) cv_.notify_all();
}

void DriftDetector::Touch(std::string_view application) {
  std::lock_guard lock(mu_);
  Schedule(std::string(application), absl::Now() + options_.debounce);
}

void DriftDetector::OnStatus(const bus::WatchEvent& event) {
  if (event.kind == bus::WatchEvent::Kind::kInitialValuesDone) return;
  static const std::string prefix = service::StatusKey("");
  if (!event.entry.key.starts_with(prefix)) return;
  const std::string application = event.entry.key.substr(prefix.size());
  std::lock_guard lock(mu_);
  if (event.kind == bus::WatchEvent::Kind::kDelete) {
    auto it = targets_.find(application);
    if (it == targets_.end()) return;
    if (it->second.due != absl::InfiniteFuture()) queue_.erase({it->second.due, application});
    targets_.erase(it);
    return;
  }
  v1::AppStatus status;
  if (!status.ParseFromString(event.entry.value)) return;
  Target& t = targets_[application];
  if (t.uid != status.application_uid()) {
    absl::Time due = t.due;
    t = Target{};
    t.due = due;
    t.uid = status.application_uid();
  }
  t.seq = status.desired_seq();
  t.applied = status.applied_seq();
  t.digest = status.desired_digest();
  t.revision = status.last_applied_revision();
  t.synced = status.sync() == v1::SYNC_STATUS_CODE_SYNCED;
  const v1::Condition* drifted = service::FindCondition(status, service::kDriftedCondition);
  t.drifted = drifted && drifted->status();
  if (t.memory.healed_seq >= 0 && t.seq > t.memory.healed_seq) {
    t.memory.healed_seq = -1;  // the heal was planned
  }
  if (Settled(t.seq, t.applied, t.digest) && (t.synced || t.drifted)) {
    Schedule(application, absl::Now() + options_.settle);
  } else {
    t.memory.suspected.clear();
  }
}

bool DriftDetector::Active(absl::Time now) {
  if (now - lease_checked_ < options_.lease_ttl / 3) return active_;
  lease_checked_ = now;
  // Only the run loop calls this (and touches active_, grant_): the KV round trip runs
  // without mu_, so watch threads are never held up by it.
  absl::StatusOr<bus::LeaseGrant> grant =
      lease_.TryAcquire(service::kLeasesBucket, "planner.drift", emitter_, options_.lease_ttl);
  const bool was = active_;
  active_ = grant.ok();
  if (grant.ok()) {
    grant_ = *grant;
  } else {
    grant_.reset();
  }
  if (!grant.ok() && !absl::IsAborted(grant.status())) {
    log::Warn("drift detection: cannot take its lease", {{"error", grant.status()}});
  }
  if (active_ && !was) {
    log::Info("drift detection active", {{"holder", emitter_}});
    std::lock_guard lock(mu_);
    for (auto& [name, _] : targets_) Schedule(name, now);
  }
  return active_;
}

absl::Status DriftDetector::Run(std::stop_token stop) {
  DL_ASSIGN_OR_RETURN(std::unique_ptr<bus::KvWatch> watch,
                      kv_->Watch(service::kStatusBucket, service::StatusKey(">"),
                                 [this](const bus::WatchEvent& e) { OnStatus(e); }));
  std::stop_callback wake(stop, [this] {
    std::lock_guard lock(mu_);
    cv_.notify_all();
  });
  absl::Time next_sweep = absl::Now() + options_.interval;
  while (!stop.stop_requested()) {
    std::vector<std::string> due;
    const bool active = Active(absl::Now());
    {
      std::unique_lock lock(mu_);
      const absl::Time now = absl::Now();
      if (!active) {
        next_sweep = now + options_.interval;  // a standby sweeps nothing (and never spins)
      } else if (now >= next_sweep) {
        for (auto& [name, _] : targets_) Schedule(name, now);
        next_sweep = now + options_.interval;
      }
      while (active && !queue_.empty() && queue_.begin()->first <= now) {
        auto [_, name] = *queue_.begin();
        queue_.erase(queue_.begin());
        targets_[name].due = absl::InfiniteFuture();
        due.push_back(std::move(name));
      }
      if (due.empty()) {
        absl::Time wake_at = std::min(next_sweep, lease_checked_ + options_.lease_ttl / 3);
        if (active && !queue_.empty()) wake_at = std::min(wake_at, queue_.begin()->first);
        cv_.wait_for(lock,
                     absl::ToChronoNanoseconds(std::max(wake_at - now, absl::Milliseconds(1))));
        continue;
      }
    }
    for (const std::string& application : due) {
      if (absl::StatusOr<bool> checked = Check(application); !checked.ok()) {
        log::Warn("drift check failed",
                  {{"application", application}, {"error", checked.status()}});
        std::lock_guard lock(mu_);
        Schedule(application, absl::Now() + std::max(kRecheck, options_.confirm));
      }
    }
  }
  watch->Stop();
  if (grant_) (void)lease_.Release(*grant_);
  return absl::OkStatus();
}

absl::Status DriftDetector::Load(const std::string& application, Target& target) {
  absl::StatusOr<service::StoredResource> stored =
      service::ResourceStore(kv_).Get(kApplication, application);
  DL_RETURN_IF_ERROR(stored.status());
  if (stored->uid != target.uid) {
    return absl::FailedPreconditionError("application re-created since its last plan");
  }
  const sync::AppSpec spec = sync::ParseAppSpec(stored->object);
  target.automated = spec.automated;
  target.self_heal = spec.self_heal;
  target.suspend = spec.suspend;
  target.ignore = spec.ignore;
  if (target.loaded_digest != target.digest) {
    absl::StatusOr<std::vector<Json>> objects = service::LoadDesired(*blobs_, target.digest);
    if (absl::IsNotFound(objects.status())) {
      // Expired (the application was not planned for a day): render it again, once; nothing
      // is judged until that generation is planned.
      if (target.rerender_digest != target.digest) {
        log::Warn("desired state of the last plan expired, re-rendering",
                  {{"application", application}, {"digest", target.digest}});
        DL_RETURN_IF_ERROR(service::RequestGeneration(
            *bus_, application, nullptr, "rerender",
            strings::Cat(application, ": desired state of the last plan expired: re-rendering"), "",
            emitter_));
        std::lock_guard lock(mu_);
        if (auto it = targets_.find(application); it != targets_.end()) {
          it->second.rerender_digest = target.digest;
        }
      }
      return absl::FailedPreconditionError("desired state expired; re-rendering");
    }
    if (!objects.ok()) {
      return absl::Status(objects.status().code(), strings::Cat("application ", application, ": ",
                                                                objects.status().message()));
    }
    target.desired.clear();
    for (const Json& o : *objects) {
      target.desired.push_back({.kind = {manifest::ApiVersionOf(o), manifest::KindOf(o)},
                                .key = manifest::ObjectKey(o),
                                .json = o.dump()});
    }
    target.loaded_digest = target.digest;
  }
  if (target.loaded_seq != target.seq) {
    target.memory.suspected.clear();
    target.memory.reported.clear();
    target.clean_versions.clear();
  }
  target.loaded_seq = target.seq;
  return absl::OkStatus();
}

absl::StatusOr<bool> DriftDetector::CheckNowForTest(const std::string& application) {
  return Check(application);
}

absl::StatusOr<bool> DriftDetector::Check(const std::string& application) {
  Target target;
  {
    std::lock_guard lock(mu_);
    auto it = targets_.find(application);
    if (it == targets_.end()) return false;
    target = it->second;
  }
  if (!Settled(target.seq, target.applied, target.digest) || !(target.synced || target.drifted)) {
    return false;
  }
  if (target.loaded_seq != target.seq || target.loaded_digest != target.digest) {
    absl::Status loaded = Load(application, target);
    if (absl::IsNotFound(loaded) || absl::IsFailedPrecondition(loaded)) return false;
    DL_RETURN_IF_ERROR(loaded);
    std::lock_guard lock(mu_);
    auto it = targets_.find(application);
    if (it == targets_.end() || it->second.uid != target.uid || it->second.seq != target.seq) {
      return false;  // moved on meanwhile: its own check follows
    }
    Target& t = it->second;
    t.loaded_seq = target.loaded_seq;
    t.loaded_digest = target.loaded_digest;
    t.automated = target.automated;
    t.self_heal = target.self_heal;
    t.suspend = target.suspend;
    t.ignore = target.ignore;
    t.desired = target.desired;
    t.memory = target.memory;
    t.clean_versions = target.clean_versions;
  }

  std::string versions;
  for (const Desired& d : target.desired) {
    cache_.Track(d.kind);
    if (!cache_.Synced(d.kind)) {
      // Still listing (or its list keeps failing: the cache logs why).
      std::lock_guard lock(mu_);
      Schedule(application, absl::Now() + kKindRecheck);
      return false;
    }
    strings::Append(versions, cache_.ContentDigest(d.kind, d.key), ",");
  }
  if (!target.clean_versions.empty() && versions == target.clean_versions &&
      target.memory.reported.empty() && !target.drifted) {
    return false;  // nothing changed since it was last found in sync
  }
  std::vector<Json> desired;
  desired.reserve(target.desired.size());
  for (const Desired& d : target.desired) desired.push_back(Json::parse(d.json));
  sync::DiffOptions diff;
  diff.ignore = target.ignore;
  absl::Status read_error;
  DL_ASSIGN_OR_RETURN(std::vector<sync::ObjectDrift> drift,
                      sync::FindDrift(
                          desired,
                          [&](const Json& o) -> std::optional<Json> {
                            std::optional<Json> cached =
                                cache_.Get({manifest::ApiVersionOf(o), manifest::KindOf(o)},
                                           manifest::ObjectKey(o));
                            if (cached) return cached;
                            // Not labelled (it existed before, or a CreateOnly object driftless
                            // never updated) is not gone: ask the cluster.
                            absl::StatusOr<Json> live = kube_->Get(kube::ObjectRef::Of(o));
                            if (live.ok()) return *std::move(live);
                            if (!absl::IsNotFound(live.status()) && read_error.ok())
                              read_error = live.status();
                            return std::nullopt;
                          },
                          diff));
  if (!read_error.ok()) {
    return absl::Status(read_error.code(),
                        strings::Cat("application ", application, ": ", read_error.message()));
  }

  const std::string signature = drift.empty() ? "" : sync::DriftSignature(drift);
  const bool may_heal = target.automated && target.self_heal && !target.suspend;
  sync::DriftStep step;
  {
    std::lock_guard lock(mu_);
    auto it = targets_.find(application);
    if (it == targets_.end() || it->second.seq != target.seq) return false;  // moved on
    Target& t = it->second;
    step = sync::NextDriftStep(t.memory, signature, t.seq, may_heal, absl::Now(), heal_policy_);
    t.clean_versions = drift.empty() ? versions : "";
    if (drift.empty() && t.drifted) step.report = true;  // reported before a restart
    if (step.recheck) Schedule(application, *step.recheck);
  }
  if (step.report) {
    if (absl::Status s = Report(application, target, drift); !s.ok()) {
      std::lock_guard lock(mu_);
      if (auto it = targets_.find(application); it != targets_.end()) {
        it->second.memory.reported.clear();  // report it again next time
      }
      return s;
    }
  }
  if (step.heal)
    DL_RETURN_IF_ERROR(Heal(application, target, sync::DriftSummary(application, drift)));
  return !drift.empty();
}

absl::Status DriftDetector::Report(const std::string& application, const Target& target,
                                   const std::vector<sync::ObjectDrift>& drift) {
  std::map<std::string, const sync::ObjectDrift*> by_key;
  for (const sync::ObjectDrift& d : drift) by_key[d.key] = &d;
  const std::string summary = drift.empty() ? "" : sync::DriftSummary(application, drift);
  bool written = false;
  absl::StatusOr<v1::AppStatus> updated = service::StatusStore(kv_).Update(
      application,
      [&](v1::AppStatus& s) {
        written = false;
        // Only the generation that was checked, and only while no sync is in flight.
        if (s.application_uid() != target.uid || s.desired_seq() != target.seq ||
            s.applied_seq() < s.desired_seq()) {
          return false;
        }
        bool all_synced = true;
        for (v1::ResourceStatus& r : *s.mutable_resources()) {
          auto it = by_key.find(sync::KeyOf(r.ref()));
          if (it != by_key.end()) {
            r.set_sync(v1::SYNC_STATUS_CODE_OUT_OF_SYNC);
            r.set_message(strings::Cat(kDriftedPrefix, sync::DriftDetail(*it->second)));
            if (it->second->deleted) r.set_health(v1::HEALTH_STATUS_CODE_MISSING);
          } else if (r.message().starts_with(kDriftedPrefix)) {
            if (r.message() == strings::Cat(kDriftedPrefix, "deleted")) {
              r.set_health(v1::HEALTH_STATUS_CODE_UNKNOWN);  // back, not yet assessed
            }
            r.set_sync(v1::SYNC_STATUS_CODE_SYNCED);
            r.clear_message();
          }
          all_synced = all_synced && r.sync() == v1::SYNC_STATUS_CODE_SYNCED;
        }
        const v1::Condition* was = service::FindCondition(s, service::kDriftedCondition);
        if (drift.empty()) {
          if (!was || !was->status()) return false;
          const std::string reported = was->message();  // SetCondition overwrites *was
          service::SetCondition(s, service::kDriftedCondition, false, "InSync", "");
          if (s.message() == reported) s.clear_message();
          if (all_synced) s.set_sync(v1::SYNC_STATUS_CODE_SYNCED);
        } else {
          service::SetCondition(s, service::kDriftedCondition, true, "LiveStateChanged", summary);
          s.set_sync(v1::SYNC_STATUS_CODE_OUT_OF_SYNC);
          s.set_message(summary);
        }
        written = true;
        return true;
      },
      target.uid);
  if (absl::IsNotFound(updated.status())) return absl::OkStatus();  // deleted meanwhile
  DL_RETURN_IF_ERROR(updated.status());
  if (!written) return absl::OkStatus();
  if (drift.empty()) {
    log::Info("drift gone", {{"application", application}, {"seq", target.seq}});
    return absl::OkStatus();
  }
  log::Warn("drift", {{"application", application}, {"seq", target.seq}, {"drift", summary}});
  v1::Event event =
      service::NewEvent(service::event_type::kAppDrifted, application, target.revision, emitter_);
  const service::SyncIdentity identity{.uid = target.uid, .seq = target.seq};
  service::SetIdentity(event, identity);
  event.set_id(service::IdentityEventId(service::event_type::kAppDrifted, application, identity,
                                        manifest::Digest(Json(sync::DriftSignature(drift)))));
  event.set_severity(v1::SEVERITY_WARNING);
  event.set_message(summary);
  for (const sync::ObjectDrift& d : drift) {
    *event.mutable_app_drifted()->add_objects() = sync::ProtoRefOf(d.object);
  }
  return service::Emit(*bus_, event);
}

absl::Status DriftDetector::Heal(const std::string& application, const Target& target,
                                 const std::string& summary) {
  log::Info("self-healing", {{"application", application}, {"seq", target.seq}});
  return service::RequestGeneration(*bus_, application, nullptr, "heal",
                                    strings::Cat(summary, "; self-healing"), "", emitter_);
}

}  // namespace driftless::planner
