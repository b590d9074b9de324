#include "services/renderer/render.h"

#include <algorithm>
#include <map>

#include "common/manifest/object.h"
#include "common/match/glob.h"

namespace driftless::renderer {
namespace {

using manifest::Json;

bool IsManifestFile(std::string_view path) {
  return path.ends_with(".yaml") || path.ends_with(".yml") || path.ends_with(".json");
}

bool HasDotComponent(std::string_view rel) {
  size_t start = 0;
  while (start < rel.size()) {
    if (rel[start] == '.') return true;
    const size_t slash = rel.find('/', start);
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return false;
}

bool IsHook(const Json& o) {
  for (const char* key : {"driftless.dev/hook", "argocd.argoproj.io/hook", "helm.sh/hook"}) {
    if (!manifest::AnnotationOf(o, key).empty()) return true;
  }
  return false;
}

absl::Status CheckObject(const Json& o, const manifest::SourceLocation& where) {
  auto fail = [&](const std::string& what) {
    return absl::InvalidArgumentError(where.ToString() + ": " + what);
  };
  if (!o.is_object()) return fail("a manifest must be a mapping");
  // "Coffee morningCup: " when the object says what it is.
  std::string subject;
  if (o.contains("kind") && o["kind"].is_string()) {
    subject = o["kind"].get<std::string>();
    if (o.contains("metadata") && o["metadata"].is_object() && o["metadata"].contains("name") &&
        o["metadata"]["name"].is_string()) {
      subject += " " + o["metadata"]["name"].get<std::string>();
    }
    subject += ": ";
  }
  for (const char* field : {"apiVersion", "kind"}) {
    if (!o.contains(field)) return fail(subject + "missing " + field);
    if (!o[field].is_string() || o[field].get_ref<const std::string&>().empty()) {
      return fail(std::string(field) + " must be a non-empty string");
    }
  }
  const std::string kind = o["kind"].get<std::string>();
  if (!o.contains("metadata") || !o["metadata"].is_object()) {
    return fail(kind + ": missing metadata");
  }
  const Json& md = o["metadata"];
  if (!md.contains("name")) {
    if (md.contains("generateName")) {
      if (IsHook(o) && md["generateName"].is_string() &&
          !md["generateName"].get_ref<const std::string&>().empty()) {
        return absl::OkStatus();  // a hook run creates a new object each time
      }
      return fail(kind +
                  ": metadata.generateName is only supported on hooks (any other object must "
                  "have a fixed metadata.name to be tracked)");
    }
    return fail(kind + ": missing metadata.name");
  }
  if (!md["name"].is_string() || md["name"].get_ref<const std::string&>().empty()) {
    return fail(kind + ": metadata.name must be a non-empty string");
  }
  if (md.contains("namespace") && !md["namespace"].is_null() && !md["namespace"].is_string()) {
    return fail(kind + " " + md["name"].get<std::string>() +
                ": metadata.namespace must be a string");
  }
  return absl::OkStatus();
}

}  // namespace

DirectoryOptions DirectoryOptionsOf(const Json& source) {
  DirectoryOptions dir;
  auto d = source.find("directory");
  if (d == source.end() || !d->is_object()) return dir;
  dir.recurse = d->value("recurse", false);
  dir.include = d->value("include", "");
  dir.exclude = d->value("exclude", "");
  return dir;
}

Variables VariablesOf(const Json& source) {
  Variables vars;
  auto sub = source.find("substitute");
  if (sub == source.end() || !sub->is_object()) return vars;
  for (auto it = sub->begin(); it != sub->end(); ++it) {
    if (it.value().is_string()) vars[it.key()] = it.value().get<std::string>();
  }
  return vars;
}

std::string NormalizePath(std::string_view path) {
  std::string out(path);
  while (out.starts_with("./")) out.erase(0, 2);
  while (!out.empty() && out.back() == '/') out.pop_back();
  if (out == ".") out.clear();
  return out;
}

bool StrictSubstitutionOf(const Json& source) {
  auto it = source.find("substituteStrict");
  return it != source.end() && it->is_boolean() && it->get<bool>();
}

absl::StatusOr<std::vector<RenderedObject>> ObjectsFromStream(std::string_view text,
                                                              std::string_view file) {
  DL_ASSIGN_OR_RETURN(std::vector<manifest::Document> docs,
                      manifest::ParseYamlDocuments(text, file));
  std::vector<RenderedObject> out;
  for (manifest::Document& d : docs) {
    if (d.value.is_null()) continue;
    if (d.value.is_object() && d.value.value("kind", "") == "List" && d.value.contains("items")) {
      if (!d.value["items"].is_array()) {
        return absl::InvalidArgumentError(d.location.ToString() + ": List items must be a list");
      }
      for (Json& item : d.value["items"]) {
        DL_RETURN_IF_ERROR(CheckObject(item, d.location));
        out.push_back({std::move(item), d.location});
      }
      continue;
    }
    DL_RETURN_IF_ERROR(CheckObject(d.value, d.location));
    out.push_back({std::move(d.value), d.location});
  }
  return out;
}

absl::StatusOr<std::vector<RenderedObject>> RenderDirectory(const std::vector<SourceFile>& files,
                                                            std::string_view app_path,
                                                            const DirectoryOptions& options,
                                                            const Variables& vars,
                                                            bool strict_substitution) {
  const std::string base = NormalizePath(app_path);
  std::vector<std::pair<std::string, const SourceFile*>> selected;  // (relative path, file)
  bool path_exists = base.empty();
  for (const SourceFile& f : files) {
    const std::string path = NormalizePath(f.path);
    std::string rel;
    if (base.empty()) {
      rel = path;
    } else if (path.size() > base.size() && path.starts_with(base) && path[base.size()] == '/') {
      rel = path.substr(base.size() + 1);
    } else {
      continue;
    }
    path_exists = true;
    if (!IsManifestFile(rel) || HasDotComponent(rel)) continue;
    if (!options.recurse && rel.find('/') != std::string::npos) continue;
    if (!options.include.empty() && !match::GlobMatch(options.include, rel) &&
        !match::GlobMatch(options.include, rel.substr(rel.rfind('/') + 1))) {
      continue;
    }
    if (!options.exclude.empty() &&
        (match::GlobMatch(options.exclude, rel) ||
         match::GlobMatch(options.exclude, rel.substr(rel.rfind('/') + 1)))) {
      continue;
    }
    selected.emplace_back(rel, &f);
  }
  if (!path_exists) {
    return absl::NotFoundError("path \"" + base + "\" not found in the repository");
  }
  std::sort(selected.begin(), selected.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });

  std::vector<RenderedObject> objects;
  for (const auto& [rel, file] : selected) {
    DL_ASSIGN_OR_RETURN(std::vector<RenderedObject> in_file,
                        ObjectsFromStream(file->content, NormalizePath(file->path)));
    for (RenderedObject& r : in_file) objects.push_back(std::move(r));
  }
  return FinishObjects(std::move(objects), vars, strict_substitution);
}

absl::StatusOr<std::vector<RenderedObject>> FinishObjects(std::vector<RenderedObject> objects,
                                                          const Variables& vars,
                                                          bool strict_substitution) {
  std::map<std::string, manifest::SourceLocation> seen;
  for (RenderedObject& r : objects) {
    if (!vars.empty()) {
      auto substituted = SubstituteObject(r.object, vars, strict_substitution);
      if (!substituted.ok()) return Annotate(substituted.status(), r.location.ToString());
      r.object = *std::move(substituted);
      DL_RETURN_IF_ERROR(CheckObject(r.object, r.location));
    }
    if (manifest::NameOf(r.object).empty()) continue;  // generateName hooks: each run is new
    const std::string key = manifest::ObjectKey(r.object);
    auto [it, inserted] = seen.emplace(key, r.location);
    if (!inserted) {
      return absl::InvalidArgumentError(r.location.ToString() + ": " +
                                        r.object["kind"].get<std::string>() + " " +
                                        r.object["metadata"]["name"].get<std::string>() +
                                        " is also defined at " + it->second.ToString());
    }
  }
  return objects;
}

}  // namespace driftless::renderer
