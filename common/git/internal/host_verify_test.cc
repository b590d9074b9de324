#include "common/git/internal/host_verify.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/testing/status_matchers.h"

namespace driftless::git::internal {
namespace {

namespace fs = std::filesystem;
using ::driftless::testing::StatusIs;
using ::testing::HasSubstr;

std::string Slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A CA, a leaf for "git.test" signed by it, and an unrelated self-signed CA, made with the
// openssl CLI.
class VerifyCertificateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/driftless-tls-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    std::string d = dir_.string();
    std::string script =
        "set -e; cd '" + d +
        "';"
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ca.key "
        "-out ca.pem -days 2 "
        "  -subj /CN=test-ca -addext basicConstraints=critical,CA:TRUE 2>/dev/null;"
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "
        "other.key -out other.pem -days 2 "
        "  -subj /CN=other-ca -addext basicConstraints=critical,CA:TRUE 2>/dev/null;"
        "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout leaf.key -out "
        "leaf.csr -subj /CN=git.test "
        "  2>/dev/null;"
        "printf 'subjectAltName=DNS:git.test\\n' > ext.cnf;"
        "openssl x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 "
        "  -extfile ext.cnf -out leaf.pem 2>/dev/null;"
        "openssl x509 -in leaf.pem -outform DER -out leaf.der";
    ASSERT_EQ(std::system(("sh -c \"" + script + "\"").c_str()), 0);
    leaf_der_ = Slurp(dir_ / "leaf.der");
    ca_pem_ = Slurp(dir_ / "ca.pem");
    other_pem_ = Slurp(dir_ / "other.pem");
    ASSERT_FALSE(leaf_der_.empty());
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  absl::Status Verify(const std::string& ca, const std::string& host) {
    return VerifyCertificateWithCa(reinterpret_cast<const unsigned char*>(leaf_der_.data()),
                                   leaf_der_.size(), ca, host);
  }

  fs::path dir_;
  std::string leaf_der_, ca_pem_, other_pem_;
};

TEST_F(VerifyCertificateTest, TrustsLeafIssuedByCaData) {
  EXPECT_OK(Verify(ca_pem_, "git.test"));
  EXPECT_OK(Verify(other_pem_ + ca_pem_, "git.test"));  // bundles work
}

TEST_F(VerifyCertificateTest, RejectsWrongHostOrIssuer) {
  EXPECT_THAT(Verify(ca_pem_, "evil.test"),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("evil.test")));
  EXPECT_THAT(Verify(other_pem_, "git.test"), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(Verify("not pem", "git.test"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(
      VerifyCertificateWithCa(reinterpret_cast<const unsigned char*>("xx"), 2, ca_pem_, "git.test"),
      StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST(CheckKnownHostsTest, MatchesRawKeyForHost) {
  // base64("hostkey-bytes\x01\x02") — any blob stands in for a key.
  std::string raw = std::string("hostkey-bytes") + '\x01' + '\x02';
  std::string b64 = "aG9zdGtleS1ieXRlcwEC";
  std::string known =
      "# comment\n"
      "|1|hashed|entry ssh-ed25519 " +
      b64 +
      "\n"
      "other.example ssh-ed25519 AAAA\n"
      "git.example,10.0.0.1 ssh-ed25519 " +
      b64 +
      " comment\n"
      "[ssh.example]:2222 ssh-rsa " +
      b64 + "\n";
  EXPECT_OK(CheckKnownHosts(known, "git.example", raw));
  EXPECT_OK(CheckKnownHosts(known, "10.0.0.1", raw));
  EXPECT_OK(CheckKnownHosts(known, "ssh.example", raw));
  EXPECT_THAT(CheckKnownHosts(known, "other.example", raw),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("other.example")));
  EXPECT_THAT(CheckKnownHosts(known, "git.example", "different"),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(CheckKnownHosts("", "git.example", raw),
              StatusIs(absl::StatusCode::kFailedPrecondition));
}

}  // namespace
}  // namespace driftless::git::internal
