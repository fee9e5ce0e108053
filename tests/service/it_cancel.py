"""it_cancel.py - cancelling jobs in a real ssld:

- a running job: POST /v1/jobs/{id}/cancel answers 202, the run stops within a step (well within
  a couple of seconds) and the job ends `cancelled` with its reason; its metrics stop growing;
- a queued job behind it: cancelled at once (200) and never runs; the next queued job does run;
- cancelling a finished job: 409 not_cancellable.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ssld_harness import Daemon, check, run, short_job, skip_unless_dataset  # noqa: E402


def main(exe):
    skip_unless_dataset()
    d = Daemon(exe)
    try:
        d.start("--workers", "1")
        long_job = short_job("long", epochs=200, limit_train=4096)      # minutes: only cancel ends it
        s, a = d.post("/v1/jobs", long_job)
        check(s == 201, "submit long -> %d %s" % (s, a))
        s, b = d.post("/v1/jobs", short_job("queued-then-cancelled", epochs=1))
        check(s == 201, "submit b -> %d" % s)
        s, c = d.post("/v1/jobs", short_job("runs-after", epochs=1))
        check(s == 201, "submit c -> %d" % s)

        # Wait until the long job trains, then cancel the queued one behind it.
        deadline = time.time() + 60
        while time.time() < deadline:
            j = d.job(a["id"])
            if j["state"] == "running" and j["progress"]["step"] > 20:
                break
            time.sleep(0.1)
        check(j["state"] == "running" and j["progress"]["step"] > 20, "long job not training: %s" % j)
        s, r = d.post("/v1/jobs/%d/cancel" % b["id"])
        check(s == 200 and r["state"] == "cancelled", "cancel queued -> %d %s" % (s, r))

        # Cancel the running one and time how long it takes to stop.
        t0 = time.time()
        s, r = d.post("/v1/jobs/%d/cancel" % a["id"])
        check(s == 202 and r["state"] == "running" and r["cancel_requested"], "cancel running -> %d %s" % (s, r))
        j = d.wait_state(a["id"], ("cancelled", "failed", "succeeded"), timeout=120)
        latency = time.time() - t0
        check(j["state"] == "cancelled" and j["error"] == "cancelled by request", "long job ended as %s" % j)
        check(latency < 5, "cancel took %.1f s" % latency)
        check(j["progress"]["step"] < j["progress"]["total"], "the cancelled job ran to the end?")
        s, m1 = d.get("/v1/jobs/%d/metrics?keys=loss" % a["id"])
        time.sleep(1.2)
        s, m2 = d.get("/v1/jobs/%d/metrics?keys=loss" % a["id"])
        check(m1["cursor"] == m2["cursor"], "metrics still grow after the cancel")
        s, ev = d.get("/v1/jobs/%d/events" % a["id"])
        check(any("cancel" in e["message"] for e in ev["events"]), "no cancel event: %s" % ev)

        # The queued-then-cancelled job never ran; the next one does.
        jb = d.job(b["id"])
        check(jb["state"] == "cancelled" and jb["started_at"] is None and jb["attempts"] == 0, "b ran: %s" % jb)
        jc = d.wait_state(c["id"], ("succeeded", "failed", "cancelled"), timeout=120)
        check(jc["state"] == "succeeded", "c ended %s: %s" % (jc["state"], jc["error"]))
        s, e = d.post("/v1/jobs/%d/cancel" % c["id"])
        check(s == 409 and e["error"]["code"] == "not_cancellable", "cancel finished -> %d %s" % (s, e))

        s, hdrs, text = d.raw("GET", "/metrics")
        check(b'ssld_jobs_finished_total{outcome="cancelled"} 1' in text, "cancelled counter")
        check(d.stop() == 0, "ssld did not stop cleanly:\n" + d.log())
        print("  running job cancelled in %.2f s at step %d; queued job never ran; next job succeeded"
              % (latency, j["progress"]["step"]))
    finally:
        d.cleanup()


if __name__ == "__main__":
    run(main)
