// What a render needs from the destination cluster (DESIGN.md §1): the renderer holds no
// cluster credentials, so the planner resolves an application's `valuesFrom` and
// `substituteFrom` references (ConfigMaps and Secrets) into a render-inputs record, and the
// cluster's version and API list into a cluster record; the renderer reads both.
//
//   // planner
//   std::vector<InputRef> refs = InputRefsOf(app.object);
//   RenderInputs inputs = ResolveRenderInputs(app.uid, refs, fetch);   // fetch: kube Get
//   DL_ASSIGN_OR_RETURN(bool changed, RenderInputsStore(kv).Put(app.name, inputs));
//   // renderer
//   DL_ASSIGN_OR_RETURN(std::optional<RenderInputs> got, RenderInputsStore(kv).Get(app.name));
//   if (!got || !got->Matches(app.uid, refs)) { /* ask the planner: render.inputs_requested */ }
//   DL_ASSIGN_OR_RETURN(std::vector<std::string> values, HelmValuesFrom(*got));
//
// Bucket kRenderInputsBucket: "app.<application>" and "cluster.<cluster>" (JSON). Secret data
// is held there as the API server holds it (decoded); it never reaches a log, an event or the
// API: errors name the object and key only.
//
// Pure apart from RenderInputsStore. Thread-safe.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/bus/kv_store.h"
#include "common/manifest/manifest.h"
#include "common/status/status.h"

namespace driftless::service {

// One ConfigMap or Secret an application's render reads.
struct InputRef {
  enum class Use { kHelmValues, kSubstitute };
  Use use = Use::kHelmValues;
  std::string field;  // "spec.source.helm.valuesFrom[0]", for messages
  std::string kind;   // "ConfigMap" or "Secret"
  std::string namespace_;
  std::string name;
  std::string key;  // helm values: the data key holding the values ("values.yaml")
  bool optional = false;

  friend bool operator==(const InputRef&, const InputRef&) = default;
};

// spec.source.helm.valuesFrom then spec.source.substituteFrom of an Application, in declared
// order, in the destination namespace ("default" when none is set).
std::vector<InputRef> InputRefsOf(const manifest::Json& application);

// The digest of `refs` (what to resolve, not the data): a record resolved for other refs
// (the spec changed) is stale.
std::string RefsDigest(const std::vector<InputRef>& refs);

struct ResolvedInput {
  InputRef ref;
  bool found = false;
  std::map<std::string, std::string> data;  // ConfigMap data / Secret data (decoded)
};

struct RenderInputs {
  std::string uid;          // the application incarnation it was resolved for
  std::string refs_digest;  // RefsDigest of the refs it resolved
  std::vector<ResolvedInput> inputs;
  std::string digest;  // of everything above: part of the render cache key
  // The user's sync this resolution answers (a manual sync reads the cluster afresh); not
  // part of the digest.
  std::string request;

  // Whether this record serves a render of incarnation `application_uid` with `refs` — and,
  // for a user's sync (`user_sync` not empty), answers that sync (which reads the cluster
  // afresh).
  bool Matches(std::string_view application_uid, const std::vector<InputRef>& refs,
               std::string_view user_sync = "") const;
};

// Reads the object a ref names: nullopt when it does not exist; an error when the cluster
// cannot say.
using InputFetcher =
    std::function<absl::StatusOr<std::optional<manifest::Json>>(const InputRef& ref)>;

// Fetches every ref. Errors: the fetcher's (the cluster unreachable), or kInvalidArgument for a
// Secret whose data is not base64.
absl::StatusOr<RenderInputs> ResolveRenderInputs(std::string uid, const std::vector<InputRef>& refs,
                                                 const InputFetcher& fetch);

// The values documents of the valuesFrom refs, in order (a missing optional ref or key is
// skipped). Errors: kFailedPrecondition naming the field, object and key that is missing.
absl::StatusOr<std::vector<std::string>> HelmValuesFrom(const RenderInputs& inputs);

// The variables of the substituteFrom refs, later refs overriding earlier ones. Errors:
// kFailedPrecondition naming the field and object that is missing.
absl::StatusOr<std::map<std::string, std::string, std::less<>>> SubstituteFrom(
    const RenderInputs& inputs);

// A destination cluster's version and API list, for helm's --kube-version and --api-versions.
struct ClusterFacts {
  std::string kube_version;               // "v1.32.3"
  std::vector<std::string> api_versions;  // "apps/v1" and "apps/v1/Deployment", sorted
  std::string digest;                     // of the above
};

// Fills in digest from the other fields (api_versions sorted, duplicates removed).
ClusterFacts MakeClusterFacts(std::string kube_version, std::vector<std::string> api_versions);

class RenderInputsStore {
 public:
  explicit RenderInputsStore(bus::KvStore* kv) : kv_(kv) {}

  // nullopt when nothing is recorded; kDataLoss for a record that does not decode.
  absl::StatusOr<std::optional<RenderInputs>> Get(std::string_view application) const;
  // Writes unless the stored record has the same digest and request; returns whether it wrote.
  absl::StatusOr<bool> Put(std::string_view application, const RenderInputs& inputs);
  absl::Status Delete(std::string_view application);
  // The applications that have a record (sorted).
  absl::StatusOr<std::vector<std::string>> Applications() const;

  absl::StatusOr<std::optional<ClusterFacts>> GetCluster(std::string_view cluster) const;
  absl::StatusOr<bool> PutCluster(std::string_view cluster, const ClusterFacts& facts);

 private:
  bus::KvStore* kv_;
};

}  // namespace driftless::service
