"""load_core.py - the load driver shared by tests/reliability/it_load.py (10 s, suite integration)
and bench/load_bench.py (60 s, the figures in the closing notes). Stdlib only.

run_load(d, job_id, seconds, readers=50, submitters=5): `readers` threads, each with its own
keep-alive connection, loop over the read endpoints a dashboard uses (the job list, one job, its
metrics from a cursor, its events, health, Prometheus text, the static page) while `submitters`
threads POST valid jobs and a training job runs. Returns a dict of counts and latencies.
check_paging(d, expect_ids): pages GET /v1/jobs (two page sizes, with and without a state filter)
and checks every job comes exactly once, newest first.

Latencies are measured in the client: Python threads share one interpreter lock, so on a loaded
machine they include some client-side scheduling delay - an upper bound on the server's time.
"""
import http.client
import json
import threading
import time


def percentile(xs, q):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


class Client:
    """One keep-alive HTTP/1.1 connection; reconnects when the server closes it."""

    def __init__(self, port):
        self.port = port
        self.c = None

    def request(self, method, path, body=None, headers=None):
        for attempt in (0, 1):
            if self.c is None:
                self.c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            try:
                self.c.request(method, path, body=body, headers=headers or {})
                r = self.c.getresponse()
                data = r.read()
                if r.getheader("connection", "").lower() == "close":
                    self.c.close()
                    self.c = None
                return r.status, data
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self.c.close()
                self.c = None
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def close(self):
        if self.c:
            self.c.close()


def run_load(d, job_id, seconds, spec, readers=50, submitters=5, headers=None):
    stop = time.time() + seconds
    lock = threading.Lock()
    stats = {"requests": 0, "by_status": {}, "errors": [], "lat": {}, "submitted": [], "fivexx": []}

    def record(kind, status, dt, body):
        with lock:
            stats["requests"] += 1
            stats["by_status"][status] = stats["by_status"].get(status, 0) + 1
            stats["lat"].setdefault(kind, []).append(dt)
            if status >= 500:
                stats["fivexx"].append((kind, status, body[:200]))

    def reader(i):
        cl = Client(d.port)
        cursor = 0
        n = 0
        try:
            while time.time() < stop:
                k = (i + n) % 8
                n += 1
                if k == 0:
                    kind, path = "list", "/v1/jobs?limit=50"
                elif k == 1:
                    kind, path = "job", "/v1/jobs/%d" % job_id
                elif k in (2, 3):
                    kind, path = "metrics", "/v1/jobs/%d/metrics?after=%d&max_points=2000" % (job_id, cursor)
                elif k == 4:
                    kind, path = "events", "/v1/jobs/%d/events?limit=100" % job_id
                elif k == 5:
                    kind, path = "health", "/v1/health"
                elif k == 6:
                    kind, path = "prometheus", "/metrics"
                else:
                    kind, path = "static", "/"
                t0 = time.perf_counter()
                try:
                    status, body = cl.request("GET", path)
                except OSError as e:
                    with lock:
                        stats["errors"].append("%s: %s" % (path, e))
                    continue
                record(kind, status, time.perf_counter() - t0, body)
                if kind == "metrics" and status == 200:
                    cursor = json.loads(body).get("cursor", cursor)
        finally:
            cl.close()

    def submitter(i):
        cl = Client(d.port)
        body = json.dumps(spec).encode()
        h = dict(headers or {}, **{"Content-Type": "application/json"})
        try:
            while time.time() < stop:
                t0 = time.perf_counter()
                try:
                    status, data = cl.request("POST", "/v1/jobs", body, h)
                except OSError as e:
                    with lock:
                        stats["errors"].append("POST: %s" % e)
                    continue
                record("submit", status, time.perf_counter() - t0, data)
                if status == 201:
                    with lock:
                        stats["submitted"].append(json.loads(data)["id"])
                time.sleep(0.02)
        finally:
            cl.close()

    threads = [threading.Thread(target=reader, args=(i,)) for i in range(readers)]
    threads += [threading.Thread(target=submitter, args=(i,)) for i in range(submitters)]
    t0 = time.time()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stats["seconds"] = time.time() - t0
    reads = [x for k, v in stats["lat"].items() if k != "submit" for x in v]
    stats["read_p50_ms"] = percentile(reads, 0.50) * 1e3
    stats["read_p99_ms"] = percentile(reads, 0.99) * 1e3
    stats["submit_p50_ms"] = percentile(stats["lat"].get("submit", []), 0.50) * 1e3
    stats["submit_p99_ms"] = percentile(stats["lat"].get("submit", []), 0.99) * 1e3
    stats["per_kind"] = {k: (len(v), percentile(v, 0.5) * 1e3, percentile(v, 0.99) * 1e3)
                         for k, v in sorted(stats["lat"].items())}
    stats["reads"] = len(reads)
    return stats


def report(st):
    lines = ["%-11s %8s %9s %9s" % ("endpoint", "requests", "p50 ms", "p99 ms")]
    for k, (n, p50, p99) in st["per_kind"].items():
        lines.append("%-11s %8d %9.2f %9.2f" % (k, n, p50, p99))
    lines.append("%-11s %8d %9.2f %9.2f" % ("all reads", st["reads"], st["read_p50_ms"], st["read_p99_ms"]))
    lines.append("%d requests in %.1f s (%.0f/s); statuses %s; 5xx %d; connection errors %d"
                 % (st["requests"], st["seconds"], st["requests"] / st["seconds"], dict(sorted(st["by_status"].items())),
                    len(st["fivexx"]), len(st["errors"])))
    return "\n".join(lines)


def check_paging(d, expect_ids):
    """Every job exactly once, newest first, for page sizes 1000 and 7 and the queued filter.
    Returns a list of problems (empty when all is well)."""
    problems = []
    expect = sorted(expect_ids, reverse=True)
    for query in ("limit=1000", "limit=7", "limit=333&state=queued,running,succeeded,failed,cancelled"):
        seen, before, pages = [], None, 0
        while True:
            s, page = d.get("/v1/jobs?%s%s" % (query, "&before=%d" % before if before else ""))
            if s != 200:
                problems.append("%s: page %d -> %d %s" % (query, pages, s, page))
                break
            pages += 1
            seen += [j["id"] for j in page["jobs"]]
            before = page.get("next_before")
            if before is None or pages > 5000:
                break
        if seen != expect:
            dup = len(seen) - len(set(seen))
            problems.append("%s: %d jobs in %d pages, expected %d; %d duplicates, %d missing, ordered: %s"
                            % (query, len(seen), pages, len(expect), dup, len(set(expect) - set(seen)),
                               seen == sorted(seen, reverse=True)))
    return problems
