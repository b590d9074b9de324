#include "cli/platform/supervisor.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>

#include "cli/platform/io.h"
#include "cli/platform/process.h"
#include "common/config/shutdown_signal.h"
#include "common/strings/str.h"

namespace driftless::cli::platform {

Supervisor::~Supervisor() { StopAll(absl::Seconds(10)); }

void Supervisor::SetBackoffForTest(absl::Duration initial, absl::Duration max,
                                   absl::Duration reset_after) {
  initial_backoff_ = initial;
  max_backoff_ = max;
  reset_after_ = reset_after;
}

void Supervisor::Add(ChildSpec spec) {
  Child child;
  child.spec = std::move(spec);
  child.backoff = initial_backoff_;
  children_.push_back(std::move(child));
}

Supervisor::Child* Supervisor::Find(const std::string& name) {
  for (Child& c : children_) {
    if (c.spec.name == name) return &c;
  }
  return nullptr;
}

bool Supervisor::ShuttingDown() const {
  return shutdown_ != nullptr && shutdown_->IsShutdownRequested();
}

bool Supervisor::Wait(absl::Duration d) const {
  if (shutdown_ == nullptr) {
    absl::SleepFor(d);
    return false;
  }
  return shutdown_->WaitForShutdownFor(absl::ToChronoMilliseconds(d));
}

absl::Status Supervisor::Spawn(Child& child) {
  if (!child.spec.ready_file.empty()) std::remove(child.spec.ready_file.c_str());
  absl::StatusOr<pid_t> pid = platform::Spawn({.argv = child.spec.argv(),
                                               .log_path = child.spec.log_path,
                                               .own_process_group = true,
                                               .parent_death_signal = SIGTERM});
  if (!pid.ok()) return pid.status();
  child.pid = *pid;
  child.start_time = ProcessStartTime(*pid).value_or(0);
  child.ready = false;
  child.started = absl::Now();
  return absl::OkStatus();
}

absl::Status Supervisor::Start(const std::string& name) {
  Child* child = Find(name);
  if (child == nullptr) return absl::NotFoundError(strings::Cat("no child named ", name));
  return Spawn(*child);
}

absl::Status Supervisor::WaitReady(const std::string& name, absl::Time deadline) {
  Child* child = Find(name);
  if (child == nullptr) return absl::NotFoundError(strings::Cat("no child named ", name));
  absl::Status last = absl::UnavailableError("not probed yet");
  while (true) {
    if (child->pid <= 0)
      return absl::FailedPreconditionError(strings::Cat(name, " is not running"));
    if (std::optional<int> status = ReapIfExited(child->pid)) {
      child->pid = 0;
      if (child->spec.on_failed_start) child->spec.on_failed_start();
      return absl::FailedPreconditionError(
          strings::Cat(name, " exited during startup (", DescribeWaitStatus(*status), "); end of ",
                       child->spec.log_path, ":\n", Tail(child->spec.log_path, 15)));
    }
    last = child->spec.probe();
    if (last.ok()) {
      child->ready = true;
      if (child->spec.on_ready) child->spec.on_ready();
      return absl::OkStatus();
    }
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(
          strings::Cat(name, " was not ready in time: ", last.message(), "; end of ",
                       child->spec.log_path, ":\n", Tail(child->spec.log_path, 15)));
    }
    if (Wait(absl::Milliseconds(50))) {
      return absl::CancelledError(strings::Cat("interrupted while waiting for ", name));
    }
  }
}

void Supervisor::Supervise(const std::function<void()>& changed, absl::Duration tick) {
  while (!ShuttingDown()) {
    bool any_change = false;
    absl::Time now = absl::Now();
    for (Child& c : children_) {
      if (c.pid > 0) {
        if (std::optional<int> status = ReapIfExited(c.pid)) {
          if (now - c.started >= reset_after_) c.backoff = initial_backoff_;
          if (!c.ready && c.spec.on_failed_start) c.spec.on_failed_start();
          say_(strings::Cat("! ", c.spec.name, " (pid ", c.pid, ") exited unexpectedly (",
                            DescribeWaitStatus(*status), "); restarting in ",
                            absl::FormatDuration(c.backoff), "; log: ", c.spec.log_path));
          c.pid = 0;
          c.ready = false;
          c.restart_at = now + c.backoff;
          c.backoff = std::min(c.backoff * 2, max_backoff_);
          any_change = true;
        } else if (!c.ready && c.spec.probe().ok()) {
          c.ready = true;
          if (c.spec.on_ready) c.spec.on_ready();
          say_(strings::Cat("+ ", c.spec.name, " ready again (pid ", c.pid, ")"));
          any_change = true;
        }
      } else if (now >= c.restart_at) {
        ++c.restarts;
        if (absl::Status s = Spawn(c); !s.ok()) {
          say_(strings::Cat("! cannot restart ", c.spec.name, ": ", s.message()));
          c.restart_at = now + c.backoff;
          c.backoff = std::min(c.backoff * 2, max_backoff_);
        } else {
          say_(strings::Cat("+ restarted ", c.spec.name, " (pid ", c.pid, ")"));
          any_change = true;
        }
      }
    }
    if (any_change && changed) changed();
    Wait(tick);
  }
}

void Supervisor::StopAll(absl::Duration grace) {
  for (auto it = children_.rbegin(); it != children_.rend(); ++it) {
    if (it->pid <= 0) continue;
    if (absl::Status s = StopProcess(it->pid, grace); !s.ok()) {
      say_(strings::Cat("! ", it->spec.name, ": ", s.message()));
    }
    it->pid = 0;
    it->ready = false;
  }
}

std::map<std::string, ProcessRecord> Supervisor::Pids() const {
  std::map<std::string, ProcessRecord> out;
  for (const Child& c : children_) {
    if (c.pid > 0) out[c.spec.name] = {.pid = c.pid, .start_time = c.start_time};
  }
  return out;
}

int Supervisor::restarts(const std::string& name) const {
  for (const Child& c : children_) {
    if (c.spec.name == name) return c.restarts;
  }
  return 0;
}

}  // namespace driftless::cli::platform
