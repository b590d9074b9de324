// Where a KubeClient connects and how it authenticates: RestConfig, loaded from a kubeconfig
// file or from the in-cluster service account.
//
//   DL_ASSIGN_OR_RETURN(RestConfig config, LoadKubeconfig("/home/me/.kube/config", ""));
//   DL_ASSIGN_OR_RETURN(RestConfig config, InClusterConfig());
//   LOG(INFO) << config.ToString();   // secrets redacted
//
// Supported kubeconfig fields: clusters (server, certificate-authority[-data],
// insecure-skip-tls-verify, tls-server-name), users (client-certificate[-data],
// client-key[-data], token, tokenFile, username/password, exec plugins with apiVersion
// client.authentication.k8s.io/v1 or v1beta1), contexts (cluster, user, namespace),
// current-context. Relative file paths resolve against the kubeconfig's directory. Files
// referenced by the config (certificates, keys) are read at load time; tokenFile is re-read
// by CredentialSource when it changes (service account token rotation).
//
// Thread-safety: functions are reentrant; RestConfig is a plain value.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status/status.h"

namespace driftless::kube {

// An exec credential plugin (users[].user.exec).
struct ExecConfig {
  std::string api_version;  // client.authentication.k8s.io/v1 or v1beta1
  std::string command;      // resolved against the kubeconfig's directory if it has a '/'
  std::vector<std::string> args;
  std::vector<std::pair<std::string, std::string>> env;
  bool provide_cluster_info = false;
  std::string install_hint;
};

struct RestConfig {
  std::string server;  // "https://10.0.0.1:6443" (no trailing '/'; may carry a path prefix)
  std::string tls_server_name;  // verify the server certificate for this name instead
  bool insecure_skip_tls_verify = false;
  std::string ca_data;           // PEM; empty: the system trust store
  std::string client_cert_data;  // PEM
  std::string client_key_data;   // PEM
  std::string bearer_token;
  std::string bearer_token_file;  // re-read when it changes; wins over bearer_token
  std::string username;
  std::string password;
  std::optional<ExecConfig> exec;
  std::string namespace_;  // the context's namespace ("default" when unset)
  std::string context;     // the context used ("" for in-cluster)

  // One line for logs, with every secret replaced by "<redacted>" and the CA/cert shown
  // only as present/absent.
  std::string ToString() const;
};

// Parses kubeconfig YAML. `base_dir` resolves relative paths; `context` selects a context
// ("" = current-context). kInvalidArgument for malformed YAML or references to missing
// clusters/users/contexts (naming the entry); kNotFound when a referenced file is missing.
absl::StatusOr<RestConfig> ParseKubeconfig(std::string_view yaml, std::string_view base_dir,
                                           std::string_view context = "");

// Reads `path` and parses it (base_dir = the file's directory).
absl::StatusOr<RestConfig> LoadKubeconfig(const std::string& path, std::string_view context = "");

// Environment lookup used by InClusterConfig (injectable for tests).
using EnvLookup = std::function<std::optional<std::string>(const std::string&)>;

// The in-cluster service account config: server from KUBERNETES_SERVICE_HOST and
// KUBERNETES_SERVICE_PORT, CA from <root>/var/run/secrets/kubernetes.io/serviceaccount/ca.crt,
// bearer_token_file <root>/.../token, namespace from <root>/.../namespace.
// kFailedPrecondition when not running in a cluster (variables unset); kNotFound when the
// token file is missing. `root` is "/" in production.
absl::StatusOr<RestConfig> InClusterConfig(const std::string& root = "/",
                                           const EnvLookup& env = nullptr);

// The config a service or CLI uses by default, like kubectl: the first existing file of
// $KUBECONFIG (colon-separated; files are not merged), else $HOME/.kube/config, else the
// in-cluster config (under `root`). `context` selects a kubeconfig context ("" = current).
// kFailedPrecondition naming all three sources when none is available.
absl::StatusOr<RestConfig> LoadDefaultRestConfig(std::string_view context = "",
                                                 const EnvLookup& env = nullptr,
                                                 const std::string& root = "/");

// Reads a whole file. kNotFound if it does not exist, kPermissionDenied / kInternal otherwise.
absl::StatusOr<std::string> ReadFileToString(const std::string& path);

}  // namespace driftless::kube
