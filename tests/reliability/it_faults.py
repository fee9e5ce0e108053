"""it_faults.py SSLD - faults under a real ssld, each ending in a clean, named error:

- a full disk during a checkpoint write (RLIMIT_FSIZE below the checkpoint's size, set by
  prlimit on the restarted daemon): the daemon survives (SIGXFSZ is ignored), the job fails with
  an error naming checkpoint.safetensors, the previous checkpoint is byte-for-byte intact and no
  temporary file is left;
- SSLD_FAULT (engine/fault.h) points: a failed commit while queueing a job (503 storage_error,
  no row), an I/O error halfway through a metric batch (the batch is rolled back and written
  again: the loss curve is every step exactly once), an allocation failure building an answer
  (503 out_of_memory in the error shape, then normal service), an allocation failure and a full
  disk (ENOSPC) in a later checkpoint write (the job fails naming the file, the earlier checkpoint
  survives);
- a checkpoint corrupted on disk while the daemon is down (one flipped byte in the data, or the
  file cut short): the resumed job fails with an error and an event naming the checkpoint and
  the damage (checksum mismatch / truncated).
After each: PRAGMA integrity_check is ok and the daemon stops cleanly.
"""
import os
import signal
import sqlite3
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "service"))
sys.path.insert(0, HERE)
from ssld_harness import Daemon, Failure, check, run, skip_unless_dataset  # noqa: E402
from rel_common import CKPT, idx_job, sha, small_dataset  # noqa: E402

def integrity(d):
    db = sqlite3.connect(os.path.join(d.state_dir, "ssld.db"))
    try:
        return db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    finally:
        db.close()


def temps(d, jid):
    return [n for n in os.listdir(os.path.join(d.state_dir, "jobs", str(jid))) if ".tmp" in n]


def events(d, jid):
    s, ev = d.get("/v1/jobs/%d/events?limit=1000" % jid)
    return [e["message"] for e in ev["events"]]


class Env:
    """Starts ssld with extra environment variables / a file size limit (Daemon.start has no
    such options: a wrapper executable does it)."""

    def __init__(self, d, exe, env=None, fsize=None):
        self.path = os.path.join(d.state_dir, "wrap-%d.sh" % len(os.listdir(d.state_dir)))
        lines = ["#!/bin/sh"] + ["export %s='%s'" % kv for kv in (env or {}).items()]
        lines.append(("exec prlimit --fsize=%d:%d %s \"$@\"" % (fsize, fsize, exe)) if fsize else 'exec %s "$@"' % exe)
        with open(self.path, "w") as f:
            f.write("\n".join(lines) + "\n")
        os.chmod(self.path, 0o755)


def setup(exe, env=None, fsize=None):
    d = Daemon(exe)
    data = os.path.join(d.state_dir, "data")
    os.mkdir(data)
    d.files = small_dataset(data)
    d.exe = Env(d, exe, env, fsize).path if env or fsize else exe
    d.args_ = ("--workers", "1", "--data-root", data)
    return d


def trained_then_stopped(d, name, budget=600):
    """Submits a job, lets it write a checkpoint, stops the daemon (SIGTERM: checkpoint, requeue)."""
    d.start(*d.args_)
    s, sub = d.post("/v1/jobs", idx_job(name, d.files, pretrain={"epochs": 1000, "batch_size": 64, "time_budget_s": budget}))
    check(s == 201, "submit -> %d %s" % (s, sub))
    jid = sub["id"]
    deadline = time.time() + 90
    while (d.job(jid)["checkpoint_step"] or 0) <= 0:
        check(time.time() < deadline, "no checkpoint within 90 s")
        time.sleep(0.1)
    check(d.stop() == 0, "SIGTERM stop not clean:\n" + d.log())
    return jid, os.path.join(d.state_dir, "jobs", str(jid), CKPT)


def full_disk(exe):
    d = setup(exe)
    try:
        jid, ck = trained_then_stopped(d, "full-disk")
        before, size = sha(ck), os.path.getsize(ck)
        d.exe = Env(d, exe, fsize=size // 2).path       # every file may grow to half a checkpoint
        d.start(*d.args_)
        j = d.wait_state(jid, ("failed", "succeeded", "cancelled"), timeout=120)
        check(d.proc.poll() is None, "ssld died under the file size limit (exit %s)" % d.proc.returncode)
        check(j["state"] == "failed" and CKPT in (j["error"] or "") and "File too large" in j["error"],
              "full disk: job %s, error %r" % (j["state"], j["error"]))
        check(sha(ck) == before, "the previous checkpoint changed")
        check(temps(d, jid) == [], "temporary files left: %s" % temps(d, jid))
        check(any(CKPT in m and "File too large" in m for m in events(d, jid)), "no event names the checkpoint")
        check(d.stop() == 0 and integrity(d), "stop/integrity after the full disk")
        print("  full disk (RLIMIT_FSIZE %d B): job failed with %r; previous checkpoint intact" % (size // 2, j["error"][:120]))
    finally:
        d.cleanup()


def injected(exe):
    # A failed commit while queueing (the 2nd insert), an I/O error in the 2nd metric batch, an
    # allocation failure in the 4th answer built from a buffer.
    d = setup(exe, env={"SSLD_FAULT": "job_insert@2,metric_flush@2,api_alloc@4"})
    try:
        d.start(*d.args_)
        spec = idx_job("faults", d.files, hidden=(256,), pretrain={"epochs": 3, "batch_size": 64})
        s1, a = d.post("/v1/jobs", spec)
        s2, b = d.post("/v1/jobs", dict(spec, name="lost"))
        s3, c = d.post("/v1/jobs", dict(spec, name="third"))
        check(s1 == 201 and s3 == 201, "inserts around the fault: %d %d" % (s1, s3))
        check(s2 == 503 and b["error"]["code"] == "storage_error" and "injected" in b["error"]["message"],
              "failed insert -> %d %s" % (s2, b))
        db = sqlite3.connect(os.path.join(d.state_dir, "ssld.db"))
        names = [r[0] for r in db.execute("SELECT name FROM jobs ORDER BY id")]
        db.close()
        check(names == ["faults", "third"], "jobs after a failed insert: %s" % names)
        oom = None
        for _ in range(6):
            s, hdrs, data = d.raw("GET", "/v1/jobs")
            if s == 503:
                oom = data
        check(oom is not None and b'"code":"out_of_memory"' in oom, "no 503 out_of_memory answer: %r" % oom)
        s, lst = d.get("/v1/jobs")
        check(s == 200 and len(lst["jobs"]) == 2, "service after the allocation failure: %d" % s)
        for jid in (a["id"], c["id"]):
            j = d.wait_state(jid, ("succeeded", "failed"), timeout=180)
            check(j["state"] == "succeeded", "job %d: %s %s" % (jid, j["state"], j["error"]))
            total = j["results"]["pretext"]["steps"]
            s, m = d.get("/v1/jobs/%d/metrics?keys=loss&max_points=100000" % jid)
            steps = [p[0] for p in m["series"]["loss"]["points"]]
            check(steps == list(range(1, total + 1)), "job %d: loss steps after a failed batch: %d of %d" % (jid, len(steps), total))
        check("metric flush" in d.log() or "metric batch" in d.log(), "the failed batch was not logged")
        check(d.stop() == 0 and integrity(d), "stop/integrity after the injected faults")
        print("  injected: failed insert -> 503 storage_error, no row; failed metric batch rewritten, loss curves exact; "
              "503 out_of_memory then normal answers")
    finally:
        d.cleanup()


def checkpoint_faults(exe):
    for point, want in (("checkpoint_alloc", "out of memory"), ("checkpoint_write", "No space left on device")):
        d = setup(exe, env={"SSLD_FAULT": "%s@3" % point})   # the 3rd checkpoint write fails
        try:
            d.start(*d.args_)
            s, sub = d.post("/v1/jobs", idx_job(point, d.files, pretrain={"epochs": 1000, "batch_size": 64, "time_budget_s": 600}))
            jid = sub["id"]
            ck = os.path.join(d.state_dir, "jobs", str(jid), CKPT)
            j = d.wait_state(jid, ("failed", "succeeded"), timeout=120)
            check(j["state"] == "failed" and CKPT in j["error"] and want in j["error"], "%s: %s %r" % (point, j["state"], j["error"]))
            check(temps(d, jid) == [], "%s: temporary files left" % point)
            check(j["checkpoint_step"] and j["checkpoint_step"] > 0, "%s: no earlier checkpoint recorded" % point)
            check(d.stop() == 0 and integrity(d), "%s: stop/integrity" % point)
            # The earlier checkpoint is whole: requeue the job by hand and it resumes from it.
            db = sqlite3.connect(os.path.join(d.state_dir, "ssld.db"))
            db.execute("UPDATE jobs SET state = 'running' WHERE id = ?", (jid,))
            db.commit()
            db.close()
            d.exe = exe
            d.start(*d.args_)
            want_ev = "resumed from checkpoint at step %d" % j["checkpoint_step"]
            deadline = time.time() + 60
            while not any(want_ev in m for m in events(d, jid)):
                check(time.time() < deadline, "%s: no %r after the fault" % (point, want_ev))
                time.sleep(0.1)
            d.post("/v1/jobs/%d/cancel" % jid)
            check(d.stop() == 0, "%s: final stop" % point)
            print("  %s: job failed with %r; the earlier checkpoint (step %d) resumes" % (point, j["error"][:100], j["checkpoint_step"]))
        finally:
            d.cleanup()


def corrupted(exe):
    for how in ("flip", "truncate"):
        d = setup(exe)
        try:
            jid, ck = trained_then_stopped(d, "corrupt-" + how)
            with open(ck, "r+b") as f:
                if how == "flip":
                    f.seek(-1000, os.SEEK_END)
                    b = f.read(1)
                    f.seek(-1000, os.SEEK_END)
                    f.write(bytes([b[0] ^ 0x10]))
                else:
                    f.truncate(os.path.getsize(ck) // 2)
            d.start(*d.args_)
            j = d.wait_state(jid, ("failed", "succeeded"), timeout=120)
            want = "checksum mismatch" if how == "flip" else "truncated"
            check(j["state"] == "failed" and ck in j["error"] and want in j["error"], "%s: %s %r" % (how, j["state"], j["error"]))
            check(any(ck in m and want in m for m in events(d, jid)), "%s: no event names the checkpoint" % how)
            check(d.stop() == 0 and integrity(d), "%s: stop/integrity" % how)
            print("  corrupted checkpoint (%s): job failed with %r" % (how, j["error"][:140]))
        finally:
            d.cleanup()


def main(exe):
    skip_unless_dataset()
    t0 = time.time()
    full_disk(exe)
    injected(exe)
    checkpoint_faults(exe)
    corrupted(exe)
    print("  all fault cases: %.1f s" % (time.time() - t0))


if __name__ == "__main__":
    run(main)
