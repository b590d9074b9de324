// The renderer's pure core: turns the files of an application's source path into the list
// of Kubernetes objects to apply. This file handles plain directories of YAML/JSON; Kustomize
// and Helm run their binaries in the service shell and feed the output back through
// ObjectsFromStream.
//
//   std::vector<SourceFile> files = ...;   // every file under the repository path
//   DirectoryOptions dir{.recurse = true, .include = "*.yaml"};
//   DL_ASSIGN_OR_RETURN(auto objects, RenderDirectory(files, "apps/guestbook", dir, vars));
//
// Pure and thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/manifest/manifest.h"
#include "common/status/status.h"
#include "services/renderer/substitute.h"

namespace driftless::renderer {

struct SourceFile {
  std::string path;  // relative to the repository root, '/'-separated
  std::string content;
};

struct DirectoryOptions {
  bool recurse = false;  // Argo CD's default: only the files directly in the path
  std::string include;   // glob on the path relative to the app path; "" = all
  std::string exclude;   // glob; "" = none
};

struct RenderedObject {
  manifest::Json object;
  manifest::SourceLocation location;
};

// The directory options and substitution variables of a validated Application's
// spec.source (see common/resources); absent fields give the defaults. Shared by the renderer
// service and the CLI's offline render so both read the spec the same way.
DirectoryOptions DirectoryOptionsOf(const manifest::Json& source);
Variables VariablesOf(const manifest::Json& source);
// A repository-relative path without leading "./" or trailing "/" ("." and "./" are "").
std::string NormalizePath(std::string_view path);

// spec.source.substituteStrict: an unset variable without a default is an error, not "".
bool StrictSubstitutionOf(const manifest::Json& source);

// Parses a multi-document YAML stream (a file, or kustomize/helm output) into objects: empty
// documents are skipped, `kind: List` is flattened, and each object must be a mapping with
// string apiVersion, kind and metadata.name (metadata.generateName instead is accepted only on
// hooks: any other object could not be tracked).
// Errors: kInvalidArgument naming the file, document, line and field.
absl::StatusOr<std::vector<RenderedObject>> ObjectsFromStream(std::string_view text,
                                                              std::string_view file);

// Renders a plain directory: the .yaml/.yml/.json files under `app_path` (recursively when
// options.recurse), filtered by include/exclude, in path order, with `${VAR}` substitution
// when `vars` is non-empty. Dot-files and dot-directories are skipped. The same object
// (group, kind, namespace, name) twice is an error naming both places.
// Errors: kNotFound when no file is under `app_path` at all ("path apps/x not found in the
// repository"); kInvalidArgument for bad manifests.
absl::StatusOr<std::vector<RenderedObject>> RenderDirectory(const std::vector<SourceFile>& files,
                                                            std::string_view app_path,
                                                            const DirectoryOptions& options,
                                                            const Variables& vars,
                                                            bool strict_substitution = false);

// The last step of every generator: `${VAR}` substitution (when `vars` is non-empty) and the
// duplicate check (the same group, kind, namespace and name twice is an error naming both
// places).
absl::StatusOr<std::vector<RenderedObject>> FinishObjects(std::vector<RenderedObject> objects,
                                                          const Variables& vars,
                                                          bool strict_substitution = false);

}  // namespace driftless::renderer
