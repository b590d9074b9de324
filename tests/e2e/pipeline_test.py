"""End to end over real processes: `driftless up` (nats-server with JetStream, the emulator, the
six services), a real git repository, the real kubectl and a local webhook receiver.

    python3 tests/e2e/pipeline_test.py [TestClass[.test_name]]
"""

import json
import pathlib
import signal
import sys
import tempfile
import time
import unittest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import harness as h  # noqa: E402


def rfc3339(text):
    """Seconds since the epoch of a protobuf JSON timestamp ("...T10:00:00.5Z")."""
    import datetime
    base, _, frac = text.rstrip("Z").partition(".")
    t = datetime.datetime.strptime(base, "%Y-%m-%dT%H:%M:%S").replace(
        tzinfo=datetime.timezone.utc)
    return t.timestamp() + (float("0." + frac) if frac else 0.0)


def syncs_of(bodies, app, type_="sync.succeeded"):
    return [b for b in bodies if b.get("type") == type_ and b.get("application") == app]


class E2EBase(unittest.TestCase):
    """One platform per test class (a fresh state dir), torn down by pid."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="driftless-e2e-")
        cls.root = pathlib.Path(cls.tmp.name)
        cls.receiver = h.WebhookReceiver()
        cls.platform = h.Platform(cls.root / "state", [cls.receiver.url])
        try:
            cls.platform.up()
        except BaseException:
            cls.platform.close()
            cls.receiver.close()
            cls.tmp.cleanup()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.platform.close()
        cls.receiver.close()
        cls.tmp.cleanup()

    def run(self, result=None):
        # Keep the platform's logs when a test fails: they are the only record of why.
        before = len(result.failures) + len(result.errors) if result else 0
        out = super().run(result)
        if result and len(result.failures) + len(result.errors) > before:
            print(self.platform.logs_tail(40), file=sys.stderr)
        return out

    def new_repo(self, name):
        return h.GitRepo(self.root / name)

    def wait_configmap(self, ns, name, predicate, timeout=60):
        return h.wait_for(f"configmap {ns}/{name}",
                          lambda: predicate(self.platform.configmap_data(ns, name)),
                          timeout=timeout, interval=0.1)

    def wait_app(self, name, predicate, what, timeout=60):
        return h.wait_for(f"application {name} {what}",
                          lambda: (lambda a: a if a and predicate(a) else None)(
                              self.platform.app_json(name)), timeout=timeout, interval=0.1)


class PipelineTest(E2EBase):
    def test_commit_applied_notified_then_change_and_prune(self):
        repo = self.new_repo("repo-main")
        repo.write("apps/demo/a.yaml", h.configmap("a", data={"color": "blue"}))
        repo.write("apps/demo/b.yaml", h.configmap("b"))
        repo.write("apps/demo/nested/c.yaml", h.configmap("c"))  # directories recurse
        first = repo.commit("demo: a, b, c")
        self.platform.apply(h.application("demo", repo.url, "apps/demo", "demo", interval="2s",
                                          recurse=True))

        # Registered → polled → rendered → planned → applied; `app wait` reports it.
        r = self.platform.cli("app", "wait", "demo", "--synced", "--healthy", "--timeout", "90s")
        self.assertIn("demo", r.stdout)
        app = self.platform.app_json("demo")
        self.assertEqual(app["status"]["lastAppliedRevision"], first, app)

        # The real kubectl sees the objects, in the destination namespace (created), tracked.
        cm = json.loads(self.platform.kubectl("get", "configmap", "a", "-n", "demo",
                                              "--show-managed-fields", "-o",
                                              "json").stdout)
        self.assertEqual(cm["data"], {"color": "blue"})
        self.assertEqual(cm["metadata"]["annotations"]["driftless.dev/application"], "demo")
        self.assertIn("driftless", [m["manager"] for m in cm["metadata"]["managedFields"]])
        self.platform.kubectl("get", "namespace", "demo")
        self.assertIsNotNone(self.platform.configmap_data("demo", "c"))

        # The webhook receiver got sync.succeeded for that revision.
        self.receiver.wait("sync.succeeded for demo@first",
                           lambda bodies: [b for b in syncs_of(bodies, "demo")
                                           if b.get("revision") == first])
        # `driftless get apps` lists it Synced/Healthy.
        listing = self.platform.cli("get", "apps").stdout
        self.assertRegex(listing, r"demo\s+.*Synced\s+.*Healthy")

        # Second commit: change a, delete b. The automated app picks it up within its
        # interval (2s) without any trigger.
        repo.write("apps/demo/a.yaml", h.configmap("a", data={"color": "green"}))
        repo.remove("apps/demo/b.yaml")
        second = repo.commit("demo: a green, b removed")
        self.wait_configmap("demo", "a", lambda d: d and d.get("color") == "green")
        self.wait_configmap("demo", "b", lambda d: d is None)
        self.wait_app("demo", lambda a: a["status"].get("lastAppliedRevision") == second,
                      "applied at the second commit")
        self.assertIsNotNone(self.platform.configmap_data("demo", "c"))  # untouched
        self.receiver.wait("sync.succeeded for demo@second",
                           lambda bodies: [b for b in syncs_of(bodies, "demo")
                                           if b.get("revision") == second])

        # Each sync id is delivered once: the pipeline applied nothing twice.
        ids = [b["payload"]["syncId"] for b in syncs_of(self.receiver.bodies,
                                                                          "demo")]
        self.assertEqual(len(ids), len(set(ids)), ids)

    def test_manual_app_syncs_only_when_asked(self):
        repo = self.new_repo("repo-manual")
        repo.write("m.yaml", h.configmap("m", data={"v": "1"}))
        first = repo.commit("m v1")
        self.platform.apply(h.application("manual", repo.url, ".", "manual", automated=False))
        self.wait_app("manual", lambda a: a["status"].get("sync") == "OutOfSync",
                      "OutOfSync (not automated)")
        self.assertIsNone(self.platform.configmap_data("manual", "m"))
        sync_id = self.platform.cli("app", "sync", "manual").stdout.strip()
        self.assertTrue(sync_id)
        self.platform.cli("app", "wait", "manual", "--synced", "--healthy", "--timeout", "60s")
        self.assertEqual(self.platform.configmap_data("manual", "m"), {"v": "1"})
        self.assertEqual(self.platform.app_json("manual")["status"]["lastAppliedRevision"], first)
        # `app sync` refreshes to the newest commit of the ref first.
        repo.write("m.yaml", h.configmap("m", data={"v": "2"}))
        second = repo.commit("m v2")
        self.platform.cli("app", "sync", "manual")
        self.wait_configmap("manual", "m", lambda d: d and d.get("v") == "2")
        self.wait_app("manual", lambda a: a["status"].get("lastAppliedRevision") == second,
                      "applied at the second commit")


    def test_cascade_delete_then_recreate_syncs_again(self):
        repo = self.new_repo("repo-recreate")
        repo.write("r.yaml", h.configmap("r", data={"v": "1"}))
        repo.commit("r")
        doc = h.application("recreate", repo.url, ".", "recreate")
        self.platform.apply(doc)
        self.platform.cli("app", "wait", "recreate", "--synced", "--healthy", "--timeout", "60s")
        self.assertEqual(self.platform.configmap_data("recreate", "r"), {"v": "1"})
        self.platform.cli("app", "delete", "recreate", "--cascade", "--wait")
        self.assertIsNone(self.platform.configmap_data("recreate", "r"))
        # The same document again, within seconds: a new incarnation, synced from scratch
        # (not mistaken for the deleted one by any duplicate window).
        self.platform.apply(doc)
        self.platform.cli("app", "wait", "recreate", "--synced", "--healthy", "--timeout", "60s")
        self.wait_configmap("recreate", "r", lambda d: d == {"v": "1"})


class WebhookTest(E2EBase):
    """A signed GitHub push to the api's receiver is what makes the app sync (its interval is an
    hour); forged and replayed deliveries are refused."""

    def post(self, receiver, body, delivery, secret):
        import hashlib
        import hmac
        import urllib.error
        import urllib.request
        data = json.dumps(body).encode()
        signature = "sha256=" + hmac.new(secret.encode(), data, hashlib.sha256).hexdigest()
        req = urllib.request.Request(
            f"{self.platform.endpoints()['webhooks']}/{receiver}", data=data, method="POST",
            headers={"Content-Type": "application/json", "X-GitHub-Event": "push",
                     "X-GitHub-Delivery": delivery, "X-Hub-Signature-256": signature})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status
        except urllib.error.HTTPError as e:
            return e.code

    def test_signed_push_syncs_forged_and_replayed_are_refused(self):
        repo = self.new_repo("repo-hook")
        repo.write("hook.yaml", h.configmap("hook", data={"v": "1"}))
        first = repo.commit("v1")
        self.platform.apply("apiVersion: driftless.dev/v1alpha1\nkind: Receiver\n"
                            "metadata: {name: gh}\nspec: {type: github, secret: s3cret}\n")
        self.platform.apply(h.application("hooked", repo.url, ".", "hooked", interval="1h"))
        self.platform.cli("app", "wait", "hooked", "--synced", "--healthy", "--timeout", "60s")
        repo.write("hook.yaml", h.configmap("hook", data={"v": "2"}))
        second = repo.commit("v2")
        push = {"ref": "refs/heads/main", "before": first, "after": second,
                "repository": {"clone_url": repo.url, "html_url": repo.url},
                "commits": [{"id": second, "added": [], "removed": [],
                             "modified": ["hook.yaml"]}]}
        # Forged: wrong secret. Refused, and nothing moves.
        self.assertEqual(self.post("gh", push, "d-forged", "wrong"), 401)
        # Signed: accepted; the new commit is applied long before the 1h interval.
        self.assertIn(self.post("gh", push, "d-1", "s3cret"), (200, 202))
        self.wait_configmap("hooked", "hook", lambda d: d and d.get("v") == "2", timeout=30)
        self.wait_app("hooked", lambda a: a["status"].get("lastAppliedRevision") == second,
                      "applied at the pushed commit", timeout=30)
        # Replayed: the same delivery again is refused.
        self.assertEqual(self.post("gh", push, "d-1", "s3cret"), 409)


class BadInputTest(E2EBase):
    def failed_notification(self, app):
        return self.receiver.wait(f"sync.failed for {app}",
                                  lambda bodies: syncs_of(bodies, app, "sync.failed"))

    def condition_message(self, app_doc):
        status = app_doc.get("status", {})
        texts = [status.get("message", "")]
        texts += [c.get("message", "") for c in status.get("conditions", [])]
        return "\n".join(texts)

    def test_missing_repository(self):
        url = f"file://{self.root}/no-such-repo"
        self.platform.apply(h.application("norepo", url, ".", "norepo"))
        app = self.wait_app("norepo", lambda a: "no-such-repo" in self.condition_message(a),
                            "reporting the missing repository")
        self.assertIn("SourceError", json.dumps(app["status"].get("conditions", [])))
        self.failed_notification("norepo")

    def test_missing_branch(self):
        repo = self.new_repo("repo-branch")
        repo.write("x.yaml", h.configmap("x"))
        repo.commit("x")
        self.platform.apply(h.application("nobranch", repo.url, ".", "nobranch",
                                          branch="does-not-exist"))
        self.wait_app("nobranch", lambda a: "does-not-exist" in self.condition_message(a),
                      "naming the missing branch")
        self.failed_notification("nobranch")

    def test_missing_path(self):
        repo = self.new_repo("repo-path")
        repo.write("x.yaml", h.configmap("x"))
        repo.commit("x")
        self.platform.apply(h.application("nopath", repo.url, "not/here", "nopath"))
        self.wait_app("nopath", lambda a: "not/here" in self.condition_message(a),
                      "naming the missing path")
        self.failed_notification("nopath")

    def test_malformed_yaml_reports_file_and_line(self):
        repo = self.new_repo("repo-yaml")
        repo.write("good.yaml", h.configmap("good"))
        repo.write("bad.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: bad\n"
                               "data:\n  k: [unclosed\n")
        repo.commit("bad yaml")
        self.platform.apply(h.application("badyaml", repo.url, ".", "badyaml"))
        app = self.wait_app("badyaml", lambda a: "bad.yaml" in self.condition_message(a),
                            "naming the malformed file")
        self.assertRegex(self.condition_message(app), r"bad\.yaml: .*line \d+")
        self.failed_notification("badyaml")
        # Nothing of the broken revision was applied.
        self.assertIsNone(self.platform.configmap_data("badyaml", "good"))

    def test_poison_message_is_dead_lettered_and_stage_keeps_working(self):
        ep = self.platform.endpoints()
        before = h.stream_messages(ep["natsMonitor"], "DRIFTLESS_DLQ")
        h.nats_publish(ep["nats"], "driftless.work.render", b"\xff\x00 not an event")
        h.wait_for("the poison message in DRIFTLESS_DLQ",
                   lambda: h.stream_messages(ep["natsMonitor"], "DRIFTLESS_DLQ") > before)
        # The renderer still works: a good application syncs.
        repo = self.new_repo("repo-after-poison")
        repo.write("ok.yaml", h.configmap("ok"))
        repo.commit("ok")
        self.platform.apply(h.application("afterpoison", repo.url, ".", "afterpoison"))
        self.platform.cli("app", "wait", "afterpoison", "--synced", "--healthy", "--timeout",
                          "60s")
        self.assertIsNotNone(self.platform.configmap_data("afterpoison", "ok"))


class ResilienceTest(E2EBase):
    """Kill each service (and nats-server) while work is in flight; the supervisor restarts it
    and the application still converges, with nothing applied twice."""

    def setUp(self):
        if not hasattr(type(self), "repo"):
            repo = self.new_repo("repo-resilience")
            repo.write("cm.yaml", h.configmap("cm", data={"step": "0"}))
            for i in range(5):
                repo.write(f"extra-{i}.yaml", h.configmap(f"extra-{i}"))
            repo.commit("step 0")
            type(self).repo = repo
            self.platform.apply(h.application("resilient", repo.url, ".", "resilient"))
            self.platform.cli("app", "wait", "resilient", "--synced", "--healthy", "--timeout",
                              "90s")
            type(self).step = 0

    def converge_after_killing(self, victim):
        type(self).step += 1
        step = str(type(self).step)
        self.repo.write("cm.yaml", h.configmap("cm", data={"step": step}))
        revision = self.repo.commit(f"step {step}")
        if victim == "api":
            old = self.platform.kill_child(victim)
            self.platform.wait_restarted(victim, old)
            self.platform.cli("app", "sync", "resilient")
        else:
            self.platform.cli("app", "sync", "resilient")
            old = self.platform.kill_child(victim)
            self.platform.wait_restarted(victim, old)
        self.wait_configmap("resilient", "cm", lambda d: d and d.get("step") == step, timeout=90)
        self.wait_app("resilient",
                      lambda a: a["status"].get("lastAppliedRevision") == revision
                      and a["status"].get("sync") == "Synced", "synced at the new commit",
                      timeout=90)
        # The notifier delivers each sync's result exactly once, even across restarts.
        self.receiver.wait(f"sync.succeeded at step {step}",
                           lambda bodies: [b for b in syncs_of(bodies, "resilient")
                                           if b.get("revision") == revision], timeout=90)

    def assert_nothing_twice(self):
        ids = [b.get("id") for b in self.receiver.bodies]
        self.assertEqual(len(ids), len(set(ids)), "an event was delivered twice")
        history = [e for e in self.platform.events("resilient") if e["type"] == "sync.started"]
        sync_ids = [e["syncStarted"]["syncId"] for e in history]
        self.assertEqual(len(sync_ids), len(set(sync_ids)), f"a sync started twice: {sync_ids}")

    def test_kill_each_service(self):
        for victim in h.SERVICES:
            with self.subTest(victim=victim):
                self.converge_after_killing(victim)
        self.assert_nothing_twice()

    def test_restart_nats(self):
        self.converge_after_killing("nats-server")
        self.assert_nothing_twice()


class ReplicasTest(E2EBase):
    def test_two_replicas_of_each_stage(self):
        for svc in h.STAGE_SERVICES + ["notifier"]:
            self.platform.start_replica(svc, "r2")
        repo = self.new_repo("repo-replicas")
        apps = ["rep-a", "rep-b", "rep-c"]
        for app in apps:
            repo.write(f"{app}/cm.yaml", h.configmap("cm", data={"v": "0"}))
        repo.commit("v0")
        for app in apps:
            self.platform.apply(h.application(app, repo.url, app, app))
        for v in range(1, 4):
            for app in apps:
                repo.write(f"{app}/cm.yaml", h.configmap("cm", data={"v": str(v)}))
            repo.commit(f"v{v}")
            for app in apps:
                self.platform.cli("app", "sync", app)
        for app in apps:
            self.wait_configmap(app, "cm", lambda d: d and d.get("v") == "3", timeout=90)
            self.platform.cli("app", "wait", app, "--synced", "--healthy", "--timeout", "60s")
        # Syncs of one application never overlapped, whichever applier replica ran them.
        for app in apps:
            events = self.platform.events(app)
            spans = {}
            for e in events:
                if e["type"] == "sync.started":
                    spans.setdefault(e["syncStarted"]["syncId"], [None, None])[0] = rfc3339(e["time"])
                elif e["type"] in ("sync.succeeded", "sync.failed"):
                    spans.setdefault(e["syncFinished"]["syncId"], [None, None])[1] = rfc3339(e["time"])
            ordered = sorted((s, f) for s, f in spans.values() if s and f)
            for (s1, f1), (s2, _) in zip(ordered, ordered[1:]):
                self.assertLessEqual(f1, s2, f"{app}: overlapping syncs {ordered}")
        ids = [b.get("id") for b in self.receiver.bodies]
        self.assertEqual(len(ids), len(set(ids)), "an event was delivered twice by two notifiers")


if __name__ == "__main__":
    unittest.main(verbosity=2)
