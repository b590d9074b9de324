#include "cli/platform/process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>

#include "common/strings/str.h"

extern char** environ;

namespace driftless::cli::platform {
namespace {

// Fields of /proc/<pid>/stat after the parenthesised command name.
std::optional<std::vector<std::string>> StatFields(pid_t pid) {
  std::ifstream in(strings::Cat("/proc/", pid, "/stat"));
  if (!in) return std::nullopt;
  std::string line;
  std::getline(in, line);
  size_t close = line.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::istringstream rest(line.substr(close + 1));
  std::vector<std::string> fields;
  for (std::string f; rest >> f;) fields.push_back(f);
  return fields;
}

void WriteAll(int fd, const char* text) {
  size_t n = strlen(text);
  while (n > 0) {
    ssize_t w = write(fd, text, n);
    if (w <= 0) return;
    text += w;
    n -= static_cast<size_t>(w);
  }
}

}  // namespace

absl::StatusOr<pid_t> Spawn(const SpawnOptions& options) {
  if (options.argv.empty()) return absl::InvalidArgumentError("spawn: empty command line");
  const std::string& path = options.argv[0];
  if (access(path.c_str(), X_OK) != 0) {
    return absl::NotFoundError(strings::Cat("cannot execute ", path, ": ", strerror(errno)));
  }
  // Everything the child needs is prepared before fork: between fork and exec only
  // async-signal-safe calls are allowed.
  std::vector<char*> argv;
  for (const std::string& a : options.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::map<std::string, std::string> env_map;
  std::vector<std::string> env_storage;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string entry(*e);
    env_map[entry.substr(0, entry.find('='))] = entry;
  }
  for (const std::string& entry : options.extra_env)
    env_map[entry.substr(0, entry.find('='))] = entry;
  for (auto& [k, v] : env_map) env_storage.push_back(v);
  std::vector<char*> envp;
  for (std::string& e : env_storage) envp.push_back(e.data());
  envp.push_back(nullptr);
  const char* log_path = options.log_path.empty() ? nullptr : options.log_path.c_str();
  const std::string exec_error = strings::Cat("driftless: cannot execute ", path, "\n");
  const pid_t parent = getpid();

  pid_t pid = fork();
  if (pid < 0) return absl::InternalError(strings::Cat("fork: ", strerror(errno)));
  if (pid == 0) {
    if (options.own_process_group) setpgid(0, 0);
    if (options.parent_death_signal != 0) {
      prctl(PR_SET_PDEATHSIG, options.parent_death_signal);
      if (getppid() != parent) _exit(127);  // the parent died before prctl
    }
    if (!options.inherit_stdin) {
      int null_fd = open("/dev/null", O_RDONLY);
      if (null_fd >= 0) {
        dup2(null_fd, 0);
        if (null_fd != 0) close(null_fd);
      }
    }
    int out = options.output_fd;
    if (log_path != nullptr) {
      out = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
      if (out < 0) _exit(127);
    }
    if (out >= 0) {
      dup2(out, 1);
      dup2(out, 2);
    }
    // Nothing else of the supervisor's leaks into the child (pipes, sockets, logs).
    close_range(3, ~0U, 0);
    // Undo the supervisor's signal mask and ignored SIGPIPE (ignored dispositions survive
    // exec; caught ones are reset).
    struct sigaction default_action {};
    default_action.sa_handler = SIG_DFL;
    sigaction(SIGPIPE, &default_action, nullptr);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    execve(argv[0], argv.data(), envp.data());
    WriteAll(2, exec_error.c_str());
    _exit(127);
  }
  return pid;
}

std::optional<uint64_t> ProcessStartTime(pid_t pid) {
  if (pid <= 0) return std::nullopt;
  auto fields = StatFields(pid);
  // After the command: state is field 3 (index 0), starttime is field 22 (index 19).
  if (!fields || fields->size() < 20) return std::nullopt;
  if ((*fields)[0] == "Z" || (*fields)[0] == "X") return std::nullopt;
  try {
    return std::stoull((*fields)[19]);
  } catch (...) {
    return std::nullopt;
  }
}

bool IsRunning(pid_t pid, uint64_t start_time) {
  std::optional<uint64_t> actual = ProcessStartTime(pid);
  if (!actual) return false;
  return start_time == 0 || *actual == start_time;
}

std::optional<int> ReapIfExited(pid_t pid) {
  int status = 0;
  pid_t r = waitpid(pid, &status, WNOHANG);
  if (r == pid) return status;
  return std::nullopt;
}

std::string DescribeWaitStatus(int wait_status) {
  if (WIFEXITED(wait_status)) return strings::Cat("exit status ", WEXITSTATUS(wait_status));
  if (WIFSIGNALED(wait_status)) {
    int sig = WTERMSIG(wait_status);
    return strings::Cat("killed by signal ", sig, " (", strsignal(sig), ")");
  }
  return strings::Cat("wait status ", wait_status);
}

namespace {

// True once the process is gone (reaping it if it is our child).
bool Ended(pid_t pid, uint64_t start_time) {
  int status = 0;
  pid_t r = waitpid(pid, &status, WNOHANG);
  if (r == pid) return true;
  return !IsRunning(pid, start_time);
}

bool WaitEnded(pid_t pid, uint64_t start_time, absl::Duration deadline) {
  absl::Time until = absl::Now() + deadline;
  while (!Ended(pid, start_time)) {
    if (absl::Now() >= until) return false;
    absl::SleepFor(absl::Milliseconds(20));
  }
  return true;
}

}  // namespace

absl::Status StopProcess(pid_t pid, absl::Duration grace, uint64_t start_time) {
  if (pid <= 0 || Ended(pid, start_time)) return absl::OkStatus();
  kill(pid, SIGTERM);
  if (WaitEnded(pid, start_time, grace)) return absl::OkStatus();
  kill(pid, SIGKILL);
  if (WaitEnded(pid, start_time, absl::Seconds(5))) return absl::OkStatus();
  return absl::DeadlineExceededError(strings::Cat("process ", pid, " survived SIGKILL"));
}

absl::StatusOr<std::string> SelfExecutable() {
  char buf[4096];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n <= 0)
    return absl::InternalError(strings::Cat("readlink /proc/self/exe: ", strerror(errno)));
  return std::string(buf, static_cast<size_t>(n));
}

}  // namespace driftless::cli::platform
