// Child processes of the local platform: spawning with output to a log file, liveness checks
// that survive PID reuse, and stopping by PID. Linux only (/proc, prctl).
//
//   DL_ASSIGN_OR_RETURN(pid_t pid, Spawn({.argv = {"/usr/sbin/nats-server", "-js"},
//                                         .log_path = "/tmp/x/logs/nats-server.log",
//                                         .own_process_group = true}));
//   ...
//   StopProcess(pid, absl::Seconds(10));   // SIGTERM, SIGKILL after 10 s, reaped
//
// Thread-safety: the functions are thread-safe; Spawn forks, so call it from the thread that
// should be the children's "parent thread" (PR_SET_PDEATHSIG fires when that thread exits).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace driftless::cli::platform {

struct SpawnOptions {
  std::vector<std::string> argv;  // argv[0] is the executable path (no PATH lookup)
  // Where stdout and stderr go: appended to `log_path` if set, else `output_fd` if >= 0, else
  // inherited. stdin is /dev/null unless `inherit_stdin`.
  std::string log_path;
  int output_fd = -1;
  bool inherit_stdin = false;
  // Put the child in its own process group, so a Ctrl-C on the terminal reaches only the
  // supervisor, which then stops the children in order.
  bool own_process_group = true;
  // Signal the child receives when the spawning thread dies (0: none).
  int parent_death_signal = 0;
  // Extra environment entries ("K=V"), added to (and overriding) the inherited environment.
  std::vector<std::string> extra_env;
};

// Forks and execs. Errors: kInvalidArgument for an empty argv; kNotFound if argv[0] is not an
// executable file; kInternal if fork fails or the log file cannot be opened (then the
// child exits 127 and the error is in the log).
absl::StatusOr<pid_t> Spawn(const SpawnOptions& options);

// The kernel's start time of `pid` (clock ticks since boot, /proc/<pid>/stat field 22), or
// nullopt if there is no such process or it is a zombie. A (pid, start time) pair names one
// process even after the pid is reused.
std::optional<uint64_t> ProcessStartTime(pid_t pid);

// True if `pid` is a running (non-zombie) process and, when `start_time` is non-zero, the
// same process that had that start time.
bool IsRunning(pid_t pid, uint64_t start_time = 0);

// If `pid` (a child of this process) has exited, reaps it and returns its wait status.
std::optional<int> ReapIfExited(pid_t pid);

// "exit status 3", "killed by signal 9 (Killed)".
std::string DescribeWaitStatus(int wait_status);

// Sends SIGTERM, waits up to `grace` for the process to end, then SIGKILLs it and waits again.
// Works for children (reaped) and for other processes (polled; zombies count as ended).
// `start_time` as in IsRunning guards against signalling a reused pid. OK if it was not
// running. kDeadlineExceeded if it survived SIGKILL for 5 s.
absl::Status StopProcess(pid_t pid, absl::Duration grace, uint64_t start_time = 0);

// The absolute path of the running executable (/proc/self/exe).
absl::StatusOr<std::string> SelfExecutable();

}  // namespace driftless::cli::platform
