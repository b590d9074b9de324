#include "services/sync/app_spec.h"

#include <algorithm>
#include <cmath>

#include "common/config/units.h"
#include "common/manifest/object.h"

namespace driftless::sync {
namespace {

using manifest::Json;

const Json& Field(const Json& o, const char* key) {
  static const Json kNull;
  if (!o.is_object()) return kNull;
  auto it = o.find(key);
  return it == o.end() ? kNull : *it;
}

std::string Str(const Json& o, const char* key) {
  const Json& v = Field(o, key);
  return v.is_string() ? v.get<std::string>() : std::string();
}

bool Bool(const Json& o, const char* key) {
  const Json& v = Field(o, key);
  return v.is_boolean() && v.get<bool>();
}

std::vector<std::string> Strings(const Json& o, const char* key) {
  std::vector<std::string> out;
  const Json& v = Field(o, key);
  if (!v.is_array()) return out;
  for (const Json& s : v) {
    if (s.is_string()) out.push_back(s.get<std::string>());
  }
  return out;
}

}  // namespace

AppSpec ParseAppSpec(const Json& application) {
  AppSpec spec;
  spec.name = manifest::NameOf(application);
  const Json& s = Field(application, "spec");
  const Json& destination = Field(s, "destination");
  if (std::string cluster = Str(destination, "cluster"); !cluster.empty()) spec.cluster = cluster;
  spec.ns = Str(destination, "namespace");
  const Json& policy = Field(s, "syncPolicy");
  const Json& automated = Field(policy, "automated");
  spec.automated = automated.is_object();
  spec.auto_prune = Bool(automated, "prune");
  spec.self_heal = Bool(automated, "selfHeal");
  spec.suspend = Bool(policy, "suspend");
  for (const std::string& option : Strings(policy, "syncOptions")) {
    if (option == "CreateNamespace=true") spec.create_namespace = true;
    if (option == "ApplyOutOfSyncOnly=true") spec.apply_out_of_sync_only = true;
    if (option == "PruneLast=true") spec.prune_last = true;
    if (option == "ForceConflicts=false") spec.force_conflicts = false;
    constexpr std::string_view kPropagation = "PrunePropagationPolicy=";
    if (option.starts_with(kPropagation))
      spec.prune_propagation = option.substr(kPropagation.size());
  }
  spec.retry.limit = spec.automated ? kDefaultRetryLimit : 0;
  if (const Json& retry = Field(policy, "retry"); retry.is_object()) {
    spec.retry.explicit_policy = true;
    if (const Json& limit = Field(retry, "limit"); limit.is_number_integer()) {
      spec.retry.limit = limit.get<int>();
    }
    const Json& backoff = Field(retry, "backoff");
    auto duration = [&](const char* key, std::chrono::milliseconds* out) {
      if (absl::StatusOr<std::chrono::milliseconds> d = config::ParseDuration(Str(backoff, key));
          d.ok() && d->count() > 0) {
        *out = *d;
      }
    };
    duration("duration", &spec.retry.duration);
    duration("maxDuration", &spec.retry.max_duration);
    if (const Json& factor = Field(backoff, "factor");
        factor.is_number() && factor.get<double>() >= 1) {
      spec.retry.factor = factor.get<double>();
    }
  }
  const Json& ignore = Field(s, "ignoreDifferences");
  if (ignore.is_array()) {
    for (const Json& rule : ignore) {
      IgnoreRule r;
      r.group = Str(rule, "group");
      r.kind = Str(rule, "kind");
      r.name = Str(rule, "name");
      r.ns = Str(rule, "namespace");
      r.json_pointers = Strings(rule, "jsonPointers");
      r.managed_fields_managers = Strings(rule, "managedFieldsManagers");
      spec.ignore.push_back(std::move(r));
    }
  }
  return spec;
}

std::chrono::milliseconds RetryBackoff(const RetryPolicy& policy, int next_attempt) {
  const double scaled = static_cast<double>(policy.duration.count()) *
                        std::pow(policy.factor, std::max(0, next_attempt - 2));
  const double capped = std::min(scaled, static_cast<double>(policy.max_duration.count()));
  return std::chrono::milliseconds(static_cast<int64_t>(capped));
}

bool ShouldRetry(const AppSpec& spec, int attempt, bool transient) {
  if (spec.retry.limit == 0) return false;
  if (!spec.retry.explicit_policy && !transient) return false;
  return spec.retry.limit < 0 || attempt <= spec.retry.limit;
}

}  // namespace driftless::sync
