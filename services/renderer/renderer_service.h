// The renderer's shell (docs/design/renderer.md, pipeline contract §2): for each
// `source.changed` work item, checks out the exact commit of the application's repository from
// its own mirror, renders spec.source.path with the pure core (render.h) and emits
// `app.rendered` (work item on stage plan + broadcast) carrying the objects inline or, when
// large, by blob digest.
//
//   git::Libgit2Client git({.cache_dir = state_dir + "/mirrors"});
//   RendererService renderer(&rt.bus(), &rt.kv(), &rt.blobs(), &git,
//                            {.emitter = rt.emitter(), .work_dir = state_dir + "/work"});
//   auto sub = rt.ConsumeStage(service::kStageRender,
//       [&](const v1::Event& e, const bus::Message& m) { return renderer.Handle(e, m); });
//
// Dispositions: Ack when rendered, when the application is gone or its spec moved on (a newer
// source.changed follows), and after a render error (malformed YAML, missing path, missing
// commit: RenderError condition + sync.failed broadcast). Nak with backoff for transient
// failures (git transport, NATS); on the last delivery a transient failure is reported as a
// render error too, so the user sees it.
//
// Handle is meant for one subscription thread (the checkout directory is per application).
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "common/bus/blob_store.h"
#include "common/bus/event_bus.h"
#include "common/bus/kv_store.h"
#include "common/git/git_client.h"
#include "common/manifest/manifest.h"
#include "driftless/v1/events.pb.h"
#include "services/common/state.h"

namespace driftless::renderer {

struct RendererOptions {
  std::string emitter = "renderer/local";
  // Scratch checkouts go to <work_dir>/<application>; created if missing.
  std::string work_dir;
  // The bus's delivery limit (a transient failure on this delivery is reported, then Nak'ed).
  int max_deliver = 5;
};

class RendererService {
 public:
  // Pointers are not owned and must outlive this object.
  RendererService(bus::EventBus* bus, bus::KvStore* kv, bus::BlobStore* blobs,
                  git::GitClient* git, RendererOptions options);

  bus::Disposition Handle(const v1::Event& event, const bus::Message& message);

  // Renders `resource` at `commit` into a JSON array of objects. Errors name the application:
  // kNotFound (commit or path missing), kInvalidArgument (malformed manifests: file and line;
  // path escaping the repository), kUnimplemented (kustomize/helm), and the git client's
  // transport errors (kUnavailable, kDeadlineExceeded, ...).
  absl::StatusOr<manifest::Json> Render(const service::StoredResource& resource,
                                        const std::string& commit);

 private:
  bus::Disposition ReportError(const v1::Event& event, const std::string& spec_digest,
                               const absl::Status& error);

  bus::EventBus* bus_;
  bus::KvStore* kv_;
  bus::BlobStore* blobs_;
  git::GitClient* git_;
  RendererOptions options_;
};

}  // namespace driftless::renderer
