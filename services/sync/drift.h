// Drift (the sync-engine issue): after a sync, a live object drifted when applying its desired
// object again would change it (DiffObject's server-side-apply prediction: every field the
// desired object sets, whoever manages it now, after normalisation and ignoreDifferences), or
// when it is gone. Fields the desired object does not set are never drift.
//
//   DL_ASSIGN_OR_RETURN(std::vector<ObjectDrift> drift, FindDrift(desired, lookup, options));
//   if (!drift.empty()) status.set_message(DriftSummary(application, drift));
//
// Pure and thread-safe.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "common/manifest/manifest.h"
#include "common/status/status.h"
#include "services/sync/diff.h"

namespace driftless::sync {

struct ObjectDrift {
  std::string key;                 // manifest::ObjectKey of the desired object
  manifest::Json object;           // the desired object
  bool deleted = false;            // the live object is gone
  std::vector<std::string> paths;  // JSON pointers that differ (empty when deleted)
};

// The live object for a desired one; nullopt when it does not exist.
using LiveLookup = std::function<std::optional<manifest::Json>(const manifest::Json& desired)>;

// The desired objects whose live state drifted, in the order given. Objects created only
// (sync option CreateOnly=true) drift only by being deleted.
// Errors: DiffObject's (a desired object that cannot be applied).
absl::StatusOr<std::vector<ObjectDrift>> FindDrift(const std::vector<manifest::Json>& desired,
                                                   const LiveLookup& live,
                                                   const DiffOptions& options);

// "deleted" or the changed paths, comma-separated (at most 5, then "and N more").
std::string DriftDetail(const ObjectDrift& drift);
// "<application>: 2 objects drifted from the desired state: apps/v1 Deployment web/api
// (/spec/replicas), v1 ConfigMap web/config (deleted)" (at most 5 objects named).
std::string DriftSummary(std::string_view application, const std::vector<ObjectDrift>& drift);
// Identifies a drift (objects and paths): the same drift seen twice has the same signature.
std::string DriftSignature(const std::vector<ObjectDrift>& drift);

// `driftless app diff`: live against desired, as server-side apply would leave it.
struct LiveDiff {
  int differing = 0;  // objects that differ, are missing, or would be pruned
  // Per object: "===== <Describe> (<what>) =====" then a unified YAML diff from live to
  // desired (server fields stripped, Secret values masked: never their values).
  std::string text;
};

// Diffs each desired object with its live one (CreateOnly=true objects only when missing, as
// BuildPlan does) and lists the `tracked` objects git no longer has ("would be pruned" when
// `prune`, else "requires pruning"; Prune=false ones always the latter). Errors: DiffObject's,
// naming the object.
absl::StatusOr<LiveDiff> DiffLive(const std::vector<manifest::Json>& desired,
                                  const LiveLookup& live,
                                  const std::vector<manifest::Json>& tracked, bool prune,
                                  const DiffOptions& options);

// What the drift detector remembers of one application between checks.
struct DriftMemory {
  std::string suspected;  // a signature seen once, waiting for confirmation
  std::string reported;   // the signature written to the status and broadcast
  int heals = 0;          // heals within the window
  absl::Time last_heal = absl::InfinitePast();
  int64_t healed_seq = -1;  // the generation whose drift a heal was asked for
};

struct HealPolicy {
  absl::Duration confirm;      // drift must be seen twice this far apart
  absl::Duration backoff;      // HealDelay's base...
  absl::Duration backoff_max;  // ...and cap
  absl::Duration window;       // heals further apart (plus the wait imposed) start over
  absl::Duration timeout;      // a heal whose generation was not planned is asked again
};

struct DriftStep {
  bool report = false;  // write the status (drift, or its end) and broadcast app.drifted
  bool heal = false;    // ask for a new desired generation
  std::optional<absl::Time> recheck;  // look again then
};

// The detector's decision for one check of generation `seq` that found drift `signature`
// (DriftSignature; "" when in sync): confirm a new drift first, report each distinct drift
// once (and its end), and heal when `may_heal` (automated, selfHeal, not suspended) — one heal
// per generation, consecutive ones waiting HealDelay. Updates `memory`.
DriftStep NextDriftStep(DriftMemory& memory, std::string_view signature, int64_t seq, bool may_heal,
                        absl::Time now, const HealPolicy& policy);

// How long self-heal waits after `heals` corrections within the heal window: none for the
// first, then `base` doubled per heal, at most `max`, so two controllers fighting over a field
// do not loop hot.
absl::Duration HealDelay(int heals, absl::Duration base, absl::Duration max);

// Whether the object's sync options (ours or Argo CD's annotation) include `option`
// ("Prune=false", "CreateOnly=true").
bool HasSyncOption(const manifest::Json& object, std::string_view option);

}  // namespace driftless::sync
