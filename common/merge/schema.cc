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
  return group.size() > kSuffix.size() && group.substr(group.size() - kSuffix.size()) == kSuffix;
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

namespace {

void WalkCrdSchema(Schema& schema, std::string_view api_version, std::string_view kind,
                   const Json& node, std::vector<std::string>& path) {
  if (!node.is_object()) return;
  const std::string type = node.value("type", std::string());
  if (!path.empty() && node.value("x-kubernetes-map-type", std::string()) == "atomic") {
    schema.RegisterAtomicMap(api_version, kind, path);
  }
  if (type == "array" || node.contains("items")) {
    const std::string list_type = node.value("x-kubernetes-list-type", std::string());
    const Json items = node.value("items", Json::object());
    if (list_type == "set") {
      schema.RegisterList(api_version, kind, path, ListInfo{ListType::kSet, {}, {}});
    } else if (list_type == "map") {
      ListInfo info;
      info.type = ListType::kMap;
      for (const auto& key : node.value("x-kubernetes-list-map-keys", Json::array())) {
        if (!key.is_string()) continue;
        info.keys.push_back(key.get<std::string>());
        Json def;
        if (items.is_object()) {
          const Json props = items.value("properties", Json::object());
          if (props.is_object() && props.contains(info.keys.back())) {
            def = props[info.keys.back()].value("default", Json());
          }
        }
        info.key_defaults.push_back(std::move(def));
      }
      if (!info.keys.empty()) schema.RegisterList(api_version, kind, path, std::move(info));
    } else if (list_type == "atomic") {
      schema.RegisterList(api_version, kind, path, ListInfo{});
    }
    WalkCrdSchema(schema, api_version, kind, items, path);  // items share the list's path
    return;
  }
  auto props = node.find("properties");
  if (props == node.end() || !props->is_object()) return;
  for (auto it = props->begin(); it != props->end(); ++it) {
    path.push_back(it.key());
    WalkCrdSchema(schema, api_version, kind, it.value(), path);
    path.pop_back();
  }
}

}  // namespace

void Schema::RegisterCrdSchema(std::string_view api_version, std::string_view kind,
                               const Json& open_api_v3_schema) {
  std::vector<std::string> path;
  WalkCrdSchema(*this, api_version, kind, open_api_v3_schema, path);
}

}  // namespace driftless::merge
