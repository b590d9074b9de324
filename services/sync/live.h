// Shared by the planner and the applier shells: object references in both vocabularies
// (driftless.v1.ObjectRef, kube::ObjectRef, manifest object keys), health codes on the
// wire, and reading an application's tracked objects from a cluster.
#pragma once

#include <set>
#include <string>
#include <vector>

#include "common/health/health.h"
#include "common/kube/kube_client.h"
#include "common/manifest/manifest.h"
#include "common/status/status.h"
#include "driftless/v1/events.pb.h"
#include "services/common/render_inputs.h"
#include "services/sync/plan.h"

namespace driftless::sync {

namespace v1 = ::driftless::v1;

v1::ObjectRef ProtoRefOf(const manifest::Json& object);
kube::ObjectRef KubeRefOf(const v1::ObjectRef& ref);
// manifest::ObjectKey of the object `ref` names: "<group>/<kind>/<namespace>/<name>".
std::string KeyOf(const v1::ObjectRef& ref);
// "apps/v1 Deployment web/api", like manifest::Describe.
std::string DescribeRef(const v1::ObjectRef& ref);

v1::HealthStatusCode ToProto(health::HealthCode code);
health::HealthCode FromProto(v1::HealthStatusCode code);

// One kind to list: apiVersion + kind.
struct KindRef {
  std::string api_version;
  std::string kind;
  auto operator<=>(const KindRef&) const = default;
};

// The live objects carrying `driftless.dev/application: <application>` among `kinds`:
// namespaced kinds are listed in each of `namespaces` (all namespaces when it is empty).
// Cluster-scoped kinds named in `cluster_names` are read by name, one GET each (a plan's cost
// must not grow with the cluster: a List of every Namespace per plan made the whole fleet
// quadratic); the other cluster-scoped kinds are listed cluster-wide. Kinds the cluster does
// not serve are skipped. Also returns every object read (tracked or not) by
// manifest::ObjectKey in `*all` when set. Errors: the cluster's (kUnavailable when
// unreachable), naming the kind.
absl::StatusOr<std::vector<manifest::Json>> ListTracked(
    kube::KubeClient& kube, const std::string& application, const std::set<KindRef>& kinds,
    const std::set<std::string>& namespaces, std::map<std::string, manifest::Json>* all,
    const std::map<KindRef, std::set<std::string>>& cluster_names = {});

// What renders need from the cluster (services/common/render_inputs.h), read as the planner
// and `driftless render --kubeconfig` read it: the server's version and its API list (group
// versions and "<group version>/<Kind>"), and the ConfigMaps/Secrets of render-input
// references (nullopt when one does not exist).
absl::StatusOr<service::ClusterFacts> ReadClusterFacts(kube::KubeClient& kube);
service::InputFetcher InputFetcherFor(kube::KubeClient& kube);

// PrepareOptions::is_namespaced from the cluster's discovery (cached by the client): nullopt
// for a kind the cluster does not serve; any other error is kept in `*error` (the caller
// retries or reports it after PrepareDesired), with nullopt. `kube` and `error` must outlive
// the lookup.
ScopeLookup ClusterScope(kube::KubeClient& kube, absl::Status* error);

// True for errors worth retrying later (cluster unreachable, throttled, timeouts, 5xx).
bool IsTransient(const absl::Status& status);

}  // namespace driftless::sync
