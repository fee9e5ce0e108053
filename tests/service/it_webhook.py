"""it_webhook.py - what ssld hands to other tools: the metric history as CSV and a webhook per
ended job, against a real daemon on a loopback port.

- GET /v1/jobs/{id}/metrics.csv of a finished job: "step,key,value" rows, as many per key as the
  metrics API counts, the last loss equal to the API's; ?keys= limits the keys; a missing job is a
  404 and an unknown query parameter a 400 naming it. `ssld metrics ID` summarises per key,
  `--csv -o FILE` writes the same bytes as the endpoint, a missing job exits 1 naming it.
- --webhook URL: a receiver on 127.0.0.1 that answers the first POST with 500 gets the job.ended
  document again (the retry) with the job's id, state and results; a job cancelled while queued
  and a running job cancelled are both delivered as cancelled. A URL that is not http(s) stops
  start-up with an error naming --webhook.
- Deliveries outlive the daemon (the outbox): a receiver answering 503 to every attempt while the
  daemon is stopped mid-retry (SIGTERM), then 200: after the restart the job is delivered exactly
  once, with the same document as every earlier attempt, and its row says delivered; the same
  when the daemon is killed (-9) during the retries. Restarted without --webhook, the daemon
  writes no delivery row for a job that ends.
- it_webhook.py SSLD postgres (suite postgres): two daemons with webhooks on one PostgreSQL
  database, jobs ending on both while the receiver answers 503, so both nodes hold claimed rows,
  then 200: every job is delivered exactly once (one 200 each), and both nodes delivered some.
"""
import csv
import http.server
import io
import json
import os
import shutil
import sqlite3
import sys
import tempfile
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from ssld_harness import Daemon, Failure, check, run, short_job, skip_unless_dataset, ssld, wait_for  # noqa: E402


class Receiver:
    """An HTTP server on a free loopback port recording every POST; the first `fail_first`
    answers are 500, and every answer is 503 while `failing` is set."""

    def __init__(self, fail_first=0):
        self.posts = []
        self.cv = threading.Condition()
        self.fail_left = fail_first
        self.failing = False
        rec = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                with rec.cv:
                    status = 503 if rec.failing else 500 if rec.fail_left > 0 else 200
                    rec.fail_left -= 1
                    rec.posts.append((self.path, self.headers.get("Content-Type"), status, body))
                    rec.cv.notify_all()
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def wait_for(self, pred, what, timeout=120):
        with self.cv:
            if not self.cv.wait_for(lambda: pred(self.posts), timeout):
                raise Failure("webhook receiver: %s not seen within %d s; got %r" % (what, timeout, self.posts))
            return list(self.posts)

    def set_failing(self, on):
        with self.cv:
            self.failing = on

    def close(self):
        self.httpd.shutdown()


def ended(posts, jid, state):
    """The delivered (2xx) documents for job jid in state."""
    out = []
    for _path, _ctype, status, body in posts:
        doc = json.loads(body)
        if doc["job"]["id"] == jid and doc["job"]["state"] == state and status == 200:
            out.append(doc)
    return out


def posts_of(posts, jid):
    """(status, body) of every POST about job jid."""
    return [(status, body) for _p, _c, status, body in posts if json.loads(body)["job"]["id"] == jid]


def sqlite_row(d, jid):
    """The job's delivery row in the SQLite file of a stopped daemon: (state, attempts, last_status)
    or None. Read only while no ssld has the file open."""
    check(d.proc.poll() is not None, "the daemon must be stopped before its database is read")
    db = sqlite3.connect(os.path.join(d.state_dir, "ssld.db"))
    try:
        return db.execute("SELECT state, attempts, last_status FROM webhook_outbox WHERE job_id = ?", (jid,)).fetchone()
    finally:
        db.close()


def survives(d, rec, how, args):
    """A job's delivery fails (503) until ssld (running) is stopped mid-retry by `how` ("sigterm"
    or "kill"), then succeeds after the restart: exactly one 200, the same document every time,
    and the row says delivered. Leaves ssld stopped."""
    rec.set_failing(True)
    s, j = d.post("/v1/jobs", short_job("outbox-" + how))
    check(s == 201, "submit -> %d %r" % (s, j))
    jid = j["id"]
    d.wait_state(jid, ["succeeded"], timeout=300)
    rec.wait_for(lambda ps: len(posts_of(ps, jid)) >= 2, "two attempts for job %d" % jid)
    if how == "sigterm":
        check(d.stop() == 0, "ssld did not stop cleanly:\n%s" % d.log())
    else:
        d.kill()
    row = sqlite_row(d, jid)
    check(row and row[0] == "pending" and row[1] >= 1, "mid-retry row of job %d: %r" % (jid, row))
    rec.set_failing(False)
    d.start(*args)
    rec.wait_for(lambda ps: ended(ps, jid, "succeeded"), "job %d delivered after the restart (%s)" % (jid, how))
    # ssld logs the delivery once its row says so (a stop before that would abandon the attempt
    # and repeat it after the next start: at least once). Stopped, it makes no more attempts: the
    # count is final, and the row must say delivered so that no later start sends it again.
    wait_for(lambda: ("job=%d webhook: delivered" % jid) in d.log(), "ssld logging job %d delivered" % jid, 120)
    check(d.stop() == 0, "ssld did not stop cleanly:\n%s" % d.log())
    row = sqlite_row(d, jid)
    mine = posts_of(rec.wait_for(lambda ps: True, "posts"), jid)
    oks = [b for st, b in mine if st == 200]
    check(len(oks) == 1, "job %d (%s): %d deliveries answered 200, expected exactly 1: %r" % (jid, how, len(oks), mine))
    check(all(b == oks[0] for _st, b in mine), "job %d (%s): the documents differ between attempts" % (jid, how))
    check(row and row[0] == "delivered" and row[1] >= 2 and row[2] == 200, "job %d's row after delivery: %r" % (jid, row))
    print("%s: job %d delivered once after the restart (%d attempts, %d POSTs)" % (how, jid, row[1], len(mine)))
    return jid


def check_csv(d, exe, jid):
    s, hdrs, body = d.raw("GET", "/v1/jobs/%d/metrics.csv" % jid)
    check(s == 200, "metrics.csv -> %d %r" % (s, body[:200]))
    check(hdrs.get("content-type", "").startswith("text/csv"), "metrics.csv content type: %r" % hdrs)
    rows = list(csv.reader(io.StringIO(body.decode())))
    check(rows[0] == ["step", "key", "value"], "metrics.csv header: %r" % rows[0])
    per_key = {}
    for step, key, value in rows[1:]:
        per_key.setdefault(key, []).append((int(step), float(value) if value else None))
    s, m = d.get("/v1/jobs/%d/metrics?max_points=100000" % jid)
    check(s == 200, "metrics -> %d" % s)
    counts = {k: v["count"] for k, v in m["series"].items()}
    check(counts and counts == {k: len(v) for k, v in per_key.items()},
          "metrics.csv rows per key %r != the metrics API's counts %r"
          % ({k: len(v) for k, v in per_key.items()}, counts))
    loss_key = next(k for k in counts if k.endswith("loss"))
    api_last = m["series"][loss_key]["points"][-1]
    csv_last = per_key[loss_key][-1]
    check(csv_last[0] == api_last[0] and abs(csv_last[1] - api_last[1]) <= 1e-6 * abs(api_last[1]),
          "last %s: csv %r, api %r" % (loss_key, csv_last, api_last))
    steps = [st for st, _ in per_key[loss_key]]
    check(steps == sorted(steps), "%s rows are not in step order" % loss_key)

    s, _, body = d.raw("GET", "/v1/jobs/%d/metrics.csv?keys=%s" % (jid, loss_key))
    keys = {r[1] for r in csv.reader(io.StringIO(body.decode())) if r[0] != "step"}
    check(s == 200 and keys == {loss_key}, "?keys=%s gave keys %r" % (loss_key, keys))
    s, err = d.get("/v1/jobs/99999/metrics.csv")
    check(s == 404 and err["error"]["code"] == "not_found", "missing job -> %d %r" % (s, err))
    s, err = d.get("/v1/jobs/%d/metrics.csv?after=3" % jid)
    check(s == 400 and err["error"]["field"] == "after", "unknown parameter -> %d %r" % (s, err))

    server = "http://127.0.0.1:%d" % d.port
    p = ssld(exe, "metrics", str(jid), "--server", server, check_rc=0)
    line = next((l for l in p.stdout.splitlines() if l.startswith(loss_key + " ")), None)
    check(line and int(line.split()[1]) == counts[loss_key],
          "ssld metrics: no line with %s and %d points:\n%s" % (loss_key, counts[loss_key], p.stdout))
    out = os.path.join(d.state_dir, "m.csv")
    ssld(exe, "metrics", str(jid), "--csv", "-o", out, "--server", server, check_rc=0)
    with open(out, "rb") as f:
        check(f.read() == body_all(d, jid), "ssld metrics --csv -o: the file differs from the endpoint's answer")
    p = ssld(exe, "metrics", "99999", "--server", server, check_rc=1)
    check("99999" in p.stderr, "ssld metrics 99999: %r" % p.stderr)


def body_all(d, jid):
    return d.raw("GET", "/v1/jobs/%d/metrics.csv" % jid)[2]


def main(exe):
    skip_unless_dataset()
    p = ssld(exe, "serve", "--listen", "127.0.0.1:0", "--webhook", "ftp://127.0.0.1/x")
    check(p.returncode != 0 and "webhook" in p.stderr, "--webhook ftp://: exit %d, %r" % (p.returncode, p.stderr))

    rec = Receiver(fail_first=1)
    d = Daemon(exe)
    try:
        d.start("--workers", "1", "--webhook", "http://127.0.0.1:%d/hook" % rec.port)
        s, j = d.post("/v1/jobs", short_job("hooked", extra={"evaluations": [{"protocol": "linear_probe", "label_fractions": [0.1]}]}))
        check(s == 201, "submit -> %d %r" % (s, j))
        jid = j["id"]
        d.wait_state(jid, ["succeeded"], timeout=300)
        posts = rec.wait_for(lambda ps: ended(ps, jid, "succeeded"), "job %d succeeded delivered" % jid)
        check(posts[0][2] == 500 and json.loads(posts[0][3])["job"]["id"] == jid,
              "the first POST should have been the one answered 500: %r" % posts[:1])
        doc = ended(posts, jid, "succeeded")[0]
        check(posts[0][0] == "/hook" and posts[0][1] == "application/json", "path/content type: %r" % (posts[0][:2],))
        check(doc["event"] == "job.ended" and doc["job"]["name"] == "hooked" and doc["job"]["url"] == "/v1/jobs/%d" % jid,
              "document: %r" % doc["job"])
        check(isinstance(doc["results"], dict) and doc["results"].get("evaluations"),
              "results missing from the document: %r" % doc["results"])

        check_csv(d, exe, jid)

        # Cancelled while running, and cancelled while queued behind it.
        s, a = d.post("/v1/jobs", short_job("long", epochs=5000, hidden=(512, 512)))
        s2, b = d.post("/v1/jobs", short_job("behind"))
        check(s == 201 and s2 == 201, "submit -> %d %d" % (s, s2))
        d.wait_state(a["id"], ["running"])
        s, _ = d.post("/v1/jobs/%d/cancel" % b["id"])
        check(s == 200, "cancel queued -> %d" % s)
        s, _ = d.post("/v1/jobs/%d/cancel" % a["id"])
        check(s == 202, "cancel running -> %d" % s)
        rec.wait_for(lambda ps: ended(ps, b["id"], "cancelled") and ended(ps, a["id"], "cancelled"),
                     "both cancellations delivered")

        # At least once across restarts: a stop, then a crash, in the middle of the retries.
        args = d.args
        x = survives(d, rec, "sigterm", args)
        d.start(*args)
        y = survives(d, rec, "kill", args)
        check(len(ended(rec.posts, x, "succeeded")) == 1, "job %d delivered again after a later restart" % x)

        # Without --webhook nothing is recorded (the table is there, the job ended).
        d.start("--workers", "0")
        s, z = d.post("/v1/jobs", short_job("unwatched"))
        check(s == 201, "submit -> %d %r" % (s, z))
        s, _ = d.post("/v1/jobs/%d/cancel" % z["id"])
        check(s == 200 and d.job(z["id"])["state"] == "cancelled", "cancel queued -> %d" % s)
        check(d.stop() == 0, "ssld did not stop cleanly:\n%s" % d.log())
        check(sqlite_row(d, z["id"]) is None and sqlite_row(d, y) is not None,
              "a daemon without --webhook wrote a delivery row: %r" % (sqlite_row(d, z["id"]),))
    finally:
        rec.close()
        d.cleanup()


def main_postgres(exe):
    """Two nodes with webhooks on one PostgreSQL database: each ended job delivered once."""
    skip_unless_dataset()
    import pgserver
    pgserver.skip_unless_available()
    root = tempfile.mkdtemp(prefix="ssld-it-hook-")
    rec = Receiver()
    nodes = []
    try:
        with pgserver.PgServer() as pg:
            url = pg.create_db("ssld_hooks")
            for name in ("hook-a", "hook-b"):
                d = Daemon(exe)
                nodes.append(d)
                d.start("--database", url, "--shared-dir", os.path.join(root, "shared"), "--node", name,
                        "--workers", "1", "--job-threads", "1", "--webhook", "http://127.0.0.1:%d/hook" % rec.port)
            # While the receiver fails, the nodes hold their rows (in backoff) under claims: both
            # nodes claim rows of their own, none the other's.
            rec.set_failing(True)
            ids = []
            for i in range(8):
                s, j = nodes[i % 2].post("/v1/jobs", short_job("pg-%d" % i, epochs=1, limit_train=128))
                check(s == 201, "submit -> %d %r" % (s, j))
                ids.append(j["id"])
            sql = "SELECT count(DISTINCT claimed_by) FROM webhook_outbox WHERE state = 'pending' AND claimed_by IS NOT NULL"
            wait_for(lambda: pg.psql(sql, "ssld_hooks") == "2", "pending deliveries claimed by both nodes", 120)
            rec.set_failing(False)
            for jid in ids:
                nodes[0].wait_state(jid, ["succeeded"], timeout=300)
            rec.wait_for(lambda ps: all(ended(ps, jid, "succeeded") for jid in ids), "all 8 jobs delivered")
            done = "SELECT count(*) FROM webhook_outbox WHERE state = 'delivered'"
            wait_for(lambda: pg.psql(done, "ssld_hooks") == str(len(ids)), "every delivery row marked delivered", 120)
            posts = rec.wait_for(lambda ps: True, "posts")
            for jid in ids:
                mine = posts_of(posts, jid)
                oks = [b for st, b in mine if st == 200]
                check(len(oks) == 1, "job %d: %d POSTs answered 200, expected exactly 1: %r"
                      % (jid, len(oks), [m[0] for m in mine]))
                check(all(b == oks[0] for _st, b in mine), "job %d: the documents differ between attempts" % jid)
            rows = pg.psql("SELECT count(*), count(DISTINCT job_id), count(DISTINCT claimed_by) FROM webhook_outbox",
                           "ssld_hooks")
            check(rows == "%d|%d|2" % (len(ids), len(ids)), "outbox rows (all, distinct jobs, delivering nodes): %s" % rows)
            print("%d jobs, %d POSTs, delivered by both nodes" % (len(ids), len(posts)))
            for d in nodes:
                check(d.stop() == 0, "ssld did not stop cleanly:\n%s" % d.log())
    finally:
        rec.close()
        for d in nodes:
            d.cleanup()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[2] == "postgres":
        run(main_postgres)
    run(main)
