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

// How long self-heal waits after `heals` corrections within the heal window: none for the
// first, then `base` doubled per heal, at most `max`, so two controllers fighting over a field
// do not loop hot.
absl::Duration HealDelay(int heals, absl::Duration base, absl::Duration max);

// Whether the object's sync options (ours or Argo CD's annotation) include `option`
// ("Prune=false", "CreateOnly=true").
bool HasSyncOption(const manifest::Json& object, std::string_view option);

}  // namespace driftless::sync
