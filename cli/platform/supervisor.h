// Runs the platform's child processes: starts them, waits until each is ready, restarts the
// ones that die (with exponential backoff), and stops them in reverse start order. Used by
// `driftless up`; knows nothing about what the children are (see platform.cc).
//
//   Supervisor sup(&shutdown, say);
//   sup.Add({.name = "nats-server", .argv = [&] { return NatsArgs(...); },
//            .probe = [&] { return NatsHealthy(); }, .log_path = layout.Log("nats-server")});
//   DL_RETURN_IF_ERROR(sup.Start("nats-server"));
//   DL_RETURN_IF_ERROR(sup.WaitReady("nats-server", deadline));
//   sup.Supervise([&] { WriteEndpoints(); });   // until SIGINT/SIGTERM
//   sup.StopAll(absl::Seconds(10));
//
// Thread-safety: none; one thread (the one that started the children) drives it, because
// children get SIGTERM when that thread dies (PR_SET_PDEATHSIG).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "cli/platform/layout.h"

namespace driftless::config {
class ShutdownSignal;
}

namespace driftless::cli::platform {

struct ChildSpec {
  std::string name;
  // The command line, rebuilt at every (re)start so restarts can keep ports.
  std::function<std::vector<std::string>()> argv;
  // OK once the child is ready; any error while it is starting (the message is shown when
  // the deadline passes).
  std::function<absl::Status()> probe;
  // Called when the child became ready (record its addresses).
  std::function<void()> on_ready;
  // Called when the child died before becoming ready (forget pinned ports, say).
  std::function<void()> on_failed_start;
  std::string log_path;    // stdout+stderr, appended
  std::string ready_file;  // removed before every start, if set
};

class Supervisor {
 public:
  using Say = std::function<void(const std::string&)>;
  // `shutdown` (not owned, may be null) interrupts waits and ends Supervise().
  Supervisor(config::ShutdownSignal* shutdown, Say say)
      : shutdown_(shutdown), say_(std::move(say)) {}
  ~Supervisor();  // stops every child still running

  // Backoff between restarts of a crashed child: `initial`, doubling up to `max`; reset when
  // the child had been running for `reset_after`.
  void SetBackoffForTest(absl::Duration initial, absl::Duration max, absl::Duration reset_after);

  void Add(ChildSpec spec);
  // Spawns the named child. kNotFound for an unknown name or a missing binary.
  absl::Status Start(const std::string& name);
  // Polls the child's probe until OK. kFailedPrecondition (with the end of its log) if the
  // child exits, kDeadlineExceeded (with the last probe error) at `deadline`, kCancelled on
  // shutdown.
  absl::Status WaitReady(const std::string& name, absl::Time deadline);

  // Until shutdown: reaps children that died, logs it, restarts them with backoff, notices
  // when restarted children are ready again. `changed` runs after any pid or readiness change.
  // `tick` bounds how long a death goes unnoticed.
  void Supervise(const std::function<void()>& changed,
                 absl::Duration tick = absl::Milliseconds(100));

  // SIGTERM to each child in reverse start order, SIGKILL after `grace`; reaps them all.
  void StopAll(absl::Duration grace);

  // Running children with their pids, by name.
  std::map<std::string, ProcessRecord> Pids() const;
  int restarts(const std::string& name) const;

 private:
  struct Child {
    ChildSpec spec;
    pid_t pid = 0;
    uint64_t start_time = 0;
    bool ready = false;
    absl::Time started;
    absl::Time restart_at;
    absl::Duration backoff;
    int restarts = 0;
  };
  Child* Find(const std::string& name);
  absl::Status Spawn(Child& child);
  bool ShuttingDown() const;
  // Sleeps up to `d`; true if shutdown was requested.
  bool Wait(absl::Duration d) const;

  config::ShutdownSignal* shutdown_;
  Say say_;
  std::vector<Child> children_;  // in start order
  absl::Duration initial_backoff_ = absl::Seconds(1);
  absl::Duration max_backoff_ = absl::Seconds(30);
  absl::Duration reset_after_ = absl::Seconds(60);
};

}  // namespace driftless::cli::platform
