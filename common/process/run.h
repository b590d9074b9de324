// Runs a program to completion and captures its output, with a deadline and an output cap:
// the edge every tool invocation (helm, kustomize, exec credential plugins) goes through.
//
//   DL_ASSIGN_OR_RETURN(process::RunResult r,
//                       process::Run({.argv = {"/usr/bin/helm", "template", "web", "."},
//                                     .cwd = chart_dir,
//                                     .env = process::ScrubbedEnv({"HOME=" + home}),
//                                     .timeout = absl::Seconds(90)}));
//   if (r.exit_code != 0) ... r.err ...
//
// The child runs in its own process group with stdin on /dev/null; on the deadline or when the
// output passes the cap the whole group is killed (SIGKILL) and reaped.
//
// Thread-safety: thread-safe (posix_spawn; no state).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace driftless::process {

struct RunOptions {
  std::vector<std::string> argv;  // argv[0]: an absolute path, or a name looked up in PATH
  std::string cwd;                // "" = the caller's
  // The child's whole environment ("K=V"); `inherit_env` adds the caller's environment first
  // (entries here override inherited ones with the same name).
  std::vector<std::string> env;
  bool inherit_env = false;
  absl::Duration timeout = absl::Seconds(90);
  uint64_t max_output = 100ull << 20;  // stdout + stderr bytes
};

struct RunResult {
  int exit_code = 0;  // the exit status; 128 + signal when killed by a signal
  std::string out;
  std::string err;
};

// Errors (each names argv[0]): kNotFound (no such executable), kDeadlineExceeded (killed at
// the timeout), kResourceExhausted (killed when the output passed max_output), kInternal
// (pipe/spawn failures). A non-zero exit is not an error: look at exit_code.
absl::StatusOr<RunResult> Run(const RunOptions& options);

// A minimal environment for untrusted work: PATH=/usr/local/bin:/usr/bin:/bin, LANG=C.UTF-8,
// plus `extra`. Nothing from the caller's environment (no proxies, tokens or credentials).
std::vector<std::string> ScrubbedEnv(const std::vector<std::string>& extra);

// The first non-empty lines of a tool's stderr (at most `max_lines` lines and 2 KB), joined
// with "; ", for error messages.
std::string FirstLines(std::string_view text, int max_lines = 5);

}  // namespace driftless::process
