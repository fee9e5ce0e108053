#!/usr/bin/env python3
"""it_postgres.py - ssld with `--database postgresql://...` on a real PostgreSQL (suite postgres).

- a daemon on PostgreSQL runs a short job to success: every loss step stored once, results,
  the job listed; no SQLite file appears in its state directory;
- a second daemon (its own state directory, the same database, no workers) answers the same job,
  its metrics and its results: the history is the database's, not a node's;
- the database goes away: /v1/health says "degraded" (503) and names the database error, the
  daemon keeps running; the database comes back: the same daemon answers again (reconnects);
- the database goes away while a job trains: training goes on (steps counted), metric flushes fail
  and keep their rows, and once the database is back the job succeeds with every loss step stored
  exactly once;
- `ssld token create` with `database = URL` in the config file writes the token there.
Usage: it_postgres.py SSLD_EXE
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from ssld_harness import Daemon, Failure, check, run, short_job, skip_unless_dataset, ssld, wait_for  # noqa: E402
import pgserver  # noqa: E402


def wait_health(d, want_status, timeout=60):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = d.get("/v1/health")
        if last[1] and last[1].get("status") == want_status:
            return last
        time.sleep(0.1)
    raise Failure("health did not become %r within %d s: %s" % (want_status, timeout, last))


def main(exe):
    pgserver.skip_unless_available()
    skip_unless_dataset()
    with pgserver.PgServer() as pg:
        url = pg.create_db("ssld_it")
        a, b = Daemon(exe), Daemon(exe)
        try:
            a.start("--workers", "1", "--database", url)
            s, sub = a.post("/v1/jobs", short_job("on-postgres", epochs=2))
            check(s == 201, "submit -> %d %s" % (s, sub))
            jid = sub["id"]
            j = a.wait_state(jid, ("succeeded", "failed"), timeout=120)
            check(j["state"] == "succeeded", "job ended %s: %s" % (j["state"], j.get("error")))
            check(j.get("results"), "no results: %s" % j)
            s, m = a.get("/v1/jobs/%d/metrics?max_points=100000" % jid)
            check(s == 200, "metrics -> %d %s" % (s, m))
            steps = [p[0] for p in m["series"]["loss"]["points"]]
            total = 2 * (512 // 64)
            check(steps == list(range(1, total + 1)), "loss steps are not exactly 1..%d: %s" % (total, steps))
            check(not os.path.exists(os.path.join(a.state_dir, "ssld.db")), "an SQLite file was created beside PostgreSQL")
            rows = pg.psql("SELECT count(*) FROM metrics WHERE job_id = %d AND key = 'loss'" % jid, db="ssld_it")
            check(rows == str(total), "PostgreSQL holds %s loss rows, expected %d" % (rows, total))

            # Another node on the same database sees the same history.
            b.start("--workers", "0", "--database", url)
            jb = b.job(jid)
            check(jb["state"] == "succeeded" and jb.get("results") == j.get("results"), "second node: %s" % jb)
            s, mb = b.get("/v1/jobs/%d/metrics?max_points=100000" % jid)
            check(s == 200 and mb["series"]["loss"]["points"] == m["series"]["loss"]["points"],
                  "second node's metrics differ")
            s, lst = b.get("/v1/jobs")
            check(s == 200 and [x["id"] for x in lst["jobs"]] == [jid], "second node's list: %s" % lst)

            # The database goes away and comes back.
            pg.stop()
            s, h = wait_health(a, "degraded")
            check(s == 503 and "PostgreSQL" in h.get("database", ""), "health while the database is down: %d %s" % (s, h))
            check(a.proc.poll() is None, "the daemon exited when the database went away:\n" + a.log())
            pg.start()
            s, h = wait_health(a, "ok")
            check(s == 200 and h["jobs"]["succeeded"] == 1, "health after the database came back: %d %s" % (s, h))
            check(a.job(jid)["state"] == "succeeded", "job lost after the outage")

            # An outage while a job trains: its points wait in memory and all arrive, once each.
            s, sub = a.post("/v1/jobs", short_job("through-an-outage", epochs=4, limit_train=2048, hidden=(512, 512)))
            check(s == 201, "submit -> %d %s" % (s, sub))
            jid2 = sub["id"]
            wait_for(lambda: a.job(jid2)["state"] == "running" and a.get("/v1/jobs/%d/metrics?keys=loss" % jid2)[1]["series"],
                     "the job running with points stored")
            fails0, steps0 = a.metric("ssld_metric_flush_failures_total", 0.0), a.metric("ssld_train_steps_total", 0.0)
            pg.stop()
            wait_for(lambda: a.metric("ssld_metric_flush_failures_total", 0.0) > fails0, "a metric flush failing")
            wait_for(lambda: a.metric("ssld_train_steps_total", 0.0) > steps0 + 5, "training going on")
            check(a.metric("ssld_metric_points_dropped_total", 0.0) == 0, "points dropped during the outage")
            pg.start()
            j2 = a.wait_state(jid2, ("succeeded", "failed"), timeout=120)
            check(j2["state"] == "succeeded", "job ended %s: %s" % (j2["state"], j2.get("error")))
            s, m2 = a.get("/v1/jobs/%d/metrics?keys=loss&max_points=100000" % jid2)
            steps = [p[0] for p in m2["series"]["loss"]["points"]]
            total = 4 * (2048 // 64)
            check(steps == list(range(1, total + 1)), "loss steps after the outage are not exactly 1..%d: %d points, "
                  "first missing %s" % (total, len(steps), sorted(set(range(1, total + 1)) - set(steps))[:5]))

            # `ssld token` reads `database` from the configuration file.
            conf = os.path.join(a.state_dir, "token.conf")
            with open(conf, "w") as f:
                f.write("state-dir = %s\ndatabase = %s\n" % (a.state_dir, url))
            ssld(exe, "token", "create", "ann", "--config", conf, check_rc=0)
            names = pg.psql("SELECT name FROM tokens", db="ssld_it")
            check(names == "ann", "token not in PostgreSQL: %r" % names)
            check(a.stop() == 0 and b.stop() == 0, "daemons did not stop cleanly")
        finally:
            a.cleanup()
            b.cleanup()


if __name__ == "__main__":
    run(main)
