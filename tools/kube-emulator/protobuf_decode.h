// Minimal decoding of Kubernetes protobuf request bodies (magic "k8s\0" + runtime.Unknown)
// for the few kinds kubectl's typed generators send as protobuf: Namespace, ConfigMap and
// Secret (`kubectl create namespace|configmap|secret`). Only ObjectMeta name/generateName/
// namespace/labels/annotations and the kinds' data fields are understood.
//
// Thread-safety: pure.
#pragma once

#include <string_view>

#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"

namespace driftless::kube_emulator {

// Errors: kInvalidArgument for a malformed body, kUnimplemented for other kinds.
absl::StatusOr<nlohmann::json> DecodeKubernetesProtobuf(std::string_view body);

}  // namespace driftless::kube_emulator
