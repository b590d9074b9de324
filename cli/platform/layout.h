// The pure part of `driftless up` / `down`: where things live in the state directory, which
// binaries to look for where, the command line of every child, and the JSON files the
// platform writes (endpoints.json for users, platform.json for `down`). No I/O here except
// through the `is_executable` predicate passed to FindBinary.
//
//   Layout layout = Layout::For("/home/me/.driftless");
//   layout.ReadyFile("renderer");   // "/home/me/.driftless/run/renderer.ready"
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace driftless::cli::platform {

// The six services, in start order (the api last: when it is ready, everything is).
inline const std::vector<std::string>& ServiceNames() {
  static const std::vector<std::string> kNames = {"repo-poller", "renderer", "planner",
                                                  "applier",     "notifier", "api"};
  return kNames;
}
inline constexpr char kNatsName[] = "nats-server";
inline constexpr char kEmulatorName[] = "kube-emulator";

// DIR/nats/, DIR/logs/<name>.log, DIR/run/<name>.ready, DIR/run/platform.json,
// DIR/<service>/, DIR/emulator-state.json (+ .log of changes while it runs), DIR/kubeconfig,
// DIR/endpoints.json, DIR/example-repo/.
struct Layout {
  std::string dir;  // absolute

  static Layout For(std::string dir) { return Layout{std::move(dir)}; }
  std::string NatsDir() const { return dir + "/nats"; }
  std::string LogsDir() const { return dir + "/logs"; }
  std::string RunDir() const { return dir + "/run"; }
  std::string Log(std::string_view name) const {
    return LogsDir() + "/" + std::string(name) + ".log";
  }
  std::string ReadyFile(std::string_view name) const {
    return RunDir() + "/" + std::string(name) + ".ready";
  }
  std::string PlatformFile() const { return RunDir() + "/platform.json"; }
  std::string ServiceStateDir(std::string_view service) const {
    return dir + "/" + std::string(service);
  }
  std::string EmulatorState() const { return dir + "/emulator-state.json"; }
  std::string Kubeconfig() const { return dir + "/kubeconfig"; }
  std::string Endpoints() const { return dir + "/endpoints.json"; }
  std::string ExampleRepo() const { return dir + "/example-repo"; }
};

// The state directory: the flag if set, else $DRIFTLESS_STATE_DIR, else "./.driftless";
// made absolute against `cwd`.
std::string ResolveStateDir(std::string_view flag, const char* env, std::string_view cwd);

// Where to look for an executable named `name` ("driftless-renderer"), in order:
// $DRIFTLESS_BIN_DIR, the directory of the running executable, the build tree
// (<exe dir>/../<build_subdir>/<name>, e.g. "services/renderer"), then every PATH entry.
std::vector<std::string> BinaryCandidates(std::string_view name, std::string_view build_subdir,
                                          const char* bin_dir_env, std::string_view exe_dir,
                                          const char* path_env);

// The first candidate for which `is_executable` holds. kNotFound naming the binary and every
// place searched.
absl::StatusOr<std::string> FindBinary(
    std::string_view name, const std::vector<std::string>& candidates,
    const std::function<bool(const std::string&)>& is_executable);

// What a child needs on its command line besides its binary.
struct PlatformPorts {
  int nats_port = 0;
  int nats_monitor_port = 0;
};

// nats-server -js -sd DIR/nats -a 127.0.0.1 -p P -m M
std::vector<std::string> NatsArgs(const std::string& binary, const Layout& layout,
                                  const PlatformPorts& ports);
// driftless-kube-emulator --port P --write-kubeconfig ... --ready-file ... --state-file ...
// `extra` (--emulator-arg) is appended as given, e.g. {"--delay-ms=20"} for benchmarks.
std::vector<std::string> EmulatorArgs(const std::string& binary, const Layout& layout, int port,
                                      const std::vector<std::string>& extra = {});

struct ServiceArgsInput {
  std::string nats_url;
  int nats_replicas = 1;  // passed as --nats-replicas when not 1
  std::string kubeconfig;
  std::vector<std::string> webhook_urls;
  int http_port = 0;  // 0: a free one (restarts pass the port the service had)
  int grpc_port = 0;  // api only
  // The renderer's tools (absolute paths); empty: the renderer looks them up in PATH.
  std::string helm;
  std::string kubectl;
};
// driftless-<svc> --nats-url U --http-port P --ready-file F --state-dir D --log-format json,
// plus --nats-replicas (when not 1), --kubeconfig (planner, applier), --grpc-port (api),
// --webhook-url (notifier), --helm and
// --kubectl (renderer, when known).
std::vector<std::string> ServiceArgs(const std::string& binary, std::string_view service,
                                     const Layout& layout, const ServiceArgsInput& input);

// "http://127.0.0.1:8080" -> 8080; 0 if there is no port.
int PortOf(std::string_view url);

// A service's ready file: {"service", "pid", "http", ["grpc", "webhooks"]}.
struct ReadyInfo {
  std::string http;      // base URL
  std::string grpc;      // host:port (api)
  std::string webhooks;  // base URL of /hooks (api)
};
// kInvalidArgument if `text` is not a JSON object with a string "http".
absl::StatusOr<ReadyInfo> ParseServiceReadyFile(std::string_view text);

// A process the platform runs, as recorded in platform.json.
struct ProcessRecord {
  pid_t pid = 0;
  uint64_t start_time = 0;  // see ProcessStartTime
};

// DIR/run/platform.json: what `down` needs to stop the platform.
struct PlatformRecord {
  std::string state_dir;
  ProcessRecord supervisor;
  std::map<std::string, ProcessRecord> children;  // by name
};
std::string EncodePlatformRecord(const PlatformRecord& record);
// kInvalidArgument for malformed content.
absl::StatusOr<PlatformRecord> DecodePlatformRecord(std::string_view text);

// Everything endpoints.json says.
struct Endpoints {
  std::string state_dir;
  std::string nats_url;
  std::string nats_monitor;  // http://127.0.0.1:M
  std::string kubeconfig;
  std::string emulator;                       // URL, empty with --kubeconfig
  std::map<std::string, ProcessRecord> pids;  // by child name
  std::map<std::string, ReadyInfo> services;  // by service name
};
// {"api": "127.0.0.1:P", "webhooks": ".../hooks", "nats": "nats://...", "kubeconfig": ...,
//  "stateDir": ..., "natsMonitor": ..., "emulator": ...,
//  "services": {"<svc>": {"pid", "health", "ready", "metrics", "log"}}}
nlohmann::json EndpointsJson(const Endpoints& endpoints, const Layout& layout);

// The example Application with spec.source.repoURL replaced by `repo_url` (line-based, keeps
// the comments). kInvalidArgument if there is no repoURL line.
absl::StatusOr<std::string> WithRepoUrl(std::string_view application_yaml,
                                        std::string_view repo_url);

}  // namespace driftless::cli::platform
