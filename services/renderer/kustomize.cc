#include "services/renderer/kustomize.h"

#include <cctype>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include "common/strings/str.h"
#include "services/renderer/paths.h"

namespace driftless::renderer {
namespace {

namespace fs = std::filesystem;
using manifest::Json;

std::string Display(const std::string& rel) { return rel.empty() ? "." : rel; }

class Walker {
 public:
  Walker(const std::string& root, const RemotePolicy& allow_remote, ReadSet* reads)
      : root_(fs::path(root).lexically_normal()), allow_remote_(allow_remote), reads_(reads) {}

  // `dir` is repository-relative.
  absl::Status Directory(const std::string& dir, const std::string& referrer) {
    if (!visited_.insert(dir).second) return absl::OkStatus();
    if (visited_.size() > 1000) {
      return absl::InvalidArgumentError("more than 1000 kustomizations referenced");
    }
    const std::string file = KustomizationFileIn((root_ / dir).string());
    if (file.empty()) {
      return absl::NotFoundError(strings::Cat(referrer.empty() ? "" : referrer + ": ",
                                              "no kustomization.yaml in ", Display(dir)));
    }
    const std::string file_rel = dir.empty() ? file : dir + "/" + file;
    reads_->insert(dir);
    std::ifstream in(root_ / file_rel, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    absl::StatusOr<Json> k = manifest::ParseYaml(ss.str(), file_rel);
    if (!k.ok()) return k.status();
    if (k->is_null()) return absl::OkStatus();
    if (!k->is_object()) return absl::InvalidArgumentError(file_rel + ": not a mapping");
    return Fields(*k, dir, file_rel);
  }

 private:
  absl::Status Fields(const Json& k, const std::string& dir, const std::string& file) {
    auto strings_of = [](const Json& v) {
      std::vector<std::string> out;
      if (v.is_string()) out.push_back(v.get<std::string>());
      if (v.is_array()) {
        for (const Json& e : v) {
          if (e.is_string()) out.push_back(e.get<std::string>());
        }
      }
      return out;
    };
    auto each = [&](const char* field, auto&& fn) -> absl::Status {
      auto it = k.find(field);
      if (it == k.end() || it->is_null()) return absl::OkStatus();
      if (!it->is_array()) {
        return absl::InvalidArgumentError(strings::Cat(file, ": ", field, " must be a list"));
      }
      for (const Json& e : *it) DL_RETURN_IF_ERROR(fn(e));
      return absl::OkStatus();
    };
    for (const char* field : {"resources", "bases", "components"}) {
      DL_RETURN_IF_ERROR(each(field, [&](const Json& e) -> absl::Status {
        if (!e.is_string()) return absl::OkStatus();
        return Reference(e.get<std::string>(), dir, file, field, /*may_be_dir=*/true);
      }));
    }
    for (const char* field : {"crds", "configurations", "generators", "transformers", "validators",
                              "patchesStrategicMerge"}) {
      DL_RETURN_IF_ERROR(each(field, [&](const Json& e) -> absl::Status {
        if (!e.is_string()) return absl::OkStatus();  // inline objects
        const std::string ref = e.get<std::string>();
        // patchesStrategicMerge entries may be inline patches.
        if (ref.find('\n') != std::string::npos || ref.find(": ") != std::string::npos) {
          return absl::OkStatus();
        }
        return Reference(ref, dir, file, field, /*may_be_dir=*/field != std::string("crds"));
      }));
    }
    for (const char* field : {"patches", "patchesJson6902", "replacements"}) {
      DL_RETURN_IF_ERROR(each(field, [&](const Json& e) -> absl::Status {
        if (!e.is_object() || !e.contains("path") || !e["path"].is_string()) {
          return absl::OkStatus();
        }
        return Reference(e["path"].get<std::string>(), dir, file, field, false);
      }));
    }
    for (const char* field : {"configMapGenerator", "secretGenerator"}) {
      DL_RETURN_IF_ERROR(each(field, [&](const Json& e) -> absl::Status {
        if (!e.is_object()) return absl::OkStatus();
        for (const char* list : {"files", "envs", "env"}) {
          if (!e.contains(list)) continue;
          for (std::string ref : strings_of(e[list])) {
            if (const size_t eq = ref.find('='); eq != std::string::npos) ref.erase(0, eq + 1);
            DL_RETURN_IF_ERROR(Reference(ref, dir, file, field, false));
          }
        }
        return absl::OkStatus();
      }));
    }
    std::string chart_home = "charts";
    if (auto g = k.find("helmGlobals"); g != k.end() && g->is_object()) {
      chart_home = g->value("chartHome", chart_home);
    }
    DL_RETURN_IF_ERROR(each("helmCharts", [&](const Json& e) -> absl::Status {
      if (!e.is_object()) return absl::OkStatus();
      const std::string name = e.value("name", "");
      const std::string repo = e.value("repo", "");
      std::error_code ec;
      const fs::path local = root_ / dir / chart_home / name;
      if (!name.empty() && fs::is_directory(local, ec)) {
        DL_RETURN_IF_ERROR(Reference(chart_home + "/" + name, dir, file, "helmCharts", true,
                                     /*kustomization=*/false));
      } else if (!repo.empty()) {
        DL_RETURN_IF_ERROR(Remote(repo, file, "helmCharts"));
      }
      for (const std::string& values : strings_of(e.value("valuesFile", Json()))) {
        DL_RETURN_IF_ERROR(Reference(values, dir, file, "helmCharts.valuesFile", false));
      }
      for (const std::string& values : strings_of(e.value("additionalValuesFiles", Json()))) {
        DL_RETURN_IF_ERROR(Reference(values, dir, file, "helmCharts.additionalValuesFiles", false));
      }
      return absl::OkStatus();
    }));
    if (auto o = k.find("openapi");
        o != k.end() && o->is_object() && o->contains("path") && (*o)["path"].is_string()) {
      DL_RETURN_IF_ERROR(Reference((*o)["path"].get<std::string>(), dir, file, "openapi", false));
    }
    return absl::OkStatus();
  }

  absl::Status Remote(const std::string& ref, const std::string& file, const char* field) {
    if (allow_remote_ && allow_remote_(ref)) return absl::OkStatus();
    return absl::InvalidArgumentError(
        strings::Cat(file, ": ", field, ": remote reference ", ref,
                     " is not allowed (the application's project does not list it in "
                     "sourceRepos)"));
  }

  absl::Status Reference(const std::string& ref, const std::string& dir, const std::string& file,
                         const char* field, bool may_be_dir, bool kustomization = true) {
    std::error_code ec;
    const bool exists_locally = !ref.empty() && ref[0] != '/' && fs::exists(root_ / dir / ref, ec);
    if (!exists_locally && IsRemoteReference(ref)) return Remote(ref, file, field);
    auto escapes = [&] {
      return absl::InvalidArgumentError(
          strings::Cat(file, ": ", field, ": path ", ref, " leaves the repository"));
    };
    if (ref.empty())
      return absl::InvalidArgumentError(strings::Cat(file, ": ", field, ": empty path"));
    if (ref[0] == '/') return escapes();
    const fs::path full = root_ / dir / ref;
    std::optional<std::string> rel = ContainedPath(root_, full);
    if (!rel) return escapes();
    if (!fs::exists(full, ec)) {
      return absl::NotFoundError(
          strings::Cat(file, ": ", field, ": ", ref, " does not exist (", Display(*rel), ")"));
    }
    if (!ResolvesInside(root_, full)) return escapes();
    if (fs::is_directory(full, ec)) {
      if (!may_be_dir) {
        return absl::InvalidArgumentError(
            strings::Cat(file, ": ", field, ": ", ref, " is a directory, a file is expected"));
      }
      if (!kustomization) {
        reads_->insert(*rel);
        return absl::OkStatus();
      }
      return Directory(*rel, file);
    }
    reads_->insert(*rel);
    return absl::OkStatus();
  }

  fs::path root_;
  const RemotePolicy& allow_remote_;
  ReadSet* reads_;
  std::set<std::string> visited_;
};

absl::StatusOr<Json> InlinePatches(const Json& patches, const PatchReader& read_file) {
  Json out = Json::array();
  for (const Json& p : patches) {
    Json patch = p;
    if (patch.contains("path")) {
      const std::string path = patch["path"].get<std::string>();
      DL_ASSIGN_OR_RETURN(std::string text, read_file(path));
      patch.erase("path");
      patch["patch"] = std::move(text);
    }
    out.push_back(std::move(patch));
  }
  return out;
}

// The options shared by the overlay and the post-render kustomization.
absl::Status CopyOptions(const Json& kustomize, const PatchReader& read_file, Json& k) {
  for (const char* field :
       {"namespace", "namePrefix", "nameSuffix", "commonLabels", "commonAnnotations"}) {
    if (kustomize.contains(field)) k[field] = kustomize[field];
  }
  if (kustomize.contains("labels") && kustomize["labels"].is_object()) {
    // Labels on metadata only (not selectors), like kustomize's labels with
    // includeSelectors false.
    k["labels"] = Json::array({Json{{"pairs", kustomize["labels"]}}});
  }
  if (kustomize.contains("images")) k["images"] = kustomize["images"];
  if (kustomize.contains("replicas")) k["replicas"] = kustomize["replicas"];
  if (kustomize.contains("patches")) {
    DL_ASSIGN_OR_RETURN(k["patches"], InlinePatches(kustomize["patches"], read_file));
  }
  return absl::OkStatus();
}

Json NewKustomization() {
  return Json{{"apiVersion", "kustomize.config.k8s.io/v1beta1"}, {"kind", "Kustomization"}};
}

}  // namespace

std::string KustomizationFileIn(const std::string& dir) {
  std::error_code ec;
  for (const char* name : {"kustomization.yaml", "kustomization.yml", "Kustomization"}) {
    if (fs::is_regular_file(fs::path(dir) / name, ec)) return name;
  }
  return "";
}

bool IsRemoteReference(std::string_view ref) {
  if (ref.find("://") != std::string_view::npos) return true;
  if (ref.starts_with("git@") || ref.starts_with("git::")) return true;
  if (ref.find("?ref=") != std::string_view::npos ||
      ref.find("?version=") != std::string_view::npos) {
    return true;
  }
  // github.com/org/repo//path: a host name (labels, the last one of two or more letters) as
  // the first of several components; `config.d/x.yaml` or `v1.2/x.yaml` are local paths.
  if (ref.find('/') == std::string_view::npos) return false;
  const std::string_view first = ref.substr(0, ref.find('/'));
  const size_t dot = first.rfind('.');
  if (dot == std::string_view::npos || dot == 0) return false;
  const std::string_view tld = first.substr(dot + 1);
  if (tld.size() < 2 || tld == "yaml" || tld == "yml" || tld == "json") return false;
  for (char c : tld) {
    if (!std::isalpha(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

absl::Status CheckKustomization(const std::string& root, std::string_view app_path,
                                const RemotePolicy& allow_remote, ReadSet* reads) {
  Walker walker(root, allow_remote, reads);
  return walker.Directory(std::string(app_path), "");
}

bool HasOverlayOptions(const Json& kustomize) {
  if (!kustomize.is_object()) return false;
  for (const char* field : {"namespace", "namePrefix", "nameSuffix", "commonLabels", "labels",
                            "commonAnnotations", "images", "replicas", "patches", "components"}) {
    if (kustomize.contains(field)) return true;
  }
  return false;
}

absl::StatusOr<std::string> OverlayKustomization(const Json& kustomize, std::string_view app_dir,
                                                 const PatchReader& read_file) {
  Json k = NewKustomization();
  k["resources"] = Json::array({std::string(app_dir)});
  DL_RETURN_IF_ERROR(CopyOptions(kustomize, read_file, k));
  if (kustomize.contains("components")) {
    Json components = Json::array();
    for (const Json& c : kustomize["components"]) {
      components.push_back(strings::Cat(app_dir, "/", c.get<std::string>()));
    }
    k["components"] = std::move(components);
  }
  return manifest::ToYaml(k);
}

absl::StatusOr<std::string> PostRenderKustomization(const Json& kustomize,
                                                    std::string_view resource_file,
                                                    const PatchReader& read_file) {
  Json k = NewKustomization();
  k["resources"] = Json::array({std::string(resource_file)});
  DL_RETURN_IF_ERROR(CopyOptions(kustomize, read_file, k));
  return manifest::ToYaml(k);
}

}  // namespace driftless::renderer
