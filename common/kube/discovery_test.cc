#include "common/kube/discovery.h"

#include <gtest/gtest.h>

#include "common/testing/status_matchers.h"

namespace driftless::kube {
namespace {

using ::driftless::testing::StatusIs;
using ::testing::ElementsAre;

TEST(AggregatedDiscoveryTest, ParsesCoreAndGroups) {
  Json apis = Json::parse(R"({
    "kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2",
    "items": [
      {"metadata": {"name": "apps"}, "versions": [
        {"version": "v1", "freshness": "Current", "resources": [
          {"resource": "deployments", "singularResource": "deployment", "scope": "Namespaced",
           "responseKind": {"group": "apps", "version": "v1", "kind": "Deployment"},
           "verbs": ["create", "get", "list", "patch", "watch"],
           "subresources": [{"subresource": "status",
                             "responseKind": {"group": "apps", "version": "v1", "kind": "Deployment"}}]}]}]},
      {"metadata": {"name": "rbac.authorization.k8s.io"}, "versions": [
        {"version": "v1", "resources": [
          {"resource": "clusterroles", "scope": "Cluster",
           "responseKind": {"group": "rbac.authorization.k8s.io", "version": "v1", "kind": "ClusterRole"}}]}]}
    ]})");
  ASSERT_TRUE(IsAggregatedDiscovery(apis));
  ASSERT_OK_AND_ASSIGN(std::vector<ResourceInfo> rs, ParseAggregatedDiscovery(apis));
  ASSERT_EQ(rs.size(), 2u);
  EXPECT_EQ(rs[0], (ResourceInfo{.group = "apps",
                                 .version = "v1",
                                 .kind = "Deployment",
                                 .resource = "deployments",
                                 .namespaced = true,
                                 .verbs = {"create", "get", "list", "patch", "watch"}}));
  EXPECT_EQ(rs[1].kind, "ClusterRole");
  EXPECT_FALSE(rs[1].namespaced);

  Json core =
      Json::parse(R"({"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2beta1",
    "items": [{"metadata": {}, "versions": [{"version": "v1", "resources": [
      {"resource": "namespaces", "scope": "Cluster", "responseKind": {"group": "", "version": "v1", "kind": "Namespace"}},
      {"resource": "configmaps", "scope": "Namespaced", "responseKind": {"group": "", "version": "v1", "kind": "ConfigMap"}}]}]}]})");
  ASSERT_OK_AND_ASSIGN(rs, ParseAggregatedDiscovery(core));
  ASSERT_EQ(rs.size(), 2u);
  EXPECT_EQ(rs[1].ApiVersion(), "v1");
  EXPECT_EQ(rs[1].resource, "configmaps");
  EXPECT_TRUE(rs[1].namespaced);
  ASSERT_NE(FindResource(rs, "v1", "Namespace"), nullptr);
  EXPECT_EQ(FindResource(rs, "v1", "Namespace")->resource, "namespaces");
  EXPECT_EQ(FindResource(rs, "apps/v1", "Namespace"), nullptr);
  EXPECT_EQ(FindResource(rs, "v1", "Pod"), nullptr);
}

TEST(AggregatedDiscoveryTest, RejectsOtherDocuments) {
  Json legacy = Json::parse(R"({"kind": "APIVersions", "versions": ["v1"]})");
  EXPECT_FALSE(IsAggregatedDiscovery(legacy));
  EXPECT_THAT(ParseAggregatedDiscovery(legacy), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(
      ParseAggregatedDiscovery(Json::parse(
          R"({"kind": "APIGroupDiscoveryList", "items": [{"metadata": {"name": "x"}, "versions": [{}]}]})")),
      StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(LegacyDiscoveryTest, GroupVersionsPreferredFirst) {
  ASSERT_OK_AND_ASSIGN(
      auto core,
      ParseLegacyGroupVersions(Json::parse(R"({"kind": "APIVersions", "versions": ["v1"]})")));
  EXPECT_THAT(core, ElementsAre("v1"));
  ASSERT_OK_AND_ASSIGN(auto groups, ParseLegacyGroupVersions(Json::parse(R"({
    "kind": "APIGroupList", "groups": [
      {"name": "apps", "versions": [{"groupVersion": "apps/v1", "version": "v1"}],
       "preferredVersion": {"groupVersion": "apps/v1", "version": "v1"}},
      {"name": "example.com", "versions": [{"groupVersion": "example.com/v1beta1"},
                                            {"groupVersion": "example.com/v1"}],
       "preferredVersion": {"groupVersion": "example.com/v1"}}]})")));
  EXPECT_THAT(groups, ElementsAre("apps/v1", "example.com/v1", "example.com/v1beta1"));
  EXPECT_THAT(ParseLegacyGroupVersions(Json::parse(R"({"kind": "Status"})")),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(LegacyDiscoveryTest, ResourceListSkipsSubresources) {
  ASSERT_OK_AND_ASSIGN(auto rs, ParseApiResourceList(Json::parse(R"({
    "kind": "APIResourceList", "groupVersion": "apps/v1", "resources": [
      {"name": "deployments", "singularName": "", "namespaced": true, "kind": "Deployment",
       "verbs": ["get", "list"]},
      {"name": "deployments/status", "namespaced": true, "kind": "Deployment"},
      {"name": "deployments/scale", "namespaced": true, "group": "autoscaling", "version": "v1",
       "kind": "Scale"}]})")));
  ASSERT_EQ(rs.size(), 1u);
  EXPECT_EQ(rs[0], (ResourceInfo{.group = "apps",
                                 .version = "v1",
                                 .kind = "Deployment",
                                 .resource = "deployments",
                                 .namespaced = true,
                                 .verbs = {"get", "list"}}));
  EXPECT_THAT(ParseApiResourceList(Json::parse(R"({"kind": "APIResourceList"})")),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace driftless::kube
