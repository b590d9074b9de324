// One application's manifests from a checked-out revision: picks the generator (plain
// directory, Kustomize or Helm), runs it with the safety rules of docs/design/renderer.md
// (paths contained in the repository, remote references only when allowed, every tool run in a
// private directory with a scrubbed environment, a timeout and an output cap), then applies
// `${VAR}` substitution and rejects duplicate objects. Shared by the renderer service and the
// CLI's offline `driftless render`, so both produce the same objects.
//
//   Tools tools = FindTools({});                 // helm and kubectl from PATH
//   DL_ASSIGN_OR_RETURN(Generated g, Generate({.application = "web",
//                                              .source = app["spec"]["source"],
//                                              .destination_namespace = "web",
//                                              .checkout = "/var/lib/x/checkouts/abc",
//                                              .scratch = "/var/lib/x/work/w0/web"}, tools));
//
// The generator: spec.source.directory, .kustomize or .helm when set; otherwise a kustomization
// file in spec.source.path means Kustomize, a Chart.yaml means Helm, anything else is a
// directory of manifests (Argo CD's detection).
//
// Thread-safe: concurrent calls need distinct scratch directories; they may share a checkout,
// which is only read.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "common/manifest/manifest.h"
#include "common/status/status.h"
#include "services/renderer/kustomize.h"
#include "services/renderer/render.h"

namespace driftless::renderer {

struct Tools {
  std::string helm;                    // absolute path; "" when helm is not installed
  std::vector<std::string> kustomize;  // {kubectl, "kustomize"} or {kustomize, "build"}; {} = none
  absl::Duration timeout = absl::Seconds(90);  // per tool run
  uint64_t max_output = 100ull << 20;          // bytes per tool run
  std::string versions;  // "helm v3.17.2; kustomize v5.5.0": part of the render cache key
};

struct ToolPaths {
  std::string helm;       // "" = look up `helm` in PATH
  std::string kustomize;  // a standalone kustomize binary; "" = kubectl's built-in one
  std::string kubectl;    // "" = look up `kubectl` in PATH
};

// helm and kubectl as a driftless build finds them: in DRIFTLESS_TOOLS_DIR, else in the
// `.tools/bin` of the source tree whose build directory holds `exe_dir` (<exe_dir>/../../.tools/
// bin: scripts/install-deps puts them there), else in PATH. Absolute paths; "" when not found.
ToolPaths DefaultToolPaths(const std::string& exe_dir);

// Resolves the tools (absolute paths) and asks them their versions. A missing tool is left
// empty: applications that need it then fail with a message saying so.
Tools FindTools(const ToolPaths& paths);

struct GenerateRequest {
  std::string application;
  manifest::Json source;              // the Application's spec.source
  std::string destination_namespace;  // Helm's default namespace
  std::string checkout;               // the repository at the revision (absolute path)
  std::string scratch;                // a private empty directory (absolute), removed by the caller
  RemotePolicy allow_remote;          // remote bases and chart dependencies; null = none allowed
  // What the destination cluster supplies (the planner's render-inputs and cluster records,
  // services/common/render_inputs.h). An offline render has none: a required
  // spec.source.helm.valuesFrom is then an error.
  bool inputs_resolved = false;
  std::vector<std::string> values_from;   // helm values documents, in declared order
  Variables substitute_from;              // spec.source.substitute overrides these
  std::string kube_version;               // helm --kube-version default; "" = helm's own
  std::vector<std::string> api_versions;  // added to helm --api-versions
};

struct Generated {
  std::string generator;  // "directory", "kustomize" or "helm"
  std::vector<RenderedObject> objects;
  ReadSet reads;  // repository paths the render read
  // Something was fetched from outside the repository (a chart, a remote base): the same
  // commit may render differently later, so the result is not cached.
  bool remote = false;
};

// Errors name the file, field, object or variable (not the application: callers add it), and
// never a path of the private directories: kNotFound (path, file or chart missing),
// kInvalidArgument (malformed input, a path leaving the repository, a refused remote
// reference, a tool's own error), kDeadlineExceeded / kResourceExhausted (a tool stopped at its
// timeout or output cap), kFailedPrecondition (a tool is not installed), kUnimplemented.
absl::StatusOr<Generated> Generate(const GenerateRequest& request, const Tools& tools);

// "kustomize", "helm" or "directory" for spec.source at `checkout` (see above).
std::string GeneratorOf(const manifest::Json& source, const std::string& checkout);

}  // namespace driftless::renderer
