// The per-kind health rules behind health::AssessHealth. Each takes the whole live object
// and must not throw (see fields.h). Split by origin:
//   core_checks.cc    built-in kinds of argoproj/gitops-engine pkg/health
//   custom_checks.cc  CRD rules Argo CD ships as Lua (resource_customizations/)
//   generic_check.cc  kstatus-like rules for any object with Ready/Stalled/Reconciling
#pragma once

#include <optional>
#include <string_view>

#include "common/health/health.h"
#include "common/manifest/manifest.h"

namespace driftless::health::internal {

using Check = Health (*)(const manifest::Json& object);

// The specific check for (API group, kind), or nullptr. `group` is "" for the core group.
Check FindCoreCheck(std::string_view group, std::string_view kind);
Check FindCustomCheck(std::string_view group, std::string_view kind);

// Generic rules; std::nullopt when the object carries none of the conditions they read.
std::optional<Health> GenericHealth(const manifest::Json& object);

}  // namespace driftless::health::internal
