// Validation of objects written to the emulator: names (DNS-1123), namespace presence in
// metadata, required fields of common built-in kinds, and strict decoding (unknown
// top-level and metadata fields) when fieldValidation=Strict.
//
// Thread-safety: pure functions.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/status/status.h"
#include "tools/kube-emulator/resources.h"

namespace driftless::kube_emulator {

// "" when `name` is a valid DNS-1123 subdomain, else the Kubernetes message.
std::string CheckDns1123Subdomain(std::string_view name);
// "" when `name` is a valid DNS-1123 label, else the Kubernetes message.
std::string CheckDns1123Label(std::string_view name);

// Errors: 422 Invalid (InvalidError) listing every problem found.
absl::Status ValidateObject(const ResourceType& rt, const nlohmann::json& object);

// Errors: 400 BadRequest "strict decoding error: unknown field \"spek\"" for unknown
// top-level/metadata fields of built-in kinds. Custom resources are checked against the
// top-level properties of `crd_schema` when it does not preserve unknown fields.
absl::Status CheckStrictFields(const ResourceType& rt, const nlohmann::json& object,
                               const nlohmann::json& crd_schema);

}  // namespace driftless::kube_emulator
