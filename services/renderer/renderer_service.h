// The renderer's shell (docs/design/renderer.md, pipeline contract §2): for each
// `source.changed` work item, takes the application's repository at the exact commit from a
// checkout shared by every application of that revision (checkouts.h), generates its objects
// (generate.h: plain directory, Kustomize or Helm) and emits `app.rendered` (work item on stage
// plan + broadcast) carrying the objects inline or, when large, by blob digest. A render whose
// inputs were rendered before (same source, destination, commit and tool versions) is a
// lookup in the render cache. The paths each render read go to the readsets bucket for the
// poller. What the destination cluster supplies (helm valuesFrom, substituteFrom, the cluster's
// version and API list) comes from the records the planner keeps (render_inputs.h).
//
//   git::Libgit2Client git({.cache_dir = state_dir + "/mirrors"});
//   Tools tools = FindTools({});
//   CheckoutCache checkouts(&git, state_dir + "/checkouts");
//   RenderCache cache;
//   RendererService renderer(&rt.bus(), &rt.kv(), &rt.blobs(), &git,
//                            {.emitter = rt.emitter(), .work_dir = state_dir + "/work/w0",
//                             .tools = &tools, .checkouts = &checkouts, .cache = &cache});
//   auto sub = rt.ConsumeStage(service::kStageRender,
//       [&](const v1::Event& e, const bus::Message& m) { return renderer.Handle(e, m); });
//
// Dispositions: Ack when rendered, when the application is gone or its spec moved on (a newer
// source.changed follows), and after a render error (malformed YAML, missing path, missing
// commit, a tool's error: RenderError condition + sync.failed broadcast). Nak with backoff for
// transient failures (git transport, NATS); on the last delivery a transient failure is
// reported as a render error too, so the user sees it.
//
// Handle is meant for one worker thread (the scratch directory is per worker and
// application); the tools, checkouts and cache are shared by all workers.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "common/bus/blob_store.h"
#include "common/bus/event_bus.h"
#include "common/bus/kv_store.h"
#include "common/git/git_client.h"
#include "common/manifest/manifest.h"
#include "driftless/v1/events.pb.h"
#include "services/common/render_inputs.h"
#include "services/common/state.h"
#include "services/renderer/checkouts.h"
#include "services/renderer/generate.h"
#include "services/renderer/render_cache.h"

namespace driftless::renderer {

struct RendererOptions {
  std::string emitter = "renderer/local";
  // Private render directories go to <work_dir>/<application>; created if missing.
  std::string work_dir;
  // The bus's delivery limit (a transient failure on this delivery is reported, then Nak'ed).
  int max_deliver = 5;
  // A cached render whose manifests are a blob is rendered again once it is this old: the
  // blob is kept 24 h after its last write (BlobStore renews it after 12 h), so a hit never
  // hands the planner a digest that is about to expire.
  absl::Duration blob_cache_lifetime = absl::Hours(6);
  // Shared by the workers; not owned. Null: the service makes its own (tools from PATH,
  // checkouts under <work_dir>/checkouts, a 64 MB cache).
  const Tools* tools = nullptr;
  CheckoutCache* checkouts = nullptr;
  RenderCache* cache = nullptr;
};

// What the destination cluster supplies to a render: the planner's render-inputs and
// cluster records (services/common/render_inputs.h).
struct ClusterInputs {
  bool resolved = false;  // the application's render-inputs record was read
  std::vector<std::string> values_from;
  Variables substitute_from;
  std::string kube_version;
  std::vector<std::string> api_versions;
  std::string digest;  // part of the render cache key
};

struct RenderResult {
  manifest::Json objects;  // JSON array
  std::string generator;
  ReadSet reads;
  bool cacheable = true;
};

// The sourceRepos globs of the application's Project: `project` as stored, or null when it
// could not be read (`missing`: it does not exist). The built-in `default` project, until a
// user defines one, allows everything ("*"); an unreadable or missing other project nothing.
std::vector<std::string> SourceReposOf(const std::string& project_name,
                                       const service::StoredResource* project, bool missing);

class RendererService {
 public:
  // Pointers are not owned and must outlive this object.
  RendererService(bus::EventBus* bus, bus::KvStore* kv, bus::BlobStore* blobs, git::GitClient* git,
                  RendererOptions options);

  bus::Disposition Handle(const v1::Event& event, const bus::Message& message);

  // Renders `resource` at `commit` (no cache). Errors name the application: kNotFound (commit,
  // path or file missing), kInvalidArgument (malformed manifests: file and line; a path
  // leaving the repository; a tool's error), kDeadlineExceeded / kResourceExhausted (a tool
  // stopped), and the git client's transport errors (kUnavailable, kDeadlineExceeded, ...).
  absl::StatusOr<RenderResult> Render(const service::StoredResource& resource,
                                      const std::string& commit, const ClusterInputs& inputs = {});

 private:
  bus::Disposition ReportError(const v1::Event& event, const std::string& spec_digest,
                               const absl::Status& error);
  // The application's cluster inputs. An application with valuesFrom/substituteFrom whose
  // record is missing or stale asks the planner (work item render.inputs_requested) and gets
  // kUnavailable: the render is retried once the record is there. kFailedPrecondition names
  // a required ConfigMap/Secret or key that does not exist.
  absl::StatusOr<ClusterInputs> InputsOf(const service::StoredResource& resource,
                                         const v1::Event& event);
  // The planner's record of `cluster` (nullopt until it wrote one), read at most every 10 s.
  absl::StatusOr<std::optional<service::ClusterFacts>> ClusterFactsOf(const std::string& cluster);
  // Remote references (kustomize bases, chart dependencies) the application's Project allows.
  RemotePolicy RemotePolicyOf(const service::StoredResource& resource);

  bus::EventBus* bus_;
  bus::KvStore* kv_;
  bus::BlobStore* blobs_;
  git::GitClient* git_;
  RendererOptions options_;
  std::unique_ptr<Tools> own_tools_;
  std::unique_ptr<CheckoutCache> own_checkouts_;
  std::unique_ptr<RenderCache> own_cache_;
  struct FactsRead {
    absl::Time read_at;
    std::optional<service::ClusterFacts> facts;
  };
  std::mutex facts_mu_;
  std::map<std::string, FactsRead> facts_;  // by cluster
};

}  // namespace driftless::renderer
