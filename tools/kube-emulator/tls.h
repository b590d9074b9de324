// TLS material for the emulator: a throwaway CA, a server certificate for localhost /
// 127.0.0.1 (CN localhost, SAN DNS:localhost + IP:127.0.0.1, which mbedTLS-based clients
// need), and a client certificate signed by the same CA for client-certificate auth.
// Keys are ECDSA P-256. All values are PEM text.
//
// Thread-safety: pure (OpenSSL 3 is thread-safe for these calls).
#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace driftless::kube_emulator {

struct TlsMaterial {
  std::string ca_cert;
  std::string ca_key;
  std::string server_cert;
  std::string server_key;
  std::string client_cert;  // CN = client_cn, O = system:masters
  std::string client_key;
};

// Errors: kInternal when OpenSSL fails (message carries the OpenSSL error string).
absl::StatusOr<TlsMaterial> GenerateTlsMaterial(std::string_view client_cn = "driftless-admin");

// Subject CN of a PEM certificate ("" on error).
std::string CertificateCommonName(std::string_view pem);

}  // namespace driftless::kube_emulator
