"""it_load.py SSLD [SECONDS] - a real ssld under read load while a job trains (default 10 s):
50 keep-alive clients loop over the read endpoints a dashboard polls (job list, job, metrics from a
cursor, events, health, Prometheus text, the static page) and 5 clients submit jobs. No answer
may be a 5xx and no connection may fail; p50/p99 latencies are printed (the 60 s run with the
figures is bench/load_bench.py). Then the queue is filled to 2,000 jobs, and GET /v1/jobs pages
through them (page sizes 1000, 7 and 333 with a state filter): every job exactly once, newest
first, matching the database.
"""
import json
import os
import sqlite3
import sys
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "service"))
sys.path.insert(0, HERE)
from ssld_harness import Daemon, check, run, skip_unless_dataset  # noqa: E402
from rel_common import idx_job, small_dataset  # noqa: E402
from load_core import check_paging, report, run_load  # noqa: E402

QUEUED = 2000


def fill_queue(d, spec, n):
    """POSTs until n more jobs exist (8 threads); returns their ids."""
    ids, lock, fails, issued = [], threading.Lock(), [], [0]
    body = json.dumps(spec)

    def work(k):
        while True:
            with lock:
                if issued[0] >= n or fails:
                    return
                issued[0] += 1
            s, r = d.call("POST", "/v1/jobs", body, {"Content-Type": "application/json"})
            with lock:
                if s == 201:
                    ids.append(r["id"])
                else:
                    fails.append((s, r))
    ts = [threading.Thread(target=work, args=(0,)) for _ in range(8)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    check(not fails, "filling the queue: %s" % fails[:3])
    return ids


def main(exe, seconds=10.0, out=None):
    skip_unless_dataset()
    d = Daemon(exe)
    try:
        data = os.path.join(d.state_dir, "data")
        os.mkdir(data)
        files = small_dataset(data)
        d.start("--workers", "1", "--data-root", data)
        train = idx_job("load-train", files, pretrain={"epochs": 1000, "batch_size": 64,
                                                        "time_budget_s": seconds + 600})
        s, sub = d.post("/v1/jobs", train)
        check(s == 201, "submit -> %d %s" % (s, sub))
        jid = sub["id"]
        d.wait_state(jid, ("running",), timeout=60)
        small = idx_job("load-submit", files, hidden=(32,), pretrain={"epochs": 1, "batch_size": 64})
        step0 = d.job(jid)["progress"]["step"]
        st = run_load(d, jid, seconds, small)
        print(report(st))
        j = d.job(jid)
        check(j["state"] == "running", "the training job is %s after the load: %s" % (j["state"], j.get("error")))
        check(not st["fivexx"], "%d answers were 5xx: %s" % (len(st["fivexx"]), st["fivexx"][:5]))
        check(not st["errors"], "%d requests failed: %s" % (len(st["errors"]), st["errors"][:5]))
        bad = {k: v for k, v in st["by_status"].items() if k not in (200, 201)}
        check(not bad, "unexpected statuses: %s" % bad)
        check(st["reads"] > 50 and st["submitted"], "too few requests: %d reads, %d submissions" % (st["reads"], len(st["submitted"])))
        print("  training job: step %d -> %d during the load" % (step0, j["progress"]["step"]))

        ids = [jid] + st["submitted"]
        ids += fill_queue(d, small, max(0, QUEUED - len(ids) + 1))
        db = sqlite3.connect(os.path.join(d.state_dir, "ssld.db"))
        in_db = sorted(r[0] for r in db.execute("SELECT id FROM jobs"))
        db.close()
        check(in_db == sorted(ids), "database holds %d jobs, the API created %d" % (len(in_db), len(ids)))
        problems = check_paging(d, ids)
        check(not problems, "paging: %s" % "; ".join(problems))
        print("  %d jobs (%d queued): every page size lists each exactly once, newest first" % (len(ids), len(ids) - 1))
        s, c = d.post("/v1/jobs/%d/cancel" % jid)
        check(s == 202 and c["cancel_requested"], "cancel the training job -> %d %s" % (s, c))
        check(d.stop() == 0, "ssld did not stop cleanly:\n" + d.log())
        if out is not None:
            out.update(st, training_steps=(step0, j["progress"]["step"]), jobs_paged=len(ids))
    finally:
        d.cleanup()


if __name__ == "__main__":
    secs = float(sys.argv[2]) if len(sys.argv) > 2 else 10.0
    sys.argv = sys.argv[:2]
    run(lambda exe: main(exe, secs))
