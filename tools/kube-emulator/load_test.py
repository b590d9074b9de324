#!/usr/bin/env python3
"""Load test of the driftless-kube-emulator binary over HTTP: the emulator's own CPU time.

  tools/kube-emulator/load_test.py BUILD_DIR/tools/kube-emulator/driftless-kube-emulator \
      [--apps 1000] [--clients 8] [--idle 60] [--delay-ms 0]

Starts the emulator (port 0, --state-file in a temp dir), then:
  1. applies APPS applications (a Namespace and 10 objects each: 8 ConfigMaps, a Service, a
     Deployment, labelled driftless.dev/application) with server-side apply from CLIENTS
     concurrent keep-alive connections, each application followed by what a planner reads
     (the cluster's Namespaces, the application's objects by label selector, each object);
  2. times single requests against the loaded emulator (GET, LIST in a namespace, LIST by
     label selector, LIST of every Namespace);
  3. leaves it idle for IDLE seconds.
Reports the emulator's CPU seconds (utime + stime from /proc) for each phase, and the bytes
written to its state file while idle. Requests send `Accept-Encoding: deflate, gzip, br, zstd`
as libcurl does. Standard library only.
"""
import argparse
import http.client
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

ACCEPT = {"Accept-Encoding": "deflate, gzip, br, zstd", "Accept": "application/json"}
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def objects(app):
    ns = f"app-{app}"
    labels = {"driftless.dev/application": ns, "app.kubernetes.io/part-of": "load"}
    out = [("/api/v1/namespaces", ns, {
        "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": labels}})]
    for i in range(8):
        out.append((f"/api/v1/namespaces/{ns}/configmaps", f"config-{i}", {
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": f"config-{i}", "namespace": ns, "labels": labels},
            "data": {f"key-{k}": chr(97 + k) * 96 for k in range(8)}}))
    out.append((f"/api/v1/namespaces/{ns}/services", "web", {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "web", "namespace": ns, "labels": labels},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]}}))
    out.append((f"/apis/apps/v1/namespaces/{ns}/deployments", "web", {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": ns, "labels": labels},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "web", "image": "nginx:1.27",
                                                       "ports": [{"containerPort": 8080}]}]}}}}))
    return ns, out


def request(conn, method, path, body=None, headers=None):
    h = dict(ACCEPT)
    if headers:
        h.update(headers)
    conn.request(method, path, body=body, headers=h)
    r = conn.getresponse()
    data = r.read()
    if r.status >= 300:
        raise RuntimeError(f"{method} {path}: {r.status} {data[:200]!r}")
    return data


def apply_app(conn, app):
    ns, objs = objects(app)
    for collection, name, obj in objs:
        request(conn, "PATCH", f"{collection}/{name}?fieldManager=load&force=true",
                json.dumps(obj), {"Content-Type": "application/apply-patch+yaml"})
    # What a plan reads.
    request(conn, "GET", "/api/v1/namespaces")
    sel = f"labelSelector=driftless.dev%2Fapplication%3D{ns}"
    request(conn, "GET", f"/api/v1/namespaces/{ns}/configmaps?{sel}")
    request(conn, "GET", f"/api/v1/namespaces/{ns}/services?{sel}")
    request(conn, "GET", f"/apis/apps/v1/namespaces/{ns}/deployments?{sel}")
    for collection, name, _ in objs[1:]:
        request(conn, "GET", f"{collection}/{name}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("--apps", type=int, default=1000)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--idle", type=float, default=60)
    ap.add_argument("--delay-ms", type=int, default=0)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="kube-emu-load-")
    state = os.path.join(tmp, "state.json")
    ready = os.path.join(tmp, "ready")
    cmd = [args.binary, "--port", "0", "--ready-file", ready, "--state-file", state]
    if args.delay_ms:
        cmd += ["--delay-ms", str(args.delay_ms)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(400):
            if os.path.exists(ready) and open(ready).read().endswith("\n"):
                break
            time.sleep(0.05)
        port = int(open(ready).read().strip().rsplit(":", 1)[1])
        cpu0, t0 = cpu_seconds(proc.pid), time.time()
        next_app = [0]
        lock = threading.Lock()
        errors = []

        def worker():
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            while True:
                with lock:
                    app = next_app[0]
                    next_app[0] += 1
                if app >= args.apps:
                    return
                try:
                    apply_app(conn, app)
                except Exception as e:  # reported below
                    errors.append(str(e))
                    return

        threads = [threading.Thread(target=worker) for _ in range(args.clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            print("errors:", errors[:3], file=sys.stderr)
            return 1
        load_cpu, load_wall = cpu_seconds(proc.pid) - cpu0, time.time() - t0
        print(f"load: {args.apps} apps x 11 objects applied + planned by {args.clients} clients: "
              f"{load_wall:.1f} s wall, emulator CPU {load_cpu:.1f} s")

        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        probes = [
            ("GET deployment", "/apis/apps/v1/namespaces/app-7/deployments/web"),
            ("LIST configmaps in a namespace", "/api/v1/namespaces/app-7/configmaps"),
            ("LIST configmaps by label, all namespaces",
             "/api/v1/configmaps?labelSelector=driftless.dev%2Fapplication%3Dapp-7"),
            ("LIST every namespace", "/api/v1/namespaces"),
        ]
        for label, path in probes:
            n = 1000 if "every" not in label else 100
            c0, w0 = cpu_seconds(proc.pid), time.time()
            size = 0
            for _ in range(n):
                size = len(request(conn, "GET", path))
            print(f"  {label}: {(time.time() - w0) / n * 1e3:.2f} ms/request wall, "
                  f"emulator CPU {(cpu_seconds(proc.pid) - c0) / n * 1e3:.2f} ms/request, "
                  f"{size} bytes")
        conn.close()
        time.sleep(6)  # past cpp-httplib's 5 s keep-alive of the closed connections

        def state_bytes():
            total = 0
            for p in (state, state + ".log"):
                try:
                    st = os.stat(p)
                    total += st.st_size
                except FileNotFoundError:
                    pass
            return total, max((os.stat(p).st_mtime for p in (state, state + ".log")
                               if os.path.exists(p)), default=0)

        c0 = cpu_seconds(proc.pid)
        b0, m0 = state_bytes()
        time.sleep(args.idle)
        b1, m1 = state_bytes()
        idle = cpu_seconds(proc.pid) - c0
        print(f"idle {args.idle:.0f} s: emulator CPU {idle:.2f} s "
              f"({idle / args.idle * 60:.2f} s per minute), state files "
              f"{'rewritten' if m1 != m0 else 'untouched'} ({b0} -> {b1} bytes)")
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    return 0


if __name__ == "__main__":
    sys.exit(main())
