#include "tools/kube-emulator/tls.h"

#include <memory>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

namespace driftless::kube_emulator {
namespace {

struct Free {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
  void operator()(X509* p) const { X509_free(p); }
  void operator()(BIO* p) const { BIO_free(p); }
  void operator()(X509_EXTENSION* p) const { X509_EXTENSION_free(p); }
};
using Key = std::unique_ptr<EVP_PKEY, Free>;
using Cert = std::unique_ptr<X509, Free>;

absl::Status SslError(const char* what) {
  char buf[256];
  ERR_error_string_n(ERR_get_error(), buf, sizeof(buf));
  return absl::InternalError(std::string(what) + ": " + buf);
}

Key NewKey() { return Key(EVP_EC_gen("P-256")); }

bool AddExt(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  std::unique_ptr<X509_EXTENSION, Free> ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value));
  return ext && X509_add_ext(cert, ext.get(), -1) == 1;
}

absl::StatusOr<Cert> MakeCert(EVP_PKEY* key, const char* cn, const char* org, X509* issuer,
                              EVP_PKEY* issuer_key, bool ca, const char* san, const char* eku) {
  Cert cert(X509_new());
  if (!cert) return SslError("X509_new");
  X509_set_version(cert.get(), 2);
  unsigned char serial[16];
  RAND_bytes(serial, sizeof(serial));
  serial[0] &= 0x7f;
  BIGNUM* bn = BN_bin2bn(serial, sizeof(serial), nullptr);
  BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert.get()));
  BN_free(bn);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 60L * 60 * 24 * 365);
  X509_set_pubkey(cert.get(), key);
  X509_NAME* name = X509_get_subject_name(cert.get());
  if (org) {
    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(org),
                               -1, -1, 0);
  }
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn),
                             -1, -1, 0);
  X509* iss = issuer ? issuer : cert.get();
  X509_set_issuer_name(cert.get(), X509_get_subject_name(iss));
  bool ok = AddExt(cert.get(), iss, NID_basic_constraints, ca ? "critical,CA:TRUE" : "CA:FALSE");
  ok = ok && AddExt(cert.get(), iss, NID_key_usage,
                    ca ? "critical,keyCertSign,cRLSign,digitalSignature"
                       : "critical,digitalSignature,keyEncipherment");
  ok = ok && AddExt(cert.get(), iss, NID_subject_key_identifier, "hash");
  if (issuer) ok = ok && AddExt(cert.get(), iss, NID_authority_key_identifier, "keyid:always");
  if (san) ok = ok && AddExt(cert.get(), iss, NID_subject_alt_name, san);
  if (eku) ok = ok && AddExt(cert.get(), iss, NID_ext_key_usage, eku);
  if (!ok) return SslError("X509 extensions");
  if (X509_sign(cert.get(), issuer_key ? issuer_key : key, EVP_sha256()) == 0) {
    return SslError("X509_sign");
  }
  return cert;
}

std::string CertPem(X509* c) {
  std::unique_ptr<BIO, Free> bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509(bio.get(), c);
  char* data;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, n);
}

std::string KeyPem(EVP_PKEY* k) {
  std::unique_ptr<BIO, Free> bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_PrivateKey(bio.get(), k, nullptr, nullptr, 0, nullptr, nullptr);
  char* data;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, n);
}

}  // namespace

absl::StatusOr<TlsMaterial> GenerateTlsMaterial(std::string_view client_cn) {
  Key ca_key = NewKey(), server_key = NewKey(), client_key = NewKey();
  if (!ca_key || !server_key || !client_key) return SslError("EVP_EC_gen");
  auto ca = MakeCert(ca_key.get(), "driftless-kube-emulator-ca", nullptr, nullptr, nullptr, true,
                     nullptr, nullptr);
  if (!ca.ok()) return ca.status();
  auto server = MakeCert(server_key.get(), "localhost", nullptr, ca->get(), ca_key.get(), false,
                         "DNS:localhost,IP:127.0.0.1,IP:0:0:0:0:0:0:0:1", "serverAuth");
  if (!server.ok()) return server.status();
  std::string cn(client_cn);
  auto client = MakeCert(client_key.get(), cn.c_str(), "system:masters", ca->get(), ca_key.get(),
                         false, nullptr, "clientAuth");
  if (!client.ok()) return client.status();
  return TlsMaterial{CertPem(ca->get()),       KeyPem(ca_key.get()),   CertPem(server->get()),
                     KeyPem(server_key.get()), CertPem(client->get()), KeyPem(client_key.get())};
}

std::string CertificateCommonName(std::string_view pem) {
  std::unique_ptr<BIO, Free> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  Cert cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!cert) return "";
  char buf[256] = {0};
  X509_NAME_get_text_by_NID(X509_get_subject_name(cert.get()), NID_commonName, buf, sizeof(buf));
  return buf;
}

}  // namespace driftless::kube_emulator
