#!/usr/bin/env python3
"""nodes_bench.py - several ssld nodes on one PostgreSQL database against one node on SQLite.

Two parts, each printed as a table:
1. The queue's operations (tests/service/test_claims: every "node" a thread with its own
   connections, claiming, renewing and finishing every queued job): claim, renew and finish
   latency p50/p99, cycles per second, and the cost of a metric row in the batch writer, for
   SQLite with 1 node and PostgreSQL with 1 and N nodes.
2. The API under the dashboard's reads while jobs are submitted: CLIENTS client threads (spread
   over the nodes) poll GET /v1/jobs, /v1/jobs/{id}, /v1/jobs/{id}/metrics and /v1/health for
   SECONDS, and one thread submits a job every 0.2 s, against one SQLite node and against N nodes
   on one PostgreSQL database: requests per second and latency p50/p99 per configuration.
The last line is one JSON object with every figure. PostgreSQL is a throwaway server started here
(tests/support/pgserver.py); the numbers are this box's, measured with the clients on the same CPU.

    bench/run nodes [--nodes 4] [--jobs 2000] [--clients 8] [--seconds 10]
"""
import argparse
import http.client
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "service"))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "reliability"))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "support"))
from ssld_harness import Daemon  # noqa: E402
from rel_common import idx_job, small_dataset  # noqa: E402
import pgserver  # noqa: E402


def pct(xs, p):
    xs = sorted(xs)
    return xs[int(p * (len(xs) - 1))] if xs else float("nan")


def claims(exe, backend, nodes, jobs, url=None):
    env = dict(os.environ)
    args = [exe] + (["pg"] if backend == "postgresql" else []) + ["--nodes", str(nodes), "--jobs", str(jobs)]
    if url:
        env["SSLD_TEST_PG_URL"] = url
    p = subprocess.run(args, capture_output=True, text=True, env=env)
    if p.returncode != 0:
        raise SystemExit("test_claims failed (%d):\n%s%s" % (p.returncode, p.stdout, p.stderr))
    return json.loads([line for line in p.stdout.splitlines() if line.startswith("{")][-1])


def api_load(nodes, ids, clients, seconds, spec):
    """(requests/s, p50 ms, p99 ms, errors) of the dashboard's reads spread over nodes, with one submitter."""
    lat, errors, stop = [], [0], threading.Event()
    lock = threading.Lock()

    def reader(d, seed):
        rnd = random.Random(seed)
        c = http.client.HTTPConnection("127.0.0.1", d.port, timeout=30)
        mine = []
        while not stop.is_set():
            jid = rnd.choice(ids)
            path = rnd.choice(["/v1/jobs?limit=50", "/v1/jobs/%d" % jid, "/v1/jobs/%d/metrics?after=0" % jid, "/v1/health"])
            t0 = time.perf_counter()
            try:
                c.request("GET", path)
                r = c.getresponse()
                r.read()
                ok = r.status == 200
            except OSError:
                ok = False
                c.close()
                c = http.client.HTTPConnection("127.0.0.1", d.port, timeout=30)
            mine.append((time.perf_counter() - t0) * 1e3)
            if not ok:
                with lock:
                    errors[0] += 1
        with lock:
            lat.extend(mine)

    def submitter():
        i = 0
        while not stop.wait(0.2):
            d = nodes[i % len(nodes)]
            s, _ = d.post("/v1/jobs", dict(spec, name="load-%d" % i))
            if s != 201:
                with lock:
                    errors[0] += 1
            i += 1

    threads = [threading.Thread(target=reader, args=(nodes[k % len(nodes)], k)) for k in range(clients)]
    threads.append(threading.Thread(target=submitter))
    for t in threads:
        t.start()
    time.sleep(seconds)   # the measurement window itself
    stop.set()
    for t in threads:
        t.join()
    return len(lat) / seconds, pct(lat, 0.5), pct(lat, 0.99), errors[0]


def seed_jobs(exe, db_args, data, files, n=20):
    """n finished tiny jobs (with metrics) in the database, run by one node that then stops."""
    d = Daemon(exe)
    try:
        d.start(*db_args, "--workers", "1", "--job-threads", "1", "--data-root", data)
        spec = idx_job("seed", files, hidden=(16,), pretrain={"epochs": 1, "batch_size": 64, "max_steps": 20})
        ids = [d.post("/v1/jobs", dict(spec, name="seed-%d" % i))[1]["id"] for i in range(n)]
        for jid in ids:
            d.wait_state(jid, ["succeeded", "failed"], timeout=300)
        d.stop()
        return ids
    finally:
        d.cleanup()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ssld", required=True)
    ap.add_argument("--claims-exe", required=True)
    ap.add_argument("--nodes", type=int, default=4)
    ap.add_argument("--jobs", type=int, default=2000)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=10)
    a = ap.parse_args()
    why = pgserver.skip_reason()
    if why:
        print("nodes_bench: " + why)
        return 77
    root = tempfile.mkdtemp(prefix="ssld-nodes-bench-")
    out = {"nodes": a.nodes}
    try:
        with pgserver.PgServer() as pg:
            # 1. the queue's operations
            rows = [("SQLite", 1, claims(a.claims_exe, "sqlite", 1, a.jobs)),
                    ("PostgreSQL", 1, claims(a.claims_exe, "postgresql", 1, a.jobs, pg.create_db("claims1"))),
                    ("PostgreSQL", a.nodes, claims(a.claims_exe, "postgresql", a.nodes, a.jobs, pg.create_db("claimsn")))]
            print("queue operations, %d jobs (ms)" % a.jobs)
            print("%-11s %5s %9s %9s %9s %9s %9s %9s %9s %10s" % ("backend", "nodes", "claim p50", "claim p99", "renew p50",
                                                                    "renew p99", "fin p50", "fin p99", "cycles/s", "row us"))
            for name, n, r in rows:
                print("%-11s %5d %9.3f %9.3f %9.3f %9.3f %9.3f %9.3f %9.0f %10.2f" % (
                    name, n, r["claim_p50_ms"], r["claim_p99_ms"], r["renew_p50_ms"], r["renew_p99_ms"],
                    r["finish_p50_ms"], r["finish_p99_ms"], r["cycles_per_s"], r["metric_row_us"]))
                out["%s_%d" % (r["backend"], n)] = r

            # 2. the API under reads and submits
            data = os.path.join(root, "data")
            os.makedirs(data)
            files = small_dataset(data)
            spec = idx_job("load", files, hidden=(16,), pretrain={"epochs": 1, "batch_size": 64, "max_steps": 2})
            results = []
            for name, count in (("SQLite", 1), ("PostgreSQL", a.nodes)):
                shared = os.path.join(root, "shared-" + name)
                dbarg = os.path.join(root, "single.db") if name == "SQLite" else pg.create_db("api")
                db_args = ["--database", dbarg, "--shared-dir", shared]
                ids = seed_jobs(a.ssld, db_args, data, files)
                nodes = []
                try:
                    for k in range(count):
                        d = Daemon(a.ssld)
                        d.start(*db_args, "--node", "n%d" % k, "--workers", "0", "--data-root", data)
                        nodes.append(d)
                    rps, p50, p99, errs = api_load(nodes, ids, a.clients, a.seconds, spec)
                finally:
                    for d in nodes:
                        d.stop()
                        d.cleanup()
                results.append((name, count, rps, p50, p99, errs))
                out["api_%s_%d" % (name.lower(), count)] = {"rps": round(rps, 1), "p50_ms": round(p50, 3),
                                                          "p99_ms": round(p99, 3), "errors": errs}
            print("\nAPI: %d client threads on the dashboard's reads + 5 submits/s, %.0f s" % (a.clients, a.seconds))
            print("%-11s %5s %8s %8s %8s %7s" % ("backend", "nodes", "req/s", "p50 ms", "p99 ms", "errors"))
            for name, n, rps, p50, p99, errs in results:
                print("%-11s %5d %8.0f %8.2f %8.2f %7d" % (name, n, rps, p50, p99, errs))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
