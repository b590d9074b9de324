// Response compression of the emulator's HTTP shell. Off by default: the emulator is reached
// over loopback, where compressing only costs CPU (gzip level 1 of the 300 KB list of 1,000
// Namespaces: ~1.5 ms per request). When enabled, as kube-apiserver does it: gzip at level 1
// (BestSpeed) for bodies of at least a threshold (kube-apiserver: 128 KiB) when the client
// accepts gzip. Never brotli: cpp-httplib itself would brotli-compress (quality 11) every JSON
// body of a client that accepts `br`, so the shell sends bodies through a sized content
// provider, which cpp-httplib leaves alone, and compresses here when asked to.
//
//   if (AcceptsGzip(req.get_header_value("Accept-Encoding"))) {
//     absl::StatusOr<std::string> gz = GzipFast(body);
//   }
//
// Thread-safety: pure functions.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace driftless::kube_emulator {

// kube-apiserver's threshold: smaller bodies are sent as they are.
inline constexpr long long kKubeApiserverGzipMinBytes = 128 * 1024;

// True when an Accept-Encoding header value lists gzip (or `*`) with a non-zero q.
bool AcceptsGzip(std::string_view accept_encoding);

// `data` as a gzip member compressed at level 1. Errors: kInternal when zlib fails.
absl::StatusOr<std::string> GzipFast(std::string_view data);

}  // namespace driftless::kube_emulator
