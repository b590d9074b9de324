#include "services/planner/order.h"

#include <algorithm>
#include <array>
#include <charconv>

namespace driftless::planner {
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

const std::string* Annotation(const Json& o, std::string_view a, std::string_view b) {
  if (!o.contains("metadata") || !o["metadata"].is_object()) return nullptr;
  const Json& md = o["metadata"];
  if (!md.contains("annotations") || !md["annotations"].is_object()) return nullptr;
  for (std::string_view key : {a, b}) {
    auto it = md["annotations"].find(std::string(key));
    if (it != md["annotations"].end() && it->is_string()) return &it->get_ref<const std::string&>();
  }
  return nullptr;
}

std::string Describe(const Json& o) {
  std::string name =
      o.contains("metadata") && o["metadata"].is_object() ? o["metadata"].value("name", "") : "";
  return o.value("kind", "object") + " " + name;
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

absl::StatusOr<OrderKey> OrderKeyOf(const Json& o) {
  OrderKey k;
  if (const std::string* wave =
          Annotation(o, "driftless.dev/sync-wave", "argocd.argoproj.io/sync-wave")) {
    int value = 0;
    const char* end = wave->data() + wave->size();
    auto [ptr, ec] = std::from_chars(wave->data(), end, value);
    if (ec != std::errc() || ptr != end) {
      return absl::InvalidArgumentError(Describe(o) + ": annotation sync-wave \"" + *wave +
                                        "\" is not an integer");
    }
    k.wave = value;
  }
  if (const std::string* hook = Annotation(o, "driftless.dev/hook", "argocd.argoproj.io/hook")) {
    // Argo CD allows a comma-separated list; the first phase orders the object.
    const std::string first = hook->substr(0, hook->find(','));
    if (first == "PreSync") {
      k.phase = Phase::kPreSync;
    } else if (first == "Sync" || first == "Skip") {
      k.phase = Phase::kSync;
    } else if (first == "PostSync") {
      k.phase = Phase::kPostSync;
    } else if (first == "SyncFail") {
      k.phase = Phase::kSyncFail;
    } else {
      return absl::InvalidArgumentError(Describe(o) + ": annotation hook \"" + *hook +
                                        "\" is not one of PreSync, Sync, PostSync, SyncFail");
    }
  }
  k.kind_rank = KindRank(o.value("kind", ""));
  if (o.contains("metadata") && o["metadata"].is_object()) {
    const Json& md = o["metadata"];
    if (md.contains("namespace") && md["namespace"].is_string()) k.ns = md["namespace"];
    if (md.contains("name") && md["name"].is_string()) k.name = md["name"];
  }
  return k;
}

absl::Status SortForApply(std::vector<Json>& objects) {
  std::vector<std::pair<OrderKey, size_t>> keys;
  keys.reserve(objects.size());
  for (size_t i = 0; i < objects.size(); ++i) {
    DL_ASSIGN_OR_RETURN(OrderKey k, OrderKeyOf(objects[i]));
    keys.emplace_back(std::move(k), i);
  }
  std::stable_sort(keys.begin(), keys.end(), [](const auto& x, const auto& y) {
    const OrderKey& a = x.first;
    const OrderKey& b = y.first;
    return std::tie(a.phase, a.wave, a.kind_rank, a.ns, a.name) <
           std::tie(b.phase, b.wave, b.kind_rank, b.ns, b.name);
  });
  std::vector<Json> sorted;
  sorted.reserve(objects.size());
  for (const auto& [k, i] : keys) sorted.push_back(std::move(objects[i]));
  objects = std::move(sorted);
  return absl::OkStatus();
}

}  // namespace driftless::planner
