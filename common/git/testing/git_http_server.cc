#include "common/git/testing/git_http_server.h"

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <string_view>
#include <vector>

#include <httplib.h>

extern char** environ;

namespace driftless::git::testing {
namespace {

std::string Base64(std::string_view in) {
  static constexpr char kTable[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8) | uint8_t(in[i + 2]);
    out += kTable[v >> 18];
    out += kTable[(v >> 12) & 63];
    out += kTable[(v >> 6) & 63];
    out += kTable[v & 63];
  }
  if (i + 1 == in.size()) {
    uint32_t v = uint8_t(in[i]) << 16;
    out += kTable[v >> 18];
    out += kTable[(v >> 12) & 63];
    out += "==";
  } else if (i + 2 == in.size()) {
    uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8);
    out += kTable[v >> 18];
    out += kTable[(v >> 12) & 63];
    out += kTable[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

// Runs `git http-backend` with the CGI environment `env`, feeding `body`; returns its output.
bool RunCgi(const std::vector<std::string>& env, const std::string& body, std::string& out) {
  int in_pipe[2], out_pipe[2];
  if (pipe2(in_pipe, O_CLOEXEC) < 0) return false;
  if (pipe2(out_pipe, O_CLOEXEC) < 0) {
    close(in_pipe[0]);
    close(in_pipe[1]);
    return false;
  }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in_pipe[0], 0);
  posix_spawn_file_actions_adddup2(&fa, out_pipe[1], 1);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);  // quiet test output
  std::vector<std::string> all_env;
  for (char** e = environ; *e; ++e) all_env.emplace_back(*e);
  all_env.insert(all_env.end(), env.begin(), env.end());
  std::vector<char*> envp;
  for (std::string& e : all_env) envp.push_back(e.data());
  envp.push_back(nullptr);
  char arg0[] = "git", arg1[] = "http-backend";
  char* argv[] = {arg0, arg1, nullptr};
  pid_t pid;
  int rc = posix_spawnp(&pid, "git", &fa, nullptr, argv, envp.data());
  posix_spawn_file_actions_destroy(&fa);
  close(in_pipe[0]);
  close(out_pipe[1]);
  if (rc != 0) {
    close(in_pipe[1]);
    close(out_pipe[0]);
    return false;
  }
  // Write the body and read the output together so neither side blocks on a full pipe.
  size_t written = 0;
  if (body.empty()) {
    close(in_pipe[1]);
    in_pipe[1] = -1;
  }
  char buf[65536];
  while (true) {
    pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {in_pipe[1], POLLOUT, 0}};
    int nfds = in_pipe[1] >= 0 ? 2 : 1;
    if (poll(fds, nfds, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (nfds == 2 && (fds[1].revents & (POLLOUT | POLLERR | POLLHUP))) {
      ssize_t n = write(in_pipe[1], body.data() + written, body.size() - written);
      if (n > 0) written += static_cast<size_t>(n);
      if (n < 0 || written == body.size()) {
        close(in_pipe[1]);
        in_pipe[1] = -1;
      }
    }
    if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t n = read(out_pipe[0], buf, sizeof(buf));
      if (n <= 0) break;
      out.append(buf, static_cast<size_t>(n));
    }
  }
  if (in_pipe[1] >= 0) close(in_pipe[1]);
  close(out_pipe[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  return true;
}

void Serve(const GitHttpServer::Options& o, std::atomic<int>& unauthorized,
           const httplib::Request& req, httplib::Response& res) {
  std::string auth = req.get_header_value("Authorization");
  bool ok = true;
  if (!o.username.empty() && auth != "Basic " + Base64(o.username + ":" + o.password)) ok = false;
  if (!o.bearer_token.empty() && auth != "Bearer " + o.bearer_token) ok = false;
  if (!ok) {
    ++unauthorized;
    res.status = 401;
    if (o.bearer_token.empty())
      res.set_header("WWW-Authenticate", "Basic realm=\"git\"");
    else
      res.set_header("WWW-Authenticate", "Bearer realm=\"git\"");
    res.set_content("unauthorized", "text/plain");
    return;
  }
  std::string query;
  size_t q = req.target.find('?');
  if (q != std::string::npos) query = req.target.substr(q + 1);
  std::vector<std::string> env = {
      "GIT_PROJECT_ROOT=" + o.project_root,
      "GIT_HTTP_EXPORT_ALL=1",
      "REQUEST_METHOD=" + req.method,
      "PATH_INFO=" + req.path,
      "QUERY_STRING=" + query,
      "CONTENT_TYPE=" + req.get_header_value("Content-Type"),
      "CONTENT_LENGTH=" + std::to_string(req.body.size()),
      "REMOTE_ADDR=127.0.0.1",
  };
  if (req.has_header("Git-Protocol"))
    env.push_back("GIT_PROTOCOL=" + req.get_header_value("Git-Protocol"));
  std::string out;
  if (!RunCgi(env, req.body, out)) {
    res.status = 500;
    return;
  }
  size_t sep = out.find("\r\n\r\n");
  size_t skip = 4;
  if (sep == std::string::npos) {
    sep = out.find("\n\n");
    skip = 2;
  }
  if (sep == std::string::npos) {
    res.status = 500;
    return;
  }
  std::string headers = out.substr(0, sep);
  std::string content_type = "application/octet-stream";
  res.status = 200;
  size_t start = 0;
  while (start < headers.size()) {
    size_t end = headers.find('\n', start);
    if (end == std::string::npos) end = headers.size();
    std::string line = headers.substr(start, end - start);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    start = end + 1;
    size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string name = line.substr(0, colon);
    std::string value = line.substr(colon + 1);
    while (!value.empty() && value[0] == ' ') value.erase(0, 1);
    if (name == "Status") {
      res.status = std::atoi(value.c_str());
    } else if (name == "Content-Type") {
      content_type = value;
    } else {
      res.set_header(name.c_str(), value);
    }
  }
  res.set_content(out.substr(sep + skip), content_type.c_str());
}

}  // namespace

absl::StatusOr<std::unique_ptr<GitHttpServer>> GitHttpServer::Start(Options options) {
  std::unique_ptr<GitHttpServer> s(new GitHttpServer());
  s->options_ = std::move(options);
  bool tls = !s->options_.cert_file.empty() && !s->options_.key_file.empty();
  if (tls) {
    s->server_ = std::make_unique<httplib::SSLServer>(s->options_.cert_file.c_str(),
                                                      s->options_.key_file.c_str());
  } else {
    s->server_ = std::make_unique<httplib::Server>();
  }
  if (!s->server_->is_valid()) return absl::InternalError("cannot create the HTTP(S) server");
  GitHttpServer* self = s.get();
  auto handler = [self](const httplib::Request& req, httplib::Response& res) {
    Serve(self->options_, self->unauthorized_, req, res);
  };
  s->server_->Get(".*", handler);
  s->server_->Post(".*", handler);
  s->port_ = s->server_->bind_to_any_port("127.0.0.1");
  if (s->port_ <= 0) return absl::UnavailableError("cannot bind 127.0.0.1");
  s->base_url_ = (tls ? "https://localhost:" : "http://127.0.0.1:") + std::to_string(s->port_);
  s->thread_ = std::thread([self] { self->server_->listen_after_bind(); });
  // stop() is a no-op until the accept loop runs, so wait for it before handing out the server.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!s->server_->is_running() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::yield();
  }
  if (!s->server_->is_running()) return absl::DeadlineExceededError("HTTP server did not start");
  return s;
}

GitHttpServer::~GitHttpServer() {
  if (server_) server_->stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace driftless::git::testing
