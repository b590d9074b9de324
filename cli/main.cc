// driftless: the command-line client. Offline commands (render, validate) work without a
// server; the API commands (cli/api) talk to driftless-api over gRPC; up/down (cli/platform)
// run the local platform.
#include <iostream>

#include <CLI/CLI.hpp>

#include "cli/commands.h"
#include "cli/render_command.h"

int main(int argc, char** argv) {
  CLI::App app{"driftless: GitOps continuous delivery for Kubernetes"};
  app.require_subcommand(1);

  driftless::cli::RenderOptions render;
  CLI::App* render_cmd =
      app.add_subcommand("render", "Render Applications offline and print their objects");
  render_cmd->add_option("-f,--filename", render.files, "Application manifest(s)")->required();
  render_cmd->add_option("--name", render.application, "Only this Application");
  render_cmd->add_option("--local", render.local_dir,
                         "Render this local checkout instead of fetching spec.source.repoURL");
  render_cmd->add_option("--cache-dir", render.cache_dir, "Where to keep git mirrors");
  render_cmd->add_option("-o,--output", render.output, "yaml or json")
      ->check(CLI::IsMember({"yaml", "json"}));
  render_cmd->add_option("--kubeconfig", render.kubeconfig,
                         "Read kinds' scope, the cluster's version and APIs, and valuesFrom / "
                         "substituteFrom objects from this cluster (as the planner does)");
  render_cmd->add_option("--context", render.context, "Context of --kubeconfig");

  std::vector<std::string> validate_files;
  CLI::App* validate_cmd =
      app.add_subcommand("validate", "Check driftless resources (unknown fields, types, formats)");
  validate_cmd->add_option("-f,--filename", validate_files, "Resource file(s)")->required();

  driftless::cli::Commands commands;
  driftless::cli::RegisterApiCommands(app, commands);
  driftless::cli::RegisterPlatformCommands(app, commands);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  for (const auto& [leaf, run] : commands.leaves()) {
    if (leaf->parsed()) return run();
  }
  absl::Status status;
  if (render_cmd->parsed()) status = driftless::cli::RunRender(render, std::cout, std::cerr);
  if (validate_cmd->parsed()) status = driftless::cli::RunValidate(validate_files, std::cout);
  if (!status.ok()) {
    std::cerr << "error: " << status.message() << "\n";
    return 1;
  }
  return 0;
}
