#include "services/renderer/paths.h"

namespace driftless::renderer {

namespace fs = std::filesystem;

std::optional<std::string> ContainedPath(const fs::path& root, const fs::path& path) {
  const fs::path rel = path.lexically_normal().lexically_relative(root.lexically_normal());
  if (rel.empty() || *rel.begin() == "..") return std::nullopt;
  std::string out = rel.generic_string();
  if (out == ".") out.clear();
  while (!out.empty() && out.back() == '/') out.pop_back();
  return out;
}

bool ResolvesInside(const fs::path& root, const fs::path& path) {
  std::error_code ec;
  const fs::path real_root = fs::canonical(root, ec);
  if (ec) return false;
  const fs::path real = fs::canonical(path, ec);
  if (ec) return false;
  const fs::path rel = real.lexically_relative(real_root);
  return !rel.empty() && *rel.begin() != "..";
}

}  // namespace driftless::renderer
