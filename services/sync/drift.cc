#include "services/sync/drift.h"

#include <set>

#include "common/manifest/object.h"
#include "common/strings/str.h"
#include "services/sync/plan.h"

namespace driftless::sync {

using manifest::Json;

bool HasSyncOption(const Json& object, std::string_view option) {
  for (std::string_view key :
       {kSyncOptionsAnnotation, std::string_view("argocd.argoproj.io/sync-options")}) {
    if (manifest::AnnotationOf(object, key).find(option) != std::string::npos) return true;
  }
  return false;
}

absl::StatusOr<std::vector<ObjectDrift>> FindDrift(const std::vector<Json>& desired,
                                                   const LiveLookup& live,
                                                   const DiffOptions& options) {
  std::vector<ObjectDrift> out;
  for (const Json& object : desired) {
    std::optional<Json> current = live(object);
    if (!current) {
      out.push_back({.key = manifest::ObjectKey(object), .object = object, .deleted = true});
      continue;
    }
    if (HasSyncOption(object, "CreateOnly=true")) continue;
    absl::StatusOr<ObjectDiff> diff = DiffObject(object, *current, options);
    if (!diff.ok()) return Annotate(diff.status(), manifest::Describe(object));
    if (diff->in_sync) continue;
    out.push_back({.key = manifest::ObjectKey(object),
                   .object = object,
                   .paths = std::move(diff->changed_paths)});
  }
  return out;
}

std::string DriftDetail(const ObjectDrift& drift) {
  if (drift.deleted) return "deleted";
  constexpr size_t kShown = 5;
  std::string out;
  for (size_t i = 0; i < drift.paths.size() && i < kShown; ++i) {
    strings::Append(out, i ? ", " : "", drift.paths[i].empty() ? "/" : drift.paths[i]);
  }
  if (drift.paths.size() > kShown) {
    strings::Append(out, " and ", drift.paths.size() - kShown, " more");
  }
  return out;
}

std::string DriftSummary(std::string_view application, const std::vector<ObjectDrift>& drift) {
  constexpr size_t kShown = 5;
  std::string out =
      strings::Cat(application, ": ", drift.size(), drift.size() == 1 ? " object" : " objects",
                   " drifted from the desired state: ");
  for (size_t i = 0; i < drift.size() && i < kShown; ++i) {
    strings::Append(out, i ? ", " : "", manifest::Describe(drift[i].object), " (",
                    DriftDetail(drift[i]), ")");
  }
  if (drift.size() > kShown) strings::Append(out, " and ", drift.size() - kShown, " more");
  return out;
}

std::string DriftSignature(const std::vector<ObjectDrift>& drift) {
  std::string out;
  for (const ObjectDrift& d : drift) {
    strings::Append(out, d.key, d.deleted ? " deleted" : "", "\n");
    for (const std::string& p : d.paths) strings::Append(out, "  ", p, "\n");
  }
  return out;
}

absl::StatusOr<LiveDiff> DiffLive(const std::vector<Json>& desired, const LiveLookup& live,
                                  const std::vector<Json>& tracked, bool prune,
                                  const DiffOptions& options) {
  LiveDiff out;
  auto add = [&](const Json& object, std::string_view what, Json from, Json to) {
    MaskSecretValues(from, to);
    ++out.differing;
    strings::Append(out.text, "===== ", manifest::Describe(object), " (", what, ") =====\n",
                    UnifiedYamlDiff(from, to, "live", "desired"));
  };
  std::set<std::string> keys;
  for (const Json& object : desired) {
    keys.insert(manifest::ObjectKey(object));
    std::optional<Json> current = live(object);
    if (!current) {
      add(object, "missing", Json(), StripServerFields(object));
      continue;
    }
    if (HasSyncOption(object, "CreateOnly=true")) continue;  // exists: in sync (BuildPlan)
    absl::StatusOr<ObjectDiff> diff = DiffObject(object, *current, options);
    if (!diff.ok()) return Annotate(diff.status(), manifest::Describe(object));
    if (diff->in_sync) continue;
    add(object, "differs", StripServerFields(*current), StripServerFields(diff->predicted));
  }
  for (const Json& object : tracked) {
    if (keys.contains(manifest::ObjectKey(object))) continue;
    const bool protected_ = HasSyncOption(object, "Prune=false");
    add(object,
        protected_ ? "requires pruning (Prune=false)"
                   : (prune ? "would be pruned" : "requires pruning"),
        StripServerFields(object), Json());
  }
  return out;
}

DriftStep NextDriftStep(DriftMemory& memory, std::string_view signature, int64_t seq, bool may_heal,
                        absl::Time now, const HealPolicy& policy) {
  DriftStep step;
  if (signature.empty()) {
    memory.suspected.clear();
    step.report = !memory.reported.empty();
    memory.reported.clear();
    return step;
  }
  if (memory.suspected != signature) {  // seen once: confirm (a watch may lag an apply)
    memory.suspected = std::string(signature);
    step.recheck = now + policy.confirm;
    return step;
  }
  step.report = memory.reported != signature;
  memory.reported = std::string(signature);
  if (!may_heal) return step;
  if (now - memory.last_heal >
      policy.window + HealDelay(memory.heals, policy.backoff, policy.backoff_max)) {
    memory.heals = 0;
  }
  if (memory.healed_seq == seq && now - memory.last_heal < policy.timeout) {
    step.recheck = memory.last_heal + policy.timeout;  // its generation is on its way
    return step;
  }
  const absl::Time allowed =
      memory.last_heal + HealDelay(memory.heals, policy.backoff, policy.backoff_max);
  if (now < allowed) {
    step.recheck = allowed;
    return step;
  }
  ++memory.heals;
  memory.last_heal = now;
  memory.healed_seq = seq;
  step.heal = true;
  return step;
}

absl::Duration HealDelay(int heals, absl::Duration base, absl::Duration max) {
  if (heals <= 0) return absl::ZeroDuration();
  absl::Duration delay = base;
  for (int i = 1; i < heals && delay < max; ++i) delay *= 2;
  return std::min(delay, max);
}

}  // namespace driftless::sync
