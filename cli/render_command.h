// `driftless render` and `driftless validate`: the offline commands (no server needed),
// like `flux build`. They share the renderer's core with the renderer service and the
// planner's preparation (destination namespace by each kind's scope, tracking annotation and
// label, CreateNamespace), so what render prints is what the platform would apply. Without a
// cluster, scopes come from the built-in Kubernetes kinds and the rendered CRDs (other kinds are
// taken as namespaced, with a note), and valuesFrom/substituteFrom cannot be read; with
// --kubeconfig, the cluster's discovery, version, API list and those ConfigMaps and Secrets
// are read as the planner reads them.
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

#include "common/status/status.h"

namespace driftless::cli {

struct RenderOptions {
  std::vector<std::string> files;  // Application manifests (-f)
  std::string application;         // --name: only this one (default: every Application)
  std::string local_dir;           // --local: render this checkout instead of fetching
  std::string cache_dir;           // git mirrors (default: a temporary directory)
  std::string output = "yaml";     // yaml | json
  std::string kubeconfig;          // --kubeconfig: read what the render needs from the cluster
  std::string context;             // --context of that kubeconfig ("" = current)
};

// Renders the Applications in `options.files` and writes the objects to `out`, notes (what an
// offline render could not know) to `notes`. Errors name the application, file and line.
absl::Status RunRender(const RenderOptions& options, std::ostream& out, std::ostream& notes);

// Validates every driftless resource in `files`; prints one line per resource to `out`.
absl::Status RunValidate(const std::vector<std::string>& files, std::ostream& out);

}  // namespace driftless::cli
