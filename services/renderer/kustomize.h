// Kustomize support for the renderer: what runs before `kustomize build` is allowed to start.
//
//   ReadSet reads;
//   DL_RETURN_IF_ERROR(CheckKustomization(checkout, "apps/web/overlays/prod", deny_remote,
//   &reads)); if (HasOverlayOptions(source["kustomize"])) {
//     DL_ASSIGN_OR_RETURN(std::string overlay, OverlayKustomization(source["kustomize"], "../..",
//                                                                   read_patch));
//   }
//
// CheckKustomization follows every local reference of a kustomization (resources, bases,
// components, patches, generators' files, transformers, ...) through the checkout, so that a
// path leaving the repository (`..`, absolute, a symlink) or a missing file is reported with the
// kustomization file that names it before any tool runs, remote bases are refused unless
// allowed, and the paths the build reads are known (the read set the poller uses to tell which
// applications a commit touches).
//
// The Application's inline options (namespace, namePrefix/nameSuffix, images, replicas,
// patches, components, commonLabels, labels, commonAnnotations) become a generated overlay
// kustomization in the render's private directory whose only resource is the application's
// directory: the user's files are never edited, so applications sharing a checkout render in
// parallel.
#pragma once

#include <functional>
#include <set>
#include <string>
#include <string_view>

#include "common/manifest/manifest.h"
#include "common/status/status.h"

namespace driftless::renderer {

// Repository-relative paths ('/'-separated, no leading "./") a render read: directories
// (everything below them counts) and files.
using ReadSet = std::set<std::string>;

// Decides whether a remote URL (a kustomize remote base, a chart dependency) may be fetched.
using RemotePolicy = std::function<bool(std::string_view url)>;

// The kustomization file in `dir` (kustomization.yaml, kustomization.yml or Kustomization),
// or "" if there is none.
std::string KustomizationFileIn(const std::string& dir);

// True for a kustomize reference that is not a local path: URLs, scp-style git addresses,
// `git::` / `?ref=` forms, and `host.tld/org/repo` references.
bool IsRemoteReference(std::string_view ref);

// Walks the kustomization in `root`/`app_path` and everything it references locally (see
// above), adding repository-relative paths to `reads`.
// Errors: kInvalidArgument naming the kustomization file, field and path for a path that leaves
// the repository, a remote reference `allow_remote` refuses, or a malformed kustomization;
// kNotFound naming the kustomization file for a referenced path that does not exist and for a
// directory without a kustomization file.
absl::Status CheckKustomization(const std::string& root, std::string_view app_path,
                                const RemotePolicy& allow_remote, ReadSet* reads);

// True if spec.source.kustomize sets any option that needs a generated overlay.
bool HasOverlayOptions(const manifest::Json& kustomize);

// The generated overlay (YAML text) for spec.source.kustomize: `app_dir` is the application's
// directory relative to the overlay directory. Patches given by `path` (relative to the
// application's directory) are read through `read_file` and inlined.
using PatchReader = std::function<absl::StatusOr<std::string>(const std::string& path)>;
absl::StatusOr<std::string> OverlayKustomization(const manifest::Json& kustomize,
                                                 std::string_view app_dir,
                                                 const PatchReader& read_file);

// A kustomization (YAML text) that applies spec.source.helm.postRenderers[i].kustomize to the
// objects in `resource_file` (a file in the same directory): Helm's post-render step.
absl::StatusOr<std::string> PostRenderKustomization(const manifest::Json& kustomize,
                                                    std::string_view resource_file,
                                                    const PatchReader& read_file);

}  // namespace driftless::renderer
