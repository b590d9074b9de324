// A throwaway PKI for TLS tests: a CA, a server certificate for 127.0.0.1 / localhost /
// extra DNS names, and a client certificate, all generated in memory with OpenSSL.
#pragma once

#include <string>
#include <vector>

namespace driftless::kube::testing {

struct CertAndKey {
  std::string cert_pem;
  std::string key_pem;
};

struct TestPki {
  std::string ca_cert_pem;
  std::string ca_key_pem;
  CertAndKey server;  // SANs: IP 127.0.0.1, DNS localhost + extra_dns_names
  CertAndKey client;  // CN = client_common_name, O = system:masters
};

// Generates a fresh PKI (EC P-256 keys). Aborts the test binary on OpenSSL failure.
TestPki GenerateTestPki(const std::vector<std::string>& extra_dns_names = {},
                        const std::string& client_common_name = "driftless-test");

}  // namespace driftless::kube::testing
