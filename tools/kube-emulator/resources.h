// The resource registry of the emulator: which kinds exist, where they are served, and the
// discovery and OpenAPI documents kubectl reads to find them.
//
// Built-in kinds come from a static table; CustomResourceDefinitions add their kinds (every
// served version) when created and remove them when deleted.
//
//   Registry reg;
//   std::shared_ptr<const ResourceType> rt = reg.Find("apps", "v1", "deployments");
//   Json doc = reg.AggregatedDiscovery(/*core=*/false, "v2");
//
// Thread-safety: Registry is safe for concurrent use (an internal shared mutex).
#pragma once

#include <memory>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/status/status.h"
#include "tools/kube-emulator/api_error.h"

namespace driftless::kube_emulator {

struct ResourceType {
  std::string group;    // "" for the core group
  std::string version;  // "v1"
  std::string kind;     // "Deployment"
  std::string plural;   // "deployments"
  std::string singular;
  bool namespaced = true;
  std::vector<std::string> short_names;
  std::vector<std::string> categories;
  bool has_status = false;  // status subresource
  bool has_scale = false;   // scale subresource (.spec.replicas / .status.replicas)
  bool custom = false;      // defined by a CRD
  std::string crd_name;     // "widgets.example.com" when custom

  std::string ApiVersion() const { return group.empty() ? version : group + "/" + version; }
  GroupResource Gr() const { return {group, plural}; }
  // Store key shared by all versions of the kind: "apps/deployments".
  std::string StoreKey() const { return group + "/" + plural; }
};

class Registry {
 public:
  // Starts with the built-in kinds.
  Registry();

  // nullptr when the group/version/plural is not served.
  std::shared_ptr<const ResourceType> Find(std::string_view group, std::string_view version,
                                           std::string_view plural) const;
  // By apiVersion ("apps/v1", "v1") and kind; nullptr when unknown.
  std::shared_ptr<const ResourceType> FindByKind(std::string_view api_version,
                                                 std::string_view kind) const;
  // Every served version of the store key (group/plural), preferred first.
  std::vector<std::shared_ptr<const ResourceType>> VersionsOf(std::string_view store_key) const;
  std::vector<std::shared_ptr<const ResourceType>> All() const;

  // Registers the kinds a CustomResourceDefinition defines (all served versions), replacing
  // any earlier registration of the same CRD. Errors: kInvalidArgument for a CRD lacking
  // spec.group, spec.names.plural/kind or served versions.
  absl::Status RegisterCrd(const Json& crd);
  void UnregisterCrd(std::string_view crd_name);
  // True if `version` of the CRD's group has a status subresource (from the CRD).
  // The OpenAPI v3 schema of a custom resource version, or null.
  Json CrdSchema(std::string_view group, std::string_view version, std::string_view kind) const;

  // Discovery documents.
  Json LegacyApiVersions() const;   // GET /api
  Json LegacyApiGroupList() const;  // GET /apis
  // GET /api/v1 or /apis/G/V; nullopt when the group version is not served.
  std::optional<Json> ApiResourceList(std::string_view group, std::string_view version) const;
  // Aggregated discovery (apidiscovery.k8s.io `disc_version`: "v2" or "v2beta1") for /api
  // (core=true) or /apis.
  Json AggregatedDiscovery(bool core, std::string_view disc_version) const;
  // OpenAPI v3: the root index and one group-version document (nullopt when not served).
  Json OpenApiV3Root() const;
  std::optional<Json> OpenApiV3GroupVersion(std::string_view group, std::string_view version) const;

 private:
  struct GroupVersion {
    std::string group;
    std::string version;
  };
  std::vector<GroupVersion> GroupVersionsLocked() const;
  std::vector<std::shared_ptr<const ResourceType>> InGroupVersionLocked(
      std::string_view group, std::string_view version) const;

  mutable std::shared_mutex mu_;
  std::vector<std::shared_ptr<const ResourceType>> types_;
  // CRD schemas: key "group/version/kind".
  std::vector<std::pair<std::string, Json>> crd_schemas_;
};

}  // namespace driftless::kube_emulator
