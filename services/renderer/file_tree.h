// Reads a checked-out source directory into memory for the pure renderer core, staying inside
// the root: symlinks whose target leaves the root are refused, and the total size and file
// count are capped.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status/status.h"
#include "services/renderer/render.h"

namespace driftless::renderer {

struct FileTreeLimits {
  uint64_t max_bytes = 256ull << 20;
  uint64_t max_files = 50'000;
  uint64_t max_file_bytes = 16ull << 20;  // one manifest file
};

// Every regular file under `root` (following symlinks that stay inside it) whose name ends in
// .yaml, .yml or .json, plus kustomization and chart markers, with paths relative to `root`.
// Errors: kNotFound when root does not exist; kInvalidArgument naming a symlink that escapes;
// kResourceExhausted naming the limit.
absl::StatusOr<std::vector<SourceFile>> ReadFileTree(const std::string& root,
                                                     const FileTreeLimits& limits = {});

}  // namespace driftless::renderer
