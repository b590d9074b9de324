// Test helper: runs the driftless-kube-emulator binary as a child process (port 0,
// --ready-file, --write-kubeconfig in a fresh temp dir), and runs other commands (kubectl)
// with captured output. Every process started is ended by PID.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace driftless::kube_emulator::testing {

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline std::string MakeTempDir() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "kube-emu-XXXXXX").string();
  char* d = mkdtemp(tmpl.data());
  return d ? std::string(d) : "";
}

// Spawns argv with stdout/stderr redirected to files; returns the pid (or -1).
inline pid_t Spawn(const std::vector<std::string>& argv, const std::string& out,
                   const std::string& err, const std::vector<std::string>& env_extra = {}) {
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&fa, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::vector<std::string> env_store;
  for (char** e = environ; *e; ++e) env_store.emplace_back(*e);
  for (const auto& e : env_extra) env_store.push_back(e);
  std::vector<char*> envp;
  for (auto& e : env_store) envp.push_back(e.data());
  envp.push_back(nullptr);
  pid_t pid = -1;
  if (posix_spawn(&pid, args[0], &fa, nullptr, args.data(), envp.data()) != 0) pid = -1;
  posix_spawn_file_actions_destroy(&fa);
  return pid;
}

// Waits for `pid` up to `timeout`; kills it (by PID) on timeout. Returns the exit code, or
// -1 on timeout/signal.
inline int WaitPid(pid_t pid, std::chrono::seconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    int status = 0;
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    if (r < 0) return -1;
    if (std::chrono::steady_clock::now() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      return -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

class EmulatorProcess {
 public:
  ~EmulatorProcess() { Stop(); }

  // Starts the emulator with `extra` flags; true once the ready file appeared.
  bool Start(const std::vector<std::string>& extra = {}) {
    dir_ = MakeTempDir();
    std::vector<std::string> argv = {
        std::string(DRIFTLESS_BINARY_DIR) + "/tools/kube-emulator/driftless-kube-emulator",
        "--port",
        "0",
        "--ready-file",
        dir_ + "/ready",
        "--write-kubeconfig",
        dir_ + "/kubeconfig",
        "--rollout-delay",
        "100"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    pid_ = Spawn(argv, dir_ + "/emulator.out", dir_ + "/emulator.err");
    if (pid_ <= 0) return false;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (std::chrono::steady_clock::now() < deadline) {
      std::string url = ReadFile(dir_ + "/ready");
      if (!url.empty() && url.back() == '\n') {
        url_ = url.substr(0, url.size() - 1);
        return true;
      }
      int status;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return false;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  }

  // SIGTERM and wait; returns the exit code (0 = graceful).
  int Stop() {
    if (pid_ <= 0) return 0;
    kill(pid_, SIGTERM);
    int code = WaitPid(pid_, std::chrono::seconds(20));
    pid_ = -1;
    return code;
  }

  // SIGKILL and wait (a crash: nothing is flushed on the way out).
  void Kill() {
    if (pid_ <= 0) return;
    kill(pid_, SIGKILL);
    WaitPid(pid_, std::chrono::seconds(20));
    pid_ = -1;
  }

  const std::string& url() const { return url_; }
  const std::string& dir() const { return dir_; }
  std::string kubeconfig() const { return dir_ + "/kubeconfig"; }
  int port() const { return std::stoi(url_.substr(url_.rfind(':') + 1)); }

 private:
  pid_t pid_ = -1;
  std::string dir_;
  std::string url_;
};

}  // namespace driftless::kube_emulator::testing
