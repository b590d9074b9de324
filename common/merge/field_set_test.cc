#include "common/merge/internal/field_set.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/testing/status_matchers.h"

namespace driftless::merge::internal {
namespace {

using ::driftless::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using Json = nlohmann::json;

FieldSet Parse(const char* text) {
  absl::StatusOr<FieldSet> s = FieldSet::FromFieldsV1(Json::parse(text));
  EXPECT_TRUE(s.ok()) << s.status();
  return s.ok() ? *s : FieldSet{};
}

TEST(FieldSetTest, RoundTripsFieldsV1WithDotMembers) {
  const char* text = R"({"f:metadata":{"f:labels":{".":{},"f:app":{}}},)"
                     R"("f:spec":{"f:containers":{"k:{\"name\":\"web\"}":{".":{},"f:image":{}}}}})";
  FieldSet s = Parse(text);
  EXPECT_EQ(s.ToFieldsV1(), Json::parse(text));
  EXPECT_TRUE(s.Has({"f:metadata", "f:labels"}));
  EXPECT_FALSE(s.Has({"f:metadata"}));
  EXPECT_TRUE(s.Has({"f:spec", "f:containers", "k:{\"name\":\"web\"}", "f:image"}));
}

TEST(FieldSetTest, MemberPathsUseKubernetesNotation) {
  FieldSet s = Parse(
      R"({"f:spec":{"f:replicas":{},"f:containers":{"k:{\"name\":\"web\",\"port\":80}":{"f:image":{}}}},)"
      R"("f:metadata":{"f:finalizers":{"v:\"a/b\"":{}}}})");
  EXPECT_THAT(s.MemberPaths(),
              ElementsAre(".metadata.finalizers[=\"a/b\"]",
                          ".spec.containers[name=\"web\",port=80].image", ".spec.replicas"));
}

TEST(FieldSetTest, SetAlgebra) {
  FieldSet a = Parse(R"({"f:a":{},"f:b":{"f:c":{},"f:d":{}}})");
  FieldSet b = Parse(R"({"f:b":{"f:c":{}},"f:e":{}})");
  EXPECT_EQ(a.Intersection(b).ToFieldsV1(), Json::parse(R"({"f:b":{"f:c":{}}})"));
  EXPECT_EQ(a.Difference(b).ToFieldsV1(), Json::parse(R"({"f:a":{},"f:b":{"f:d":{}}})"));
  FieldSet u = a;
  u.UnionWith(b);
  EXPECT_EQ(u.ToFieldsV1(), Json::parse(R"({"f:a":{},"f:b":{"f:c":{},"f:d":{}},"f:e":{}})"));
  EXPECT_TRUE(a.Difference(a).Empty());
  FieldSet whole = Parse(R"({"f:b":{}})");
  EXPECT_EQ(a.RecursiveDifference(whole).ToFieldsV1(), Json::parse(R"({"f:a":{}})"));
}

TEST(FieldSetTest, EnsureNamedFieldsAreMembersMarksParents) {
  FieldSet s = Parse(R"({"f:spec":{"f:strategy":{"f:type":{}}}})");
  FieldSet e = s.EnsureNamedFieldsAreMembers();
  EXPECT_TRUE(e.Has({"f:spec"}));
  EXPECT_TRUE(e.Has({"f:spec", "f:strategy"}));
  EXPECT_TRUE(e.Has({"f:spec", "f:strategy", "f:type"}));
}

TEST(FieldSetTest, RejectsMalformedFieldsV1) {
  EXPECT_THAT(FieldSet::FromFieldsV1(Json::parse(R"({"x:y":{}})")),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("x:y")));
  EXPECT_THAT(FieldSet::FromFieldsV1(Json::parse(R"({"f:spec":{"f:a":1}})")),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(".spec.a")));
  EXPECT_THAT(FieldSet::FromFieldsV1(Json::parse("[]")),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(FieldSetTest, EmptyObjectIsEmptySet) {
  EXPECT_TRUE(Parse("{}").Empty());
  EXPECT_EQ(Parse("{}").ToFieldsV1(), Json::object());
}

}  // namespace
}  // namespace driftless::merge::internal
