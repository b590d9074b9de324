#include "common/git/internal/host_verify.h"

#include <memory>
#include <string>
#include <vector>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include "common/git/internal/str.h"

namespace driftless::git::internal {
namespace {

struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct StoreFree {
  void operator()(X509_STORE* s) const { X509_STORE_free(s); }
};
struct CtxFree {
  void operator()(X509_STORE_CTX* c) const { X509_STORE_CTX_free(c); }
};
struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};

std::string Base64Decode(std::string_view in) {
  std::string out(in.size() / 4 * 3 + 3, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(in.data()),
                          static_cast<int>(in.size()));
  if (n < 0) return "";
  // EVP_DecodeBlock counts padding bytes as output; drop them.
  size_t pad = 0;
  if (!in.empty() && in.back() == '=') ++pad;
  if (in.size() > 1 && in[in.size() - 2] == '=') ++pad;
  out.resize(static_cast<size_t>(n) - pad);
  return out;
}

bool HostMatches(std::string_view pattern, std::string_view host) {
  for (std::string_view p : Split(pattern, ",", true)) {
    if (p == host) return true;
    // "[host]:port" — we do not know the port here; the host part must match.
    if (p.size() > 2 && p[0] == '[') {
      size_t close = p.find(']');
      if (close != std::string_view::npos && p.substr(1, close - 1) == host) return true;
    }
  }
  return false;
}

}  // namespace

absl::Status VerifyCertificateWithCa(const unsigned char* der, size_t der_len,
                                     std::string_view ca_pem, std::string_view host) {
  const unsigned char* p = der;
  std::unique_ptr<X509, X509Free> leaf(d2i_X509(nullptr, &p, static_cast<long>(der_len)));
  if (!leaf) {
    return absl::FailedPreconditionError(Cat("TLS certificate of ", host, " is not parseable"));
  }
  std::unique_ptr<X509_STORE, StoreFree> store(X509_STORE_new());
  std::unique_ptr<BIO, BioFree> bio(
      BIO_new_mem_buf(ca_pem.data(), static_cast<int>(ca_pem.size())));
  int added = 0;
  while (true) {
    std::unique_ptr<X509, X509Free> ca(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
    if (!ca) break;
    if (X509_STORE_add_cert(store.get(), ca.get()) == 1) ++added;
  }
  ERR_clear_error();
  if (added == 0) return absl::InvalidArgumentError("caData holds no PEM certificate");
  std::unique_ptr<X509_STORE_CTX, CtxFree> ctx(X509_STORE_CTX_new());
  if (X509_STORE_CTX_init(ctx.get(), store.get(), leaf.get(), nullptr) != 1) {
    return absl::InternalError("X509_STORE_CTX_init failed");
  }
  X509_VERIFY_PARAM* param = X509_STORE_CTX_get0_param(ctx.get());
  X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_PARTIAL_CHAIN);
  std::string host_str(host);
  X509_VERIFY_PARAM_set1_host(param, host_str.c_str(), host_str.size());
  if (X509_verify_cert(ctx.get()) != 1) {
    int err = X509_STORE_CTX_get_error(ctx.get());
    return absl::FailedPreconditionError(
        Cat("TLS certificate of ", host,
            " is not trusted by caData: ", X509_verify_cert_error_string(err)));
  }
  return absl::OkStatus();
}

absl::Status CheckKnownHosts(std::string_view known_hosts, std::string_view host,
                             std::string_view raw_key) {
  for (std::string_view line : Split(known_hosts, "\n", true)) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.remove_suffix(1);
    if (line.empty() || line[0] == '#' || line[0] == '|' || line[0] == '@') continue;
    std::vector<std::string_view> fields = Split(line, " ", true);
    if (fields.size() < 3 || !HostMatches(fields[0], host)) continue;
    if (Base64Decode(fields[2]) == raw_key) return absl::OkStatus();
  }
  return absl::FailedPreconditionError(
      Cat("SSH host key of ", host, " is not listed in knownHosts"));
}

}  // namespace driftless::git::internal
