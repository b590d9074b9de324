// The built-in list/map table of merge::Schema: which lists of the Kubernetes built-in kinds
// are associative (list maps, sets) and which structs are atomic, from the Kubernetes API's
// +listType/+listMapKey/+structType markers. Paths are matched by their tail so the pod
// template works in Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob, ...
#include <string>

#include "common/merge/merge.h"

namespace driftless::merge {
namespace {

std::string RuleKey(std::string_view api_version, std::string_view kind,
                    const std::vector<std::string>& path) {
  std::string key;
  key.reserve(64);
  key.append(api_version).append("|").append(kind).append("|");
  for (size_t i = 0; i < path.size(); ++i) {
    if (i) key += '.';
    key += path[i];
  }
  return key;
}

// Core ("v1"), "apps/v1", "networking.k8s.io/v1", ...: groups without a dot or under
// *.k8s.io are built in; anything else is a custom resource.
bool IsBuiltIn(std::string_view api_version) {
  size_t slash = api_version.find('/');
  if (slash == std::string_view::npos) return true;
  std::string_view group = api_version.substr(0, slash);
  if (group.find('.') == std::string_view::npos) return true;
  constexpr std::string_view kSuffix = ".k8s.io";
  return group.size() > kSuffix.size() &&
         group.substr(group.size() - kSuffix.size()) == kSuffix;
}

bool IsContainerList(std::string_view f) {
  return f == "containers" || f == "initContainers" || f == "ephemeralContainers";
}

ListInfo Map(std::vector<std::string> keys, std::vector<Json> defaults = {}) {
  ListInfo info;
  info.type = ListType::kMap;
  info.keys = std::move(keys);
  info.key_defaults = std::move(defaults);
  return info;
}

}  // namespace

const Schema& Schema::BuiltIn() {
  static const Schema* schema = new Schema();
  return *schema;
}

ListInfo Schema::ListAt(std::string_view api_version, std::string_view kind,
                        const std::vector<std::string>& path) const {
  if (!lists_.empty()) {
    auto it = lists_.find(RuleKey(api_version, kind, path));
    if (it != lists_.end()) return it->second;
  }
  const size_t n = path.size();
  if (n == 0) return {};
  const std::string& last = path[n - 1];
  const std::string_view parent = n >= 2 ? std::string_view(path[n - 2]) : std::string_view();
  // ObjectMeta, in every kind.
  if (n == 2 && path[0] == "metadata") {
    if (last == "finalizers") return ListInfo{ListType::kSet, {}, {}};
    if (last == "ownerReferences") return Map({"uid"});
    return {};
  }
  if (!IsBuiltIn(api_version)) return {};

  if (IsContainerList(last) && parent == "spec") return Map({"name"});
  if (IsContainerList(parent)) {
    if (last == "ports") return Map({"containerPort", "protocol"}, {Json(), Json("TCP")});
    if (last == "env") return Map({"name"});
    if (last == "volumeMounts") return Map({"mountPath"});
    if (last == "volumeDevices") return Map({"devicePath"});
    return {};
  }
  if (parent == "spec") {
    if (last == "volumes" || last == "imagePullSecrets" || last == "resourceClaims" ||
        last == "schedulingGates") {
      return Map({"name"});
    }
    if (last == "hostAliases") return Map({"ip"});
    if (last == "topologySpreadConstraints") {
      return Map({"topologyKey", "whenUnsatisfiable"});
    }
    if (last == "ports" && kind == "Service" && n == 2) {
      return Map({"port", "protocol"}, {Json(), Json("TCP")});
    }
  }
  if (parent == "status") {
    if (last == "conditions") return Map({"type"});
    if (last == "podIPs" || last == "hostIPs") return Map({"ip"});
  }
  if (parent == "resources" && last == "claims") return Map({"name"});
  return {};
}

bool Schema::IsAtomicMap(std::string_view api_version, std::string_view kind,
                         const std::vector<std::string>& path) const {
  if (!atomic_maps_.empty() && atomic_maps_.count(RuleKey(api_version, kind, path)) > 0) {
    return true;
  }
  const size_t n = path.size();
  if (n == 0 || !IsBuiltIn(api_version)) return false;
  const std::string& last = path[n - 1];
  const std::string_view parent = n >= 2 ? std::string_view(path[n - 2]) : std::string_view();
  // metav1.LabelSelector and the small reference structs are +structType=atomic.
  if (last == "selector") return parent == "spec";
  if (last == "labelSelector" || last == "namespaceSelector" || last == "podSelector") {
    return true;
  }
  if (last == "configMapKeyRef" || last == "secretKeyRef" || last == "fieldRef" ||
      last == "resourceFieldRef") {
    return true;
  }
  if (last == "requiredDuringSchedulingIgnoredDuringExecution" && parent == "nodeAffinity") {
    return true;
  }
  return false;
}

void Schema::RegisterList(std::string_view api_version, std::string_view kind,
                          const std::vector<std::string>& path, ListInfo info) {
  lists_[RuleKey(api_version, kind, path)] = std::move(info);
}

void Schema::RegisterAtomicMap(std::string_view api_version, std::string_view kind,
                               const std::vector<std::string>& path) {
  atomic_maps_.insert(RuleKey(api_version, kind, path));
}

}  // namespace driftless::merge
