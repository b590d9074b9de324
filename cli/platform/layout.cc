#include "cli/platform/layout.h"

#include <algorithm>

#include "common/strings/str.h"

namespace driftless::cli::platform {

std::string ResolveStateDir(std::string_view flag, const char* env, std::string_view cwd) {
  std::string dir(flag);
  if (dir.empty() && env != nullptr) dir = env;
  if (dir.empty()) dir = ".driftless";
  if (dir.front() != '/') dir = strings::Cat(cwd, "/", dir);
  // Normalise "/x/./.driftless" and trailing slashes, enough for messages and equality.
  std::vector<std::string> parts;
  for (std::string_view p : strings::Split(dir, '/', /*skip_empty=*/true)) {
    if (p == ".") continue;
    if (p == ".." && !parts.empty()) {
      parts.pop_back();
      continue;
    }
    parts.emplace_back(p);
  }
  return "/" + strings::Join(parts, "/");
}

std::vector<std::string> BinaryCandidates(std::string_view name, std::string_view build_subdir,
                                          const char* bin_dir_env, std::string_view exe_dir,
                                          const char* path_env) {
  std::vector<std::string> out;
  if (bin_dir_env != nullptr && *bin_dir_env != '\0')
    out.push_back(strings::Cat(bin_dir_env, "/", name));
  if (!exe_dir.empty()) {
    out.push_back(strings::Cat(exe_dir, "/", name));
    if (!build_subdir.empty())
      out.push_back(strings::Cat(exe_dir, "/../", build_subdir, "/", name));
  }
  if (path_env != nullptr) {
    for (std::string_view p : strings::Split(path_env, ':', /*skip_empty=*/true)) {
      std::string candidate = strings::Cat(p, "/", name);
      if (std::find(out.begin(), out.end(), candidate) == out.end()) out.push_back(candidate);
    }
  }
  return out;
}

absl::StatusOr<std::string> FindBinary(
    std::string_view name, const std::vector<std::string>& candidates,
    const std::function<bool(const std::string&)>& is_executable) {
  for (const std::string& c : candidates) {
    if (is_executable(c)) return c;
  }
  return absl::NotFoundError(strings::Cat(
      "cannot find ", name,
      "; searched: ", candidates.empty() ? "(nowhere)" : strings::Join(candidates, ", "),
      " (set DRIFTLESS_BIN_DIR to the directory holding it)"));
}

std::vector<std::string> NatsArgs(const std::string& binary, const Layout& layout,
                                  const PlatformPorts& ports) {
  return {binary, "-js",
          "-sd",  layout.NatsDir(),
          "-a",   "127.0.0.1",
          "-p",   strings::Cat(ports.nats_port),
          "-m",   strings::Cat(ports.nats_monitor_port)};
}

std::vector<std::string> EmulatorArgs(const std::string& binary, const Layout& layout, int port,
                                      const std::vector<std::string>& extra) {
  std::vector<std::string> args = {binary,
                                   "--port",
                                   strings::Cat(port),
                                   "--write-kubeconfig",
                                   layout.Kubeconfig(),
                                   "--ready-file",
                                   layout.ReadyFile("emulator"),
                                   "--state-file",
                                   layout.EmulatorState()};
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

std::vector<std::string> ServiceArgs(const std::string& binary, std::string_view service,
                                     const Layout& layout, const ServiceArgsInput& input) {
  std::vector<std::string> args = {binary,
                                   "--nats-url",
                                   input.nats_url,
                                   "--http-port",
                                   strings::Cat(input.http_port),
                                   "--ready-file",
                                   layout.ReadyFile(service),
                                   "--state-dir",
                                   layout.ServiceStateDir(service),
                                   "--log-format",
                                   "json"};
  if (input.nats_replicas != 1) {
    args.insert(args.end(), {"--nats-replicas", strings::Cat(input.nats_replicas)});
  }
  if (service == "planner" || service == "applier") {
    args.insert(args.end(), {"--kubeconfig", input.kubeconfig});
  }
  if (service == "renderer") {
    if (!input.helm.empty()) args.insert(args.end(), {"--helm", input.helm});
    if (!input.kubectl.empty()) args.insert(args.end(), {"--kubectl", input.kubectl});
  }
  if (service == "api") args.insert(args.end(), {"--grpc-port", strings::Cat(input.grpc_port)});
  if (service == "notifier") {
    for (const std::string& url : input.webhook_urls)
      args.insert(args.end(), {"--webhook-url", url});
  }
  return args;
}

int PortOf(std::string_view url) {
  size_t scheme = url.find("://");
  std::string_view rest = scheme == std::string_view::npos ? url : url.substr(scheme + 3);
  rest = rest.substr(0, rest.find('/'));
  size_t colon = rest.rfind(':');
  if (colon == std::string_view::npos) return 0;
  int port = 0;
  for (char c : rest.substr(colon + 1)) {
    if (c < '0' || c > '9') return 0;
    port = port * 10 + (c - '0');
    if (port > 65535) return 0;
  }
  return port;
}

absl::StatusOr<ReadyInfo> ParseServiceReadyFile(std::string_view text) {
  nlohmann::json doc = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!doc.is_object() || !doc.contains("http") || !doc["http"].is_string()) {
    return absl::InvalidArgumentError("ready file is not a JSON object with \"http\"");
  }
  ReadyInfo info;
  info.http = doc["http"].get<std::string>();
  if (doc.contains("grpc") && doc["grpc"].is_string()) info.grpc = doc["grpc"].get<std::string>();
  if (doc.contains("webhooks") && doc["webhooks"].is_string()) {
    info.webhooks = doc["webhooks"].get<std::string>();
  }
  return info;
}

namespace {

nlohmann::json ProcessJson(const ProcessRecord& p) {
  return {{"pid", p.pid}, {"startTime", p.start_time}};
}

bool ParseProcess(const nlohmann::json& j, ProcessRecord* out) {
  if (!j.is_object() || !j.contains("pid") || !j["pid"].is_number_integer()) return false;
  out->pid = j["pid"].get<pid_t>();
  if (j.contains("startTime") && j["startTime"].is_number_unsigned()) {
    out->start_time = j["startTime"].get<uint64_t>();
  }
  return true;
}

}  // namespace

std::string EncodePlatformRecord(const PlatformRecord& record) {
  nlohmann::json children = nlohmann::json::object();
  for (const auto& [name, p] : record.children) children[name] = ProcessJson(p);
  nlohmann::json doc = {{"stateDir", record.state_dir},
                        {"supervisor", ProcessJson(record.supervisor)},
                        {"children", children}};
  return doc.dump(2) + "\n";
}

absl::StatusOr<PlatformRecord> DecodePlatformRecord(std::string_view text) {
  nlohmann::json doc = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  PlatformRecord record;
  if (!doc.is_object() || !doc.contains("supervisor") ||
      !ParseProcess(doc["supervisor"], &record.supervisor)) {
    return absl::InvalidArgumentError("platform.json: no \"supervisor\" with a pid");
  }
  if (doc.contains("stateDir") && doc["stateDir"].is_string()) {
    record.state_dir = doc["stateDir"].get<std::string>();
  }
  if (doc.contains("children") && doc["children"].is_object()) {
    for (const auto& [name, j] : doc["children"].items()) {
      ProcessRecord p;
      if (!ParseProcess(j, &p)) {
        return absl::InvalidArgumentError(
            strings::Cat("platform.json: child ", name, " has no pid"));
      }
      record.children[name] = p;
    }
  }
  return record;
}

nlohmann::json EndpointsJson(const Endpoints& e, const Layout& layout) {
  nlohmann::json doc = nlohmann::json::object();
  auto api = e.services.find("api");
  doc["api"] = api == e.services.end() ? "" : api->second.grpc;
  doc["webhooks"] = api == e.services.end() ? "" : api->second.webhooks;
  doc["nats"] = e.nats_url;
  doc["natsMonitor"] = e.nats_monitor;
  doc["kubeconfig"] = e.kubeconfig;
  if (!e.emulator.empty()) doc["emulator"] = e.emulator;
  doc["stateDir"] = e.state_dir;
  nlohmann::json services = nlohmann::json::object();
  for (const auto& [name, info] : e.services) {
    nlohmann::json s = {{"health", info.http + "/healthz"},
                        {"ready", info.http + "/readyz"},
                        {"metrics", info.http + "/metrics"},
                        {"log", layout.Log(name)}};
    auto pid = e.pids.find(name);
    s["pid"] = pid == e.pids.end() ? 0 : pid->second.pid;
    services[name] = s;
  }
  doc["services"] = services;
  return doc;
}

absl::StatusOr<std::string> WithRepoUrl(std::string_view application_yaml,
                                        std::string_view repo_url) {
  std::vector<std::string> lines;
  for (std::string_view l : strings::Split(application_yaml, '\n')) lines.emplace_back(l);
  bool replaced = false;
  for (std::string& line : lines) {
    size_t at = line.find("repoURL:");
    if (at == std::string::npos || line.find_first_not_of(' ') != at) continue;
    line = strings::Cat(line.substr(0, at), "repoURL: ", repo_url);
    replaced = true;
  }
  if (!replaced) return absl::InvalidArgumentError("the example Application has no repoURL line");
  return strings::Join(lines, "\n");
}

}  // namespace driftless::cli::platform
