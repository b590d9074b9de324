#include "services/renderer/render.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/testing/status_matchers.h"

namespace driftless::renderer {
namespace {

using ::driftless::testing::StatusIs;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::vector<std::string> Names(const std::vector<RenderedObject>& objects) {
  std::vector<std::string> out;
  for (const auto& o : objects) out.push_back(o.object["metadata"]["name"].get<std::string>());
  return out;
}

std::string Cm(const std::string& name) {
  return "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: " + name + "}\n";
}

const std::vector<SourceFile> kRepo = {
    {"README.md", "# hi"},
    {"apps/web/b.yaml", Cm("b")},
    {"apps/web/a.yml", Cm("a") + "---\n" + Cm("a2")},
    {"apps/web/list.json", R"({"apiVersion":"v1","kind":"List","items":[)"
                           R"({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"j"}}]})"},
    {"apps/web/notes.txt", "not yaml: ["},
    {"apps/web/.hidden.yaml", Cm("hidden")},
    {"apps/web/sub/c.yaml", Cm("c")},
    {"apps/web/test/t.yaml", Cm("t")},
    {"apps/webby/x.yaml", Cm("x")},
};

TEST(SourceSpec, DirectoryOptionsAndVariablesFromTheApplicationSource) {
  manifest::Json source = {{"directory", {{"recurse", true}, {"include", "*.yaml"}}},
                           {"substitute", {{"CLUSTER", "prod"}}}};
  DirectoryOptions dir = DirectoryOptionsOf(source);
  EXPECT_TRUE(dir.recurse);
  EXPECT_EQ(dir.include, "*.yaml");
  EXPECT_EQ(dir.exclude, "");
  EXPECT_EQ(VariablesOf(source), (Variables{{"CLUSTER", "prod"}}));
  EXPECT_FALSE(DirectoryOptionsOf(manifest::Json::object()).recurse);
  EXPECT_TRUE(VariablesOf(manifest::Json::object()).empty());
}

TEST(RenderDirectory, TopLevelOnlyByDefaultInPathOrder) {
  ASSERT_OK_AND_ASSIGN(auto out, RenderDirectory(kRepo, "apps/web", {}, {}));
  EXPECT_THAT(Names(out), ElementsAre("a", "a2", "b", "j"));
  EXPECT_EQ(out[1].location.file, "apps/web/a.yml");
  EXPECT_EQ(out[1].location.document, 1);
}

TEST(RenderDirectory, RecurseIncludeExclude) {
  ASSERT_OK_AND_ASSIGN(auto all, RenderDirectory(kRepo, "./apps/web/", {.recurse = true}, {}));
  EXPECT_THAT(Names(all), ElementsAre("a", "a2", "b", "j", "c", "t"));
  ASSERT_OK_AND_ASSIGN(
      auto some, RenderDirectory(kRepo, "apps/web",
                                 {.recurse = true, .include = "*.yaml", .exclude = "test/*"}, {}));
  EXPECT_THAT(Names(some), ElementsAre("b", "c"));
}

TEST(RenderDirectory, MissingPathIsNotFound) {
  EXPECT_THAT(RenderDirectory(kRepo, "apps/nope", {}, {}),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("\"apps/nope\" not found")));
}

TEST(RenderDirectory, MalformedYamlNamesFileAndLine) {
  std::vector<SourceFile> repo = {{"app/ok.yaml", Cm("ok")},
                                  {"app/bad.yaml", Cm("x") + "---\nkind: [\n"}};
  EXPECT_THAT(
      RenderDirectory(repo, "app", {}, {}),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("app/bad.yaml: document 1, line")));
}

TEST(RenderDirectory, MissingFieldsAndGenerateName) {
  EXPECT_THAT(RenderDirectory({{"a/x.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n"}},
                              "a", {}, {}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("a/x.yaml (document 0, line 1)"),
                             HasSubstr("ConfigMap: missing metadata.name"))));
  EXPECT_THAT(RenderDirectory({{"a/x.yaml",
                                "apiVersion: batch/v1\nkind: Job\nmetadata: "
                                "{generateName: j-}\n"}},
                              "a", {}, {}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("generateName")));
  EXPECT_THAT(
      RenderDirectory({{"a/x.yaml", "kind: ConfigMap\nmetadata: {name: a}\n"}}, "a", {}, {}),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("missing apiVersion")));
}

TEST(RenderDirectory, DuplicateObjectNamesBothPlaces) {
  std::vector<SourceFile> repo = {{"a/1.yaml", Cm("same")}, {"a/2.yaml", Cm("same")}};
  EXPECT_THAT(RenderDirectory(repo, "a", {}, {}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("a/2.yaml"), HasSubstr("also defined at a/1.yaml"))));
}

TEST(RenderDirectory, SubstitutesVariables) {
  std::vector<SourceFile> repo = {
      {"a/x.yaml",
       "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: \"cm-${CLUSTER}\"}\n"
       "data: {region: \"${REGION:=eu}\"}\n"}};
  ASSERT_OK_AND_ASSIGN(auto out, RenderDirectory(repo, "a", {}, {{"CLUSTER", "prod"}}));
  EXPECT_EQ(out[0].object["metadata"]["name"], "cm-prod");
  EXPECT_EQ(out[0].object["data"]["region"], "eu");
  EXPECT_THAT(RenderDirectory(repo, "a", {}, {{"OTHER", "x"}}, /*strict_substitution=*/true),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("a/x.yaml"), HasSubstr("${CLUSTER} is not set"))));
  // Like Flux: an unset variable without a default becomes "".
  ASSERT_OK_AND_ASSIGN(auto lenient, RenderDirectory(repo, "a", {}, {{"OTHER", "x"}}));
  EXPECT_EQ(lenient[0].object["metadata"]["name"], "cm-");
}

}  // namespace
}  // namespace driftless::renderer
