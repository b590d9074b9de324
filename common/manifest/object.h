// Small accessors over Kubernetes objects in the manifest object model, safe on objects of
// any shape (they never throw: a missing or mistyped field reads as empty).
#pragma once

#include <string>
#include <string_view>

#include "common/manifest/manifest.h"

namespace driftless::manifest {

// "apps/v1" -> {"apps", "v1"}; "v1" -> {"", "v1"}.
struct GroupVersion {
  std::string group;
  std::string version;
};
GroupVersion ParseApiVersion(std::string_view api_version);

std::string ApiVersionOf(const Json& object);
std::string KindOf(const Json& object);
std::string NameOf(const Json& object);
std::string NamespaceOf(const Json& object);
std::string GroupOf(const Json& object);

// metadata.annotations[key] / metadata.labels[key], or "" when absent.
std::string AnnotationOf(const Json& object, std::string_view key);
std::string LabelOf(const Json& object, std::string_view key);

// Identity across versions: "<group>/<kind>/<namespace>/<name>" (group "" for core).
std::string ObjectKey(const Json& object);

// For messages: "apps/v1 Deployment web/api" (namespace/name, or name when cluster-scoped).
std::string Describe(const Json& object);

// For messages where the apiVersion is noise: "Deployment api" ("object" / "<unnamed>" when
// kind or name is missing).
std::string KindAndName(const Json& object);

}  // namespace driftless::manifest
