// Path containment for the generators: every path a render follows (its source path,
// kustomize references, value files, chart dependencies) must stay inside the checked-out
// repository, lexically and after resolving symlinks, before any tool runs.
//
//   std::optional<std::string> rel = ContainedPath(checkout, checkout / "apps/web/../base");
//   if (!rel || !ResolvesInside(checkout, checkout / *rel)) ... "leaves the repository" ...
//
// Thread-safe (no state; ResolvesInside reads the file system).
#pragma once

#include <filesystem>
#include <optional>
#include <string>

namespace driftless::renderer {

// `path` relative to `root`, '/'-separated with no trailing '/' ("" for the root itself),
// when it stays inside `root` lexically (".." resolved without the file system); nullopt when
// it leaves it.
std::optional<std::string> ContainedPath(const std::filesystem::path& root,
                                         const std::filesystem::path& path);

// True if `path` exists and, with every symlink resolved, is `root` or below it.
bool ResolvesInside(const std::filesystem::path& root, const std::filesystem::path& path);

}  // namespace driftless::renderer
