// `driftless render` against a real git repository (file://) made with the git CLI.
#include "cli/render_command.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/testing/status_matchers.h"

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
};

TEST_F(RenderCommandTest, RendersFromGitWithSubstitution) {
  std::ostringstream out;
  ASSERT_OK(RunRender(
      {.files = {App("{branch: main}", true)}, .cache_dir = (dir_ / "cache").string()}, out));
  EXPECT_THAT(out.str(), AllOf(HasSubstr("name: web-prod"), HasSubstr("region: eu"),
                               HasSubstr("kind: Service")));
}

TEST_F(RenderCommandTest, TopLevelOnlyWithoutRecurse) {
  std::ostringstream out;
  ASSERT_OK(RunRender(
      {.files = {App("{branch: main}", false)}, .cache_dir = (dir_ / "cache").string()}, out));
  EXPECT_THAT(out.str(), AllOf(HasSubstr("name: web-prod"), Not(HasSubstr("kind: Service"))));
}

TEST_F(RenderCommandTest, LocalCheckout) {
  std::ostringstream out;
  ASSERT_OK(RunRender({.files = {App("{branch: main}", false)},
                       .local_dir = (dir_ / "repo").string(),
                       .output = "json"},
                      out));
  EXPECT_THAT(out.str(), HasSubstr("\"name\": \"web-prod\""));
}

TEST_F(RenderCommandTest, MissingBranchNamesIt) {
  std::ostringstream out;
  EXPECT_THAT(
      RunRender({.files = {App("{branch: nope}", false)}, .cache_dir = (dir_ / "cache").string()},
                out),
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
  absl::Status s = RunRender(
      {.files = {(dir_ / "apps.yaml").string()}, .cache_dir = (dir_ / "cache").string()}, out);
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
  EXPECT_THAT(RunRender({.files = {(dir_ / "bad.yaml").string()}}, out),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("spec.source.pth: unknown field (did you mean \"path\"?)")));
  EXPECT_THAT(RunValidate({(dir_ / "bad.yaml").string()}, out),
              StatusIs(absl::StatusCode::kInvalidArgument));
  std::ostringstream ok;
  ASSERT_OK(RunValidate({App("{branch: main}", false)}, ok));
  EXPECT_THAT(ok.str(), HasSubstr("Application/web valid"));
}

}  // namespace
}  // namespace driftless::cli
