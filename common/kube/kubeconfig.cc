#include "common/kube/kubeconfig.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/kube/internal/strings.h"
#include "common/manifest/manifest.h"

namespace driftless::kube {
namespace {

using manifest::Json;

constexpr char kServiceAccountDir[] = "var/run/secrets/kubernetes.io/serviceaccount";

std::string Str(const Json& j, const char* key) {
  if (!j.is_object()) return "";
  auto it = j.find(key);
  if (it == j.end()) return "";
  if (it->is_string()) return it->get<std::string>();
  return "";
}

bool Bool(const Json& j, const char* key) {
  if (!j.is_object()) return false;
  auto it = j.find(key);
  return it != j.end() && it->is_boolean() && it->get<bool>();
}

std::string Resolve(std::string_view base_dir, const std::string& path) {
  if (path.empty() || path[0] == '/' || base_dir.empty()) return path;
  return absl::StrCat(internal::Av(base_dir), base_dir.back() == '/' ? "" : "/", path);
}

// Finds `name` in a list of {name: ..., <field>: {...}} entries.
absl::StatusOr<Json> Named(const Json& config, const char* list, const char* field,
                           const std::string& name) {
  auto it = config.find(list);
  if (it != config.end() && it->is_array()) {
    for (const Json& entry : *it) {
      if (Str(entry, "name") == name) {
        auto f = entry.find(field);
        if (f == entry.end() || f->is_null()) return Json::object();
        if (!f->is_object()) {
          return absl::InvalidArgumentError(absl::StrCat("kubeconfig: ", list, " entry \"", name,
                                                         "\": ", field, " is not a mapping"));
        }
        return *f;
      }
    }
  }
  return absl::InvalidArgumentError(
      absl::StrCat("kubeconfig: ", field, " \"", name, "\" not found in ", list));
}

// Inline base64 data wins over a file path.
absl::StatusOr<std::string> DataOrFile(const Json& section, const char* data_key,
                                       const char* file_key, std::string_view base_dir,
                                       std::string_view what) {
  std::string data = Str(section, data_key);
  if (!data.empty()) {
    std::string decoded;
    if (!absl::Base64Unescape(data, &decoded)) {
      return absl::InvalidArgumentError(
          absl::StrCat("kubeconfig: ", internal::Av(what), ": ", data_key, " is not valid base64"));
    }
    return decoded;
  }
  std::string file = Str(section, file_key);
  if (file.empty()) return std::string();
  absl::StatusOr<std::string> content = ReadFileToString(Resolve(base_dir, file));
  if (!content.ok())
    return Annotate(content.status(),
                    absl::StrCat("kubeconfig: ", internal::Av(what), ": ", file_key));
  return content;
}

}  // namespace

absl::StatusOr<std::string> ReadFileToString(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    int err = errno;
    if (err == ENOENT) return absl::NotFoundError(absl::StrCat(path, ": no such file"));
    if (err == EACCES)
      return absl::PermissionDeniedError(absl::StrCat(path, ": permission denied"));
    return absl::InternalError(absl::StrCat(path, ": ", std::strerror(err)));
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string RestConfig::ToString() const {
  auto secret = [](const std::string& s) { return s.empty() ? "" : "<redacted>"; };
  std::string out = absl::StrCat("server=", server);
  if (!context.empty()) absl::StrAppend(&out, " context=", context);
  absl::StrAppend(&out, " namespace=", namespace_);
  if (!tls_server_name.empty()) absl::StrAppend(&out, " tls-server-name=", tls_server_name);
  if (insecure_skip_tls_verify) absl::StrAppend(&out, " insecure-skip-tls-verify=true");
  absl::StrAppend(&out, " ca=", ca_data.empty() ? "system" : "set");
  if (!client_cert_data.empty()) absl::StrAppend(&out, " client-cert=set");
  if (!client_key_data.empty()) absl::StrAppend(&out, " client-key=", secret(client_key_data));
  if (!bearer_token.empty()) absl::StrAppend(&out, " token=", secret(bearer_token));
  if (!bearer_token_file.empty()) absl::StrAppend(&out, " token-file=", bearer_token_file);
  if (!username.empty())
    absl::StrAppend(&out, " username=", username, " password=", secret(password));
  if (exec) absl::StrAppend(&out, " exec=", exec->command, " (", exec->api_version, ")");
  return out;
}

absl::StatusOr<RestConfig> ParseKubeconfig(std::string_view yaml, std::string_view base_dir,
                                           std::string_view context) {
  DL_ASSIGN_OR_RETURN(Json config, manifest::ParseYaml(yaml, "kubeconfig"));
  if (!config.is_object()) return absl::InvalidArgumentError("kubeconfig: not a mapping");
  std::string context_name =
      context.empty() ? Str(config, "current-context") : std::string(context);
  if (context_name.empty()) {
    return absl::InvalidArgumentError("kubeconfig: no context given and current-context is unset");
  }
  DL_ASSIGN_OR_RETURN(Json ctx, Named(config, "contexts", "context", context_name));
  std::string cluster_name = Str(ctx, "cluster");
  std::string user_name = Str(ctx, "user");
  if (cluster_name.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("kubeconfig: context \"", context_name, "\" names no cluster"));
  }
  DL_ASSIGN_OR_RETURN(Json cluster, Named(config, "clusters", "cluster", cluster_name));
  Json user = Json::object();
  if (!user_name.empty()) {
    DL_ASSIGN_OR_RETURN(user, Named(config, "users", "user", user_name));
  }

  RestConfig rc;
  rc.context = context_name;
  rc.namespace_ = Str(ctx, "namespace");
  if (rc.namespace_.empty()) rc.namespace_ = "default";

  std::string cluster_what = absl::StrCat("cluster \"", cluster_name, "\"");
  rc.server = Str(cluster, "server");
  if (rc.server.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("kubeconfig: ", cluster_what, " has no server"));
  }
  while (!rc.server.empty() && rc.server.back() == '/') rc.server.pop_back();
  if (rc.server.find("://") == std::string::npos) rc.server = "https://" + rc.server;
  rc.tls_server_name = Str(cluster, "tls-server-name");
  rc.insecure_skip_tls_verify = Bool(cluster, "insecure-skip-tls-verify");
  DL_ASSIGN_OR_RETURN(rc.ca_data, DataOrFile(cluster, "certificate-authority-data",
                                             "certificate-authority", base_dir, cluster_what));

  std::string user_what = absl::StrCat("user \"", user_name, "\"");
  DL_ASSIGN_OR_RETURN(rc.client_cert_data, DataOrFile(user, "client-certificate-data",
                                                      "client-certificate", base_dir, user_what));
  DL_ASSIGN_OR_RETURN(rc.client_key_data,
                      DataOrFile(user, "client-key-data", "client-key", base_dir, user_what));
  if (rc.client_cert_data.empty() != rc.client_key_data.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "kubeconfig: ", user_what, ": client certificate and key must be given together"));
  }
  rc.bearer_token = Str(user, "token");
  std::string token_file = Str(user, "tokenFile");
  if (!token_file.empty()) rc.bearer_token_file = Resolve(base_dir, token_file);
  rc.username = Str(user, "username");
  rc.password = Str(user, "password");

  if (auto it = user.find("exec"); it != user.end() && it->is_object()) {
    const Json& e = *it;
    ExecConfig exec;
    exec.api_version = Str(e, "apiVersion");
    if (exec.api_version != "client.authentication.k8s.io/v1" &&
        exec.api_version != "client.authentication.k8s.io/v1beta1") {
      return absl::InvalidArgumentError(
          absl::StrCat("kubeconfig: ", user_what, ": exec apiVersion \"", exec.api_version,
                       "\" is not supported (client.authentication.k8s.io/v1 or v1beta1)"));
    }
    exec.command = Str(e, "command");
    if (exec.command.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("kubeconfig: ", user_what, ": exec has no command"));
    }
    // Like client-go: a relative command containing a path separator is relative to the
    // kubeconfig; a bare name is looked up on PATH.
    if (exec.command.find('/') != std::string::npos) exec.command = Resolve(base_dir, exec.command);
    if (auto a = e.find("args"); a != e.end() && a->is_array()) {
      for (const Json& arg : *a) {
        if (arg.is_string()) exec.args.push_back(arg.get<std::string>());
      }
    }
    if (auto v = e.find("env"); v != e.end() && v->is_array()) {
      for (const Json& kv : *v) exec.env.emplace_back(Str(kv, "name"), Str(kv, "value"));
    }
    exec.provide_cluster_info = Bool(e, "provideClusterInfo");
    exec.install_hint = Str(e, "installHint");
    rc.exec = std::move(exec);
  }
  return rc;
}

absl::StatusOr<RestConfig> LoadKubeconfig(const std::string& path, std::string_view context) {
  DL_ASSIGN_OR_RETURN(std::string text, ReadFileToString(path));
  size_t slash = path.rfind('/');
  std::string dir = slash == std::string::npos ? "." : path.substr(0, slash == 0 ? 1 : slash);
  absl::StatusOr<RestConfig> rc = ParseKubeconfig(text, dir, context);
  if (!rc.ok()) return Annotate(rc.status(), path);
  return rc;
}

namespace {

EnvLookup OrProcessEnv(const EnvLookup& env) {
  if (env) return env;
  return [](const std::string& name) -> std::optional<std::string> {
    const char* v = std::getenv(name.c_str());
    if (v == nullptr) return std::nullopt;
    return std::string(v);
  };
}

bool FileExists(const std::string& path) {
  std::ifstream in(path);
  return in.good();
}

}  // namespace

absl::StatusOr<RestConfig> LoadDefaultRestConfig(std::string_view context, const EnvLookup& env,
                                                 const std::string& root) {
  EnvLookup lookup = OrProcessEnv(env);
  if (std::optional<std::string> list = lookup("KUBECONFIG"); list && !list->empty()) {
    size_t start = 0;
    while (start <= list->size()) {
      size_t colon = list->find(':', start);
      if (colon == std::string::npos) colon = list->size();
      std::string path = list->substr(start, colon - start);
      if (!path.empty() && FileExists(path)) return LoadKubeconfig(path, context);
      start = colon + 1;
    }
  }
  if (std::optional<std::string> home = lookup("HOME"); home && !home->empty()) {
    std::string path = *home + "/.kube/config";
    if (FileExists(path)) return LoadKubeconfig(path, context);
  }
  absl::StatusOr<RestConfig> in_cluster = InClusterConfig(root, lookup);
  if (in_cluster.ok() || !absl::IsFailedPrecondition(in_cluster.status())) return in_cluster;
  return absl::FailedPreconditionError(
      "no Kubernetes config: $KUBECONFIG names no existing file, $HOME/.kube/config does not "
      "exist, and KUBERNETES_SERVICE_HOST/PORT are unset (not in a cluster)");
}

absl::StatusOr<RestConfig> InClusterConfig(const std::string& root, const EnvLookup& env) {
  EnvLookup lookup = OrProcessEnv(env);
  std::optional<std::string> host = lookup("KUBERNETES_SERVICE_HOST");
  std::optional<std::string> port = lookup("KUBERNETES_SERVICE_PORT");
  if (!host || !port || host->empty() || port->empty()) {
    return absl::FailedPreconditionError(
        "in-cluster config: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be set");
  }
  std::string dir = Resolve(root.empty() ? "/" : root, kServiceAccountDir);
  RestConfig rc;
  bool ipv6 = host->find(':') != std::string::npos;
  rc.server = absl::StrCat("https://", ipv6 ? "[" : "", *host, ipv6 ? "]" : "", ":", *port);
  rc.bearer_token_file = dir + "/token";
  DL_ASSIGN_OR_RETURN(std::string token, ReadFileToString(rc.bearer_token_file));
  (void)token;
  absl::StatusOr<std::string> ca = ReadFileToString(dir + "/ca.crt");
  if (ca.ok()) {
    rc.ca_data = *std::move(ca);
  } else if (!absl::IsNotFound(ca.status())) {
    return ca.status();
  }
  absl::StatusOr<std::string> ns = ReadFileToString(dir + "/namespace");
  rc.namespace_ = ns.ok() ? std::string(absl::StripAsciiWhitespace(*ns)) : "default";
  if (rc.namespace_.empty()) rc.namespace_ = "default";
  return rc;
}

}  // namespace driftless::kube
