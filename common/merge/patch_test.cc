#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/merge/merge.h"
#include "common/testing/status_matchers.h"

namespace driftless::merge {
namespace {

using ::driftless::testing::StatusIs;
using ::testing::HasSubstr;

Json J(std::string_view text) { return Json::parse(text); }

// ---- RFC 7386 ---------------------------------------------------------------------------

TEST(JsonMergePatchTest, Rfc7386Examples) {
  struct Case {
    const char* target;
    const char* patch;
    const char* want;
  };
  const Case cases[] = {
      {R"({"a":"b"})", R"({"a":"c"})", R"({"a":"c"})"},
      {R"({"a":"b"})", R"({"b":"c"})", R"({"a":"b","b":"c"})"},
      {R"({"a":"b"})", R"({"a":null})", R"({})"},
      {R"({"a":"b","b":"c"})", R"({"a":null})", R"({"b":"c"})"},
      {R"({"a":["b"]})", R"({"a":"c"})", R"({"a":"c"})"},
      {R"({"a":"c"})", R"({"a":["b"]})", R"({"a":["b"]})"},
      {R"({"a":{"b":"c"}})", R"({"a":{"b":"d","c":null}})", R"({"a":{"b":"d"}})"},
      {R"({"a":[{"b":"c"}]})", R"({"a":[1]})", R"({"a":[1]})"},
      {R"(["a","b"])", R"(["c","d"])", R"(["c","d"])"},
      {R"({"a":"b"})", R"(["c"])", R"(["c"])"},
      {R"({"a":"foo"})", "null", "null"},
      {R"({"a":"foo"})", R"("bar")", R"("bar")"},
      {R"({"e":null})", R"({"a":1})", R"({"e":null,"a":1})"},
      {R"([1,2])", R"({"a":"b","c":null})", R"({"a":"b"})"},
      {R"({})", R"({"a":{"bb":{"ccc":null}}})", R"({"a":{"bb":{}}})"},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(JsonMergePatch(J(c.target), J(c.patch)), J(c.want)) << c.target << " + " << c.patch;
  }
}

TEST(JsonMergePatchTest, KubectlLabelStylePatch) {
  Json live = J(R"({"metadata":{"name":"x","labels":{"a":"1","b":"2"}},"spec":{"replicas":1}})");
  Json out = JsonMergePatch(live, J(R"({"metadata":{"labels":{"a":null,"c":"3"}}})"));
  EXPECT_EQ(out["metadata"]["labels"], J(R"({"b":"2","c":"3"})"));
  EXPECT_EQ(out["spec"], live["spec"]);
}

// ---- RFC 6902 ---------------------------------------------------------------------------

TEST(JsonPatchTest, Operations) {
  struct Case {
    const char* name;
    const char* doc;
    const char* patch;
    const char* want;
  };
  const Case cases[] = {
      {"add field", R"({"a":1})", R"([{"op":"add","path":"/b","value":2}])", R"({"a":1,"b":2})"},
      {"add replaces field", R"({"a":1})", R"([{"op":"add","path":"/a","value":2}])", R"({"a":2})"},
      {"add into list", R"({"l":[1,3]})", R"([{"op":"add","path":"/l/1","value":2}])",
       R"({"l":[1,2,3]})"},
      {"add at end", R"({"l":[1]})", R"([{"op":"add","path":"/l/-","value":2}])", R"({"l":[1,2]})"},
      {"add at length", R"({"l":[1]})", R"([{"op":"add","path":"/l/1","value":2}])",
       R"({"l":[1,2]})"},
      {"add root", R"({"a":1})", R"([{"op":"add","path":"","value":[1]}])", R"([1])"},
      {"remove field", R"({"a":1,"b":2})", R"([{"op":"remove","path":"/a"}])", R"({"b":2})"},
      {"remove item", R"({"l":[1,2,3]})", R"([{"op":"remove","path":"/l/1"}])", R"({"l":[1,3]})"},
      {"replace", R"({"spec":{"replicas":1}})",
       R"([{"op":"replace","path":"/spec/replicas","value":3}])", R"({"spec":{"replicas":3}})"},
      {"move", R"({"a":{"x":1},"b":{}})", R"([{"op":"move","from":"/a/x","path":"/b/y"}])",
       R"({"a":{},"b":{"y":1}})"},
      {"move item", R"({"l":[1,2,3]})", R"([{"op":"move","from":"/l/0","path":"/l/-"}])",
       R"({"l":[2,3,1]})"},
      {"copy", R"({"a":{"x":1}})", R"([{"op":"copy","from":"/a","path":"/b"}])",
       R"({"a":{"x":1},"b":{"x":1}})"},
      {"test passes", R"({"a":[1,{"b":"c"}]})",
       R"([{"op":"test","path":"/a/1","value":{"b":"c"}}])", R"({"a":[1,{"b":"c"}]})"},
      {"escapes", R"({"metadata":{"annotations":{}}})",
       R"([{"op":"add","path":"/metadata/annotations/example.com~1a~0b","value":"v"}])",
       R"({"metadata":{"annotations":{"example.com/a~b":"v"}}})"},
      {"sequence", R"({"a":1})",
       R"([{"op":"add","path":"/b","value":{}},{"op":"add","path":"/b/c","value":1},
           {"op":"remove","path":"/a"}])",
       R"({"b":{"c":1}})"},
  };
  for (const auto& c : cases) {
    absl::StatusOr<Json> out = JsonPatch(J(c.doc), J(c.patch));
    ASSERT_TRUE(out.ok()) << c.name << ": " << out.status();
    EXPECT_EQ(*out, J(c.want)) << c.name;
  }
}

TEST(JsonPatchTest, FailuresNameTheOperationAndPath) {
  struct Case {
    const char* name;
    const char* doc;
    const char* patch;
    const char* message;
  };
  const Case cases[] = {
      {"not a list", R"({})", R"({"op":"add"})", "list of operations"},
      {"unknown op", R"({})", R"([{"op":"frobnicate","path":"/a"}])", "unknown op"},
      {"missing path", R"({})", R"([{"op":"add","value":1}])", "missing \"path\""},
      {"missing value", R"({})", R"([{"op":"add","path":"/a"}])", "missing \"value\""},
      {"remove missing", R"({"a":1})", R"([{"op":"remove","path":"/b"}])",
       "operation 0 (remove /b)"},
      {"replace missing", R"({"a":1})",
       R"([{"op":"test","path":"/a","value":1},{"op":"replace","path":"/x/y","value":1}])",
       "operation 1 (replace /x/y)"},
      {"add without parent", R"({})", R"([{"op":"add","path":"/a/b","value":1}])",
       "parent path does not exist"},
      {"index out of range", R"({"l":[1]})", R"([{"op":"add","path":"/l/5","value":1}])",
       "out of range"},
      {"leading zero index", R"({"l":[1,2]})", R"([{"op":"remove","path":"/l/01"}])",
       "does not exist"},
      {"test fails", R"({"a":1})", R"([{"op":"test","path":"/a","value":2}])", "test failed"},
      {"move into child", R"({"a":{"b":{}}})", R"([{"op":"move","from":"/a","path":"/a/b/c"}])",
       "into itself"},
      {"copy missing", R"({})", R"([{"op":"copy","from":"/nope","path":"/a"}])",
       "\"from\" path does not exist"},
      {"bad pointer", R"({})", R"([{"op":"add","path":"a","value":1}])", "must start with '/'"},
      {"bad escape", R"({})", R"([{"op":"add","path":"/a~2","value":1}])", "bad escape"},
  };
  for (const auto& c : cases) {
    EXPECT_THAT(JsonPatch(J(c.doc), J(c.patch)),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(c.message)))
        << c.name;
  }
}

// ---- strategic merge patch --------------------------------------------------------------

Json Deployment() {
  return J(R"({"apiVersion":"apps/v1","kind":"Deployment",
    "metadata":{"name":"web","labels":{"app":"web","tier":"fe"},"finalizers":["a","b","c"]},
    "spec":{"replicas":1,
      "strategy":{"type":"RollingUpdate","rollingUpdate":{"maxSurge":1}},
      "template":{"spec":{
        "containers":[
          {"name":"web","image":"nginx:1","ports":[{"containerPort":80},{"containerPort":443}],
           "env":[{"name":"A","value":"1"}],"args":["x","y"]},
          {"name":"log","image":"fluent:1"}],
        "volumes":[{"name":"cfg","configMap":{"name":"c"}}]}}}})");
}

const Json& Containers(const Json& d) { return d["spec"]["template"]["spec"]["containers"]; }

TEST(StrategicMergePatchTest, MergesListMapsByKeyAndReplacesOtherLists) {
  ASSERT_OK_AND_ASSIGN(Json out, StrategicMergePatch(Deployment(), J(R"({"spec":{"template":
    {"spec":{"containers":[{"name":"web","image":"nginx:2","args":["z"],
      "env":[{"name":"B","value":"2"}]},{"name":"new","image":"n:1"}]}}}})")));
  const Json& c = Containers(out);
  ASSERT_EQ(c.size(), 3u);
  EXPECT_EQ(c[0]["image"], "nginx:2");
  EXPECT_EQ(c[0]["args"], J(R"(["z"])"));
  EXPECT_EQ(c[0]["env"], J(R"([{"name":"A","value":"1"},{"name":"B","value":"2"}])"));
  EXPECT_EQ(c[0]["ports"].size(), 2u);
  EXPECT_EQ(c[1]["name"], "log");
  EXPECT_EQ(c[2]["name"], "new");
}

TEST(StrategicMergePatchTest, NullDeletesAField) {
  ASSERT_OK_AND_ASSIGN(Json out,
                       StrategicMergePatch(Deployment(), J(R"({"metadata":{"labels":{"tier":null}},
                                                           "spec":{"strategy":null}})")));
  EXPECT_EQ(out["metadata"]["labels"], J(R"({"app":"web"})"));
  EXPECT_FALSE(out["spec"].contains("strategy"));
}

TEST(StrategicMergePatchTest, PatchDeleteRemovesListItemsAndMaps) {
  ASSERT_OK_AND_ASSIGN(Json out, StrategicMergePatch(Deployment(), J(R"({"spec":{"template":
    {"spec":{"containers":[{"$patch":"delete","name":"log"},
      {"name":"web","ports":[{"$patch":"delete","containerPort":443}]}]}}}})")));
  ASSERT_EQ(Containers(out).size(), 1u);
  EXPECT_EQ(Containers(out)[0]["ports"], J(R"([{"containerPort":80}])"));
  ASSERT_OK_AND_ASSIGN(Json no_strategy, StrategicMergePatch(Deployment(), J(R"(
    {"spec":{"strategy":{"$patch":"delete"}}})")));
  EXPECT_FALSE(no_strategy["spec"].contains("strategy"));
}

TEST(StrategicMergePatchTest, PatchReplaceReplacesMapsAndLists) {
  ASSERT_OK_AND_ASSIGN(Json out, StrategicMergePatch(Deployment(), J(R"(
    {"metadata":{"labels":{"$patch":"replace","only":"this"}},
     "spec":{"template":{"spec":{"containers":[{"$patch":"replace"},{"name":"solo","image":"s"}]}}}})")));
  EXPECT_EQ(out["metadata"]["labels"], J(R"({"only":"this"})"));
  EXPECT_EQ(Containers(out), J(R"([{"name":"solo","image":"s"}])"));
}

TEST(StrategicMergePatchTest, SetElementOrderReordersAndKeepsServerOnlyItems) {
  // kubectl apply: the configuration lists web then log in reverse order plus a new one.
  ASSERT_OK_AND_ASSIGN(Json out, StrategicMergePatch(Deployment(), J(R"({"spec":{"template":
    {"spec":{"$setElementOrder/containers":[{"name":"log"},{"name":"new"},{"name":"web"}],
             "containers":[{"name":"new","image":"n"}]}}}})")));
  const Json& c = Containers(out);
  ASSERT_EQ(c.size(), 3u);
  EXPECT_EQ(c[0]["name"], "log");
  EXPECT_EQ(c[1]["name"], "new");
  EXPECT_EQ(c[2]["name"], "web");
  // Items the order does not name keep their live position relative to named ones.
  ASSERT_OK_AND_ASSIGN(Json out2, StrategicMergePatch(Deployment(), J(R"({"spec":{"template":
    {"spec":{"$setElementOrder/containers":[{"name":"web"}]}}}})")));
  EXPECT_EQ(Containers(out2)[0]["name"], "web");
  EXPECT_EQ(Containers(out2)[1]["name"], "log");
  EXPECT_FALSE(out2["spec"]["template"]["spec"].contains("$setElementOrder/containers"));
  Json three = J(R"({"metadata":{"finalizers":["a","b","c"]}})");
  ASSERT_OK_AND_ASSIGN(Json out4, StrategicMergePatch(three, J(R"(
    {"metadata":{"$setElementOrder/finalizers":["b","a"]}})")));
  EXPECT_EQ(out4["metadata"]["finalizers"], J(R"(["b","a","c"])"));
  ASSERT_OK_AND_ASSIGN(Json out5, StrategicMergePatch(three, J(R"(
    {"metadata":{"$setElementOrder/finalizers":["c","b"]}})")));
  EXPECT_EQ(out5["metadata"]["finalizers"], J(R"(["a","c","b"])"));
  // Primitive lists too.
  ASSERT_OK_AND_ASSIGN(Json out3, StrategicMergePatch(Deployment(), J(R"(
    {"metadata":{"$setElementOrder/finalizers":["c","a","b"]}})")));
  EXPECT_EQ(out3["metadata"]["finalizers"], J(R"(["c","a","b"])"));
}

TEST(StrategicMergePatchTest, RetainKeysDropsUnlistedFields) {
  ASSERT_OK_AND_ASSIGN(Json out, StrategicMergePatch(Deployment(), J(R"(
    {"spec":{"strategy":{"$retainKeys":["type"],"type":"Recreate"}}})")));
  EXPECT_EQ(out["spec"]["strategy"], J(R"({"type":"Recreate"})"));
  ASSERT_OK_AND_ASSIGN(Json vol, StrategicMergePatch(Deployment(), J(R"({"spec":{"template":
    {"spec":{"volumes":[{"name":"cfg","$retainKeys":["name","secret"],
                         "secret":{"secretName":"s"}}]}}}})")));
  EXPECT_EQ(vol["spec"]["template"]["spec"]["volumes"],
            J(R"([{"name":"cfg","secret":{"secretName":"s"}}])"));
}

TEST(StrategicMergePatchTest, DeleteFromPrimitiveListAndSetUnion) {
  ASSERT_OK_AND_ASSIGN(Json out, StrategicMergePatch(Deployment(), J(R"(
    {"metadata":{"$deleteFromPrimitiveList/finalizers":["b"],"finalizers":["d","a"]}})")));
  EXPECT_EQ(out["metadata"]["finalizers"], J(R"(["a","c","d"])"));
}

TEST(StrategicMergePatchTest, KubectlClientSideApplyPatch) {
  Json live = Deployment();
  Json patch =
      J(R"({"metadata":{"annotations":{"kubectl.kubernetes.io/last-applied-configuration":"{}"}},
    "spec":{"replicas":3,"template":{"spec":{
      "$setElementOrder/containers":[{"name":"web"}],
      "containers":[{"$patch":"delete","name":"log"},
                    {"name":"web","$setElementOrder/ports":[{"containerPort":80}],
                     "ports":[{"$patch":"delete","containerPort":443}]}]}}}})");
  ASSERT_OK_AND_ASSIGN(Json out, StrategicMergePatch(live, patch));
  EXPECT_EQ(out["spec"]["replicas"], 3);
  EXPECT_EQ(out["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"],
            "{}");
  ASSERT_EQ(Containers(out).size(), 1u);
  EXPECT_EQ(Containers(out)[0]["ports"], J(R"([{"containerPort":80}])"));
  EXPECT_EQ(out.dump().find("$"), std::string::npos) << out.dump();
}

TEST(StrategicMergePatchTest, ServicePortsMergeByPort) {
  Json svc = J(R"({"apiVersion":"v1","kind":"Service","metadata":{"name":"s"},
    "spec":{"ports":[{"port":80,"targetPort":8080},{"port":443}]}})");
  ASSERT_OK_AND_ASSIGN(Json out, StrategicMergePatch(svc, J(R"(
    {"spec":{"ports":[{"port":80,"targetPort":9090}]}})")));
  EXPECT_EQ(out["spec"]["ports"], J(R"([{"port":80,"targetPort":9090},{"port":443}])"));
}

TEST(StrategicMergePatchTest, Errors) {
  EXPECT_THAT(StrategicMergePatch(Deployment(), J("[]")),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(StrategicMergePatch(Deployment(), J(R"({"spec":{"template":{"spec":
                {"containers":[{"image":"x"}]}}}})")),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr(".spec.template.spec.containers[0]: does not contain declared "
                                 "merge key: name")));
  EXPECT_THAT(StrategicMergePatch(Deployment(), J(R"({"spec":{"$patch":"explode"}})")),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(".spec")));
}

}  // namespace
}  // namespace driftless::merge
