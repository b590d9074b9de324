#include "services/renderer/renderer_service.h"

#include <google/protobuf/util/time_util.h>

#include <chrono>
#include <filesystem>
#include <system_error>

#include <unistd.h>

#include "common/git/url.h"
#include "common/http/metrics.h"
#include "common/log/log.h"
#include "common/strings/str.h"
#include "services/common/events.h"
#include "services/common/identity.h"
#include "services/common/topology.h"
#include "services/renderer/file_tree.h"
#include "services/renderer/render.h"

namespace driftless::renderer {
namespace {

using manifest::Json;
namespace fs = std::filesystem;

metrics::Counter& Renders(std::string_view result) {
  static auto& family = metrics::Registry::Default().AddCounterFamily(
      "driftless_renderer_renders_total",
      "Renders by result: rendered, failed (render error), retry, dropped.", {"result"});
  return family.WithLabels(std::vector<std::string>{std::string(result)});
}

std::string NormalizePath(std::string_view p) {
  std::string out(p);
  while (out.starts_with("./")) out.erase(0, 2);
  while (!out.empty() && out.back() == '/') out.pop_back();
  if (out == ".") out.clear();
  return out;
}

bool IsTransient(const absl::Status& s) {
  switch (s.code()) {
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
    case absl::StatusCode::kAborted:
    case absl::StatusCode::kInternal:
      return true;
    default:
      return false;
  }
}

std::string ConditionReason(const absl::Status& s) {
  switch (s.code()) {
    case absl::StatusCode::kNotFound:
      return "NotFound";
    case absl::StatusCode::kInvalidArgument:
      return "InvalidManifests";
    case absl::StatusCode::kUnimplemented:
      return "Unsupported";
    case absl::StatusCode::kResourceExhausted:
      return "TooLarge";
    default:
      return "RenderFailed";
  }
}

}  // namespace

RendererService::RendererService(bus::EventBus* bus, bus::KvStore* kv, bus::BlobStore* blobs,
                                 git::GitClient* git, RendererOptions options)
    : bus_(bus), kv_(kv), blobs_(blobs), git_(git), options_(std::move(options)) {
  if (options_.work_dir.empty()) {
    options_.work_dir =
        (fs::temp_directory_path() / ("driftless-renderer-work-" + std::to_string(getpid())))
            .string();
  }
}

absl::StatusOr<Json> RendererService::Render(const service::StoredResource& resource,
                                             const std::string& commit) {
  const std::string& app = resource.name;
  const Json* source = nullptr;
  if (resource.object.is_object() && resource.object.contains("spec") &&
      resource.object["spec"].is_object() && resource.object["spec"].contains("source") &&
      resource.object["spec"]["source"].is_object()) {
    source = &resource.object["spec"]["source"];
  }
  if (source == nullptr || !source->contains("repoURL") || !(*source)["repoURL"].is_string()) {
    return absl::InvalidArgumentError(
        strings::Cat("application ", app, ": spec.source.repoURL is missing"));
  }
  for (const char* tool : {"kustomize", "helm"}) {
    if (source->contains(tool)) {
      return absl::UnimplementedError(strings::Cat("application ", app, ": spec.source.", tool,
                                                   " is not supported by this renderer yet"));
    }
  }
  const std::string url = (*source)["repoURL"].get<std::string>();
  const std::string safe_url = git::RedactUrl(url);
  const std::string path = NormalizePath(source->value("path", ""));

  // A commit already in the mirror (a sync of an unchanged revision, a redelivery) needs no
  // fetch; anything else fetches first.
  absl::StatusOr<std::string> full = git_->ExpandCommit(url, commit);
  if (!full.ok()) {
    if (absl::Status f = git_->Fetch(url, {}).status(); !f.ok()) {
      return Annotate(f, strings::Cat("application ", app, ": fetch"));
    }
    full = git_->ExpandCommit(url, commit);
  }
  if (!full.ok()) {
    return absl::Status(full.status().code(),
                        strings::Cat("application ", app, ": revision ", commit, ": ",
                                     full.status().message()));
  }
  const std::string dest = (fs::path(options_.work_dir) / app).string();
  std::error_code ec;
  fs::remove_all(dest, ec);
  fs::create_directories(options_.work_dir, ec);
  struct Cleanup {
    std::string dir;
    ~Cleanup() {
      std::error_code ignored;
      fs::remove_all(dir, ignored);
    }
  } cleanup{dest};

  absl::StatusOr<git::CheckoutResult> out = git_->Checkout(url, *full, dest, path);
  if (!out.ok()) {
    if (out.status().code() == absl::StatusCode::kNotFound) {
      return absl::NotFoundError(strings::Cat("application ", app, ": path \"", path,
                                              "\" not found in ", safe_url, " at ",
                                              full->substr(0, 7)));
    }
    return absl::Status(out.status().code(), strings::Cat("application ", app, ": checkout of ",
                                                          safe_url, " at ", full->substr(0, 7),
                                                          ": ", out.status().message()));
  }
  absl::StatusOr<std::vector<SourceFile>> files = ReadFileTree(dest);
  if (!files.ok()) {
    return absl::Status(files.status().code(),
                        strings::Cat("application ", app, ": ", files.status().message()));
  }
  // Paths relative to the repository root, so errors name the file as the user knows it.
  if (!path.empty()) {
    for (SourceFile& f : *files) f.path = strings::Cat(path, "/", f.path);
  }
  absl::StatusOr<std::vector<RenderedObject>> objects =
      RenderDirectory(*files, path, DirectoryOptionsOf(*source), VariablesOf(*source));
  if (!objects.ok()) {
    return absl::Status(objects.status().code(),
                        strings::Cat("application ", app, ": ", objects.status().message()));
  }
  Json array = Json::array();
  for (RenderedObject& o : *objects) array.push_back(std::move(o.object));
  return array;
}

bus::Disposition RendererService::Handle(const v1::Event& event, const bus::Message& message) {
  if (event.type() != "source.changed") {
    log::Debug("ignoring work item", {{"event", service::Describe(event)}});
    return bus::Disposition::Ack();
  }
  const auto started = std::chrono::steady_clock::now();
  const v1::SourceChanged& changed = event.source_changed();
  std::string app = event.application();
  if (app.empty() && changed.applications_size() > 0) app = changed.applications(0);
  const std::string commit = !changed.revision().empty() ? changed.revision() : event.revision();
  log::Logger logger =
      log::Logger("renderer").With({{"application", app}, {"revision", commit}});

  absl::StatusOr<service::StoredResource> r = service::ResourceStore(kv_).Get("Application", app);
  if (r.status().code() == absl::StatusCode::kNotFound) {
    Renders("dropped").Increment();
    logger.Info("application gone, dropping");
    return bus::Disposition::Ack();
  }
  if (!r.ok()) {
    Renders("retry").Increment();
    return bus::Disposition::Nak(service::RetryDelay(message),
                                 std::string(r.status().message()));
  }
  if (const service::SyncIdentity identity = service::IdentityOf(event);
      identity.known() && identity.uid != r->uid) {
    Renders("dropped").Increment();
    logger.Info("application re-created since, dropping");
    return bus::Disposition::Ack();
  }
  if (r->spec_digest != changed.spec_digest()) {
    Renders("dropped").Increment();
    logger.Info("spec changed since, dropping (a newer source.changed follows)",
                {{"specDigest", changed.spec_digest()}, {"current", r->spec_digest}});
    return bus::Disposition::Ack();
  }

  absl::StatusOr<Json> objects = Render(*r, commit);
  if (!objects.ok()) {
    const bool last = options_.max_deliver > 0 &&
                      message.delivery_count >= static_cast<uint64_t>(options_.max_deliver);
    if (IsTransient(objects.status()) && !last) {
      Renders("retry").Increment();
      logger.Warn("render failed, will retry", {{"error", objects.status()}});
      return bus::Disposition::Nak(service::RetryDelay(message),
                                   std::string(objects.status().message()));
    }
    return ReportError(event, r->spec_digest, objects.status());
  }

  absl::StatusOr<v1::ManifestPayload> payload = service::EncodeManifests(*blobs_, *objects);
  if (!payload.ok()) {
    Renders("retry").Increment();
    return bus::Disposition::Nak(service::RetryDelay(message),
                                 std::string(payload.status().message()));
  }
  const std::string sync_id = changed.has_sync_request() ? changed.sync_request().sync_id() : "";
  v1::Event e = service::NewEvent(service::event_type::kAppRendered, app, commit, options_.emitter);
  if (const service::SyncIdentity identity = service::IdentityOf(event); identity.known()) {
    service::SetIdentity(e, identity);
    e.set_id(service::IdentityEventId(service::event_type::kAppRendered, app, identity));
  } else {
    e.set_id(service::EventId(service::event_type::kAppRendered, app, commit, r->spec_digest,
                              sync_id));
  }
  e.set_correlation_id(event.correlation_id());
  e.set_severity(v1::SEVERITY_INFO);
  e.set_message(strings::Cat(app, ": rendered ", objects->size(), " objects at ",
                             commit.substr(0, 7)));
  v1::AppRendered* rendered = e.mutable_app_rendered();
  rendered->set_spec_digest(r->spec_digest);
  rendered->set_render_digest(manifest::Digest(*objects));
  *rendered->mutable_manifests() = *std::move(payload);
  const auto elapsed = std::chrono::steady_clock::now() - started;
  *rendered->mutable_duration() = google::protobuf::util::TimeUtil::NanosecondsToDuration(
      std::chrono::duration_cast<std::chrono::nanoseconds>(elapsed).count());
  if (changed.has_sync_request()) *rendered->mutable_sync_request() = changed.sync_request();
  if (absl::Status s = service::Emit(*bus_, e, service::kStagePlan); !s.ok()) {
    Renders("retry").Increment();
    return bus::Disposition::Nak(service::RetryDelay(message), std::string(s.message()));
  }
  absl::Status cleared = service::StatusStore(kv_)
                             .Update(app,
                                     [](v1::AppStatus& s) {
                                       const v1::Condition* c =
                                           service::FindCondition(s, "RenderError");
                                       if (c == nullptr || !c->status()) return false;
                                       service::SetCondition(s, "RenderError", false, "Rendered",
                                                             "the source renders");
                                       return true;
                                     })
                             .status();
  if (!cleared.ok()) logger.Warn("cannot clear RenderError", {{"error", cleared}});
  Renders("rendered").Increment();
  logger.Info("rendered", {{"objects", static_cast<int64_t>(objects->size())},
                           {"bytes", rendered->manifests().size_bytes()},
                           {"inline", rendered->manifests().has_inline_json()},
                           {"ms", std::chrono::duration_cast<std::chrono::milliseconds>(elapsed)}});
  return bus::Disposition::Ack();
}

bus::Disposition RendererService::ReportError(const v1::Event& event,
                                              const std::string& spec_digest,
                                              const absl::Status& error) {
  const v1::SourceChanged& changed = event.source_changed();
  std::string app = event.application();
  if (app.empty() && changed.applications_size() > 0) app = changed.applications(0);
  const std::string commit = !changed.revision().empty() ? changed.revision() : event.revision();
  const std::string message(error.message());
  log::Warn("render failed", {{"application", app}, {"revision", commit}, {"error", message}});
  Renders("failed").Increment();

  absl::Status s = service::StatusStore(kv_)
                       .Update(app,
                               [&](v1::AppStatus& st) {
                                 service::SetCondition(st, "RenderError", true,
                                                       ConditionReason(error), message);
                                 st.set_message(message);
                                 st.set_last_attempted_revision(commit);
                                 if (st.sync() == v1::SYNC_STATUS_CODE_UNKNOWN ||
                                     st.sync() == v1::SYNC_STATUS_CODE_UNSPECIFIED) {
                                   st.set_sync(v1::SYNC_STATUS_CODE_OUT_OF_SYNC);
                                 }
                                 return true;
                               })
                       .status();
  if (!s.ok()) return bus::Disposition::Nak(absl::Seconds(1), std::string(s.message()));

  const std::string sync_id = changed.has_sync_request() ? changed.sync_request().sync_id() : "";
  v1::Event e = service::NewEvent(service::event_type::kSyncFailed, app, commit, options_.emitter);
  if (const service::SyncIdentity identity = service::IdentityOf(event); identity.known()) {
    service::SetIdentity(e, identity);
    e.set_id(service::IdentityEventId(service::event_type::kSyncFailed, app, identity));
  } else {
    e.set_id(service::EventId(service::event_type::kSyncFailed, app, commit, spec_digest, sync_id));
  }
  e.set_correlation_id(event.correlation_id());
  e.set_severity(v1::SEVERITY_ERROR);
  e.set_message(message);
  v1::SyncFinished* f = e.mutable_sync_finished();
  f->set_sync_id(sync_id);
  f->set_succeeded(false);
  f->set_error(message);
  if (changed.has_sync_request()) f->set_initiated_by(changed.sync_request().requested_by());
  if (absl::Status p = service::Emit(*bus_, e); !p.ok()) {
    return bus::Disposition::Nak(absl::Seconds(1), std::string(p.message()));
  }
  return bus::Disposition::Ack();
}

}  // namespace driftless::renderer
