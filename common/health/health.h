// Resource health assessment: a pure function from one live Kubernetes object to a health
// code and a human message. Used by the applier (wait for health after a sync), the planner
// and the api (an application's health is the worst of its resources' health).
//
//   std::optional<health::Health> h = health::AssessHealth(live_object);
//   health::HealthCode code = h ? h->code : health::HealthCode::kHealthy;  // no check: Healthy
//   app_code = health::Worst(app_code, code);
//
// The rules follow Argo CD so that users moving from Argo CD see the same verdicts:
//  - built-in kinds as in argoproj/gitops-engine pkg/health: apps Deployment, StatefulSet,
//    ReplicaSet, DaemonSet (also extensions/*), core Service, PersistentVolumeClaim, Pod,
//    batch Job, autoscaling HorizontalPodAutoscaler (v1 annotation and v2 conditions),
//    networking.k8s.io/extensions Ingress, apiregistration.k8s.io APIService,
//    apiextensions.k8s.io CustomResourceDefinition, argoproj.io Workflow;
//  - the CRD rules Argo CD ships as Lua in resource_customizations/ for: batch CronJob,
//    cert-manager.io Certificate/Issuer/ClusterIssuer, every *.toolkit.fluxcd.io kind
//    (Kustomization, HelmRelease, GitRepository, HelmRepository, OCIRepository, Bucket,
//    HelmChart, ImageRepository, ImagePolicy, ImageUpdateAutomation, Receiver, ...),
//    external-secrets.io ExternalSecret/ClusterExternalSecret/SecretStore/
//    ClusterSecretStore/PushSecret, bitnami.com SealedSecret, argoproj.io Rollout and
//    apps.kruise.io CloneSet/StatefulSet/DaemonSet/BroadcastJob/AdvancedCronJob;
//  - for any other object, kstatus-like generic rules when status.conditions has a Ready,
//    Stalled or Reconciling condition (see AssessHealth below);
//  - an object with metadata.deletionTimestamp is Progressing "Pending deletion".
// Deliberate differences from Argo CD are commented next to the rule concerned
// (internal/core_checks.cc, internal/custom_checks.cc); the visible ones: Flux messages are
// "<Ready reason>: <Ready message>" (Argo CD: the reason only), a few empty gitops-engine
// messages are filled in, a resumed Job (Suspended=False) is Progressing, not Healthy, and a
// deleting object's message names the finalizers holding it.
//
// No rule needs the wall clock (Argo CD's do not either: progress deadlines are evaluated
// by the controllers and surface as conditions), so the API takes no `now`.
//
// Thread-safety: every function here is pure and may be called concurrently.
#pragma once

#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>

#include "common/manifest/manifest.h"

namespace driftless::health {

// Argo CD's health codes. The enumerator order is NOT the severity order: use Worst().
enum class HealthCode {
  kUnknown,      // assessment failed (e.g. an unparseable status); worst of all
  kProgressing,  // not healthy yet but still expected to become healthy
  kHealthy,      // 100% healthy
  kDegraded,     // failed, or cannot become healthy (e.g. progress deadline exceeded)
  kSuspended,    // paused or suspended on purpose (paused Deployment, suspended Job)
  kMissing,      // expected but not in the cluster (never returned by AssessHealth)
};

struct Health {
  HealthCode code = HealthCode::kUnknown;
  std::string message;  // may be empty

  friend bool operator==(const Health&, const Health&) = default;
};

// Assesses one live object (a JSON tree as produced by manifest::ParseYaml or the API
// server). Returns std::nullopt when there is no check for the object's kind: callers treat
// such an object as Healthy once it exists, like Argo CD does.
//
// Never throws, whatever the shape of the input: fields with an unexpected type (a string
// where a number is expected, an array where an object is expected, ...) are treated as
// absent. A non-object input returns std::nullopt.
//
// Generic rules, for kinds without a specific check (evaluated in this order):
//   metadata.generation > status.observedGeneration      -> Progressing
//   Stalled=True                                          -> Degraded (condition message)
//   Reconciling=True                                      -> Progressing
//   Ready=True                                            -> Healthy
//   Ready=False with a "still working" reason (Progressing, Reconciling, Pending,
//     Initializing, InProgress, Creating, Updating, Provisioning, Waiting*)  -> Progressing
//   Ready=False otherwise                                 -> Degraded
//   Ready=Unknown                                         -> Progressing
//   none of Ready/Stalled/Reconciling present             -> std::nullopt
std::optional<Health> AssessHealth(const manifest::Json& object);

// AssessHealth, with "no check" mapped to Healthy with an empty message.
Health AssessHealthOrHealthy(const manifest::Json& object);

// The worse of two codes in Argo CD's order (gitops-engine pkg/health/health.go,
// `healthOrder`, used by IsWorse and by Argo CD's application health roll-up):
//   Healthy < Suspended < Progressing < Missing < Degraded < Unknown
// Commutative and associative; Worst(a, kHealthy) == a.
HealthCode Worst(HealthCode a, HealthCode b);

// Severity rank of `code` in the order above: Healthy = 0 ... Unknown = 5.
int Severity(HealthCode code);

// "Healthy", "Progressing", ... exactly as Argo CD spells them.
std::string_view Name(HealthCode code);

// Inverse of Name (case-sensitive). std::nullopt for anything else.
std::optional<HealthCode> ParseHealthCode(std::string_view name);

// For logs and test failure output: "Degraded" and "Degraded: <message>".
std::ostream& operator<<(std::ostream& os, HealthCode code);
std::ostream& operator<<(std::ostream& os, const Health& health);

}  // namespace driftless::health
