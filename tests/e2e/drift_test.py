"""Drift and self-heal end to end (the sync-engine issue): the planner's live cache sees a
`kubectl edit`, `kubectl scale` or `kubectl delete` of a managed object as it happens, the
application turns OutOfSync naming the object and field, app.drifted is broadcast, and with
selfHeal the desired state is restored through a new desired generation. Real kubectl is the
second observer.

    python3 tests/e2e/drift_test.py [DriftTest[.test_name]]
"""

import json
import pathlib
import sys
import time
import unittest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import harness as h  # noqa: E402
from delivery_test import deployment  # noqa: E402
from pipeline_test import E2EBase, syncs_of  # noqa: E402


def drifted_events(bodies, app):
    return [b for b in bodies if b.get("type") == "app.drifted" and b.get("application") == app]


class DriftTest(E2EBase):
    def replicas(self, ns, name):
        r = self.platform.kubectl("get", "deployment", name, "-n", ns, "-o", "json", check=False)
        if r.returncode != 0:
            return None
        return json.loads(r.stdout)["spec"].get("replicas")

    def synced(self, app):
        return self.wait_app(app, lambda a: a["status"].get("sync") == "Synced", "Synced")

    def test_kubectl_scale_is_reverted_and_reported(self):
        repo = self.new_repo("repo-scale")
        repo.write("web.yaml", deployment("web"))
        repo.commit("web at 1 replica")
        self.platform.apply(h.application("scale", repo.url, ".", "scale"))
        h.wait_for("deployment scale/web", lambda: self.replicas("scale", "web") == 1)
        self.synced("scale")
        syncs_before = len(syncs_of(self.receiver.bodies, "scale"))

        self.platform.kubectl("scale", "deployment", "web", "-n", "scale", "--replicas=5")
        started = time.monotonic()
        h.wait_for("replicas restored to 1", lambda: self.replicas("scale", "web") == 1,
                   timeout=30, interval=0.05)
        restored_in = time.monotonic() - started
        drifted = self.receiver.wait("app.drifted of scale",
                                     lambda b: drifted_events(b, "scale"))
        self.assertIn("apps/v1 Deployment scale/web (/spec/replicas)", drifted[0]["message"])
        # Restored by a sync of its own (a new desired generation), then Synced again.
        self.receiver.wait("a heal sync", lambda b: len(syncs_of(b, "scale")) > syncs_before)
        app = self.synced("scale")
        self.assertNotIn("drifted", json.dumps(app["status"].get("resources", [])))
        # The history says why that sync ran.
        healed = h.wait_for("the heal in the history", lambda: (
            lambda e: e[0] if e and "self-healing" in e[0]["reason"] else None)(
                self.history("scale")))
        self.assertIn("(/spec/replicas)", healed["reason"])
        self.assertEqual(healed["initiatedBy"], "automated")
        self.assertLess(restored_in, 10, "self-heal took too long")

    def test_kubectl_delete_is_recreated(self):
        repo = self.new_repo("repo-del")
        repo.write("c.yaml", h.configmap("keep", data={"v": "git"}))
        repo.commit("keep")
        self.platform.apply(h.application("recreate", repo.url, ".", "recreate"))
        self.wait_configmap("recreate", "keep", lambda d: d == {"v": "git"})
        self.synced("recreate")
        self.platform.kubectl("delete", "configmap", "keep", "-n", "recreate")
        self.wait_configmap("recreate", "keep", lambda d: d == {"v": "git"}, timeout=30)
        drifted = self.receiver.wait("app.drifted of recreate",
                                     lambda b: drifted_events(b, "recreate"))
        self.assertIn("v1 ConfigMap recreate/keep (deleted)", drifted[0]["message"])
        self.synced("recreate")

    def test_without_self_heal_drift_is_reported_and_left_alone(self):
        repo = self.new_repo("repo-report")
        repo.write("c.yaml", h.configmap("settings", data={"level": "info"}))
        repo.commit("settings")
        self.platform.apply(h.application("report", repo.url, ".", "report", self_heal=False))
        self.wait_configmap("report", "settings", lambda d: d == {"level": "info"})
        self.synced("report")

        self.platform.kubectl("patch", "configmap", "settings", "-n", "report", "--type",
                              "merge", "-p", '{"data":{"level":"debug"}}')
        app = self.wait_app("report", lambda a: a["status"].get("sync") == "OutOfSync",
                            "OutOfSync after the edit", timeout=10)
        self.assertIn("v1 ConfigMap report/settings (/data/level)", app["status"]["message"])
        resources = {r["ref"]["name"]: r for r in app["status"]["resources"]}
        self.assertEqual(resources["settings"]["message"], "drifted: /data/level")
        self.receiver.wait("app.drifted of report", lambda b: drifted_events(b, "report"))
        # Not corrected: a second check (a watch event of another kind) still sees the edit.
        self.platform.kubectl("annotate", "configmap", "settings", "-n", "report", "note=x")
        h.wait_for("the annotate to be seen",
                   lambda: "note" in json.loads(self.platform.kubectl(
                       "get", "configmap", "settings", "-n", "report", "-o", "json").stdout)
                   ["metadata"].get("annotations", {}))
        self.assertEqual(self.platform.configmap_data("report", "settings"), {"level": "debug"})

        # Reverted by hand: Synced again, without a sync.
        self.platform.kubectl("patch", "configmap", "settings", "-n", "report", "--type",
                              "merge", "-p", '{"data":{"level":"info"}}')
        app = self.synced("report")
        self.assertNotIn("drifted", json.dumps(app["status"].get("resources", [])))

    def test_force_conflicts_false_reports_the_conflict_instead_of_taking_the_field(self):
        repo = self.new_repo("repo-noforce")
        repo.write("c.yaml", h.configmap("owned", data={"v": "git"}))
        repo.commit("owned")
        doc = h.application("noforce", repo.url, ".", "noforce").replace(
            "syncOptions: [CreateNamespace=true]",
            "syncOptions: [CreateNamespace=true, ForceConflicts=false]")
        self.assertIn("ForceConflicts=false", doc)
        self.platform.apply(doc)
        self.wait_configmap("noforce", "owned", lambda d: d == {"v": "git"})
        self.synced("noforce")
        self.platform.kubectl("patch", "configmap", "owned", "-n", "noforce", "--type", "merge",
                              "-p", '{"data":{"v":"theirs"}}', "--field-manager", "someone-else")
        failed = self.receiver.wait("the heal's sync.failed", lambda b: syncs_of(
            b, "noforce", "sync.failed"))
        self.assertIn("someone-else", failed[0]["message"])
        self.assertIn(".data.v", failed[0]["message"])
        self.assertEqual(self.platform.configmap_data("noforce", "owned"), {"v": "theirs"})

    def test_app_diff_exit_codes_and_masked_secrets(self):
        repo = self.new_repo("repo-diff")
        repo.write("c.yaml", h.configmap("shown", data={"v": "git"}))
        repo.write("s.yaml", "apiVersion: v1\nkind: Secret\nmetadata: {name: token}\n"
                             "stringData: {token: s3cr3t-from-git}\n")
        repo.commit("shown + token")
        self.platform.apply(h.application("diffed", repo.url, ".", "diffed", self_heal=False))
        self.wait_configmap("diffed", "shown", lambda d: d == {"v": "git"})
        self.synced("diffed")
        same = self.platform.cli("app", "diff", "diffed", check=False)
        self.assertEqual(same.returncode, 0, same.stderr)
        self.assertEqual(same.stdout, "")

        self.platform.kubectl("patch", "configmap", "shown", "-n", "diffed", "--type", "merge",
                              "-p", '{"data":{"v":"edited"}}')
        self.platform.kubectl("patch", "secret", "token", "-n", "diffed", "--type", "merge",
                              "-p", '{"stringData":{"token":"s3cr3t-edited"}}')
        self.wait_app("diffed", lambda a: a["status"].get("sync") == "OutOfSync", "drifted")
        differs = self.platform.cli("app", "diff", "diffed", check=False)
        self.assertEqual(differs.returncode, 1, differs.stderr)
        self.assertIn("===== v1 ConfigMap diffed/shown (differs) =====", differs.stdout)
        self.assertIn("-  v: edited\n+  v: git", differs.stdout)
        self.assertIn("===== v1 Secret diffed/token (differs) =====", differs.stdout)
        for secret in ("s3cr3t", "czNjcjN0"):  # neither the value nor its base64
            self.assertNotIn(secret, differs.stdout)
        self.assertIn("2 objects differ", differs.stderr)

        unknown = self.platform.cli("app", "diff", "no-such-app", check=False)
        self.assertEqual(unknown.returncode, 2)
        self.assertIn("no-such-app", unknown.stderr)

    def test_presync_hook_and_negative_wave_find_their_namespace(self):
        repo = self.new_repo("repo-order")
        repo.write("hook.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: pre\n"
                   "  annotations: {argocd.argoproj.io/hook: PreSync}\ndata: {x: \"1\"}\n")
        repo.write("early.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: early\n"
                   "  annotations: {driftless.dev/sync-wave: \"-2\"}\ndata: {x: \"1\"}\n")
        repo.write("main.yaml", h.configmap("main", data={"x": "1"}))
        repo.commit("hook, wave -2 and wave 0 into a namespace CreateNamespace makes")
        self.platform.apply(h.application("ordered", repo.url, ".", "ordered-ns"))
        for name in ("pre", "early", "main"):
            self.wait_configmap("ordered-ns", name, lambda d: d == {"x": "1"})
        self.synced("ordered")
        ok = self.receiver.wait("sync.succeeded of ordered", lambda b: syncs_of(b, "ordered"))
        kinds = [r["ref"]["kind"] for r in ok[0]["payload"]["results"]]
        self.assertEqual(kinds[0], "Namespace", ok[0]["payload"]["results"])

    def history(self, app):
        return json.loads(self.platform.cli("app", "history", app, "-o", "json").stdout)["items"]

    def test_history_rollback_suspend_and_resume(self):
        repo = self.new_repo("repo-hist")
        repo.write("c.yaml", h.configmap("release", data={"v": "a"}))
        rev_a = repo.commit("release a")
        self.platform.apply(h.application("hist", repo.url, ".", "hist", interval="1s"))
        self.wait_configmap("hist", "release", lambda d: d == {"v": "a"})
        repo.write("c.yaml", h.configmap("release", data={"v": "b"}))
        rev_b = repo.commit("release b")
        self.wait_configmap("hist", "release", lambda d: d == {"v": "b"})
        entries = h.wait_for("two history entries",
                             lambda: (lambda e: e if len(e) >= 2 else None)(self.history("hist")))
        self.assertEqual([e["revision"] for e in entries[:2]], [rev_b, rev_a])
        self.assertTrue(all(e["succeeded"] for e in entries[:2]))
        first = entries[1]
        self.assertEqual(first["initiatedBy"], "automated")
        self.assertIn({"kind": "ConfigMap", "apiVersion": "v1", "namespace": "hist",
                       "name": "release", "action": "create", "result": "applied",
                       "message": ""}, first["objects"])
        table = self.platform.cli("app", "history", "hist").stdout
        self.assertIn(rev_b[:7], table.splitlines()[1])

        # Automated: refused without --force (the next commit would undo it).
        refused = self.platform.cli("app", "rollback", "hist", str(first["id"]), check=False)
        self.assertNotEqual(refused.returncode, 0)
        self.assertIn("--force", refused.stderr)
        missing = self.platform.cli("app", "rollback", "hist", "9999", "--force", check=False)
        self.assertNotEqual(missing.returncode, 0)
        self.assertIn("no history entry 9999", missing.stderr)

        r = self.platform.cli("app", "rollback", "hist", str(first["id"]), "--force",
                              "--reason", "b is broken")
        self.assertIn("suspended until `driftless app resume hist`", r.stderr)
        self.wait_configmap("hist", "release", lambda d: d == {"v": "a"})
        newest = h.wait_for("the rollback in the history", lambda: (
            lambda e: e[0] if e and e[0]["revision"] == rev_a and e[0]["id"] > entries[0]["id"]
            else None)(self.history("hist")))
        self.assertEqual(newest["reason"], f"rollback to {first['id']}: b is broken")
        self.assertEqual(newest["initiatedBy"], "user:cli")

        # Suspended: a new commit is planned but not applied...
        repo.write("c.yaml", h.configmap("release", data={"v": "c"}))
        rev_c = repo.commit("release c")
        self.wait_app("hist", lambda a: a["status"].get("lastAttemptedRevision") == rev_c,
                      "planned at c")
        self.assertEqual(self.platform.configmap_data("hist", "release"), {"v": "a"})
        # ...a manual sync runs once and records why, and the application stays suspended...
        self.platform.cli("app", "sync", "hist", "--reason", "hotfix c")
        self.wait_configmap("hist", "release", lambda d: d == {"v": "c"})
        hotfix = h.wait_for("the manual sync in the history", lambda: (
            lambda e: e[0] if e and e[0]["revision"] == rev_c else None)(self.history("hist")))
        self.assertEqual(hotfix["reason"], "hotfix c")
        repo.write("c.yaml", h.configmap("release", data={"v": "d"}))
        rev_d = repo.commit("release d")
        self.wait_app("hist", lambda a: a["status"].get("lastAttemptedRevision") == rev_d,
                      "planned at d")
        self.assertEqual(self.platform.configmap_data("hist", "release"), {"v": "c"})
        # ...until resumed.
        self.assertIn("resumed", self.platform.cli("app", "resume", "hist").stdout)
        self.wait_configmap("hist", "release", lambda d: d == {"v": "d"})
        self.assertIn("not suspended", self.platform.cli("app", "resume", "hist").stdout)

    def test_fields_git_does_not_set_are_not_drift(self):
        repo = self.new_repo("repo-extra")
        repo.write("c.yaml", h.configmap("extra", data={"a": "1"}))
        repo.commit("extra")
        self.platform.apply(h.application("extra", repo.url, ".", "extra"))
        self.wait_configmap("extra", "extra", lambda d: d == {"a": "1"})
        self.synced("extra")
        self.platform.kubectl("label", "configmap", "extra", "-n", "extra", "team=web")
        self.platform.kubectl("patch", "configmap", "extra", "-n", "extra", "--type", "merge",
                              "-p", '{"data":{"b":"2"}}')
        # A later real drift is reported alone: the label and key added above are not in it.
        self.platform.kubectl("patch", "configmap", "extra", "-n", "extra", "--type", "merge",
                              "-p", '{"data":{"a":"edited"}}')
        drifted = self.receiver.wait("app.drifted of extra",
                                     lambda b: drifted_events(b, "extra"))
        self.assertIn("(/data/a)", drifted[0]["message"])
        self.wait_configmap("extra", "extra", lambda d: d == {"a": "1", "b": "2"}, timeout=30)
        labels = json.loads(self.platform.kubectl(
            "get", "configmap", "extra", "-n", "extra", "-o", "json").stdout)["metadata"]["labels"]
        self.assertEqual(labels.get("team"), "web")
        self.synced("extra")


if __name__ == "__main__":
    unittest.main()
