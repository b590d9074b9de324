#include "cli/render_command.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <ostream>
#include <sstream>

#include "common/git/libgit2_client.h"
#include "common/git/url.h"
#include "common/kube/curl_kube_client.h"
#include "common/kube/kubeconfig.h"
#include "common/resources/resources.h"
#include "services/common/render_inputs.h"
#include "services/renderer/generate.h"
#include "services/sync/app_spec.h"
#include "services/sync/live.h"
#include "services/sync/plan.h"

namespace driftless::cli {
namespace {

namespace fs = std::filesystem;
using manifest::Json;

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError("cannot read " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Reads the file behind `<field>File: path`, relative to the manifest's directory.
resources::FileReader RelativeReader(const std::string& manifest_path) {
  const fs::path base = fs::path(manifest_path).parent_path();
  return [base](const std::string& p) -> absl::StatusOr<std::string> {
    const fs::path full = fs::path(p).is_absolute() ? fs::path(p) : base / p;
    return ReadFile(full.string());
  };
}

absl::StatusOr<git::RefSpec> RefSpecOf(const Json& source) {
  if (!source.contains("ref") || !source["ref"].is_object()) return git::RefSpec::Branch("HEAD");
  const Json& ref = source["ref"];
  if (ref.contains("branch")) return git::RefSpec::Branch(ref["branch"].get<std::string>());
  if (ref.contains("tag")) return git::RefSpec::Tag(ref["tag"].get<std::string>());
  if (ref.contains("semver")) return git::RefSpec::Semver(ref["semver"].get<std::string>());
  if (ref.contains("commit")) return git::RefSpec::Commit(ref["commit"].get<std::string>());
  return absl::InvalidArgumentError("spec.source.ref: nothing set");
}

// A temporary directory removed when this goes out of scope.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "driftless-render-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) != nullptr) path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) fs::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Checks the application's repository out (whole: Kustomize bases and value files may live
// outside spec.source.path) into `checkout_dir`.
absl::Status FetchSource(const Json& source, const std::string& cache_dir,
                         const std::string& checkout_dir) {
  const std::string url = source["repoURL"].get<std::string>();
  git::Libgit2Client client({.cache_dir = cache_dir});
  DL_ASSIGN_OR_RETURN(git::RefMap refs, client.Fetch(url, {}));
  DL_ASSIGN_OR_RETURN(git::RefSpec spec, RefSpecOf(source));
  DL_ASSIGN_OR_RETURN(git::Resolved resolved,
                      git::Resolve(refs, spec, git::RedactUrl(url), [&](std::string_view sha) {
                        return client.ExpandCommit(url, sha);
                      }));
  return client.Checkout(url, resolved.commit, checkout_dir, "").status();
}

absl::StatusOr<std::vector<Json>> RenderApplication(const resources::Resource& app,
                                                    const RenderOptions& options,
                                                    const std::string& cache_dir,
                                                    const renderer::Tools& tools,
                                                    kube::KubeClient* kube, std::ostream& notes) {
  const Json& spec = app.object["spec"];
  TempDir work;
  if (work.path().empty()) return absl::InternalError("cannot create a temporary directory");
  std::string checkout = work.path() + "/src";
  if (!options.local_dir.empty()) {
    std::error_code ec;
    checkout = fs::absolute(options.local_dir, ec).lexically_normal().string();
  } else {
    DL_RETURN_IF_ERROR(FetchSource(spec["source"], cache_dir, checkout));
  }
  const sync::AppSpec app_spec = sync::ParseAppSpec(app.object);
  const std::string scratch = work.path() + "/render";
  fs::create_directories(scratch);
  renderer::GenerateRequest request{.application = app.name,
                                    .source = spec["source"],
                                    .destination_namespace = app_spec.ns,
                                    .checkout = checkout,
                                    .scratch = scratch};
  const std::vector<service::InputRef> refs = service::InputRefsOf(app.object);
  if (kube != nullptr) {
    DL_ASSIGN_OR_RETURN(service::ClusterFacts facts, sync::ReadClusterFacts(*kube));
    DL_ASSIGN_OR_RETURN(service::RenderInputs inputs,
                        service::ResolveRenderInputs("", refs, sync::InputFetcherFor(*kube)));
    DL_ASSIGN_OR_RETURN(request.values_from, service::HelmValuesFrom(inputs));
    DL_ASSIGN_OR_RETURN(request.substitute_from, service::SubstituteFrom(inputs));
    request.kube_version = facts.kube_version;
    request.api_versions = facts.api_versions;
    request.inputs_resolved = true;
  } else if (!refs.empty()) {
    notes << "note: application " << app.name << ": " << refs[0].field
          << (refs.size() > 1 ? " and the other references" : "")
          << " read the cluster (pass --kubeconfig): optional ones are left out, "
             "substituteFrom variables are unset\n";
  }
  DL_ASSIGN_OR_RETURN(renderer::Generated generated, renderer::Generate(request, tools));
  std::vector<Json> objects;
  for (auto& r : generated.objects) objects.push_back(std::move(r.object));

  // As the planner prepares them (services/sync/plan.h PrepareDesired).
  absl::Status scope_error;
  sync::PrepareOptions prepare{.application = app.name,
                               .destination_namespace = app_spec.ns,
                               .create_namespace = app_spec.create_namespace};
  if (kube != nullptr) {
    prepare.is_namespaced = sync::ClusterScope(*kube, &scope_error);
  } else {
    prepare.is_namespaced = sync::BuiltInScope;
    prepare.on_unknown_scope = [&](std::string_view api_version, std::string_view kind) {
      notes << "note: application " << app.name << ": the scope of " << api_version << " " << kind
            << " is not known offline: taken as namespaced (pass --kubeconfig)\n";
    };
  }
  absl::StatusOr<std::vector<Json>> prepared = sync::PrepareDesired(std::move(objects), prepare);
  DL_RETURN_IF_ERROR(scope_error);
  return prepared;
}

}  // namespace

absl::Status RunRender(const RenderOptions& options, std::ostream& out, std::ostream& notes) {
  TempDir default_cache;
  const std::string cache_dir =
      options.cache_dir.empty() ? default_cache.path() + "/git" : options.cache_dir;
  std::error_code ec;
  const fs::path self = fs::read_symlink("/proc/self/exe", ec);
  const renderer::Tools tools =
      renderer::FindTools(renderer::DefaultToolPaths(ec ? "" : self.parent_path().string()));
  std::unique_ptr<kube::CurlKubeClient> kube;
  if (!options.kubeconfig.empty()) {
    absl::StatusOr<kube::RestConfig> rest =
        kube::LoadKubeconfig(options.kubeconfig, options.context);
    if (!rest.ok()) return Annotate(rest.status(), "--kubeconfig " + options.kubeconfig);
    DL_ASSIGN_OR_RETURN(kube, kube::CurlKubeClient::New(*std::move(rest)));
  }
  std::vector<Json> objects;
  int apps = 0;
  for (const std::string& file : options.files) {
    DL_ASSIGN_OR_RETURN(std::string text, ReadFile(file));
    DL_ASSIGN_OR_RETURN(auto rs, resources::ParseResources(text, file));
    for (resources::Resource& r : rs) {
      if (r.kind != "Application") continue;
      if (!options.application.empty() && r.name != options.application) continue;
      ++apps;
      auto rendered = RenderApplication(r, options, cache_dir, tools, kube.get(), notes);
      if (!rendered.ok()) {
        return Annotate(rendered.status(),
                        "application " + r.name + " (" + r.location.ToString() + ")");
      }
      for (Json& o : *rendered) objects.push_back(std::move(o));
    }
  }
  if (apps == 0) {
    return absl::NotFoundError(options.application.empty()
                                   ? "no Application in the given files"
                                   : "no Application named " + options.application);
  }
  if (options.output == "json") {
    out << Json(objects).dump(2) << "\n";
  } else {
    out << manifest::ToYamlStream(objects);
  }
  return absl::OkStatus();
}

absl::Status RunValidate(const std::vector<std::string>& files, std::ostream& out) {
  for (const std::string& file : files) {
    DL_ASSIGN_OR_RETURN(std::string text, ReadFile(file));
    DL_ASSIGN_OR_RETURN(auto rs, resources::ParseResources(text, file));
    for (resources::Resource& r : rs) {
      DL_RETURN_IF_ERROR(resources::ResolveSecretFiles(r.object, RelativeReader(file)));
      out << r.kind << "/" << r.name << " valid (" << r.location.ToString() << ")\n";
    }
  }
  return absl::OkStatus();
}

}  // namespace driftless::cli
