"""End-to-end harness: the real platform (`driftless up`), real git, real kubectl, a real
HTTP webhook receiver. Standard library only (runs under Debian's /usr/bin/python3).

    with Platform(tmp) as p:            # driftless up --detach ... ; down + kill by pid at exit
        repo = GitRepo(tmp / "repo")    # a real repository, file:// URL
        p.cli("apply", "-f", app_file)
        p.kubectl("get", "configmap", "-n", "demo", "-o", "json")

Environment (set by tests/CMakeLists.txt):
    DRIFTLESS_CLI          the driftless binary (services are found next to it in the build tree)
    DRIFTLESS_BUILD_DIR    the build tree (for extra replicas: services/<svc>/driftless-<svc>)
    DRIFTLESS_KUBECTL      kubectl 1.32
"""

import http.server
import json
import os
import pathlib
import signal
import socket
import subprocess
import threading
import time

CLI = os.environ.get("DRIFTLESS_CLI", "driftless")
BUILD_DIR = pathlib.Path(os.environ.get("DRIFTLESS_BUILD_DIR", "build"))
KUBECTL = os.environ.get("DRIFTLESS_KUBECTL", "kubectl")
STAGE_SERVICES = ["repo-poller", "renderer", "planner", "applier"]
SERVICES = STAGE_SERVICES + ["notifier", "api"]


def wait_for(what, predicate, timeout=60.0, interval=0.05):
    """Polls `predicate` until it returns a truthy value; fails naming `what` at the deadline."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
        except Exception as e:  # noqa: BLE001 - report the last failure at the deadline
            last = e
        else:
            if last:
                return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child of ours is dead for our purposes
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


class WebhookReceiver:
    """A local HTTP server that records every JSON body POSTed to it."""

    def __init__(self, status=200):
        self.bodies = []
        self.status = status
        self._cond = threading.Condition()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                self.send_response(receiver.status)
                self.end_headers()
                try:
                    doc = json.loads(body)
                except ValueError:
                    doc = {"_raw": body.decode("utf-8", "replace")}
                with receiver._cond:
                    receiver.bodies.append(doc)
                    receiver._cond.notify_all()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def wait(self, what, predicate, timeout=60.0):
        """Waits until predicate(bodies) is truthy; returns its value."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                value = predicate(list(self.bodies))
                if value:
                    return value
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"webhook: timed out waiting for {what}; got {json.dumps(self.bodies)[:2000]}")
                self._cond.wait(left)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def event_field(body, name):
    """A field of a delivered event, whatever the envelope nesting."""
    if name in body:
        return body[name]
    for key in ("event", "data"):
        inner = body.get(key)
        if isinstance(inner, dict) and name in inner:
            return inner[name]
    return None


class GitRepo:
    """A real git repository on disk, served as file://."""

    def __init__(self, path, branch="main"):
        self.path = pathlib.Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self.branch = branch
        self.git("init", "-q", "-b", branch)
        self.git("config", "user.email", "e2e@driftless.dev")
        self.git("config", "user.name", "e2e")
        self.git("config", "commit.gpgsign", "false")

    @property
    def url(self):
        return f"file://{self.path}"

    def git(self, *args):
        return subprocess.run(["git", "-C", str(self.path), *args], check=True,
                              capture_output=True, text=True).stdout.strip()

    def write(self, rel, text):
        p = self.path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)

    def remove(self, rel):
        self.git("rm", "-q", rel)

    def commit(self, message):
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "-m", message)
        return self.git("rev-parse", "HEAD")


def configmap(name, namespace=None, data=None):
    lines = ["apiVersion: v1", "kind: ConfigMap", "metadata:", f"  name: {name}"]
    if namespace:
        lines.append(f"  namespace: {namespace}")
    lines.append("data:")
    for k, v in (data or {"key": "value"}).items():
        lines.append(f"  {k}: \"{v}\"")
    return "\n".join(lines) + "\n"


def application(name, repo_url, path, namespace, branch="main", automated=True, prune=True,
                interval="3m", recurse=False, self_heal=True):
    doc = f"""apiVersion: driftless.dev/v1alpha1
kind: Application
metadata:
  name: {name}
spec:
  project: default
  source:
    repoURL: {repo_url}
    ref: {{branch: {branch}}}
    path: {path}
    directory: {{recurse: {'true' if recurse else 'false'}}}
  destination: {{cluster: in-cluster, namespace: {namespace}}}
  interval: {interval}
  syncPolicy:
"""
    if automated:
        doc += (f"    automated: {{prune: {'true' if prune else 'false'}, "
                f"selfHeal: {'true' if self_heal else 'false'}}}\n")
    doc += "    syncOptions: [CreateNamespace=true]\n"
    return doc


class Platform:
    """`driftless up --detach` in a state dir; stopped with `driftless down`, then every pid it
    recorded is killed if still alive."""

    def __init__(self, state_dir, webhook_urls=(), timeout="180s", emulator_args=(),
                 nats_url=None, nats_replicas=None):
        self.state_dir = pathlib.Path(state_dir)
        self.webhook_urls = list(webhook_urls)
        self.emulator_args = list(emulator_args)
        self.timeout = timeout
        self.nats_url = nats_url  # given NATS servers (comma-separated) instead of nats-server
        self.nats_replicas = nats_replicas
        self.extra = []  # extra processes we started (replicas): Popen objects
        self.kube_cache = self.state_dir.parent / "kube-cache"
        self._pids = set()

    def __enter__(self):
        self.up()
        return self

    def __exit__(self, *exc):
        self.close()

    def up(self):
        args = [CLI, "up", "--state-dir", str(self.state_dir), "--no-example", "--detach",
                "--timeout", self.timeout]
        for url in self.webhook_urls:
            args += ["--webhook-url", url]
        for arg in self.emulator_args:
            args.append(f"--emulator-arg={arg}")
        if self.nats_url:
            args += ["--nats-url", self.nats_url]
        if self.nats_replicas:
            args += ["--nats-replicas", str(self.nats_replicas)]
        r = subprocess.run(args, capture_output=True, text=True, timeout=240)
        self._remember_pids()
        if r.returncode != 0:
            raise AssertionError(f"driftless up failed ({r.returncode}):\n{r.stdout}\n{r.stderr}\n"
                                 + self.logs_tail())
        return r.stdout

    def _remember_pids(self):
        try:
            doc = json.loads((self.state_dir / "run" / "platform.json").read_text())
        except (OSError, ValueError):
            return
        self._pids.add(doc["supervisor"]["pid"])
        for child in doc.get("children", {}).values():
            self._pids.add(child["pid"])

    def close(self):
        for p in self.extra:
            if p.poll() is None:
                p.terminate()
        for p in self.extra:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self._remember_pids()
        subprocess.run([CLI, "down", "--state-dir", str(self.state_dir)], capture_output=True,
                       timeout=60)
        for pid in self._pids:
            if pid and pid_alive(pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass

    def endpoints(self):
        return json.loads((self.state_dir / "endpoints.json").read_text())

    def platform(self):
        return json.loads((self.state_dir / "run" / "platform.json").read_text())

    def child_pid(self, name):
        return self.platform()["children"][name]["pid"]

    def kill_child(self, name, sig=signal.SIGKILL):
        """Kills a supervised child; returns its old pid. The supervisor restarts it."""
        pid = self.child_pid(name)
        self._pids.add(pid)
        os.kill(pid, sig)
        return pid

    def wait_restarted(self, name, old_pid, timeout=60):
        def restarted():
            self._remember_pids()
            pid = self.child_pid(name)
            return pid != old_pid and pid_alive(pid) and self.ready(name)
        wait_for(f"{name} to be restarted by the supervisor", restarted, timeout=timeout,
                 interval=0.1)

    def ready(self, name):
        import urllib.request
        svc = self.endpoints()["services"].get(name)
        if not svc:
            return True  # nats / emulator: pid liveness is enough, plus their own probes
        try:
            with urllib.request.urlopen(svc["ready"], timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    def cli(self, *args, check=True, timeout=120):
        r = subprocess.run([CLI, *args, "--server", self.endpoints()["api"]],
                           capture_output=True, text=True, timeout=timeout)
        if check and r.returncode != 0:
            raise AssertionError(f"driftless {' '.join(args)} exited {r.returncode}:\n"
                                 f"{r.stdout}\n{r.stderr}")
        return r

    def apply(self, text, check=True):
        f = self.state_dir.parent / f"apply-{time.monotonic_ns()}.yaml"
        f.write_text(text)
        return self.cli("apply", "-f", str(f), check=check)

    def app_json(self, name):
        r = self.cli("get", "app", name, "-o", "json", check=False)
        if r.returncode != 0:
            return None
        return json.loads(r.stdout)

    def events(self, app=None):
        args = ["events", "-o", "json"]
        if app:
            args += ["--app", app]
        r = self.cli(*args)
        return [json.loads(line) for line in r.stdout.splitlines() if line.strip()]

    def kubectl(self, *args, check=True):
        r = subprocess.run([KUBECTL, "--kubeconfig", str(self.state_dir / "kubeconfig"),
                            "--cache-dir", str(self.kube_cache), *args],
                           capture_output=True, text=True, timeout=60)
        if check and r.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} exited {r.returncode}: {r.stderr}")
        return r

    def configmap_data(self, namespace, name):
        """The data of a ConfigMap in the emulator, or None if it does not exist."""
        r = self.kubectl("get", "configmap", name, "-n", namespace, "-o", "json", check=False)
        if r.returncode != 0:
            if "NotFound" in r.stderr or "not found" in r.stderr:
                return None
            raise AssertionError(f"kubectl get configmap {namespace}/{name}: {r.stderr}")
        return json.loads(r.stdout).get("data", {})

    def start_replica(self, service, replica_id, extra_args=()):
        """A second process of `service` on the same NATS (and cluster), outside the
        supervisor, with `extra_args` appended. Returns once it is ready."""
        ep = self.endpoints()
        binary = BUILD_DIR / "services" / service / f"driftless-{service}"
        state = self.state_dir.parent / f"replica-{replica_id}" / service
        state.mkdir(parents=True, exist_ok=True)
        ready = state / "ready.json"
        args = [str(binary), "--nats-url", ep["nats"], "--http-port", "0", "--ready-file",
                str(ready), "--state-dir", str(state), "--replica-id", replica_id,
                "--log-format", "json"]
        if service in ("planner", "applier"):
            args += ["--kubeconfig", ep["kubeconfig"]]
        if service == "notifier":
            for url in self.webhook_urls:
                args += ["--webhook-url", url]
        if service == "api":
            args += ["--grpc-port", "0"]
        args += list(extra_args)
        with open(state / "log.txt", "w") as log:
            p = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        self.extra.append(p)
        wait_for(f"replica {replica_id} of {service} to be ready",
                 lambda: ready.exists() or p.poll() is not None, timeout=60)
        if p.poll() is not None:
            raise AssertionError(f"replica {replica_id} of {service} exited {p.returncode}: "
                                 + (state / "log.txt").read_text()[-2000:])
        return p

    def logs_tail(self, lines=30):
        out = []
        logs = self.state_dir / "logs"
        if logs.is_dir():
            for f in sorted(logs.iterdir()):
                text = f.read_text(errors="replace").splitlines()[-lines:]
                out.append(f"--- {f.name}\n" + "\n".join(text))
        return "\n".join(out)


def nats_publish(nats_url, subject, payload: bytes):
    """Publishes one core-NATS message (JetStream streams capture it by subject) with the plain
    text protocol, so tests can inject poison without a client library."""
    hostport = nats_url.split("://", 1)[-1]
    host, port = hostport.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as s:
        f = s.makefile("rwb")
        f.readline()  # INFO
        f.write(b'CONNECT {"verbose":false,"pedantic":false}\r\n')
        f.write(f"PUB {subject} {len(payload)}\r\n".encode() + payload + b"\r\nPING\r\n")
        f.flush()
        while True:
            line = f.readline()
            if not line or line.startswith(b"PONG"):
                break
            if line.startswith(b"-ERR"):
                raise AssertionError(f"nats: {line!r}")


def stream_messages(monitor_url, stream):
    """Message count of a JetStream stream, from the monitor endpoint."""
    import urllib.request
    with urllib.request.urlopen(f"{monitor_url}/jsz?streams=true", timeout=5) as r:
        doc = json.load(r)
    for account in doc.get("account_details", []):
        for s in account.get("stream_detail", []):
            if s.get("name") == stream:
                return s.get("state", {}).get("messages", 0)
    return 0


def free_port():
    """A port nothing listens on now (it may be taken before it is used: callers retry)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url, timeout=2.0):
    """(status, body text) of a GET; HTTP errors are answers too."""
    import urllib.error
    import urllib.request
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8", "replace")


def _die_with_parent():
    """preexec_fn: SIGKILL the child when the test process dies (PR_SET_PDEATHSIG), so a killed
    test leaves no nats-server behind."""
    import ctypes
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG = 1
    except (OSError, AttributeError):
        pass


class NatsCluster:
    """A JetStream cluster of `size` nats-server processes on 127.0.0.1, like
    common/bus/testing's NatsClusterProcess. A node keeps its name (n0, n1, ...), ports and store
    dir across kill_node / start_node. close() kills every process it started, by pid."""

    BINARY = os.environ.get("DRIFTLESS_NATS_SERVER", "/usr/sbin/nats-server")

    def __init__(self, base_dir, size=3):
        self.base_dir = pathlib.Path(base_dir)
        self.size = size
        self.procs = [None] * size
        self.client_ports = []
        self.route_ports = []
        self.monitor_ports = []

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.close()

    @property
    def urls(self):
        return ",".join(self.url(i) for i in range(self.size))

    def url(self, i):
        return f"nats://127.0.0.1:{self.client_ports[i]}"

    def monitor(self, i):
        return f"http://127.0.0.1:{self.monitor_ports[i]}"

    def dir(self, i):
        return self.base_dir / f"n{i}"

    def log_path(self, i):
        return self.dir(i) / "nats-server.log"

    def running(self, i):
        return self.procs[i] is not None and self.procs[i].poll() is None

    def start(self, timeout=60):
        """Starts every node and waits for a JetStream meta leader. Picked ports can be taken
        before the servers bind them: starts over with new ports a few times."""
        last = None
        for _ in range(3):
            ports = [free_port() for _ in range(3 * self.size)]
            if len(set(ports)) != len(ports):
                continue
            self.client_ports = ports[0:self.size]
            self.route_ports = ports[self.size:2 * self.size]
            self.monitor_ports = ports[2 * self.size:]
            try:
                for i in range(self.size):
                    self.start_node(i, wait=False)
                for i in range(self.size):
                    self.wait_listening(i, timeout)
                self.wait_meta_leader(timeout)
                return self
            except AssertionError as e:
                last = e
                for i in range(self.size):
                    self.kill_node(i)
        raise last or AssertionError("no free ports for the nats cluster")

    def start_node(self, i, wait=True, timeout=60):
        """Starts node i (again) on its ports with its store dir."""
        if self.running(i):
            raise AssertionError(f"nats node n{i} is already running")
        self.dir(i).mkdir(parents=True, exist_ok=True)
        routes = ",".join(f"nats://127.0.0.1:{self.route_ports[j]}"
                          for j in range(self.size) if j != i)
        args = [self.BINARY, "-js", "-sd", str(self.dir(i)), "-a", "127.0.0.1",
                "-p", str(self.client_ports[i]), "-m", str(self.monitor_ports[i]),
                "--server_name", f"n{i}", "--cluster_name", "c",
                "--cluster", f"nats://127.0.0.1:{self.route_ports[i]}"]
        if routes:
            args += ["--routes", routes]
        with open(self.log_path(i), "a") as log:
            self.procs[i] = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT,
                                             stdin=subprocess.DEVNULL,
                                             preexec_fn=_die_with_parent)
        if wait:
            self.wait_listening(i, timeout)

    def wait_listening(self, i, timeout=60):
        def listening():
            if not self.running(i):
                raise AssertionError(f"nats node n{i} exited: {self.log_tail(i)}")
            with socket.create_connection(("127.0.0.1", self.client_ports[i]), timeout=1):
                return True
        try:
            wait_for(f"nats node n{i} to accept connections", listening, timeout=timeout,
                     interval=0.02)
        except AssertionError as e:
            raise AssertionError(f"{e}\n--- n{i} log:\n{self.log_tail(i)}") from None

    def kill_node(self, i, sig=signal.SIGKILL):
        """Kills node i (SIGKILL: no goodbye to its peers or clients) and reaps it."""
        p = self.procs[i]
        if p is None:
            return
        if p.poll() is None:
            try:
                os.kill(p.pid, sig)
            except ProcessLookupError:
                pass
        try:
            p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        self.procs[i] = None

    def close(self):
        for i in range(self.size):
            self.kill_node(i)

    def jsz(self, i, query=""):
        status, body = http_get(f"{self.monitor(i)}/jsz{query}")
        if status != 200:
            raise AssertionError(f"n{i} /jsz{query} answered {status}: {body[:300]}")
        return json.loads(body)

    def meta_leader(self, i):
        """The meta leader's name as node i sees it ('' while electing)."""
        return self.jsz(i).get("meta_cluster", {}).get("leader", "")

    def wait_meta_leader(self, timeout=60):
        """Every running node knows the same JetStream meta leader."""
        def agreed():
            leaders = {self.meta_leader(i) for i in range(self.size) if self.running(i)}
            return len(leaders) == 1 and "" not in leaders and leaders
        return wait_for("a JetStream meta leader known to every running node", agreed,
                        timeout=timeout, interval=0.1)

    def healthy(self, i):
        """nats-server's own /healthz: JetStream enabled, and the node's streams and consumers
        current (caught up) with their leaders."""
        status, _ = http_get(f"{self.monitor(i)}/healthz")
        return status == 200

    def wait_healthy(self, timeout=120):
        wait_for("every nats node healthy (/healthz)",
                 lambda: all(self.running(i) and self.healthy(i) for i in range(self.size)),
                 timeout=timeout, interval=0.1)
        self.wait_meta_leader(timeout)

    def clients(self, i):
        """Names of the client connections of node i (connz)."""
        status, body = http_get(f"{self.monitor(i)}/connz?limit=1024")
        if status != 200:
            raise AssertionError(f"n{i} /connz answered {status}")
        return [c.get("name", "") for c in json.loads(body).get("connections", [])]

    def node_of_client(self, name):
        """The index of the running node that client `name` is connected to, or None."""
        for i in range(self.size):
            if self.running(i):
                try:
                    if name in self.clients(i):
                        return i
                except (OSError, AssertionError, ValueError):
                    continue
        return None

    def streams(self, i):
        """{stream name: its /jsz detail (with config)} as node i reports them."""
        doc = self.jsz(i, "?streams=true&config=true")
        return {s["name"]: s for a in doc.get("account_details", [])
                for s in a.get("stream_detail", [])}

    def stream_leader(self, stream):
        """The index of the node leading `stream` (as the first answering node sees it), or
        None while it is electing one."""
        for i in range(self.size):
            if not self.running(i):
                continue
            try:
                leader = self.streams(i).get(stream, {}).get("cluster", {}).get("leader", "")
            except (OSError, AssertionError, ValueError):
                continue
            return int(leader[1:]) if leader.startswith("n") else None
        return None

    def log_tail(self, i, lines=30):
        try:
            text = self.log_path(i).read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(text[-lines:])

    def logs_tail(self, lines=30):
        return "\n".join(f"--- nats n{i} ({self.log_path(i)})\n{self.log_tail(i, lines)}"
                         for i in range(self.size))
