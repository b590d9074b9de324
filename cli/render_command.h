// `driftless render` and `driftless validate`: the offline commands (no server needed),
// like `flux build`. They share the renderer's core with the renderer service, so what they
// print is what the platform would apply (before namespace defaulting and tracking).
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
};

// Renders the Applications in `options.files` and writes the objects to `out`.
// Errors name the application, file and line.
absl::Status RunRender(const RenderOptions& options, std::ostream& out);

// Validates every driftless resource in `files`; prints one line per resource to `out`.
absl::Status RunValidate(const std::vector<std::string>& files, std::ostream& out);

}  // namespace driftless::cli
