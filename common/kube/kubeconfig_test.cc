#include "common/kube/kubeconfig.h"

#include <gtest/gtest.h>

#include <map>

#include "absl/strings/escaping.h"
#include "absl/time/clock.h"
#include "common/kube/credentials.h"
#include "common/kube/testing/test_util.h"
#include "common/manifest/manifest.h"
#include "common/testing/status_matchers.h"

namespace driftless::kube {
namespace {

using ::driftless::kube::testing::ReadAll;
using ::driftless::kube::testing::TempDir;
using ::driftless::kube::testing::WriteFile;
using ::driftless::testing::StatusIs;
using manifest::Json;
using ::testing::HasSubstr;
using ::testing::Not;

std::string B64(const std::string& s) { return absl::Base64Escape(s); }

TEST(ParseKubeconfigTest, CurrentContextInlineDataAndToken) {
  std::string yaml = R"(apiVersion: v1
kind: Config
current-context: prod
contexts:
- name: prod
  context: {cluster: prod-cluster, user: admin, namespace: guestbook}
- name: dev
  context: {cluster: dev-cluster, user: dev}
clusters:
- name: prod-cluster
  cluster:
    server: https://10.0.0.1:6443/
    certificate-authority-data: )" +
                     B64("CA PEM") + R"(
    tls-server-name: kubernetes.default
- name: dev-cluster
  cluster: {server: "http://127.0.0.1:8080", insecure-skip-tls-verify: true}
users:
- name: admin
  user:
    client-certificate-data: )" +
                     B64("CERT PEM") + R"(
    client-key-data: )" +
                     B64("KEY PEM") + R"(
    token: s3cr3t-token
- name: dev
  user: {username: me, password: hunter2}
)";
  ASSERT_OK_AND_ASSIGN(RestConfig rc, ParseKubeconfig(yaml, "/nowhere"));
  EXPECT_EQ(rc.context, "prod");
  EXPECT_EQ(rc.server, "https://10.0.0.1:6443");
  EXPECT_EQ(rc.ca_data, "CA PEM");
  EXPECT_EQ(rc.tls_server_name, "kubernetes.default");
  EXPECT_EQ(rc.client_cert_data, "CERT PEM");
  EXPECT_EQ(rc.client_key_data, "KEY PEM");
  EXPECT_EQ(rc.bearer_token, "s3cr3t-token");
  EXPECT_EQ(rc.namespace_, "guestbook");
  EXPECT_FALSE(rc.insecure_skip_tls_verify);
  // Secrets never appear in ToString.
  std::string text = rc.ToString();
  EXPECT_THAT(text, HasSubstr("server=https://10.0.0.1:6443"));
  EXPECT_THAT(text, Not(HasSubstr("s3cr3t")));
  EXPECT_THAT(text, Not(HasSubstr("KEY PEM")));
  EXPECT_THAT(text, HasSubstr("token=<redacted>"));

  ASSERT_OK_AND_ASSIGN(RestConfig dev, ParseKubeconfig(yaml, "/nowhere", "dev"));
  EXPECT_EQ(dev.server, "http://127.0.0.1:8080");
  EXPECT_TRUE(dev.insecure_skip_tls_verify);
  EXPECT_EQ(dev.namespace_, "default");
  EXPECT_EQ(dev.username, "me");
  EXPECT_THAT(dev.ToString(), Not(HasSubstr("hunter2")));
}

TEST(ParseKubeconfigTest, RelativePathsResolveAgainstKubeconfigDir) {
  TempDir dir;
  WriteFile(dir.Join("certs/ca.crt"), "CA FROM FILE");
  WriteFile(dir.Join("certs/client.crt"), "CERT FROM FILE");
  WriteFile(dir.Join("/abs-key.pem"), "KEY FROM FILE");
  WriteFile(dir.Join("token"), "file-token\n");
  WriteFile(dir.Join("kubeconfig"), R"(
current-context: c
contexts: [{name: c, context: {cluster: k, user: u}}]
clusters: [{name: k, cluster: {server: "https://k:6443", certificate-authority: certs/ca.crt}}]
users:
- name: u
  user:
    client-certificate: certs/client.crt
    client-key: )" + dir.Join("abs-key.pem") +
                                        R"(
    tokenFile: token
)");
  ASSERT_OK_AND_ASSIGN(RestConfig rc, LoadKubeconfig(dir.Join("kubeconfig")));
  EXPECT_EQ(rc.ca_data, "CA FROM FILE");
  EXPECT_EQ(rc.client_cert_data, "CERT FROM FILE");
  EXPECT_EQ(rc.client_key_data, "KEY FROM FILE");
  EXPECT_EQ(rc.bearer_token_file, dir.Join("token"));
  CredentialSource creds(rc);
  ASSERT_OK_AND_ASSIGN(Credentials c, creds.Get());
  EXPECT_EQ(c.bearer_token, "file-token");
}

TEST(ParseKubeconfigTest, ErrorsNameTheEntry) {
  EXPECT_THAT(ParseKubeconfig("clusters: []\n", "/"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("current-context")));
  EXPECT_THAT(ParseKubeconfig("current-context: x\ncontexts: []\n", "/"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("context \"x\" not found")));
  EXPECT_THAT(ParseKubeconfig(R"(
current-context: c
contexts: [{name: c, context: {cluster: missing, user: u}}]
)",
                              "/"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("cluster \"missing\"")));
  EXPECT_THAT(ParseKubeconfig(R"(
current-context: c
contexts: [{name: c, context: {cluster: k}}]
clusters: [{name: k, cluster: {server: "https://k", certificate-authority: /no/such/ca.crt}}]
)",
                              "/"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("certificate-authority")));
  EXPECT_THAT(ParseKubeconfig(R"(
current-context: c
contexts: [{name: c, context: {cluster: k}}]
clusters: [{name: k, cluster: {server: "https://k", certificate-authority-data: "!!!notbase64"}}]
)",
                              "/"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("base64")));
  EXPECT_THAT(ParseKubeconfig(R"(
current-context: c
contexts: [{name: c, context: {cluster: k, user: u}}]
clusters: [{name: k, cluster: {server: "https://k"}}]
users: [{name: u, user: {exec: {apiVersion: client.authentication.k8s.io/v1alpha1, command: x}}}]
)",
                              "/"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("v1alpha1")));
  EXPECT_THAT(ParseKubeconfig("a: [unclosed\n", "/"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(LoadKubeconfig("/no/such/kubeconfig"), StatusIs(absl::StatusCode::kNotFound));
}

// An exec plugin written as a shell script: counts its runs, records its environment and
// prints a token built from its argument and an env variable.
std::string PluginScript(const std::string& count_file, const std::string& info_file,
                         const std::string& expiration) {
  return "#!/bin/sh\n"
         "echo run >> " +
         count_file +
         "\n"
         "printf '%s' \"$KUBERNETES_EXEC_INFO\" > " +
         info_file +
         "\n"
         "n=$(wc -l < " +
         count_file +
         " | tr -d ' ')\n"
         "printf '{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\","
         "\"status\":{\"token\":\"%s-%s-%s\"" +
         (expiration.empty() ? "" : ",\"expirationTimestamp\":\"" + expiration + "\"") +
         "}}' \"$1\" \"$PLUGIN_ENV\" \"$n\"\n";
}

std::string ExecKubeconfig(const std::string& command) {
  return R"(
current-context: c
contexts: [{name: c, context: {cluster: k, user: u}}]
clusters: [{name: k, cluster: {server: "https://k.example:6443", certificate-authority-data: )" +
         B64("THE CA") + R"(}}]
users:
- name: u
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1
      command: )" +
         command + R"(
      args: [first-arg]
      env: [{name: PLUGIN_ENV, value: from-env}]
      provideClusterInfo: true
      installHint: "install the plugin"
      interactiveMode: Never
)";
}

TEST(ExecPluginTest, RunsWithArgsEnvAndClusterInfoAndCachesUntilExpiry) {
  TempDir dir;
  WriteFile(dir.Join("bin/plugin.sh"),
            PluginScript(dir.Join("count"), dir.Join("info"), "2030-01-01T00:00:00Z"), 0755);
  WriteFile(dir.Join("kubeconfig"), ExecKubeconfig("./bin/plugin.sh"));
  ASSERT_OK_AND_ASSIGN(RestConfig rc, LoadKubeconfig(dir.Join("kubeconfig")));
  ASSERT_TRUE(rc.exec.has_value());
  EXPECT_EQ(rc.exec->command, dir.Join("./bin/plugin.sh"));

  absl::Time now = absl::FromCivil(absl::CivilSecond(2029, 12, 31, 23, 0, 0), absl::UTCTimeZone());
  CredentialSource creds(rc, [&] { return now; });
  ASSERT_OK_AND_ASSIGN(Credentials c, creds.Get());
  EXPECT_EQ(c.bearer_token, "first-arg-from-env-1");
  ASSERT_OK_AND_ASSIGN(c, creds.Get());
  EXPECT_EQ(c.bearer_token, "first-arg-from-env-1");  // cached
  EXPECT_EQ(creds.exec_runs(), 1);

  Json info = Json::parse(ReadAll(dir.Join("info")));
  EXPECT_EQ(info["apiVersion"], "client.authentication.k8s.io/v1");
  EXPECT_EQ(info["kind"], "ExecCredential");
  EXPECT_EQ(info["spec"]["interactive"], false);
  EXPECT_EQ(info["spec"]["cluster"]["server"], "https://k.example:6443");
  EXPECT_EQ(info["spec"]["cluster"]["certificate-authority-data"], B64("THE CA"));

  now += absl::Hours(2);  // past the expiration
  ASSERT_OK_AND_ASSIGN(c, creds.Get());
  EXPECT_EQ(c.bearer_token, "first-arg-from-env-2");
  EXPECT_EQ(creds.exec_runs(), 2);

  EXPECT_TRUE(creds.Invalidate());  // a 401: run again
  ASSERT_OK_AND_ASSIGN(c, creds.Get());
  EXPECT_EQ(c.bearer_token, "first-arg-from-env-3");
}

TEST(ExecPluginTest, FailuresMapToCodes) {
  TempDir dir;
  WriteFile(dir.Join("fail.sh"), "#!/bin/sh\necho 'token expired, run login' >&2\nexit 3\n", 0755);
  WriteFile(dir.Join("garbage.sh"), "#!/bin/sh\necho not json\n", 0755);
  WriteFile(dir.Join("k1"), ExecKubeconfig("./fail.sh"));
  WriteFile(dir.Join("k2"), ExecKubeconfig("./garbage.sh"));
  WriteFile(dir.Join("k3"), ExecKubeconfig("./missing.sh"));

  ASSERT_OK_AND_ASSIGN(RestConfig failing, LoadKubeconfig(dir.Join("k1")));
  EXPECT_THAT(CredentialSource(failing).Get(),
              StatusIs(absl::StatusCode::kUnauthenticated,
                       AllOf(HasSubstr("exit code 3"), HasSubstr("token expired, run login"),
                             HasSubstr("install the plugin"))));
  ASSERT_OK_AND_ASSIGN(RestConfig garbage, LoadKubeconfig(dir.Join("k2")));
  EXPECT_THAT(CredentialSource(garbage).Get(), StatusIs(absl::StatusCode::kInvalidArgument));
  ASSERT_OK_AND_ASSIGN(RestConfig missing, LoadKubeconfig(dir.Join("k3")));
  EXPECT_THAT(CredentialSource(missing).Get(), StatusIs(absl::StatusCode::kNotFound));
}

TEST(ExecPluginTest, TimesOut) {
  TempDir dir;
  WriteFile(dir.Join("hang.sh"), "#!/bin/sh\nexec sleep 30\n", 0755);
  ExecConfig exec{.api_version = "client.authentication.k8s.io/v1", .command = dir.Join("hang.sh")};
  absl::Time start = absl::Now();
  EXPECT_THAT(RunExecPlugin(exec, RestConfig{}, absl::Milliseconds(300)),
              StatusIs(absl::StatusCode::kDeadlineExceeded));
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
}

TEST(ParseExecCredentialTest, TokenOrCertificate) {
  ASSERT_OK_AND_ASSIGN(
      auto s, ParseExecCredential(
                  R"({"apiVersion":"client.authentication.k8s.io/v1beta1","kind":"ExecCredential",
        "status":{"clientCertificateData":"CERT","clientKeyData":"KEY"}})",
                  "client.authentication.k8s.io/v1beta1"));
  EXPECT_EQ(s.client_certificate_data, "CERT");
  EXPECT_EQ(s.client_key_data, "KEY");
  EXPECT_FALSE(s.expiration.has_value());
  EXPECT_THAT(
      ParseExecCredential(
          R"({"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{}})",
          "client.authentication.k8s.io/v1"),
      StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(
      ParseExecCredential(
          R"({"apiVersion":"client.authentication.k8s.io/v1beta1","kind":"ExecCredential","status":{"token":"t"}})",
          "client.authentication.k8s.io/v1"),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("apiVersion")));
  EXPECT_THAT(
      ParseExecCredential(
          R"({"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"t","expirationTimestamp":"tomorrow"}})",
          "client.authentication.k8s.io/v1"),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("expirationTimestamp")));
}

TEST(InClusterConfigTest, ReadsServiceAccountAndRotatesToken) {
  TempDir root;
  std::string sa = root.Join("var/run/secrets/kubernetes.io/serviceaccount");
  WriteFile(sa + "/token", "token-one\n");
  WriteFile(sa + "/ca.crt", "CLUSTER CA");
  WriteFile(sa + "/namespace", "driftless\n");
  std::map<std::string, std::string> env = {{"KUBERNETES_SERVICE_HOST", "10.96.0.1"},
                                            {"KUBERNETES_SERVICE_PORT", "443"}};
  auto lookup = [&](const std::string& k) -> std::optional<std::string> {
    auto it = env.find(k);
    if (it == env.end()) return std::nullopt;
    return it->second;
  };
  ASSERT_OK_AND_ASSIGN(RestConfig rc, InClusterConfig(root.path(), lookup));
  EXPECT_EQ(rc.server, "https://10.96.0.1:443");
  EXPECT_EQ(rc.ca_data, "CLUSTER CA");
  EXPECT_EQ(rc.namespace_, "driftless");
  EXPECT_EQ(rc.bearer_token_file, sa + "/token");
  EXPECT_THAT(rc.ToString(), Not(HasSubstr("token-one")));

  CredentialSource creds(rc);
  ASSERT_OK_AND_ASSIGN(Credentials c, creds.Get());
  EXPECT_EQ(c.bearer_token, "token-one");
  // Kubelet rotates the token by swapping the file; the next request uses the new one.
  WriteFile(sa + "/token.new", "token-two-rotated\n");
  std::filesystem::rename(sa + "/token.new", sa + "/token");
  ASSERT_OK_AND_ASSIGN(c, creds.Get());
  EXPECT_EQ(c.bearer_token, "token-two-rotated");

  env["KUBERNETES_SERVICE_HOST"] = "fd00::1";
  ASSERT_OK_AND_ASSIGN(rc, InClusterConfig(root.path(), lookup));
  EXPECT_EQ(rc.server, "https://[fd00::1]:443");
}

TEST(LoadDefaultRestConfigTest, KubeconfigEnvThenHomeThenInCluster) {
  TempDir dir;
  auto config = [](const std::string& server) {
    return "current-context: c\ncontexts: [{name: c, context: {cluster: k}}]\n"
           "clusters: [{name: k, cluster: {server: \"" +
           server + "\"}}]\n";
  };
  WriteFile(dir.Join("env-config"), config("https://from-env:6443"));
  WriteFile(dir.Join("home/.kube/config"), config("https://from-home:6443"));
  WriteFile(dir.Join("root/var/run/secrets/kubernetes.io/serviceaccount/token"), "t");
  std::map<std::string, std::string> env = {
      {"KUBECONFIG", dir.Join("missing") + ":" + dir.Join("env-config")},
      {"HOME", dir.Join("home")},
      {"KUBERNETES_SERVICE_HOST", "10.0.0.1"},
      {"KUBERNETES_SERVICE_PORT", "443"}};
  auto lookup = [&](const std::string& k) -> std::optional<std::string> {
    auto it = env.find(k);
    if (it == env.end()) return std::nullopt;
    return it->second;
  };
  ASSERT_OK_AND_ASSIGN(RestConfig rc, LoadDefaultRestConfig("", lookup, dir.Join("root")));
  EXPECT_EQ(rc.server, "https://from-env:6443");
  env.erase("KUBECONFIG");
  ASSERT_OK_AND_ASSIGN(rc, LoadDefaultRestConfig("", lookup, dir.Join("root")));
  EXPECT_EQ(rc.server, "https://from-home:6443");
  env["HOME"] = dir.Join("nohome");
  ASSERT_OK_AND_ASSIGN(rc, LoadDefaultRestConfig("", lookup, dir.Join("root")));
  EXPECT_EQ(rc.server, "https://10.0.0.1:443");
  env.erase("KUBERNETES_SERVICE_HOST");
  EXPECT_THAT(LoadDefaultRestConfig("", lookup, dir.Join("root")),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("KUBECONFIG")));
}

TEST(InClusterConfigTest, NotInClusterAndMissingToken) {
  TempDir root;
  auto none = [](const std::string&) -> std::optional<std::string> { return std::nullopt; };
  EXPECT_THAT(InClusterConfig(root.path(), none), StatusIs(absl::StatusCode::kFailedPrecondition));
  auto set = [](const std::string& k) -> std::optional<std::string> {
    return k == "KUBERNETES_SERVICE_HOST" ? "10.0.0.1" : "443";
  };
  EXPECT_THAT(InClusterConfig(root.path(), set), StatusIs(absl::StatusCode::kNotFound));
}

}  // namespace
}  // namespace driftless::kube
