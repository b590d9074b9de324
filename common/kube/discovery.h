// Parsing of Kubernetes discovery documents into ResourceInfo lists. Pure functions.
//
// Aggregated discovery (apidiscovery.k8s.io v2 / v2beta1, one document each for /api and
// /apis) lists every group, version and resource at once. Older servers answer plain
// JSON: /api is an APIVersions, /apis an APIGroupList, and each /api/v1 or /apis/G/V an
// APIResourceList. Subresources ("deployments/status") are skipped in both forms.
#pragma once

#include <string>
#include <vector>

#include "common/kube/kube_client.h"

namespace driftless::kube {

// The Accept header that asks for aggregated discovery and falls back to plain JSON.
inline constexpr char kAggregatedDiscoveryAccept[] =
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,"
    "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,"
    "application/json";

// True if `doc` is an APIGroupDiscoveryList (kind checked, any apidiscovery version).
bool IsAggregatedDiscovery(const Json& doc);

// Resources of every group/version in an APIGroupDiscoveryList (from /api or /apis).
// kInvalidArgument if the document is malformed.
absl::StatusOr<std::vector<ResourceInfo>> ParseAggregatedDiscovery(const Json& doc);

// The group versions to fetch from a legacy /api (APIVersions: "v1") or /apis
// (APIGroupList: "apps/v1", ...) document. All served versions, preferred first.
absl::StatusOr<std::vector<std::string>> ParseLegacyGroupVersions(const Json& doc);

// Resources of one APIResourceList (legacy /api/v1 or /apis/G/V).
absl::StatusOr<std::vector<ResourceInfo>> ParseApiResourceList(const Json& doc);

// Finds apiVersion + kind in `resources`; nullptr if absent.
const ResourceInfo* FindResource(const std::vector<ResourceInfo>& resources,
                                 std::string_view api_version, std::string_view kind);

}  // namespace driftless::kube
