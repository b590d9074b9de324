// Server identity checks used from libgit2's certificate callback, kept apart (OpenSSL only, no
// libgit2) so they can be tested directly.
#pragma once

#include <cstddef>
#include <string_view>

#include "common/status/status.h"

namespace driftless::git::internal {

// OK if the DER certificate `der` is issued by (or is) a certificate in `ca_pem` and is valid
// for `host`. Only the leaf is available from libgit2, so intermediates must be in `ca_pem`.
// kFailedPrecondition naming the host and the OpenSSL reason otherwise; kInvalidArgument if
// `ca_pem` has no certificate.
absl::Status VerifyCertificateWithCa(const unsigned char* der, size_t der_len,
                                     std::string_view ca_pem, std::string_view host);

// OK if `known_hosts` (OpenSSH format, plain host patterns "host", "host1,host2",
// "[host]:port") lists `raw_key` (the key blob, as base64-decoded from the file) for `host`.
// Hashed ("|1|...") and wildcard entries never match. kFailedPrecondition naming the host.
absl::Status CheckKnownHosts(std::string_view known_hosts, std::string_view host,
                             std::string_view raw_key);

}  // namespace driftless::git::internal
