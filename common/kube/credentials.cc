#include "common/kube/credentials.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <nlohmann/json.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/kube/internal/strings.h"

extern char** environ;

namespace driftless::kube {
namespace {

using nlohmann::json;

std::string Str(const json& j, const char* key) {
  if (!j.is_object()) return "";
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

std::string ExecInfo(const ExecConfig& exec, const RestConfig& cluster) {
  json spec = {{"interactive", false}};
  if (exec.provide_cluster_info) {
    json c = {{"server", cluster.server}};
    if (!cluster.tls_server_name.empty()) c["tls-server-name"] = cluster.tls_server_name;
    if (cluster.insecure_skip_tls_verify) c["insecure-skip-tls-verify"] = true;
    if (!cluster.ca_data.empty())
      c["certificate-authority-data"] = absl::Base64Escape(cluster.ca_data);
    spec["cluster"] = c;
  }
  return json{{"apiVersion", exec.api_version}, {"kind", "ExecCredential"}, {"spec", spec}}.dump();
}

struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) close(fd);
  }
};

}  // namespace

absl::StatusOr<ExecCredentialStatus> ParseExecCredential(std::string_view output,
                                                         std::string_view api_version) {
  json j = json::parse(output, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || Str(j, "kind") != "ExecCredential") {
    return absl::InvalidArgumentError("exec plugin: output is not an ExecCredential JSON object");
  }
  if (Str(j, "apiVersion") != api_version) {
    return absl::InvalidArgumentError(absl::StrCat("exec plugin: output apiVersion \"",
                                                   Str(j, "apiVersion"), "\", want \"",
                                                   internal::Av(api_version), "\""));
  }
  auto st = j.find("status");
  if (st == j.end() || !st->is_object()) {
    return absl::InvalidArgumentError("exec plugin: ExecCredential has no status");
  }
  ExecCredentialStatus out;
  out.token = Str(*st, "token");
  out.client_certificate_data = Str(*st, "clientCertificateData");
  out.client_key_data = Str(*st, "clientKeyData");
  if (out.token.empty() && (out.client_certificate_data.empty() || out.client_key_data.empty())) {
    return absl::InvalidArgumentError(
        "exec plugin: status has neither a token nor clientCertificateData + clientKeyData");
  }
  std::string exp = Str(*st, "expirationTimestamp");
  if (!exp.empty()) {
    absl::Time t;
    std::string err;
    if (!absl::ParseTime(absl::RFC3339_full, exp, &t, &err)) {
      return absl::InvalidArgumentError(
          absl::StrCat("exec plugin: bad expirationTimestamp \"", exp, "\": ", err));
    }
    out.expiration = t;
  }
  return out;
}

absl::StatusOr<ExecCredentialStatus> RunExecPlugin(const ExecConfig& exec,
                                                   const RestConfig& cluster,
                                                   absl::Duration timeout) {
  std::vector<std::string> env_strings;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string_view kv(*e);
    bool overridden = kv.starts_with("KUBERNETES_EXEC_INFO=");
    for (const auto& [k, v] : exec.env) overridden |= kv.starts_with(k + "=");
    if (!overridden) env_strings.emplace_back(kv);
  }
  for (const auto& [k, v] : exec.env) env_strings.push_back(k + "=" + v);
  env_strings.push_back("KUBERNETES_EXEC_INFO=" + ExecInfo(exec, cluster));
  std::vector<char*> envp;
  for (std::string& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> arg_strings = {exec.command};
  arg_strings.insert(arg_strings.end(), exec.args.begin(), exec.args.end());
  std::vector<char*> argv;
  for (std::string& s : arg_strings) argv.push_back(s.data());
  argv.push_back(nullptr);

  int out_pipe[2], err_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0) return absl::InternalError("exec plugin: pipe failed");
  Fd out_r{out_pipe[0]}, out_w{out_pipe[1]};
  if (pipe2(err_pipe, O_CLOEXEC) != 0) return absl::InternalError("exec plugin: pipe failed");
  Fd err_r{err_pipe[0]}, err_w{err_pipe[1]};

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out_w.fd, 1);
  posix_spawn_file_actions_adddup2(&actions, err_w.fd, 2);
  pid_t pid = -1;
  int rc = posix_spawnp(&pid, exec.command.c_str(), &actions, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  std::string hint = exec.install_hint.empty() ? "" : absl::StrCat(" (", exec.install_hint, ")");
  if (rc != 0) {
    if (rc == ENOENT) {
      return absl::NotFoundError(absl::StrCat("exec plugin ", exec.command, ": not found", hint));
    }
    return absl::InternalError(absl::StrCat("exec plugin ", exec.command, ": ", std::strerror(rc)));
  }
  close(out_w.fd);
  out_w.fd = -1;
  close(err_w.fd);
  err_w.fd = -1;

  std::string out, err;
  auto deadline = std::chrono::steady_clock::now() + absl::ToChronoMilliseconds(timeout);
  bool out_open = true, err_open = true, timed_out = false;
  while (out_open || err_open) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      break;
    }
    pollfd fds[2] = {{out_open ? out_r.fd : -1, POLLIN, 0}, {err_open ? err_r.fd : -1, POLLIN, 0}};
    int n = poll(fds, 2, static_cast<int>(left.count()));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    char buf[4096];
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      ssize_t r = read(fds[i].fd, buf, sizeof(buf));
      if (r > 0) {
        (i == 0 ? out : err).append(buf, static_cast<size_t>(r));
      } else if (r == 0 || errno != EINTR) {
        (i == 0 ? out_open : err_open) = false;
      }
    }
  }
  if (timed_out) kill(pid, SIGKILL);
  int wstatus = 0;
  while (waitpid(pid, &wstatus, 0) < 0 && errno == EINTR) {
  }
  if (timed_out) {
    return absl::DeadlineExceededError(absl::StrCat(
        "exec plugin ", exec.command, ": timed out after ", absl::FormatDuration(timeout)));
  }
  if (!WIFEXITED(wstatus) || WEXITSTATUS(wstatus) != 0) {
    std::string first_line(absl::StripAsciiWhitespace(err.substr(0, err.find('\n'))));
    return absl::UnauthenticatedError(
        absl::StrCat("exec plugin ", exec.command, ": ",
                     WIFEXITED(wstatus) ? absl::StrCat("exit code ", WEXITSTATUS(wstatus))
                                        : absl::StrCat("killed by signal ", WTERMSIG(wstatus)),
                     first_line.empty() ? "" : ": ", first_line, hint));
  }
  absl::StatusOr<ExecCredentialStatus> parsed = ParseExecCredential(out, exec.api_version);
  if (!parsed.ok()) return Annotate(parsed.status(), exec.command);
  return parsed;
}

CredentialSource::CredentialSource(RestConfig config, std::function<absl::Time()> now)
    : config_(std::move(config)), now_(std::move(now)) {}

absl::StatusOr<Credentials> CredentialSource::Get() {
  std::lock_guard<std::mutex> lock(mu_);
  Credentials c{.bearer_token = config_.bearer_token,
                .client_cert_data = config_.client_cert_data,
                .client_key_data = config_.client_key_data,
                .username = config_.username,
                .password = config_.password};
  if (!config_.bearer_token_file.empty()) {
    struct stat st;
    if (stat(config_.bearer_token_file.c_str(), &st) != 0) {
      return absl::UnauthenticatedError(
          absl::StrCat("token file ", config_.bearer_token_file, ": ", std::strerror(errno)));
    }
    long long mtime_ns =
        static_cast<long long>(st.st_mtim.tv_sec) * 1000000000LL + st.st_mtim.tv_nsec;
    if (st.st_ino != file_ino_ || st.st_size != file_size_ || mtime_ns != file_mtime_ns_ ||
        file_token_.empty()) {
      DL_ASSIGN_OR_RETURN(std::string token, ReadFileToString(config_.bearer_token_file));
      file_token_ = std::string(absl::StripAsciiWhitespace(token));
      file_ino_ = st.st_ino;
      file_size_ = st.st_size;
      file_mtime_ns_ = mtime_ns;
    }
    c.bearer_token = file_token_;
  }
  if (config_.exec) {
    if (exec_valid_ && exec_status_.expiration && now_() >= *exec_status_.expiration) {
      exec_valid_ = false;
    }
    if (!exec_valid_) {
      ++exec_runs_;
      DL_ASSIGN_OR_RETURN(exec_status_, RunExecPlugin(*config_.exec, config_));
      exec_valid_ = true;
    }
    if (!exec_status_.token.empty()) c.bearer_token = exec_status_.token;
    if (!exec_status_.client_certificate_data.empty()) {
      c.client_cert_data = exec_status_.client_certificate_data;
      c.client_key_data = exec_status_.client_key_data;
    }
  }
  return c;
}

bool CredentialSource::Invalidate() {
  std::lock_guard<std::mutex> lock(mu_);
  exec_valid_ = false;
  file_token_.clear();
  return config_.exec.has_value() || !config_.bearer_token_file.empty();
}

int CredentialSource::exec_runs() const {
  std::lock_guard<std::mutex> lock(mu_);
  return exec_runs_;
}

}  // namespace driftless::kube
