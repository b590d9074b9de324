// The credentials a request carries, derived from a RestConfig: static token or client
// certificate, a token file re-read when it changes (service account rotation), or an exec
// credential plugin run on demand and cached until its expirationTimestamp (or until the
// server answers 401 and the caller calls Invalidate()).
//
//   CredentialSource creds(config);
//   DL_ASSIGN_OR_RETURN(Credentials c, creds.Get());
//   ... send with c.bearer_token ...; on 401: if (creds.Invalidate()) retry once.
//
// Thread-safety: all methods may be called concurrently; at most one plugin runs at a time.
// Never logs tokens or keys.
#pragma once

#include <sys/types.h>
#include <functional>
#include <mutex>
#include <string>

#include "absl/time/time.h"
#include "common/kube/kubeconfig.h"

namespace driftless::kube {

struct Credentials {
  std::string bearer_token;
  std::string client_cert_data;  // PEM
  std::string client_key_data;   // PEM
  std::string username;
  std::string password;
};

// What an exec plugin printed (ExecCredential.status).
struct ExecCredentialStatus {
  std::string token;
  std::string client_certificate_data;
  std::string client_key_data;
  std::optional<absl::Time> expiration;
};

// Parses the stdout of an exec plugin. kInvalidArgument if it is not an ExecCredential of
// `api_version` with a token or a certificate + key.
absl::StatusOr<ExecCredentialStatus> ParseExecCredential(std::string_view output,
                                                         std::string_view api_version);

// Runs the plugin (command, args, env plus KUBERNETES_EXEC_INFO; stdin is /dev/null) with a
// timeout and parses its output. kUnauthenticated when it exits non-zero (message carries the
// exit code, stderr's first line and the install hint), kNotFound when the command does not
// exist, kDeadlineExceeded on timeout.
absl::StatusOr<ExecCredentialStatus> RunExecPlugin(const ExecConfig& exec,
                                                   const RestConfig& cluster,
                                                   absl::Duration timeout = absl::Seconds(60));

class CredentialSource {
 public:
  explicit CredentialSource(
      RestConfig config, std::function<absl::Time()> now = [] { return absl::Now(); });

  // The credentials to send now. Errors come from the token file or the plugin (above).
  absl::StatusOr<Credentials> Get();

  // Forgets cached refreshable credentials (exec result, token file contents) after a 401.
  // Returns true if a retry may use different credentials (an exec plugin or token file is
  // configured), false if retrying is pointless.
  bool Invalidate();

  // How many times the exec plugin ran (for tests and metrics).
  int exec_runs() const;

 private:
  const RestConfig config_;
  const std::function<absl::Time()> now_;
  mutable std::mutex mu_;
  // Exec plugin cache.
  bool exec_valid_ = false;
  ExecCredentialStatus exec_status_;
  int exec_runs_ = 0;
  // Token file cache, keyed by the file's identity and mtime.
  std::string file_token_;
  ino_t file_ino_ = 0;
  off_t file_size_ = -1;
  long long file_mtime_ns_ = -1;
};

}  // namespace driftless::kube
