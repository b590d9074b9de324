#include "tools/kube-emulator/validation.h"

#include <chrono>
#include <cstdio>
#include <ctime>
#include <regex>
#include <set>

#include "tools/kube-emulator/clock.h"

namespace driftless::kube_emulator {

std::string Rfc3339(std::chrono::system_clock::time_point t) {
  std::time_t tt = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

bool ParseRfc3339(const std::string& s, std::chrono::system_clock::time_point* out) {
  std::tm tm{};
  int y, mo, d, h, mi, sec;
  if (std::sscanf(s.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d", &y, &mo, &d, &h, &mi, &sec) != 6) {
    return false;
  }
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = sec;
  *out = std::chrono::system_clock::from_time_t(timegm(&tm));
  return true;
}

namespace {

bool IsAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

bool LabelOk(std::string_view s) {
  if (s.empty() || s.size() > 63) return false;
  if (!IsAlnum(s.front()) || !IsAlnum(s.back())) return false;
  for (char c : s) {
    if (!IsAlnum(c) && c != '-') return false;
  }
  return true;
}

using Json = nlohmann::json;

const std::set<std::string>& MetaFields() {
  static const std::set<std::string> f = {"name",
                                          "generateName",
                                          "namespace",
                                          "selfLink",
                                          "uid",
                                          "resourceVersion",
                                          "generation",
                                          "creationTimestamp",
                                          "deletionTimestamp",
                                          "deletionGracePeriodSeconds",
                                          "labels",
                                          "annotations",
                                          "ownerReferences",
                                          "finalizers",
                                          "managedFields"};
  return f;
}

std::set<std::string> TopFields(const std::string& kind) {
  std::set<std::string> f = {"apiVersion", "kind", "metadata"};
  auto add = [&](std::initializer_list<const char*> l) {
    for (const char* s : l) f.insert(s);
  };
  if (kind == "ConfigMap")
    add({"data", "binaryData", "immutable"});
  else if (kind == "Secret")
    add({"data", "stringData", "type", "immutable"});
  else if (kind == "ServiceAccount")
    add({"secrets", "imagePullSecrets", "automountServiceAccountToken"});
  else if (kind == "Role")
    add({"rules"});
  else if (kind == "ClusterRole")
    add({"rules", "aggregationRule"});
  else if (kind == "RoleBinding" || kind == "ClusterRoleBinding")
    add({"subjects", "roleRef"});
  else if (kind == "Endpoints")
    add({"subsets"});
  else if (kind == "Event")
    add({"involvedObject", "reason", "message", "source", "firstTimestamp", "lastTimestamp",
         "count", "type", "eventTime", "series", "action", "related", "reportingComponent",
         "reportingInstance"});
  else
    add({"spec", "status"});
  return f;
}

}  // namespace

std::string CheckDns1123Subdomain(std::string_view name) {
  bool ok = !name.empty() && name.size() <= 253;
  if (ok) {
    size_t start = 0;
    while (true) {
      size_t dot = name.find('.', start);
      std::string_view part =
          name.substr(start, dot == std::string_view::npos ? name.npos : dot - start);
      if (!LabelOk(part) && !(part.size() > 63 ? false : false)) {
        // Parts may be up to 253 long in a subdomain; re-check without the 63 limit.
        bool inner = !part.empty() && IsAlnum(part.front()) && IsAlnum(part.back());
        for (char c : part) inner = inner && (IsAlnum(c) || c == '-');
        if (!inner) {
          ok = false;
          break;
        }
      }
      if (dot == std::string_view::npos) break;
      start = dot + 1;
    }
  }
  if (ok) return "";
  if (name.size() > 253) return "must be no more than 253 characters";
  return "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
         "'-' or '.', and must start and end with an alphanumeric character (e.g. "
         "'example.com', regex used for validation is "
         "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
}

std::string CheckDns1123Label(std::string_view name) {
  if (LabelOk(name)) return "";
  if (name.size() > 63) return "must be no more than 63 characters";
  return "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or "
         "'-', and must start and end with an alphanumeric character (e.g. 'my-name',  or "
         "'123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
}

absl::Status ValidateObject(const ResourceType& rt, const Json& object) {
  std::vector<StatusCause> causes;
  const Json meta = object.value("metadata", Json::object());
  std::string name = meta.value("name", "");
  auto invalid = [&](const std::string& field, const Json& value, const std::string& msg) {
    causes.push_back({"FieldValueInvalid", "Invalid value: " + value.dump() + ": " + msg, field});
  };
  auto required = [&](const std::string& field) {
    causes.push_back({"FieldValueRequired", "Required value", field});
  };
  if (name.empty()) {
    causes.push_back({"FieldValueRequired", "Required value: name or generateName is required",
                      "metadata.name"});
  } else {
    bool label = rt.kind == "Namespace" || rt.kind == "Service";
    std::string msg = label ? CheckDns1123Label(name) : CheckDns1123Subdomain(name);
    if (rt.group == "rbac.authorization.k8s.io" && name.find('/') == std::string::npos &&
        name.find('%') == std::string::npos) {
      msg.clear();  // RBAC names are path segments ("system:aggregate-to-edit").
    }
    if (!msg.empty()) invalid("metadata.name", name, msg);
  }
  if (meta.contains("labels") && !meta["labels"].is_object() && !meta["labels"].is_null()) {
    invalid("metadata.labels", meta["labels"], "must be a map of strings");
  }
  const Json spec = object.value("spec", Json::object());
  auto check_pod_spec = [&](const Json& ps, const std::string& prefix) {
    if (!ps.is_object() || !ps.contains("containers") || !ps["containers"].is_array() ||
        ps["containers"].empty()) {
      required(prefix + ".containers");
      return;
    }
    for (size_t i = 0; i < ps["containers"].size(); ++i) {
      const Json& c = ps["containers"][i];
      std::string p = prefix + ".containers[" + std::to_string(i) + "]";
      if (!c.is_object() || !c.contains("name")) {
        required(p + ".name");
        continue;
      }
      if (!c.contains("image") ||
          (c["image"].is_string() && c["image"].get<std::string>().empty())) {
        required(p + ".image");
      }
    }
  };
  if (!rt.custom) {
    if (rt.kind == "Deployment" || rt.kind == "ReplicaSet" || rt.kind == "StatefulSet" ||
        rt.kind == "DaemonSet") {
      if (!spec.contains("selector")) required("spec.selector");
      if (!spec.contains("template")) {
        required("spec.template");
      } else {
        check_pod_spec(spec["template"].value("spec", Json()), "spec.template.spec");
      }
      if (spec.contains("replicas") && spec["replicas"].is_number_integer() &&
          spec["replicas"].get<long long>() < 0) {
        invalid("spec.replicas", spec["replicas"], "must be greater than or equal to 0");
      }
    } else if (rt.kind == "Pod") {
      check_pod_spec(spec, "spec");
    } else if (rt.kind == "Job") {
      if (!spec.contains("template")) required("spec.template");
    } else if (rt.kind == "CronJob") {
      if (!spec.contains("schedule")) required("spec.schedule");
      if (!spec.contains("jobTemplate")) required("spec.jobTemplate");
    } else if (rt.kind == "CustomResourceDefinition") {
      if (!spec.contains("group")) required("spec.group");
      const Json names = spec.value("names", Json::object());
      if (!names.contains("plural")) required("spec.names.plural");
      if (!names.contains("kind")) required("spec.names.kind");
      std::string expected = names.value("plural", "") + "." + spec.value("group", "");
      if (names.contains("plural") && spec.contains("group") && name != expected) {
        invalid("metadata.name", name, "must be spec.names.plural+\".\"+spec.group");
      }
      if (!spec.contains("versions") || !spec["versions"].is_array() || spec["versions"].empty()) {
        required("spec.versions");
      }
    }
  }
  if (causes.empty()) return absl::OkStatus();
  return InvalidError(rt.group, rt.kind, name, causes);
}

absl::Status CheckStrictFields(const ResourceType& rt, const Json& object, const Json& crd_schema) {
  std::vector<std::string> unknown;
  if (!rt.custom) {
    std::set<std::string> allowed = TopFields(rt.kind);
    for (const auto& [k, v] : object.items()) {
      if (!allowed.count(k)) unknown.push_back(k);
    }
  } else if (crd_schema.is_object() &&
             !crd_schema.value("x-kubernetes-preserve-unknown-fields", false) &&
             crd_schema.contains("properties")) {
    for (const auto& [k, v] : object.items()) {
      if (k == "apiVersion" || k == "kind" || k == "metadata") continue;
      if (!crd_schema["properties"].contains(k)) unknown.push_back(k);
    }
  }
  if (object.contains("metadata") && object["metadata"].is_object()) {
    for (const auto& [k, v] : object["metadata"].items()) {
      if (!MetaFields().count(k)) unknown.push_back("metadata." + k);
    }
  }
  if (unknown.empty()) return absl::OkStatus();
  std::string msg = "strict decoding error: ";
  for (size_t i = 0; i < unknown.size(); ++i) {
    if (i > 0) msg += ", ";
    msg += "unknown field \"" + unknown[i] + "\"";
  }
  return BadRequestError(msg);
}

}  // namespace driftless::kube_emulator
