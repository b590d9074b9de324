#include "services/renderer/generate.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_replace.h"
#include "common/process/run.h"
#include "common/strings/str.h"
#include "services/renderer/file_tree.h"
#include "services/renderer/helm.h"
#include "services/renderer/paths.h"

namespace driftless::renderer {
namespace {

namespace fs = std::filesystem;
using manifest::Json;

std::string Display(const std::string& rel) { return rel.empty() ? "." : rel; }

// `path` (relative to the repository directory `base`) as a repository-relative path, or an
// error naming `what` if it is absolute or leaves the repository.
absl::StatusOr<std::string> InsideRepository(const std::string& checkout, const std::string& base,
                                             const std::string& path, const std::string& what) {
  if (path.empty()) return absl::InvalidArgumentError(what + ": empty path");
  if (path.starts_with("/")) {
    return absl::InvalidArgumentError(strings::Cat(what, ": path ", path, " is absolute"));
  }
  const fs::path root = fs::path(checkout).lexically_normal();
  const fs::path full = root / base / path;
  std::optional<std::string> rel = ContainedPath(root, full);
  if (!rel) {
    return absl::InvalidArgumentError(
        strings::Cat(what, ": path ", path, " leaves the repository"));
  }
  std::error_code ec;
  if (fs::exists(full, ec) && !ResolvesInside(root, full)) {
    return absl::InvalidArgumentError(
        strings::Cat(what, ": path ", path, " resolves outside the repository"));
  }
  return *rel;
}

absl::StatusOr<std::string> ReadFile(const fs::path& path, const std::string& display) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(strings::Cat(display, " does not exist"));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

absl::Status WriteFile(const fs::path& path, std::string_view text) {
  std::error_code ec;
  fs::create_directories(path.parent_path(), ec);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out) return absl::InternalError("cannot write " + path.filename().string());
  return absl::OkStatus();
}

// Runs the tools of one render: private HOME and helm directories, no inherited environment,
// paths of the private directories removed from what the tools print.
class ToolRunner {
 public:
  ToolRunner(const Tools& tools, const GenerateRequest& request)
      : tools_(tools), checkout_(request.checkout), scratch_(request.scratch) {}

  absl::StatusOr<std::string> Run(const std::string& tool, std::vector<std::string> argv) {
    const std::string home = scratch_ + "/home";
    std::error_code ec;
    fs::create_directories(home, ec);
    absl::StatusOr<process::RunResult> r = process::Run(
        {.argv = std::move(argv),
         .cwd = scratch_,
         .env = process::ScrubbedEnv(
             {"HOME=" + home, "XDG_CONFIG_HOME=" + home + "/.config",
              "XDG_CACHE_HOME=" + home + "/.cache", "HELM_CACHE_HOME=" + home + "/helm/cache",
              "HELM_CONFIG_HOME=" + home + "/helm/config", "HELM_DATA_HOME=" + home + "/helm/data",
              "KUBECONFIG=/dev/null", "GIT_TERMINAL_PROMPT=0"}),
         .timeout = tools_.timeout,
         .max_output = tools_.max_output});
    if (!r.ok()) {
      if (r.status().code() == absl::StatusCode::kNotFound) {
        return absl::FailedPreconditionError(strings::Cat(tool, " is not installed"));
      }
      return absl::Status(r.status().code(), strings::Cat(tool, ": ", Scrub(r.status().message())));
    }
    if (r->exit_code != 0) {
      std::string why = process::FirstLines(r->err, 8);
      if (why.empty()) why = strings::Cat("exit status ", r->exit_code);
      return absl::InvalidArgumentError(strings::Cat(tool, ": ", Scrub(why)));
    }
    return std::move(r->out);
  }

  absl::StatusOr<std::string> Helm(const std::vector<std::string>& args) {
    if (tools_.helm.empty()) return absl::FailedPreconditionError("helm is not installed");
    std::vector<std::string> argv = {tools_.helm};
    argv.insert(argv.end(), args.begin(), args.end());
    return Run("helm " + args.front(), std::move(argv));
  }

  absl::StatusOr<std::string> Kustomize(const std::string& dir, const Json& options) {
    if (tools_.kustomize.empty()) {
      return absl::FailedPreconditionError("kustomize is not installed (neither kubectl)");
    }
    std::vector<std::string> argv = tools_.kustomize;
    argv.push_back(dir);
    if (options.value("loadRestrictor", "") == "LoadRestrictionsNone") {
      argv.push_back("--load-restrictor=LoadRestrictionsNone");
    }
    if (options.value("enableHelm", false)) {
      if (tools_.helm.empty()) return absl::FailedPreconditionError("helm is not installed");
      argv.insert(argv.end(), {"--enable-helm", "--helm-command", tools_.helm});
    }
    return Run("kustomize build", std::move(argv));
  }

  // Tool output and errors never show the private directories.
  std::string Scrub(absl::string_view text) const {
    // Longest match first at each position: "<checkout>/x" becomes "x", "<checkout>" ".".
    return absl::StrReplaceAll(text,
                               {{checkout_ + "/", ""}, {checkout_, "."}, {scratch_, "<render>"}});
  }

 private:
  const Tools& tools_;
  std::string checkout_;
  std::string scratch_;
};

// Reads patch files named by `field` (relative to the application's directory `path`) from the
// repository, adding each to `reads`.
PatchReader RepositoryPatchReader(const GenerateRequest& req, const std::string& path,
                                  std::string field, ReadSet* reads) {
  return [&req, path, field = std::move(field),
          reads](const std::string& p) -> absl::StatusOr<std::string> {
    DL_ASSIGN_OR_RETURN(std::string rel, InsideRepository(req.checkout, path, p, field));
    reads->insert(rel);
    return ReadFile(fs::path(req.checkout) / rel, strings::Cat(field, ": ", rel));
  };
}

absl::StatusOr<Generated> RenderKustomize(const GenerateRequest& req, const std::string& path,
                                          ToolRunner& run) {
  Generated g{.generator = "kustomize"};
  const Json& source = req.source;
  const Json options = source.contains("kustomize") && source["kustomize"].is_object()
                           ? source["kustomize"]
                           : Json::object();
  DL_RETURN_IF_ERROR(CheckKustomization(req.checkout, path, req.allow_remote, &g.reads));
  std::string build_dir = (fs::path(req.checkout) / path).lexically_normal().string();
  if (HasOverlayOptions(options)) {
    if (options.contains("components")) {
      for (const Json& c : options["components"]) {
        DL_ASSIGN_OR_RETURN(std::string rel,
                            InsideRepository(req.checkout, path, c.get<std::string>(),
                                             "spec.source.kustomize.components"));
        DL_RETURN_IF_ERROR(CheckKustomization(req.checkout, rel, req.allow_remote, &g.reads));
      }
    }
    const PatchReader read_patch =
        RepositoryPatchReader(req, path, "spec.source.kustomize.patches", &g.reads);
    const fs::path overlay = fs::path(req.scratch) / "overlay";
    const std::string app_dir = fs::path(build_dir).lexically_relative(overlay).generic_string();
    DL_ASSIGN_OR_RETURN(std::string text, OverlayKustomization(options, app_dir, read_patch));
    DL_RETURN_IF_ERROR(WriteFile(overlay / "kustomization.yaml", text));
    build_dir = overlay.string();
  }
  absl::StatusOr<std::string> out = run.Kustomize(build_dir, options);
  if (!out.ok()) {
    const std::string file = KustomizationFileIn((fs::path(req.checkout) / path).string());
    return Annotate(out.status(), path.empty() ? file : strings::Cat(path, "/", file));
  }
  DL_ASSIGN_OR_RETURN(g.objects,
                      ObjectsFromStream(*out, strings::Cat(Display(path), " (kustomize build)")));
  return g;
}

absl::StatusOr<std::string> PullChart(const Json& chart, const std::string& scratch,
                                      ToolRunner& run) {
  const std::string repo = chart.value("repoURL", "");
  const std::string name = chart.value("name", "");
  const std::string version = chart.value("version", "");
  const std::string dest = scratch + "/pulled";
  std::vector<std::string> args = HelmPullArgs(repo, name, version);
  args.insert(args.end(), {"--untar", "--untardir", dest});
  absl::Status pulled = run.Helm(args).status();
  if (!pulled.ok()) {
    // A chart or version the repository does not have stays missing; anything else (the
    // repository unreachable, a 5xx) may pass: retried like a git transport error.
    const std::string why(pulled.message());
    const bool missing = why.find("not found") != std::string::npos ||
                         why.find("no chart version") != std::string::npos ||
                         why.find("no chart name") != std::string::npos;
    if (pulled.code() == absl::StatusCode::kInvalidArgument && !missing) {
      pulled = absl::UnavailableError(pulled.message());
    }
    return Annotate(pulled, "spec.source.helm.chart");
  }
  return dest + "/" + name;
}

absl::StatusOr<Generated> RenderHelm(const GenerateRequest& req, const std::string& path,
                                     ToolRunner& run) {
  Generated g{.generator = "helm"};
  const Json& source = req.source;
  const Json helm =
      source.contains("helm") && source["helm"].is_object() ? source["helm"] : Json::object();
  if (!req.inputs_resolved && helm.contains("valuesFrom") && helm["valuesFrom"].is_array()) {
    for (const Json& ref : helm["valuesFrom"]) {
      if (!ref.value("optional", false)) {
        return absl::FailedPreconditionError(strings::Cat(
            "spec.source.helm.valuesFrom: ", ref.value("kind", "ConfigMap"), " ",
            ref.value("name", ""),
            ": values from the cluster are only available to the platform's renderer (this "
            "render has no cluster; mark it optional to render without it)"));
      }
    }
  }
  auto helm_runner = [&](const std::vector<std::string>& args) { return run.Helm(args); };
  std::string chart_dir;
  if (helm.contains("chart")) {
    const std::string repo = helm["chart"].value("repoURL", "");
    if (!req.allow_remote || !req.allow_remote(repo)) {
      return absl::InvalidArgumentError(
          strings::Cat("spec.source.helm.chart: repository ", repo,
                       " is not allowed (the application's project does not list it in "
                       "sourceRepos)"));
    }
    DL_ASSIGN_OR_RETURN(chart_dir, PullChart(helm["chart"], req.scratch, run));
  } else {
    DL_ASSIGN_OR_RETURN(chart_dir, PrepareChart(req.checkout, path, req.scratch, req.allow_remote,
                                                helm_runner, &g.reads));
  }
  HelmTemplateInputs in{.release_name = helm.value("releaseName", req.application),
                        .namespace_name = helm.value("namespace", req.destination_namespace),
                        .chart_dir = chart_dir,
                        .kube_version = req.kube_version,
                        .api_versions = req.api_versions};
  if (in.namespace_name.empty()) in.namespace_name = "default";
  if (helm.contains("valueFiles")) {
    const bool ignore_missing = helm.value("ignoreMissingValueFiles", false);
    for (const Json& f : helm["valueFiles"]) {
      const std::string file = f.get<std::string>();
      if (IsRemoteReference(file)) {
        return absl::InvalidArgumentError(strings::Cat("spec.source.helm.valueFiles: ", file,
                                                       " is not a path in the repository"));
      }
      DL_ASSIGN_OR_RETURN(std::string rel, InsideRepository(req.checkout, path, file,
                                                            "spec.source.helm.valueFiles"));
      std::error_code ec;
      const fs::path full = fs::path(req.checkout) / rel;
      if (!fs::is_regular_file(full, ec)) {
        if (ignore_missing) continue;
        return absl::NotFoundError(
            strings::Cat("spec.source.helm.valueFiles: ", rel, " does not exist"));
      }
      g.reads.insert(rel);
      in.value_files.push_back(full.string());
    }
  }
  // valueFiles, then valuesFrom (in declared order), then inline values, then parameters.
  for (size_t i = 0; i < req.values_from.size(); ++i) {
    const std::string file = strings::Cat(req.scratch, "/values-from-", i, ".yaml");
    DL_RETURN_IF_ERROR(WriteFile(file, req.values_from[i]));
    in.value_files.push_back(file);
  }
  DL_ASSIGN_OR_RETURN(Json values, InlineValues(helm));
  if (!values.is_null()) {
    in.inline_values_file = req.scratch + "/values-inline.yaml";
    DL_RETURN_IF_ERROR(WriteFile(in.inline_values_file, values.dump()));
  }
  DL_ASSIGN_OR_RETURN(std::vector<std::string> args, HelmTemplateArgs(helm, in));
  absl::StatusOr<std::string> templated = run.Helm(args);
  if (!templated.ok()) {
    return Annotate(templated.status(),
                    helm.contains("chart") ? "spec.source.helm.chart" : Display(path));
  }
  std::string out = *std::move(templated);
  // Before post-rendering, which drops helm's "# Source:" comments.
  const std::set<std::string> chart_crds = ChartCrdNames(out);
  if (helm.contains("postRenderers") && helm["postRenderers"].is_array()) {
    const PatchReader read_patch = RepositoryPatchReader(
        req, path, "spec.source.helm.postRenderers.kustomize.patches", &g.reads);
    int i = 0;
    for (const Json& post : helm["postRenderers"]) {
      const fs::path dir = fs::path(req.scratch) / strings::Cat("post-render-", i++);
      DL_RETURN_IF_ERROR(WriteFile(dir / "helm-output.yaml", out));
      DL_ASSIGN_OR_RETURN(std::string k, PostRenderKustomization(post["kustomize"],
                                                                 "helm-output.yaml", read_patch));
      DL_RETURN_IF_ERROR(WriteFile(dir / "kustomization.yaml", k));
      DL_ASSIGN_OR_RETURN(out, run.Kustomize(dir.string(), Json::object()));
    }
  }
  DL_ASSIGN_OR_RETURN(g.objects,
                      ObjectsFromStream(out, strings::Cat(Display(path), " (helm template)")));
  ApplyCrdPolicy(helm, chart_crds, &g.objects);
  return g;
}

absl::StatusOr<Generated> RenderPlainDirectory(const GenerateRequest& req,
                                               const std::string& path) {
  Generated g{.generator = "directory"};
  const fs::path dir = fs::path(req.checkout) / path;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    return absl::NotFoundError(strings::Cat("path \"", path, "\" not found in the repository"));
  }
  DL_ASSIGN_OR_RETURN(std::vector<SourceFile> files, ReadFileTree(dir.string()));
  if (!path.empty()) {
    for (SourceFile& f : files) f.path = strings::Cat(path, "/", f.path);
  }
  g.reads.insert(path);
  DL_ASSIGN_OR_RETURN(g.objects, RenderDirectory(files, path, DirectoryOptionsOf(req.source), {}));
  return g;
}

std::string VersionLine(const std::vector<std::string>& argv) {
  absl::StatusOr<process::RunResult> r =
      process::Run({.argv = argv,
                    .env = process::ScrubbedEnv({"HOME=/nonexistent"}),
                    .timeout = absl::Seconds(20)});
  if (!r.ok() || r->exit_code != 0) return "unknown";
  return process::FirstLines(r->out, 3);
}

std::string FindInPath(const std::string& name) {
  if (name.find('/') != std::string::npos) return access(name.c_str(), X_OK) == 0 ? name : "";
  const char* path = std::getenv("PATH");
  if (path == nullptr) return "";
  std::string_view rest(path);
  while (!rest.empty()) {
    const size_t colon = rest.find(':');
    const std::string dir(rest.substr(0, colon));
    rest = colon == std::string_view::npos ? std::string_view() : rest.substr(colon + 1);
    if (dir.empty()) continue;
    const std::string candidate = dir + "/" + name;
    if (access(candidate.c_str(), X_OK) == 0) {
      std::error_code ec;
      const fs::path abs = fs::absolute(candidate, ec);
      return ec ? candidate : abs.string();
    }
  }
  return "";
}

}  // namespace

ToolPaths DefaultToolPaths(const std::string& exe_dir) {
  auto find = [&](const std::string& name) {
    std::vector<std::string> dirs;
    if (const char* d = std::getenv("DRIFTLESS_TOOLS_DIR"); d != nullptr && *d) dirs.push_back(d);
    if (!exe_dir.empty()) dirs.push_back(exe_dir + "/../../.tools/bin");
    for (const std::string& dir : dirs) {
      const std::string candidate = dir + "/" + name;
      if (access(candidate.c_str(), X_OK) == 0) {
        std::error_code ec;
        const fs::path abs = fs::absolute(candidate, ec).lexically_normal();
        return ec ? candidate : abs.string();
      }
    }
    return FindInPath(name);
  };
  return {.helm = find("helm"), .kubectl = find("kubectl")};
}

Tools FindTools(const ToolPaths& paths) {
  Tools tools;
  tools.helm = FindInPath(paths.helm.empty() ? "helm" : paths.helm);
  std::string versions;
  if (!tools.helm.empty()) {
    versions = strings::Cat("helm ", VersionLine({tools.helm, "version", "--short"}));
  }
  if (!paths.kustomize.empty()) {
    if (std::string k = FindInPath(paths.kustomize); !k.empty()) {
      tools.kustomize = {k, "build"};
      versions += strings::Cat("; kustomize ", VersionLine({k, "version"}));
    }
  } else if (std::string k = FindInPath(paths.kubectl.empty() ? "kubectl" : paths.kubectl);
             !k.empty()) {
    tools.kustomize = {k, "kustomize"};
    versions += strings::Cat("; kubectl ", VersionLine({k, "version", "--client"}));
  }
  tools.versions = versions;
  return tools;
}

std::string GeneratorOf(const Json& source, const std::string& checkout) {
  if (source.contains("kustomize")) return "kustomize";
  if (source.contains("helm")) return "helm";
  if (source.contains("directory")) return "directory";
  const fs::path dir = fs::path(checkout) / NormalizePath(source.value("path", ""));
  if (!KustomizationFileIn(dir.string()).empty()) return "kustomize";
  std::error_code ec;
  if (fs::is_regular_file(dir / "Chart.yaml", ec)) return "helm";
  return "directory";
}

absl::StatusOr<Generated> Generate(const GenerateRequest& req, const Tools& tools) {
  const std::string raw_path = req.source.value("path", "");
  std::string path = NormalizePath(raw_path);
  if (!path.empty()) {
    DL_ASSIGN_OR_RETURN(path, InsideRepository(req.checkout, "", path, "spec.source.path"));
  }
  ToolRunner run(tools, req);
  // Records whether any remote reference was let through.
  bool remote = false;
  GenerateRequest recording = req;
  if (req.allow_remote) {
    recording.allow_remote = [&remote, &req](std::string_view url) {
      const bool allowed = req.allow_remote(url);
      remote = remote || allowed;
      return allowed;
    };
  }
  absl::StatusOr<Generated> g;
  const std::string generator = GeneratorOf(req.source, req.checkout);
  if (generator == "kustomize") {
    g = RenderKustomize(recording, path, run);
  } else if (generator == "helm") {
    g = RenderHelm(recording, path, run);  // a pulled chart asks the policy too
  } else {
    g = RenderPlainDirectory(recording, path);
  }
  if (!g.ok()) return absl::Status(g.status().code(), run.Scrub(g.status().message()));
  Variables vars = req.substitute_from;
  for (auto& [name, value] : VariablesOf(req.source)) vars[name] = std::move(value);
  DL_ASSIGN_OR_RETURN(g->objects,
                      FinishObjects(std::move(g->objects), vars, StrictSubstitutionOf(req.source)));
  g->remote = remote;
  return g;
}

}  // namespace driftless::renderer
