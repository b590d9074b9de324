// Repository URL helpers: credential redaction for messages and normalization for mirror
// identity. Pure and thread-safe.
//
//   RedactUrl("https://user:tok@git.example.com/x.git") == "https://git.example.com/x.git"
#pragma once

#include <string>
#include <string_view>

namespace driftless::git {

// `url` without its userinfo (user, password or token) for URLs with a scheme
// ("https://u:p@h/x" → "https://h/x"); scp-like SSH addresses ("git@host:org/repo") keep a
// user name without a password, and lose "user:secret@". Safe on any input.
std::string RedactUrl(std::string_view url);

// Mirror identity: the redacted URL with scheme and host lowercased and trailing slashes
// removed, so "HTTPS://Host/x/" and "https://user@host/x" share one mirror.
std::string NormalizeUrl(std::string_view url);

}  // namespace driftless::git
