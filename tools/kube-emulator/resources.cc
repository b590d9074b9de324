#include "tools/kube-emulator/resources.h"

#include <algorithm>
#include <mutex>
#include <set>

namespace driftless::kube_emulator {
namespace {

using RT = ResourceType;

std::vector<std::shared_ptr<const ResourceType>> BuiltIns() {
  auto make = [](std::string g, std::string v, std::string kind, std::string plural, bool ns,
                 std::vector<std::string> shorts, bool status, bool scale,
                 std::vector<std::string> cats) {
    auto rt = std::make_shared<RT>();
    rt->group = std::move(g);
    rt->version = std::move(v);
    rt->kind = std::move(kind);
    rt->plural = std::move(plural);
    std::string s = rt->kind;
    std::transform(s.begin(), s.end(), s.begin(), ::tolower);
    rt->singular = s;
    rt->namespaced = ns;
    rt->short_names = std::move(shorts);
    rt->has_status = status;
    rt->has_scale = scale;
    rt->categories = std::move(cats);
    return std::shared_ptr<const RT>(rt);
  };
  const std::vector<std::string> all = {"all"};
  return {
      make("", "v1", "Namespace", "namespaces", false, {"ns"}, true, false, {}),
      make("", "v1", "ConfigMap", "configmaps", true, {"cm"}, false, false, {}),
      make("", "v1", "Secret", "secrets", true, {}, false, false, {}),
      make("", "v1", "Service", "services", true, {"svc"}, true, false, all),
      make("", "v1", "ServiceAccount", "serviceaccounts", true, {"sa"}, false, false, {}),
      make("", "v1", "Pod", "pods", true, {"po"}, true, false, all),
      make("", "v1", "Event", "events", true, {"ev"}, false, false, {}),
      make("", "v1", "Endpoints", "endpoints", true, {"ep"}, false, false, {}),
      make("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", true, {"pvc"}, true, false,
           {}),
      make("apps", "v1", "Deployment", "deployments", true, {"deploy"}, true, true, all),
      make("apps", "v1", "ReplicaSet", "replicasets", true, {"rs"}, true, true, all),
      make("apps", "v1", "StatefulSet", "statefulsets", true, {"sts"}, true, true, all),
      make("apps", "v1", "DaemonSet", "daemonsets", true, {"ds"}, true, false, all),
      make("batch", "v1", "Job", "jobs", true, {}, true, false, all),
      make("batch", "v1", "CronJob", "cronjobs", true, {"cj"}, true, false, all),
      make("networking.k8s.io", "v1", "Ingress", "ingresses", true, {"ing"}, true, false, {}),
      make("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies", true, {"netpol"}, false,
           false, {}),
      make("rbac.authorization.k8s.io", "v1", "Role", "roles", true, {}, false, false, {}),
      make("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", true, {}, false, false,
           {}),
      make("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", false, {}, false,
           false, {}),
      make("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings", false,
           {}, false, false, {}),
      make("autoscaling", "v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers", true,
           {"hpa"}, true, false, all),
      make("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", true, {"pdb"}, true,
           false, {}),
      make("apiextensions.k8s.io", "v1", "CustomResourceDefinition", "customresourcedefinitions",
           false, {"crd", "crds"}, true, false, {}),
  };
}

const std::vector<std::string>& Verbs() {
  static const std::vector<std::string> v = {"create", "delete", "deletecollection", "get",
                                             "list",   "patch",  "update",           "watch"};
  return v;
}

// ---- OpenAPI v3 schema construction (small, table-driven) ----

Json Str(const char* desc = "") { return {{"type", "string"}, {"description", desc}}; }
Json Int() { return {{"type", "integer"}, {"format", "int32"}}; }
Json Bool() { return {{"type", "boolean"}}; }
Json MapStr() {
  return {{"type", "object"}, {"additionalProperties", {{"type", "string"}, {"default", ""}}}};
}
Json AnyObj() { return {{"type", "object"}, {"x-kubernetes-preserve-unknown-fields", true}}; }
Json IntOrString() { return {{"x-kubernetes-int-or-string", true}}; }
Json Obj(std::initializer_list<std::pair<const std::string, Json>> props,
         std::vector<std::string> required = {}) {
  Json j = {{"type", "object"}, {"properties", Json(std::map<std::string, Json>(props))}};
  if (!required.empty()) j["required"] = required;
  return j;
}
Json Arr(Json items) { return {{"type", "array"}, {"items", std::move(items)}}; }
Json AtomicArr(Json items) {
  Json j = Arr(std::move(items));
  j["x-kubernetes-list-type"] = "atomic";
  return j;
}
Json ListMap(Json items, std::vector<std::string> keys, const std::string& merge_key) {
  Json j = Arr(std::move(items));
  j["x-kubernetes-list-type"] = "map";
  j["x-kubernetes-list-map-keys"] = keys;
  j["x-kubernetes-patch-merge-key"] = merge_key;
  j["x-kubernetes-patch-strategy"] = "merge";
  return j;
}
Json Ref(const std::string& name) {
  return {{"allOf", Json::array({{{"$ref", "#/components/schemas/" + name}}})},
          {"default", Json::object()}};
}

const char* kObjectMeta = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";
const char* kPodSpec = "io.k8s.api.core.v1.PodSpec";
const char* kContainer = "io.k8s.api.core.v1.Container";
const char* kLabelSelector = "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector";
const char* kPodTemplate = "io.k8s.api.core.v1.PodTemplateSpec";

Json ObjectMetaSchema() {
  Json owner = Obj({{"apiVersion", Str()},
                    {"kind", Str()},
                    {"name", Str()},
                    {"uid", Str()},
                    {"controller", Bool()},
                    {"blockOwnerDeletion", Bool()}},
                   {"apiVersion", "kind", "name", "uid"});
  Json j = Obj({{"name", Str("Name must be unique within a namespace.")},
                {"generateName", Str()},
                {"namespace", Str("Namespace defines the space within which each name must be "
                                  "unique.")},
                {"uid", Str()},
                {"resourceVersion", Str()},
                {"generation", {{"type", "integer"}, {"format", "int64"}}},
                {"creationTimestamp", Str()},
                {"deletionTimestamp", Str()},
                {"deletionGracePeriodSeconds", {{"type", "integer"}, {"format", "int64"}}},
                {"labels", MapStr()},
                {"annotations", MapStr()},
                {"finalizers",
                 {{"type", "array"},
                  {"items", {{"type", "string"}, {"default", ""}}},
                  {"x-kubernetes-list-type", "set"},
                  {"x-kubernetes-patch-strategy", "merge"}}},
                {"ownerReferences", ListMap(owner, {"uid"}, "uid")},
                {"managedFields", AtomicArr(AnyObj())}});
  j["description"] = "ObjectMeta is metadata that all persisted resources must have.";
  return j;
}

Json ContainerSchema() {
  Json port = Obj({{"name", Str()},
                   {"containerPort", Int()},
                   {"hostPort", Int()},
                   {"protocol", Str()},
                   {"hostIP", Str()}},
                  {"containerPort"});
  Json env_var = Obj({{"name", Str()}, {"value", Str()}, {"valueFrom", AnyObj()}}, {"name"});
  Json mount =
      Obj({{"name", Str()}, {"mountPath", Str()}, {"subPath", Str()}, {"readOnly", Bool()}},
          {"name", "mountPath"});
  Json probe = Obj({{"httpGet", Obj({{"path", Str()},
                                     {"port", IntOrString()},
                                     {"scheme", Str()},
                                     {"host", Str()},
                                     {"httpHeaders", AtomicArr(AnyObj())}})},
                    {"tcpSocket", Obj({{"port", IntOrString()}, {"host", Str()}})},
                    {"exec", Obj({{"command", AtomicArr(Str())}})},
                    {"grpc", AnyObj()},
                    {"initialDelaySeconds", Int()},
                    {"periodSeconds", Int()},
                    {"timeoutSeconds", Int()},
                    {"successThreshold", Int()},
                    {"failureThreshold", Int()}});
  Json resources = Obj({{"limits", MapStr()}, {"requests", MapStr()}, {"claims", AnyObj()}});
  Json j = Obj({{"name", Str("Name of the container specified as a DNS_LABEL.")},
                {"image", Str("Container image name.")},
                {"command", AtomicArr(Str())},
                {"args", AtomicArr(Str())},
                {"workingDir", Str()},
                {"ports", ListMap(port, {"containerPort", "protocol"}, "containerPort")},
                {"env", ListMap(env_var, {"name"}, "name")},
                {"envFrom", AtomicArr(AnyObj())},
                {"resources", resources},
                {"volumeMounts", ListMap(mount, {"mountPath"}, "mountPath")},
                {"livenessProbe", probe},
                {"readinessProbe", probe},
                {"startupProbe", probe},
                {"lifecycle", AnyObj()},
                {"imagePullPolicy", Str()},
                {"securityContext", AnyObj()},
                {"stdin", Bool()},
                {"tty", Bool()},
                {"terminationMessagePath", Str()},
                {"terminationMessagePolicy", Str()}},
               {"name"});
  j["description"] = "A single application container that you want to run within a pod.";
  return j;
}

Json PodSpecSchema() {
  Json volume = AnyObj();
  volume["required"] = {"name"};
  Json named = Obj({{"name", Str()}});
  Json j = Obj({{"containers", ListMap(Ref(kContainer), {"name"}, "name")},
                {"initContainers", ListMap(Ref(kContainer), {"name"}, "name")},
                {"ephemeralContainers", ListMap(AnyObj(), {"name"}, "name")},
                {"volumes", ListMap(volume, {"name"}, "name")},
                {"imagePullSecrets", ListMap(named, {"name"}, "name")},
                {"serviceAccountName", Str()},
                {"serviceAccount", Str()},
                {"automountServiceAccountToken", Bool()},
                {"nodeSelector", MapStr()},
                {"nodeName", Str()},
                {"tolerations", AtomicArr(AnyObj())},
                {"affinity", AnyObj()},
                {"securityContext", AnyObj()},
                {"restartPolicy", Str()},
                {"terminationGracePeriodSeconds", {{"type", "integer"}, {"format", "int64"}}},
                {"hostNetwork", Bool()},
                {"dnsPolicy", Str()},
                {"priorityClassName", Str()},
                {"schedulerName", Str()},
                {"topologySpreadConstraints", AtomicArr(AnyObj())},
                {"hostname", Str()},
                {"subdomain", Str()}},
               {"containers"});
  j["description"] = "PodSpec is a description of a pod.";
  return j;
}

Json SelectorSchema() {
  Json req =
      Obj({{"key", Str()}, {"operator", Str()}, {"values", AtomicArr(Str())}}, {"key", "operator"});
  return Obj({{"matchLabels", MapStr()}, {"matchExpressions", AtomicArr(req)}});
}

// Spec schema of a built-in kind (shallow where the kind is rarely patched field by field).
Json SpecSchema(const std::string& kind) {
  Json tmpl = Ref(kPodTemplate);
  if (kind == "Deployment" || kind == "ReplicaSet" || kind == "StatefulSet" ||
      kind == "DaemonSet") {
    Json j = Obj({{"replicas", Int()},
                  {"selector", Ref(kLabelSelector)},
                  {"template", tmpl},
                  {"minReadySeconds", Int()},
                  {"revisionHistoryLimit", Int()},
                  {"progressDeadlineSeconds", Int()},
                  {"paused", Bool()},
                  {"strategy", AnyObj()},
                  {"updateStrategy", AnyObj()},
                  {"serviceName", Str()},
                  {"podManagementPolicy", Str()},
                  {"volumeClaimTemplates", AtomicArr(AnyObj())},
                  {"persistentVolumeClaimRetentionPolicy", AnyObj()},
                  {"ordinals", AnyObj()}},
                 {"selector", "template"});
    return j;
  }
  if (kind == "Pod") return Ref(kPodSpec);
  if (kind == "Job") {
    return Obj({{"template", tmpl},
                {"selector", Ref(kLabelSelector)},
                {"parallelism", Int()},
                {"completions", Int()},
                {"backoffLimit", Int()},
                {"activeDeadlineSeconds", Int()},
                {"ttlSecondsAfterFinished", Int()},
                {"completionMode", Str()},
                {"suspend", Bool()},
                {"manualSelector", Bool()},
                {"podFailurePolicy", AnyObj()}},
               {"template"});
  }
  if (kind == "CronJob") {
    Json job_tmpl = Obj({{"metadata", Ref(kObjectMeta)}, {"spec", AnyObj()}});
    return Obj({{"schedule", Str()},
                {"jobTemplate", job_tmpl},
                {"suspend", Bool()},
                {"concurrencyPolicy", Str()},
                {"timeZone", Str()},
                {"startingDeadlineSeconds", Int()},
                {"successfulJobsHistoryLimit", Int()},
                {"failedJobsHistoryLimit", Int()}},
               {"schedule", "jobTemplate"});
  }
  if (kind == "Service") {
    Json port = Obj({{"name", Str()},
                     {"protocol", Str()},
                     {"port", Int()},
                     {"targetPort", IntOrString()},
                     {"nodePort", Int()},
                     {"appProtocol", Str()}},
                    {"port"});
    return Obj({{"ports", ListMap(port, {"port", "protocol"}, "port")},
                {"selector", MapStr()},
                {"type", Str()},
                {"clusterIP", Str()},
                {"clusterIPs", AtomicArr(Str())},
                {"externalName", Str()},
                {"sessionAffinity", Str()},
                {"externalTrafficPolicy", Str()},
                {"internalTrafficPolicy", Str()},
                {"ipFamilies", AtomicArr(Str())},
                {"ipFamilyPolicy", Str()},
                {"loadBalancerIP", Str()},
                {"externalIPs", AtomicArr(Str())},
                {"publishNotReadyAddresses", Bool()},
                {"loadBalancerSourceRanges", AtomicArr(Str())}});
  }
  return AnyObj();
}

Json KindSchema(const ResourceType& rt) {
  Json props = {{"apiVersion", Str("APIVersion defines the versioned schema of this "
                                   "representation of an object.")},
                {"kind", Str("Kind is a string value representing the REST resource this "
                             "object represents.")},
                {"metadata", Ref(kObjectMeta)}};
  const std::string& k = rt.kind;
  if (k == "ConfigMap") {
    props["data"] = MapStr();
    props["binaryData"] = {{"type", "object"},
                           {"additionalProperties", {{"type", "string"}, {"format", "byte"}}}};
    props["immutable"] = Bool();
  } else if (k == "Secret") {
    props["data"] = {{"type", "object"},
                     {"additionalProperties", {{"type", "string"}, {"format", "byte"}}}};
    props["stringData"] = MapStr();
    props["type"] = Str();
    props["immutable"] = Bool();
  } else if (k == "ServiceAccount") {
    props["secrets"] = AtomicArr(AnyObj());
    props["imagePullSecrets"] = AtomicArr(AnyObj());
    props["automountServiceAccountToken"] = Bool();
  } else if (k == "Role" || k == "ClusterRole") {
    props["rules"] = AtomicArr(AnyObj());
    if (k == "ClusterRole") props["aggregationRule"] = AnyObj();
  } else if (k == "RoleBinding" || k == "ClusterRoleBinding") {
    props["subjects"] = AtomicArr(AnyObj());
    props["roleRef"] = AnyObj();
  } else if (k == "Endpoints") {
    props["subsets"] = AtomicArr(AnyObj());
  } else if (k == "Event") {
    for (const char* f : {"involvedObject", "source", "series", "related"}) props[f] = AnyObj();
    for (const char* f : {"reason", "message", "type", "firstTimestamp", "lastTimestamp",
                          "eventTime", "action", "reportingComponent", "reportingInstance"}) {
      props[f] = Str();
    }
    props["count"] = Int();
  } else {
    props["spec"] = SpecSchema(k);
    props["status"] = AnyObj();
  }
  Json j = {{"type", "object"},
            {"description", rt.kind + " (emulated by driftless-kube-emulator)."},
            {"properties", props},
            {"x-kubernetes-group-version-kind",
             Json::array({{{"group", rt.group}, {"kind", rt.kind}, {"version", rt.version}}})}};
  return j;
}

std::string SchemaName(const ResourceType& rt) {
  if (rt.custom) {
    // Reverse-domain name as Kubernetes publishes CRD schemas: com.example.v1.Widget.
    std::string g = rt.group, out;
    std::vector<std::string> parts;
    size_t start = 0;
    while (true) {
      size_t dot = g.find('.', start);
      parts.push_back(g.substr(start, dot - start));
      if (dot == std::string::npos) break;
      start = dot + 1;
    }
    for (auto it = parts.rbegin(); it != parts.rend(); ++it) out += *it + ".";
    return out + rt.version + "." + rt.kind;
  }
  std::string g = rt.group.empty() ? "core" : rt.group;
  size_t dot = g.find('.');
  if (dot != std::string::npos) g = g.substr(0, dot);
  if (rt.group == "apiextensions.k8s.io") {
    return "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1." + rt.kind;
  }
  return "io.k8s.api." + g + "." + rt.version + "." + rt.kind;
}

Json QueryParam(const char* name, const char* type = "string") {
  return {{"name", name}, {"in", "query"}, {"schema", {{"type", type}, {"uniqueItems", true}}}};
}

Json Operation(const ResourceType& rt, const std::string& action, const std::string& schema,
               bool list = false) {
  Json params = Json::array();
  if (action == "patch") {
    params = {QueryParam("dryRun"), QueryParam("fieldManager"), QueryParam("fieldValidation"),
              QueryParam("force", "boolean")};
  } else if (action == "put" || action == "post") {
    params = {QueryParam("dryRun"), QueryParam("fieldManager"), QueryParam("fieldValidation")};
  } else if (action == "delete") {
    params = {QueryParam("dryRun"), QueryParam("gracePeriodSeconds", "integer"),
              QueryParam("propagationPolicy")};
  } else if (list) {
    params = {QueryParam("labelSelector"),
              QueryParam("fieldSelector"),
              QueryParam("limit", "integer"),
              QueryParam("continue"),
              QueryParam("resourceVersion"),
              QueryParam("watch", "boolean"),
              QueryParam("allowWatchBookmarks", "boolean"),
              QueryParam("timeoutSeconds", "integer")};
  }
  Json content = {{"application/json", {{"schema", {{"$ref", "#/components/schemas/" + schema}}}}}};
  Json op = {{"operationId", action + rt.kind},
             {"parameters", params},
             {"responses", {{"200", {{"description", "OK"}, {"content", content}}}}},
             {"x-kubernetes-action", list ? "list" : action},
             {"x-kubernetes-group-version-kind",
              {{"group", rt.group}, {"version", rt.version}, {"kind", rt.kind}}}};
  if (action == "patch" || action == "put" || action == "post") {
    op["requestBody"] = {{"content", content}, {"required", true}};
  }
  return op;
}

Json ResourceDiscoveryV2(const ResourceType& rt) {
  Json r = {{"resource", rt.plural},
            {"responseKind", {{"group", rt.group}, {"version", rt.version}, {"kind", rt.kind}}},
            {"scope", rt.namespaced ? "Namespaced" : "Cluster"},
            {"singularResource", rt.singular},
            {"verbs", Verbs()}};
  if (!rt.short_names.empty()) r["shortNames"] = rt.short_names;
  if (!rt.categories.empty()) r["categories"] = rt.categories;
  Json subs = Json::array();
  if (rt.has_status) {
    subs.push_back(
        {{"subresource", "status"},
         {"responseKind", {{"group", rt.group}, {"version", rt.version}, {"kind", rt.kind}}},
         {"verbs", {"get", "patch", "update"}}});
  }
  if (rt.has_scale) {
    subs.push_back(
        {{"subresource", "scale"},
         {"responseKind", {{"group", "autoscaling"}, {"version", "v1"}, {"kind", "Scale"}}},
         {"verbs", {"get", "patch", "update"}}});
  }
  if (!subs.empty()) r["subresources"] = subs;
  return r;
}

}  // namespace

Registry::Registry() : types_(BuiltIns()) {}

std::shared_ptr<const ResourceType> Registry::Find(std::string_view group, std::string_view version,
                                                   std::string_view plural) const {
  std::shared_lock lock(mu_);
  for (const auto& t : types_) {
    if (t->group == group && t->version == version && t->plural == plural) return t;
  }
  return nullptr;
}

std::shared_ptr<const ResourceType> Registry::FindByKind(std::string_view api_version,
                                                         std::string_view kind) const {
  std::shared_lock lock(mu_);
  for (const auto& t : types_) {
    if (t->kind == kind && t->ApiVersion() == api_version) return t;
  }
  return nullptr;
}

std::vector<std::shared_ptr<const ResourceType>> Registry::VersionsOf(
    std::string_view store_key) const {
  std::shared_lock lock(mu_);
  std::vector<std::shared_ptr<const ResourceType>> out;
  for (const auto& t : types_) {
    if (t->StoreKey() == store_key) out.push_back(t);
  }
  return out;
}

std::vector<std::shared_ptr<const ResourceType>> Registry::All() const {
  std::shared_lock lock(mu_);
  return types_;
}

absl::Status Registry::RegisterCrd(const Json& crd) {
  const Json& spec = crd.value("spec", Json::object());
  std::string group = spec.value("group", "");
  const Json& names = spec.value("names", Json::object());
  std::string plural = names.value("plural", "");
  std::string kind = names.value("kind", "");
  if (group.empty() || plural.empty() || kind.empty()) {
    return absl::InvalidArgumentError("CRD lacks spec.group or spec.names.plural/kind");
  }
  std::string name = crd.value("metadata", Json::object()).value("name", "");
  std::vector<std::shared_ptr<const ResourceType>> added;
  std::vector<std::pair<std::string, Json>> schemas;
  const Json versions = spec.value("versions", Json::array());
  // Storage version first so it is the preferred one.
  std::vector<Json> ordered;
  for (const Json& v : versions) {
    if (v.value("storage", false))
      ordered.insert(ordered.begin(), v);
    else
      ordered.push_back(v);
  }
  for (const Json& v : ordered) {
    if (!v.value("served", true)) continue;
    auto rt = std::make_shared<RT>();
    rt->group = group;
    rt->version = v.value("name", "");
    rt->kind = kind;
    rt->plural = plural;
    std::string singular = names.value("singular", "");
    if (singular.empty()) {
      singular = kind;
      std::transform(singular.begin(), singular.end(), singular.begin(), ::tolower);
    }
    rt->singular = singular;
    rt->namespaced = spec.value("scope", "Namespaced") == "Namespaced";
    if (names.contains("shortNames") && names["shortNames"].is_array()) {
      for (const auto& s : names["shortNames"]) {
        if (s.is_string()) rt->short_names.push_back(s.get<std::string>());
      }
    }
    if (names.contains("categories") && names["categories"].is_array()) {
      for (const auto& s : names["categories"]) {
        if (s.is_string()) rt->categories.push_back(s.get<std::string>());
      }
    }
    const Json subs = v.value("subresources", Json::object());
    rt->has_status = subs.contains("status");
    rt->has_scale = subs.contains("scale");
    rt->custom = true;
    rt->crd_name = name;
    if (rt->version.empty()) continue;
    added.push_back(rt);
    Json schema = v.value("schema", Json::object()).value("openAPIV3Schema", Json());
    if (!schema.is_null()) schemas.emplace_back(group + "/" + rt->version + "/" + kind, schema);
  }
  if (added.empty()) return absl::InvalidArgumentError("CRD serves no version");
  UnregisterCrd(name);
  std::unique_lock lock(mu_);
  for (auto& a : added) types_.push_back(a);
  for (auto& s : schemas) crd_schemas_.push_back(std::move(s));
  return absl::OkStatus();
}

void Registry::UnregisterCrd(std::string_view crd_name) {
  std::unique_lock lock(mu_);
  std::set<std::string> keys;
  for (const auto& t : types_) {
    if (t->custom && t->crd_name == crd_name)
      keys.insert(t->group + "/" + t->version + "/" + t->kind);
  }
  types_.erase(std::remove_if(types_.begin(), types_.end(),
                              [&](const auto& t) { return t->custom && t->crd_name == crd_name; }),
               types_.end());
  crd_schemas_.erase(std::remove_if(crd_schemas_.begin(), crd_schemas_.end(),
                                    [&](const auto& s) { return keys.count(s.first) > 0; }),
                     crd_schemas_.end());
}

Json Registry::CrdSchema(std::string_view group, std::string_view version,
                         std::string_view kind) const {
  std::shared_lock lock(mu_);
  std::string key = std::string(group) + "/" + std::string(version) + "/" + std::string(kind);
  for (const auto& s : crd_schemas_) {
    if (s.first == key) return s.second;
  }
  return nullptr;
}

std::vector<Registry::GroupVersion> Registry::GroupVersionsLocked() const {
  std::vector<GroupVersion> out;
  for (const auto& t : types_) {
    bool seen = false;
    for (const auto& gv : out) seen = seen || (gv.group == t->group && gv.version == t->version);
    if (!seen) out.push_back({t->group, t->version});
  }
  return out;
}

std::vector<std::shared_ptr<const ResourceType>> Registry::InGroupVersionLocked(
    std::string_view group, std::string_view version) const {
  std::vector<std::shared_ptr<const ResourceType>> out;
  for (const auto& t : types_) {
    if (t->group == group && t->version == version) out.push_back(t);
  }
  return out;
}

Json Registry::LegacyApiVersions() const {
  return {{"kind", "APIVersions"},
          {"versions", {"v1"}},
          {"serverAddressByClientCIDRs",
           Json::array({{{"clientCIDR", "0.0.0.0/0"}, {"serverAddress", "127.0.0.1"}}})}};
}

Json Registry::LegacyApiGroupList() const {
  std::shared_lock lock(mu_);
  Json groups = Json::array();
  std::vector<std::string> order;
  for (const auto& gv : GroupVersionsLocked()) {
    if (gv.group.empty()) continue;
    if (std::find(order.begin(), order.end(), gv.group) == order.end()) order.push_back(gv.group);
  }
  for (const auto& g : order) {
    Json versions = Json::array();
    for (const auto& gv : GroupVersionsLocked()) {
      if (gv.group != g) continue;
      versions.push_back({{"groupVersion", g + "/" + gv.version}, {"version", gv.version}});
    }
    groups.push_back({{"name", g}, {"versions", versions}, {"preferredVersion", versions[0]}});
  }
  return {{"kind", "APIGroupList"}, {"apiVersion", "v1"}, {"groups", groups}};
}

std::optional<Json> Registry::ApiResourceList(std::string_view group,
                                              std::string_view version) const {
  std::shared_lock lock(mu_);
  auto types = InGroupVersionLocked(group, version);
  if (types.empty()) return std::nullopt;
  Json resources = Json::array();
  for (const auto& t : types) {
    Json r = {{"name", t->plural},
              {"singularName", t->singular},
              {"namespaced", t->namespaced},
              {"kind", t->kind},
              {"verbs", Verbs()}};
    if (!t->short_names.empty()) r["shortNames"] = t->short_names;
    if (!t->categories.empty()) r["categories"] = t->categories;
    resources.push_back(r);
    if (t->has_status) {
      resources.push_back({{"name", t->plural + "/status"},
                           {"singularName", ""},
                           {"namespaced", t->namespaced},
                           {"kind", t->kind},
                           {"verbs", {"get", "patch", "update"}}});
    }
    if (t->has_scale) {
      resources.push_back({{"name", t->plural + "/scale"},
                           {"singularName", ""},
                           {"namespaced", t->namespaced},
                           {"group", "autoscaling"},
                           {"version", "v1"},
                           {"kind", "Scale"},
                           {"verbs", {"get", "patch", "update"}}});
    }
  }
  std::string gv =
      group.empty() ? std::string(version) : std::string(group) + "/" + std::string(version);
  return Json{{"kind", "APIResourceList"},
              {"apiVersion", "v1"},
              {"groupVersion", gv},
              {"resources", resources}};
}

Json Registry::AggregatedDiscovery(bool core, std::string_view disc_version) const {
  std::shared_lock lock(mu_);
  Json items = Json::array();
  std::vector<std::string> order;
  for (const auto& gv : GroupVersionsLocked()) {
    if (core != gv.group.empty()) continue;
    if (std::find(order.begin(), order.end(), gv.group) == order.end()) order.push_back(gv.group);
  }
  for (const auto& g : order) {
    Json versions = Json::array();
    for (const auto& gv : GroupVersionsLocked()) {
      if (gv.group != g) continue;
      Json resources = Json::array();
      for (const auto& t : InGroupVersionLocked(gv.group, gv.version)) {
        resources.push_back(ResourceDiscoveryV2(*t));
      }
      versions.push_back(
          {{"version", gv.version}, {"resources", resources}, {"freshness", "Current"}});
    }
    Json meta = {{"creationTimestamp", nullptr}};
    if (!g.empty()) meta["name"] = g;
    items.push_back({{"metadata", meta}, {"versions", versions}});
  }
  return {{"kind", "APIGroupDiscoveryList"},
          {"apiVersion", "apidiscovery.k8s.io/" + std::string(disc_version)},
          {"metadata", Json::object()},
          {"items", items}};
}

Json Registry::OpenApiV3Root() const {
  std::shared_lock lock(mu_);
  Json paths = Json::object();
  for (const auto& gv : GroupVersionsLocked()) {
    std::string p = gv.group.empty() ? "api/" + gv.version : "apis/" + gv.group + "/" + gv.version;
    // The hash changes when the set of kinds in the group version changes so kubectl's
    // cache notices CRD registrations.
    std::string sig;
    for (const auto& t : InGroupVersionLocked(gv.group, gv.version)) sig += t->kind + ",";
    paths[p] = {{"serverRelativeURL",
                 "/openapi/v3/" + p + "?hash=" + std::to_string(std::hash<std::string>{}(sig))}};
  }
  return {{"paths", paths}};
}

std::optional<Json> Registry::OpenApiV3GroupVersion(std::string_view group,
                                                    std::string_view version) const {
  std::shared_lock lock(mu_);
  auto types = InGroupVersionLocked(group, version);
  if (types.empty()) return std::nullopt;
  Json paths = Json::object();
  Json schemas = Json::object();
  schemas[kObjectMeta] = ObjectMetaSchema();
  bool pods = false;
  for (const auto& t : types) {
    std::string base =
        t->group.empty() ? "/api/" + t->version : "/apis/" + t->group + "/" + t->version;
    std::string coll =
        t->namespaced ? base + "/namespaces/{namespace}/" + t->plural : base + "/" + t->plural;
    std::string name = SchemaName(*t);
    paths[coll] = {{"get", Operation(*t, "list", name, true)},
                   {"post", Operation(*t, "post", name)}};
    paths[coll + "/{name}"] = {{"get", Operation(*t, "get", name)},
                               {"put", Operation(*t, "put", name)},
                               {"patch", Operation(*t, "patch", name)},
                               {"delete", Operation(*t, "delete", name)}};
    if (t->custom) {
      Json s = Json::object();
      std::string key = t->group + "/" + t->version + "/" + t->kind;
      for (const auto& cs : crd_schemas_) {
        if (cs.first == key) s = cs.second;
      }
      if (s.empty()) s = AnyObj();
      if (!s.contains("type")) s["type"] = "object";
      if (!s.contains("properties")) s["properties"] = Json::object();
      s["properties"]["metadata"] = Ref(kObjectMeta);
      s["properties"]["apiVersion"] = Str();
      s["properties"]["kind"] = Str();
      s["x-kubernetes-group-version-kind"] =
          Json::array({{{"group", t->group}, {"kind", t->kind}, {"version", t->version}}});
      schemas[name] = s;
    } else {
      schemas[name] = KindSchema(*t);
      pods = true;
    }
  }
  if (pods) {
    schemas[kPodSpec] = PodSpecSchema();
    schemas[kContainer] = ContainerSchema();
    schemas[kLabelSelector] = SelectorSchema();
    schemas[kPodTemplate] = Obj({{"metadata", Ref(kObjectMeta)}, {"spec", Ref(kPodSpec)}});
  }
  return Json{{"openapi", "3.0.0"},
              {"info", {{"title", "Kubernetes"}, {"version", "v1.32.3"}}},
              {"paths", paths},
              {"components", {{"schemas", schemas}}}};
}

}  // namespace driftless::kube_emulator
