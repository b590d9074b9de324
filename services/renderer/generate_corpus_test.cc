// Every kustomization and chart of ../shared/corpus through Generate(), against the render
// recorded beside it (RENDER-LOG.md: `kubectl kustomize` v5.5.0 and `helm template` v3.17.2):
// the objects must be equal, as canonical JSON, in the same order. Kustomizations the corpus
// records as failing must fail with an error naming the kustomization. Registered only with
// the corpus (see cmake/Driftless.cmake).
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/process/run.h"
#include "common/testing/status_matchers.h"
#include "services/renderer/generate.h"

namespace driftless::renderer {
namespace {

namespace fs = std::filesystem;
using manifest::Json;
using ::testing::AnyOf;
using ::testing::HasSubstr;

const fs::path kCorpus = DRIFTLESS_CORPUS_DIR;
const std::string kTools = DRIFTLESS_TOOLS_DIR;

std::string Slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Corpus-relative directories holding `marker` beside a kustomization (or a Chart.yaml).
std::vector<std::string> DirectoriesWith(const std::string& marker, bool chart) {
  std::vector<std::string> out;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(kCorpus, ec);
       it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (it->path().filename() != marker) continue;
    const fs::path dir = it->path().parent_path();
    const bool is_chart = fs::exists(dir / "Chart.yaml");
    if (is_chart != chart) continue;
    if (!chart && KustomizationFileIn(dir.string()).empty()) continue;
    out.push_back(dir.lexically_relative(kCorpus).generic_string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string TestName(const ::testing::TestParamInfo<std::string>& info) {
  std::string name;
  for (char c : info.param) name += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  return name;
}

// What a chart generates afresh on every run (genCA / randAlphaNum: TLS material and passwords
// in Secrets, checksums of them, random names of test hooks) is masked on both sides.
Json MaskGenerated(Json o) {
  if (!o.is_object()) return o;
  if (o.value("kind", "") == "Secret") {
    for (const char* field : {"data", "stringData"}) {
      if (!o.contains(field) || !o[field].is_object()) continue;
      for (auto it = o[field].begin(); it != o[field].end(); ++it) it.value() = "<generated>";
    }
  }
  Json& md = o["metadata"];
  if (md.contains("annotations") && md["annotations"].is_object() &&
      md["annotations"].value("helm.sh/hook", "").starts_with("test")) {
    md["name"] = "<generated>";
  }
  if (o.contains("spec") && o["spec"].is_object() && o["spec"].contains("template") &&
      o["spec"]["template"].is_object() && o["spec"]["template"].contains("metadata")) {
    Json& tmd = o["spec"]["template"]["metadata"];
    if (tmd.contains("annotations") && tmd["annotations"].is_object()) {
      for (auto it = tmd["annotations"].begin(); it != tmd["annotations"].end(); ++it) {
        if (it.key().starts_with("checksum/")) it.value() = "<generated>";
      }
    }
  }
  return o;
}

std::vector<std::string> CanonicalStream(const std::string& text, bool mask = false) {
  absl::StatusOr<std::vector<manifest::Document>> docs =
      manifest::ParseYamlDocuments(text, "expected-render.yaml");
  EXPECT_TRUE(docs.ok()) << docs.status();
  std::vector<std::string> out;
  if (!docs.ok()) return out;
  for (const manifest::Document& d : *docs) {
    if (!d.value.is_null()) {
      out.push_back(manifest::CanonicalJson(mask ? MaskGenerated(d.value) : d.value));
    }
  }
  return out;
}

// True if a recorded render holds an object that no cluster accepts (kustomize renders
// anything, e.g. the breakfast example's apiVersion-less Coffee and Pancakes).
bool HasObjectWithoutApiVersion(const std::string& text) {
  absl::StatusOr<std::vector<manifest::Document>> docs =
      manifest::ParseYamlDocuments(text, "expected-render.yaml");
  if (!docs.ok()) return false;
  for (const manifest::Document& d : *docs) {
    if (d.value.is_object() && !d.value.contains("apiVersion")) return true;
  }
  return false;
}

class CorpusRender : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/driftless-corpus-render-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    scratch_ = tmpl;
    tools_ = FindTools({.helm = kTools + "/helm", .kubectl = kTools + "/kubectl"});
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(scratch_, ec);
  }

  absl::StatusOr<Generated> Render(const Json& source) {
    return Generate({.application = "corpus",
                     .source = source,
                     .destination_namespace = "demo",
                     .checkout = kCorpus.string(),
                     .scratch = scratch_},
                    tools_);
  }

  std::string scratch_;
  Tools tools_;
};

using CorpusKustomization = CorpusRender;
using CorpusFailingKustomization = CorpusRender;
using CorpusChart = CorpusRender;

TEST_P(CorpusKustomization, EqualsKubectlKustomize) {
  const std::string expected = Slurp(kCorpus / GetParam() / "expected-render.yaml");
  if (HasObjectWithoutApiVersion(expected)) {
    // Not applicable to a cluster: refused, naming the object.
    EXPECT_THAT(
        Render({{"path", GetParam()}}).status(),
        testing::StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("missing apiVersion")));
    return;
  }
  ASSERT_OK_AND_ASSIGN(Generated g, Render({{"path", GetParam()}}));
  EXPECT_EQ(g.generator, "kustomize");
  std::vector<std::string> got;
  for (const RenderedObject& o : g.objects) got.push_back(manifest::CanonicalJson(o.object));
  EXPECT_EQ(got, CanonicalStream(expected));
  EXPECT_TRUE(g.reads.contains(GetParam())) << "the read set names the application's path";
}

TEST_P(CorpusFailingKustomization, FailsNamingTheKustomization) {
  absl::StatusOr<Generated> g = Render({{"path", GetParam()}});
  ASSERT_FALSE(g.ok()) << "the corpus records " << GetParam() << " as failing";
  EXPECT_THAT(std::string(g.status().message()),
              AnyOf(HasSubstr(GetParam() + "/kustomization"), HasSubstr(GetParam() + ":")));
  EXPECT_THAT(std::string(g.status().message()), ::testing::Not(HasSubstr(scratch_)));
}

// `helm template rel-<chart> <dir> --namespace demo --kube-version 1.32.0`, per RENDER-LOG.md.
TEST_P(CorpusChart, EqualsHelmTemplate) {
  const std::string chart = fs::path(GetParam()).filename().string();
  ASSERT_OK_AND_ASSIGN(
      Generated g,
      Render(
          {{"path", GetParam()},
           {"helm",
            {{"releaseName", "rel-" + chart}, {"namespace", "demo"}, {"kubeVersion", "1.32.0"}}}}));
  EXPECT_EQ(g.generator, "helm");
  std::vector<std::string> got;
  for (const RenderedObject& o : g.objects) {
    got.push_back(manifest::CanonicalJson(MaskGenerated(o.object)));
  }
  const std::vector<std::string> want =
      CanonicalStream(Slurp(kCorpus / GetParam() / "expected-render.yaml"), /*mask=*/true);
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i], want[i]) << "object " << i;
}

// valuesFrom as the render-inputs record supplies it and a post-render patch, against the
// tools run directly with the same inputs: `helm template ... --values <the same document>`,
// its output through `kubectl kustomize` with the same patch.
TEST_P(CorpusChart, ValuesFromAndPostRenderEqualTheToolsRunDirectly) {
  const std::string chart = fs::path(GetParam()).filename().string();
  const std::string values = "nameOverride: from-cluster\n";
  const Json helm = {
      {"releaseName", "rel-" + chart},
      {"namespace", "demo"},
      {"kubeVersion", "1.32.0"},
      {"valuesFrom", Json::array({{{"kind", "ConfigMap"}, {"name", "values"}}})},
      {"postRenderers",
       Json::array({{{"kustomize", {{"commonAnnotations", {{"post-rendered", "yes"}}}}}}})}};
  ASSERT_OK_AND_ASSIGN(Generated g, Generate({.application = "corpus",
                                              .source = {{"path", GetParam()}, {"helm", helm}},
                                              .destination_namespace = "demo",
                                              .checkout = kCorpus.string(),
                                              .scratch = scratch_,
                                              .inputs_resolved = true,
                                              .values_from = {values}},
                                             tools_));

  const fs::path direct = fs::path(scratch_) / "direct";
  fs::create_directories(direct);
  std::ofstream(direct / "values.yaml") << values;
  absl::StatusOr<process::RunResult> templated =
      process::Run({.argv = {kTools + "/helm", "template", "rel-" + chart, GetParam(),
                             "--namespace", "demo", "--kube-version", "1.32.0", "--include-crds",
                             "--values", (direct / "values.yaml").string()},
                    .cwd = kCorpus.string(),
                    .env = process::ScrubbedEnv({"HOME=" + direct.string()})});
  ASSERT_OK(templated.status());
  ASSERT_EQ(templated->exit_code, 0) << templated->err;
  std::ofstream(direct / "helm-output.yaml") << templated->out;
  std::ofstream(direct / "kustomization.yaml")
      << "resources: [helm-output.yaml]\ncommonAnnotations: {post-rendered: \"yes\"}\n";
  absl::StatusOr<process::RunResult> patched =
      process::Run({.argv = {kTools + "/kubectl", "kustomize", direct.string()},
                    .env = process::ScrubbedEnv({"HOME=" + direct.string()})});
  ASSERT_OK(patched.status());
  ASSERT_EQ(patched->exit_code, 0) << patched->err;

  std::vector<std::string> got;
  for (const RenderedObject& o : g.objects) {
    got.push_back(manifest::CanonicalJson(MaskGenerated(o.object)));
  }
  const std::vector<std::string> want = CanonicalStream(patched->out, /*mask=*/true);
  ASSERT_EQ(got.size(), want.size());
  std::sort(got.begin(), got.end());  // kustomize orders by kind either way; compare as sets
  std::vector<std::string> sorted_want = want;
  std::sort(sorted_want.begin(), sorted_want.end());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i], sorted_want[i]) << "object " << i;
  // The values took effect (names follow nameOverride).
  EXPECT_THAT(templated->out, HasSubstr("from-cluster"));
}

INSTANTIATE_TEST_SUITE_P(Corpus, CorpusKustomization,
                         ::testing::ValuesIn(DirectoriesWith("expected-render.yaml", false)),
                         TestName);
INSTANTIATE_TEST_SUITE_P(Corpus, CorpusFailingKustomization,
                         ::testing::ValuesIn(DirectoriesWith("expected-render.FAILED.txt", false)),
                         TestName);
INSTANTIATE_TEST_SUITE_P(Corpus, CorpusChart,
                         ::testing::ValuesIn(DirectoriesWith("expected-render.yaml", true)),
                         TestName);

}  // namespace
}  // namespace driftless::renderer
