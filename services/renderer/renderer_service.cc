#include "services/renderer/renderer_service.h"

#include <google/protobuf/util/time_util.h>

#include <chrono>
#include <filesystem>
#include <mutex>
#include <system_error>

#include <unistd.h>

#include "common/git/url.h"
#include "common/http/metrics.h"
#include "common/log/log.h"
#include "common/match/glob.h"
#include "common/strings/str.h"
#include "services/common/events.h"
#include "services/common/identity.h"
#include "services/common/render_inputs.h"
#include "services/common/topology.h"

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

metrics::Histogram& RenderSeconds() {
  static auto& histogram = metrics::Registry::Default().AddHistogram(
      "driftless_renderer_render_seconds",
      "Time from a render request to its app.rendered (a cache hit is a lookup).",
      {0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 90});
  return histogram;
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
    case absl::StatusCode::kFailedPrecondition:
      return "ToolFailed";
    default:
      return "RenderFailed";
  }
}

}  // namespace

std::vector<std::string> SourceReposOf(const std::string& project_name,
                                       const service::StoredResource* project, bool missing) {
  // The built-in `default` project allows everything until a user defines one (Argo CD's
  // default AppProject has sourceRepos ["*"]); any other project must exist to allow anything.
  if (project == nullptr) {
    return missing && project_name == "default" ? std::vector<std::string>{"*"}
                                                : std::vector<std::string>{};
  }
  std::vector<std::string> globs;
  const Json& spec = project->object.contains("spec") ? project->object["spec"] : Json();
  if (auto repos = spec.find("sourceRepos"); repos != spec.end() && repos->is_array()) {
    for (const Json& g : *repos) {
      if (g.is_string()) globs.push_back(g.get<std::string>());
    }
  }
  return globs;
}

RendererService::RendererService(bus::EventBus* bus, bus::KvStore* kv, bus::BlobStore* blobs,
                                 git::GitClient* git, RendererOptions options)
    : bus_(bus), kv_(kv), blobs_(blobs), git_(git), options_(std::move(options)) {
  if (options_.work_dir.empty()) {
    options_.work_dir =
        (fs::temp_directory_path() / ("driftless-renderer-work-" + std::to_string(getpid())))
            .string();
  }
  std::error_code ec;
  options_.work_dir = fs::absolute(options_.work_dir, ec).lexically_normal().string();
  if (options_.tools == nullptr) {
    own_tools_ = std::make_unique<Tools>(FindTools({}));
    options_.tools = own_tools_.get();
  }
  if (options_.checkouts == nullptr) {
    own_checkouts_ = std::make_unique<CheckoutCache>(git_, options_.work_dir + "/checkouts");
    options_.checkouts = own_checkouts_.get();
  }
  if (options_.cache == nullptr) {
    own_cache_ = std::make_unique<RenderCache>();
    options_.cache = own_cache_.get();
  }
}

RemotePolicy RendererService::RemotePolicyOf(const service::StoredResource& resource) {
  std::string project =
      resource.object.contains("spec") ? resource.object["spec"].value("project", "") : "";
  if (project.empty()) project = "default";
  // Read on the first remote reference only: most renders have none and cost no KV read.
  struct Lazy {
    std::once_flag once;
    std::vector<std::string> globs;
  };
  auto lazy = std::make_shared<Lazy>();
  return [this, project, lazy](std::string_view url) {
    std::call_once(lazy->once, [&] {
      absl::StatusOr<service::StoredResource> p =
          service::ResourceStore(kv_).Get("Project", project);
      lazy->globs = SourceReposOf(project, p.ok() ? &*p : nullptr, absl::IsNotFound(p.status()));
    });
    for (const std::string& g : lazy->globs) {
      if (match::GlobMatch(g, url)) return true;
    }
    return false;
  };
}

absl::StatusOr<std::optional<service::ClusterFacts>> RendererService::ClusterFactsOf(
    const std::string& cluster) {
  constexpr absl::Duration kFresh = absl::Seconds(10);  // the planner refreshes every minute
  {
    std::lock_guard<std::mutex> lock(facts_mu_);
    if (auto it = facts_.find(cluster);
        it != facts_.end() && absl::Now() - it->second.read_at < kFresh) {
      return it->second.facts;
    }
  }
  DL_ASSIGN_OR_RETURN(std::optional<service::ClusterFacts> facts,
                      service::RenderInputsStore(kv_).GetCluster(cluster));
  std::lock_guard<std::mutex> lock(facts_mu_);
  facts_[cluster] = {absl::Now(), facts};
  return facts;
}

absl::StatusOr<ClusterInputs> RendererService::InputsOf(const service::StoredResource& resource,
                                                        const v1::Event& event) {
  const std::string& app = resource.name;
  ClusterInputs out;
  static const Json kNone = Json::object();
  const Json& spec = resource.object.is_object() && resource.object.contains("spec") &&
                             resource.object["spec"].is_object()
                         ? resource.object["spec"]
                         : kNone;
  const Json& destination =
      spec.contains("destination") && spec["destination"].is_object() ? spec["destination"] : kNone;
  const Json& source =
      spec.contains("source") && spec["source"].is_object() ? spec["source"] : kNone;
  const std::string cluster = destination.value("cluster", "in-cluster");
  absl::StatusOr<std::optional<service::ClusterFacts>> facts = ClusterFactsOf(cluster);
  if (!facts.ok()) return Annotate(facts.status(), strings::Cat("application ", app));
  Json digests = Json::object();
  // Only a chart sees the cluster's version and APIs (a source without a generator may be
  // one): a CRD installed elsewhere does not invalidate every directory's cached render.
  const bool may_be_chart =
      source.contains("helm") ||
      (source.contains("kustomize") && source["kustomize"].value("enableHelm", false)) ||
      (!source.contains("directory") && !source.contains("kustomize"));
  if (facts->has_value() && may_be_chart) {
    out.kube_version = (*facts)->kube_version;
    out.api_versions = (*facts)->api_versions;
    digests["cluster"] = (*facts)->digest;
  }
  service::RenderInputsStore store(kv_);
  const std::vector<service::InputRef> refs = service::InputRefsOf(resource.object);
  if (!refs.empty()) {
    absl::StatusOr<std::optional<service::RenderInputs>> record = store.Get(app);
    if (!record.ok()) return Annotate(record.status(), strings::Cat("application ", app));
    // A user's sync reads the cluster afresh; an automated one takes the record, which the
    // planner keeps current.
    const v1::SourceChanged& changed = event.source_changed();
    const std::string user_sync = changed.has_sync_request() && !changed.sync_request().automated()
                                      ? changed.sync_request().sync_id()
                                      : "";
    if (!record->has_value() || !(*record)->Matches(resource.uid, refs, user_sync)) {
      v1::Event request = service::NewEvent(service::event_type::kRenderInputsRequested, app,
                                            event.revision(), options_.emitter);
      // One request per incarnation, set of references and sync: redeliveries do not repeat it.
      request.set_id(service::EventId(service::event_type::kRenderInputsRequested, app, "",
                                      service::RefsDigest(refs),
                                      strings::Cat(resource.uid, "/", user_sync)));
      request.mutable_sync_requested()->set_sync_id(user_sync);
      request.set_correlation_id(event.correlation_id());
      request.set_message(strings::Cat(app, ": render inputs requested (", refs.size(),
                                       " ConfigMap/Secret references)"));
      DL_RETURN_IF_ERROR(service::Emit(*bus_, request, service::kStagePlan));
      return absl::UnavailableError(strings::Cat(
          "application ", app, ": waiting for the planner to resolve ", refs[0].field,
          refs.size() > 1 ? strings::Cat(" and ", refs.size() - 1, " more") : std::string(),
          " (is the planner running?)"));
    }
    absl::StatusOr<std::vector<std::string>> values = service::HelmValuesFrom(**record);
    if (!values.ok()) return Annotate(values.status(), strings::Cat("application ", app));
    auto vars = service::SubstituteFrom(**record);
    if (!vars.ok()) return Annotate(vars.status(), strings::Cat("application ", app));
    out.values_from = *std::move(values);
    out.substitute_from = *std::move(vars);
    digests["inputs"] = (*record)->digest;
  }
  out.resolved = true;
  out.digest = manifest::Sha256Hex(manifest::CanonicalJson(digests));
  return out;
}

absl::StatusOr<RenderResult> RendererService::Render(const service::StoredResource& resource,
                                                     const std::string& commit,
                                                     const ClusterInputs& inputs) {
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
  const std::string url = (*source)["repoURL"].get<std::string>();
  const std::string safe_url = git::RedactUrl(url);

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
    return absl::Status(full.status().code(), strings::Cat("application ", app, ": revision ",
                                                           commit, ": ", full.status().message()));
  }
  // A plain directory needs only its path; Kustomize and Helm the whole repository. Without
  // a generator in the spec, the path's own files tell (a kustomization, a Chart.yaml).
  const std::string path = NormalizePath(source->value("path", ""));
  // A path that is absolute or climbs out goes to Generate whole, which names the problem.
  const bool whole = source->contains("kustomize") || source->contains("helm") ||
                     path.starts_with("/") || path.find("..") != std::string::npos;
  absl::StatusOr<CheckoutCache::Handle> checkout =
      options_.checkouts->Get(url, *full, whole ? "" : path);
  if (checkout.ok() && !whole && !path.empty() && !source->contains("directory") &&
      GeneratorOf(*source, (*checkout)->path) != "directory") {
    checkout = options_.checkouts->Get(url, *full, "");
  }
  if (absl::IsNotFound(checkout.status()) && !whole && !path.empty()) {
    return absl::NotFoundError(strings::Cat("application ", app, ": path \"", path,
                                            "\" not found in ", safe_url, " at ",
                                            full->substr(0, 7)));
  }
  if (!checkout.ok()) {
    return absl::Status(checkout.status().code(),
                        strings::Cat("application ", app, ": checkout of ", safe_url, " at ",
                                     full->substr(0, 7), ": ", checkout.status().message()));
  }
  const std::string scratch = (fs::path(options_.work_dir) / app).string();
  std::error_code ec;
  fs::remove_all(scratch, ec);
  fs::create_directories(scratch, ec);
  struct Cleanup {
    std::string dir;
    ~Cleanup() {
      std::error_code ignored;
      fs::remove_all(dir, ignored);
    }
  } cleanup{scratch};

  const Json& spec = resource.object["spec"];
  std::string destination_namespace;
  if (auto d = spec.find("destination"); d != spec.end() && d->is_object()) {
    destination_namespace = d->value("namespace", "");
  }
  absl::StatusOr<Generated> generated = Generate({.application = app,
                                                  .source = *source,
                                                  .destination_namespace = destination_namespace,
                                                  .checkout = (*checkout)->path,
                                                  .scratch = scratch,
                                                  .allow_remote = RemotePolicyOf(resource),
                                                  .inputs_resolved = inputs.resolved,
                                                  .values_from = inputs.values_from,
                                                  .substitute_from = inputs.substitute_from,
                                                  .kube_version = inputs.kube_version,
                                                  .api_versions = inputs.api_versions},
                                                 *options_.tools);
  if (!generated.ok()) {
    // A tool stopped at its timeout will be stopped again: reported, not retried.
    const absl::StatusCode code = absl::IsDeadlineExceeded(generated.status())
                                      ? absl::StatusCode::kFailedPrecondition
                                      : generated.status().code();
    return absl::Status(code,
                        strings::Cat("application ", app, ": ", generated.status().message()));
  }
  RenderResult result{.objects = Json::array(),
                      .generator = generated->generator,
                      .reads = std::move(generated->reads),
                      .cacheable = !generated->remote};
  for (RenderedObject& o : generated->objects) result.objects.push_back(std::move(o.object));
  return result;
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
  log::Logger logger = log::Logger("renderer").With({{"application", app}, {"revision", commit}});

  absl::StatusOr<service::StoredResource> r = service::ResourceStore(kv_).Get("Application", app);
  if (r.status().code() == absl::StatusCode::kNotFound || (r.ok() && service::IsDeleting(*r))) {
    Renders("dropped").Increment();
    logger.Info(r.ok() ? "application being deleted, dropping" : "application gone, dropping");
    return bus::Disposition::Ack();
  }
  if (!r.ok()) {
    Renders("retry").Increment();
    return bus::Disposition::Nak(service::RetryDelay(message), std::string(r.status().message()));
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

  const bool last = options_.max_deliver > 0 &&
                    message.delivery_count >= static_cast<uint64_t>(options_.max_deliver);
  auto failed = [&](const absl::Status& error) {
    if (IsTransient(error) && !last) {
      Renders("retry").Increment();
      logger.Warn("render failed, will retry", {{"error", error}});
      return bus::Disposition::Nak(service::RetryDelay(message), std::string(error.message()));
    }
    return ReportError(event, r->spec_digest, error);
  };
  absl::StatusOr<ClusterInputs> inputs = InputsOf(*r, event);
  if (!inputs.ok()) return failed(inputs.status());

  // Everything the render depends on: a hit is a lookup.
  const Json& spec = r->object["spec"];
  const std::string cache_key = manifest::Sha256Hex(
      manifest::CanonicalJson(Json{{"application", app},
                                   {"source", spec.value("source", Json())},
                                   {"destination", spec.value("destination", Json())},
                                   {"commit", commit},
                                   {"tools", options_.tools->versions},
                                   {"inputs", inputs->digest}}));
  std::optional<CachedRender> cached = options_.cache->Get(cache_key);
  if (cached && cached->blob_backed &&
      std::chrono::steady_clock::now() - cached->stored_at >=
          absl::ToChronoNanoseconds(options_.blob_cache_lifetime)) {
    cached.reset();
  }
  const bool cache_hit = cached.has_value();
  bool cacheable = false;
  if (!cache_hit) {
    absl::StatusOr<RenderResult> result = Render(*r, commit, *inputs);
    if (!result.ok()) return failed(result.status());
    cacheable = result->cacheable;
    absl::StatusOr<v1::ManifestPayload> payload =
        service::EncodeManifests(*blobs_, result->objects);
    if (!payload.ok()) {
      Renders("retry").Increment();
      return bus::Disposition::Nak(service::RetryDelay(message),
                                   std::string(payload.status().message()));
    }
    cached = CachedRender{.manifests = payload->SerializeAsString(),
                          .blob_backed = payload->has_blob_digest(),
                          .stored_at = std::chrono::steady_clock::now(),
                          .render_digest = manifest::Digest(result->objects),
                          .generator = result->generator,
                          .objects = static_cast<int64_t>(result->objects.size()),
                          .reads = {result->reads.begin(), result->reads.end()}};
  }
  // A hit for the incarnation whose read set is recorded already costs no KV write.
  if (!cache_hit || cached->reads_uid != r->uid) {
    if (absl::Status s = service::ReadSetStore(kv_).Put(
            app, {.uid = r->uid, .revision = commit, .paths = cached->reads});
        !s.ok()) {
      logger.Warn("cannot record the read set", {{"error", s}});  // only an optimisation
    } else {
      cached->reads_uid = r->uid;
    }
    if (cache_hit || cacheable) options_.cache->Put(cache_key, *cached);
  }

  const std::string sync_id = changed.has_sync_request() ? changed.sync_request().sync_id() : "";
  v1::Event e = service::NewEvent(service::event_type::kAppRendered, app, commit, options_.emitter);
  if (const service::SyncIdentity identity = service::IdentityOf(event); identity.known()) {
    service::SetIdentity(e, identity);
    e.set_id(service::IdentityEventId(service::event_type::kAppRendered, app, identity));
  } else {
    e.set_id(
        service::EventId(service::event_type::kAppRendered, app, commit, r->spec_digest, sync_id));
  }
  e.set_correlation_id(event.correlation_id());
  e.set_severity(v1::SEVERITY_INFO);
  e.set_message(strings::Cat(app, ": rendered ", cached->objects, " objects at ",
                             commit.substr(0, 7), " (", cached->generator,
                             cache_hit ? ", cached)" : ")"));
  v1::AppRendered* rendered = e.mutable_app_rendered();
  rendered->set_spec_digest(r->spec_digest);
  rendered->set_render_digest(cached->render_digest);
  rendered->set_generator(cached->generator);
  rendered->set_cache_hit(cache_hit);
  if (!rendered->mutable_manifests()->ParseFromString(cached->manifests)) {
    return bus::Disposition::Nak(service::RetryDelay(message), "cached render does not decode");
  }
  const auto elapsed = std::chrono::steady_clock::now() - started;
  RenderSeconds().Observe(std::chrono::duration<double>(elapsed).count());
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
  logger.Info("rendered", {{"objects", cached->objects},
                           {"generator", cached->generator},
                           {"cached", cache_hit},
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

  absl::Status s =
      service::StatusStore(kv_)
          .Update(app,
                  [&](v1::AppStatus& st) {
                    service::SetCondition(st, "RenderError", true, ConditionReason(error), message);
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
