// `driftless up` and `driftless down` (see platform.h).
#include <iostream>

#include <CLI/CLI.hpp>

#include "cli/commands.h"
#include "cli/platform/platform.h"
#include "common/config/units.h"

namespace driftless::cli {

void RegisterPlatformCommands(CLI::App& root, Commands& commands) {
  auto up = std::make_shared<platform::UpOptions>();
  auto up_timeout = std::make_shared<std::string>("120s");
  CLI::App* up_cmd = root.add_subcommand(
      "up", "Start the local platform: nats-server, the Kubernetes API emulator, every service");
  up_cmd->add_option("--state-dir", up->state_dir,
                     "State directory (default $DRIFTLESS_STATE_DIR or ./.driftless)");
  up_cmd->add_flag("--no-example", up->no_example, "Do not register the guestbook example");
  up_cmd->add_option("--kubeconfig", up->kubeconfig,
                     "Deploy to this cluster instead of the bundled emulator");
  up_cmd->add_option("--webhook-url", up->webhook_urls, "Notifier webhook URL (repeatable)");
  up_cmd
      ->add_option("--emulator-arg", up->emulator_args,
                   "Extra flag for the bundled emulator, e.g. --emulator-arg=--delay-ms=20 "
                   "(repeatable)")
      ->allow_extra_args(false);
  up_cmd->add_option("--nats-url", up->nats_url,
                     "Use these NATS servers (comma-separated) instead of starting nats-server");
  up_cmd
      ->add_option("--nats-replicas", up->nats_replicas,
                   "Copies of every stream and KV bucket (3 on a 3-node NATS cluster)")
      ->check(CLI::Range(1, 5))
      ->capture_default_str();
  up_cmd->add_flag("--detach", up->detach, "Return once ready; stop with `driftless down`");
  up_cmd->add_option("--timeout", *up_timeout, "How long startup (and the example sync) may take")
      ->capture_default_str();
  commands.Add(up_cmd, [up, up_timeout] {
    absl::StatusOr<std::chrono::milliseconds> timeout = config::ParseDuration(*up_timeout);
    if (!timeout.ok()) {
      std::cerr << "error: --timeout: " << timeout.status().message() << "\n";
      return 2;
    }
    up->timeout = *timeout;
    return platform::RunUp(*up, std::cout, std::cerr);
  });

  auto down = std::make_shared<platform::DownOptions>();
  CLI::App* down_cmd = root.add_subcommand("down", "Stop the local platform started by `up`");
  down_cmd->add_option("--state-dir", down->state_dir,
                       "State directory (default $DRIFTLESS_STATE_DIR or ./.driftless)");
  commands.Add(down_cmd, [down] { return platform::RunDown(*down, std::cout, std::cerr); });
}

}  // namespace driftless::cli
