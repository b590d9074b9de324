#include "common/resources/resources.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/testing/status_matchers.h"

namespace driftless::resources {
namespace {

using ::driftless::testing::StatusIs;
using manifest::Json;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr absl::StatusCode kInvalid = absl::StatusCode::kInvalidArgument;

constexpr char kGuestbook[] = R"(
apiVersion: driftless.dev/v1alpha1
kind: Application
metadata: {name: guestbook}
spec:
  project: default
  source:
    repoURL: https://git.example.com/team/deploy.git
    ref: {branch: main}
    path: apps/guestbook
    directory: {recurse: true, include: "*.yaml", exclude: "test/*"}
    substitute: {CLUSTER: prod-eu}
  destination: {cluster: in-cluster, namespace: guestbook}
  syncPolicy:
    automated: {prune: true, selfHeal: true}
    syncOptions: [CreateNamespace=true, PruneLast=true]
    retry: {limit: 5, backoff: {duration: 5s, factor: 2, maxDuration: 3m}}
  dependsOn: [cert-manager]
  interval: 3m
  ignoreDifferences: [{kind: Deployment, jsonPointers: [/spec/replicas]}]
  notifications: [{"on": [sync.failed, health.degraded], provider: team-slack}]
)";

absl::Status ValidateYaml(std::string_view yaml) {
  auto v = manifest::ParseYaml(yaml, "t.yaml");
  if (!v.ok()) return v.status();
  return Validate(*v);
}

TEST(Validate, AcceptsTheDesignExample) { EXPECT_OK(ValidateYaml(kGuestbook)); }

TEST(Validate, AcceptsHelmWithInlineValues) {
  EXPECT_OK(ValidateYaml(R"(
apiVersion: driftless.dev/v1alpha1
kind: Application
metadata: {name: web}
spec:
  source:
    repoURL: https://charts.example.com
    helm:
      chart: {repoURL: https://charts.example.com, name: nginx, version: "^15.0.0"}
      releaseName: web
      values: {replicaCount: 2, anything: {goes: [here]}}
      valuesFrom: [{kind: Secret, name: web-values, key: values.yaml, optional: true}]
      postRenderers: [{kustomize: {patches: [{patch: "x", target: {kind: Deployment}}]}}]
  destination: {cluster: in-cluster, namespace: web}
)"));
}

TEST(Validate, AcceptsTheRenderersKustomizeAndHelmOptions) {
  EXPECT_OK(ValidateYaml(R"(
apiVersion: driftless.dev/v1alpha1
kind: Application
metadata: {name: web}
spec:
  source:
    repoURL: https://git.example.com/deploy.git
    path: apps/web
    kustomize:
      namespace: web
      labels: {team: a}
      loadRestrictor: LoadRestrictionsNone
      enableHelm: true
      components: [../components/debug]
  destination: {cluster: in-cluster, namespace: web}
)"));
  EXPECT_OK(ValidateYaml(R"(
apiVersion: driftless.dev/v1alpha1
kind: Application
metadata: {name: chart}
spec:
  source:
    repoURL: https://git.example.com/deploy.git
    path: charts/web
    helm:
      valuesObject: {replicas: 2}
      parameters: [{name: image.tag, value: "007", forceString: true}]
      crds: CreateReplace
      skipTests: true
  destination: {cluster: in-cluster, namespace: web}
)"));
  EXPECT_THAT(ValidateYaml(R"(
apiVersion: driftless.dev/v1alpha1
kind: Application
metadata: {name: chart}
spec:
  source:
    repoURL: https://git.example.com/deploy.git
    helm: {values: {a: 1}, valuesObject: {a: 2}, crds: Sometimes}
  destination: {cluster: in-cluster, namespace: web}
)"),
              StatusIs(kInvalid, AllOf(HasSubstr("spec.source.helm"), HasSubstr("valuesObject"),
                                       HasSubstr("Sometimes"))));
}

TEST(Validate, SubstituteFromNamesConfigMapsAndSecretsWithoutKeys) {
  EXPECT_OK(ValidateYaml(R"(
apiVersion: driftless.dev/v1alpha1
kind: Application
metadata: {name: web}
spec:
  source:
    repoURL: https://git.example.com/deploy.git
    substitute: {REGION: eu}
    substituteFrom: [{kind: ConfigMap, name: cluster-vars}, {kind: Secret, name: s, optional: true}]
  destination: {cluster: in-cluster, namespace: web}
)"));
  EXPECT_THAT(ValidateYaml(R"(
apiVersion: driftless.dev/v1alpha1
kind: Application
metadata: {name: web}
spec:
  source:
    repoURL: https://git.example.com/deploy.git
    substituteFrom: [{kind: Deployment, name: x, key: y}]
  destination: {cluster: in-cluster, namespace: web}
)"),
              StatusIs(kInvalid, AllOf(HasSubstr("spec.source.substituteFrom[0].kind"),
                                       HasSubstr("spec.source.substituteFrom[0].key"))));
}

TEST(Validate, UnknownFieldNamesPathAndSuggests) {
  std::string y = kGuestbook;
  y.replace(y.find("directory:"), 10, "directoy:");
  EXPECT_THAT(ValidateYaml(y),
              StatusIs(kInvalid, AllOf(HasSubstr("Application guestbook: "),
                                       HasSubstr("spec.source.directoy: unknown field (did you "
                                                 "mean \"directory\"?)"))));
}

TEST(Validate, ReportsEveryProblem) {
  EXPECT_THAT(
      ValidateYaml(R"(
apiVersion: driftless.dev/v1alpha1
kind: Application
metadata: {name: Bad_Name}
spec:
  source: {repoURL: "not a url", ref: {branch: main, tag: v1}}
  destination: {namespace: x}
  interval: soon
  syncPolicy: {syncOptions: [Frobnicate=true], automated: {prune: "yes please"}}
)"),
      StatusIs(kInvalid, AllOf(HasSubstr("metadata.name: \"Bad_Name\" is not a valid name"),
                               HasSubstr("spec.source.repoURL: \"not a url\" is not a URL"),
                               HasSubstr("spec.source.ref: exactly one of branch, tag, semver, "
                                         "commit must be set (found 2)"),
                               HasSubstr("spec.destination.cluster: required"),
                               HasSubstr("spec.interval: \"soon\" is not a duration"),
                               HasSubstr("spec.syncPolicy.syncOptions[0]: unsupported value"),
                               HasSubstr("spec.syncPolicy.automated.prune: must be a boolean, "
                                         "not string"))));
}

TEST(Validate, UnquotedOnExplainsYaml11) {
  std::string y = kGuestbook;
  y.replace(y.find("\"on\""), 4, "on");
  EXPECT_THAT(ValidateYaml(y), StatusIs(kInvalid, HasSubstr("spec.notifications[0].true: "
                                                            "unknown field; YAML 1.1")));
}

TEST(Validate, WrongApiVersionAndKind) {
  EXPECT_THAT(ValidateYaml("apiVersion: argoproj.io/v1alpha1\nkind: Application\n"
                           "metadata: {name: a}\n"),
              StatusIs(kInvalid, HasSubstr("Application a: apiVersion: must be")));
  EXPECT_THAT(ValidateYaml("apiVersion: driftless.dev/v1alpha1\nkind: Gizmo\n"
                           "metadata: {name: a}\n"),
              StatusIs(kInvalid, HasSubstr("kind: unknown kind \"Gizmo\"")));
  EXPECT_THAT(Validate(Json::array()), StatusIs(kInvalid, HasSubstr("mapping")));
}

TEST(Validate, EveryKindHasASchema) {
  for (const std::string& kind : Kinds()) {
    EXPECT_TRUE(SchemaFor(kind).is_object()) << kind;
  }
  EXPECT_TRUE(SchemaFor("Nope").is_null());
}

constexpr char kSecrets[] = R"(
apiVersion: driftless.dev/v1alpha1
kind: Repository
metadata: {name: team}
spec:
  url: https://git.example.com/team/
  auth: {username: x, password: hunter2}
---
apiVersion: driftless.dev/v1alpha1
kind: NotificationProvider
metadata: {name: team-slack}
spec: {type: slack, address: "https://hooks.slack.com/services/T/B/X", secretFile: slack.key}
)";

TEST(ParseResources, ParsesSeveralDocumentsAndLists) {
  ASSERT_OK_AND_ASSIGN(auto rs, ParseResources(kSecrets, "creds.yaml"));
  ASSERT_EQ(rs.size(), 2u);
  EXPECT_EQ(rs[0].kind, "Repository");
  EXPECT_EQ(rs[1].name, "team-slack");
  EXPECT_EQ(rs[1].location.document, 1);
  ASSERT_OK_AND_ASSIGN(auto list, ParseResources("kind: List\nitems:\n- " +
                                                     std::string("{apiVersion: driftless.dev/"
                                                                 "v1alpha1, kind: Receiver, "
                                                                 "metadata: {name: gh}, spec: "
                                                                 "{type: github}}\n"),
                                                 "list.yaml"));
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0].kind, "Receiver");
}

TEST(ParseResources, ErrorNamesFileDocumentAndLine) {
  std::string y = std::string(kSecrets) +
                  "---\napiVersion: driftless.dev/v1alpha1\n"
                  "kind: Receiver\nmetadata: {name: gh}\nspec: {typo: 1}\n";
  EXPECT_THAT(ParseResources(y, "creds.yaml"),
              StatusIs(kInvalid, AllOf(HasSubstr("creds.yaml (document 2, line"),
                                       HasSubstr("Receiver gh: spec.typo: unknown field"),
                                       HasSubstr("spec.type: required"))));
}

TEST(Secrets, RedactAndResolveFiles) {
  ASSERT_OK_AND_ASSIGN(auto rs, ParseResources(kSecrets, "creds.yaml"));
  EXPECT_THAT(SecretPointers(rs[0].object), ::testing::ElementsAre("/spec/auth/password"));
  Json redacted = Redact(rs[0].object);
  EXPECT_EQ(redacted["spec"]["auth"]["password"], "<redacted>");
  EXPECT_EQ(redacted["spec"]["auth"]["username"], "x");
  EXPECT_THAT(redacted.dump(), Not(HasSubstr("hunter2")));

  Json provider = rs[1].object;
  ASSERT_OK(
      ResolveSecretFiles(provider, [](const std::string& path) -> absl::StatusOr<std::string> {
        if (path == "slack.key") return std::string("s3cr3t");
        return absl::NotFoundError(path);
      }));
  EXPECT_EQ(provider["spec"]["secret"], "s3cr3t");
  EXPECT_FALSE(provider["spec"].contains("secretFile"));
  EXPECT_OK(Validate(provider));
  Json out = Redact(provider);
  EXPECT_THAT(out.dump(), AllOf(Not(HasSubstr("s3cr3t")), Not(HasSubstr("hooks.slack.com"))));

  Json missing = rs[1].object;
  EXPECT_THAT(ResolveSecretFiles(missing,
                                 [](const std::string& p) -> absl::StatusOr<std::string> {
                                   return absl::NotFoundError("no such file " + p);
                                 }),
              StatusIs(absl::StatusCode::kNotFound,
                       HasSubstr("NotificationProvider team-slack: spec.secretFile")));
}

}  // namespace
}  // namespace driftless::resources
