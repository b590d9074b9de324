// Generate() with the real tools: kubectl's built-in kustomize and helm 3.17 from .tools/bin
// (scripts/install-deps). Each test writes a small repository into a private directory and
// compares what Generate returns with the tool run directly on the same files, or checks the
// precise error a bad repository gets.
#include "services/renderer/generate.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>

#include "common/manifest/object.h"
#include "common/process/run.h"
#include "common/testing/status_matchers.h"

namespace driftless::renderer {
namespace {

namespace fs = std::filesystem;
using ::driftless::testing::StatusIs;
using manifest::Json;
using ::testing::AllOf;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

const std::string kTools = DRIFTLESS_TOOLS_DIR;

Tools TestTools() { return FindTools({.helm = kTools + "/helm", .kubectl = kTools + "/kubectl"}); }

class GenerateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/driftless-generate-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    repo_ = dir_ + "/repo";
    scratch_ = dir_ + "/scratch";
    fs::create_directories(repo_);
    fs::create_directories(scratch_);
    tools_ = TestTools();
    ASSERT_FALSE(tools_.helm.empty()) << "helm not found in " << kTools;
    ASSERT_FALSE(tools_.kustomize.empty()) << "kubectl not found in " << kTools;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  void Write(const std::string& rel, const std::string& text) {
    const fs::path p = fs::path(repo_) / rel;
    fs::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << text;
  }

  absl::StatusOr<Generated> Run(const Json& source, RemotePolicy allow_remote = nullptr) {
    std::error_code ec;
    fs::remove_all(scratch_, ec);
    fs::create_directories(scratch_);
    return Generate({.application = "web",
                     .source = source,
                     .destination_namespace = "web-ns",
                     .checkout = repo_,
                     .scratch = scratch_,
                     .allow_remote = std::move(allow_remote)},
                    tools_);
  }

  // The tool's own output on the same checkout, as canonical objects.
  std::vector<std::string> Direct(std::vector<std::string> argv) {
    absl::StatusOr<process::RunResult> r = process::Run(
        {.argv = std::move(argv), .cwd = repo_, .env = process::ScrubbedEnv({"HOME=" + dir_})});
    EXPECT_TRUE(r.ok()) << r.status();
    if (!r.ok()) return {};
    EXPECT_EQ(r->exit_code, 0) << r->err;
    absl::StatusOr<std::vector<manifest::Document>> docs =
        manifest::ParseYamlDocuments(r->out, "direct");
    EXPECT_TRUE(docs.ok()) << docs.status();
    std::vector<std::string> out;
    if (!docs.ok()) return out;
    for (const manifest::Document& d : *docs) {
      if (!d.value.is_null()) out.push_back(manifest::CanonicalJson(d.value));
    }
    return out;
  }

  static std::vector<std::string> Canonical(const Generated& g) {
    std::vector<std::string> out;
    for (const RenderedObject& o : g.objects) out.push_back(manifest::CanonicalJson(o.object));
    return out;
  }

  static const Json* Find(const Generated& g, std::string_view kind, std::string_view name) {
    for (const RenderedObject& o : g.objects) {
      if (o.object["kind"] == kind && o.object["metadata"].value("name", "") == name) {
        return &o.object;
      }
    }
    return nullptr;
  }

  void WriteBase() {
    Write("apps/base/kustomization.yaml",
          "resources: [deployment.yaml, service.yaml]\n"
          "configMapGenerator:\n- name: web-config\n  files: [config/app.properties]\n");
    Write("apps/base/deployment.yaml", R"(apiVersion: apps/v1
kind: Deployment
metadata: {name: web, annotations: {base: "1"}}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - {name: web, image: nginx:1.25}
)");
    Write("apps/base/service.yaml",
          "apiVersion: v1\nkind: Service\nmetadata: {name: web, annotations: {base: \"1\"}}\n"
          "spec: {selector: {app: web}, ports: [{port: 80}]}\n");
    Write("apps/base/config/app.properties", "color=blue\n");
    Write("apps/prod/kustomization.yaml",
          "resources: [../base]\nnamePrefix: prod-\npatches:\n- path: replicas.yaml\n");
    Write("apps/prod/replicas.yaml",
          "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec: {replicas: 3}\n");
    Write("unrelated/x.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n");
  }

  void WriteChart(const std::string& path) {
    Write(path + "/Chart.yaml", "apiVersion: v2\nname: web\nversion: 0.1.0\n");
    Write(path + "/values.yaml", "replicas: 1\ncolor: blue\nimage: nginx:1.25\n");
    Write(path + "/templates/configmap.yaml", R"(apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-config
  namespace: {{ .Release.Namespace }}
data:
  color: {{ .Values.color | quote }}
  tag: {{ .Values.tag | default "none" | quote }}
)");
    Write(path + "/templates/deployment.yaml", R"(apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}
spec:
  replicas: {{ .Values.replicas }}
  selector: {matchLabels: {app: {{ .Release.Name }}}}
  template:
    metadata: {labels: {app: {{ .Release.Name }}}}
    spec:
      containers:
      - {name: web, image: {{ .Values.image | quote }}}
)");
    Write(path + "/templates/tests/test.yaml", R"(apiVersion: v1
kind: Pod
metadata:
  name: {{ .Release.Name }}-test
  annotations: {"helm.sh/hook": test}
spec:
  containers: [{name: t, image: busybox}]
)");
  }

  std::string dir_, repo_, scratch_;
  Tools tools_;
};

TEST_F(GenerateTest, ToolsAreFoundWithTheirVersions) {
  EXPECT_EQ(tools_.helm, kTools + "/helm");
  EXPECT_THAT(tools_.kustomize, ElementsAre(kTools + "/kubectl", "kustomize"));
  EXPECT_THAT(tools_.versions, AllOf(HasSubstr("helm v3.17"), HasSubstr("kubectl")));
  Tools none = FindTools({.helm = "/nonexistent/helm", .kubectl = "/nonexistent/kubectl"});
  EXPECT_TRUE(none.helm.empty());
  EXPECT_TRUE(none.kustomize.empty());
}

TEST_F(GenerateTest, GeneratorFollowsTheSpecThenTheFiles) {
  WriteBase();
  WriteChart("charts/web");
  EXPECT_EQ(GeneratorOf({{"path", "apps/prod"}}, repo_), "kustomize");
  EXPECT_EQ(GeneratorOf({{"path", "charts/web"}}, repo_), "helm");
  EXPECT_EQ(GeneratorOf({{"path", "unrelated"}}, repo_), "directory");
  EXPECT_EQ(GeneratorOf({{"path", "unrelated"}, {"helm", Json::object()}}, repo_), "helm");
  EXPECT_EQ(GeneratorOf({{"path", "apps/prod"}, {"directory", Json::object()}}, repo_),
            "directory");
}

TEST_F(GenerateTest, KustomizeOutputIsKubectlKustomizeUnchanged) {
  WriteBase();
  ASSERT_OK_AND_ASSIGN(Generated g, Run({{"path", "apps/prod"}}));
  EXPECT_EQ(g.generator, "kustomize");
  EXPECT_FALSE(g.remote);
  EXPECT_EQ(Canonical(g), Direct({kTools + "/kubectl", "kustomize", "apps/prod"}));
  const Json* d = Find(g, "Deployment", "prod-web");
  ASSERT_NE(d, nullptr);
  EXPECT_EQ((*d)["spec"]["replicas"], 3);
  // The read set: the overlay, the base it follows and the files they name; not the rest.
  EXPECT_THAT(g.reads, Contains("apps/prod"));
  EXPECT_THAT(g.reads, Contains("apps/base"));
  EXPECT_THAT(g.reads, Contains("apps/base/config/app.properties"));
  EXPECT_THAT(g.reads, Not(Contains("unrelated")));
}

TEST_F(GenerateTest, KustomizeInlineOptionsGoThroughAGeneratedOverlay) {
  WriteBase();
  Write("apps/prod/extra-patch.yaml",
        "- op: add\n  path: /metadata/annotations/patched\n  value: from-file\n");
  const Json source = Json::parse(R"({
    "path": "apps/prod",
    "kustomize": {
      "namespace": "team-a", "nameSuffix": "-v2",
      "images": [{"name": "nginx", "newTag": "1.27"}],
      "labels": {"team": "a"},
      "commonAnnotations": {"owner": "platform"},
      "replicas": [{"name": "prod-web", "count": 5}],
      "patches": [
        {"target": {"kind": "Service"},
         "patch": "- op: add\n  path: /metadata/annotations/inline\n  value: yes-inline\n"},
        {"target": {"kind": "Deployment"}, "path": "extra-patch.yaml"}]
    }})");
  const std::string before = [&] {
    std::ifstream in(fs::path(repo_) / "apps/prod/kustomization.yaml");
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }();
  ASSERT_OK_AND_ASSIGN(Generated g, Run(source));
  const Json* d = Find(g, "Deployment", "prod-web-v2");
  ASSERT_NE(d, nullptr) << Canonical(g).size();
  EXPECT_EQ((*d)["metadata"]["namespace"], "team-a");
  EXPECT_EQ((*d)["metadata"]["labels"]["team"], "a");
  // labels (unlike commonLabels) leave selectors alone.
  EXPECT_FALSE((*d)["spec"]["selector"]["matchLabels"].contains("team"));
  EXPECT_EQ((*d)["metadata"]["annotations"]["owner"], "platform");
  EXPECT_EQ((*d)["metadata"]["annotations"]["patched"], "from-file");
  EXPECT_EQ((*d)["spec"]["replicas"], 5);
  EXPECT_EQ((*d)["spec"]["template"]["spec"]["containers"][0]["image"], "nginx:1.27");
  const Json* s = Find(g, "Service", "prod-web-v2");
  ASSERT_NE(s, nullptr);
  EXPECT_EQ((*s)["metadata"]["annotations"]["inline"], "yes-inline");
  // The user's files are untouched and nothing was written into the checkout.
  std::ifstream in(fs::path(repo_) / "apps/prod/kustomization.yaml");
  std::stringstream after;
  after << in.rdbuf();
  EXPECT_EQ(after.str(), before);
  EXPECT_THAT(g.reads, Contains("apps/prod/extra-patch.yaml"));
}

TEST_F(GenerateTest, KustomizeComponentsFromTheApplication) {
  WriteBase();
  Write("components/debug/kustomization.yaml",
        "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\n"
        "commonAnnotations: {debug: \"true\"}\n");
  ASSERT_OK_AND_ASSIGN(
      Generated g,
      Run({{"path", "apps/prod"}, {"kustomize", {{"components", {"../../components/debug"}}}}}));
  const Json* d = Find(g, "Deployment", "prod-web");
  ASSERT_NE(d, nullptr);
  EXPECT_EQ((*d)["metadata"]["annotations"]["debug"], "true");
  EXPECT_THAT(g.reads, Contains("components/debug"));
}

TEST_F(GenerateTest, KustomizePathsThatLeaveTheRepositoryAreRefusedBeforeTheToolRuns) {
  WriteBase();
  Write("apps/escape/kustomization.yaml", "resources: [../../../outside]\n");
  EXPECT_THAT(Run({{"path", "apps/escape"}}).status(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("apps/escape/kustomization.yaml"),
                             HasSubstr("resources: path ../../../outside leaves the repository"))));
  // A symlink inside the repository that points outside it.
  std::ofstream(fs::path(dir_) / "secret.yaml") << "apiVersion: v1\nkind: Secret\n";
  Write("apps/link/kustomization.yaml", "resources: [stolen.yaml]\n");
  fs::create_symlink(fs::path(dir_) / "secret.yaml", fs::path(repo_) / "apps/link/stolen.yaml");
  EXPECT_THAT(Run({{"path", "apps/link"}}).status(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("path stolen.yaml leaves the repository")));
  // The application path itself.
  EXPECT_THAT(Run({{"path", "../"}}).status(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("spec.source.path: path .. leaves the repository")));
  EXPECT_THAT(Run({{"path", "/etc"}}).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("is absolute")));
  // Errors never show the private directories.
  absl::Status s = Run({{"path", "apps/link"}}).status();
  EXPECT_THAT(std::string(s.message()), Not(HasSubstr(dir_)));
}

TEST_F(GenerateTest, KustomizeMissingFilesNameTheKustomization) {
  Write("apps/broken/kustomization.yaml", "resources: [gone.yaml]\n");
  EXPECT_THAT(
      Run({{"path", "apps/broken"}}).status(),
      StatusIs(absl::StatusCode::kNotFound, AllOf(HasSubstr("apps/broken/kustomization.yaml"),
                                                  HasSubstr("gone.yaml does not exist"))));
  Write("apps/bad/kustomization.yaml", "resources: [\n");
  EXPECT_THAT(
      Run({{"path", "apps/bad"}}).status(),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("apps/bad/kustomization.yaml")));
  // kustomize's own error (a patch with no target) comes back with its message.
  Write("apps/tool-error/kustomization.yaml", "resources: [cm.yaml]\npatches:\n- path: p.yaml\n");
  Write("apps/tool-error/cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n");
  Write("apps/tool-error/p.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\n");
  EXPECT_THAT(Run({{"path", "apps/tool-error"}}).status(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("kustomize build"), HasSubstr("ConfigMap"))));
}

TEST_F(GenerateTest, RemoteBasesNeedTheProjectsPermission) {
  Write("apps/remote/kustomization.yaml",
        "resources:\n- https://github.com/example/deploy//base?ref=v1\n");
  EXPECT_THAT(Run({{"path", "apps/remote"}}).status(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("apps/remote/kustomization.yaml"),
                             HasSubstr("remote reference https://github.com/example/deploy//base"),
                             HasSubstr("is not allowed"))));
  EXPECT_THAT(Run({{"path", "apps/remote"}},
                  [](std::string_view url) { return url.starts_with("https://gitlab.example/"); })
                  .status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("is not allowed")));
}

TEST(IsRemoteReference, UrlsAndHostPathsButNotLocalFiles) {
  for (const char* remote :
       {"https://github.com/a/b//c", "git@github.com:a/b.git", "git::https://x/y",
        "github.com/kubernetes-sigs/kustomize//examples/multibases?ref=v3.3.1",
        "ssh://git@host/repo"}) {
    EXPECT_TRUE(IsRemoteReference(remote)) << remote;
  }
  for (const char* local : {"deployment.yaml", "../base", "./a/b", "config.d/x.yaml", "a.json",
                            "v1.2/base", "base.yaml/x"}) {
    EXPECT_FALSE(IsRemoteReference(local)) << local;
  }
}

TEST_F(GenerateTest, HelmOutputIsHelmTemplateUnchanged) {
  WriteChart("charts/web");
  Write("envs/prod-values.yaml", "replicas: 3\n");
  const Json source = Json::parse(R"({
    "path": "charts/web",
    "helm": {"releaseName": "shop", "valueFiles": ["../../envs/prod-values.yaml"],
             "values": {"color": "green"},
             "parameters": [{"name": "tag", "value": "007", "forceString": true}]}})");
  ASSERT_OK_AND_ASSIGN(Generated g, Run(source));
  EXPECT_EQ(g.generator, "helm");
  std::ofstream(fs::path(dir_) / "inline.yaml") << "color: green\n";
  EXPECT_EQ(Canonical(g), Direct({kTools + "/helm", "template", "shop", "charts/web", "--namespace",
                                  "web-ns", "--include-crds", "--values", "envs/prod-values.yaml",
                                  "--values", dir_ + "/inline.yaml", "--set-string", "tag=007"}));
  const Json* cm = Find(g, "ConfigMap", "shop-config");
  ASSERT_NE(cm, nullptr);
  EXPECT_EQ((*cm)["data"]["color"], "green");
  EXPECT_EQ((*cm)["data"]["tag"], "007");
  EXPECT_EQ((*cm)["metadata"]["namespace"], "web-ns");
  EXPECT_EQ((*Find(g, "Deployment", "shop"))["spec"]["replicas"], 3);
  EXPECT_THAT(g.reads, Contains("charts/web"));
  EXPECT_THAT(g.reads, Contains("envs/prod-values.yaml"));
}

TEST_F(GenerateTest, HelmValuesObjectAliasSkipTestsAndReleaseNameDefault) {
  WriteChart(".");
  ASSERT_OK_AND_ASSIGN(Generated g,
                       Run({{"helm", {{"valuesObject", {{"replicas", 2}}}, {"skipTests", true}}}}));
  ASSERT_NE(Find(g, "Deployment", "web"), nullptr);  // release name = the application's
  EXPECT_EQ((*Find(g, "Deployment", "web"))["spec"]["replicas"], 2);
  EXPECT_EQ(Find(g, "Pod", "web-test"), nullptr);
  // YAML text as values, like Argo CD's `values: |`.
  ASSERT_OK_AND_ASSIGN(Generated text, Run({{"helm", {{"values", "replicas: 4\n"}}}}));
  EXPECT_EQ((*Find(text, "Deployment", "web"))["spec"]["replicas"], 4);
  EXPECT_NE(Find(text, "Pod", "web-test"), nullptr);
  EXPECT_THAT(Run({{"helm", {{"values", "- a list\n"}}}}).status(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("spec.source.helm.values: the values must be a mapping")));
}

TEST_F(GenerateTest, HelmValuesFromTheClusterComeAfterValueFilesAndBeforeInlineValues) {
  WriteChart("charts/web");
  Write("envs/prod-values.yaml", "replicas: 3\ncolor: red\n");
  const Json source = Json::parse(R"({
    "path": "charts/web",
    "helm": {"valueFiles": ["../../envs/prod-values.yaml"], "values": {"image": "nginx:1.27"},
             "valuesFrom": [{"kind": "ConfigMap", "name": "web-values"}]}})");
  // Offline (no render inputs), a required valuesFrom cannot be honoured.
  EXPECT_THAT(Run(source).status(),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("spec.source.helm.valuesFrom: ConfigMap web-values: values from "
                                 "the cluster are only available")));
  std::error_code ec;
  fs::remove_all(scratch_, ec);
  fs::create_directories(scratch_);
  ASSERT_OK_AND_ASSIGN(Generated g,
                       Generate({.application = "web",
                                 .source = source,
                                 .destination_namespace = "web-ns",
                                 .checkout = repo_,
                                 .scratch = scratch_,
                                 .inputs_resolved = true,
                                 .values_from = {"color: green\nimage: busybox\n", "replicas: 5\n"},
                                 .kube_version = "v1.30.2"},
                                tools_));
  const Json* d = Find(g, "Deployment", "web");
  ASSERT_NE(d, nullptr);
  EXPECT_EQ((*d)["spec"]["replicas"], 5);  // the second valuesFrom over the value file
  EXPECT_EQ((*d)["spec"]["template"]["spec"]["containers"][0]["image"], "nginx:1.27");  // inline
  EXPECT_EQ((*Find(g, "ConfigMap", "web-config"))["data"]["color"], "green");
}

TEST_F(GenerateTest, HelmCrdPolicyCreatesChartCrdsOnlyOnceAndNeverPrunesThem) {
  WriteChart("charts/web");
  const std::string crd = R"(apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: NAME.example.com}
spec:
  group: example.com
  scope: Namespaced
  names: {kind: KIND, plural: NAME, singular: NAME}
  versions: [{name: v1, served: true, storage: true, schema: {openAPIV3Schema: {type: object}}}]
)";
  auto crd_named = [&](const std::string& name, const std::string& kind) {
    std::string text = crd;
    for (auto [from, to] : {std::pair{std::string("NAME"), name}, {std::string("KIND"), kind}}) {
      for (size_t at = text.find(from); at != std::string::npos; at = text.find(from, at)) {
        text.replace(at, from.size(), to);
      }
    }
    return text;
  };
  Write("charts/web/crds/widgets.yaml", crd_named("widgets", "Widget"));
  Write("charts/web/templates/gadgets.yaml", crd_named("gadgets", "Gadget"));
  auto options_of = [](const Generated& g, const std::string& name) {
    const Json* o = Find(g, "CustomResourceDefinition", name);
    if (o == nullptr) return std::string("<absent>");
    return manifest::AnnotationOf(*o, "driftless.dev/sync-options");
  };
  ASSERT_OK_AND_ASSIGN(Generated created,
                       Run(Json::parse(R"({"path": "charts/web", "helm": {}})")));
  EXPECT_EQ(options_of(created, "widgets.example.com"), "Prune=false,CreateOnly=true");
  EXPECT_EQ(options_of(created, "gadgets.example.com"), "");  // templates/: an ordinary object
  ASSERT_OK_AND_ASSIGN(Generated replaced, Run(Json::parse(
                                               R"({"path": "charts/web",
                                                   "helm": {"crds": "CreateReplace"}})")));
  EXPECT_EQ(options_of(replaced, "widgets.example.com"), "Prune=false");
  ASSERT_OK_AND_ASSIGN(Generated skipped,
                       Run(Json::parse(R"({"path": "charts/web", "helm": {"crds": "Skip"}})")));
  EXPECT_EQ(options_of(skipped, "widgets.example.com"), "<absent>");
  EXPECT_EQ(options_of(skipped, "gadgets.example.com"), "");
}

TEST_F(GenerateTest, HelmPostRendererPatchesTheChartOutput) {
  WriteChart("charts/web");
  const Json source = Json::parse(R"({
    "path": "charts/web",
    "helm": {"postRenderers": [{"kustomize": {
      "patches": [{"target": {"kind": "Deployment"},
                   "patch": "- op: add\n  path: /spec/template/spec/nodeSelector\n  value: {pool: web}\n"}],
      "commonLabels": {"patched": "yes"}}}]}})");
  ASSERT_OK_AND_ASSIGN(Generated g, Run(source));
  const Json* d = Find(g, "Deployment", "web");
  ASSERT_NE(d, nullptr);
  EXPECT_EQ((*d)["spec"]["template"]["spec"]["nodeSelector"]["pool"], "web");
  EXPECT_EQ((*d)["metadata"]["labels"]["patched"], "yes");
  EXPECT_EQ((*Find(g, "ConfigMap", "web-config"))["metadata"]["labels"]["patched"], "yes");
}

TEST_F(GenerateTest, HelmFileDependenciesAreVendoredIntoAPrivateCopy) {
  WriteChart("charts/web");
  Write("charts/web/Chart.yaml",
        "apiVersion: v2\nname: web\nversion: 0.1.0\ndependencies:\n"
        "- {name: lib, version: 0.1.0, repository: \"file://../lib\"}\n");
  Write("charts/lib/Chart.yaml", "apiVersion: v2\nname: lib\nversion: 0.1.0\n");
  Write("charts/lib/templates/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: from-lib}\n");
  ASSERT_OK_AND_ASSIGN(Generated g, Run({{"path", "charts/web"}, {"helm", Json::object()}}));
  EXPECT_NE(Find(g, "ConfigMap", "from-lib"), nullptr);
  EXPECT_FALSE(fs::exists(fs::path(repo_) / "charts/web/charts"));  // the checkout is untouched
  EXPECT_THAT(g.reads, Contains("charts/lib"));

  Write("charts/web/Chart.yaml",
        "apiVersion: v2\nname: web\nversion: 0.1.0\ndependencies:\n"
        "- {name: lib, version: 0.1.0, repository: \"file://../../../elsewhere\"}\n");
  EXPECT_THAT(Run({{"path", "charts/web"}}).status(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("charts/web/Chart.yaml: dependency lib"),
                             HasSubstr("leaves the repository"))));
  // A dependency directory that is a symlink out of the repository.
  fs::create_directories(fs::path(dir_) / "elsewhere-chart/templates");
  std::ofstream(fs::path(dir_) / "elsewhere-chart/Chart.yaml")
      << "apiVersion: v2\nname: lib\nversion: 0.1.0\n";
  fs::create_directory_symlink(fs::path(dir_) / "elsewhere-chart",
                               fs::path(repo_) / "charts/linked");
  Write("charts/web/Chart.yaml",
        "apiVersion: v2\nname: web\nversion: 0.1.0\ndependencies:\n"
        "- {name: lib, version: 0.1.0, repository: \"file://../linked\"}\n");
  EXPECT_THAT(Run({{"path", "charts/web"}}).status(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("file://../linked resolves outside the repository")));
  Write("charts/web/Chart.yaml",
        "apiVersion: v2\nname: web\nversion: 0.1.0\ndependencies:\n"
        "- {name: redis, version: 1.0.0, repository: \"https://charts.example.com\"}\n");
  EXPECT_THAT(Run({{"path", "charts/web"}}).status(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("dependency redis is not vendored"),
                             HasSubstr("https://charts.example.com is not allowed"))));
}

TEST_F(GenerateTest, HelmValueFilesStayInTheRepository) {
  WriteChart("charts/web");
  EXPECT_THAT(Run({{"path", "charts/web"}, {"helm", {{"valueFiles", {"../../../../etc/passwd"}}}}})
                  .status(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("spec.source.helm.valueFiles: path ../../../../etc/passwd leaves "
                                 "the repository")));
  std::ofstream(fs::path(dir_) / "outside.yaml") << "replicas: 9\n";
  fs::create_symlink(fs::path(dir_) / "outside.yaml", fs::path(repo_) / "charts/web/link.yaml");
  EXPECT_THAT(Run({{"path", "charts/web"}, {"helm", {{"valueFiles", {"link.yaml"}}}}}).status(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("link.yaml resolves outside the repository")));
  EXPECT_THAT(Run({{"path", "charts/web"}, {"helm", {{"valueFiles", {"missing.yaml"}}}}}).status(),
              StatusIs(absl::StatusCode::kNotFound,
                       HasSubstr("spec.source.helm.valueFiles: charts/web/missing.yaml does not "
                                 "exist")));
  EXPECT_OK(Run({{"path", "charts/web"},
                 {"helm", {{"valueFiles", {"missing.yaml"}}, {"ignoreMissingValueFiles", true}}}})
                .status());
  Write("charts/web/not-yaml.yaml", "replicas: [\n");
  EXPECT_THAT(Run({{"path", "charts/web"}, {"helm", {{"valueFiles", {"not-yaml.yaml"}}}}}).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("helm template")));
}

TEST_F(GenerateTest, HelmTemplateErrorsNameTheTemplate) {
  WriteChart("charts/web");
  Write("charts/web/templates/broken.yaml", "value: {{ .Values.missing.deeper }}\n");
  absl::Status s = Run({{"path", "charts/web"}}).status();
  EXPECT_THAT(s, StatusIs(absl::StatusCode::kInvalidArgument,
                          AllOf(HasSubstr("helm template"), HasSubstr("templates/broken.yaml"))));
  EXPECT_THAT(std::string(s.message()), Not(HasSubstr(dir_)));
}

TEST_F(GenerateTest, ToolsAreStoppedAtTheirOutputCapAndTimeout) {
  WriteChart("charts/web");
  Write(
      "charts/web/templates/flood.yaml",
      "{{- range until 400000 }}\n# {{ . }} padding padding padding padding padding\n{{- end }}\n");
  tools_.max_output = 1 << 20;
  EXPECT_THAT(Run({{"path", "charts/web"}}).status(),
              StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("helm template")));
  tools_.max_output = 100ull << 20;
  tools_.timeout = absl::Milliseconds(1);
  EXPECT_THAT(Run({{"path", "charts/web"}}).status(),
              StatusIs(absl::StatusCode::kDeadlineExceeded, HasSubstr("helm template")));
}

TEST_F(GenerateTest, HelmHooksWithGenerateNameAreAccepted) {
  WriteChart("charts/web");
  Write("charts/web/templates/migrate.yaml", R"(apiVersion: batch/v1
kind: Job
metadata:
  generateName: migrate-
  annotations: {"helm.sh/hook": pre-install}
spec:
  template:
    spec:
      restartPolicy: Never
      containers: [{name: m, image: busybox}]
)");
  ASSERT_OK_AND_ASSIGN(Generated g, Run({{"path", "charts/web"}}));
  bool saw = false;
  for (const RenderedObject& o : g.objects) {
    saw = saw || o.object["metadata"].value("generateName", "") == "migrate-";
  }
  EXPECT_TRUE(saw);
  Write("charts/web/templates/migrate.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {generateName: cm-}\n");
  EXPECT_THAT(Run({{"path", "charts/web"}}).status(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("metadata.generateName is only supported on hooks")));
}

TEST_F(GenerateTest, SubstitutionAndDuplicatesApplyToEveryGenerator) {
  WriteBase();
  Write("apps/vars/kustomization.yaml", "resources: [cm.yaml]\n");
  Write("apps/vars/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: vars}\n"
        "data: {cluster: \"${CLUSTER}\", region: \"${REGION:=eu}\"}\n");
  ASSERT_OK_AND_ASSIGN(Generated g,
                       Run({{"path", "apps/vars"}, {"substitute", {{"CLUSTER", "prod"}}}}));
  const Json* cm = Find(g, "ConfigMap", "vars");
  ASSERT_NE(cm, nullptr);
  EXPECT_EQ((*cm)["data"]["cluster"], "prod");
  EXPECT_EQ((*cm)["data"]["region"], "eu");
  // Unset without a default: "" like Flux, or an error naming variable and object when strict.
  ASSERT_OK_AND_ASSIGN(Generated lenient,
                       Run({{"path", "apps/vars"}, {"substitute", {{"X", "1"}}}}));
  // As in Flux, substitution runs on the YAML text: `cluster: ${CLUSTER}` becomes `cluster: `.
  EXPECT_TRUE((*Find(lenient, "ConfigMap", "vars"))["data"]["cluster"].is_null());
  EXPECT_THAT(Run({{"path", "apps/vars"}, {"substitute", {{"X", "1"}}}, {"substituteStrict", true}})
                  .status(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("ConfigMap vars"), HasSubstr("${CLUSTER} is not set"))));
  WriteChart("charts/web");
  Write("charts/web/templates/dup.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: {{ .Release.Name }}-config, "
        "namespace: {{ .Release.Namespace }}}\n");
  EXPECT_THAT(Run({{"path", "charts/web"}}).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("is also defined at")));
}

TEST_F(GenerateTest, DirectoryStaysTheDefault) {
  WriteBase();
  ASSERT_OK_AND_ASSIGN(Generated g, Run({{"path", "unrelated"}}));
  EXPECT_EQ(g.generator, "directory");
  ASSERT_EQ(g.objects.size(), 1u);
  EXPECT_EQ(g.objects[0].location.file, "unrelated/x.yaml");
  EXPECT_THAT(g.reads, ElementsAre("unrelated"));
  EXPECT_THAT(Run({{"path", "nope"}}).status(),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("path \"nope\" not found")));
}

// A Helm repository on 127.0.0.1 (`helm package` + `helm repo index`, served over HTTP).
class HelmRepository {
 public:
  explicit HelmRepository(const std::string& dir) : dir_(dir) {
    server_.set_mount_point("/", dir_);
    port_ = server_.bind_to_any_port("127.0.0.1");
    // Bound already: connections queue in the backlog until the thread accepts them.
    thread_ = std::thread([this] { server_.listen_after_bind(); });
  }
  ~HelmRepository() {
    server_.stop();
    thread_.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

 private:
  std::string dir_;
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
};

TEST_F(GenerateTest, ChartsFromAHelmRepositoryNeedTheProjectsPermission) {
  WriteChart("src/web");
  const std::string charts = dir_ + "/helm-repo";
  fs::create_directories(charts);
  auto helm = [&](std::vector<std::string> args) {
    args.insert(args.begin(), tools_.helm);
    absl::StatusOr<process::RunResult> r =
        process::Run({.argv = args, .env = process::ScrubbedEnv({"HOME=" + dir_})});
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_EQ(r->exit_code, 0) << r->err;
  };
  helm({"package", repo_ + "/src/web", "--destination", charts});
  Write("src/web/Chart.yaml", "apiVersion: v2\nname: web\nversion: 0.2.0\n");
  Write("src/web/values.yaml", "replicas: 7\ncolor: red\nimage: nginx:1.27\n");
  helm({"package", repo_ + "/src/web", "--destination", charts});
  HelmRepository server(charts);
  helm({"repo", "index", charts, "--url", server.url()});

  const Json source = {
      {"helm", {{"chart", {{"repoURL", server.url()}, {"name", "web"}, {"version", "~0.1.0"}}}}}};
  ASSERT_OK_AND_ASSIGN(Generated g, Run(source, [](std::string_view) { return true; }));
  EXPECT_TRUE(g.remote);  // not cached: the repository may change under the same commit
  EXPECT_EQ((*Find(g, "Deployment", "web"))["spec"]["replicas"], 1);  // 0.1.0, not 0.2.0
  ASSERT_OK_AND_ASSIGN(Generated latest,
                       Run({{"helm", {{"chart", {{"repoURL", server.url()}, {"name", "web"}}}}}},
                           [](std::string_view) { return true; }));
  EXPECT_EQ((*Find(latest, "Deployment", "web"))["spec"]["replicas"], 7);
  EXPECT_THAT(Run(source).status(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("spec.source.helm.chart: repository " + server.url()),
                             HasSubstr("is not allowed"))));
  EXPECT_THAT(Run({{"helm", {{"chart", {{"repoURL", server.url()}, {"name", "nope"}}}}}},
                  [](std::string_view) { return true; })
                  .status(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("spec.source.helm.chart"), HasSubstr("nope"))));
  // An unreachable repository may come back: transient.
  EXPECT_THAT(Run({{"helm", {{"chart", {{"repoURL", "http://127.0.0.1:1"}, {"name", "web"}}}}}},
                  [](std::string_view) { return true; })
                  .status(),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("spec.source.helm.chart")));
}

TEST_F(GenerateTest, KustomizeEnableHelmInflatesALocalChart) {
  WriteChart("apps/inflate/charts/web");
  Write("apps/inflate/kustomization.yaml",
        "helmCharts:\n- {name: web, releaseName: inflated, valuesInline: {replicas: 4}}\n");
  ASSERT_OK_AND_ASSIGN(Generated g,
                       Run({{"path", "apps/inflate"}, {"kustomize", {{"enableHelm", true}}}}));
  ASSERT_NE(Find(g, "Deployment", "inflated"), nullptr);
  EXPECT_EQ((*Find(g, "Deployment", "inflated"))["spec"]["replicas"], 4);
  EXPECT_THAT(g.reads, Contains("apps/inflate/charts/web"));
  // Without enableHelm kustomize refuses the helmCharts field.
  EXPECT_THAT(
      Run({{"path", "apps/inflate"}}).status(),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("apps/inflate/kustomization")));
}

TEST_F(GenerateTest, MissingToolIsAClearPrecondition) {
  WriteChart("charts/web");
  tools_.helm.clear();
  EXPECT_THAT(Run({{"path", "charts/web"}}).status(),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("helm is not installed")));
}

}  // namespace
}  // namespace driftless::renderer
