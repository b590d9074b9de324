#include "services/sync/live.h"

#include "common/manifest/object.h"
#include "common/strings/str.h"
#include "services/sync/plan.h"

namespace driftless::sync {

using manifest::Json;

v1::ObjectRef ProtoRefOf(const Json& object) {
  v1::ObjectRef ref;
  manifest::GroupVersion gv = manifest::ParseApiVersion(manifest::ApiVersionOf(object));
  ref.set_group(gv.group);
  ref.set_version(gv.version);
  ref.set_kind(manifest::KindOf(object));
  ref.set_namespace_(manifest::NamespaceOf(object));
  ref.set_name(manifest::NameOf(object));
  return ref;
}

kube::ObjectRef KubeRefOf(const v1::ObjectRef& ref) {
  return {.api_version =
              ref.group().empty() ? ref.version() : strings::Cat(ref.group(), "/", ref.version()),
          .kind = ref.kind(),
          .namespace_ = ref.namespace_(),
          .name = ref.name()};
}

std::string KeyOf(const v1::ObjectRef& ref) {
  return strings::Cat(ref.group(), "/", ref.kind(), "/", ref.namespace_(), "/", ref.name());
}

std::string DescribeRef(const v1::ObjectRef& ref) { return KubeRefOf(ref).ToString(); }

v1::HealthStatusCode ToProto(health::HealthCode code) {
  switch (code) {
    case health::HealthCode::kUnknown:
      return v1::HEALTH_STATUS_CODE_UNKNOWN;
    case health::HealthCode::kProgressing:
      return v1::HEALTH_STATUS_CODE_PROGRESSING;
    case health::HealthCode::kHealthy:
      return v1::HEALTH_STATUS_CODE_HEALTHY;
    case health::HealthCode::kDegraded:
      return v1::HEALTH_STATUS_CODE_DEGRADED;
    case health::HealthCode::kSuspended:
      return v1::HEALTH_STATUS_CODE_SUSPENDED;
    case health::HealthCode::kMissing:
      return v1::HEALTH_STATUS_CODE_MISSING;
  }
  return v1::HEALTH_STATUS_CODE_UNKNOWN;
}

health::HealthCode FromProto(v1::HealthStatusCode code) {
  switch (code) {
    case v1::HEALTH_STATUS_CODE_PROGRESSING:
      return health::HealthCode::kProgressing;
    case v1::HEALTH_STATUS_CODE_HEALTHY:
      return health::HealthCode::kHealthy;
    case v1::HEALTH_STATUS_CODE_DEGRADED:
      return health::HealthCode::kDegraded;
    case v1::HEALTH_STATUS_CODE_SUSPENDED:
      return health::HealthCode::kSuspended;
    case v1::HEALTH_STATUS_CODE_MISSING:
      return health::HealthCode::kMissing;
    default:
      return health::HealthCode::kUnknown;
  }
}

absl::StatusOr<std::vector<Json>> ListTracked(
    kube::KubeClient& kube, const std::string& application, const std::set<KindRef>& kinds,
    const std::set<std::string>& namespaces, std::map<std::string, Json>* all,
    const std::map<KindRef, std::set<std::string>>& cluster_names) {
  std::vector<Json> tracked;
  auto take = [&](kube::ListResult& result) {
    for (Json& item : result.items) {
      bool mine = manifest::AnnotationOf(item, kTrackingAnnotation) == application;
      if (mine) tracked.push_back(item);
      if (all) {
        std::string key = manifest::ObjectKey(item);  // before the move (operator= by value)
        (*all)[key] = std::move(item);
      }
    }
  };
  for (const KindRef& k : kinds) {
    absl::StatusOr<kube::ResourceInfo> info = kube.ResourceFor(k.api_version, k.kind);
    if (absl::IsNotFound(info.status())) continue;  // CRD gone: nothing of it to list
    if (!info.ok()) return info.status();
    if (auto named = cluster_names.find(k); !info->namespaced && named != cluster_names.end()) {
      for (const std::string& name : named->second) {
        absl::StatusOr<Json> object =
            kube.Get({.api_version = k.api_version, .kind = k.kind, .name = name});
        if (absl::IsNotFound(object.status())) continue;
        if (!object.ok()) return object.status();
        kube::ListResult one;
        one.items.push_back(*std::move(object));
        take(one);
      }
      continue;
    }
    std::vector<std::string> scopes;
    if (info->namespaced && !namespaces.empty()) {
      scopes.assign(namespaces.begin(), namespaces.end());
    } else {
      scopes.push_back("");
    }
    for (const std::string& ns : scopes) {
      absl::StatusOr<kube::ListResult> list =
          kube.List({.api_version = k.api_version, .kind = k.kind, .namespace_ = ns});
      if (absl::IsNotFound(list.status())) continue;
      if (!list.ok()) return list.status();
      take(*list);
    }
  }
  return tracked;
}

absl::StatusOr<service::ClusterFacts> ReadClusterFacts(kube::KubeClient& kube) {
  DL_ASSIGN_OR_RETURN(std::string version, kube.ServerVersion());
  DL_ASSIGN_OR_RETURN(std::vector<kube::ResourceInfo> resources, kube.Discover());
  std::vector<std::string> apis;
  for (const kube::ResourceInfo& r : resources) {
    apis.push_back(r.ApiVersion());
    apis.push_back(r.ApiVersion() + "/" + r.kind);
  }
  return service::MakeClusterFacts(std::move(version), std::move(apis));
}

ScopeLookup ClusterScope(kube::KubeClient& kube, absl::Status* error) {
  return
      [&kube, error](std::string_view api_version, std::string_view kind) -> std::optional<bool> {
        absl::StatusOr<kube::ResourceInfo> info = kube.ResourceFor(api_version, kind);
        if (info.ok()) return info->namespaced;
        if (!absl::IsNotFound(info.status())) *error = info.status();
        return std::nullopt;
      };
}

service::InputFetcher InputFetcherFor(kube::KubeClient& kube) {
  return [&kube](const service::InputRef& ref) -> absl::StatusOr<std::optional<manifest::Json>> {
    absl::StatusOr<manifest::Json> object = kube.Get(
        {.api_version = "v1", .kind = ref.kind, .namespace_ = ref.namespace_, .name = ref.name});
    if (absl::IsNotFound(object.status())) return std::optional<manifest::Json>();
    DL_RETURN_IF_ERROR(object.status());
    return std::optional<manifest::Json>(*std::move(object));
  };
}

bool IsTransient(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
    case absl::StatusCode::kInternal:
    case absl::StatusCode::kResourceExhausted:
    case absl::StatusCode::kUnknown:
      return true;
    default:
      return false;
  }
}

}  // namespace driftless::sync
