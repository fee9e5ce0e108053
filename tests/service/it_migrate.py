#!/usr/bin/env python3
"""it_migrate.py - `ssld migrate --from ssld.db --to postgresql://...` on a real PostgreSQL (suite postgres).

A single node on SQLite runs a job to success and queues another and a sweep's group, with a
token; after the copy a daemon on PostgreSQL answers the same jobs with the same ids, states,
results, metric points (same cursors), events and artifacts, and the same group; the token still
authenticates; the next job gets the next id; the queued job runs there. A second copy into the same database is refused and changes nothing; a
--to that is not a PostgreSQL URL is refused.
Usage: it_migrate.py SSLD_EXE
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from ssld_harness import Daemon, bearer, check, run, short_job, skip_unless_dataset, ssld  # noqa: E402
import pgserver  # noqa: E402


def history(d, jid):
    """Everything a client sees of a finished job (minus what moves with time)."""
    j = d.job(jid)
    s, m = d.get("/v1/jobs/%d/metrics?max_points=100000" % jid)
    check(s == 200, "metrics -> %d %s" % (s, m))
    s, ev = d.get("/v1/jobs/%d/events" % jid)
    check(s == 200, "events -> %d %s" % (s, ev))
    s, art = d.get("/v1/jobs/%d/artifacts" % jid)
    check(s == 200, "artifacts -> %d %s" % (s, art))
    keep = ("id", "name", "state", "results", "error", "owner", "attempts", "created_at", "finished_at", "step")
    return {"job": {k: j.get(k) for k in keep}, "metrics": m, "events": ev, "artifacts": art}


def main(exe):
    pgserver.skip_unless_available()
    skip_unless_dataset()
    with pgserver.PgServer() as pg:
        url = pg.create_db("ssld_migrated")
        a = Daemon(exe)
        b = None
        try:
            a.start("--workers", "1")
            tok = ssld(exe, "token", "create", "ann", "--state-dir", a.state_dir, check_rc=0).stdout.strip()
            s, sub = a.post("/v1/jobs", short_job("before", epochs=2), bearer(tok))
            check(s == 201, "submit -> %d %s" % (s, sub))
            done = sub["id"]
            check(a.wait_state(done, ("succeeded", "failed"))["state"] == "succeeded", "the SQLite job failed")
            before = history(a, done)
            check(a.stop() == 0, "daemon did not stop")
            a.start("--workers", "0")
            s, sub = a.post("/v1/jobs", short_job("still-queued", epochs=1), bearer(tok))
            check(s == 201, "submit -> %d %s" % (s, sub))
            queued = sub["id"]
            sweep = dict(short_job("swept", epochs=1), sweep={"grid": {"pretrain.optimizer.lr": [1e-3, 3e-3]}})
            s, g = a.post("/v1/jobs", sweep, bearer(tok))
            check(s == 201 and len(g["jobs"]) == 2, "sweep -> %d %s" % (s, g))
            s, group_before = a.get("/v1/groups/%d" % g["group"])
            check(s == 200, "group -> %d %s" % (s, group_before))
            last = max(g["jobs"])
            check(a.stop() == 0, "daemon did not stop")

            db = os.path.join(a.state_dir, "ssld.db")
            p = ssld(exe, "migrate", "--from", db, "--to", url, check_rc=0)
            check("copied 4 jobs, 1 groups" in p.stdout and "1 tokens" in p.stdout, "migrate said: %r" % p.stdout)

            b = Daemon(exe)
            b.start("--workers", "0", "--database", url)
            after = history(b, done)
            check(after == before, "the history differs after the copy:\nbefore %s\nafter  %s" % (before, after))
            check(b.job(queued)["state"] == "queued", "the queued job: %s" % b.job(queued))
            s, group_after = b.get("/v1/groups/%d" % g["group"])
            check(s == 200 and group_after == group_before, "the group differs: %s\n%s" % (group_before, group_after))
            s, e = b.post("/v1/jobs", short_job("anonymous"))
            check(s == 401, "a POST without the copied token -> %d %s" % (s, e))
            s, sub = b.post("/v1/jobs", short_job("after", epochs=1), bearer(tok))
            check(s == 201 and sub["id"] == last + 1, "the next job's id: %d %s (expected %d)" % (s, sub, last + 1))
            check(b.stop() == 0, "daemon did not stop")
            b.start("--workers", "1", "--database", url)
            j = b.wait_state(queued, ("succeeded", "failed"))
            check(j["state"] == "succeeded", "the copied queued job ended %s: %s" % (j["state"], j.get("error")))

            # A second copy is refused and leaves the database as it was.
            n0 = pg.psql("SELECT count(*) FROM jobs", db="ssld_migrated")
            p = ssld(exe, "migrate", "--from", db, "--to", url, check_rc=1)
            check("not empty (5 jobs, 1 groups" in p.stderr, "second migrate said: %r" % p.stderr)
            check(pg.psql("SELECT count(*) FROM jobs", db="ssld_migrated") == n0, "a refused copy changed the target")
            p = ssld(exe, "migrate", "--from", db, "--to", os.path.join(a.state_dir, "other.db"), check_rc=1)
            check("expected a PostgreSQL URL" in p.stderr, "a non-URL --to: %r" % p.stderr)
            p = ssld(exe, "migrate", "--from", db, check_rc=2)
            check("--to URL" in p.stderr, "a missing --to: %r" % p.stderr)
            check(b.stop() == 0, "daemon did not stop")
        finally:
            a.cleanup()
            if b:
                b.cleanup()


if __name__ == "__main__":
    run(main)
