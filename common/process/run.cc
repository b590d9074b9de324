#include "common/process/run.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <string_view>

#include "absl/strings/str_cat.h"

extern char** environ;

namespace driftless::process {
namespace {

struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) close(fd);
  }
  void Close() {
    if (fd >= 0) close(fd);
    fd = -1;
  }
};

std::string_view NameOf(std::string_view kv) { return kv.substr(0, kv.find('=')); }

std::vector<std::string> EnvironmentOf(const RunOptions& options) {
  std::vector<std::string> env;
  if (options.inherit_env) {
    for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
      std::string_view kv(*e);
      bool overridden = false;
      for (const std::string& o : options.env) overridden |= NameOf(o) == NameOf(kv);
      if (!overridden) env.emplace_back(kv);
    }
  }
  env.insert(env.end(), options.env.begin(), options.env.end());
  return env;
}

std::vector<char*> Pointers(std::vector<std::string>& strings) {
  std::vector<char*> out;
  out.reserve(strings.size() + 1);
  for (std::string& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

}  // namespace

absl::StatusOr<RunResult> Run(const RunOptions& options) {
  if (options.argv.empty()) return absl::InvalidArgumentError("run: empty argv");
  const std::string& program = options.argv[0];
  std::vector<std::string> env_strings = EnvironmentOf(options);
  std::vector<std::string> arg_strings = options.argv;
  std::vector<char*> envp = Pointers(env_strings);
  std::vector<char*> argv = Pointers(arg_strings);

  int out_pipe[2], err_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0) return absl::InternalError(program + ": pipe failed");
  Fd out_r{out_pipe[0]}, out_w{out_pipe[1]};
  if (pipe2(err_pipe, O_CLOEXEC) != 0) return absl::InternalError(program + ": pipe failed");
  Fd err_r{err_pipe[0]}, err_w{err_pipe[1]};

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out_w.fd, 1);
  posix_spawn_file_actions_adddup2(&actions, err_w.fd, 2);
  if (!options.cwd.empty()) posix_spawn_file_actions_addchdir_np(&actions, options.cwd.c_str());
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK);
  posix_spawnattr_setpgroup(&attr, 0);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);
  pid_t pid = -1;
  const int rc =
      program.find('/') != std::string::npos
          ? posix_spawn(&pid, program.c_str(), &actions, &attr, argv.data(), envp.data())
          : posix_spawnp(&pid, program.c_str(), &actions, &attr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc == ENOENT) return absl::NotFoundError(program + ": not found");
  if (rc != 0) return absl::InternalError(absl::StrCat(program, ": ", std::strerror(rc)));
  out_w.Close();
  err_w.Close();

  RunResult result;
  const auto deadline =
      std::chrono::steady_clock::now() + absl::ToChronoMilliseconds(options.timeout);
  bool out_open = true, err_open = true, timed_out = false, too_big = false;
  std::string buf(64 << 10, '\0');
  while (out_open || err_open) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      break;
    }
    pollfd fds[2] = {{out_open ? out_r.fd : -1, POLLIN, 0}, {err_open ? err_r.fd : -1, POLLIN, 0}};
    const int n = poll(fds, 2, static_cast<int>(left.count()));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      const ssize_t r = read(fds[i].fd, buf.data(), buf.size());
      if (r > 0) {
        (i == 0 ? result.out : result.err).append(buf.data(), static_cast<size_t>(r));
      } else if (r == 0 || errno != EINTR) {
        (i == 0 ? out_open : err_open) = false;
      }
    }
    if (result.out.size() + result.err.size() > options.max_output) {
      too_big = true;
      break;
    }
  }
  if (timed_out || too_big) kill(-pid, SIGKILL);
  int wstatus = 0;
  while (waitpid(pid, &wstatus, 0) < 0 && errno == EINTR) {
  }
  if (timed_out) {
    return absl::DeadlineExceededError(
        absl::StrCat(program, ": stopped after ", absl::FormatDuration(options.timeout)));
  }
  if (too_big) {
    return absl::ResourceExhaustedError(absl::StrCat(program, ": stopped after printing more than ",
                                                     options.max_output >> 20, " MB"));
  }
  result.exit_code = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 128 + WTERMSIG(wstatus);
  return result;
}

std::vector<std::string> ScrubbedEnv(const std::vector<std::string>& extra) {
  std::vector<std::string> env = {"PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8"};
  for (const std::string& e : extra) {
    std::erase_if(env, [&](const std::string& have) { return NameOf(have) == NameOf(e); });
    env.push_back(e);
  }
  return env;
}

std::string FirstLines(std::string_view text, int max_lines) {
  std::string out;
  int lines = 0;
  while (!text.empty() && lines < max_lines) {
    const size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    while (!line.empty() && std::isspace(static_cast<unsigned char>(line.front()))) {
      line.remove_prefix(1);
    }
    while (!line.empty() && std::isspace(static_cast<unsigned char>(line.back()))) {
      line.remove_suffix(1);
    }
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    if (line.empty()) continue;
    if (!out.empty()) out += "; ";
    out.append(line);
    ++lines;
    if (out.size() > 2048) {
      out.resize(2048);
      out += "...";
      break;
    }
  }
  return out;
}

}  // namespace driftless::process
