// Command-line flags with environment fallbacks, on top of CLI11.
//
// Every flag `--some-name` also reads `DRIFTLESS_SOME_NAME` from the environment. Precedence
// is: flag on the command line > environment variable > the default (the value the bound
// variable holds when the flag is registered). Defaults and env names show in --help.
//
//   int main(int argc, char** argv) {
//     CLI::App app{"driftless-renderer: renders manifests"};
//     config::ServiceFlags service;
//     config::RegisterServiceFlags(app, &service);
//     std::chrono::milliseconds interval{std::chrono::minutes(3)};
//     config::AddDurationFlag(app, "interval", &interval, "default poll interval");
//     if (auto exit_code = config::ParseFlags(app, argc, argv)) return *exit_code;
//     ...
//   }
//
// Registration functions are meant for main(); they are not thread-safe with respect to the
// same CLI::App. The bound pointers must outlive ParseFlags.
#pragma once

#include <chrono>
#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace CLI {
class App;
class Option;
}  // namespace CLI

namespace driftless::config {

// "nats-url" -> "DRIFTLESS_NATS_URL": DRIFTLESS_ + the flag name upper-cased, with every
// character that is not a letter or digit turned into '_'.
std::string EnvNameForFlag(std::string_view flag_name);

// Each Add*Flag registers `--<name>` (name without dashes) bound to *value, with the env
// fallback EnvNameForFlag(name) and *value's current content as the displayed default.
// Returns the CLI11 option so callers can add checks (->check(CLI::Range(1, 10))) or
// ->required(); a required flag is also satisfied by its environment variable.
CLI::Option* AddStringFlag(CLI::App& app, std::string_view name, std::string* value,
                           std::string_view description);
CLI::Option* AddIntFlag(CLI::App& app, std::string_view name, int64_t* value,
                        std::string_view description);
CLI::Option* AddIntFlag(CLI::App& app, std::string_view name, int* value,
                        std::string_view description);
CLI::Option* AddDoubleFlag(CLI::App& app, std::string_view name, double* value,
                           std::string_view description);
// Accepts --name, --name=true|false|1|0|yes|no|on|off, and the same words in the env var.
CLI::Option* AddBoolFlag(CLI::App& app, std::string_view name, bool* value,
                         std::string_view description);
CLI::Option* AddStringListFlag(CLI::App& app, std::string_view name,
                               std::vector<std::string>* value, std::string_view description);
// Values are parsed with ParseDuration ("500ms", "1h30m"); errors name the flag and text.
CLI::Option* AddDurationFlag(CLI::App& app, std::string_view name, std::chrono::milliseconds* value,
                             std::string_view description);
// Values are parsed with ParseByteSize ("3Mi", "10MB"); errors name the flag and text.
CLI::Option* AddByteSizeFlag(CLI::App& app, std::string_view name, uint64_t* value,
                             std::string_view description);
// A string flag restricted to `choices` (case-sensitive); the choices show in --help.
CLI::Option* AddChoiceFlag(CLI::App& app, std::string_view name, std::string* value,
                           const std::vector<std::string>& choices, std::string_view description);

// Parses argv. Returns std::nullopt when the program should continue; otherwise the exit
// code main() should return: 0 after printing --help (to `out`), 2 after printing a parse
// or validation error plus a hint to use --help (to `err`). Never throws.
std::optional<int> ParseFlags(CLI::App& app, int argc, const char* const* argv, std::ostream& out,
                              std::ostream& err);
std::optional<int> ParseFlags(CLI::App& app, int argc, const char* const* argv);

// Flags every driftless service has. Defaults are the field initialisers.
struct ServiceFlags {
  // --nats-url / DRIFTLESS_NATS_URL: the event backbone; several servers (the nodes of a
  // cluster) separated by commas, any of which the connection may use and fail over to.
  std::string nats_url = "nats://127.0.0.1:4222";
  // --nats-replicas / DRIFTLESS_NATS_REPLICAS: copies of every stream and KV bucket the
  // service creates (1 for a single server; 3 on a 3-node JetStream cluster survives losing
  // a node). Existing buckets keep theirs; existing streams are updated to it.
  int nats_replicas = 1;
  // --http-port / DRIFTLESS_HTTP_PORT: /healthz, /readyz, /metrics; 0 picks a free port.
  int http_port = 0;
  // --http-address / DRIFTLESS_HTTP_ADDRESS: address the HTTP endpoint binds.
  std::string http_address = "127.0.0.1";
  // --log-level / DRIFTLESS_LOG_LEVEL: trace|debug|info|warn|error|off.
  std::string log_level = "info";
  // --log-format / DRIFTLESS_LOG_FORMAT: json|text.
  std::string log_format = "json";
  // --state-dir / DRIFTLESS_STATE_DIR: where the service keeps local state (caches, keys).
  std::string state_dir;
  // --ready-file / DRIFTLESS_READY_FILE: once ready, the service writes a JSON object here
  // ({"service", "pid", "http", and service-specific addresses such as "grpc"}), atomically
  // (write to a temporary file, rename). Supervisors such as `driftless up` wait for it.
  std::string ready_file;
  // --replica-id / DRIFTLESS_REPLICA_ID: names this replica in events and leases; default
  // "<hostname>-<pid>".
  std::string replica_id;
  // --workers / DRIFTLESS_WORKERS: work items a replica handles at once (0: the stage's
  // default). Still at most one sync per application at a time across all workers.
  int workers = 0;
};

// Registers all ServiceFlags options on `app`, bound to *flags (which must outlive parsing).
void RegisterServiceFlags(CLI::App& app, ServiceFlags* flags);

}  // namespace driftless::config
