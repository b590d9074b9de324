#include "cli/render_command.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <ostream>
#include <sstream>

#include "common/git/libgit2_client.h"
#include "common/git/url.h"
#include "common/resources/resources.h"
#include "services/renderer/generate.h"

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
                                                    const renderer::Tools& tools) {
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
  std::string destination_namespace;
  if (spec.contains("destination")) {
    destination_namespace = spec["destination"].value("namespace", "");
  }
  const std::string scratch = work.path() + "/render";
  fs::create_directories(scratch);
  DL_ASSIGN_OR_RETURN(renderer::Generated generated,
                      renderer::Generate({.application = app.name,
                                          .source = spec["source"],
                                          .destination_namespace = destination_namespace,
                                          .checkout = checkout,
                                          .scratch = scratch},
                                         tools));
  std::vector<Json> out;
  for (auto& r : generated.objects) out.push_back(std::move(r.object));
  return out;
}

}  // namespace

absl::Status RunRender(const RenderOptions& options, std::ostream& out) {
  TempDir default_cache;
  const std::string cache_dir =
      options.cache_dir.empty() ? default_cache.path() + "/git" : options.cache_dir;
  std::error_code ec;
  const fs::path self = fs::read_symlink("/proc/self/exe", ec);
  const renderer::Tools tools =
      renderer::FindTools(renderer::DefaultToolPaths(ec ? "" : self.parent_path().string()));
  std::vector<Json> objects;
  int apps = 0;
  for (const std::string& file : options.files) {
    DL_ASSIGN_OR_RETURN(std::string text, ReadFile(file));
    DL_ASSIGN_OR_RETURN(auto rs, resources::ParseResources(text, file));
    for (resources::Resource& r : rs) {
      if (r.kind != "Application") continue;
      if (!options.application.empty() && r.name != options.application) continue;
      ++apps;
      auto rendered = RenderApplication(r, options, cache_dir, tools);
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
