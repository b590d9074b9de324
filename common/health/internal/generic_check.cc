// kstatus-like generic health for objects without a specific rule (custom resources that
// follow the Kubernetes API conventions for status.conditions). See health.h for the table.
// Modelled on sigs.k8s.io/cli-utils pkg/kstatus: Stalled and Reconciling are
// "abnormal-true" conditions, Ready is the summary condition, and an unobserved generation
// means the status describes an older spec. Unlike kstatus, Ready=False is Degraded unless
// its reason says the controller is still working, because most controllers set Ready=False
// only once something failed.
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/health/internal/checks.h"
#include "common/health/internal/fields.h"

namespace driftless::health::internal {
namespace {

using manifest::Json;

constexpr std::string_view kWorkingReasons[] = {
    "Progressing", "Reconciling", "Pending",      "Initializing", "InProgress",
    "Creating",    "Updating",    "Provisioning", "Deploying",    "Scaling",
};

bool IsWorkingReason(std::string_view reason) {
  for (std::string_view r : kWorkingReasons) {
    if (reason == r) return true;
  }
  return reason.starts_with("Waiting");
}

std::string Describe(const Condition& c) {
  if (!c.message.empty()) return c.message;
  if (!c.reason.empty()) return c.reason;
  return absl::StrCat(c.type, " is ", c.status);
}

}  // namespace

std::optional<Health> GenericHealth(const Json& o) {
  std::vector<Condition> conditions = Conditions(o);
  const Condition* ready = FindCondition(conditions, "Ready");
  const Condition* stalled = FindCondition(conditions, "Stalled");
  const Condition* reconciling = FindCondition(conditions, "Reconciling");
  if (ready == nullptr && stalled == nullptr && reconciling == nullptr) return std::nullopt;

  std::optional<int64_t> generation = GetInt(o, "/metadata/generation");
  std::optional<int64_t> observed = GetInt(o, "/status/observedGeneration");
  if (generation && observed && *observed < *generation) {
    return Health{HealthCode::kProgressing,
                  absl::StrCat("Waiting for generation ", *generation,
                               " to be observed (status is for generation ", *observed, ")")};
  }
  if (stalled != nullptr && stalled->status == "True") {
    return Health{HealthCode::kDegraded, Describe(*stalled)};
  }
  if (reconciling != nullptr && reconciling->status == "True") {
    return Health{HealthCode::kProgressing, Describe(*reconciling)};
  }
  if (ready == nullptr) {
    // Only Stalled/Reconciling present and not True: nothing abnormal, nothing to wait for.
    return Health{HealthCode::kHealthy, ""};
  }
  if (ready->status == "True") return Health{HealthCode::kHealthy, ready->message};
  if (ready->status == "False") {
    return Health{IsWorkingReason(ready->reason) ? HealthCode::kProgressing : HealthCode::kDegraded,
                  Describe(*ready)};
  }
  return Health{HealthCode::kProgressing, Describe(*ready)};
}

}  // namespace driftless::health::internal
