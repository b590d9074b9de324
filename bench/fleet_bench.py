"""Fleet benchmark: 1,000 applications from one repository, against kubectl, then idle cost.

All processes on this machine. Three phases in one run:

1. Fleet sync. A fresh `driftless up --no-example --detach`, one git repository (file://) with
   apps/app-0000 ... apps/app-NNNN, each 10 objects (8 ConfigMaps, a Service, a Deployment),
   and N Applications (automated, CreateNamespace=true, each in its own namespace) registered
   with one `driftless apply -f`. Measured from the moment `apply` returns until every
   application reports Synced + Healthy (polled with `driftless get apps -o json`; the time of
   each is its status's reconciledAt when the poll first saw it so). Every second the CPU time
   and RSS of every platform process (the children in DIR/run/platform.json and the
   supervisor) are sampled from /proc.
1b. Webhook pushes (--webhook-rounds, 5): each round commits a change to --webhook-apps (5)
   applications' ConfigMaps and POSTs one authenticated push to a generic Receiver; measured
   from the POST until those applications are applied at the new commit, and checked that only
   they got a new desired generation and were rendered (monorepo-aware refresh).
1c. Drift (--drift-edits, 20), after the webhook rounds: one ConfigMap of each of 20
   applications edited as `kubectl edit` does (merge patch, fieldManager kubectl-edit), one at a
   time; from the PATCH's answer until the value git has is back (self-heal), and the six
   services' peak RSS meanwhile (live cache included).
2. Idle. After the fleet is synced (and --settle-seconds), --idle-seconds of nothing: the CPU
   seconds of every platform process, and the cluster writes in that window (the emulator's
   cluster-wide resourceVersion before and after; it moves only on real changes).
3. kubectl baseline. The platform is stopped; a second, fresh emulator (same delay) and one
   `kubectl apply --server-side -f` of the same objects plus one Namespace per application,
   timed.

    python3 bench/fleet_bench.py [--apps 1000] [--emulator-delay-ms 0] [--idle-seconds 180]
                                 [--json FILE] [--keep] [--build-dir build]

Targets (issue): driftless/kubectl time < 1.0; peak RSS of the six services together < 200 MiB;
idle: < 3 CPU seconds for the whole platform over 180 s and 0 cluster writes.

With --emulator-delay-ms D every emulator request is delayed by D ms (a real API server's round
trip). Both emulators get `--delay-ms D` (the platform's through `driftless up
--emulator-arg`); an emulator without the flag gets the same delay from its
fault hook (`POST /emulator/v1/faults` with code 0, empty method and path: every request), set
right after `up` returns, before anything is applied.

Standard library only (runs under /usr/bin/python3).
"""

import argparse
import datetime
import json
import os
import pathlib
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parent.parent
SERVICES = ["repo-poller", "renderer", "planner", "applier", "notifier", "api"]
CONFIGMAPS_PER_APP = 8
OBJECTS_PER_APP = CONFIGMAPS_PER_APP + 2  # + a Service and a Deployment
PERCENTS = (25, 50, 90, 100)
CLK_TCK = os.sysconf("SC_CLK_TCK")

h = None  # tests/e2e/harness, imported in main() once the environment points at the build


# --------------------------------------------------------------------------------------------
# Manifests

def app_name(i, width):
    return f"fleet-{i:0{width}d}"


def app_path(i, width):
    return f"apps/app-{i:0{width}d}"


def configmap_yaml(i, app, namespace=None):
    ns = f"\n  namespace: {namespace}" if namespace else ""
    return f"""apiVersion: v1
kind: ConfigMap
metadata:
  name: config-{i}{ns}
  labels: {{app: web}}
data:
  application: "{app}"
  index: "{i}"
  log-level: "info"
  feature-flags: "alpha=false,beta=true"
"""


def service_yaml(namespace=None):
    ns = f"\n  namespace: {namespace}" if namespace else ""
    return f"""apiVersion: v1
kind: Service
metadata:
  name: web{ns}
  labels: {{app: web}}
spec:
  type: ClusterIP
  selector: {{app: web}}
  ports: [{{name: http, port: 80, targetPort: 8080}}]
"""


def deployment_yaml(namespace=None):
    ns = f"\n  namespace: {namespace}" if namespace else ""
    return f"""apiVersion: apps/v1
kind: Deployment
metadata:
  name: web{ns}
  labels: {{app: web}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      containers: [{{name: web, image: "nginx:1.27", ports: [{{containerPort: 8080}}]}}]
"""


def app_objects(app, namespace=None):
    """The 10 objects of one application as (file name, YAML)."""
    files = [(f"config-{i}.yaml", configmap_yaml(i, app, namespace))
             for i in range(CONFIGMAPS_PER_APP)]
    files.append(("service.yaml", service_yaml(namespace)))
    files.append(("deployment.yaml", deployment_yaml(namespace)))
    return files


def write_fleet_repo(repo, n, width):
    """Writes and commits apps/app-XXXX for every application; returns the revision."""
    for i in range(n):
        base = repo.path / app_path(i, width)
        base.mkdir(parents=True, exist_ok=True)
        for fname, text in app_objects(app_name(i, width)):
            (base / fname).write_text(text)
    return repo.commit(f"fleet of {n} applications")


def write_applications_file(path, repo_url, n, width, interval):
    docs = [h.application(app_name(i, width), repo_url, app_path(i, width), app_name(i, width),
                          interval=interval)
            for i in range(n)]
    path.write_text("---\n".join(docs))


def write_kubectl_manifests(path, n, width):
    """One multi-document file: every Namespace first, then every application's objects (with
    metadata.namespace), so that a single `kubectl apply -f` never meets a missing namespace."""
    with open(path, "w") as f:
        for i in range(n):
            f.write("---\napiVersion: v1\nkind: Namespace\nmetadata:\n"
                    f"  name: {app_name(i, width)}\n")
        for i in range(n):
            name = app_name(i, width)
            for _, text in app_objects(name, namespace=name):
                f.write("---\n" + text)
    return n * (OBJECTS_PER_APP + 1)


# --------------------------------------------------------------------------------------------
# /proc sampling

def proc_cpu_seconds(pid):
    """utime + stime of a process in seconds, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    # fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def proc_rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def platform_pids(state_dir):
    """{name: pid} of the supervisor and its children, from DIR/run/platform.json."""
    try:
        doc = json.loads((state_dir / "run" / "platform.json").read_text())
    except (OSError, ValueError):
        return {}
    pids = {name: child["pid"] for name, child in doc.get("children", {}).items()}
    pids["supervisor"] = doc["supervisor"]["pid"]
    return pids


class Sampler:
    """Samples CPU time and RSS of every platform process once per `interval` in a thread.

    Measurements are taken per window (begin_window .. end_window): CPU seconds per process name
    (summed over its pids, so a process the supervisor restarted counts twice, and `restarts`
    says so), the peak RSS per name and the peak of the six services' summed RSS."""

    def __init__(self, state_dir, interval=1.0):
        self.state_dir = state_dir
        self.interval = interval
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._cpu = {}       # (name, pid) -> last CPU seconds seen
        self._baseline = {}  # (name, pid) -> CPU seconds at the window's start
        self._peak_rss = {}
        self._peak_sum = 0
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self.sample()
        self._thread.start()

    def stop(self):
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self):
        while not self._stop.wait(self.interval):
            self.sample()

    def sample(self):
        pids = platform_pids(self.state_dir)
        readings = {}
        for name, pid in pids.items():
            cpu, rss = proc_cpu_seconds(pid), proc_rss_kib(pid)
            if cpu is not None:
                readings[(name, pid)] = (cpu, rss or 0)
        with self._lock:
            for key, (cpu, rss) in readings.items():
                self._cpu[key] = cpu
                self._peak_rss[key[0]] = max(self._peak_rss.get(key[0], 0), rss)
            total = sum(rss for (name, _), (_, rss) in readings.items() if name in SERVICES)
            self._peak_sum = max(self._peak_sum, total)

    def begin_window(self):
        self.sample()
        with self._lock:
            self._baseline = dict(self._cpu)
            self._peak_rss = {}
            self._peak_sum = 0

    def end_window(self):
        """Figures since begin_window. A pid first seen inside the window (a process the
        supervisor restarted) counts from zero and is reported in `restarts`."""
        self.sample()
        with self._lock:
            cpu, restarts = {}, {}
            had_baseline = {name for name, _ in self._baseline}
            for (name, pid), value in self._cpu.items():
                key = (name, pid)
                cpu[name] = cpu.get(name, 0.0) + value - self._baseline.get(key, 0.0)
                if key not in self._baseline and name in had_baseline:
                    restarts[name] = restarts.get(name, 0) + 1
            return {
                "cpu_seconds": {k: round(v, 2) for k, v in sorted(cpu.items())},
                "cpu_total": round(sum(cpu.values()), 2),
                "restarts": dict(sorted(restarts.items())),
                "peak_rss_mib": {k: round(v / 1024, 1) for k, v in sorted(self._peak_rss.items())},
                "peak_services_rss_sum_mib": round(self._peak_sum / 1024, 1),
            }


# --------------------------------------------------------------------------------------------
# Emulator access (plain HTTP, no token: how `driftless up` and our baseline start it)

def http_json(url, method="GET", body=None, timeout=30):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.load(r)


def cluster_resource_version(emulator_url):
    """The emulator's cluster-wide resourceVersion (moves only on real changes)."""
    doc = http_json(f"{emulator_url}/api/v1/namespaces?limit=1")
    return int(doc["metadata"]["resourceVersion"])


def objects_changed_since(emulator_url, rv, limit=10):
    """Objects (of the kinds the fleet has, and what the emulator's controllers write) whose
    resourceVersion is above `rv`: which writes happened. Deletions do not show."""
    changed = []
    for path in ("/api/v1/namespaces", "/api/v1/configmaps", "/api/v1/services",
                 "/apis/apps/v1/deployments", "/apis/apps/v1/replicasets", "/api/v1/pods",
                 "/api/v1/events", "/api/v1/endpoints"):
        try:
            doc = http_json(emulator_url + path, timeout=60)
        except OSError:
            continue
        for item in doc.get("items", []):
            meta = item.get("metadata", {})
            if int(meta.get("resourceVersion", "0") or 0) > rv:
                managers = sorted({m.get("manager", "?") for m in meta.get("managedFields", [])})
                changed.append({"kind": item.get("kind") or path.rsplit("/", 1)[1],
                                "namespace": meta.get("namespace", ""),
                                "name": meta.get("name"),
                                "resourceVersion": meta.get("resourceVersion"),
                                "managers": managers})
    changed.sort(key=lambda c: int(c["resourceVersion"]))
    return len(changed), changed[:limit]


def set_fault_delay(emulator_url, delay_ms):
    """Delays every request to the emulator by delay_ms via its fault hook (code 0 = delay only;
    an empty method and pathContains match every request)."""
    return http_json(f"{emulator_url}/emulator/v1/faults", method="POST",
                     body={"method": "", "pathContains": "", "code": 0, "count": 1_000_000_000,
                           "delayMs": delay_ms})


def emulator_delay_flag(binary):
    """The emulator's per-request delay flag, from its --help (None when it has none)."""
    r = subprocess.run([str(binary), "--help"], capture_output=True, text=True, timeout=30)
    text = r.stdout + r.stderr
    for flag in ("--delay-ms", "--request-delay-ms", "--request-delay"):
        if flag + " " in text or flag + "\n" in text or flag + "=" in text:
            return flag
    return None


# --------------------------------------------------------------------------------------------
# Phase 1: the fleet

class FleetWatcher:
    """Polls `driftless get apps -o json` and records when each application was first seen
    Synced + Healthy. Falls back to one call per hundred applications (`--name fleet-00??`)
    when the whole list keeps failing (too large a response, a timeout).

    Times are seconds since t0 (wall clock: `apply` returned). observed_at is when a poll saw the
    application Synced + Healthy (resolution: the poll interval); done_at is the status's
    reconciledAt at that moment (when the status that says so was written), or observed_at
    when reconciledAt is missing or implausible (before `apply` began or after the poll)."""

    def __init__(self, platform, names, t0, apply_began, call_timeout=60):
        self.platform = platform
        self.names = set(names)
        self.t0 = t0
        self.earliest = apply_began - t0
        self.call_timeout = call_timeout
        self.observed_at = {}
        self.done_at = {}
        self.from_observation = 0  # done_at values that fell back to observed_at
        self.failures = 0
        self.calls = 0
        self.chunked = False
        self.last_error = ""
        self.last_status = {}  # name -> (sync, health), latest seen
        self._consecutive_failures = 0
        self.polls = 0

    def _list(self, pattern=None):
        args = ["get", "apps", "-o", "json"]
        if pattern:
            args += ["--name", pattern]
        self.calls += 1
        try:
            r = self.platform.cli(*args, check=False, timeout=self.call_timeout)
        except subprocess.TimeoutExpired:
            self.failures += 1
            self.last_error = f"driftless get apps timed out after {self.call_timeout}s"
            return None
        if r.returncode != 0:
            self.failures += 1
            self.last_error = (r.stderr or r.stdout).strip()[-500:]
            return None
        try:
            return json.loads(r.stdout).get("items", [])
        except ValueError as e:
            self.failures += 1
            self.last_error = f"unparsable output: {e}"
            return None

    def _record(self, items):
        now = time.time() - self.t0
        for item in items:
            name = item.get("metadata", {}).get("name")
            if name not in self.names:
                continue
            status = item.get("status", {})
            self.last_status[name] = (status.get("sync"), status.get("health"))
            if (status.get("sync") != "Synced" or status.get("health") != "Healthy"
                    or name in self.done_at):
                continue
            self.observed_at[name] = now
            try:
                reconciled = rfc3339(status["reconciledAt"]) - self.t0
            except (KeyError, ValueError):
                reconciled = None
            if reconciled is not None and self.earliest <= reconciled <= now:
                self.done_at[name] = reconciled
            else:
                self.done_at[name] = now
                self.from_observation += 1

    def _chunk_patterns(self):
        """Name globs of 100 applications each, only for hundreds not yet all done."""
        prefixes = sorted({n[:-2] for n in self.names if n not in self.done_at})
        return [p + "??" for p in prefixes]

    def poll(self):
        self.polls += 1
        if not self.chunked:
            items = self._list()
            if items is not None:
                self._record(items)
                self._consecutive_failures = 0
                return
            self._consecutive_failures += 1
            if self._consecutive_failures >= 3:
                print(f"  get apps failed 3 times in a row ({self.last_error}); "
                      "polling per hundred applications from now on", flush=True)
                self.chunked = True
            return
        for pattern in self._chunk_patterns():
            items = self._list(pattern)
            if items is not None:
                self._record(items)

    def count_now(self):
        """A final full check: how many are Synced + Healthy right now."""
        patterns = [None] if not self.chunked else sorted({n[:-2] + "??" for n in self.names})
        ok = 0
        for pattern in patterns:
            items = self._list(pattern)
            if items is None:
                return None
            for item in items:
                s = item.get("status", {})
                if (item.get("metadata", {}).get("name") in self.names
                        and s.get("sync") == "Synced" and s.get("health") == "Healthy"):
                    ok += 1
        return ok


def poll_pause(took, poll_seconds):
    """Seconds to wait before the next poll. Small fleets (cheap calls) are polled often, for a
    fine time resolution; a call is never repeated sooner than 10x its own duration (the api
    spends at most ~10 % of its time answering us) nor later than poll_seconds after it began,
    unless the call itself took that long (then after a quarter of a second)."""
    interval = min(poll_seconds, max(0.25, 10 * took))
    return max(interval - took, 0.25 if took >= interval else 0.0)


def rfc3339(text):
    """Seconds since the epoch of an RFC 3339 UTC time with up to nanoseconds."""
    base, _, frac = text.rstrip("Z").partition(".")
    t = datetime.datetime.strptime(base, "%Y-%m-%dT%H:%M:%S").replace(
        tzinfo=datetime.timezone.utc)
    return t.timestamp() + (float("0." + frac) if frac else 0.0)


def percent_times(done_at, n):
    """Seconds at which 25/50/90/100 % of n applications were first Synced + Healthy."""
    times = sorted(done_at.values())
    out = {}
    for p in PERCENTS:
        need = max(1, -(-n * p // 100))  # ceil
        out[f"p{p}"] = round(times[need - 1], 2) if len(times) >= need else None
    return out


def run_fleet(p, args, work, width, sampler):
    names = [app_name(i, width) for i in range(args.apps)]
    print(f"- writing the repository: {args.apps} applications x {OBJECTS_PER_APP} objects",
          flush=True)
    repo = h.GitRepo(work / "repo")
    revision = write_fleet_repo(repo, args.apps, width)
    apps_file = work / "applications.yaml"
    write_applications_file(apps_file, repo.url, args.apps, width, args.interval)

    sampler.begin_window()
    print(f"- driftless apply -f {apps_file.name} ({args.apps} Applications)", flush=True)
    a0 = time.time()
    p.cli("apply", "-f", str(apps_file), timeout=args.sync_timeout)
    t0 = time.time()  # wall clock: compared with the statuses' reconciledAt
    apply_seconds = t0 - a0

    watcher = FleetWatcher(p, names, t0, a0)
    next_report = 0.0
    timed_out = False
    while len(watcher.done_at) < len(names):
        elapsed = time.time() - t0
        if elapsed > args.sync_timeout:
            timed_out = True
            break
        started = time.monotonic()
        watcher.poll()
        took = time.monotonic() - started
        if elapsed >= next_report:
            print(f"  {elapsed:6.1f}s  {len(watcher.done_at)}/{len(names)} Synced+Healthy"
                  + (f"  (get apps failures: {watcher.failures})" if watcher.failures else ""),
                  flush=True)
            next_report = elapsed + 10
        if len(watcher.done_at) < len(names):
            time.sleep(poll_pause(took, args.poll_seconds))
    synced_seconds = time.time() - t0
    resources = sampler.end_window()

    final = watcher.count_now()
    figures = {
        "revision": revision,
        "apply_seconds": round(apply_seconds, 2),
        "synced_seconds": round(max(watcher.done_at.values()), 2) if watcher.done_at else None,
        "wait_seconds": round(synced_seconds, 2),
        "percent_synced_healthy_at": percent_times(watcher.done_at, len(names)),
        "percent_observed_at": percent_times(watcher.observed_at, len(names)),
        "observed_seconds": round(max(watcher.observed_at.values()), 2)
        if watcher.observed_at else None,
        "times_from_observation": watcher.from_observation,
        "synced_healthy": len(watcher.done_at),
        "synced_healthy_final_check": final,
        "timed_out": timed_out,
        "get_apps_calls": watcher.calls,
        "poll_mean_interval_seconds": round(synced_seconds / max(1, watcher.polls), 2),
        "get_apps_failures": watcher.failures,
        "get_apps_last_error": watcher.last_error,
        "polled_per_hundred": watcher.chunked,
        **resources,
    }
    if timed_out:
        stuck = {n: watcher.last_status.get(n) for n in names if n not in watcher.done_at}
        figures["not_synced_examples"] = dict(list(sorted(stuck.items()))[:10])
    return figures


# --------------------------------------------------------------------------------------------
# Phase 1b: webhook pushes into the registered fleet

def metric_value(metrics_url, name, labels):
    """One series of a Prometheus metric, e.g. labels='result="rendered"' (None: unreadable)."""
    try:
        with urllib.request.urlopen(metrics_url, timeout=10) as r:
            text = r.read().decode("utf-8", "replace")
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(f"{name}{{{labels}}} "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def desired_seqs(p):
    r = p.cli("get", "apps", "-o", "json", timeout=120)
    return {i["metadata"]["name"]: int(i.get("status", {}).get("desiredSeq", 0) or 0)
            for i in json.loads(r.stdout).get("items", [])}


def run_webhook(p, args, work, width):
    """--webhook-rounds commits, each changing --webhook-apps applications' ConfigMaps, each
    announced by one authenticated POST to a generic Receiver. Per round: from the POST to every
    touched application applied at the new commit (its status's reconciledAt), how many
    applications got a new desired generation (must be exactly the touched ones: the others'
    paths did not change) and how many renders ran (the renderer's counter)."""
    repo = h.GitRepo(work / "repo")
    p.apply("apiVersion: driftless.dev/v1alpha1\nkind: Receiver\nmetadata: {name: fleet-push}\n"
            "spec: {type: generic, secret: fleet-bench-token}\n")
    endpoints = p.endpoints()
    hook = endpoints["webhooks"].rstrip("/") + "/fleet-push"  # the base already ends in /hooks
    renderer_metrics = endpoints["services"]["renderer"]["metrics"]
    rounds = []
    step = max(1, args.apps // max(1, args.webhook_apps))
    for rnd in range(args.webhook_rounds):
        touched = [((k * step) + rnd) % args.apps for k in range(args.webhook_apps)]
        names = [app_name(i, width) for i in touched]
        before = desired_seqs(p)
        renders_before = metric_value(renderer_metrics, "driftless_renderer_renders_total",
                                      'result="rendered"')
        for i in touched:
            path = repo.path / app_path(i, width) / "config-0.yaml"
            path.write_text(configmap_yaml(0, app_name(i, width)).replace(
                f'index: "0"', f'index: "0-round-{rnd}"'))
        commit = repo.commit(f"webhook round {rnd}: {len(touched)} applications")
        body = json.dumps({"repoURL": repo.url, "ref": "refs/heads/main",
                           "after": commit}).encode()
        req = urllib.request.Request(hook, data=body, method="POST", headers={
            "Content-Type": "application/json", "Authorization": "Bearer fleet-bench-token",
            "X-Delivery-Id": f"fleet-bench-{os.getpid()}-{rnd}"})
        posted = time.time()
        with urllib.request.urlopen(req, timeout=30) as r:
            if r.status != 202:
                raise RuntimeError(f"webhook answered {r.status}")
        applied = {}
        deadline = posted + 60
        while len(applied) < len(names) and time.time() < deadline:
            for n in names:
                if n in applied:
                    continue
                st = p.app_json(n).get("status", {})
                if st.get("lastAppliedRevision") == commit and st.get("sync") == "Synced":
                    try:
                        applied[n] = rfc3339(st["reconciledAt"]) - posted
                    except (KeyError, ValueError):
                        applied[n] = time.time() - posted
            time.sleep(0.05)
        if len(applied) < len(names):
            raise RuntimeError(f"webhook round {rnd}: {len(applied)}/{len(names)} applied in 60s")
        time.sleep(2)  # anything else the commit minted would show by now
        after = desired_seqs(p)
        minted = sorted(n for n, seq in after.items() if seq != before.get(n))
        renders = metric_value(renderer_metrics, "driftless_renderer_renders_total",
                               'result="rendered"')
        rounds.append({"commit": commit[:7], "all_applied_seconds": round(max(applied.values()), 3),
                       "per_app_seconds": sorted(round(v, 3) for v in applied.values()),
                       "minted": len(minted), "minted_exactly_touched": minted == sorted(names),
                       "renders": (int(renders - renders_before)
                                   if renders is not None and renders_before is not None
                                   else None)})
        print(f"  round {rnd}: {len(names)} applied {rounds[-1]['all_applied_seconds']:.3f} s "
              f"after the POST; minted {len(minted)}, rendered {rounds[-1]['renders']}",
              flush=True)
    alls = sorted(r["all_applied_seconds"] for r in rounds)
    per_app = sorted(v for r in rounds for v in r["per_app_seconds"])
    return {"rounds": rounds, "apps_per_round": args.webhook_apps,
            "all_applied_p50_seconds": alls[len(alls) // 2],
            "per_app_p50_seconds": per_app[len(per_app) // 2],
            "minted_exactly_touched": all(r["minted_exactly_touched"] for r in rounds)}


def run_drift(p, args, width):
    """--drift-edits edits, one after the other, each of one ConfigMap of another application,
    sent as `kubectl edit` sends them (a merge patch, fieldManager kubectl-edit) straight to the
    emulator; each measured from the PATCH's answer until a GET (every 10 ms) sees the value
    git has again (self-heal: the planner's watch, a new desired generation, the applier)."""
    emulator = p.endpoints()["emulator"]
    seconds = []
    step = max(1, args.apps // max(1, args.drift_edits))
    for k in range(args.drift_edits):
        i = (k * step + args.apps // 2) % args.apps
        app, cm = app_name(i, width), k % CONFIGMAPS_PER_APP
        url = f"{emulator}/api/v1/namespaces/{app}/configmaps/config-{cm}"
        req = urllib.request.Request(
            url + "?fieldManager=kubectl-edit", method="PATCH",
            data=json.dumps({"data": {"index": f"edited-{k}"}}).encode(),
            headers={"Content-Type": "application/merge-patch+json"})
        with urllib.request.urlopen(req, timeout=30) as r:
            r.read()
        edited = time.monotonic()
        while True:
            if http_json(url)["data"].get("index") == str(cm):
                seconds.append(time.monotonic() - edited)
                break
            if time.monotonic() - edited > 60:
                raise RuntimeError(f"drift of {app} config-{cm} not corrected in 60 s")
            time.sleep(0.01)
    seconds.sort()
    figures = {"edits": len(seconds), "p50_seconds": round(seconds[len(seconds) // 2], 3),
               "p90_seconds": round(seconds[min(len(seconds) - 1, len(seconds) * 9 // 10)], 3),
               "max_seconds": round(seconds[-1], 3)}
    print(f"  {figures['edits']} edits restored: p50 {figures['p50_seconds']:.3f} s, "
          f"p90 {figures['p90_seconds']:.3f} s, max {figures['max_seconds']:.3f} s", flush=True)
    return figures


# --------------------------------------------------------------------------------------------
# Phase 2: idle

def metric_sum(metrics_url, name):
    """The sum of every series of one Prometheus metric (None when it cannot be read)."""
    try:
        with urllib.request.urlopen(metrics_url, timeout=10) as r:
            text = r.read().decode("utf-8", "replace")
    except OSError:
        return None
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and line[len(name):len(name) + 1] in ("{", " "):
            total += float(line.rsplit(" ", 1)[1])
    return total


def run_idle(p, args, sampler):
    """CPU of every platform process and cluster writes over --idle-seconds of no activity.
    Also counts the repo-poller's git polls (ls-remote) in the window, to show that the
    applications' interval (3m) polls happened inside it."""
    endpoints = p.endpoints()
    emulator = endpoints["emulator"]
    poller_metrics = endpoints.get("services", {}).get("repo-poller", {}).get("metrics")
    ls_remote = "driftless_repo_poller_ls_remote_total"
    if args.settle_seconds > 0:
        time.sleep(args.settle_seconds)
    print(f"- idle for {args.idle_seconds:.0f}s", flush=True)
    rv_before = cluster_resource_version(emulator)
    polls_before = metric_sum(poller_metrics, ls_remote) if poller_metrics else None
    sampler.begin_window()
    time.sleep(args.idle_seconds)
    resources = sampler.end_window()
    polls_after = metric_sum(poller_metrics, ls_remote) if poller_metrics else None
    rv_after = cluster_resource_version(emulator)
    figures = {"seconds": args.idle_seconds, "settle_seconds": args.settle_seconds,
               "resource_version_before": rv_before, "resource_version_after": rv_after,
               "cluster_writes": rv_after - rv_before,
               "git_polls": (int(polls_after - polls_before)
                             if polls_before is not None and polls_after is not None else None),
               **resources}
    if rv_after != rv_before:
        count, examples = objects_changed_since(emulator, rv_before)
        figures["changed_objects"] = count
        figures["changed_examples"] = examples
    return figures


# --------------------------------------------------------------------------------------------
# Phase 3: kubectl baseline

def start_emulator(binary, work, delay_ms):
    """A fresh emulator on a free port; returns (Popen, url, kubeconfig path, how it delays)."""
    work.mkdir(parents=True, exist_ok=True)
    kubeconfig, ready = work / "kubeconfig", work / "emulator.ready"
    cmd = [str(binary), "--port", "0", "--write-kubeconfig", str(kubeconfig),
           "--ready-file", str(ready)]
    delay_via = None
    if delay_ms > 0:
        flag = emulator_delay_flag(binary)
        if flag:
            cmd += [flag, str(delay_ms)]
            delay_via = flag
    log = open(work / "emulator.log", "w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    deadline = time.monotonic() + 30
    while not ready.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"baseline emulator did not start (exit {proc.poll()}):\n"
                               + (work / "emulator.log").read_text()[-2000:])
        time.sleep(0.05)
    url = ready.read_text().strip()
    if delay_ms > 0 and delay_via is None:
        set_fault_delay(url, delay_ms)
        delay_via = "fault hook"
    return proc, url, kubeconfig, delay_via


def run_kubectl_baseline(args, work, width, started):
    base = work / "kubectl"
    base.mkdir(parents=True, exist_ok=True)
    manifests = base / "fleet.yaml"
    count = write_kubectl_manifests(manifests, args.apps, width)
    proc, url, kubeconfig, delay_via = start_emulator(args.emulator_binary, base / "emulator",
                                                      args.emulator_delay_ms)
    started.append(proc)
    cmd = [args.kubectl, "--kubeconfig", str(kubeconfig), "--cache-dir", str(base / "cache"),
           "apply", "--server-side", "-f", str(manifests)]
    print(f"- kubectl apply --server-side of {count} objects (fresh emulator {url})", flush=True)
    emulator_cpu0 = proc_cpu_seconds(proc.pid) or 0.0
    children0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(base / "kubectl.out", "w") as out:
        t0 = time.monotonic()
        r = subprocess.run(cmd, stdout=out, stderr=subprocess.PIPE, text=True,
                           timeout=args.sync_timeout)
        seconds = time.monotonic() - t0
    children1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    emulator_cpu = (proc_cpu_seconds(proc.pid) or 0.0) - emulator_cpu0
    with open(base / "kubectl.out") as out:
        applied = sum(1 for _ in out)
    kubectl_cpu = ((children1.ru_utime - children0.ru_utime)
                   + (children1.ru_stime - children0.ru_stime))
    figures = {"seconds": round(seconds, 2), "objects": count, "lines_out": applied,
               "exit_code": r.returncode, "delay_via": delay_via,
               "kubectl_cpu_seconds": round(kubectl_cpu, 2),
               "emulator_cpu_seconds": round(emulator_cpu, 2)}
    if r.returncode != 0:
        figures["stderr_tail"] = r.stderr[-1500:]
    try:
        figures["cluster_resource_version"] = cluster_resource_version(url)
    except OSError:
        pass
    stop_process(proc)
    return figures


def stop_process(proc, timeout=15):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# --------------------------------------------------------------------------------------------
# Report

def targets(fig):
    out = {}
    k, f, idle = fig.get("kubectl"), fig.get("fleet"), fig.get("idle")
    if f and k and k.get("seconds"):
        out["driftless_over_kubectl_lt_1"] = fig["driftless_over_kubectl"] is not None and \
            fig["driftless_over_kubectl"] < 1.0
    if f:
        out["peak_services_rss_sum_lt_200_mib"] = f["peak_services_rss_sum_mib"] < 200
    w = fig.get("webhook")
    if w:
        out["webhook_all_applied_p50_lt_2_s"] = w["all_applied_p50_seconds"] < 2.0
        out["webhook_per_app_p50_lt_500_ms"] = w["per_app_p50_seconds"] < 0.5
        out["webhook_minted_exactly_touched"] = w["minted_exactly_touched"]
    d = fig.get("drift")
    if d:
        out["drift_restored_p50_lt_1_s"] = d["p50_seconds"] < 1.0
        out["drift_peak_services_rss_sum_lt_300_mib"] = d["peak_services_rss_sum_mib"] < 300
    if idle:
        out["idle_cpu_lt_3_s"] = idle["cpu_total"] < 3.0
        out["idle_cluster_writes_0"] = idle["cluster_writes"] == 0
    return out


def print_report(fig):
    f, idle, k = fig.get("fleet"), fig.get("idle"), fig.get("kubectl")
    print()
    print(f"fleet: {fig['apps']} applications x {OBJECTS_PER_APP} objects, "
          f"emulator delay {fig['emulator_delay_ms']} ms"
          + (f" ({fig['platform_delay_via']})" if fig["emulator_delay_ms"] else ""))
    if f:
        print(f"  driftless apply                {f['apply_seconds']:8.2f} s")
        print(f"  {'':30} {'status':>8}   {'poll saw it':>11}")
        for p in PERCENTS:
            v = f["percent_synced_healthy_at"][f"p{p}"]
            o = f["percent_observed_at"][f"p{p}"]
            print(f"  {p:3d}% Synced+Healthy after     "
                  + (f"{v:8.2f} s" if v is not None else "     n/a  ")
                  + (f" {o:11.2f} s" if o is not None else "         n/a"))
        print(f"  Synced+Healthy (final check)   {f['synced_healthy_final_check']}/{fig['apps']}"
              f"   get apps calls {f['get_apps_calls']}, failures {f['get_apps_failures']}, "
              f"every {f['poll_mean_interval_seconds']:.2f} s"
              + (", per hundred" if f["polled_per_hundred"] else ""))
    w = fig.get("webhook")
    if w:
        print(f"  webhook push -> {w['apps_per_round']} apps applied   p50 "
              f"{w['all_applied_p50_seconds']:.3f} s (each app p50 {w['per_app_p50_seconds']:.3f} s)"
              f"; only the touched apps minted: {w['minted_exactly_touched']}; renders per round "
              f"{[r['renders'] for r in w['rounds']]}")
    d = fig.get("drift")
    if d:
        print(f"  kubectl-edit drift restored    p50 {d['p50_seconds']:.3f} s, p90 "
              f"{d['p90_seconds']:.3f} s, max {d['max_seconds']:.3f} s over {d['edits']} edits "
              f"(goal p50 < 1 s); the six services' peak RSS meanwhile "
              f"{d['peak_services_rss_sum_mib']:.1f} MiB (goal < 300)")
    if k:
        print(f"  kubectl apply --server-side    {k['seconds']:8.2f} s  ({k['objects']} objects, "
              f"exit {k['exit_code']}; kubectl {k['kubectl_cpu_seconds']:.2f} CPU s, "
              f"its emulator {k['emulator_cpu_seconds']:.2f} CPU s)")
    if fig.get("driftless_over_kubectl") is not None:
        print(f"  driftless / kubectl            {fig['driftless_over_kubectl']:8.2f}"
              "   (goal < 1.0)")

    names = sorted(set((f or {}).get("cpu_seconds", {})) | set((idle or {}).get("cpu_seconds", {})),
                   key=lambda n: (n not in SERVICES, SERVICES.index(n) if n in SERVICES else 0, n))
    if names:
        print()
        print(f"  {'process':<14} {'sync CPU s':>10} {'sync peak RSS MiB':>18} "
              f"{'idle CPU s':>10} {'idle RSS MiB':>13}")
        for n in names:
            def cell(d, key, fmt):
                v = (d or {}).get(key, {}).get(n)
                return fmt.format(v) if v is not None else "-"
            print(f"  {n:<14} {cell(f, 'cpu_seconds', '{:.2f}'):>10} "
                  f"{cell(f, 'peak_rss_mib', '{:.1f}'):>18} "
                  f"{cell(idle, 'cpu_seconds', '{:.2f}'):>10} "
                  f"{cell(idle, 'peak_rss_mib', '{:.1f}'):>13}")
        total = [f"{d['cpu_total']:.2f}" if d else "-" for d in (f, idle)]
        print(f"  {'total':<14} {total[0]:>10} {'':>18} {total[1]:>10}")
    if f:
        print(f"  peak RSS of the six services together: {f['peak_services_rss_sum_mib']:.1f} MiB"
              "   (goal < 200)")
        if f.get("restarts"):
            print(f"  RESTARTED during the sync: {f['restarts']}")
    if idle:
        print(f"  idle {idle['seconds']:.0f}s: {idle['cpu_total']:.2f} CPU s (goal < 3), "
              f"{idle['cluster_writes']} cluster writes (goal 0), "
              f"{idle['git_polls'] if idle['git_polls'] is not None else '?'} git polls "
              "(ls-remote) by the repo-poller")
        for c in idle.get("changed_examples", []):
            print(f"    changed: {c['kind']} {c['namespace']}/{c['name']} rv {c['resourceVersion']}"
                  f" managers {','.join(c['managers'])}")
    t = fig.get("targets", {})
    if t:
        print()
        print("targets: " + ", ".join(f"{k} {'ok' if v else 'MISSED'}" for k, v in t.items()))


# --------------------------------------------------------------------------------------------

def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--apps", type=int, default=1000, help="applications (10 objects each)")
    ap.add_argument("--emulator-delay-ms", type=int, default=0,
                    help="delay every emulator request by this many ms (both emulators)")
    ap.add_argument("--idle-seconds", type=float, default=180.0,
                    help="idle window after the sync (180 s includes one repo-poller resync)")
    ap.add_argument("--settle-seconds", type=float, default=10.0,
                    help="wait between the last app Synced+Healthy and the idle window")
    ap.add_argument("--poll-seconds", type=float, default=2.0,
                    help="at most this long between two polls of `driftless get apps` "
                         "(cheap calls: more often)")
    ap.add_argument("--sync-timeout", type=float, default=1800.0,
                    help="give up when the fleet is not Synced+Healthy after this many seconds")
    ap.add_argument("--interval", default="3m", help="spec.interval of every Application")
    ap.add_argument("--skip-kubectl", action="store_true", help="no kubectl baseline")
    ap.add_argument("--drift-edits", type=int, default=20,
                    help="managed objects edited behind driftless's back, one at a time")
    ap.add_argument("--webhook-rounds", type=int, default=5,
                    help="webhook pushes after the fleet sync (0: none)")
    ap.add_argument("--webhook-apps", type=int, default=5,
                    help="applications each webhook push's commit touches")
    ap.add_argument("--build-dir", default=str(ROOT / "build"))
    ap.add_argument("--kubectl", help="kubectl 1.32 (default: .tools/bin/kubectl, "
                                      "else /usr/lib/google-cloud-sdk/bin/kubectl.1.32)")
    ap.add_argument("--work-dir", help="use this directory instead of a temporary one (kept)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    ap.add_argument("--json", help="write the figures here as JSON")
    ap.add_argument("--check-targets", action="store_true",
                    help="exit 1 when a target is missed (default: exit 0 once it completed)")
    args = ap.parse_args()
    if not 1 <= args.apps <= 99999:
        ap.error("--apps must be between 1 and 99999")
    build = pathlib.Path(args.build_dir).resolve()
    args.build = build
    args.emulator_binary = build / "tools" / "kube-emulator" / "driftless-kube-emulator"
    if not args.kubectl:
        candidates = [os.environ.get("DRIFTLESS_KUBECTL"), str(ROOT / ".tools" / "bin" / "kubectl"),
                      "/usr/lib/google-cloud-sdk/bin/kubectl.1.32"]
        args.kubectl = next((c for c in candidates if c and os.access(c, os.X_OK)), "kubectl")
    return args


def check_binaries(args):
    needed = [args.build / "cli" / "driftless", args.emulator_binary]
    needed += [args.build / "services" / s / f"driftless-{s}" for s in SERVICES]
    missing = [str(b) for b in needed if not os.access(b, os.X_OK)]
    if missing:
        sys.exit("missing binaries (build first):\n  " + "\n  ".join(missing))
    if not args.skip_kubectl and not shutil.which(args.kubectl):
        sys.exit(f"kubectl not found: {args.kubectl} (--kubectl or --skip-kubectl)")


def run(args, work, figures):
    """The three phases; fills `figures` as it goes (so a failure still reports what ran)."""
    width = max(4, len(str(args.apps - 1)))
    started = []  # processes we start ourselves (the baseline emulator)
    try:
        print(f"- driftless up in {work / 'state'}", flush=True)
        # The platform's emulator gets the delay flag through `driftless up --emulator-arg`
        # (every request from the start), else the fault hook after start.
        flag = emulator_delay_flag(args.emulator_binary) if args.emulator_delay_ms > 0 else None
        p = h.Platform(work / "state", timeout="180s",
                       emulator_args=[f"{flag}={args.emulator_delay_ms}"] if flag else [])
        try:
            p.up()  # fails with the tail of DIR/logs/*.log
            emulator = p.endpoints().get("emulator")
            if not emulator:
                raise RuntimeError("endpoints.json has no emulator URL")
            if args.emulator_delay_ms > 0 and flag:
                figures["platform_delay_via"] = f"driftless up --emulator-arg={flag}"
            elif args.emulator_delay_ms > 0:
                set_fault_delay(emulator, args.emulator_delay_ms)
                figures["platform_delay_via"] = "fault hook"
            sampler = Sampler(p.state_dir)
            sampler.start()
            try:
                fleet = run_fleet(p, args, work, width, sampler)
                figures["fleet"] = fleet
                if fleet["timed_out"]:
                    figures["error"] = (f"only {fleet['synced_healthy']}/{args.apps} applications "
                                        f"Synced+Healthy after {args.sync_timeout:.0f}s")
                    figures["log_tail"] = p.logs_tail(20)
                    return
                if args.webhook_rounds > 0:
                    print(f"- webhook pushes: {args.webhook_rounds} rounds of "
                          f"{args.webhook_apps} applications", flush=True)
                    figures["webhook"] = run_webhook(p, args, work, width)
                if args.drift_edits > 0:
                    print(f"- drift: {args.drift_edits} edits of managed objects", flush=True)
                    sampler.begin_window()
                    figures["drift"] = run_drift(p, args, width)
                    window = sampler.end_window()
                    figures["drift"]["peak_services_rss_sum_mib"] = \
                        window["peak_services_rss_sum_mib"]
                    figures["drift"]["peak_rss_mib"] = window["peak_rss_mib"]
                if args.idle_seconds > 0:
                    figures["idle"] = run_idle(p, args, sampler)
            finally:
                sampler.stop()
        finally:
            print("- driftless down", flush=True)
            p.close()  # `driftless down`, then SIGKILL to every pid it recorded, if alive
        if not args.skip_kubectl:
            figures["kubectl"] = run_kubectl_baseline(args, work, width, started)
    finally:
        for proc in started:
            stop_process(proc)


def main():
    args = parse_args()
    check_binaries(args)
    os.environ["DRIFTLESS_CLI"] = str(args.build / "cli" / "driftless")
    os.environ["DRIFTLESS_BUILD_DIR"] = str(args.build)
    os.environ["DRIFTLESS_KUBECTL"] = args.kubectl
    sys.path.insert(0, str(ROOT / "tests" / "e2e"))
    global h
    import harness as h  # noqa: E402 - reads the environment above at import

    if args.work_dir:
        work = pathlib.Path(args.work_dir).resolve()
        work.mkdir(parents=True, exist_ok=True)
    else:
        work = pathlib.Path(tempfile.mkdtemp(prefix="driftless-fleet-"))
    figures = {"apps": args.apps, "objects_per_app": OBJECTS_PER_APP,
               "emulator_delay_ms": args.emulator_delay_ms, "platform_delay_via": None}
    failed = False
    try:
        run(args, work, figures)
    except (AssertionError, RuntimeError, OSError, subprocess.SubprocessError) as e:
        failed = True
        figures["error"] = str(e)
        print(f"\nFAILED: {e}", file=sys.stderr)
    finally:
        if args.keep or args.work_dir:
            print(f"(kept {work})")
        else:
            shutil.rmtree(work, ignore_errors=True)

    f, k = figures.get("fleet"), figures.get("kubectl")
    figures["driftless_over_kubectl"] = None
    if f and k and f.get("synced_seconds") and k["seconds"] > 0 and not f["timed_out"]:
        figures["driftless_over_kubectl"] = round(f["synced_seconds"] / k["seconds"], 3)
    figures["targets"] = targets(figures)
    print_report(figures)
    if "error" in figures and not failed:
        print(f"\nFAILED: {figures['error']}\n{figures.get('log_tail', '')}", file=sys.stderr)
        failed = True
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    if failed:
        return 2
    if args.check_targets and not all(figures["targets"].values()):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
