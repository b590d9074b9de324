// Apply order of an application's objects: by phase (PreSync, Sync, PostSync), then sync wave,
// then kind (Namespaces and CRDs first, workloads after their config, custom resources last,
// as in Argo CD), then namespace and name. Pruning runs in the reverse order. Namespaces and
// CRDs that are not hooks come before everything (phase PreSync, the lowest wave): with
// CreateNamespace the destination exists before any PreSync hook or negative wave.
//
// Waves and hooks come from annotations: `driftless.dev/sync-wave: "-1"`,
// `driftless.dev/hook: PreSync|Sync|PostSync|SyncFail` (Argo CD's
// `argocd.argoproj.io/sync-wave` / `argocd.argoproj.io/hook` are honoured too). Helm's hook
// annotations map as in Argo CD: `helm.sh/hook: pre-install|pre-upgrade` is PreSync,
// `post-install|post-upgrade` PostSync, and `helm.sh/hook-weight` is the wave of a hook that
// has no sync-wave; Helm's test, rollback and delete hooks are never applied (IsSkippedHook).
// Pure and thread-safe.
#pragma once

#include <compare>
#include <string>
#include <vector>

#include "common/manifest/manifest.h"
#include "common/status/status.h"

namespace driftless::sync {

enum class Phase { kPreSync = 0, kSync = 1, kPostSync = 2, kSyncFail = 3 };

struct OrderKey {
  Phase phase = Phase::kSync;
  int wave = 0;
  int kind_rank = 0;
  std::string ns;
  std::string name;

  // Apply order: phase, wave, kind, namespace, name (member order).
  auto operator<=>(const OrderKey&) const = default;
};

// Errors: kInvalidArgument for a wave that is not an integer or an unknown hook, naming the
// object and annotation.
absl::StatusOr<OrderKey> OrderKeyOf(const manifest::Json& object);

// True for an object a sync never applies: a Helm hook whose phases are all ones Argo CD does
// not run either (test, test-success, test-failure, pre/post-rollback, pre/post-delete).
bool IsSkippedHook(const manifest::Json& object);

// Position of a kind in the apply order; unknown kinds (custom resources) rank last.
int KindRank(std::string_view kind);

// Sorts objects into apply order (stable). Errors as OrderKeyOf.
absl::Status SortForApply(std::vector<manifest::Json>& objects);

std::string_view PhaseName(Phase phase);

}  // namespace driftless::sync
