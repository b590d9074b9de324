#include "services/common/render_inputs.h"

#include <algorithm>

#include "absl/strings/escaping.h"
#include "common/strings/str.h"
#include "services/common/topology.h"

namespace driftless::service {
namespace {

using manifest::Json;

constexpr char kDefaultValuesKey[] = "values.yaml";  // Flux's valuesKey default

const char* UseName(InputRef::Use use) {
  return use == InputRef::Use::kHelmValues ? "helmValues" : "substitute";
}

Json RefToJson(const InputRef& r) {
  return Json{{"use", UseName(r.use)},     {"field", r.field}, {"kind", r.kind},
              {"namespace", r.namespace_}, {"name", r.name},   {"key", r.key},
              {"optional", r.optional}};
}

InputRef RefFromJson(const Json& j) {
  return InputRef{.use = j.value("use", "") == "substitute" ? InputRef::Use::kSubstitute
                                                            : InputRef::Use::kHelmValues,
                  .field = j.value("field", ""),
                  .kind = j.value("kind", ""),
                  .namespace_ = j.value("namespace", ""),
                  .name = j.value("name", ""),
                  .key = j.value("key", ""),
                  .optional = j.value("optional", false)};
}

Json InputsToJson(const RenderInputs& in, bool with_digest) {
  Json inputs = Json::array();
  for (const ResolvedInput& r : in.inputs) {
    inputs.push_back(Json{{"ref", RefToJson(r.ref)}, {"found", r.found}, {"data", r.data}});
  }
  Json j{{"uid", in.uid}, {"refsDigest", in.refs_digest}, {"inputs", std::move(inputs)}};
  if (with_digest) {
    j["digest"] = in.digest;
    j["request"] = in.request;
  }
  return j;
}

std::string Describe(const InputRef& r) {
  return strings::Cat(r.field, ": ", r.kind, " ", r.namespace_, "/", r.name);
}

absl::Status MissingObject(const InputRef& r) {
  return absl::FailedPreconditionError(
      strings::Cat(Describe(r), " not found (set optional: true to render without it)"));
}

std::string AppKey(std::string_view application) { return strings::Cat("app.", application); }
std::string ClusterKey(std::string_view cluster) { return strings::Cat("cluster.", cluster); }

}  // namespace

std::vector<InputRef> InputRefsOf(const Json& application) {
  std::vector<InputRef> refs;
  if (!application.is_object() || !application.contains("spec")) return refs;
  const Json& spec = application["spec"];
  if (!spec.is_object()) return refs;
  std::string ns;
  if (auto d = spec.find("destination"); d != spec.end() && d->is_object()) {
    ns = d->value("namespace", "");
  }
  if (ns.empty()) ns = "default";
  const Json source = spec.value("source", Json::object());
  if (!source.is_object()) return refs;
  auto add = [&](const Json& list, InputRef::Use use, std::string_view field) {
    if (!list.is_array()) return;
    for (size_t i = 0; i < list.size(); ++i) {
      const Json& item = list[i];
      if (!item.is_object()) continue;
      refs.push_back(InputRef{
          .use = use,
          .field = strings::Cat(field, "[", i, "]"),
          .kind = item.value("kind", "ConfigMap"),
          .namespace_ = ns,
          .name = item.value("name", ""),
          .key = use == InputRef::Use::kHelmValues ? item.value("key", kDefaultValuesKey) : "",
          .optional = item.value("optional", false)});
    }
  };
  if (auto h = source.find("helm");
      h != source.end() && h->is_object() && h->contains("valuesFrom")) {
    add((*h)["valuesFrom"], InputRef::Use::kHelmValues, "spec.source.helm.valuesFrom");
  }
  if (source.contains("substituteFrom")) {
    add(source["substituteFrom"], InputRef::Use::kSubstitute, "spec.source.substituteFrom");
  }
  return refs;
}

std::string RefsDigest(const std::vector<InputRef>& refs) {
  Json all = Json::array();
  for (const InputRef& r : refs) all.push_back(RefToJson(r));
  return manifest::Sha256Hex(manifest::CanonicalJson(all));
}

bool RenderInputs::Matches(std::string_view application_uid, const std::vector<InputRef>& refs,
                           std::string_view user_sync) const {
  return uid == application_uid && refs_digest == RefsDigest(refs) &&
         (user_sync.empty() || request == user_sync);
}

absl::StatusOr<RenderInputs> ResolveRenderInputs(std::string uid, const std::vector<InputRef>& refs,
                                                 const InputFetcher& fetch) {
  RenderInputs out{.uid = std::move(uid), .refs_digest = RefsDigest(refs)};
  for (const InputRef& ref : refs) {
    ResolvedInput resolved{.ref = ref};
    DL_ASSIGN_OR_RETURN(std::optional<Json> object, fetch(ref));
    if (object.has_value()) {
      resolved.found = true;
      if (auto d = object->find("data"); d != object->end() && d->is_object()) {
        for (auto it = d->begin(); it != d->end(); ++it) {
          if (!it.value().is_string()) continue;
          std::string value = it.value().get<std::string>();
          if (ref.kind == "Secret") {
            std::string decoded;
            if (!absl::Base64Unescape(value, &decoded)) {
              return absl::InvalidArgumentError(
                  strings::Cat(Describe(ref), ": data key \"", it.key(), "\" is not base64"));
            }
            value = std::move(decoded);
          }
          resolved.data.emplace(it.key(), std::move(value));
        }
      }
    }
    out.inputs.push_back(std::move(resolved));
  }
  out.digest = manifest::Sha256Hex(manifest::CanonicalJson(InputsToJson(out, false)));
  return out;
}

absl::StatusOr<std::vector<std::string>> HelmValuesFrom(const RenderInputs& inputs) {
  std::vector<std::string> values;
  for (const ResolvedInput& in : inputs.inputs) {
    if (in.ref.use != InputRef::Use::kHelmValues) continue;
    if (!in.found) {
      if (in.ref.optional) continue;
      return MissingObject(in.ref);
    }
    auto it = in.data.find(in.ref.key);
    if (it == in.data.end()) {
      if (in.ref.optional) continue;
      return absl::FailedPreconditionError(
          strings::Cat(Describe(in.ref), " has no key \"", in.ref.key, "\""));
    }
    values.push_back(it->second);
  }
  return values;
}

absl::StatusOr<std::map<std::string, std::string, std::less<>>> SubstituteFrom(
    const RenderInputs& inputs) {
  std::map<std::string, std::string, std::less<>> vars;
  for (const ResolvedInput& in : inputs.inputs) {
    if (in.ref.use != InputRef::Use::kSubstitute) continue;
    if (!in.found) {
      if (in.ref.optional) continue;
      return MissingObject(in.ref);
    }
    for (const auto& [k, v] : in.data) vars[k] = v;
  }
  return vars;
}

ClusterFacts MakeClusterFacts(std::string kube_version, std::vector<std::string> api_versions) {
  std::sort(api_versions.begin(), api_versions.end());
  api_versions.erase(std::unique(api_versions.begin(), api_versions.end()), api_versions.end());
  ClusterFacts facts{.kube_version = std::move(kube_version),
                     .api_versions = std::move(api_versions)};
  facts.digest = manifest::Sha256Hex(manifest::CanonicalJson(
      Json{{"kubeVersion", facts.kube_version}, {"apiVersions", facts.api_versions}}));
  return facts;
}

absl::StatusOr<std::optional<RenderInputs>> RenderInputsStore::Get(
    std::string_view application) const {
  absl::StatusOr<bus::KvEntry> entry = kv_->Get(kRenderInputsBucket, AppKey(application));
  if (absl::IsNotFound(entry.status())) return std::optional<RenderInputs>();
  DL_RETURN_IF_ERROR(entry.status());
  absl::StatusOr<Json> j = manifest::ParseJson(entry->value, "render inputs");
  if (!j.ok() || !j->is_object() || !j->contains("inputs") || !(*j)["inputs"].is_array()) {
    return absl::DataLossError(
        strings::Cat("the render-inputs record of application ", application, " does not decode"));
  }
  RenderInputs in{.uid = j->value("uid", ""),
                  .refs_digest = j->value("refsDigest", ""),
                  .digest = j->value("digest", ""),
                  .request = j->value("request", "")};
  for (const Json& item : (*j)["inputs"]) {
    ResolvedInput r{.ref = RefFromJson(item.value("ref", Json::object())),
                    .found = item.value("found", false)};
    if (auto d = item.find("data"); d != item.end() && d->is_object()) {
      for (auto it = d->begin(); it != d->end(); ++it) {
        if (it.value().is_string()) r.data.emplace(it.key(), it.value().get<std::string>());
      }
    }
    in.inputs.push_back(std::move(r));
  }
  return std::optional<RenderInputs>(std::move(in));
}

absl::StatusOr<bool> RenderInputsStore::Put(std::string_view application,
                                            const RenderInputs& inputs) {
  absl::StatusOr<std::optional<RenderInputs>> stored = Get(application);
  if (stored.ok() && stored->has_value() && (*stored)->digest == inputs.digest &&
      (*stored)->request == inputs.request) {
    return false;
  }
  DL_RETURN_IF_ERROR(
      kv_->Put(kRenderInputsBucket, AppKey(application), InputsToJson(inputs, true).dump())
          .status());
  return true;
}

absl::Status RenderInputsStore::Delete(std::string_view application) {
  return kv_->Delete(kRenderInputsBucket, AppKey(application));
}

absl::StatusOr<std::vector<std::string>> RenderInputsStore::Applications() const {
  DL_ASSIGN_OR_RETURN(std::vector<std::string> keys, kv_->Keys(kRenderInputsBucket, "app."));
  for (std::string& key : keys) key.erase(0, 4);
  return keys;
}

absl::StatusOr<std::optional<ClusterFacts>> RenderInputsStore::GetCluster(
    std::string_view cluster) const {
  absl::StatusOr<bus::KvEntry> entry = kv_->Get(kRenderInputsBucket, ClusterKey(cluster));
  if (absl::IsNotFound(entry.status())) return std::optional<ClusterFacts>();
  DL_RETURN_IF_ERROR(entry.status());
  absl::StatusOr<Json> j = manifest::ParseJson(entry->value, "cluster facts");
  if (!j.ok() || !j->is_object()) {
    return absl::DataLossError(
        strings::Cat("the facts recorded for cluster ", cluster, " do not decode"));
  }
  std::vector<std::string> apis;
  if (auto a = j->find("apiVersions"); a != j->end() && a->is_array()) {
    for (const Json& v : *a) {
      if (v.is_string()) apis.push_back(v.get<std::string>());
    }
  }
  return std::optional<ClusterFacts>(
      MakeClusterFacts(j->value("kubeVersion", ""), std::move(apis)));
}

absl::StatusOr<bool> RenderInputsStore::PutCluster(std::string_view cluster,
                                                   const ClusterFacts& facts) {
  absl::StatusOr<std::optional<ClusterFacts>> stored = GetCluster(cluster);
  if (stored.ok() && stored->has_value() && (*stored)->digest == facts.digest) return false;
  const Json j{{"kubeVersion", facts.kube_version}, {"apiVersions", facts.api_versions}};
  DL_RETURN_IF_ERROR(kv_->Put(kRenderInputsBucket, ClusterKey(cluster), j.dump()).status());
  return true;
}

}  // namespace driftless::service
