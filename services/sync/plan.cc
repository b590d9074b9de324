#include "services/sync/plan.h"

#include <algorithm>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "common/manifest/object.h"
#include "services/sync/drift.h"

namespace driftless::sync {
namespace {

using manifest::Json;

bool PruneProtected(const Json& o) { return HasSyncOption(o, "Prune=false"); }

// A Kubernetes label value: at most 63 characters, alphanumerics with '-', '_' and '.'
// inside.
bool IsLabelValue(std::string_view v) {
  if (v.empty() || v.size() > 63) return false;
  auto alnum = [](char c) { return absl::ascii_isalnum(static_cast<unsigned char>(c)); };
  if (!alnum(v.front()) || !alnum(v.back())) return false;
  return std::all_of(v.begin(), v.end(),
                     [&](char c) { return alnum(c) || c == '-' || c == '_' || c == '.'; });
}

}  // namespace

std::optional<bool> BuiltInScope(std::string_view api_version, std::string_view kind) {
  const std::string group = manifest::ParseApiVersion(api_version).group;
  // SIG projects installed as CRDs under k8s.io names, widespread enough to know.
  if (group == "gateway.networking.k8s.io" || group == "snapshot.storage.k8s.io") {
    return kind != "GatewayClass" && kind != "VolumeSnapshotClass" &&
           kind != "VolumeSnapshotContent";
  }
  if (!group.empty() && group.find('.') != std::string::npos && !group.ends_with(".k8s.io")) {
    return std::nullopt;  // a CRD's group (example.com, cert-manager.io, cluster.x-k8s.io, ...)
  }
  static const std::set<std::string, std::less<>> kClusterScoped = {
      "APIService",
      "CertificateSigningRequest",
      "ClusterRole",
      "ClusterRoleBinding",
      "ComponentStatus",
      "CSIDriver",
      "CSINode",
      "CustomResourceDefinition",
      "FlowSchema",
      "IngressClass",
      "MutatingWebhookConfiguration",
      "Namespace",
      "Node",
      "PersistentVolume",
      "PriorityClass",
      "PriorityLevelConfiguration",
      "RuntimeClass",
      "SelfSubjectAccessReview",
      "SelfSubjectReview",
      "SelfSubjectRulesReview",
      "StorageClass",
      "SubjectAccessReview",
      "TokenReview",
      "ValidatingAdmissionPolicy",
      "ValidatingAdmissionPolicyBinding",
      "ValidatingWebhookConfiguration",
      "VolumeAttachment"};
  return !kClusterScoped.contains(kind);
}

std::string_view ActionName(Action action) {
  switch (action) {
    case Action::kNone:
      return "none";
    case Action::kCreate:
      return "create";
    case Action::kUpdate:
      return "update";
    case Action::kDelete:
      return "delete";
  }
  return "none";
}

absl::StatusOr<std::vector<Json>> PrepareDesired(std::vector<Json> objects,
                                                 const PrepareOptions& options) {
  // Hooks this version does not run: Helm's test/rollback/delete hooks (never, as in Argo CD)
  // and hooks named by generateName (each run creates a new object: that is the sync engine's
  // hook runner, not server-side apply of a tracked object).
  std::erase_if(objects, [](const Json& o) {
    return IsSkippedHook(o) || (manifest::NameOf(o).empty() && o.contains("metadata") &&
                                o["metadata"].contains("generateName"));
  });
  const bool label = IsLabelValue(options.application);
  // CRDs rendered alongside their custom resources define those kinds' scope.
  std::map<std::string, bool> crd_scope;  // "group/kind" -> namespaced
  for (const Json& o : objects) {
    if (manifest::KindOf(o) != "CustomResourceDefinition") continue;
    const Json& spec = o.contains("spec") ? o["spec"] : Json();
    if (!spec.is_object()) continue;
    const std::string group = spec.value("group", "");
    const std::string kind =
        spec.contains("names") && spec["names"].is_object() ? spec["names"].value("kind", "") : "";
    crd_scope[group + "/" + kind] = spec.value("scope", "Namespaced") == "Namespaced";
  }
  bool has_destination_namespace = false;
  for (Json& o : objects) {
    const std::string api_version = manifest::ApiVersionOf(o);
    const std::string kind = manifest::KindOf(o);
    std::optional<bool> namespaced;
    if (options.is_namespaced) namespaced = options.is_namespaced(api_version, kind);
    if (!namespaced) {
      auto it = crd_scope.find(manifest::ParseApiVersion(api_version).group + "/" + kind);
      if (it != crd_scope.end()) namespaced = it->second;
    }
    if (!namespaced && options.on_unknown_scope) {
      options.on_unknown_scope(api_version, kind);
      namespaced = true;
    }
    if (!namespaced) {
      return absl::InvalidArgumentError(manifest::Describe(o) + ": the cluster does not know " +
                                        api_version + " " + kind +
                                        " (is its CustomResourceDefinition installed?)");
    }
    Json& md = o["metadata"];
    const std::string ns = manifest::NamespaceOf(o);
    if (*namespaced && ns.empty()) {
      if (options.destination_namespace.empty()) {
        return absl::InvalidArgumentError(
            manifest::Describe(o) +
            ": metadata.namespace is not set and the application has no destination namespace");
      }
      md["namespace"] = options.destination_namespace;
    } else if (!*namespaced && !ns.empty()) {
      return absl::InvalidArgumentError(manifest::Describe(o) + ": " + kind +
                                        " is cluster-scoped but metadata.namespace is \"" + ns +
                                        "\"");
    } else if (!*namespaced && md.contains("namespace")) {
      md.erase("namespace");
    }
    if (!md.contains("annotations") || !md["annotations"].is_object()) {
      md["annotations"] = Json::object();
    }
    md["annotations"][std::string(kTrackingAnnotation)] = options.application;
    if (label) {
      if (!md.contains("labels") || !md["labels"].is_object()) md["labels"] = Json::object();
      md["labels"][std::string(kTrackingLabel)] = options.application;
    }
    if (kind == "Secret" && api_version == "v1" && o.contains("stringData") &&
        o["stringData"].is_object()) {
      if (!o.contains("data") || !o["data"].is_object()) o["data"] = Json::object();
      for (auto it = o["stringData"].begin(); it != o["stringData"].end(); ++it) {
        if (it.value().is_string()) {
          o["data"][it.key()] = absl::Base64Escape(it.value().get_ref<const std::string&>());
        }
      }
      o.erase("stringData");
    }
    if (kind == "Namespace" && api_version == "v1" &&
        manifest::NameOf(o) == options.destination_namespace) {
      has_destination_namespace = true;
    }
  }
  if (options.create_namespace && !options.destination_namespace.empty() &&
      !has_destination_namespace) {
    Json ns = {{"apiVersion", "v1"},
               {"kind", "Namespace"},
               {"metadata",
                {{"name", options.destination_namespace},
                 {"annotations",
                  {{std::string(kTrackingAnnotation), options.application},
                   {std::string(kSyncOptionsAnnotation), "Prune=false"}}}}}};
    if (label) ns["metadata"]["labels"] = {{std::string(kTrackingLabel), options.application}};
    objects.insert(objects.begin(), std::move(ns));
  }
  return objects;
}

absl::StatusOr<Plan> BuildPlan(const std::vector<Json>& desired,
                               const std::map<std::string, Json>& live,
                               const std::vector<Json>& tracked, const PlanOptions& options) {
  Plan plan;
  const std::set<std::string> only(options.only.begin(), options.only.end());
  std::set<std::string> desired_keys;
  std::vector<PlanItem> applies;
  static const Json kAbsent;
  for (const Json& o : desired) {
    PlanItem item;
    item.key = manifest::ObjectKey(o);
    desired_keys.insert(item.key);
    if (!only.empty() && !only.count(item.key)) continue;
    DL_ASSIGN_OR_RETURN(item.order, OrderKeyOf(o));
    auto it = live.find(item.key);
    const Json& current = it == live.end() ? kAbsent : it->second;
    if (!current.is_null()) {
      const std::string owner = manifest::AnnotationOf(current, kTrackingAnnotation);
      if (!owner.empty() && owner != options.application) {
        return absl::FailedPreconditionError(manifest::Describe(o) +
                                             " is managed by application \"" + owner +
                                             "\", not \"" + options.application + "\"");
      }
    }
    auto diff = DiffObject(o, current, options.diff);
    if (!diff.ok()) return Annotate(diff.status(), manifest::Describe(o));
    item.diff = *std::move(diff);
    if (!item.diff.exists) {
      item.action = Action::kCreate;
      ++plan.creates;
    } else if (!item.diff.in_sync && !HasSyncOption(o, "CreateOnly=true")) {
      item.action = Action::kUpdate;
      ++plan.updates;
    } else {
      item.action = Action::kNone;
      ++plan.unchanged;
    }
    item.object = o;
    applies.push_back(std::move(item));
  }
  std::stable_sort(applies.begin(), applies.end(),
                   [](const PlanItem& x, const PlanItem& y) { return x.order < y.order; });

  std::vector<PlanItem> deletes;
  for (const Json& t : tracked) {
    if (manifest::AnnotationOf(t, kTrackingAnnotation) != options.application) continue;
    PlanItem item;
    item.key = manifest::ObjectKey(t);
    if (desired_keys.count(item.key)) continue;
    if (!only.empty() && !only.count(item.key)) continue;
    auto order = OrderKeyOf(t);
    item.order = order.ok() ? *order : OrderKey{};
    item.object = StripServerFields(t);
    item.diff.exists = true;
    item.diff.changed_paths.push_back("");
    if (options.prune && !PruneProtected(t)) {
      item.action = Action::kDelete;
      ++plan.deletes;
    } else {
      item.action = Action::kNone;
      item.requires_pruning = !PruneProtected(t);
    }
    deletes.push_back(std::move(item));
  }
  // Pruning runs in the reverse of the apply order.
  std::stable_sort(deletes.begin(), deletes.end(),
                   [](const PlanItem& x, const PlanItem& y) { return y.order < x.order; });

  plan.in_sync = plan.creates == 0 && plan.updates == 0 && plan.deletes == 0 &&
                 std::none_of(deletes.begin(), deletes.end(),
                              [](const PlanItem& i) { return i.requires_pruning; });
  if (options.apply_out_of_sync_only) {
    std::erase_if(applies, [](const PlanItem& i) { return i.action == Action::kNone; });
  }
  plan.items = std::move(applies);
  for (PlanItem& d : deletes) plan.items.push_back(std::move(d));
  return plan;
}

}  // namespace driftless::sync
