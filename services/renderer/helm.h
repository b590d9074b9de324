// Helm support for the renderer: preparing a chart and the `helm template` command line.
//
//   DL_ASSIGN_OR_RETURN(std::string chart,
//                       PrepareChart(checkout, "charts/web", scratch, allow_remote, helm, &reads));
//   DL_ASSIGN_OR_RETURN(std::vector<std::string> args,
//                       HelmTemplateArgs(helm_spec, {.release_name = "web", ...}));
//
// A chart's dependencies must be in its charts/ directory when `helm template` runs. Missing
// ones are vendored into a private copy of the chart (the checkout stays untouched, so
// applications sharing it render in parallel): `file://` dependencies from inside the
// repository are copied, repository dependencies are pulled with `helm pull` only when the
// RemotePolicy allows their repository URL.
#pragma once

#include <functional>
#include <set>
#include <string>
#include <vector>

#include "common/manifest/manifest.h"
#include "common/status/status.h"
#include "services/renderer/kustomize.h"
#include "services/renderer/render.h"

namespace driftless::renderer {

// `pull <chart>` for a chart of a Helm repository (`--repo URL`) or an OCI registry
// (`oci://host/path/<name>`), with `--version` (an exact version or a semver constraint) when
// given; the caller adds where the chart goes.
std::vector<std::string> HelmPullArgs(const std::string& repository, const std::string& name,
                                      const std::string& version);

// Runs helm with `args` (after the program name) in the render's private environment;
// returns its stdout. Errors carry helm's own message.
using HelmRunner = std::function<absl::StatusOr<std::string>(const std::vector<std::string>& args)>;

// The chart at `root`/`chart_path` ready for `helm template`: the directory itself when its
// dependencies are all present, else a private copy under `scratch` with them vendored.
// Errors: kNotFound (no Chart.yaml, a file:// dependency that does not exist),
// kInvalidArgument (a path leaving the repository, a dependency with no repository or one the
// policy refuses), and the runner's errors for pulls.
absl::StatusOr<std::string> PrepareChart(const std::string& root, const std::string& chart_path,
                                         const std::string& scratch,
                                         const RemotePolicy& allow_remote, const HelmRunner& helm,
                                         ReadSet* reads);

struct HelmTemplateInputs {
  std::string release_name;
  std::string namespace_name;
  std::string chart_dir;                  // absolute
  std::vector<std::string> value_files;   // absolute, in order
  std::string inline_values_file;         // absolute; "" when there are no inline values
  std::string kube_version;               // default for spec.helm.kubeVersion ("" = helm's)
  std::vector<std::string> api_versions;  // added to spec.helm.apiVersions
};

// `template <release> <chart> ...` for spec.source.helm (parameters become --set or
// --set-string, CRDs follow `crds`/`skipCrds`, tests follow `skipTests`).
// Errors: kInvalidArgument naming a malformed parameter.
absl::StatusOr<std::vector<std::string>> HelmTemplateArgs(const manifest::Json& helm,
                                                          const HelmTemplateInputs& in);

// The names of the CustomResourceDefinitions `helm template --include-crds` printed from a
// chart's (or a subchart's) crds/ directory (each document follows "# Source: <chart>/crds/...").
// CRDs of templates/ are ordinary objects.
std::set<std::string> ChartCrdNames(std::string_view helm_output);

// Helm's CRD lifecycle (Flux's install.crds), spec.source.helm.crds: the chart's crds/ CRDs
// are never pruned, and with `Create` (the default, as `helm install`) only created: an
// existing one is left as it is (sync options Prune=false and CreateOnly=true in the
// driftless.dev/sync-options annotation); `CreateReplace` updates them; `Skip` does not render
// them at all.
void ApplyCrdPolicy(const manifest::Json& helm, const std::set<std::string>& chart_crds,
                    std::vector<RenderedObject>* objects);

// The inline values of spec.source.helm (`values` as an object or YAML text, or the
// `valuesObject` alias), or null when there are none. Errors: kInvalidArgument for values
// text that is not a YAML mapping.
absl::StatusOr<manifest::Json> InlineValues(const manifest::Json& helm);

}  // namespace driftless::renderer
