#include "common/kube/testing/test_pki.h"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstdio>
#include <cstdlib>

namespace driftless::kube::testing {
namespace {

void Check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "test_pki: %s failed\n", what);
    std::abort();
  }
}

EVP_PKEY* NewKey() {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  Check(key != nullptr, "EVP_EC_gen");
  return key;
}

std::string KeyPem(EVP_PKEY* key) {
  BIO* bio = BIO_new(BIO_s_mem());
  Check(PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr) == 1,
        "write key");
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  std::string out(data, static_cast<size_t>(n));
  BIO_free(bio);
  return out;
}

std::string CertPem(X509* cert) {
  BIO* bio = BIO_new(BIO_s_mem());
  Check(PEM_write_bio_X509(bio, cert) == 1, "write cert");
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  std::string out(data, static_cast<size_t>(n));
  BIO_free(bio);
  return out;
}

void AddExt(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  Check(ext != nullptr, "X509V3_EXT_conf_nid");
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

X509* MakeCert(EVP_PKEY* key, const std::string& cn, const std::string& org, X509* issuer,
               long serial) {
  X509* cert = X509_new();
  X509_set_version(cert, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert), serial);
  X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert), 7 * 24 * 3600);
  X509_set_pubkey(cert, key);
  X509_NAME* name = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  if (!org.empty()) {
    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>(org.c_str()), -1, -1, 0);
  }
  X509_set_issuer_name(cert, issuer != nullptr ? X509_get_subject_name(issuer) : name);
  return cert;
}

}  // namespace

TestPki GenerateTestPki(const std::vector<std::string>& extra_dns_names,
                        const std::string& client_common_name) {
  TestPki pki;
  EVP_PKEY* ca_key = NewKey();
  X509* ca = MakeCert(ca_key, "driftless test CA", "", nullptr, 1);
  AddExt(ca, ca, NID_basic_constraints, "critical,CA:TRUE");
  AddExt(ca, ca, NID_key_usage, "critical,keyCertSign,cRLSign,digitalSignature");
  AddExt(ca, ca, NID_subject_key_identifier, "hash");
  Check(X509_sign(ca, ca_key, EVP_sha256()) > 0, "sign CA");
  pki.ca_cert_pem = CertPem(ca);
  pki.ca_key_pem = KeyPem(ca_key);

  EVP_PKEY* server_key = NewKey();
  X509* server = MakeCert(server_key, "kube-apiserver", "", ca, 2);
  std::string san = "IP:127.0.0.1,DNS:localhost";
  for (const std::string& d : extra_dns_names) san += ",DNS:" + d;
  AddExt(server, ca, NID_subject_alt_name, san);
  AddExt(server, ca, NID_basic_constraints, "critical,CA:FALSE");
  AddExt(server, ca, NID_ext_key_usage, "serverAuth");
  AddExt(server, ca, NID_authority_key_identifier, "keyid");
  Check(X509_sign(server, ca_key, EVP_sha256()) > 0, "sign server");
  pki.server = {CertPem(server), KeyPem(server_key)};

  EVP_PKEY* client_key = NewKey();
  X509* client = MakeCert(client_key, client_common_name, "system:masters", ca, 3);
  AddExt(client, ca, NID_basic_constraints, "critical,CA:FALSE");
  AddExt(client, ca, NID_ext_key_usage, "clientAuth");
  AddExt(client, ca, NID_authority_key_identifier, "keyid");
  Check(X509_sign(client, ca_key, EVP_sha256()) > 0, "sign client");
  pki.client = {CertPem(client), KeyPem(client_key)};

  X509_free(client);
  EVP_PKEY_free(client_key);
  X509_free(server);
  EVP_PKEY_free(server_key);
  X509_free(ca);
  EVP_PKEY_free(ca_key);
  return pki;
}

}  // namespace driftless::kube::testing
