"""it_sweep.py - one POST with a "sweep" makes a group of jobs, against a real daemon.

- A grid of 2 learning rates x 2 seeds of a short job: 201 {"group", "jobs": 4 ids}; each job
  names its group and setting and runs with seeds 3 and 4; when all succeeded, GET
  /v1/groups/{id} gives per setting the mean and sample std over seeds equal to the ones computed
  here from the jobs' own results, and "best" is the setting with the higher mean.
- Refusals queue nothing: a misspelt path and a bad value are 400s naming sweep.grid.<path>
  (message naming the setting), seeds 0 names sweep.seeds, a log_uniform from 0 names the random
  path, and a sweep larger than max-queued-per-owner is a 429.
- ?dry_run=1 with random draws shows the children without queueing; the same spec draws the same.
- Cancelling a group cancels its queued job and stops its running one.
"""
import json
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ssld_harness import Daemon, check, run, short_job, skip_unless_dataset, ssld  # noqa: E402


def job_count(d):
    s, j = d.get("/v1/jobs?limit=1000")
    check(s == 200, "list -> %d" % s)
    return len(j["jobs"])


def refused(d, spec, status, field, what):
    before = job_count(d)
    s, e = d.post("/v1/jobs", spec)
    check(s == status, "%s: expected %d, got %d %r" % (what, status, s, e))
    if field:
        check(e["error"]["field"] == field, "%s: field %r, expected %r (%r)" % (what, e["error"]["field"], field, e))
    check(job_count(d) == before, "%s: a refused sweep queued jobs" % what)
    return e


def main(exe):
    skip_unless_dataset()
    d = Daemon(exe)
    try:
        d.start("--workers", "1", "--max-queued-per-owner", "6")
        evals = {"evaluations": [{"protocol": "linear_probe", "label_fractions": [0.1]}]}
        base = short_job("sw", extra=evals)
        spec = dict(base, sweep={"grid": {"pretrain.optimizer.lr": [1e-3, 3e-3]}, "seeds": 2})
        s, g = d.post("/v1/jobs", spec)
        check(s == 201 and len(g["jobs"]) == 4 and g["settings"] == 2 and g["seeds"] == 2, "sweep -> %d %r" % (s, g))
        gid, ids = g["group"], g["jobs"]
        for i, jid in enumerate(ids):
            j = d.job(jid)
            check(j["group"] == gid, "job %d group %r" % (jid, j["group"]))
            check(j["setting"] == {"pretrain.optimizer.lr": [1e-3, 3e-3][i // 2]}, "job %d setting %r" % (jid, j["setting"]))
            check(j["spec"]["seed"] == 3 + i % 2, "job %d seed %r" % (jid, j["spec"]["seed"]))
            check(abs(j["spec"]["pretrain"]["optimizer"]["lr"] - [1e-3, 3e-3][i // 2]) < 1e-12, "job %d lr in spec" % jid)
        accs = {}
        for jid in ids:
            j = d.wait_state(jid, ["succeeded", "failed"], timeout=300)
            check(j["state"] == "succeeded", "job %d: %s %s" % (jid, j["state"], j["error"]))
            accs[jid] = j["results"]["evaluations"][0]["test_accuracy"]
        s, grp = d.get("/v1/groups/%d" % gid)
        check(s == 200 and grp["counts"]["succeeded"] == 4 and len(grp["children"]) == 4, "group -> %d %r" % (s, grp))
        check(grp["sweep"] == spec["sweep"], "group sweep %r" % grp["sweep"])
        means = []
        for k, st in enumerate(grp["settings"]):
            check(st["jobs"] == ids[2 * k:2 * k + 2], "setting %d jobs %r" % (k, st["jobs"]))
            r = st["results"][0]
            vals = [accs[i] for i in st["jobs"]]
            check(r["protocol"] == "linear_probe" and r["n"] == 2, "setting %d result %r" % (k, r))
            check(abs(r["mean"] - statistics.mean(vals)) < 1e-6 and abs(r["std"] - statistics.stdev(vals)) < 1e-6,
                  "setting %d: mean/std %r/%r, expected %r/%r" % (k, r["mean"], r["std"], statistics.mean(vals),
                                                                 statistics.stdev(vals)))
            means.append(statistics.mean(vals))
        best = max(range(2), key=lambda k: means[k])
        check(grp["best"]["setting_index"] == best, "best %r, means %r" % (grp["best"], means))
        server = "http://127.0.0.1:%d" % d.port
        s, lst = d.get("/v1/jobs?group=%d" % gid)
        check(s == 200 and sorted(x["id"] for x in lst["jobs"]) == ids, "jobs?group= %r" % lst)
        out = ssld(exe, "ls", "--group", str(gid), "--server", server, check_rc=0).stdout
        rows = [l for l in out.splitlines()[1:] if l.strip()]
        check(len(rows) == 4 and all(l.endswith("[group %d]" % gid) for l in rows), "ssld ls --group:\n%s" % out)
        out = ssld(exe, "group", str(gid), "--server", server, check_rc=0).stdout
        star = [l for l in out.splitlines() if l.startswith("* {")]
        check(len(star) == 1 and str([1e-3, 3e-3][best]).replace("0.00", ".00") in star[0].replace("0.00", ".00")
              and "%.2f%%" % (100 * means[best]) in out, "ssld group output:\n%s" % out)

        # Refusals: nothing queued.
        e = refused(d, dict(base, sweep={"grid": {"pretrain.optimizer.lrr": [1e-3]}}), 400,
                    "sweep.grid.pretrain.optimizer.lrr", "misspelt path")
        e = refused(d, dict(base, sweep={"grid": {"pretrain.optimizer.lr": [1e-3, -1]}}), 400,
                    "sweep.grid.pretrain.optimizer.lr", "bad value")
        check("sweep setting 2 of 2" in e["error"]["message"], "message names the setting: %r" % e["error"]["message"])
        refused(d, dict(base, sweep={"seeds": 0}), 400, "sweep.seeds", "seeds 0")
        refused(d, dict(base, sweep={"random": {"params.temperature": {"log_uniform": [0, 1]}, "n": 2}}), 400,
                "sweep.random.params.temperature", "log_uniform from 0")
        refused(d, dict(base, sweep={"seeds": 7}), 429, None, "more than max-queued-per-owner")

        # Dry run with random draws: seeded, within range, nothing queued.
        rs = dict(base, sweep={"random": {"params.temperature": {"log_uniform": [0.1, 1.0]}, "n": 3}})
        before = job_count(d)
        s, a = d.post("/v1/jobs?dry_run=1", rs)
        s2, b = d.post("/v1/jobs?dry_run=1", rs)
        check(s == 200 and s2 == 200 and len(a["jobs"]) == 3, "dry run -> %d %r" % (s, a))
        temps = [c["setting"]["params.temperature"] for c in a["jobs"]]
        check(temps == [c["setting"]["params.temperature"] for c in b["jobs"]], "the same spec drew differently")
        check(all(0.1 <= t <= 1.0 for t in temps) and len(set(temps)) == 3, "draws %r" % temps)
        check(all(c["spec"]["params"]["temperature"] == c["setting"]["params.temperature"] for c in a["jobs"]),
              "dry-run specs do not carry their draws")
        check(job_count(d) == before, "a dry run queued jobs")

        # Cancel a group: one running, one queued.
        long = dict(short_job("long", epochs=5000, hidden=(512, 512)), sweep={"seeds": 2})
        s, g2 = d.post("/v1/jobs", long)
        check(s == 201, "long sweep -> %d %r" % (s, g2))
        d.wait_state(g2["jobs"][0], ["running"])
        s, c = d.post("/v1/groups/%d/cancel" % g2["group"])
        check(s == 200 and c["cancel_requested"] == [g2["jobs"][0]] and c["cancelled"] == [g2["jobs"][1]],
              "group cancel -> %d %r" % (s, c))
        for jid in g2["jobs"]:
            d.wait_state(jid, ["cancelled"])
        # The CLI: a sweep file prints its job ids; --cancel cancels the group.
        path = os.path.join(d.state_dir, "sweep.json")
        with open(path, "w") as f:
            json.dump(long, f)
        p = ssld(exe, "submit", path, "--server", server, check_rc=0)
        cli_ids = [int(x) for x in p.stdout.split()]
        check(len(cli_ids) == 2 and "group" in p.stderr, "ssld submit sweep: %r %r" % (p.stdout, p.stderr))
        g3 = d.job(cli_ids[0])["group"]
        ssld(exe, "group", str(g3), "--cancel", "--server", server, check_rc=0)
        for jid in cli_ids:
            d.wait_state(jid, ["cancelled"])
        s, lst = d.get("/v1/groups")
        check(s == 200 and [x["id"] for x in lst["groups"]] == [g3, g2["group"], gid], "groups list %r" % lst)
        s, _ = d.get("/v1/groups/999")
        check(s == 404, "missing group -> %d" % s)
        check(d.stop() == 0, "ssld did not stop cleanly:\n%s" % d.log())
    finally:
        d.cleanup()


if __name__ == "__main__":
    run(main)
