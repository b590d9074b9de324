"""End to end on a real 3-node NATS JetStream cluster: `driftless up --nats-url n0,n1,n2
--nats-replicas 3` (every stream and KV bucket R3), the emulator, the six services, real git
repositories, the real kubectl and a local webhook receiver. NATS nodes are SIGKILLed while
work is in flight: nothing is lost, every KV watch resumes, every application converges.

    python3 tests/e2e/cluster_test.py [ClusterTest[.test_name]]
"""

import json
import pathlib
import sys
import tempfile
import time
import unittest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import harness as h  # noqa: E402

CONVERGE = 120  # seconds per convergence: watches can take 13-45 s to resume (bus README)
WORK_STREAMS = ("DRIFTLESS_WORK", "DRIFTLESS_EVENTS", "DRIFTLESS_DLQ")


def some(node):
    """[node] if there is one: node 0 is a truthy answer for wait_for."""
    return [node] if node is not None else None


def log(text):
    print(f"[cluster_test {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


class ClusterTest(unittest.TestCase):
    """One NATS cluster and one platform for the class, torn down by pid (also on failure)."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="driftless-e2e-cluster-")
        cls.root = pathlib.Path(cls.tmp.name)
        cls.nats = h.NatsCluster(cls.root / "nats", 3)
        cls.receiver = h.WebhookReceiver()
        cls.platform = None
        try:
            cls.nats.start()
            cls.platform = h.Platform(cls.root / "state", [cls.receiver.url],
                                      nats_url=cls.nats.urls, nats_replicas=3)
            cls.platform.up()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            if cls.platform:
                cls.platform.close()
        finally:
            cls.nats.close()
            cls.receiver.close()
            cls.tmp.cleanup()

    def run(self, result=None):
        # Keep the platform's and the nodes' logs when a test fails: the only record of why.
        before = len(result.failures) + len(result.errors) if result else 0
        out = super().run(result)
        if result and len(result.failures) + len(result.errors) > before:
            print(self.platform.logs_tail(40), file=sys.stderr)
            print(self.nats.logs_tail(40), file=sys.stderr)
        return out

    # --- helpers -------------------------------------------------------------------------

    def write_step(self, repo, app, value):
        repo.write(f"{app}/cm.yaml", h.configmap("cm", data={"v": value}))

    def sync(self, app):
        """`driftless app sync` (the api publishes a sync request to the repo-poller)."""
        return self.platform.cli("app", "sync", app, timeout=60).stdout.strip()

    def converge(self, expected):
        """Waits until, for every app: its ConfigMap holds the expected value in the emulator
        and its status is Synced + Healthy at the expected revision."""
        started = time.monotonic()
        for app, (value, revision) in expected.items():
            h.wait_for(f"configmap {app}/cm to hold v={value}",
                       lambda: (self.platform.configmap_data(app, "cm") or {}).get("v") == value,
                       timeout=CONVERGE, interval=0.1)

            def at_revision():
                doc = self.platform.app_json(app)
                status = (doc or {}).get("status", {})
                ok = (status.get("lastAppliedRevision") == revision
                      and status.get("sync") == "Synced" and status.get("health") == "Healthy")
                if not ok:  # wait_for reports the last status at the deadline
                    raise AssertionError(f"status: {json.dumps(status)[:1500]}")
                return doc
            h.wait_for(f"application {app} Synced+Healthy at {revision[:8]}", at_revision,
                       timeout=CONVERGE, interval=0.1)
            self.live.setdefault(app, []).append(revision)
        log(f"converged {sorted(expected)} in {time.monotonic() - started:.1f}s")

    def victim(self, client, avoid=()):
        """The node `client` is connected to (if not in `avoid`), else another running node."""
        node = h.wait_for(f"{client} to be connected to a node",
                          lambda: some(self.nats.node_of_client(client)), timeout=CONVERGE)[0]
        if node in avoid:
            node = next(i for i in range(self.nats.size) if i not in avoid)
        return node

    def kill(self, node):
        leader = self.nats.meta_leader(node)
        clients = self.nats.clients(node)
        self.nats.kill_node(node)
        log(f"SIGKILLed nats n{node} (meta leader {leader}; its clients: {clients})")

    def restart(self, node):
        started = time.monotonic()
        self.nats.start_node(node)
        self.nats.wait_healthy(timeout=CONVERGE)
        log(f"n{node} restarted and rejoined (healthy) in {time.monotonic() - started:.1f}s")

    # --- the test ------------------------------------------------------------------------

    def test_losing_nats_nodes_loses_nothing(self):
        self.live = {}  # app -> every revision seen live (applied, Synced, Healthy)

        # Every stream and KV bucket has three replicas.
        streams = self.nats.streams(0)
        for name in WORK_STREAMS:
            self.assertIn(name, streams)
        self.assertTrue([n for n in streams if n.startswith("KV_")], streams.keys())
        for name, s in streams.items():
            self.assertEqual(s.get("config", {}).get("num_replicas"), 3, name)

        # alpha, beta, delta sync on request (interval 1h); gamma finds commits by polling.
        repo = h.GitRepo(self.root / "repo")
        polled = h.GitRepo(self.root / "polled")
        for app in ("alpha", "beta", "delta"):
            self.write_step(repo, app, "0")
        self.write_step(polled, "gamma", "0")
        rev, prev = repo.commit("step 0"), polled.commit("step 0")
        for app in ("alpha", "beta"):
            self.platform.apply(h.application(app, repo.url, app, app, interval="1h"))
        gamma = h.application("gamma", polled.url, "gamma", "gamma", interval="2s")
        self.platform.apply(gamma)
        self.converge({"alpha": ("0", rev), "beta": ("0", rev), "gamma": ("0", prev)})

        # 1. SIGKILL the node leading DRIFTLESS_WORK (every sync request and work item goes
        # through it), with a sync in flight; during the outage (the stream elects a new
        # leader) request another sync and register a new application (it reaches the
        # repo-poller through its KV watch on the resources bucket).
        first = h.wait_for("a DRIFTLESS_WORK stream leader",
                           lambda: some(self.nats.stream_leader("DRIFTLESS_WORK")),
                           timeout=CONVERGE)[0]
        for app in ("alpha", "beta", "delta"):
            self.write_step(repo, app, "1")
        self.write_step(polled, "gamma", "1")
        rev, prev = repo.commit("step 1"), polled.commit("step 1")
        self.sync("alpha")
        self.kill(first)
        # Accepted at once, while DRIFTLESS_WORK elects its new leader: two nodes of three are
        # up, so the api must not refuse the request.
        self.sync("beta")
        self.platform.apply(h.application("delta", repo.url, "delta", "delta", interval="1h"))
        self.converge({"alpha": ("1", rev), "beta": ("1", rev), "delta": ("1", rev),
                       "gamma": ("1", prev)})
        self.restart(first)

        # 2. SIGKILL a different node: the one the api is connected to (unless that is the
        # node just restarted), then commit, sync, and edit an application's spec.
        second = self.victim("driftless-api", avoid=(first,))
        self.kill(second)
        for app in ("alpha", "beta", "delta"):
            self.write_step(repo, app, "2")
        self.write_step(polled, "gamma", "2")
        polled.write("gamma-next/cm.yaml", h.configmap("cm", data={"v": "next-2"}))
        rev, prev = repo.commit("step 2"), polled.commit("step 2")
        for app in ("alpha", "beta", "delta"):
            self.sync(app)
        self.converge({"alpha": ("2", rev), "beta": ("2", rev), "delta": ("2", rev),
                       "gamma": ("2", prev)})
        # The spec edit (a new source path, same revision) is watched and synced.
        self.platform.apply(gamma.replace("path: gamma", "path: gamma-next"))
        self.converge({"gamma": ("next-2", prev)})
        self.restart(second)

        # 3. All nodes back: one more commit goes through everywhere.
        for app in ("alpha", "beta", "delta"):
            self.write_step(repo, app, "3")
        polled.write("gamma-next/cm.yaml", h.configmap("cm", data={"v": "next-3"}))
        rev, prev = repo.commit("step 3"), polled.commit("step 3")
        for app in ("alpha", "beta", "delta"):
            self.sync(app)
        self.converge({"alpha": ("3", rev), "beta": ("3", rev), "delta": ("3", rev),
                       "gamma": ("next-3", prev)})

        # Nothing was lost: every revision that went live has its sync.succeeded event in the
        # events stream and was delivered to the webhook; nothing was dead-lettered.
        for app, revisions in self.live.items():
            stored = {e.get("revision") for e in self.platform.events(app)
                      if e.get("type") == "sync.succeeded"}
            for revision in revisions:
                self.assertIn(revision, stored, f"{app}: no stored sync.succeeded")
                self.receiver.wait(f"sync.succeeded webhook for {app}@{revision[:8]}",
                                   lambda bodies: [b for b in bodies
                                                   if b.get("type") == "sync.succeeded"
                                                   and b.get("application") == app
                                                   and b.get("revision") == revision],
                                   timeout=CONVERGE)
        dlq = json.loads(self.platform.cli("dlq", "list", "-o", "json").stdout)
        self.assertEqual(dlq.get("items"), [], f"dead letters: {dlq}")
        ids = [b.get("id") for b in self.receiver.bodies]
        self.assertEqual(len(ids), len(set(ids)), "an event was delivered twice")


if __name__ == "__main__":
    unittest.main(verbosity=2)
