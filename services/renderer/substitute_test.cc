#include "services/renderer/substitute.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/testing/status_matchers.h"

namespace driftless::renderer {
namespace {

using ::driftless::testing::StatusIs;
using ::testing::HasSubstr;

struct Case {
  const char* in;
  const char* out;
};

class SubstituteTextTest : public ::testing::TestWithParam<Case> {};

TEST_P(SubstituteTextTest, Expands) {
  const Variables vars{{"CLUSTER", "prod-eu"}, {"EMPTY", ""}, {"N", "3"}};
  ASSERT_OK_AND_ASSIGN(std::string got, SubstituteText(GetParam().in, vars));
  EXPECT_EQ(got, GetParam().out);
}

INSTANTIATE_TEST_SUITE_P(
    Forms, SubstituteTextTest,
    ::testing::Values(Case{"no vars", "no vars"}, Case{"${CLUSTER}", "prod-eu"},
                      Case{"a-${CLUSTER}-b", "a-prod-eu-b"}, Case{"${MISSING:=dev}", "dev"},
                      Case{"${MISSING:-dev}", "dev"}, Case{"${EMPTY:=dev}", "dev"},
                      Case{"${EMPTY=dev}", ""}, Case{"${CLUSTER:=dev}", "prod-eu"},
                      Case{"${MISSING=}", ""}, Case{"$${CLUSTER}", "${CLUSTER}"},
                      Case{"$CLUSTER", "$CLUSTER"}, Case{"$", "$"}, Case{"cost: 5$", "cost: 5$"},
                      Case{"${a.b}", "${a.b}"}, Case{"${{ github.sha }}", "${{ github.sha }}"},
                      Case{"${N}${N}", "33"}, Case{"${MISSING:=a b:c}", "a b:c"}));

TEST(SubstituteText, UnsetVariableIsEmptyUnlessStrict) {
  ASSERT_OK_AND_ASSIGN(std::string lenient, SubstituteText("region: ${REGION}", {}));
  EXPECT_EQ(lenient, "region: ");
  EXPECT_THAT(
      SubstituteText("region: ${REGION}", {}, /*strict=*/true),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("variable ${REGION} is not set")));
  EXPECT_THAT(SubstituteText("${REGION", {}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("unterminated")));
}

TEST(SubstituteObject, RetypesAndNamesObjectOnError) {
  ASSERT_OK_AND_ASSIGN(auto obj, manifest::ParseYaml("kind: Deployment\nmetadata: {name: web}\n"
                                                     "spec: {replicas: \"${N}\"}\n",
                                                     "x"));
  // The emitter writes "${N}" unquoted, so after substitution it is read as the number 3.
  ASSERT_OK_AND_ASSIGN(auto out, SubstituteObject(obj, {{"N", "3"}}));
  EXPECT_EQ(out["spec"]["replicas"], 3);
  EXPECT_THAT(SubstituteObject(obj, {}, /*strict=*/true),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("Deployment web: variable")));
}

TEST(SubstituteObject, DisabledByAnnotationOrFluxLabel) {
  for (const char* md : {"annotations: {driftless.dev/substitute: disabled}",
                         "labels: {kustomize.toolkit.fluxcd.io/substitute: disabled}"}) {
    ASSERT_OK_AND_ASSIGN(auto obj, manifest::ParseYaml(std::string("kind: ConfigMap\nmetadata: "
                                                                   "{name: c, ") +
                                                           md + "}\ndata: {x: \"${UNSET}\"}\n",
                                                       "x"));
    ASSERT_OK_AND_ASSIGN(auto out, SubstituteObject(obj, {}));
    EXPECT_EQ(out["data"]["x"], "${UNSET}");
  }
}

}  // namespace
}  // namespace driftless::renderer
