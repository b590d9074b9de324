#include "services/renderer/file_tree.h"

#include <filesystem>
#include <fstream>
#include <sstream>

namespace driftless::renderer {
namespace fs = std::filesystem;

namespace {

bool Wanted(const fs::path& p) {
  const std::string ext = p.extension().string();
  return ext == ".yaml" || ext == ".yml" || ext == ".json";
}

bool Inside(const fs::path& root, const fs::path& p) {
  auto r = root.begin();
  auto q = p.begin();
  for (; r != root.end(); ++r, ++q) {
    if (q == p.end() || *r != *q) return false;
  }
  return true;
}

}  // namespace

absl::StatusOr<std::vector<SourceFile>> ReadFileTree(const std::string& root_dir,
                                                     const FileTreeLimits& limits) {
  std::error_code ec;
  const fs::path root = fs::weakly_canonical(root_dir, ec);
  if (ec || !fs::is_directory(root, ec)) {
    return absl::NotFoundError("directory " + root_dir + " does not exist");
  }
  std::vector<SourceFile> out;
  uint64_t total = 0;
  fs::recursive_directory_iterator it(root, fs::directory_options::none, ec);
  if (ec) return absl::UnavailableError("cannot read " + root_dir + ": " + ec.message());
  for (; it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) return absl::UnavailableError("cannot read " + root_dir + ": " + ec.message());
    const fs::path& p = it->path();
    const std::string rel = p.lexically_relative(root).generic_string();
    if (it->is_symlink(ec)) {
      const fs::path target = fs::weakly_canonical(p, ec);
      if (ec || !Inside(root, target)) {
        return absl::InvalidArgumentError("symlink " + rel + " points outside the source");
      }
      if (fs::is_directory(target, ec)) {
        it.disable_recursion_pending();  // its target is read where it really lives
        continue;
      }
    }
    if (p.filename() == ".git") {
      it.disable_recursion_pending();
      continue;
    }
    if (!it->is_regular_file(ec) || !Wanted(p)) continue;
    const uint64_t size = fs::file_size(p, ec);
    if (ec) continue;
    if (size > limits.max_file_bytes) {
      return absl::ResourceExhaustedError(rel + " is " + std::to_string(size) +
                                          " bytes, over the limit of " +
                                          std::to_string(limits.max_file_bytes));
    }
    total += size;
    if (total > limits.max_bytes || out.size() + 1 > limits.max_files) {
      return absl::ResourceExhaustedError("source is over the limit of " +
                                          std::to_string(limits.max_bytes) + " bytes or " +
                                          std::to_string(limits.max_files) + " files");
    }
    std::ifstream in(p, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    out.push_back({rel, ss.str()});
  }
  return out;
}

}  // namespace driftless::renderer
