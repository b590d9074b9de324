#include "common/git/url.h"

#include <cctype>

namespace driftless::git {
namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace

std::string RedactUrl(std::string_view url) {
  size_t scheme_end = url.find("://");
  if (scheme_end != std::string_view::npos) {
    size_t authority = scheme_end + 3;
    size_t path = url.find_first_of("/?#", authority);
    std::string_view host_part =
        url.substr(authority, path == std::string_view::npos ? path : path - authority);
    size_t at = host_part.rfind('@');
    if (at == std::string_view::npos) return std::string(url);
    std::string out(url.substr(0, authority));
    out += host_part.substr(at + 1);
    if (path != std::string_view::npos) out += url.substr(path);
    return out;
  }
  // scp-like "user@host:path" or "user:secret@host:path".
  size_t at = url.find('@');
  if (at == std::string_view::npos) return std::string(url);
  std::string_view user = url.substr(0, at);
  if (user.find(':') == std::string_view::npos && user.find('/') == std::string_view::npos) {
    return std::string(url);  // a bare user name ("git@") is not a secret
  }
  return std::string(url.substr(at + 1));
}

std::string NormalizeUrl(std::string_view url) {
  std::string out = RedactUrl(url);
  size_t scheme_end = out.find("://");
  if (scheme_end != std::string::npos) {
    size_t path = out.find_first_of("/?#", scheme_end + 3);
    size_t end = path == std::string::npos ? out.size() : path;
    out = Lower(out.substr(0, end)) + out.substr(end);
  }
  while (out.size() > 1 && out.back() == '/') out.pop_back();
  return out;
}

}  // namespace driftless::git
