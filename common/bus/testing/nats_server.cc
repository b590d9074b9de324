#include "common/bus/testing/nats_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>
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
  if (monitor_port_ > 0) {
    args.push_back("-m");
    args.push_back(internal::Cat(monitor_port_));
  }
  args.insert(args.end(), extra_args_.begin(), extra_args_.end());
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

absl::StatusOr<std::string> HttpGetLocal(int port, const std::string& path) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError(internal::Cat("socket: ", std::strerror(errno)));
  timeval tv{2, 0};  // a monitoring answer is immediate
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    int err = errno;
    close(fd);
    return absl::UnavailableError(
        internal::Cat("connect 127.0.0.1:", port, ": ", std::strerror(err)));
  }
  const std::string request = internal::Cat("GET ", path, " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
  if (send(fd, request.data(), request.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(request.size())) {
    close(fd);
    return absl::UnavailableError(internal::Cat("send to 127.0.0.1:", port, " failed"));
  }
  std::string response;
  char buf[4096];
  while (true) {
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) break;
    response.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  const size_t body = response.find("\r\n\r\n");
  if (body == std::string::npos) {
    return absl::UnavailableError(internal::Cat("GET 127.0.0.1:", port, path, ": no response"));
  }
  return response.substr(body + 4);
}

absl::StatusOr<std::unique_ptr<NatsClusterProcess>> NatsClusterProcess::Start(
    const std::string& base_dir, int size, absl::Duration startup_deadline) {
  if (size < 1) return absl::InvalidArgumentError("cluster size must be at least 1");
  // Picked ports can be taken before the servers bind them: start over a few times.
  absl::Status last;
  for (int attempt = 0; attempt < 3; ++attempt) {
    std::vector<int> client, route, monitor;
    for (int i = 0; i < size; ++i) {
      for (std::vector<int>* ports : {&client, &route, &monitor}) {
        absl::StatusOr<int> port = PickFreePort();
        if (!port.ok()) return port.status();
        ports->push_back(*port);
      }
    }
    std::unique_ptr<NatsClusterProcess> cluster(new NatsClusterProcess());
    last = absl::OkStatus();
    for (int i = 0; i < size && last.ok(); ++i) {
      const std::string dir = internal::Cat(base_dir, "/n", i);
      std::error_code ec;
      std::filesystem::create_directories(dir, ec);
      if (ec) return absl::InternalError(internal::Cat("mkdir ", dir, ": ", ec.message()));
      std::unique_ptr<NatsServerProcess> node(
          new NatsServerProcess(dir, client[i], startup_deadline));
      node->monitor_port_ = monitor[i];
      std::string routes;
      for (int j = 0; j < size; ++j) {
        if (j == i) continue;
        internal::Append(routes, routes.empty() ? "" : ",", "nats://127.0.0.1:", route[j]);
      }
      node->extra_args_ = {"--server_name",  internal::Cat("n", i),
                           "--cluster_name", "c",
                           "--cluster",      internal::Cat("nats://127.0.0.1:", route[i])};
      if (!routes.empty()) {
        node->extra_args_.push_back("--routes");
        node->extra_args_.push_back(routes);
      }
      last = node->Spawn();
      cluster->nodes_.push_back(std::move(node));
    }
    if (last.ok()) last = cluster->WaitForMetaLeader(startup_deadline);
    if (last.ok()) return cluster;
  }
  return last;
}

std::string NatsClusterProcess::urls() const {
  std::string out;
  for (const auto& node : nodes_) internal::Append(out, out.empty() ? "" : ",", node->url());
  return out;
}

int NatsClusterProcess::NodeWithPort(int port) const {
  for (size_t i = 0; i < nodes_.size(); ++i) {
    if (nodes_[i]->port() == port) return static_cast<int>(i);
  }
  return -1;
}

absl::Status NatsClusterProcess::WaitForMetaLeader(absl::Duration deadline_in) {
  const absl::Time deadline = absl::Now() + deadline_in;
  std::string last;
  while (true) {
    bool all = true;
    for (const auto& node : nodes_) {
      if (!node->running()) continue;
      absl::StatusOr<std::string> jsz = HttpGetLocal(node->monitor_port(), "/jsz");
      // {"meta_cluster": {"name": "c", "leader": "n1", ...}}: no "leader" while electing.
      if (!jsz.ok() || jsz->find("\"leader\"") == std::string::npos) {
        all = false;
        last = jsz.ok() ? *jsz : std::string(jsz.status().message());
        break;
      }
    }
    if (all) return absl::OkStatus();
    if (absl::Now() >= deadline) {
      std::string logs;
      for (const auto& node : nodes_) {
        internal::Append(logs, "\n--- ", node->log_path(), ":\n", LogTail(node->log_path()));
      }
      return absl::UnavailableError(internal::Cat("no JetStream meta leader within ",
                                                  absl::FormatDuration(deadline_in),
                                                  "; last /jsz: ", last, logs));
    }
    absl::SleepFor(absl::Milliseconds(100));  // poll interval
  }
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
