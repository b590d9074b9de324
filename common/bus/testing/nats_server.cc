#include "common/bus/testing/nats_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include "common/bus/internal/str.h"

namespace driftless::bus::testing {
namespace {

std::string ServerBinary() {
  const char* env = std::getenv("DRIFTLESS_NATS_SERVER");
  if (env != nullptr && *env != '\0') return env;
  // Debian installs it in /usr/sbin.
  for (const char* candidate :
       {"/usr/sbin/nats-server", "/usr/bin/nats-server", "/usr/local/bin/nats-server"}) {
    if (access(candidate, X_OK) == 0) return candidate;
  }
  return "/usr/sbin/nats-server";
}

bool AcceptsConnections(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  close(fd);
  return ok;
}

std::string LogTail(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  if (text.size() > 2000) text = text.substr(text.size() - 2000);
  return text;
}

}  // namespace

absl::StatusOr<int> PickFreePort() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError(internal::Cat("socket: ", std::strerror(errno)));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = 0;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    int err = errno;
    close(fd);
    return absl::InternalError(internal::Cat("bind 127.0.0.1:0: ", std::strerror(err)));
  }
  int port = ntohs(addr.sin_port);
  close(fd);
  return port;
}

absl::StatusOr<std::unique_ptr<NatsServerProcess>> NatsServerProcess::Start(
    const std::string& store_dir, absl::Duration startup_deadline) {
  std::error_code ec;
  std::filesystem::create_directories(store_dir, ec);
  if (ec) return absl::InternalError(internal::Cat("mkdir ", store_dir, ": ", ec.message()));
  absl::Status last;
  // The port is free when picked but may be taken before the server binds it: retry.
  for (int attempt = 0; attempt < 3; ++attempt) {
    absl::StatusOr<int> port = PickFreePort();
    if (!port.ok()) return port.status();
    std::unique_ptr<NatsServerProcess> server(
        new NatsServerProcess(store_dir, *port, startup_deadline));
    last = server->Spawn();
    if (last.ok()) return server;
  }
  return last;
}

NatsServerProcess::NatsServerProcess(std::string store_dir, int port,
                                     absl::Duration startup_deadline)
    : store_dir_(std::move(store_dir)), port_(port), startup_deadline_(startup_deadline) {}

NatsServerProcess::~NatsServerProcess() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
}

std::string NatsServerProcess::url() const { return internal::Cat("nats://127.0.0.1:", port_); }

std::string NatsServerProcess::log_path() const { return store_dir_ + "/nats-server.log"; }

absl::Status NatsServerProcess::Spawn() {
  const std::string binary = ServerBinary();
  const std::string port = internal::Cat(port_);
  const std::string log = log_path();
  std::vector<std::string> args = {binary, "-js", "-a", "127.0.0.1", "-p", port, "-sd", store_dir_};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t parent = getpid();

  pid_t pid = fork();
  if (pid < 0) return absl::InternalError(internal::Cat("fork: ", std::strerror(errno)));
  if (pid == 0) {
    // Child: only async-signal-safe calls until exec.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, STDOUT_FILENO);
      dup2(fd, STDERR_FILENO);
      close(fd);
    }
    execv(argv[0], argv.data());
    _exit(127);
  }
  pid_ = pid;

  const absl::Time deadline = absl::Now() + startup_deadline_;
  while (absl::Now() < deadline) {
    int wstatus = 0;
    pid_t r = waitpid(pid_, &wstatus, WNOHANG);
    if (r == pid_) {
      pid_ = -1;
      return absl::UnavailableError(internal::Cat(binary, " exited during startup on port ", port_,
                                                  "; log:\n", LogTail(log)));
    }
    if (AcceptsConnections(port_)) return absl::OkStatus();
    absl::SleepFor(absl::Milliseconds(20));  // poll interval
  }
  kill(pid_, SIGKILL);
  waitpid(pid_, nullptr, 0);
  pid_ = -1;
  return absl::UnavailableError(internal::Cat(binary, " did not accept connections on port ", port_,
                                              " within ", absl::FormatDuration(startup_deadline_),
                                              "; log:\n", LogTail(log)));
}

absl::Status NatsServerProcess::WaitStopped(absl::Duration deadline_in) {
  const absl::Time deadline = absl::Now() + deadline_in;
  while (true) {
    int wstatus = 0;
    pid_t r = waitpid(pid_, &wstatus, WNOHANG);
    if (r == pid_ || (r < 0 && errno == ECHILD)) {
      pid_ = -1;
      return absl::OkStatus();
    }
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(internal::Cat("nats-server pid ", pid_, " still running"));
    }
    absl::SleepFor(absl::Milliseconds(10));  // poll interval
  }
}

absl::Status NatsServerProcess::Stop() {
  if (pid_ <= 0) return absl::OkStatus();
  kill(pid_, SIGTERM);
  if (WaitStopped(absl::Seconds(10)).ok()) return absl::OkStatus();
  return Kill();
}

absl::Status NatsServerProcess::Kill() {
  if (pid_ <= 0) return absl::OkStatus();
  kill(pid_, SIGKILL);
  return WaitStopped(absl::Seconds(10));
}

absl::Status NatsServerProcess::StartAgain() {
  if (pid_ > 0) return absl::FailedPreconditionError("nats-server is already running");
  // The old process may have left the port in TIME_WAIT for a moment; retry briefly.
  absl::Status last;
  for (int attempt = 0; attempt < 3; ++attempt) {
    last = Spawn();
    if (last.ok()) return last;
  }
  return last;
}

absl::Status NatsServerProcess::Restart() {
  if (absl::Status s = Stop(); !s.ok()) return s;
  return StartAgain();
}

TempDir::TempDir() {
  const char* base = std::getenv("TEST_TMPDIR");
  std::string tmpl =
      internal::Cat(base != nullptr && *base != '\0' ? base : "/tmp", "/driftless-bus-XXXXXX");
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (mkdtemp(buf.data()) != nullptr) path_ = buf.data();
}

TempDir::~TempDir() {
  if (path_.empty()) return;
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

}  // namespace driftless::bus::testing
