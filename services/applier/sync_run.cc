#include "services/applier/sync_run.h"

#include <algorithm>
#include <map>
#include <utility>

#include "absl/time/clock.h"
#include "common/manifest/object.h"
#include "common/status/status.h"
#include "common/strings/str.h"
#include "services/sync/live.h"
#include "services/sync/plan.h"

namespace driftless::applier {

using manifest::Json;
using sync::DescribeRef;
using sync::KeyOf;
using sync::KubeRefOf;

bool Settled(health::HealthCode code) {
  return code == health::HealthCode::kHealthy || code == health::HealthCode::kDegraded ||
         code == health::HealthCode::kSuspended;
}

SyncRun::SyncRun(kube::KubeClient* kube, const SyncRunOptions& options, const v1::PlanReady& plan,
                 std::string application, SyncHooks hooks)
    : kube_(kube),
      options_(options),
      plan_(plan),
      app_(std::move(application)),
      hooks_(std::move(hooks)) {
  if (!hooks_.may_write) hooks_.may_write = [](absl::Duration) { return absl::OkStatus(); };
  if (!hooks_.superseded) hooks_.superseded = [] { return false; };
}

absl::Status SyncRun::Run(const Json& manifests, bool stale) {
  std::map<std::string, const Json*> by_key;
  if (manifests.is_array()) {
    for (const Json& o : manifests) by_key[manifest::ObjectKey(o)] = &o;
  }
  for (const v1::PlannedObject& p : plan_.objects()) {
    SyncEntry e;
    e.planned = p;
    e.key = KeyOf(p.ref());
    const bool apply = p.action() == v1::ACTION_CREATE || p.action() == v1::ACTION_UPDATE ||
                       (stale && p.action() == v1::ACTION_NONE);
    if (apply) {
      if (auto it = by_key.find(e.key); it != by_key.end()) e.desired = it->second;
      if (stale && p.action() == v1::ACTION_NONE && e.desired != nullptr) {
        e.planned.set_action(v1::ACTION_UPDATE);
      }
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
    if (i > 0 && hooks_.superseded()) {
      superseded_ = true;
      error_ = strings::Cat("sync of application ", app_,
                            " stopped: superseded by a newer desired generation");
      return absl::OkStatus();
    }
    bool applied_any = false;
    for (size_t k = i; k < end; ++k) {
      SyncEntry& e = entries_[k];
      if (e.planned.action() == v1::ACTION_DELETE) continue;
      if (e.planned.action() == v1::ACTION_NONE || e.planned.action() == v1::ACTION_UNSPECIFIED) {
        e.result = "unchanged";
        continue;
      }
      if (e.desired == nullptr) {
        Fail(e, absl::InvalidArgumentError(
                    strings::Cat(DescribeRef(e.planned.ref()), ": not in the plan's manifests")));
        continue;
      }
      absl::StatusOr<Json> live = ApplyWithRetries(*e.desired);
      if (!fence_.ok()) return fence_;
      if (!live.ok()) {
        Fail(e, live.status());
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
      DL_RETURN_IF_ERROR(WaitHealthy(i, end, options_.wave_health_timeout));
    }
    i = end;
  }
  // Prune (entries are already in reverse apply order at the end of the plan).
  if (!failed_ && plan_.prune()) {
    for (SyncEntry& e : entries_) {
      if (e.planned.action() != v1::ACTION_DELETE) continue;
      absl::Status s = DeleteWithRetries(e.planned.ref());
      if (!fence_.ok()) return fence_;
      if (s.ok() || absl::IsNotFound(s)) {
        e.result = "pruned";
        continue;
      }
      Fail(e, s);
    }
  }
  applied_at_ = absl::Now();
  if (!plan_.dry_run())
    DL_RETURN_IF_ERROR(WaitHealthy(0, entries_.size(), options_.inline_health_wait));
  return absl::OkStatus();
}

health::HealthCode SyncRun::AppHealth() const {
  health::HealthCode worst = health::HealthCode::kHealthy;
  for (const SyncEntry& e : entries_) {
    if (e.in_inventory()) worst = health::Worst(worst, e.health.code);
  }
  return worst;
}

std::string SyncRun::HealthSummary() const {
  std::string out;
  for (const SyncEntry& e : entries_) {
    if (!e.in_inventory() || e.health.code == health::HealthCode::kHealthy) continue;
    if (!out.empty()) out += "; ";
    strings::Append(out, e.planned.ref().kind(), " ",
                    e.planned.ref().namespace_().empty() ? "" : e.planned.ref().namespace_() + "/",
                    e.planned.ref().name(), " is ", health::Name(e.health.code));
    if (!e.health.message.empty()) strings::Append(out, ": ", e.health.message);
  }
  return out;
}

std::vector<v1::ObjectRef> SyncRun::Unsettled() const {
  std::vector<v1::ObjectRef> out;
  for (const SyncEntry& e : entries_) {
    if (e.in_inventory() && e.result != "failed" && !Settled(e.health.code)) {
      out.push_back(e.planned.ref());
    }
  }
  return out;
}

void SyncRun::Fail(SyncEntry& e, const absl::Status& status) {
  e.result = "failed";
  e.message = std::string(status.message());
  all_failures_transient_ = all_failures_transient_ && sync::IsTransient(status);
  if (!failed_) error_ = strings::Cat("sync of application ", app_, " failed: ", status.message());
  failed_ = true;
}

absl::StatusOr<Json> SyncRun::ApplyWithRetries(const Json& object) {
  absl::StatusOr<Json> r;
  for (int attempt = 1; attempt <= options_.apply_attempts; ++attempt) {
    fence_ = hooks_.may_write(options_.request_timeout);
    if (!fence_.ok()) return fence_;
    r = kube_->Apply(object, {.field_manager = std::string(sync::kFieldManager),
                              .force = !plan_.no_force_conflicts(),
                              .dry_run = plan_.dry_run()});
    if (r.ok() || !sync::IsTransient(r.status())) return r;
    if (attempt < options_.apply_attempts) absl::SleepFor(options_.retry_backoff * attempt);
  }
  return r;
}

absl::Status SyncRun::DeleteWithRetries(const v1::ObjectRef& ref) {
  absl::Status s;
  for (int attempt = 1; attempt <= options_.apply_attempts; ++attempt) {
    fence_ = hooks_.may_write(options_.request_timeout);
    if (!fence_.ok()) return fence_;
    s = kube_->Delete(KubeRefOf(ref), {.propagation_policy = kube::PropagationPolicy::kBackground,
                                       .dry_run = plan_.dry_run()});
    if (s.ok() || !sync::IsTransient(s)) return s;
    if (attempt < options_.apply_attempts) absl::SleepFor(options_.retry_backoff * attempt);
  }
  return s;
}

absl::Status SyncRun::WaitHealthy(size_t from, size_t to, absl::Duration wait) {
  const absl::Time started = absl::Now();
  const absl::Time deadline = started + wait;
  bool first = true;
  absl::Duration interval = absl::Milliseconds(10);
  while (true) {
    bool pending = false;
    for (size_t k = from; k < to; ++k) {
      SyncEntry& e = entries_[k];
      if (!e.in_inventory() || e.result == "failed") continue;
      if (!first || !e.live) {
        if (!first && Settled(e.health.code)) continue;
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
      if (!Settled(e.health.code)) pending = true;
    }
    first = false;
    if (!pending || absl::Now() >= deadline) return absl::OkStatus();
    fence_ = hooks_.may_write(absl::ZeroDuration());  // still the holder?
    if (!fence_.ok()) return fence_;
    absl::SleepFor(std::min(interval, deadline - absl::Now()));
    // Short intervals first (simulated and small rollouts finish in well under a second),
    // then back off for the long ones.
    interval =
        std::min(interval * 2, absl::Now() - started < absl::Seconds(2) ? absl::Milliseconds(40)
                                                                        : absl::Milliseconds(250));
  }
}

}  // namespace driftless::applier
