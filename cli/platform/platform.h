// `driftless up` and `driftless down`: the local platform (nats-server, the Kubernetes API
// emulator and the six services as supervised child processes) in one state directory.
//
//   driftless up [--state-dir DIR] [--no-example] [--kubeconfig FILE] [--webhook-url URL ...]
//                [--detach] [--timeout 120s]
//   driftless down [--state-dir DIR]
//
// DIR layout (see layout.h): nats/, logs/<name>.log, run/<name>.ready, run/platform.json,
// <service>/, emulator-state.json, kubeconfig, endpoints.json, example-repo/.
//
// Process model: every child runs in its own process group (a terminal Ctrl-C reaches only
// the supervisor, which stops the children in reverse start order: SIGTERM, SIGKILL after
// 10 s) and gets SIGTERM if the supervisor dies (PR_SET_PDEATHSIG). With --detach, `up`
// forks the supervisor off at once (setsid, double fork), relays its progress through a
// pipe and returns its startup result; the supervisor keeps running until `down`.
#pragma once

#include <chrono>
#include <iosfwd>
#include <string>
#include <vector>

namespace driftless::cli::platform {

struct UpOptions {
  std::string state_dir;  // empty: $DRIFTLESS_STATE_DIR or ./.driftless
  bool no_example = false;
  std::string kubeconfig;  // empty: run the bundled emulator
  std::vector<std::string> webhook_urls;
  std::vector<std::string> emulator_args;  // --emulator-arg: passed to the bundled emulator
  // --nats-url: run on these NATS servers (comma-separated, e.g. a JetStream cluster) instead of
  // starting one; --nats-replicas: copies of every stream and KV bucket (1 with the bundled one).
  std::string nats_url;
  int nats_replicas = 1;
  bool detach = false;
  std::chrono::milliseconds timeout{std::chrono::seconds(120)};
};

// Runs `up`. Returns the process exit code: 0 after SIGINT/SIGTERM in the foreground (also
// during startup), or once everything is ready (--detach); 1 on startup failure (children
// stopped again) or when the example did not sync (--detach; the platform keeps running);
// 2 when a platform already runs on the directory. Progress goes to `out`, errors to `err`.
int RunUp(const UpOptions& options, std::ostream& out, std::ostream& err);

struct DownOptions {
  std::string state_dir;
  std::chrono::milliseconds timeout{std::chrono::seconds(60)};
};

// Stops the platform recorded in DIR/run/platform.json: SIGTERM to the supervisor, then
// SIGTERM/SIGKILL to every child still alive; removes platform.json. 0 also when nothing
// runs; 1 if a process could not be stopped.
int RunDown(const DownOptions& options, std::ostream& out, std::ostream& err);

}  // namespace driftless::cli::platform
