#include "common/config/flags.h"

#include <CLI/CLI.hpp>

#include <iostream>
#include <string>

#include "common/config/units.h"

namespace driftless::config {
namespace {

std::string OptionName(std::string_view name) { return "--" + std::string(name); }

std::string Desc(std::string_view description) { return std::string(description); }

template <typename T>
CLI::Option* AddPlain(CLI::App& app, std::string_view name, T* value,
                      std::string_view description) {
  return app.add_option(OptionName(name), *value, Desc(description))
      ->envname(EnvNameForFlag(name))
      ->capture_default_str();
}

std::string JoinComma(const std::vector<std::string>& values) {
  std::string out;
  for (const std::string& v : values) {
    if (!out.empty()) out += ",";
    out += v;
  }
  return out;
}

}  // namespace

std::string EnvNameForFlag(std::string_view flag_name) {
  std::string out = "DRIFTLESS_";
  for (char c : flag_name) {
    if (c >= 'a' && c <= 'z') {
      out.push_back(static_cast<char>(c - 'a' + 'A'));
    } else if ((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
      out.push_back(c);
    } else {
      out.push_back('_');
    }
  }
  return out;
}

CLI::Option* AddStringFlag(CLI::App& app, std::string_view name, std::string* value,
                           std::string_view description) {
  return AddPlain(app, name, value, description);
}

CLI::Option* AddIntFlag(CLI::App& app, std::string_view name, int64_t* value,
                        std::string_view description) {
  return AddPlain(app, name, value, description);
}

CLI::Option* AddIntFlag(CLI::App& app, std::string_view name, int* value,
                        std::string_view description) {
  return AddPlain(app, name, value, description);
}

CLI::Option* AddDoubleFlag(CLI::App& app, std::string_view name, double* value,
                           std::string_view description) {
  return AddPlain(app, name, value, description);
}

CLI::Option* AddBoolFlag(CLI::App& app, std::string_view name, bool* value,
                         std::string_view description) {
  return app.add_flag(OptionName(name), *value, Desc(description))
      ->envname(EnvNameForFlag(name))
      ->default_str(*value ? "true" : "false");
}

CLI::Option* AddStringListFlag(CLI::App& app, std::string_view name,
                               std::vector<std::string>* value, std::string_view description) {
  return app.add_option(OptionName(name), *value, Desc(description))
      ->envname(EnvNameForFlag(name))
      ->delimiter(',')
      ->default_str(JoinComma(*value));
}

CLI::Option* AddDurationFlag(CLI::App& app, std::string_view name, std::chrono::milliseconds* value,
                             std::string_view description) {
  CLI::Validator validator(
      [](std::string& text) -> std::string {
        absl::StatusOr<std::chrono::milliseconds> d = ParseDuration(text);
        return d.ok() ? std::string() : std::string(d.status().message());
      },
      "", "duration");
  return app
      .add_option_function<std::string>(
          OptionName(name),
          [value](const std::string& text) {
            // Validated by the check below, so this parse succeeds.
            absl::StatusOr<std::chrono::milliseconds> d = ParseDuration(text);
            if (d.ok()) *value = *d;
          },
          Desc(description))
      ->check(validator)
      ->type_name("DURATION")
      ->envname(EnvNameForFlag(name))
      ->default_str(FormatDuration(*value));
}

CLI::Option* AddByteSizeFlag(CLI::App& app, std::string_view name, uint64_t* value,
                             std::string_view description) {
  CLI::Validator validator(
      [](std::string& text) -> std::string {
        absl::StatusOr<uint64_t> n = ParseByteSize(text);
        return n.ok() ? std::string() : std::string(n.status().message());
      },
      "", "byte-size");
  return app
      .add_option_function<std::string>(
          OptionName(name),
          [value](const std::string& text) {
            absl::StatusOr<uint64_t> n = ParseByteSize(text);
            if (n.ok()) *value = *n;
          },
          Desc(description))
      ->check(validator)
      ->type_name("SIZE")
      ->envname(EnvNameForFlag(name))
      ->default_str(FormatByteSize(*value));
}

CLI::Option* AddChoiceFlag(CLI::App& app, std::string_view name, std::string* value,
                           const std::vector<std::string>& choices, std::string_view description) {
  return AddPlain(app, name, value, description)->check(CLI::IsMember(choices));
}

std::optional<int> ParseFlags(CLI::App& app, int argc, const char* const* argv, std::ostream& out,
                              std::ostream& err) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e, out, err);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e, out, err);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e, out, err);
  } catch (const CLI::ParseError& e) {
    err << app.get_name() << ": error: " << e.what() << "\n"
        << "Run with --help for more information.\n";
    return 2;
  } catch (const std::exception& e) {
    // A bound-value callback threw; still a usage problem from the caller's perspective.
    err << app.get_name() << ": error: " << e.what() << "\n";
    return 2;
  }
  return std::nullopt;
}

std::optional<int> ParseFlags(CLI::App& app, int argc, const char* const* argv) {
  return ParseFlags(app, argc, argv, std::cout, std::cerr);
}

void RegisterServiceFlags(CLI::App& app, ServiceFlags* flags) {
  AddStringFlag(app, "nats-url", &flags->nats_url,
                "NATS server URL of the event backbone; for a cluster, several separated by "
                "commas (nats://a:4222,nats://b:4222): any is used, the others on failure");
  AddIntFlag(app, "nats-replicas", &flags->nats_replicas,
             "replicas of the streams and KV buckets this service creates (1: single server; "
             "3 on a 3-node JetStream cluster)")
      ->check(CLI::Range(1, 5));
  AddIntFlag(app, "http-port", &flags->http_port,
             "port for /healthz, /readyz and /metrics (0 picks a free port)")
      ->check(CLI::Range(0, 65535));
  AddStringFlag(app, "http-address", &flags->http_address,
                "address the health/metrics HTTP endpoint binds");
  AddChoiceFlag(app, "log-level", &flags->log_level,
                {"trace", "debug", "info", "warn", "error", "off"}, "minimum log level");
  AddChoiceFlag(app, "log-format", &flags->log_format, {"json", "text"},
                "log line format: json (one object per line) or text");
  AddStringFlag(app, "state-dir", &flags->state_dir, "directory for local state");
  AddStringFlag(app, "ready-file", &flags->ready_file,
                "file to write (JSON: service, pid, addresses) once the service is ready");
  AddStringFlag(app, "replica-id", &flags->replica_id,
                "name of this replica in events and leases (default <hostname>-<pid>)");
  AddIntFlag(app, "workers", &flags->workers,
             "work items handled at once by this replica (0: the stage's default)");
}

}  // namespace driftless::config
