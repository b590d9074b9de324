#include "common/kube/kube_paths.h"

#include <gtest/gtest.h>

#include "common/testing/status_matchers.h"

namespace driftless::kube {
namespace {

using ::driftless::testing::StatusIs;

const ResourceInfo kDeployments{.group = "apps",
                                .version = "v1",
                                .kind = "Deployment",
                                .resource = "deployments",
                                .namespaced = true};
const ResourceInfo kNamespaces{.group = "",
                               .version = "v1",
                               .kind = "Namespace",
                               .resource = "namespaces",
                               .namespaced = false};

TEST(ResourcePathTest, Table) {
  struct Case {
    ResourceInfo r;
    std::string ns, name, sub, want;
  };
  const Case cases[] = {
      {kDeployments, "ns", "web", "", "/apis/apps/v1/namespaces/ns/deployments/web"},
      {kDeployments, "", "", "", "/apis/apps/v1/deployments"},
      {kDeployments, "ns", "", "", "/apis/apps/v1/namespaces/ns/deployments"},
      {kDeployments, "ns", "web", "scale", "/apis/apps/v1/namespaces/ns/deployments/web/scale"},
      {kNamespaces, "ignored", "web", "", "/api/v1/namespaces/web"},
      {kNamespaces, "", "", "", "/api/v1/namespaces"},
      {kDeployments, "a b", "x/y", "", "/apis/apps/v1/namespaces/a%20b/deployments/x%2Fy"},
      {kDeployments, "ns", "", "status", "/apis/apps/v1/namespaces/ns/deployments"},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(ResourcePath(c.r, c.ns, c.name, c.sub), c.want) << c.want;
  }
}

TEST(GroupVersionPathTest, CoreAndNamedGroups) {
  EXPECT_EQ(GroupVersionPath("", "v1"), "/api/v1");
  EXPECT_EQ(GroupVersionPath("networking.k8s.io", "v1"), "/apis/networking.k8s.io/v1");
}

TEST(SplitApiVersionTest, GroupAndCore) {
  ASSERT_OK_AND_ASSIGN(auto core, SplitApiVersion("v1"));
  EXPECT_EQ(core, std::make_pair(std::string(), std::string("v1")));
  ASSERT_OK_AND_ASSIGN(auto apps, SplitApiVersion("apps/v1"));
  EXPECT_EQ(apps, std::make_pair(std::string("apps"), std::string("v1")));
  EXPECT_THAT(SplitApiVersion(""), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(SplitApiVersion("a/b/c"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(SplitApiVersion("/v1"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(SplitApiVersion("apps/"), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(EscapeComponentTest, KeepsUnreservedEscapesTheRest) {
  EXPECT_EQ(EscapeComponent("Az09-._~"), "Az09-._~");
  EXPECT_EQ(EscapeComponent("a=b,c!=d"), "a%3Db%2Cc%21%3Dd");
  EXPECT_EQ(EscapeComponent("k in (a, b)"), "k%20in%20%28a%2C%20b%29");
  EXPECT_EQ(EscapeComponent("é/+&?#%"), "%C3%A9%2F%2B%26%3F%23%25");
  EXPECT_EQ(EscapeComponent(""), "");
}

TEST(QueryStringTest, EscapesKeepsOrderSkipsEmpty) {
  EXPECT_EQ(QueryString({}), "");
  EXPECT_EQ(QueryString({{"a", ""}}), "");
  EXPECT_EQ(QueryString({{"labelSelector", "app=web,tier notin (db)"},
                         {"fieldSelector", ""},
                         {"limit", "500"},
                         {"continue", "eyJ2IjoibWV0YS5rOHMuaW8vdjEi+/="}}),
            "?labelSelector=app%3Dweb%2Ctier%20notin%20%28db%29&limit=500"
            "&continue=eyJ2IjoibWV0YS5rOHMuaW8vdjEi%2B%2F%3D");
}

TEST(ObjectRefTest, OfAndToString) {
  Json obj = {{"apiVersion", "apps/v1"},
              {"kind", "Deployment"},
              {"metadata", {{"name", "web"}, {"namespace", "guestbook"}}}};
  ObjectRef ref = ObjectRef::Of(obj);
  EXPECT_EQ(ref.api_version, "apps/v1");
  EXPECT_EQ(ref.name, "web");
  EXPECT_EQ(ref.ToString(), "apps/v1 Deployment guestbook/web");
  EXPECT_EQ((ObjectRef{.api_version = "v1", .kind = "Namespace", .name = "web"}).ToString(),
            "v1 Namespace web");
  EXPECT_EQ(ObjectRef::Of(Json::array()).ToString(), " ");
  EXPECT_EQ(kDeployments.ApiVersion(), "apps/v1");
  EXPECT_EQ(kNamespaces.ApiVersion(), "v1");
}

}  // namespace
}  // namespace driftless::kube
