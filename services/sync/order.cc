#include "services/sync/order.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <limits>

#include "common/manifest/object.h"

namespace driftless::sync {
namespace {

using manifest::Json;

constexpr std::array<std::string_view, 36> kKindOrder = {"Namespace",
                                                         "NetworkPolicy",
                                                         "ResourceQuota",
                                                         "LimitRange",
                                                         "PodSecurityPolicy",
                                                         "PodDisruptionBudget",
                                                         "ServiceAccount",
                                                         "Secret",
                                                         "SecretList",
                                                         "ConfigMap",
                                                         "StorageClass",
                                                         "PersistentVolume",
                                                         "PersistentVolumeClaim",
                                                         "CustomResourceDefinition",
                                                         "ClusterRole",
                                                         "ClusterRoleList",
                                                         "ClusterRoleBinding",
                                                         "ClusterRoleBindingList",
                                                         "Role",
                                                         "RoleList",
                                                         "RoleBinding",
                                                         "RoleBindingList",
                                                         "Service",
                                                         "DaemonSet",
                                                         "Pod",
                                                         "ReplicationController",
                                                         "ReplicaSet",
                                                         "Deployment",
                                                         "HorizontalPodAutoscaler",
                                                         "StatefulSet",
                                                         "Job",
                                                         "CronJob",
                                                         "IngressClass",
                                                         "Ingress",
                                                         "APIService",
                                                         "MutatingWebhookConfiguration"};

// The first of a driftless annotation and its Argo CD equivalent that is set, or "".
std::string AnnotationEither(const Json& o, std::string_view ours, std::string_view argo) {
  std::string v = manifest::AnnotationOf(o, ours);
  return v.empty() ? manifest::AnnotationOf(o, argo) : v;
}

}  // namespace

int KindRank(std::string_view kind) {
  for (size_t i = 0; i < kKindOrder.size(); ++i) {
    if (kKindOrder[i] == kind) return static_cast<int>(i);
  }
  return static_cast<int>(kKindOrder.size());
}

std::string_view PhaseName(Phase phase) {
  switch (phase) {
    case Phase::kPreSync:
      return "PreSync";
    case Phase::kSync:
      return "Sync";
    case Phase::kPostSync:
      return "PostSync";
    case Phase::kSyncFail:
      return "SyncFail";
  }
  return "Sync";
}

namespace {

// The phases of a comma-separated `helm.sh/hook` value.
std::vector<std::string> HelmHookPhases(const Json& o) {
  std::vector<std::string> phases;
  const std::string value = manifest::AnnotationOf(o, "helm.sh/hook");
  size_t start = 0;
  while (start <= value.size()) {
    size_t end = value.find(',', start);
    if (end == std::string::npos) end = value.size();
    std::string phase = value.substr(start, end - start);
    phase.erase(0, phase.find_first_not_of(' '));
    phase.erase(phase.find_last_not_of(' ') + 1);
    if (!phase.empty()) phases.push_back(std::move(phase));
    start = end + 1;
  }
  return phases;
}

}  // namespace

bool IsSkippedHook(const Json& o) {
  if (!AnnotationEither(o, "driftless.dev/hook", "argocd.argoproj.io/hook").empty()) return false;
  const std::vector<std::string> phases = HelmHookPhases(o);
  if (phases.empty()) return false;
  for (const std::string& p : phases) {
    if (p == "pre-install" || p == "pre-upgrade" || p == "post-install" || p == "post-upgrade" ||
        p == "crd-install") {
      return false;
    }
  }
  return true;
}

namespace {

absl::StatusOr<int> WaveOf(const Json& o, std::string_view annotation, const std::string& wave) {
  int value = 0;
  const char* end = wave.data() + wave.size();
  auto [ptr, ec] = std::from_chars(wave.data(), end, value);
  if (ec != std::errc() || ptr != end) {
    return absl::InvalidArgumentError(manifest::KindAndName(o) + ": annotation " +
                                      std::string(annotation) + " \"" + wave +
                                      "\" is not an integer");
  }
  return value;
}

}  // namespace

absl::StatusOr<OrderKey> OrderKeyOf(const Json& o) {
  OrderKey k;
  const std::vector<std::string> helm_phases = HelmHookPhases(o);
  if (const std::string weight = manifest::AnnotationOf(o, "helm.sh/hook-weight");
      !weight.empty() && !helm_phases.empty()) {
    DL_ASSIGN_OR_RETURN(k.wave, WaveOf(o, "helm.sh/hook-weight", weight));
  }
  for (const std::string& p : helm_phases) {
    if (p == "pre-install" || p == "pre-upgrade") {
      k.phase = Phase::kPreSync;
      break;
    }
    if (p == "post-install" || p == "post-upgrade") {
      k.phase = Phase::kPostSync;
      break;
    }
  }
  if (const std::string wave =
          AnnotationEither(o, "driftless.dev/sync-wave", "argocd.argoproj.io/sync-wave");
      !wave.empty()) {
    DL_ASSIGN_OR_RETURN(k.wave, WaveOf(o, "sync-wave", wave));
  }
  if (const std::string hook = AnnotationEither(o, "driftless.dev/hook", "argocd.argoproj.io/hook");
      !hook.empty()) {
    // Argo CD allows a comma-separated list; the first phase orders the object.
    const std::string first = hook.substr(0, hook.find(','));
    if (first == "PreSync") {
      k.phase = Phase::kPreSync;
    } else if (first == "Sync" || first == "Skip") {
      k.phase = Phase::kSync;
    } else if (first == "PostSync") {
      k.phase = Phase::kPostSync;
    } else if (first == "SyncFail") {
      k.phase = Phase::kSyncFail;
    } else {
      return absl::InvalidArgumentError(manifest::KindAndName(o) + ": annotation hook \"" + hook +
                                        "\" is not one of PreSync, Sync, PostSync, SyncFail");
    }
  }
  k.kind_rank = KindRank(manifest::KindOf(o));
  // Namespaces and CRDs (not hooks themselves) exist before any hook or wave: a PreSync Job or
  // a wave -1 object in the application's namespace, or a custom resource, needs them.
  const std::string kind = manifest::KindOf(o);
  const bool foundation =
      (kind == "Namespace" && manifest::ApiVersionOf(o) == "v1") ||
      (kind == "CustomResourceDefinition" && manifest::GroupOf(o) == "apiextensions.k8s.io");
  if (foundation && helm_phases.empty() &&
      AnnotationEither(o, "driftless.dev/hook", "argocd.argoproj.io/hook").empty()) {
    k.phase = Phase::kPreSync;
    k.wave = std::numeric_limits<int>::min();
  }
  k.ns = manifest::NamespaceOf(o);
  k.name = manifest::NameOf(o);
  return k;
}

absl::Status SortForApply(std::vector<Json>& objects) {
  std::vector<std::pair<OrderKey, size_t>> keys;
  keys.reserve(objects.size());
  for (size_t i = 0; i < objects.size(); ++i) {
    DL_ASSIGN_OR_RETURN(OrderKey k, OrderKeyOf(objects[i]));
    keys.emplace_back(std::move(k), i);
  }
  std::stable_sort(keys.begin(), keys.end(),
                   [](const auto& x, const auto& y) { return x.first < y.first; });
  std::vector<Json> sorted;
  sorted.reserve(objects.size());
  for (const auto& [k, i] : keys) sorted.push_back(std::move(objects[i]));
  objects = std::move(sorted);
  return absl::OkStatus();
}

}  // namespace driftless::sync
