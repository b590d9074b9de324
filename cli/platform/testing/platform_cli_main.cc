// The platform commands alone (up, down), for tests that must not depend on the rest of the
// CLI: `driftless-platform-cli up --state-dir DIR --no-example --detach`. Stand-ins for the
// commands `up` runs for the example (`apply`, `app wait`) append their command line to
// $DRIFTLESS_TEST_RECORD and exit with $DRIFTLESS_TEST_EXIT (default 0).
#include <cstdlib>
#include <fstream>
#include <iostream>

#include <CLI/CLI.hpp>

#include "cli/commands.h"

int main(int argc, char** argv) {
  CLI::App app{"driftless up/down (test build)"};
  app.require_subcommand(1);
  driftless::cli::Commands commands;
  driftless::cli::RegisterPlatformCommands(app, commands);

  auto record = [argc, argv] {
    if (const char* path = std::getenv("DRIFTLESS_TEST_RECORD")) {
      std::ofstream out(path, std::ios::app);
      for (int i = 1; i < argc; ++i) out << (i > 1 ? " " : "") << argv[i];
      out << "\n";
    }
    const char* code = std::getenv("DRIFTLESS_TEST_EXIT");
    return code ? std::atoi(code) : 0;
  };
  CLI::App* apply = app.add_subcommand("apply", "stand-in");
  apply->allow_extras();
  CLI::App* app_cmd = app.add_subcommand("app", "stand-in");
  CLI::App* wait = app_cmd->add_subcommand("wait", "stand-in");
  wait->allow_extras();
  commands.Add(apply, record);
  commands.Add(wait, record);

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
