// How command groups plug into the `driftless` binary: each group registers its (leaf)
// subcommands on the root CLI::App and a runner per leaf; main() runs the runner of the leaf
// that was parsed. Runners return the process exit code and print their own errors.
#pragma once

#include <functional>
#include <utility>
#include <vector>

namespace CLI {
class App;
}

namespace driftless::cli {

class Commands {
 public:
  using Runner = std::function<int()>;
  void Add(CLI::App* leaf, Runner runner) { leaves_.emplace_back(leaf, std::move(runner)); }
  const std::vector<std::pair<CLI::App*, Runner>>& leaves() const { return leaves_; }

 private:
  std::vector<std::pair<CLI::App*, Runner>> leaves_;
};

// cli/api: apply, get, app sync|wait|delete (gRPC client of driftless-api).
void RegisterApiCommands(CLI::App& root, Commands& commands);
// cli/platform: up, down (the local platform).
void RegisterPlatformCommands(CLI::App& root, Commands& commands);

}  // namespace driftless::cli
