"""End to end over real processes: Kustomize and Helm applications from one git repository,
rendered by the renderer with the real `kubectl kustomize` and `helm template`, applied to the
emulator and read back with the real kubectl.

    python3 tests/e2e/render_test.py [RenderTest[.test_name]]
"""

import json
import os
import pathlib
import subprocess
import sys
import unittest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import harness as h  # noqa: E402
from pipeline_test import E2EBase  # noqa: E402

TOOLS = pathlib.Path(os.environ.get("DRIFTLESS_KUBECTL", "")).parent

DEPLOYMENT = """apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - {name: web, image: nginx:1.25}
"""

CHART_DEPLOYMENT = """apiVersion: apps/v1
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
      - {name: shop, image: {{ .Values.image | quote }}}
"""

CHART_CONFIGMAP = """apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-settings
data:
  color: {{ .Values.color | quote }}
  region: {{ .Values.region | quote }}
"""

CHART_TEST = """apiVersion: v1
kind: Pod
metadata:
  name: {{ .Release.Name }}-test
  annotations: {"helm.sh/hook": test}
spec:
  containers: [{name: t, image: busybox}]
"""


def app_doc(name, repo_url, path, namespace, source_extra, interval="2s"):
    return f"""apiVersion: driftless.dev/v1alpha1
kind: Application
metadata:
  name: {name}
spec:
  project: default
  source:
    repoURL: {repo_url}
    ref: {{branch: main}}
    path: {path}
{source_extra}  destination: {{cluster: in-cluster, namespace: {namespace}}}
  interval: {interval}
  syncPolicy:
    automated: {{prune: true, selfHeal: true}}
    syncOptions: [CreateNamespace=true]
"""


class RenderTest(E2EBase):
    def condition_message(self, app_doc_json):
        status = app_doc_json.get("status", {})
        texts = [status.get("message", "")]
        texts += [c.get("message", "") for c in status.get("conditions", [])]
        return "\n".join(texts)

    def write_repo(self, repo):
        repo.write("apps/web/base/kustomization.yaml",
                   "resources: [deployment.yaml]\n"
                   "configMapGenerator:\n- name: web-settings\n  literals: [color=blue]\n")
        repo.write("apps/web/base/deployment.yaml", DEPLOYMENT)
        repo.write("apps/web/prod/kustomization.yaml",
                   "resources: [../base]\nnamePrefix: prod-\n")
        repo.write("charts/shop/Chart.yaml", "apiVersion: v2\nname: shop\nversion: 0.1.0\n")
        repo.write("charts/shop/values.yaml",
                   "replicas: 1\nimage: nginx:1.25\ncolor: blue\nregion: none\n")
        repo.write("charts/shop/templates/deployment.yaml", CHART_DEPLOYMENT)
        repo.write("charts/shop/templates/configmap.yaml", CHART_CONFIGMAP)
        repo.write("charts/shop/templates/tests/test.yaml", CHART_TEST)
        repo.write("envs/prod/shop-values.yaml", "color: green\n")
        repo.write("docs/README.md", "nothing to deploy\n")

    def kubectl_json(self, *args):
        r = self.platform.kubectl(*args, "-o", "json", check=False)
        return json.loads(r.stdout) if r.returncode == 0 else None

    def test_kustomize_and_helm_applications_sync_and_follow_git(self):
        repo = self.new_repo("repo-render")
        self.write_repo(repo)
        first = repo.commit("kustomize and helm applications")
        self.platform.apply(app_doc(
            "kweb", repo.url, "apps/web/prod", "kweb",
            "    kustomize:\n      images: [{name: nginx, newTag: \"1.27\"}]\n"
            "      commonAnnotations: {team: web}\n"))
        self.platform.apply(app_doc(
            "hshop", repo.url, "charts/shop", "hshop",
            "    helm:\n      releaseName: shop\n"
            "      valueFiles: [../../envs/prod/shop-values.yaml]\n"
            "      values: {replicas: 2}\n"
            "      parameters: [{name: region, value: eu-west}]\n"))
        for app in ("kweb", "hshop"):
            self.platform.cli("app", "wait", app, "--synced", "--healthy", "--timeout", "120s")

        # Kustomize: the overlay, the application's inline image and annotation, and the
        # generated ConfigMap under the hashed name `kubectl kustomize` gives it.
        direct = subprocess.run([str(TOOLS / "kubectl"), "kustomize",
                                 str(repo.path / "apps/web/prod")],
                                capture_output=True, text=True, check=True).stdout
        hashed = [line.split(":", 1)[1].strip() for line in direct.splitlines()
                  if line.strip().startswith("name: prod-web-settings-")]
        self.assertEqual(len(hashed), 1, direct)
        cm = self.kubectl_json("get", "configmap", hashed[0], "-n", "kweb")
        self.assertIsNotNone(cm, f"configmap {hashed[0]} in kweb")
        self.assertEqual(cm["data"], {"color": "blue"})
        self.assertEqual(cm["metadata"]["annotations"]["driftless.dev/application"], "kweb")
        deploy = self.kubectl_json("get", "deployment", "prod-web", "-n", "kweb")
        self.assertEqual(deploy["spec"]["template"]["spec"]["containers"][0]["image"],
                         "nginx:1.27")
        self.assertEqual(deploy["metadata"]["annotations"]["team"], "web")
        app = self.platform.app_json("kweb")
        self.assertEqual(app["status"]["lastAppliedRevision"], first)
        self.assertEqual(app["status"].get("generator"), "kustomize", app["status"])

        # Helm: release name, value file, inline values and parameters in that order; the
        # chart's test hook is not applied.
        settings = self.platform.configmap_data("hshop", "shop-settings")
        self.assertEqual(settings, {"color": "green", "region": "eu-west"})
        deploy = self.kubectl_json("get", "deployment", "shop", "-n", "hshop")
        self.assertEqual(deploy["spec"]["replicas"], 2)
        self.assertIsNone(self.kubectl_json("get", "pod", "shop-test", "-n", "hshop"))
        self.assertEqual(self.platform.app_json("hshop")["status"].get("generator"), "helm")

        # A value file change in git is re-rendered and applied (the file is outside the
        # chart's path: the read set makes the commit count for hshop).
        kweb_seq = self.platform.app_json("kweb")["status"].get("desiredSeq")
        repo.write("envs/prod/shop-values.yaml", "color: purple\n")
        values_commit = repo.commit("shop: purple")
        self.wait_configmap("hshop", "shop-settings",
                            lambda d: d and d.get("color") == "purple", timeout=90)
        self.wait_app("hshop", lambda a: a["status"].get("lastAppliedRevision") == values_commit,
                      "applied at the values commit")
        # That commit touched nothing kweb reads: no new generation for it.
        self.assertEqual(self.platform.app_json("kweb")["status"].get("desiredSeq"), kweb_seq)

        # A change to the Kustomize base (outside kweb's path, inside its read set) reaches it.
        repo.write("apps/web/base/deployment.yaml", DEPLOYMENT.replace(
            "metadata: {name: web}", "metadata: {name: web, labels: {tier: front}}"))
        base_commit = repo.commit("web base: tier label")
        self.wait_app("kweb", lambda a: a["status"].get("lastAppliedRevision") == base_commit,
                      "applied at the base commit", timeout=90)
        deploy = self.kubectl_json("get", "deployment", "prod-web", "-n", "kweb")
        self.assertEqual(deploy["metadata"]["labels"].get("tier"), "front")

    def test_helm_values_from_a_configmap_of_the_cluster(self):
        repo = self.new_repo("repo-values-from")
        self.write_repo(repo)
        repo.commit("chart")
        self.platform.kubectl("create", "namespace", "hvals")
        self.platform.kubectl("create", "configmap", "shop-values", "-n", "hvals",
                              "--from-literal=values.yaml=color: red\nregion: north\n")
        self.platform.apply(app_doc(
            "hvals", repo.url, "charts/shop", "hvals",
            "    helm:\n      releaseName: shop\n"
            "      valuesFrom: [{kind: ConfigMap, name: shop-values},"
            " {kind: Secret, name: shop-secret-values, optional: true}]\n"
            "      values: {region: south}\n"))
        self.platform.cli("app", "wait", "hvals", "--synced", "--healthy", "--timeout", "120s")
        # The chart's values, then the ConfigMap's, then the inline values.
        self.assertEqual(self.platform.configmap_data("hvals", "shop-settings"),
                         {"color": "red", "region": "south"})
        # A changed ConfigMap is read afresh by a user's sync.
        self.platform.kubectl("patch", "configmap", "shop-values", "-n", "hvals", "--type=merge",
                              "-p", json.dumps({"data": {"values.yaml": "color: orange\n"}}))
        self.platform.cli("app", "sync", "hvals")
        self.wait_configmap("hvals", "shop-settings",
                            lambda d: d and d.get("color") == "orange", timeout=60)

    def test_paths_out_of_the_repository_are_a_render_error(self):
        repo = self.new_repo("repo-escape")
        self.write_repo(repo)
        repo.write("apps/escape/kustomization.yaml", "resources: [../../../../etc/passwd]\n")
        repo.commit("an escaping kustomization")
        self.platform.apply(app_doc("escape", repo.url, "apps/escape", "escape", ""))
        self.platform.apply(app_doc(
            "hsecret", repo.url, "charts/shop", "hsecret",
            "    helm:\n      valueFiles: [../../../../../etc/shadow]\n"))
        app = self.wait_app("escape", lambda a: "leaves the repository" in self.condition_message(a),
                            "reporting the escaping path")
        msg = self.condition_message(app)
        self.assertIn("application escape", msg)
        self.assertIn("apps/escape/kustomization.yaml", msg)
        self.assertIn("RenderError", json.dumps(app["status"].get("conditions", [])))
        app = self.wait_app("hsecret",
                            lambda a: "leaves the repository" in self.condition_message(a),
                            "reporting the escaping value file")
        self.assertIn("spec.source.helm.valueFiles", self.condition_message(app))
        self.assertNotIn("root:", self.condition_message(app))
        # Other applications of the same repository render on.
        self.platform.apply(app_doc("kok", repo.url, "apps/web/prod", "kok", ""))
        self.platform.cli("app", "wait", "kok", "--synced", "--healthy", "--timeout", "90s")


if __name__ == "__main__":
    unittest.main(verbosity=2)
