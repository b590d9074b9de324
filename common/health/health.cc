#include "common/health/health.h"

#include <array>
#include <ostream>

#include "absl/strings/str_join.h"
#include "common/health/internal/checks.h"
#include "common/health/internal/fields.h"

namespace driftless::health {
namespace {

using internal::Check;

// Severity order, most healthy first (gitops-engine health.go `healthOrder`).
constexpr std::array<HealthCode, 6> kOrder = {
    HealthCode::kHealthy, HealthCode::kSuspended, HealthCode::kProgressing,
    HealthCode::kMissing, HealthCode::kDegraded,  HealthCode::kUnknown,
};

}  // namespace

std::optional<Health> AssessHealth(const manifest::Json& object) {
  if (!object.is_object()) return std::nullopt;

  // Deleting objects are Progressing whatever their kind (gitops-engine checks this first).
  // Unlike gitops-engine we name the finalizers holding the object, as Argo CD's newer Lua
  // checks do; gitops-engine's exemption for its own hook finalizer is not needed because
  // driftless hooks do not use finalizers.
  if (internal::Present(object, "/metadata/deletionTimestamp")) {
    std::vector<std::string> finalizers;
    if (const manifest::Json* list = internal::GetArray(object, "/metadata/finalizers")) {
      for (const manifest::Json& f : *list) {
        if (f.is_string()) finalizers.push_back(f.get<std::string>());
      }
    }
    if (finalizers.empty()) return Health{HealthCode::kProgressing, "Pending deletion"};
    return Health{HealthCode::kProgressing,
                  "Pending deletion; blocked by finalizers: " + absl::StrJoin(finalizers, ", ")};
  }

  std::string api_version = internal::StringOr(object, "/apiVersion");
  std::string kind = internal::StringOr(object, "/kind");
  std::string_view group;
  if (size_t slash = api_version.find('/'); slash != std::string::npos) {
    group = std::string_view(api_version).substr(0, slash);
  }
  if (Check check = internal::FindCoreCheck(group, kind)) return check(object);
  if (Check check = internal::FindCustomCheck(group, kind)) return check(object);
  return internal::GenericHealth(object);
}

Health AssessHealthOrHealthy(const manifest::Json& object) {
  std::optional<Health> h = AssessHealth(object);
  if (h) return *std::move(h);
  return Health{HealthCode::kHealthy, ""};
}

int Severity(HealthCode code) {
  for (size_t i = 0; i < kOrder.size(); ++i) {
    if (kOrder[i] == code) return static_cast<int>(i);
  }
  return static_cast<int>(kOrder.size()) - 1;  // out-of-range enum values: as bad as Unknown
}

HealthCode Worst(HealthCode a, HealthCode b) { return Severity(b) > Severity(a) ? b : a; }

std::string_view Name(HealthCode code) {
  switch (code) {
    case HealthCode::kUnknown:
      return "Unknown";
    case HealthCode::kProgressing:
      return "Progressing";
    case HealthCode::kHealthy:
      return "Healthy";
    case HealthCode::kDegraded:
      return "Degraded";
    case HealthCode::kSuspended:
      return "Suspended";
    case HealthCode::kMissing:
      return "Missing";
  }
  return "Unknown";
}

std::optional<HealthCode> ParseHealthCode(std::string_view name) {
  for (HealthCode code : kOrder) {
    if (Name(code) == name) return code;
  }
  return std::nullopt;
}

std::ostream& operator<<(std::ostream& os, HealthCode code) { return os << Name(code); }

std::ostream& operator<<(std::ostream& os, const Health& health) {
  os << health.code;
  if (!health.message.empty()) os << ": " << health.message;
  return os;
}

}  // namespace driftless::health
