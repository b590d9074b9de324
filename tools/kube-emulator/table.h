// meta.k8s.io/v1 Table output (what `kubectl get` asks for with
// Accept: application/json;as=Table;v=v1;g=meta.k8s.io): NAME and AGE for every kind, plus
// READY/STATUS-style columns for Pods, Deployments, StatefulSets, ReplicaSets, DaemonSets,
// Jobs, Namespaces, Services and CRDs.
//
// Thread-safety: pure functions.
#pragma once

#include <chrono>
#include <string>

#include <nlohmann/json.hpp>

#include "tools/kube-emulator/resources.h"

namespace driftless::kube_emulator {

// `objects` is an array of objects; `include_object` is "Object", "Metadata" (default:
// PartialObjectMetadata rows) or "None"; `resource_version`/`continue_token` go to the
// table's metadata.
Json ToTable(const ResourceType& rt, const Json& objects, const std::string& include_object,
             std::chrono::system_clock::time_point now, const std::string& resource_version,
             const std::string& continue_token = "");

// Kubernetes' duration.HumanDuration: "5s", "3m2s", "2d4h".
std::string HumanDuration(std::chrono::seconds d);

}  // namespace driftless::kube_emulator
