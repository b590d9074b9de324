#include "services/renderer/helm.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/manifest/object.h"
#include "common/strings/str.h"
#include "services/renderer/paths.h"

namespace driftless::renderer {
namespace {

namespace fs = std::filesystem;
using manifest::Json;

constexpr int kMaxDependencyDepth = 8;

absl::StatusOr<Json> ReadChartYaml(const fs::path& dir, const std::string& display) {
  std::ifstream in(dir / "Chart.yaml", std::ios::binary);
  if (!in) return absl::NotFoundError(strings::Cat("no Chart.yaml in ", display));
  std::stringstream ss;
  ss << in.rdbuf();
  return manifest::ParseYaml(ss.str(), display + "/Chart.yaml");
}

// True if charts/ of `dir` holds the dependency (an unpacked chart or an archive).
bool Vendored(const fs::path& dir, const std::string& name) {
  std::error_code ec;
  if (fs::is_directory(dir / "charts" / name, ec)) return true;
  if (!fs::is_directory(dir / "charts", ec)) return false;
  for (const auto& entry : fs::directory_iterator(dir / "charts", ec)) {
    const std::string file = entry.path().filename().string();
    if (file.starts_with(name + "-") && file.ends_with(".tgz")) return true;
  }
  return false;
}

class ChartPreparer {
 public:
  ChartPreparer(const std::string& root, const std::string& scratch,
                const RemotePolicy& allow_remote, const HelmRunner& helm, ReadSet* reads)
      : root_(fs::path(root).lexically_normal()),
        scratch_(scratch),
        allow_remote_(allow_remote),
        helm_(helm),
        reads_(reads) {}

  // The chart at repository-relative `rel`, with dependencies vendored into a copy at `into`
  // when any is missing (or always when `into` must exist, for a nested dependency).
  absl::StatusOr<std::string> Prepare(const std::string& rel, const fs::path& into, bool copy,
                                      int depth) {
    if (depth > kMaxDependencyDepth) {
      return absl::InvalidArgumentError(
          strings::Cat(rel, ": chart dependencies nested deeper than ", kMaxDependencyDepth));
    }
    const fs::path dir = root_ / rel;
    const std::string display = rel.empty() ? "." : rel;
    DL_ASSIGN_OR_RETURN(Json chart, ReadChartYaml(dir, display));
    reads_->insert(rel);
    std::vector<Json> missing;
    if (chart.is_object() && chart.contains("dependencies") && chart["dependencies"].is_array()) {
      for (const Json& d : chart["dependencies"]) {
        if (!d.is_object() || !d.contains("name") || !d["name"].is_string()) {
          return absl::InvalidArgumentError(
              strings::Cat(display, "/Chart.yaml: dependencies: an entry has no name"));
        }
        if (!Vendored(dir, d["name"].get<std::string>())) missing.push_back(d);
      }
    }
    if (missing.empty() && !copy) return dir.string();
    std::error_code ec;
    fs::create_directories(into.parent_path(), ec);
    fs::copy(dir, into, fs::copy_options::recursive, ec);
    if (ec) {
      return absl::InternalError(strings::Cat("copying chart ", display, ": ", ec.message()));
    }
    for (const Json& d : missing) {
      DL_RETURN_IF_ERROR(Vendor(d, rel, display, into, depth));
    }
    return into.string();
  }

 private:
  absl::Status Vendor(const Json& dep, const std::string& rel, const std::string& display,
                      const fs::path& into, int depth) {
    const std::string name = dep["name"].get<std::string>();
    const std::string repository = dep.value("repository", "");
    const std::string version = dep.value("version", "");
    const std::string where = strings::Cat(display, "/Chart.yaml: dependency ", name);
    if (repository.starts_with("file://")) {
      const std::string path = repository.substr(7);
      const fs::path full = path.starts_with("/") ? fs::path(path) : root_ / rel / path;
      std::optional<std::string> dep_rel = ContainedPath(root_, full);
      if (!dep_rel) {
        return absl::InvalidArgumentError(
            strings::Cat(where, ": ", repository, " leaves the repository"));
      }
      std::error_code ec;
      if (!fs::is_directory(full, ec)) {
        return absl::NotFoundError(strings::Cat(where, ": ", repository, " does not exist"));
      }
      if (!ResolvesInside(root_, full)) {
        return absl::InvalidArgumentError(
            strings::Cat(where, ": ", repository, " resolves outside the repository"));
      }
      return Prepare(*dep_rel, into / "charts" / name, /*copy=*/true, depth + 1).status();
    }
    if (repository.empty() || repository.starts_with("@") || repository.starts_with("alias:")) {
      return absl::InvalidArgumentError(
          strings::Cat(where, " is not in charts/ and names no repository URL to fetch it from"));
    }
    if (!allow_remote_ || !allow_remote_(repository)) {
      return absl::InvalidArgumentError(
          strings::Cat(where, " is not vendored in charts/, and its repository ", repository,
                       " is not allowed (the application's project does not list it in "
                       "sourceRepos)"));
    }
    std::vector<std::string> args = HelmPullArgs(repository, name, version);
    args.insert(args.end(), {"--destination", (into / "charts").string()});
    std::error_code ec;
    fs::create_directories(into / "charts", ec);
    absl::Status pulled = helm_(args).status();
    if (!pulled.ok()) return Annotate(pulled, where);
    return absl::OkStatus();
  }

  fs::path root_;
  fs::path scratch_;
  const RemotePolicy& allow_remote_;
  const HelmRunner& helm_;
  ReadSet* reads_;
};

}  // namespace

std::vector<std::string> HelmPullArgs(const std::string& repository, const std::string& name,
                                      const std::string& version) {
  std::vector<std::string> args = {"pull"};
  if (repository.starts_with("oci://")) {
    std::string ref = repository;
    while (ref.ends_with("/")) ref.pop_back();
    args.push_back(ref + "/" + name);
  } else {
    args.insert(args.end(), {name, "--repo", repository});
  }
  if (!version.empty()) args.insert(args.end(), {"--version", version});
  return args;
}

absl::StatusOr<std::string> PrepareChart(const std::string& root, const std::string& chart_path,
                                         const std::string& scratch,
                                         const RemotePolicy& allow_remote, const HelmRunner& helm,
                                         ReadSet* reads) {
  ChartPreparer preparer(root, scratch, allow_remote, helm, reads);
  const std::string name = chart_path.empty() ? "chart" : fs::path(chart_path).filename().string();
  return preparer.Prepare(chart_path, fs::path(scratch) / "chart" / name, /*copy=*/false, 0);
}

absl::StatusOr<Json> InlineValues(const Json& helm) {
  for (const char* field : {"valuesObject", "values"}) {
    auto it = helm.find(field);
    if (it == helm.end() || it->is_null()) continue;
    if (it->is_string()) {
      DL_ASSIGN_OR_RETURN(
          Json parsed,
          manifest::ParseYaml(it->get<std::string>(), strings::Cat("spec.source.helm.", field)));
      if (parsed.is_null()) continue;
      if (!parsed.is_object()) {
        return absl::InvalidArgumentError(
            strings::Cat("spec.source.helm.", field, ": the values must be a mapping"));
      }
      return parsed;
    }
    if (!it->is_object()) {
      return absl::InvalidArgumentError(
          strings::Cat("spec.source.helm.", field, ": the values must be a mapping"));
    }
    return *it;
  }
  return Json();
}

std::set<std::string> ChartCrdNames(std::string_view helm_output) {
  std::set<std::string> names;
  // A "# Source: <file>" comment names the file of the documents that follow it (a crds/
  // file that starts with "---" leaves the comment alone in an empty document).
  bool in_crds_dir = false;
  size_t start = 0;
  while (start < helm_output.size()) {
    size_t end = helm_output.find("\n---", start);
    if (end == std::string_view::npos) end = helm_output.size();
    const std::string_view doc = helm_output.substr(start, end - start);
    start = end + 4;
    if (const size_t source = doc.find("# Source: "); source != std::string_view::npos) {
      const std::string_view path = doc.substr(source, doc.find('\n', source) - source);
      in_crds_dir = path.find("/crds/") != std::string_view::npos;
    }
    if (!in_crds_dir || doc.find("CustomResourceDefinition") == std::string_view::npos) continue;
    absl::StatusOr<Json> object = manifest::ParseYaml(doc, "helm output");
    if (!object.ok() || !object->is_object() ||
        object->value("kind", "") != "CustomResourceDefinition") {
      continue;
    }
    if (std::string name = manifest::NameOf(*object); !name.empty()) names.insert(name);
  }
  return names;
}

void ApplyCrdPolicy(const Json& helm, const std::set<std::string>& chart_crds,
                    std::vector<RenderedObject>* objects) {
  if (chart_crds.empty()) return;
  const std::string policy = helm.value("crds", "Create");
  const std::string options =
      policy == "CreateReplace" ? "Prune=false" : "Prune=false,CreateOnly=true";
  for (RenderedObject& r : *objects) {
    Json& o = r.object;
    if (manifest::KindOf(o) != "CustomResourceDefinition" ||
        !chart_crds.contains(manifest::NameOf(o))) {
      continue;
    }
    Json& md = o["metadata"];
    if (!md.contains("annotations") || !md["annotations"].is_object()) {
      md["annotations"] = Json::object();
    }
    // The sync core's per-object options (services/sync/plan.h, kSyncOptionsAnnotation).
    Json& value = md["annotations"]["driftless.dev/sync-options"];
    const std::string before = value.is_string() ? value.get<std::string>() : "";
    value = before.empty() ? options : strings::Cat(before, ",", options);
  }
}

absl::StatusOr<std::vector<std::string>> HelmTemplateArgs(const Json& helm,
                                                          const HelmTemplateInputs& in) {
  std::vector<std::string> args = {"template", in.release_name, in.chart_dir, "--namespace",
                                   in.namespace_name};
  const std::string crds = helm.value("crds", helm.value("skipCrds", false) ? "Skip" : "Create");
  if (crds != "Skip") args.push_back("--include-crds");
  if (helm.value("skipTests", false)) args.push_back("--skip-tests");
  for (const std::string& f : in.value_files) args.insert(args.end(), {"--values", f});
  if (!in.inline_values_file.empty()) args.insert(args.end(), {"--values", in.inline_values_file});
  if (auto p = helm.find("parameters"); p != helm.end() && p->is_array()) {
    for (const Json& param : *p) {
      const std::string name = param.value("name", "");
      if (name.empty()) {
        return absl::InvalidArgumentError("spec.source.helm.parameters: an entry has no name");
      }
      const Json& value = param.contains("value") ? param["value"] : Json("");
      const std::string text = value.is_string() ? value.get<std::string>() : value.dump();
      args.insert(args.end(), {param.value("forceString", false) ? "--set-string" : "--set",
                               strings::Cat(name, "=", text)});
    }
  }
  const std::string kube_version = helm.value("kubeVersion", in.kube_version);
  if (!kube_version.empty()) args.insert(args.end(), {"--kube-version", kube_version});
  std::vector<std::string> api_versions = in.api_versions;
  if (auto a = helm.find("apiVersions"); a != helm.end() && a->is_array()) {
    for (const Json& v : *a) api_versions.push_back(v.get<std::string>());
  }
  for (const std::string& v : api_versions) args.insert(args.end(), {"--api-versions", v});
  return args;
}

}  // namespace driftless::renderer
