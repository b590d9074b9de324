// REST paths and query strings for the Kubernetes API, with escaping. Pure functions.
//
//   ResourcePath({.group = "apps", .version = "v1", .resource = "deployments",
//                 .namespaced = true}, "ns", "web")
//     == "/apis/apps/v1/namespaces/ns/deployments/web"
//   QueryString({{"labelSelector", "app=web"}, {"limit", "500"}})
//     == "?labelSelector=app%3Dweb&limit=500"
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "common/kube/kube_client.h"

namespace driftless::kube {

// Splits "apps/v1" into {"apps", "v1"} and "v1" into {"", "v1"}. kInvalidArgument for
// an empty string or more than one '/'.
absl::StatusOr<std::pair<std::string, std::string>> SplitApiVersion(std::string_view api_version);

// "/api/v1" for the core group, "/apis/<group>/<version>" otherwise.
std::string GroupVersionPath(std::string_view group, std::string_view version);

// The path of a collection (empty `name`) or object. `namespace_` is used only for
// namespaced resources; empty means all namespaces. `subresource` ("status", "scale")
// is appended when non-empty. Every segment is percent-escaped.
std::string ResourcePath(const ResourceInfo& resource, std::string_view namespace_,
                         std::string_view name, std::string_view subresource = "");

// Percent-escapes everything but RFC 3986 unreserved characters (A-Z a-z 0-9 - . _ ~).
std::string EscapeComponent(std::string_view s);

// "?k1=v1&k2=v2" with keys and values escaped, in the given order; pairs with an empty
// value are skipped; "" when nothing is left.
std::string QueryString(const std::vector<std::pair<std::string, std::string>>& params);

}  // namespace driftless::kube
