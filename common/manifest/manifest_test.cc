#include "common/manifest/manifest.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/testing/status_matchers.h"

namespace driftless::manifest {
namespace {

using ::driftless::testing::StatusIs;
using ::testing::HasSubstr;

Json One(std::string_view yaml) {
  auto v = ParseYaml(yaml, "test.yaml");
  EXPECT_TRUE(v.ok()) << v.status();
  return v.ok() ? *v : Json();
}

struct ScalarCase {
  const char* yaml;
  Json expected;
};

class ScalarTest : public ::testing::TestWithParam<ScalarCase> {};

TEST_P(ScalarTest, ResolvesLikeKubectl) {
  Json doc = One(std::string("v: ") + GetParam().yaml);
  EXPECT_EQ(doc["v"], GetParam().expected) << GetParam().yaml;
  EXPECT_EQ(doc["v"].type(), GetParam().expected.type()) << GetParam().yaml;
}

INSTANTIATE_TEST_SUITE_P(
    Yaml11, ScalarTest,
    ::testing::Values(ScalarCase{"hello", "hello"}, ScalarCase{"\"true\"", "true"},
                      ScalarCase{"'1'", "1"}, ScalarCase{"true", true}, ScalarCase{"False", false},
                      ScalarCase{"yes", true}, ScalarCase{"off", false}, ScalarCase{"y", true},
                      ScalarCase{"N", false}, ScalarCase{"~", nullptr}, ScalarCase{"null", nullptr},
                      ScalarCase{"", nullptr}, ScalarCase{"42", 42}, ScalarCase{"-7", -7},
                      ScalarCase{"+3", 3}, ScalarCase{"0x1F", 31}, ScalarCase{"0777", 511},
                      ScalarCase{"0o17", 15}, ScalarCase{"0b101", 5}, ScalarCase{"1_000", 1000},
                      ScalarCase{"1.5", 1.5}, ScalarCase{"1.0", 1}, ScalarCase{"1e3", 1000},
                      ScalarCase{".5", 0.5}, ScalarCase{"2001-12-14", "2001-12-14"},
                      ScalarCase{"1.2.3", "1.2.3"}, ScalarCase{"0.0.0.0/0", "0.0.0.0/0"},
                      ScalarCase{"!!str 12", "12"}, ScalarCase{"!!int \"12\"", 12},
                      ScalarCase{"-x", "-x"}, ScalarCase{"08", 8},
                      ScalarCase{"9223372036854775807", int64_t{9223372036854775807}},
                      ScalarCase{"\"caf\\u00e9\"", "caf\xC3\xA9"}));

TEST(ParseYamlDocuments, KeepsEmptyDocumentsAndLocations) {
  ASSERT_OK_AND_ASSIGN(auto docs, ParseYamlDocuments("a: 1\n---\n---\n\nkind: B\n", "f.yaml"));
  ASSERT_EQ(docs.size(), 3u);
  EXPECT_EQ(docs[0].value["a"], 1);
  EXPECT_TRUE(docs[1].value.is_null());
  EXPECT_EQ(docs[2].value["kind"], "B");
  EXPECT_EQ(docs[2].location.document, 2);
  EXPECT_EQ(docs[2].location.line, 5);
  EXPECT_EQ(docs[2].location.file, "f.yaml");
  EXPECT_EQ(docs[2].location.ToString(), "f.yaml (document 2, line 5)");
}

TEST(ParseYamlDocuments, SyntaxErrorNamesFileDocumentAndLine) {
  auto r = ParseYamlDocuments("a: 1\n---\nb: [1, 2\nc: 3\n", "apps/web.yaml");
  EXPECT_THAT(r, StatusIs(absl::StatusCode::kInvalidArgument,
                          HasSubstr("apps/web.yaml: document 1, line")));
}

TEST(ParseYamlDocuments, DuplicateKeyIsAnError) {
  auto r = ParseYamlDocuments("metadata:\n  name: a\n  name: b\n", "d.yaml");
  EXPECT_THAT(r, StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("duplicate key \"name\"")));
  EXPECT_THAT(r, StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("line 3")));
}

TEST(ParseYamlDocuments, NonScalarKeyIsAnError) {
  EXPECT_THAT(ParseYamlDocuments("? [a, b]\n: c\n", "k.yaml"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("keys must be scalars")));
}

TEST(ParseYamlDocuments, InfinityIsAnError) {
  EXPECT_THAT(ParseYamlDocuments("x: .inf\n", "k.yaml"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("line 1")));
}

TEST(ParseYamlDocuments, BadTypedScalarIsAnError) {
  EXPECT_THAT(ParseYamlDocuments("x: !!int abc\n", "k.yaml"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("as int")));
}

TEST(ParseYamlDocuments, AnchorsAliasesAndMergeKeys) {
  Json v =
      One("base: &b {image: nginx, port: 80}\n"
          "other: &o {port: 81, debug: true}\n"
          "web:\n  <<: [*b, *o]\n  port: 8080\n"
          "copy: *b\n");
  EXPECT_EQ(v["web"]["image"], "nginx");
  EXPECT_EQ(v["web"]["port"], 8080);  // explicit key wins
  EXPECT_EQ(v["web"]["debug"], true);
  EXPECT_FALSE(v["web"].contains("<<"));
  EXPECT_EQ(v["copy"], v["base"]);
}

TEST(ParseYamlDocuments, NonStringKeysBecomeTheirJsonText) {
  Json v = One("1: a\ntrue: b\nnull: c\n");
  EXPECT_EQ(v["1"], "a");
  EXPECT_EQ(v["true"], "b");
  EXPECT_EQ(v["null"], "c");
  // `on` is the boolean true in YAML 1.1, so it collides with `true`.
  EXPECT_THAT(ParseYamlDocuments("true: b\non: c\n", "k.yaml"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("duplicate key \"true\"")));
}

TEST(ParseYamlDocuments, AliasBombIsRejected) {
  std::string y = "a: &a [x, x, x, x, x, x, x, x, x, x]\n";
  char prev = 'a';
  for (char c = 'b'; c <= 'k'; ++c) {
    y += std::string(1, c) + ": &" + c + " [";
    for (int i = 0; i < 10; ++i) y += std::string(i ? ", *" : "*") + prev;
    y += "]\n";
    prev = c;
  }
  EXPECT_THAT(ParseYamlDocuments(y, "bomb.yaml"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("aliases")));
}

TEST(ParseYaml, RejectsSeveralDocuments) {
  EXPECT_THAT(ParseYaml("a: 1\n---\nb: 2\n", "x"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("several")));
  EXPECT_THAT(ParseYaml("---\n", "x"), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(ParseJson, ReportsOffset) {
  EXPECT_THAT(ParseJson("{\"a\": }", "body"), StatusIs(absl::StatusCode::kInvalidArgument,
                                                       HasSubstr("body: invalid JSON at byte")));
  ASSERT_OK_AND_ASSIGN(Json v, ParseJson("{\"b\":1,\"a\":[true,null]}", "body"));
  EXPECT_EQ(v["a"][0], true);
}

TEST(Canonical, StableAcrossKeyOrderAndFormatting) {
  Json a = One("kind: A\nmetadata: {name: x, labels: {b: '2', a: '1'}}\n");
  Json b = One("metadata:\n  labels:\n    a: \"1\"\n    b: \"2\"\n  name: x\nkind: A\n");
  EXPECT_EQ(CanonicalJson(a), CanonicalJson(b));
  EXPECT_EQ(Digest(a), Digest(b));
  EXPECT_EQ(CanonicalJson(a), R"({"kind":"A","metadata":{"labels":{"a":"1","b":"2"},"name":"x"}})");
  Json c = One("kind: A\nmetadata: {name: y}\n");
  EXPECT_NE(Digest(a), Digest(c));
}

TEST(Canonical, Sha256KnownVector) {
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(Digest(Json::object()).substr(0, 7), "sha256:");
  EXPECT_EQ(Digest(Json::object()).size(), 7u + 64u);
}

TEST(ToYaml, KubectlLayout) {
  Json v =
      One("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n"
          "spec: {containers: [{name: c, image: nginx, args: [a, b]}]}\n");
  EXPECT_EQ(ToYaml(v),
            "apiVersion: v1\n"
            "kind: Pod\n"
            "metadata:\n"
            "  name: p\n"
            "spec:\n"
            "  containers:\n"
            "  - args:\n"
            "    - a\n"
            "    - b\n"
            "    image: nginx\n"
            "    name: c\n");
}

TEST(ToYaml, QuotesStringsThatWouldChangeType) {
  Json v = {{"a", "true"},  {"b", "1.0"},         {"c", "null"},         {"d", ""},
            {"e", "yes"},   {"f", "- x"},         {"g", "a: b"},         {"h", "x #y"},
            {"on", "0777"}, {"i", "tab\there"},   {"j", "plain text"},   {"k", 1.5},
            {"l", nullptr}, {"m", Json::array()}, {"n", Json::object()}, {"o", "..."},
            {"p", "*ref"}};
  std::string y = ToYaml(v);
  EXPECT_THAT(y, HasSubstr("a: \"true\"\n"));
  EXPECT_THAT(y, HasSubstr("\"on\": \"0777\"\n"));
  EXPECT_THAT(y, HasSubstr("j: plain text\n"));
  EXPECT_THAT(y, HasSubstr("m: []\n"));
  EXPECT_THAT(y, HasSubstr("\"n\": {}\n"));  // `n` alone is false in YAML 1.1
  ASSERT_OK_AND_ASSIGN(Json back, ParseYaml(y, "roundtrip"));
  EXPECT_EQ(back, v) << y;
}

TEST(ToYaml, MultilineStringsUseLiteralBlocksAndRoundTrip) {
  for (const char* s : {"line1\nline2\n", "no trailing\nnewline", "keep\n\n\n",
                        "  leading space\nx\n", "a\n\nb\n", "x\n   \ny\n", "tab\tin\nblock\n"}) {
    Json v = {{"data", {{"script.sh", s}}}, {"list", Json::array({s, {{"k", s}}})}};
    std::string y = ToYaml(v);
    auto back = ParseYaml(y, "roundtrip");
    ASSERT_TRUE(back.ok()) << back.status() << "\n" << y;
    EXPECT_EQ(*back, v) << y;
  }
  EXPECT_THAT(ToYaml({{"s", "a\nb\n"}}), HasSubstr("s: |\n  a\n  b\n"));
}

TEST(ToYamlStream, SeparatesDocuments) {
  EXPECT_EQ(ToYamlStream({Json{{"a", 1}}, Json{{"b", 2}}}), "a: 1\n---\nb: 2\n");
}

}  // namespace
}  // namespace driftless::manifest
