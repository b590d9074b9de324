// The platform commands alone (up, down), for tests that must not depend on the rest of the
// CLI: `driftless-platform-cli up --state-dir DIR --no-example --detach`.
#include <iostream>

#include <CLI/CLI.hpp>

#include "cli/commands.h"

int main(int argc, char** argv) {
  CLI::App app{"driftless up/down (test build)"};
  app.require_subcommand(1);
  driftless::cli::Commands commands;
  driftless::cli::RegisterPlatformCommands(app, commands);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  for (const auto& [leaf, run] : commands.leaves()) {
    if (leaf->parsed()) return run();
  }
  return 2;
}
