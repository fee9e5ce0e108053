"""it_api.py - the HTTP API of a real ssld over loopback, with no worker threads (jobs only queue):

- health, the endpoint index, the method catalogue, Prometheus text, the static dashboard;
- more than 25 malformed or hostile requests, each answered with the right 4xx, error code and
  field in the one error shape, and nothing queued by any of them;
- 100 concurrent submissions: all 201, all stored exactly once;
- paging and state filters; cancelling queued jobs; 409 for a finished one;
- ETags and 304 Not Modified on the polled GETs, and the answer cache: a change made through the
  API or straight in the database file (another process) is in the very next answer;
- bearer tokens and per-owner queue limits (a second daemon with a tokens file).
"""
import hashlib
import json
import os
import signal
import socket
import sqlite3
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ssld_harness import Daemon, Failure, check, run, skip_unless_dataset  # noqa: E402

GOOD = {"method": "simclr", "dataset": {"name": "fashion-mnist", "limit_train": 512, "limit_test": 256},
        "model": {"encoder": "mlp", "hidden": [64], "out_dim": 32}, "pretrain": {"epochs": 1, "batch_size": 64}}


def error_shape(obj):
    """{"error": {...}}, and for a refused job spec also "errors": [every error], the first being "error"."""
    one = lambda e: (isinstance(e, dict) and set(e) == {"code", "message", "field"} and isinstance(e["message"], str)
                     and e["message"] != "")
    if not (isinstance(obj, dict) and set(obj) <= {"error", "errors"} and one(obj.get("error"))):
        return False
    if "errors" in obj:
        return (isinstance(obj["errors"], list) and len(obj["errors"]) >= 1 and all(one(e) for e in obj["errors"])
                and obj["errors"][0] == obj["error"])
    return True


def hostile_cases():
    """(description, method, path, body, expected status, expected code, expected field)."""
    deep = b'{"a":' + b"[" * 2000 + b"]" * 2000 + b"}"
    idx = lambda path: {"method": "simclr", "dataset": {"format": "idx", "train_images": path, "train_labels": path,
                                                        "test_images": path, "test_labels": path}}
    return [
        ("empty body", "POST", "/v1/jobs", b"", 400, "invalid_json", None),
        ("truncated JSON", "POST", "/v1/jobs", b"{", 400, "invalid_json", None),
        ("JSON array", "POST", "/v1/jobs", b"[]", 400, "invalid_json", None),
        ("NUL byte", "POST", "/v1/jobs", b'{"method":"sim\x00clr"}', 400, "invalid_json", None),
        ("unknown key", "POST", "/v1/jobs", dict(GOOD, bogus=1), 400, "unknown_key", "bogus"),
        ("method wrong type", "POST", "/v1/jobs", dict(GOOD, method=5), 400, "invalid_field", "method"),
        ("unknown method", "POST", "/v1/jobs", dict(GOOD, method="nope"), 400, "unknown_method", "method"),
        ("duplicate key", "POST", "/v1/jobs", b'{"method":"simclr","method":"simclr"}', 400, "duplicate_key", "method"),
        ("negative epochs", "POST", "/v1/jobs", dict(GOOD, pretrain={"epochs": -1}), 400, "invalid_field", "pretrain.epochs"),
        ("infinite epochs", "POST", "/v1/jobs", b'{"method":"simclr","pretrain":{"epochs":1e999}}', 400, "invalid_field", "pretrain.epochs"),
        ("batch size 0", "POST", "/v1/jobs", dict(GOOD, pretrain={"batch_size": 0}), 400, "invalid_field", "pretrain.batch_size"),
        ("negative lr", "POST", "/v1/jobs", dict(GOOD, pretrain={"optimizer": {"name": "adamw", "lr": -1}}), 400,
         "invalid_field", "pretrain.optimizer.lr"),
        ("threads 1000", "POST", "/v1/jobs", dict(GOOD, threads=1000), 400, "invalid_field", "threads"),
        ("priority 1000", "POST", "/v1/jobs", dict(GOOD, priority=1000), 400, "invalid_field", "priority"),
        ("name too long", "POST", "/v1/jobs", dict(GOOD, name="x" * 1000), 400, "invalid_field", "name"),
        ("unknown encoder", "POST", "/v1/jobs", dict(GOOD, model={"encoder": "nope"}), 400, "invalid_field", "model.encoder"),
        ("unknown method param", "POST", "/v1/jobs", dict(GOOD, params={"temp": 0.5}), 400, "unknown_key", "params.temp"),
        ("unknown protocol", "POST", "/v1/jobs", dict(GOOD, evaluations=[{"protocol": "nope"}]), 400, "invalid_field",
         "evaluations[0].protocol"),
        ("label fraction 2", "POST", "/v1/jobs", dict(GOOD, evaluations=[{"protocol": "knn", "label_fractions": [2.0]}]),
         400, "invalid_field", "evaluations[0].label_fractions[0]"),
        ("init_from missing job", "POST", "/v1/jobs", dict(GOOD, init_from=999), 400, "invalid_field", "init_from"),
        ("JSON nested 2000 deep", "POST", "/v1/jobs", deep, 400, "too_deep", lambda f: f.startswith("a[0][0]")),
        ("dataset via ..", "POST", "/v1/jobs", idx("../../../../etc/passwd"), 403, "forbidden_path", "dataset.train_images"),
        ("dataset outside roots", "POST", "/v1/jobs", idx("/etc/passwd"), 403, "forbidden_path", "dataset.train_images"),
        ("dataset dir outside roots", "POST", "/v1/jobs", dict(GOOD, dataset={"name": "fashion-mnist", "dir": "/etc"}), 403,
         "forbidden_path", "dataset.dir"),
        ("dataset missing", "POST", "/v1/jobs", idx("/usr/share/datasets/no-such-file.gz"), 404, "dataset_not_found",
         "dataset.train_images"),
        ("body over the limit", "POST", "/v1/jobs", b" " * (2 * 1024 * 1024), 413, "body_too_large", None),
        ("query on POST", "POST", "/v1/jobs?x=1", GOOD, 400, "unknown_parameter", "x"),
        ("list: unknown state", "GET", "/v1/jobs?state=bogus", None, 400, "invalid_parameter", "state"),
        ("list: limit 0", "GET", "/v1/jobs?limit=0", None, 400, "invalid_parameter", "limit"),
        ("list: limit not a number", "GET", "/v1/jobs?limit=abc", None, 400, "invalid_parameter", "limit"),
        ("list: before negative", "GET", "/v1/jobs?before=-5", None, 400, "invalid_parameter", "before"),
        ("list: unknown parameter", "GET", "/v1/jobs?bogus=1", None, 400, "unknown_parameter", "bogus"),
        ("metrics: after -1", "GET", "/v1/jobs/1/metrics?after=-1", None, 400, "invalid_parameter", "after"),
        ("metrics: max_points 1", "GET", "/v1/jobs/1/metrics?max_points=1", None, 400, "invalid_parameter", "max_points"),
        ("metrics: bad key", "GET", "/v1/jobs/1/metrics?keys=bad%20key", None, 400, "invalid_parameter", "keys"),
        ("metrics: key injection", "GET", "/v1/jobs/1/metrics?keys=loss')%20OR%201=1--", None, 400, "invalid_parameter", "keys"),
        ("events: limit huge", "GET", "/v1/jobs/1/events?limit=99999999", None, 400, "invalid_parameter", "limit"),
        ("job id not a number", "GET", "/v1/jobs/abc", None, 404, "not_found", None),
        ("job id overflow", "GET", "/v1/jobs/99999999999999999999999", None, 404, "not_found", None),
        ("unknown job", "GET", "/v1/jobs/424242", None, 404, "not_found", None),
        ("cancel unknown job", "POST", "/v1/jobs/424242/cancel", None, 404, "not_found", None),
        ("DELETE jobs", "DELETE", "/v1/jobs", None, 405, "method_not_allowed", None),
        ("PUT a job", "PUT", "/v1/jobs/1", GOOD, 405, "method_not_allowed", None),
        ("GET cancel", "GET", "/v1/jobs/1/cancel", None, 405, "method_not_allowed", None),
        ("unknown endpoint", "GET", "/v1/nope", None, 404, "not_found", None),
        ("static traversal", "GET", "/../../../etc/passwd", None, 404, "not_found", None),
        ("static traversal encoded", "GET", "/%2e%2e/%2e%2e/etc/passwd", None, 404, "not_found", None),
        ("artifact traversal", "GET", "/v1/jobs/1/artifacts/..%2f..%2fssld.db", None, 404, "not_found", None),
        ("POST to static", "POST", "/index.html", b"x", 405, "method_not_allowed", None),
    ]


def run_hostile(d):
    cases = hostile_cases()
    check(len(cases) >= 25, "fewer than 25 hostile cases")
    for desc, method, path, body, status, code, field in cases:
        s, hdrs, data = d.raw(method, path, body)
        try:
            obj = json.loads(data)
        except ValueError:
            obj = None
        check(obj is not None, "%s: %s %s -> %d, body is not JSON: %r" % (desc, method, path, s, data[:200]))
        check(s == status, "%s: %s %s -> %d, expected %d: %s" % (desc, method, path, s, status, data[:300]))
        check(error_shape(obj), "%s: not the error shape: %s" % (desc, data[:300]))
        check(obj["error"]["code"] == code, "%s: code %r, expected %r" % (desc, obj["error"]["code"], code))
        got = obj["error"]["field"]
        check(field(got) if callable(field) else got == field, "%s: field %r, expected %r (%s)" % (desc, obj["error"]["field"], field,
                                                                                 obj["error"]["message"]))
        check(hdrs.get("content-type", "").startswith("application/json"), "%s: content type %s" % (desc, hdrs))
    # Nothing got queued by any of them.
    s, lst = d.get("/v1/jobs")
    check(s == 200 and lst["jobs"] == [], "hostile requests queued jobs: %s" % lst)
    print("  %d hostile requests answered with the right status, code and field; nothing queued" % len(cases))


def huge_declared_body(d):
    """A client announcing a 1 GB body, or asking for 100 Continue, gets 413 before sending it."""
    for extra in ("", "Expect: 100-continue\r\n"):
        size = 10**9 if not extra else 5 * 1024 * 1024
        sock = socket.create_connection(("127.0.0.1", d.port), timeout=10)
        sock.sendall(("POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      "Content-Length: %d\r\n%s\r\n" % (size, extra)).encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
        sock.close()
        check(data.startswith(b"HTTP/1.1 413"), "declared %d-byte body%s -> %r" % (size, " + Expect" if extra else "", data[:80]))


def run_basics(d):
    s, h = d.get("/v1/health")
    check(s == 200 and h["status"] == "ok" and h["database"] == "ok" and h["workers"] == 0, "health: %s" % h)
    s, idx = d.get("/v1")
    check(s == 200 and "POST /v1/jobs" in idx["endpoints"], "endpoint index: %s" % idx)
    s, m = d.get("/v1/methods")
    check(s == 200 and isinstance(m, dict), "methods: %s" % s)
    names = [x["name"] for x in m.get("methods", [])]
    check("simclr" in names, "catalogue lacks simclr: %s" % names)
    s, hdrs, page = d.raw("GET", "/")
    check(s == 200 and hdrs["content-type"].startswith("text/html") and b"<html" in page.lower(), "static / -> %d" % s)
    s, hdrs, page = d.raw("GET", "/index.html")
    check(s == 200, "static /index.html -> %d" % s)
    s, hdrs, text = d.raw("GET", "/metrics")
    text = text.decode()
    check(s == 200 and hdrs["content-type"].startswith("text/plain"), "prometheus: %d %s" % (s, hdrs))
    for needle in ('ssld_jobs{state="queued"}', "ssld_jobs_finished_total{outcome=\"succeeded\"}",
                   "ssld_train_steps_total", 'ssld_http_requests_total{code="200"}', "# TYPE ssld_jobs gauge"):
        check(needle in text, "prometheus text lacks %s" % needle)


def run_concurrent(d):
    results = [None] * 100
    def submit(i):
        body = dict(GOOD, name="concurrent-%03d" % i)
        try:
            results[i] = d.post("/v1/jobs", body)
        except Exception as e:  # recorded and checked below
            results[i] = (0, str(e))
    threads = [threading.Thread(target=submit, args=(i,)) for i in range(100)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    bad = [(i, r) for i, r in enumerate(results) if r[0] != 201]
    check(not bad, "concurrent submissions failed: %s" % bad[:5])
    ids = [r[1]["id"] for r in results]
    check(len(set(ids)) == 100 and all(r[1]["state"] == "queued" for r in results), "ids not distinct")
    # Exactly once, through the API and in the database file itself.
    s, lst = d.get("/v1/jobs?limit=1000&state=queued")
    names = sorted(j["name"] for j in lst["jobs"])
    check(names == ["concurrent-%03d" % i for i in range(100)], "listed names differ: %d jobs" % len(names))
    db = sqlite3.connect(os.path.join(d.state_dir, "ssld.db"))
    rows = db.execute("SELECT name, count(*) FROM jobs GROUP BY name HAVING count(*) > 1").fetchall()
    total = db.execute("SELECT count(*) FROM jobs").fetchone()[0]
    db.close()
    check(rows == [] and total == 100, "database: %d jobs, duplicates %s" % (total, rows))
    print("  100 concurrent submissions: 100 distinct ids, each stored once")
    return ids


def run_paging_cancel(d, ids):
    seen, before = [], None
    while True:
        s, page = d.get("/v1/jobs?limit=30" + ("&before=%d" % before if before else ""))
        check(s == 200, "paging -> %d" % s)
        seen += [j["id"] for j in page["jobs"]]
        before = page["next_before"]
        if before is None:
            break
    check(sorted(seen) == sorted(ids) and seen == sorted(seen, reverse=True), "paging lost or reordered jobs")
    # Cancel a queued job: immediate.
    s, c = d.post("/v1/jobs/%d/cancel" % ids[0])
    check(s == 200 and c["state"] == "cancelled", "cancel queued -> %d %s" % (s, c))
    j = d.job(ids[0])
    check(j["state"] == "cancelled" and j["finished_at"], "cancelled job: %s" % j)
    s, e = d.post("/v1/jobs/%d/cancel" % ids[0])
    check(s == 409 and e["error"]["code"] == "not_cancellable", "second cancel -> %d %s" % (s, e))
    s, lst = d.get("/v1/jobs?state=cancelled")
    check([x["id"] for x in lst["jobs"]] == [ids[0]], "state filter: %s" % lst)
    s, lst = d.get("/v1/jobs?state=queued,cancelled&limit=1000")
    check(len(lst["jobs"]) == 100, "multi-state filter: %d" % len(lst["jobs"]))
    # A job's detail carries its spec as submitted.
    j = d.job(ids[1])
    check(j["spec"]["method"] == "simclr" and j["progress"]["step"] == 0 and j["metrics"] == {}, "detail: %s" % j)
    s, m = d.get("/v1/jobs/%d/metrics" % ids[1])
    check(s == 200 and m["series"] == {} and m["cursor"] == 0, "empty metrics: %s" % m)
    s, ev = d.get("/v1/jobs/%d/events" % ids[1])
    check(s == 200 and ev["events"] == [], "events: %s" % ev)
    s, ar = d.get("/v1/jobs/%d/artifacts" % ids[1])
    check(s == 200 and ar["artifacts"] == [], "artifacts: %s" % ar)
    print("  paging, state filters, cancel of a queued job, 409 on a second cancel")


def run_cache(d, ids):
    jid = ids[2]
    path = "/v1/jobs/%d" % jid
    s, h1, b1 = d.raw("GET", path)
    check(s == 200 and h1.get("etag", "").startswith('"') and h1.get("cache-control") == "no-cache",
          "job answer without ETag / no-cache: %s" % h1)
    s, h2, b2 = d.raw("GET", path)
    check(s == 200 and b2 == b1 and h2["etag"] == h1["etag"], "a repeated GET changed: %s" % h2)
    s, h3, b3 = d.raw("GET", path, headers={"If-None-Match": h1["etag"]})
    check(s == 304 and b3 == b"" and h3["etag"] == h1["etag"], "If-None-Match -> %d %r" % (s, b3[:80]))
    for inm in ('W/%s' % h1["etag"], '"0000000000000000", %s' % h1["etag"], "*"):
        s, _, _ = d.raw("GET", path, headers={"If-None-Match": inm})
        check(s == 304, "If-None-Match %r -> %d" % (inm, s))
    s, _, b4 = d.raw("GET", path, headers={"If-None-Match": '"0000000000000000"'})
    check(s == 200 and b4 == b1, "a stale tag -> %d" % s)
    s, h5, b5 = d.raw("HEAD", path)
    check(s == 200 and b5 == b"" and h5["etag"] == h1["etag"], "HEAD -> %d %s" % (s, h5))

    # Another process writes the database file: the next answer has it, with a new tag.
    db = sqlite3.connect(os.path.join(d.state_dir, "ssld.db"))
    with db:
        db.execute("UPDATE jobs SET name = 'renamed-by-sqlite' WHERE id = ?", (jid,))
    s, h6, b6 = d.raw("GET", path, headers={"If-None-Match": h1["etag"]})
    check(s == 200 and json.loads(b6)["name"] == "renamed-by-sqlite" and h6["etag"] != h1["etag"],
          "after an outside write -> %d %s" % (s, b6[:120]))
    # ... and a write through the API.
    s, c = d.post("/v1/jobs/%d/cancel" % jid)
    check(s == 200, "cancel -> %d" % s)
    check(d.job(jid)["state"] == "cancelled", "a cached answer outlived a cancel")
    s, lst = d.get("/v1/jobs?state=cancelled&limit=1000")
    check(jid in [x["id"] for x in lst["jobs"]], "the listing did not see the cancel")

    # Metrics after a cursor, the dashboard's poll: new points appear at once; no new point
    # leaves the body (and its tag) as it was, so the poll gets 304 even across other writes.
    mjob = ids[3]
    mpath = "/v1/jobs/%d/metrics?after=0&keys=loss" % mjob
    s, hm, bm = d.raw("GET", mpath)
    check(s == 200 and json.loads(bm)["series"] == {}, "metrics before points: %s" % bm[:120])
    with db:
        db.executemany("INSERT INTO metrics(job_id, step, key, value, time) VALUES (?, ?, ?, ?, ?)",
                       [(mjob, st, k, 1.0 / st, time.time()) for st in (1, 2, 3) for k in ("loss", "lr")])
    s, hm2, bm2 = d.raw("GET", mpath, headers={"If-None-Match": hm["etag"]})
    m = json.loads(bm2)
    check(s == 200 and [p[0] for p in m["series"]["loss"]["points"]] == [1, 2, 3] and "lr" not in m["series"],
          "metrics after an outside insert -> %d %s" % (s, bm2[:160]))
    with db:
        db.execute("UPDATE jobs SET name = 'unrelated' WHERE id = ?", (ids[4],))
    s, _, bm3 = d.raw("GET", mpath, headers={"If-None-Match": hm2["etag"]})
    check(s == 304 and bm3 == b"", "unchanged curve after an unrelated write -> %d" % s)
    s, _, blr = d.raw("GET", "/v1/jobs/%d/metrics?after=0&keys=lr" % mjob)
    check(s == 200 and list(json.loads(blr)["series"]) == ["lr"], "another query string got the cached answer")
    s, _, bcur = d.raw("GET", "/v1/jobs/%d/metrics?after=%d&keys=loss" % (mjob, m["cursor"]))
    check(s == 200 and json.loads(bcur)["series"] == {}, "after the newest cursor: %s" % bcur[:120])
    db.close()
    # Errors are never tagged; 304s are counted.
    s, he, _ = d.raw("GET", "/v1/jobs/%d/metrics?bogus=1" % mjob)
    check(s == 400 and "etag" not in he, "a 400 with an ETag: %s" % he)
    s, _, text = d.raw("GET", "/metrics")
    check(b'ssld_http_requests_total{code="304"}' in text, "304s not counted")
    print("  ETag + 304 on job, listing and metrics polls; outside and API writes seen by the next answer")


def run_auth(exe):
    d = Daemon(exe)
    try:
        tokens = os.path.join(d.state_dir, "tokens")
        with open(tokens, "w") as f:
            f.write("# owner sha256(token)\nalice %s\nbob %s\n" % (hashlib.sha256(b"alice-secret").hexdigest(),
                                                                  hashlib.sha256(b"bob-secret").hexdigest()))
        d.start("--workers", "0", "--tokens-file", tokens, "--max-queued-per-owner", "1", "--max-body", "64k")
        s, e = d.post("/v1/jobs", GOOD)
        check(s == 401 and e["error"]["code"] == "unauthorized", "no token -> %d %s" % (s, e))
        s, e = d.post("/v1/jobs", GOOD, {"Authorization": "Bearer wrong"})
        check(s == 401, "wrong token -> %d" % s)
        s, e = d.post("/v1/jobs", GOOD, {"Authorization": "Basic YWxpY2U6eA=="})
        check(s == 401, "basic auth -> %d" % s)
        s, ok = d.post("/v1/jobs", GOOD, {"Authorization": "Bearer alice-secret"})
        check(s == 201, "alice -> %d %s" % (s, ok))
        check(d.job(ok["id"])["owner"] == "alice", "owner not recorded")
        s, e = d.post("/v1/jobs", GOOD, {"Authorization": "Bearer alice-secret"})
        check(s == 429 and e["error"]["code"] == "queue_full", "per-owner limit -> %d %s" % (s, e))
        s, ok2 = d.post("/v1/jobs", GOOD, {"Authorization": "Bearer bob-secret"})
        check(s == 201, "bob -> %d" % s)
        s, e = d.post("/v1/jobs/%d/cancel" % ok["id"])
        check(s == 401, "cancel without token -> %d" % s)
        s, lst = d.get("/v1/jobs")   # reads stay open
        check(s == 200 and len(lst["jobs"]) == 2, "list: %s" % lst)
        s, e = d.post("/v1/jobs", b"x" * 70000, {"Authorization": "Bearer bob-secret"})
        check(s == 413, "64k limit -> %d" % s)
        check(d.stop() == 0, "auth daemon did not stop cleanly:\n" + d.log())
        print("  tokens: 401 without/with a wrong token, owner recorded, per-owner 429, 413 at --max-body")
    finally:
        d.cleanup()


def main(exe):
    skip_unless_dataset()
    d = Daemon(exe)
    try:
        d.start("--workers", "0")
        run_basics(d)
        # One daemon per state directory: a second one refuses to start.
        d2 = Daemon(exe, state_dir=d.state_dir)
        try:
            d2.start("--workers", "0")
            check(False, "a second ssld started on the same state directory")
        except Failure as e:
            check("in use by another ssld" in str(e), "second daemon: %s" % e)
        run_hostile(d)
        huge_declared_body(d)
        ids = run_concurrent(d)
        run_paging_cancel(d, ids)
        run_cache(d, ids)
        s, hdrs, text = d.raw("GET", "/metrics")
        check(b'ssld_jobs{state="queued"} 98' in text, "queue depth gauge wrong")   # 100 - 2 cancelled
        check(b'ssld_http_requests_total{code="400"}' in text and b'ssld_http_requests_total{code="201"} 100' in text,
              "request counters wrong")
        # SIGHUP: reopen logs / reload tokens; the daemon keeps serving.
        d.proc.send_signal(signal.SIGHUP)
        time.sleep(0.3)
        s, h = d.get("/v1/health")
        check(s == 200 and d.proc.poll() is None and "SIGHUP" in d.log(), "SIGHUP handling")
        rc = d.stop()
        check(rc == 0, "ssld exited with %s after SIGTERM:\n%s" % (rc, d.log()))
        check("stopped cleanly" in d.log(), "no clean-stop log line")
        check(all(l.startswith("<") for l in d.log().splitlines() if l), "a log line lacks its <N> priority prefix")
    finally:
        d.cleanup()
    run_auth(exe)


if __name__ == "__main__":
    run(main)
