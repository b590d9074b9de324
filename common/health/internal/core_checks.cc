// Built-in health rules, following argoproj/gitops-engine pkg/health (health_*.go). Codes
// always match gitops-engine's; messages match too, except that we fill in a message where
// gitops-engine leaves it empty (Service/Ingress without an address, PVC phases, a Pod whose
// container keeps failing) and fix gitops-engine's "less then" typo.
//
// Where gitops-engine converts to a typed object and fails on a bad field (status Unknown),
// these rules treat a field of the wrong type as absent; the input is still never trusted.
// Any API version of a group is accepted (apps/v1, apps/v1beta2, extensions/v1beta1, ...):
// the fields read here did not change between versions.
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/health/internal/checks.h"
#include "common/health/internal/fields.h"

namespace driftless::health::internal {
namespace {

using manifest::Json;

Health Make(HealthCode code, std::string message = "") { return Health{code, std::move(message)}; }

// --- apps -------------------------------------------------------------------------------

Health DeploymentHealth(const Json& o) {
  if (IsTrue(o, "/spec/paused")) return Make(HealthCode::kSuspended, "Deployment is paused");
  // Borrowed by gitops-engine from kubectl rollout status.
  int64_t generation = IntOr(o, "/metadata/generation");
  int64_t observed = IntOr(o, "/status/observedGeneration");
  if (generation > observed) {
    // gitops-engine says "less then"; we fix the typo.
    return Make(HealthCode::kProgressing,
                "Waiting for rollout to finish: observed deployment generation less than "
                "desired generation");
  }
  std::vector<Condition> conditions = Conditions(o);
  const Condition* progressing = FindCondition(conditions, "Progressing");
  if (progressing != nullptr && progressing->reason == "ProgressDeadlineExceeded") {
    return Make(HealthCode::kDegraded,
                absl::StrCat("Deployment ", Quote(StringOr(o, "/metadata/name")),
                             " exceeded its progress deadline"));
  }
  std::optional<int64_t> desired = GetInt(o, "/spec/replicas");
  int64_t updated = IntOr(o, "/status/updatedReplicas");
  int64_t replicas = IntOr(o, "/status/replicas");
  int64_t available = IntOr(o, "/status/availableReplicas");
  if (desired && updated < *desired) {
    return Make(HealthCode::kProgressing,
                absl::StrCat("Waiting for rollout to finish: ", updated, " out of ", *desired,
                             " new replicas have been updated..."));
  }
  if (replicas > updated) {
    return Make(HealthCode::kProgressing,
                absl::StrCat("Waiting for rollout to finish: ", replicas - updated,
                             " old replicas are pending termination..."));
  }
  if (available < updated) {
    return Make(HealthCode::kProgressing,
                absl::StrCat("Waiting for rollout to finish: ", available, " of ", updated,
                             " updated replicas are available..."));
  }
  return Make(HealthCode::kHealthy);
}

Health StatefulSetHealth(const Json& o) {
  int64_t generation = IntOr(o, "/metadata/generation");
  int64_t observed = IntOr(o, "/status/observedGeneration");
  if (observed == 0 || generation > observed) {
    return Make(HealthCode::kProgressing, "Waiting for statefulset spec update to be observed...");
  }
  std::optional<int64_t> desired = GetInt(o, "/spec/replicas");
  int64_t ready = IntOr(o, "/status/readyReplicas");
  int64_t updated = IntOr(o, "/status/updatedReplicas");
  if (desired && ready < *desired) {
    return Make(HealthCode::kProgressing,
                absl::StrCat("Waiting for ", *desired - ready, " pods to be ready..."));
  }
  std::string strategy = StringOr(o, "/spec/updateStrategy/type");
  if (strategy == "RollingUpdate" && GetObject(o, "/spec/updateStrategy/rollingUpdate")) {
    std::optional<int64_t> partition = GetInt(o, "/spec/updateStrategy/rollingUpdate/partition");
    if (desired && partition && updated < *desired - *partition) {
      return Make(HealthCode::kProgressing,
                  absl::StrCat("Waiting for partitioned roll out to finish: ", updated, " out of ",
                               *desired - *partition, " new pods have been updated..."));
    }
    return Make(HealthCode::kHealthy, absl::StrCat("partitioned roll out complete: ", updated,
                                                   " new pods have been updated..."));
  }
  if (strategy == "OnDelete") {
    return Make(HealthCode::kHealthy,
                absl::StrCat("statefulset has ", ready, " ready pods (", updated, " updated)"));
  }
  std::string update_revision = StringOr(o, "/status/updateRevision");
  std::string current_revision = StringOr(o, "/status/currentRevision");
  if (update_revision != current_revision) {
    return Make(HealthCode::kProgressing,
                absl::StrCat("waiting for statefulset rolling update to complete ", updated,
                             " pods at revision ", update_revision, "..."));
  }
  return Make(HealthCode::kHealthy, absl::StrCat("statefulset rolling update complete ",
                                                 IntOr(o, "/status/currentReplicas"),
                                                 " pods at revision ", current_revision, "..."));
}

Health DaemonSetHealth(const Json& o) {
  int64_t generation = IntOr(o, "/metadata/generation");
  int64_t observed = IntOr(o, "/status/observedGeneration");
  if (generation > observed) {
    return Make(HealthCode::kProgressing,
                "Waiting for rollout to finish: observed daemon set generation less than "
                "desired generation");
  }
  int64_t updated = IntOr(o, "/status/updatedNumberScheduled");
  int64_t desired = IntOr(o, "/status/desiredNumberScheduled");
  int64_t available = IntOr(o, "/status/numberAvailable");
  if (StringOr(o, "/spec/updateStrategy/type") == "OnDelete") {
    return Make(HealthCode::kHealthy, absl::StrCat("daemon set ", updated, " out of ", desired,
                                                   " new pods have been updated"));
  }
  std::string name = Quote(StringOr(o, "/metadata/name"));
  if (updated < desired) {
    return Make(HealthCode::kProgressing,
                absl::StrCat("Waiting for daemon set ", name, " rollout to finish: ", updated,
                             " out of ", desired, " new pods have been updated..."));
  }
  if (available < desired) {
    return Make(HealthCode::kProgressing,
                absl::StrCat("Waiting for daemon set ", name, " rollout to finish: ", available,
                             " of ", desired, " updated pods are available..."));
  }
  return Make(HealthCode::kHealthy);
}

Health ReplicaSetHealth(const Json& o) {
  int64_t generation = IntOr(o, "/metadata/generation");
  int64_t observed = IntOr(o, "/status/observedGeneration");
  if (generation > observed) {
    return Make(HealthCode::kProgressing,
                "Waiting for rollout to finish: observed replica set generation less than "
                "desired generation");
  }
  std::vector<Condition> conditions = Conditions(o);
  const Condition* failure = FindCondition(conditions, "ReplicaFailure");
  if (failure != nullptr && failure->status == "True") {
    return Make(HealthCode::kDegraded, failure->message);
  }
  std::optional<int64_t> desired = GetInt(o, "/spec/replicas");
  int64_t available = IntOr(o, "/status/availableReplicas");
  if (desired && available < *desired) {
    return Make(HealthCode::kProgressing,
                absl::StrCat("Waiting for rollout to finish: ", available, " out of ", *desired,
                             " new replicas are available..."));
  }
  return Make(HealthCode::kHealthy);
}

// --- core -------------------------------------------------------------------------------

bool HasLoadBalancerIngress(const Json& o) {
  const Json* ingress = GetArray(o, "/status/loadBalancer/ingress");
  return ingress != nullptr && !ingress->empty();
}

Health ServiceHealth(const Json& o) {
  if (StringOr(o, "/spec/type") == "LoadBalancer" && !HasLoadBalancerIngress(o)) {
    return Make(HealthCode::kProgressing, "Waiting for the load balancer to get an address");
  }
  return Make(HealthCode::kHealthy);
}

Health IngressHealth(const Json& o) {
  if (HasLoadBalancerIngress(o)) return Make(HealthCode::kHealthy);
  return Make(HealthCode::kProgressing, "Waiting for the ingress to get an address");
}

Health PersistentVolumeClaimHealth(const Json& o) {
  std::string phase = StringOr(o, "/status/phase");
  if (phase == "Lost") return Make(HealthCode::kDegraded, "The claim lost its volume");
  if (phase == "Pending")
    return Make(HealthCode::kProgressing, "Waiting for the claim to be bound");
  if (phase == "Bound") return Make(HealthCode::kHealthy);
  return Make(HealthCode::kUnknown, phase.empty() ? "The claim has no status.phase"
                                                  : absl::StrCat("Unknown claim phase ", phase));
}

// A terminated container's failure description, or "" (gitops-engine getFailMessage).
// `state_field` is "state" or "lastState".
std::string ContainerFailMessage(const Json& container, std::string_view state_field = "state") {
  const Json* terminated = Member(Member(&container, state_field), "terminated");
  if (terminated == nullptr || !terminated->is_object()) return "";
  std::string message = AsString(Member(terminated, "message")).value_or("");
  if (!message.empty()) return message;
  std::string reason = AsString(Member(terminated, "reason")).value_or("");
  if (reason == "OOMKilled") return reason;
  int64_t exit_code = AsInt(Member(terminated, "exitCode")).value_or(0);
  if (exit_code != 0) {
    return absl::StrCat("container ", Quote(AsString(Member(&container, "name")).value_or("")),
                        " failed with exit code ", exit_code);
  }
  return "";
}

Health PodHealth(const Json& o) {
  // The API server defaults restartPolicy to Always; gitops-engine sees "" for an object
  // without the field (e.g. a manifest that never went through the API server). We apply
  // the default.
  std::string restart_policy = StringOr(o, "/spec/restartPolicy", "Always");
  std::string status_message = StringOr(o, "/status/message");
  const Json* container_statuses = GetArray(o, "/status/containerStatuses");

  // Waiting-reason checks only for restartPolicy Always: a hook pod (OnFailure/Never) in
  // ImagePullBackOff must not fail the hook early (gitops-engine's reasoning).
  if (restart_policy == "Always" && container_statuses != nullptr) {
    std::vector<std::string> messages;
    for (const Json& cs : *container_statuses) {
      const Json* waiting = Member(Member(&cs, "state"), "waiting");
      if (waiting == nullptr || !waiting->is_object()) continue;
      std::string reason = AsString(Member(waiting, "reason")).value_or("");
      if (reason.starts_with("Err") || reason.ends_with("Error") || reason.ends_with("BackOff")) {
        messages.push_back(AsString(Member(waiting, "message")).value_or(""));
      }
    }
    if (!messages.empty()) return Make(HealthCode::kDegraded, absl::StrJoin(messages, ", "));
  }

  std::string phase = StringOr(o, "/status/phase");
  if (phase == "Pending") return Make(HealthCode::kProgressing, status_message);
  if (phase == "Succeeded") return Make(HealthCode::kHealthy, status_message);
  if (phase == "Failed") {
    if (!status_message.empty()) return Make(HealthCode::kDegraded, status_message);
    for (const char* path : {"/status/initContainerStatuses", "/status/containerStatuses"}) {
      const Json* list = GetArray(o, path);
      if (list == nullptr) continue;
      for (const Json& cs : *list) {
        std::string msg = ContainerFailMessage(cs);
        if (!msg.empty()) return Make(HealthCode::kDegraded, msg);
      }
    }
    return Make(HealthCode::kDegraded);
  }
  if (phase == "Running") {
    bool ignore_restart_policy = Member(GetObject(o, "/metadata/annotations"),
                                        "argocd.argoproj.io/ignore-restart-policy") != nullptr;
    if (!ignore_restart_policy && restart_policy != "Always") {
      // Pods with OnFailure/Never have a finite life (typically hooks): Running means the
      // work is not done yet.
      return Make(HealthCode::kProgressing, status_message);
    }
    std::vector<Condition> conditions = Conditions(o);
    const Condition* ready = FindCondition(conditions, "Ready");
    if (ready != nullptr && ready->status == "True") {
      return Make(HealthCode::kHealthy, status_message);
    }
    if (container_statuses != nullptr) {
      for (const Json& cs : *container_statuses) {
        const Json* last_terminated = Member(Member(&cs, "lastState"), "terminated");
        if (last_terminated != nullptr && !last_terminated->is_null()) {
          // gitops-engine reports status.message, which is usually empty here; we say
          // which container keeps failing.
          std::string msg = status_message;
          if (msg.empty()) msg = ContainerFailMessage(cs, "lastState");
          return Make(HealthCode::kDegraded, msg);
        }
      }
    }
    return Make(HealthCode::kProgressing, status_message);
  }
  return Make(HealthCode::kUnknown, status_message);
}

// --- batch ------------------------------------------------------------------------------

Health JobHealth(const Json& o) {
  bool failed = false, complete = false, suspended = false;
  std::string fail_message, message;
  for (const Condition& c : Conditions(o)) {
    // gitops-engine ignores the condition status for all three types. The Job controller
    // only ever sets Complete/Failed to True, but Suspended=False is what a resumed Job
    // carries; counting it as "complete" made resumed Jobs Healthy before they finished.
    if (c.status == "False") continue;
    if (c.type == "Failed") {
      failed = complete = true;
      fail_message = c.message;
    } else if (c.type == "Complete") {
      complete = true;
      message = c.message;
    } else if (c.type == "Suspended") {
      complete = true;
      message = c.message;
      suspended = c.status == "True";
    }
  }
  if (!complete) return Make(HealthCode::kProgressing, message);
  if (failed) return Make(HealthCode::kDegraded, fail_message);
  if (suspended) return Make(HealthCode::kSuspended, message);
  return Make(HealthCode::kHealthy, message);
}

// --- autoscaling ------------------------------------------------------------------------

Health HpaFromConditions(const std::vector<Condition>& conditions) {
  // The first condition that says something decides (gitops-engine checkConditions).
  for (const Condition& c : conditions) {
    bool degraded = (c.type == "AbleToScale" &&
                     (c.reason == "FailedGetScale" || c.reason == "FailedUpdateScale")) ||
                    (c.type == "ScalingActive" &&
                     (c.reason == "FailedGetResourceMetric" || c.reason == "InvalidSelector"));
    if (degraded) return Make(HealthCode::kDegraded, c.message);
    if ((c.type == "AbleToScale" || c.type == "ScalingLimited") && c.status == "True") {
      return Make(HealthCode::kHealthy, c.message);
    }
  }
  return Make(HealthCode::kProgressing, "Waiting to Autoscale");
}

Health HorizontalPodAutoscalerHealth(const Json& o) {
  std::string api_version = StringOr(o, "/apiVersion");
  if (api_version == "autoscaling/v1") {
    // v1 has no status.conditions; the controller writes them into an annotation.
    std::optional<std::string> annotation = AsString(Member(
        GetObject(o, "/metadata/annotations"), "autoscaling.alpha.kubernetes.io/conditions"));
    if (!annotation) return Make(HealthCode::kProgressing, "Waiting to Autoscale");
    Json parsed = Json::parse(*annotation, /*cb=*/nullptr, /*allow_exceptions=*/false);
    if (parsed.is_discarded() || !(parsed.is_array() || parsed.is_null())) {
      return Make(HealthCode::kUnknown,
                  "failed to parse the autoscaling.alpha.kubernetes.io/conditions annotation");
    }
    return HpaFromConditions(ConditionsFromArray(&parsed));
  }
  return HpaFromConditions(Conditions(o));
}

// --- apiregistration / apiextensions ----------------------------------------------------

Health ApiServiceHealth(const Json& o) {
  for (const Condition& c : Conditions(o)) {
    if (c.type != "Available") continue;
    return Make(c.status == "True" ? HealthCode::kHealthy : HealthCode::kProgressing,
                absl::StrCat(c.reason, ": ", c.message));
  }
  return Make(HealthCode::kProgressing, "Waiting to be processed");
}

Health CustomResourceDefinitionHealth(const Json& o) {
  std::vector<Condition> conditions = Conditions(o);
  if (conditions.empty()) return Make(HealthCode::kProgressing, "Status conditions not found");
  bool established = false, terminating = false, names_not_accepted = false, violations = false;
  std::string message;
  for (const Condition& c : conditions) {
    if (c.type == "Terminating" && c.status == "True") {
      terminating = true;
      message = c.message;
    } else if (c.type == "NamesAccepted" && c.status == "False") {
      names_not_accepted = true;
      message = c.message;
    } else if (c.type == "Established") {
      if (c.status == "True") {
        established = true;
      } else {
        message = c.message;
      }
    } else if (c.type == "NonStructuralSchema" && c.status == "True") {
      violations = true;
      message = c.message;
    }
  }
  if (terminating) {
    return Make(HealthCode::kProgressing, absl::StrCat("CRD is being terminated: ", message));
  }
  if (names_not_accepted) {
    return Make(HealthCode::kDegraded, absl::StrCat("CRD names have not been accepted: ", message));
  }
  if (!established) {
    return Make(HealthCode::kDegraded, absl::StrCat("CRD is not established: ", message));
  }
  if (violations) {
    return Make(HealthCode::kDegraded, absl::StrCat("Schema violations found: ", message));
  }
  return Make(HealthCode::kHealthy, "CRD is healthy");
}

// --- argoproj.io Workflow ---------------------------------------------------------------

Health ArgoWorkflowHealth(const Json& o) {
  std::string phase = StringOr(o, "/status/phase");
  std::string message = StringOr(o, "/status/message");
  if (phase.empty() || phase == "Pending" || phase == "Running") {
    return Make(HealthCode::kProgressing, message);
  }
  if (phase == "Succeeded") return Make(HealthCode::kHealthy, message);
  if (phase == "Failed" || phase == "Error") return Make(HealthCode::kDegraded, message);
  return Make(HealthCode::kUnknown, message);
}

struct Entry {
  std::string_view group;
  std::string_view kind;
  Check check;
};

constexpr Entry kCoreChecks[] = {
    {"apps", "Deployment", DeploymentHealth},
    {"apps", "StatefulSet", StatefulSetHealth},
    {"apps", "ReplicaSet", ReplicaSetHealth},
    {"apps", "DaemonSet", DaemonSetHealth},
    {"extensions", "Deployment", DeploymentHealth},
    {"extensions", "ReplicaSet", ReplicaSetHealth},
    {"extensions", "DaemonSet", DaemonSetHealth},
    {"extensions", "Ingress", IngressHealth},
    {"networking.k8s.io", "Ingress", IngressHealth},
    {"", "Service", ServiceHealth},
    {"", "PersistentVolumeClaim", PersistentVolumeClaimHealth},
    {"", "Pod", PodHealth},
    {"batch", "Job", JobHealth},
    {"autoscaling", "HorizontalPodAutoscaler", HorizontalPodAutoscalerHealth},
    {"apiregistration.k8s.io", "APIService", ApiServiceHealth},
    {"apiextensions.k8s.io", "CustomResourceDefinition", CustomResourceDefinitionHealth},
    {"argoproj.io", "Workflow", ArgoWorkflowHealth},
};

}  // namespace

Check FindCoreCheck(std::string_view group, std::string_view kind) {
  for (const Entry& e : kCoreChecks) {
    if (e.group == group && e.kind == kind) return e.check;
  }
  return nullptr;
}

}  // namespace driftless::health::internal
