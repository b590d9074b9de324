"""The delivery contract (../shared/DESIGN.md §1) end to end over real processes: every reason
to sync runs (a branch moved back, a retry, a manual re-sync), the newest wins, waiting for
health never holds a worker, and a deleted application stays deleted.

    python3 tests/e2e/delivery_test.py [DeliveryTest[.test_name]]
"""

import json
import os
import pathlib
import signal
import subprocess
import sys
import time
import unittest
import urllib.request

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import harness as h  # noqa: E402
from pipeline_test import E2EBase, rfc3339, syncs_of  # noqa: E402


def deployment(name, namespace=None, rollout_delay_ms=None):
    annotations = ""
    if rollout_delay_ms is not None:
        annotations = ("  annotations:\n"
                       f"    emulator.driftless.dev/rollout-delay-ms: \"{rollout_delay_ms}\"\n")
    ns = f"  namespace: {namespace}\n" if namespace else ""
    return f"""apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
{ns}{annotations}spec:
  replicas: 1
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      containers: [{{name: web, image: "nginx:1.27"}}]
"""


class DeliveryTest(E2EBase):
    def emulator(self, method, path, body=None):
        url = self.platform.endpoints()["emulator"] + path
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(url, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.read()

    def dead_letters(self):
        return h.stream_messages(self.platform.endpoints()["natsMonitor"], "DRIFTLESS_DLQ")

    def test_branch_moved_back_reapplies_the_old_commit(self):
        repo = self.new_repo("repo-back")
        repo.write("apps/back/a.yaml", h.configmap("a", data={"color": "blue"}))
        first = repo.commit("A: a blue")
        self.platform.apply(h.application("back", repo.url, "apps/back", "back", interval="1s"))
        self.wait_configmap("back", "a", lambda d: d and d.get("color") == "blue")

        repo.write("apps/back/a.yaml", h.configmap("a", data={"color": "green"}))
        repo.write("apps/back/b.yaml", h.configmap("b"))
        second = repo.commit("B: a green, b added")
        self.wait_configmap("back", "b", lambda d: d is not None)
        self.wait_configmap("back", "a", lambda d: d and d.get("color") == "green")
        self.wait_app("back", lambda a: a["status"].get("lastAppliedRevision") == second,
                      "applied at B")

        # main reset back to A (what a force-push of an older commit does to the remote).
        repo.git("reset", "-q", "--hard", first)
        # Automated sync alone brings A back: same content as a sync in history, new
        # desired generation, so it runs; B-only objects are pruned.
        self.wait_configmap("back", "a", lambda d: d and d.get("color") == "blue")
        self.wait_configmap("back", "b", lambda d: d is None)
        app = self.wait_app("back", lambda a: a["status"].get("lastAppliedRevision") == first,
                            "applied at A again")
        self.assertEqual(app["status"]["sync"], "Synced", app)

    def test_failed_sync_is_retried_at_the_same_revision(self):
        repo = self.new_repo("repo-retry")
        repo.write("r.yaml", h.configmap("flaky", data={"v": "1"}))
        revision = repo.commit("flaky v1")
        # The cluster answers 500 to the first three applies of the object (every in-sync
        # attempt of the first sync), then recovers.
        self.emulator("POST", "/emulator/v1/faults",
                      {"method": "PATCH", "pathContains": "/configmaps/flaky", "code": 500,
                       "count": 3})
        try:
            self.platform.apply(h.application("retry", repo.url, ".", "retry"))
            self.wait_configmap("retry", "flaky", lambda d: d and d.get("v") == "1", timeout=60)
            self.wait_app("retry", lambda a: a["status"].get("sync") == "Synced" and
                          a["status"].get("lastAppliedRevision") == revision, "Synced")
        finally:
            self.emulator("DELETE", "/emulator/v1/faults")
        # Both attempts are on record: a failure and then a success, at the same revision.
        failed = self.receiver.wait("sync.failed of retry", lambda b: syncs_of(b, "retry",
                                                                               "sync.failed"))
        succeeded = self.receiver.wait("sync.succeeded of retry",
                                       lambda b: syncs_of(b, "retry"))
        self.assertEqual(failed[0]["revision"], revision)
        self.assertEqual(succeeded[-1]["revision"], revision)
        self.assertIn("retrying", failed[0]["message"])
        # The next attempt's time and number, for a human and for alert templates.
        self.assertEqual(failed[0]["payload"]["nextAttempt"], 2)
        self.assertGreaterEqual(rfc3339(failed[0]["payload"]["nextAttemptAt"]),
                                rfc3339(failed[0]["time"]))
        self.assertNotEqual(failed[0]["payload"]["syncId"], succeeded[-1]["payload"]["syncId"])

    def test_manual_resync_at_the_same_revision_restores_a_kubectl_edit(self):
        repo = self.new_repo("repo-resync")
        repo.write("m.yaml", h.configmap("m", data={"v": "git"}))
        repo.commit("m from git")
        self.platform.apply(h.application("resync", repo.url, ".", "resync", automated=False))
        self.platform.cli("app", "sync", "resync")
        self.wait_configmap("resync", "m", lambda d: d and d.get("v") == "git")
        self.platform.kubectl("patch", "configmap", "m", "-n", "resync", "--type", "merge",
                              "-p", '{"data":{"v":"edited"}}')
        self.assertEqual(self.platform.configmap_data("resync", "m"), {"v": "edited"})
        # Same revision, same content as the last sync: a new request still runs.
        self.platform.cli("app", "sync", "resync")
        self.wait_configmap("resync", "m", lambda d: d and d.get("v") == "git")

    def test_busy_application_coalesces_and_the_last_commit_wins(self):
        repo = self.new_repo("repo-busy")
        repo.write("apps/busy/c.yaml", h.configmap("c", data={"count": "0"}))
        repo.commit("n=0")
        self.platform.apply(h.application("busy", repo.url, "apps/busy", "busy", interval="1s"))
        self.wait_configmap("busy", "c", lambda d: d and d.get("count") == "0")
        dlq_before = self.dead_letters()
        started_before = len(syncs_of(self.receiver.bodies, "busy", "sync.started"))
        last = None
        for n in range(1, 21):  # 20 commits within about two seconds, each asked to sync
            repo.write("apps/busy/c.yaml", h.configmap("c", data={"count": str(n)}))
            last = repo.commit(f"n={n}")
            subprocess.Popen([h.CLI, "app", "sync", "busy", "--server",
                              self.platform.endpoints()["api"]],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).wait()
        self.wait_configmap("busy", "c", lambda d: d and d.get("count") == "20", timeout=90)
        self.wait_app("busy", lambda a: a["status"].get("lastAppliedRevision") == last and
                      a["status"].get("sync") == "Synced", "applied at the last commit")
        self.assertEqual(self.dead_letters(), dlq_before, "nothing is dead-lettered")
        started = syncs_of(self.receiver.bodies, "busy", "sync.started")[started_before:]
        self.assertLessEqual(len(started), 21, "no sync ran twice")
        # And the configmap stays at the newest commit (no older plan applied after it).
        self.assertEqual(self.platform.configmap_data("busy", "c"), {"count": "20"})

    def test_newer_commit_wins_over_a_slow_older_sync(self):
        repo = self.new_repo("repo-order")
        repo.write("apps/order/c.yaml", h.configmap("c", data={"v": "0"}))
        repo.commit("v0")
        self.platform.apply(h.application("order", repo.url, "apps/order", "order", interval="1s"))
        self.wait_configmap("order", "c", lambda d: d and d.get("v") == "0")
        # The next apply of c takes 1.5 s: the second commit arrives while the first runs.
        self.emulator("POST", "/emulator/v1/faults",
                      {"method": "PATCH", "pathContains": "/configmaps/c", "code": 0,
                       "count": 1, "delayMs": 1500})
        try:
            repo.write("apps/order/c.yaml", h.configmap("c", data={"v": "1"}))
            repo.commit("v1")
            self.platform.cli("app", "sync", "order")
            repo.write("apps/order/c.yaml", h.configmap("c", data={"v": "2"}))
            last = repo.commit("v2")
            self.platform.cli("app", "sync", "order")
            self.wait_configmap("order", "c", lambda d: d and d.get("v") == "2", timeout=60)
            self.wait_app("order", lambda a: a["status"].get("lastAppliedRevision") == last,
                          "applied at the newest commit")
        finally:
            self.emulator("DELETE", "/emulator/v1/faults")
        # Afterwards the older sync never shows up again, in the cluster or in the status.
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            self.assertEqual(self.platform.configmap_data("order", "c"), {"v": "2"})
            self.assertEqual(self.platform.app_json("order")["status"]["lastAppliedRevision"],
                             last)
            time.sleep(0.2)

    def test_one_never_healthy_application_does_not_stall_the_others(self):
        repo = self.new_repo("repo-fleet")
        repo.write("slow/d.yaml", deployment("stuck", rollout_delay_ms=600000))
        for i in range(30):
            repo.write(f"ok{i}/c.yaml", h.configmap("c", data={"i": str(i)}))
        repo.commit("one stuck deployment, thirty configmaps")
        self.platform.apply(h.application("stuck", repo.url, "slow", "stuck"))
        self.wait_app("stuck", lambda a: a["status"].get("sync") == "Synced", "Synced")
        started = time.monotonic()
        self.platform.apply("---\n".join(h.application(f"ok{i}", repo.url, f"ok{i}", f"ok{i}")
                                         for i in range(30)))
        for i in range(30):
            self.wait_app(f"ok{i}", lambda a: a["status"].get("sync") == "Synced" and
                          a["status"].get("health") == "Healthy", "Synced+Healthy", timeout=40)
        took = time.monotonic() - started
        self.assertLess(took, 30, "the healthy applications waited for the stuck one")
        stuck = self.platform.app_json("stuck")
        self.assertEqual(stuck["status"]["health"], "Progressing", stuck)

    def test_stopped_applier_makes_no_write_after_its_lease_ran_out(self):
        repo = self.new_repo("repo-stale")
        for i in range(8):
            repo.write(f"s{i}.yaml", h.configmap(f"s{i}", data={"v": "1"}))
        repo.commit("eight configmaps")
        # A second applier with a short lease (3 x 1 s); the supervised one is paused so that
        # the second gets the sync.
        stale = self.platform.start_replica("applier", "stale", ["--kube-timeout", "1s",
                                                                 "--workers", "1"])
        supervised = self.platform.child_pid("applier")
        os.kill(supervised, signal.SIGSTOP)
        resumed = False
        try:
            # Every apply of these objects takes 700 ms: the sync takes several seconds.
            self.emulator("POST", "/emulator/v1/faults",
                          {"method": "PATCH", "pathContains": "/configmaps/s", "code": 0,
                           "count": 1000, "delayMs": 700})
            self.platform.apply(h.application("stale", repo.url, ".", "stale"))
            self.wait_configmap("stale", "s0", lambda d: d is not None, timeout=30)
            os.kill(stale.pid, signal.SIGSTOP)  # mid-sync
            os.kill(supervised, signal.SIGCONT)
            resumed = True
            # The supervised applier gets the item back (ack wait), waits the stopped holder's
            # lease out (pending + sweep) and finishes the sync.
            self.emulator("DELETE", "/emulator/v1/faults")
            self.wait_app("stale", lambda a: a["status"].get("sync") == "Synced" and
                          a["status"].get("health") == "Healthy", "Synced by the other replica",
                          timeout=90)
            before = {n: self.platform.kubectl("get", "configmap", n, "-n", "stale", "-o",
                                               "jsonpath={.metadata.resourceVersion}").stdout
                      for n in (f"s{i}" for i in range(8))}
            status_before = self.platform.app_json("stale")["status"]
        finally:
            if not resumed:
                os.kill(supervised, signal.SIGCONT)
            self.emulator("DELETE", "/emulator/v1/faults")
            os.kill(stale.pid, signal.SIGCONT)
        log = pathlib.Path(self.root / "replica-stale" / "applier" / "log.txt")
        h.wait_for("the resumed applier to stop on its lapsed lease",
                   lambda: "stopped without further writes" in log.read_text(), timeout=30)
        # No cluster write and no status write after it resumed.
        after = {n: self.platform.kubectl("get", "configmap", n, "-n", "stale", "-o",
                                          "jsonpath={.metadata.resourceVersion}").stdout
                 for n in before}
        self.assertEqual(after, before)
        self.assertEqual(self.platform.app_json("stale")["status"].get("reconciledAt"),
                         status_before.get("reconciledAt"))

    def test_cascade_delete_stays_deleted(self):
        repo = self.new_repo("repo-gone")
        repo.write("g.yaml", h.configmap("g"))
        repo.commit("g")
        self.platform.apply(h.application("gone", repo.url, ".", "gone"))
        self.wait_configmap("gone", "g", lambda d: d is not None)
        # The cluster refuses to delete the object for a while: the application stays listed,
        # deleting, says which object holds it up, and cannot be applied again meanwhile.
        self.emulator("POST", "/emulator/v1/faults",
                      {"method": "DELETE", "pathContains": "/configmaps/g", "code": 500,
                       "count": 1000})
        try:
            self.platform.cli("app", "delete", "gone", "--cascade")
            stuck = self.wait_app("gone", lambda a: "is stuck" in a["status"].get("message", ""),
                                  "a stuck deletion")
            self.assertIn("g", stuck["status"]["message"])
            self.assertIn("deletionTimestamp", stuck["metadata"])
            self.assertIn("gone", self.platform.cli("get", "apps").stdout.split())
            again = self.platform.apply(h.application("gone", repo.url, ".", "gone"), check=False)
            self.assertNotEqual(again.returncode, 0)
            self.assertIn("is being deleted", again.stderr)
        finally:
            self.emulator("DELETE", "/emulator/v1/faults")
        # Retried once the cluster recovers (or re-driven by a second delete, when the retry
        # has not finished it yet): pruned, then gone.
        self.platform.cli("app", "delete", "gone", "--cascade", "--wait", "--timeout", "90s",
                          "--ignore-not-found")
        self.assertIsNone(self.platform.configmap_data("gone", "g"))
        self.assertNotIn("gone", self.platform.cli("get", "apps").stdout.split())
        # Late events (the prune's own results) do not bring its status back.
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            self.assertIsNone(self.platform.app_json("gone"))
            time.sleep(0.2)


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0], *sys.argv[1:]], verbosity=2)
