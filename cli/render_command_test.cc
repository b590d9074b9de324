// `driftless render` against a real git repository (file://) made with the git CLI.
#include "cli/render_command.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/kube/curl_kube_client.h"
#include "common/kube/kubeconfig.h"
#include "common/manifest/manifest.h"
#include "common/testing/status_matchers.h"
#include "tools/kube-emulator/emulator_process_for_test.h"

namespace driftless::cli {
namespace {

namespace fs = std::filesystem;
using ::driftless::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

class RenderCommandTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("driftless-cli-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "repo/apps/web/extra");
    Write("repo/apps/web/cm.yaml",
          "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web-${CLUSTER}\n"
          "data: {region: \"${REGION:=eu}\"}\n");
    Write("repo/apps/web/extra/svc.yaml", "apiVersion: v1\nkind: Service\nmetadata: {name: web}\n");
    Git("init -q -b main");
    Git("add -A");
    Git("-c user.email=t@example.com -c user.name=t commit -q -m init");
  }
  void TearDown() override { fs::remove_all(dir_); }

  void Write(const std::string& rel, const std::string& text) { std::ofstream(dir_ / rel) << text; }
  void Git(const std::string& args) {
    const std::string cmd = "git -C " + (dir_ / "repo").string() + " " + args;
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  }
  std::string App(const std::string& ref, bool recurse) {
    std::string text =
        "apiVersion: driftless.dev/v1alpha1\nkind: Application\n"
        "metadata: {name: web}\nspec:\n  source:\n    repoURL: file://" +
        (dir_ / "repo").string() + "\n    ref: " + ref +
        "\n    path: apps/web\n    substitute: {CLUSTER: prod}\n";
    if (recurse) text += "    directory: {recurse: true}\n";
    text += "  destination: {cluster: in-cluster, namespace: web}\n";
    Write("app.yaml", text);
    return (dir_ / "app.yaml").string();
  }
  fs::path dir_;
  std::ostringstream notes_;
};

TEST_F(RenderCommandTest, RendersFromGitWithSubstitution) {
  std::ostringstream out;
  ASSERT_OK(
      RunRender({.files = {App("{branch: main}", true)}, .cache_dir = (dir_ / "cache").string()},
                out, notes_));
  EXPECT_THAT(out.str(), AllOf(HasSubstr("name: web-prod"), HasSubstr("region: eu"),
                               HasSubstr("kind: Service")));
}

TEST_F(RenderCommandTest, TopLevelOnlyWithoutRecurse) {
  std::ostringstream out;
  ASSERT_OK(
      RunRender({.files = {App("{branch: main}", false)}, .cache_dir = (dir_ / "cache").string()},
                out, notes_));
  EXPECT_THAT(out.str(), AllOf(HasSubstr("name: web-prod"), Not(HasSubstr("kind: Service"))));
}

TEST_F(RenderCommandTest, LocalCheckout) {
  std::ostringstream out;
  ASSERT_OK(RunRender({.files = {App("{branch: main}", false)},
                       .local_dir = (dir_ / "repo").string(),
                       .output = "json"},
                      out, notes_));
  EXPECT_THAT(out.str(), HasSubstr("\"name\": \"web-prod\""));
}

TEST_F(RenderCommandTest, MissingBranchNamesIt) {
  std::ostringstream out;
  EXPECT_THAT(
      RunRender({.files = {App("{branch: nope}", false)}, .cache_dir = (dir_ / "cache").string()},
                out, notes_),
      StatusIs(absl::StatusCode::kNotFound,
               AllOf(HasSubstr("application web"), HasSubstr("nope"))));
}

// helm and kubectl are found next to the build (.tools/bin of the source tree), not only in
// PATH: a user's shell does not have .tools/bin in PATH.
TEST_F(RenderCommandTest, HelmAndKustomizeWithToolsFromTheSourceTree) {
  fs::create_directories(dir_ / "repo/charts/web/templates");
  fs::create_directories(dir_ / "repo/apps/k");
  Write("repo/charts/web/Chart.yaml", "apiVersion: v2\nname: web\nversion: 0.1.0\n");
  Write("repo/charts/web/values.yaml", "color: blue\n");
  Write("repo/charts/web/templates/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: '{{ .Release.Name }}-cm'}\n"
        "data: {color: '{{ .Values.color }}'}\n");
  Write("repo/apps/k/kustomization.yaml", "resources: [cm.yaml]\nnamePrefix: k-\n");
  Write("repo/apps/k/cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web-prod}\n");
  Git("add -A");
  Git("-c user.email=t@example.com -c user.name=t commit -q -m charts");
  Write("apps.yaml",
        "apiVersion: driftless.dev/v1alpha1\nkind: Application\nmetadata: {name: chart}\n"
        "spec:\n  source:\n    repoURL: file://" +
            (dir_ / "repo").string() +
            "\n    path: charts/web\n    helm: {releaseName: shop, values: {color: red}}\n"
            "  destination: {cluster: in-cluster, namespace: web}\n---\n"
            "apiVersion: driftless.dev/v1alpha1\nkind: Application\nmetadata: {name: k}\n"
            "spec:\n  source:\n    repoURL: file://" +
            (dir_ / "repo").string() +
            "\n    path: apps/k\n  destination: {cluster: in-cluster, namespace: web}\n");
  const std::string saved = std::getenv("PATH") ? std::getenv("PATH") : "";
  setenv("PATH", "/usr/bin:/bin", 1);
  unsetenv("DRIFTLESS_TOOLS_DIR");
  std::ostringstream out;
  absl::Status s =
      RunRender({.files = {(dir_ / "apps.yaml").string()}, .cache_dir = (dir_ / "cache").string()},
                out, notes_);
  setenv("PATH", saved.c_str(), 1);
  ASSERT_OK(s);
  EXPECT_THAT(out.str(), AllOf(HasSubstr("name: shop-cm"), HasSubstr("color: red"),
                               HasSubstr("name: k-web-prod")));
}

TEST_F(RenderCommandTest, InvalidApplicationNamesField) {
  Write("bad.yaml",
        "apiVersion: driftless.dev/v1alpha1\nkind: Application\nmetadata: {name: x}\n"
        "spec: {source: {repoURL: file:///x, pth: a}, destination: {cluster: c}}\n");
  std::ostringstream out;
  EXPECT_THAT(RunRender({.files = {(dir_ / "bad.yaml").string()}}, out, notes_),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("spec.source.pth: unknown field (did you mean \"path\"?)")));
  EXPECT_THAT(RunValidate({(dir_ / "bad.yaml").string()}, out),
              StatusIs(absl::StatusCode::kInvalidArgument));
  std::ostringstream ok;
  ASSERT_OK(RunValidate({App("{branch: main}", false)}, ok));
  EXPECT_THAT(ok.str(), HasSubstr("Application/web valid"));
}

// What render prints is what the planner applies: the destination namespace on namespaced
// kinds only, the tracking annotation and label, the CreateNamespace Namespace; a kind no
// rendered CRD defines is taken as namespaced offline, with a note.
TEST_F(RenderCommandTest, ObjectsAreShownAsThePlannerPreparesThem) {
  Write("repo/apps/web/extra/role.yaml",
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: reader}\n"
        "---\napiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n");
  Git("add -A");
  Git("-c user.email=t@example.com -c user.name=t commit -q -m more");
  std::string app = App("{branch: main}", true);
  std::ofstream(app, std::ios::app) << "  syncPolicy: {syncOptions: [CreateNamespace=true]}\n";
  std::ostringstream out;
  ASSERT_OK(RunRender({.files = {app}, .cache_dir = (dir_ / "cache").string(), .output = "json"},
                      out, notes_));
  absl::StatusOr<manifest::Json> objects = manifest::ParseJson(out.str(), "render output");
  ASSERT_OK(objects.status());
  std::map<std::string, manifest::Json> by_kind;
  for (const manifest::Json& o : *objects) by_kind[o["kind"].get<std::string>()] = o;
  ASSERT_EQ(by_kind.size(), 5u) << out.str();  // Namespace, ConfigMap, Service, ClusterRole, Widget
  EXPECT_EQ(by_kind["Namespace"]["metadata"]["name"], "web");
  EXPECT_EQ(by_kind["ConfigMap"]["metadata"]["namespace"], "web");
  EXPECT_EQ(by_kind["ConfigMap"]["metadata"]["annotations"]["driftless.dev/application"], "web");
  EXPECT_EQ(by_kind["ConfigMap"]["metadata"]["labels"]["driftless.dev/application"], "web");
  EXPECT_FALSE(by_kind["ClusterRole"]["metadata"].contains("namespace"));
  EXPECT_EQ(by_kind["Widget"]["metadata"]["namespace"], "web");
  EXPECT_THAT(notes_.str(), HasSubstr("the scope of example.com/v1 Widget is not known offline"));
}

// With --kubeconfig the cluster answers what an offline render cannot: its kinds' scope and
// the ConfigMaps and Secrets of valuesFrom and substituteFrom.
TEST_F(RenderCommandTest, KubeconfigReadsValuesFromAndScopesFromTheCluster) {
  kube_emulator::testing::EmulatorProcess emulator;
  ASSERT_TRUE(emulator.Start());
  const std::string kubeconfig = emulator.kubeconfig();
  ASSERT_OK_AND_ASSIGN(kube::RestConfig rest, kube::LoadKubeconfig(kubeconfig));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<kube::CurlKubeClient> kube,
                       kube::CurlKubeClient::New(rest, {.qps = 0}));
  for (const std::string yaml :
       {"{apiVersion: v1, kind: Namespace, metadata: {name: web}}",
        "{apiVersion: v1, kind: ConfigMap, metadata: {name: web-values, namespace: web}, "
        "data: {values.yaml: 'color: green'}}",
        "{apiVersion: v1, kind: Secret, metadata: {name: vars, namespace: web}, "
        "data: {CLUSTER: c3RhZ2luZw==}}"}) {  // "staging"
    ASSERT_OK_AND_ASSIGN(manifest::Json object, manifest::ParseYaml(yaml, "test"));
    ASSERT_OK(kube->Apply(object, {.field_manager = "test"}).status());
  }
  fs::create_directories(dir_ / "repo/charts/web/templates");
  Write("repo/charts/web/Chart.yaml", "apiVersion: v2\nname: web\nversion: 0.1.0\n");
  Write("repo/charts/web/values.yaml", "color: blue\n");
  Write("repo/charts/web/templates/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: '{{ .Release.Name }}-${CLUSTER}'}\n"
        "data: {color: '{{ .Values.color }}'}\n");
  Git("add -A");
  Git("-c user.email=t@example.com -c user.name=t commit -q -m chart");
  Write("chart.yaml",
        "apiVersion: driftless.dev/v1alpha1\nkind: Application\nmetadata: {name: chart}\n"
        "spec:\n  source:\n    repoURL: file://" +
            (dir_ / "repo").string() +
            "\n    path: charts/web\n    helm: {releaseName: shop, valuesFrom: [{kind: ConfigMap, "
            "name: web-values}]}\n    substituteFrom: [{kind: Secret, name: vars}]\n"
            "  destination: {cluster: in-cluster, namespace: web}\n");
  const RenderOptions offline{.files = {(dir_ / "chart.yaml").string()},
                              .cache_dir = (dir_ / "cache").string()};
  std::ostringstream out;
  EXPECT_THAT(RunRender(offline, out, notes_),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("spec.source.helm.valuesFrom: ConfigMap web-values")));
  EXPECT_THAT(notes_.str(), HasSubstr("read the cluster (pass --kubeconfig)"));
  notes_.str("");
  RenderOptions online = offline;
  online.kubeconfig = kubeconfig;
  ASSERT_OK(RunRender(online, out, notes_));
  EXPECT_THAT(out.str(), AllOf(HasSubstr("name: shop-staging"), HasSubstr("color: green"),
                               HasSubstr("namespace: web")));
  EXPECT_THAT(notes_.str(), Not(HasSubstr("--kubeconfig")));
}

}  // namespace
}  // namespace driftless::cli
