"""it_queue.py SSLD - the queue's rules over a real ssld: init_from dependencies, the priority
ceiling, and the attempts cap.

init_from (one rule: storage/store.h "init_from", workers/init_from.h):
  - a priority-5 transfer job submitted while its source is still queued waits: the source runs
    first and the transfer job after it, and both succeed (a claim order that ignores the dependency would fail it);
  - a transfer job whose encoder differs from its source's is a 400 naming the key
    (model.hidden), for a job-id source and for a checkpoint file;
  - another owner's job is a source only once it has succeeded; a transfer job is a source too
    (its exported encoder: it writes no pretraining checkpoint);
  - a source that fails, or is cancelled, fails its queued dependants (down a chain) with its
    reason - when it ends, and at start-up for sources that ended before.
Priorities above --max-user-priority (here set in a config file) need an admin token (403).
The attempts cap: a job found running at start-up 3 times (kill -9 while it runs) fails with the
reason instead of being requeued again; a clean SIGTERM stop before them does not count.
"""
import hashlib
import os
import shutil
import signal
import sqlite3
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "service"))
from ssld_harness import Daemon, check, run, skip_unless_dataset, wait_for  # noqa: E402
from rel_common import idx_job, small_dataset  # noqa: E402

TOKENS = {"alice": "alice-secret", "bob": "bob-secret", "root": "root-secret"}


def auth(who):
    return {"Authorization": "Bearer " + TOKENS[who]}


def write_tokens(path):
    with open(path, "w") as f:
        for who, secret in TOKENS.items():
            f.write("%s %s%s\n" % (who, hashlib.sha256(secret.encode()).hexdigest(), " admin" if who == "root" else ""))


def small(name, files, **extra):
    """A short real job (1 epoch of SimCLR on 4,096 images, an MLP of 32 units)."""
    return idx_job(name, files, hidden=(32,), pretrain={"epochs": 1, "batch_size": 64}, extra=extra or None)


def submit(d, who, spec, want=201):
    s, body = d.post("/v1/jobs", spec, auth(who))
    check(s == want, "%s submits %s -> %d %s, expected %d" % (who, spec.get("name"), s, body, want))
    return body["id"] if s == 201 else body["error"]


def db_exec(d, sql, args=()):
    db = sqlite3.connect(os.path.join(d.state_dir, "ssld.db"))
    try:
        with db:
            return db.execute(sql, args).fetchall()
    finally:
        db.close()


def check_error(err, code, field, text):
    check(err["code"] == code and err["field"] == field and text in err["message"],
          "expected %s naming %s with %r, got %s" % (code, field, text, err))


def test_priority_and_init_from(exe):
    d = Daemon(exe)
    try:
        root = os.path.join(d.state_dir, "data")
        os.mkdir(root)
        files = small_dataset(root)
        with open(files["train_images"], "rb") as f:
            img = f.read()
        truncated = os.path.join(root, "truncated-images")
        with open(truncated, "wb") as f:
            f.write(img[:len(img) // 2])
        tokens = os.path.join(d.state_dir, "tokens")
        write_tokens(tokens)
        conf = os.path.join(d.state_dir, "ssld.conf")
        with open(conf, "w") as f:
            f.write("max_user_priority = 5\n")
        args = ["--config", conf, "--data-root", root, "--tokens-file", tokens]
        d.start("--workers", "0", *args)   # queue only: nothing runs until the restart below

        # ---- the priority ceiling ----
        err = submit(d, "alice", small("jump", files, priority=100), 403)
        check_error(err, "forbidden", "priority", "above max-user-priority = 5")
        err = submit(d, "alice", small("jump", files, priority=6), 403)
        check_error(err, "forbidden", "priority", "only an admin token")
        admin_job = submit(d, "root", small("urgent", files, priority=100))
        print("  priority 100 and 6 from a user: 403 naming priority; 100 from an admin: 201")

        # ---- init_from at submit ----
        src = submit(d, "alice", small("source", files))
        dep = submit(d, "alice", small("transfer", files, init_from=src, priority=5))
        waiting = d.job(dep)["waiting"] or ""
        check("waiting for its init_from job %d (queued)" % src in waiting, "waiting: %r" % waiting)
        err = submit(d, "alice", idx_job("wider", files, hidden=(64,), extra={"init_from": src}), 400)
        check_error(err, "invalid_field", "model.hidden", "[64] differs from job %d's [32]" % src)
        err = submit(d, "bob", small("bobs", files, init_from=src), 400)
        check_error(err, "invalid_field", "init_from", "belongs to 'alice' and is queued")
        err = submit(d, "alice", small("ghost", files, init_from=999999), 400)
        check_error(err, "invalid_field", "init_from", "job 999999 does not exist")
        print("  init_from: another encoder -> 400 model.hidden; another owner's queued job -> 400 init_from")

        # ---- failure propagation: a chain, a cancel, and at start-up ----
        bad = small("bad", files)
        bad["dataset"]["train_images"] = truncated
        fsrc = submit(d, "alice", bad)
        d1 = submit(d, "alice", small("d1", files, init_from=fsrc))
        d2 = submit(d, "alice", small("d2", files, init_from=d1))
        csrc = submit(d, "alice", small("to-cancel", files))
        cdep = submit(d, "alice", small("cdep", files, init_from=csrc))
        s, _ = d.post("/v1/jobs/%d/cancel" % csrc, None, auth("alice"))
        check(s == 200, "cancel -> %d" % s)
        j = d.job(cdep)
        check(j["state"] == "failed" and j["error"] == "init_from job %d was cancelled: cancelled while queued" % csrc,
              "dependant of a cancelled job: %s %s" % (j["state"], j["error"]))
        gsrc = submit(d, "alice", small("g", files))
        gdep = submit(d, "alice", small("gdep", files, init_from=gsrc))
        check(d.stop() == 0, "stop:\n" + d.log())
        db_exec(d, "UPDATE jobs SET state = 'failed', error = 'disk full' WHERE id = ?", (gsrc,))
        d.start("--workers", "0", *args)
        j = d.job(gdep)
        check(j["state"] == "failed" and j["error"] == "init_from job %d failed: disk full" % gsrc,
              "dependant of a job that failed before start-up: %s %s" % (j["state"], j["error"]))
        print("  a cancelled source and one that failed before start-up fail their dependants with the reason")
        check(d.stop() == 0, "stop:\n" + d.log())

        # ---- now run: the source before its priority-5 dependant ----
        d.start("--workers", "1", *args)
        for jid in (admin_job, src, dep, fsrc, d1, d2):
            d.wait_state(jid, ("succeeded", "failed", "cancelled"), timeout=300)
        js, jd, jf = d.job(src), d.job(dep), d.job(fsrc)
        check(js["state"] == "succeeded", "source: %s %s" % (js["state"], js["error"]))
        check(jd["state"] == "succeeded", "transfer job: %s %s" % (jd["state"], jd["error"]))
        check(jd["started_at"] >= js["finished_at"], "transfer started %s before its source finished %s"
              % (jd["started_at"], js["finished_at"]))
        check(jf["state"] == "failed" and jf["error"], "bad source: %s" % jf)
        want1 = "init_from job %d failed: %s" % (fsrc, jf["error"])
        j1, j2 = d.job(d1), d.job(d2)
        check(j1["state"] == "failed" and j1["error"] == want1 and j1["attempts"] == 0, "d1: %s %s" % (j1["state"], j1["error"]))
        check(j2["state"] == "failed" and j2["error"] == "init_from job %d failed: %s" % (d1, want1), "d2: %s" % j2["error"])
        print("  the priority-5 transfer job ran after its source and succeeded; a failed source failed its chain")

        # ---- a succeeded source: anyone who may read it, a transfer job (which has only its
        # exported encoder), and a checkpoint file, checked too ----
        submit(d, "bob", small("bobs", files, init_from=src))
        hop = submit(d, "alice", small("second-hop", files, init_from=dep))
        j = d.wait_state(hop, ("succeeded", "failed", "cancelled"), timeout=300)
        check(j["state"] == "succeeded", "a job from a transfer job's encoder: %s %s" % (j["state"], j["error"]))
        ckpt = os.path.join(root, "source.safetensors")
        shutil.copy(os.path.join(d.state_dir, "jobs", str(src), "checkpoint.safetensors"), ckpt)
        err = submit(d, "alice", idx_job("wider", files, hidden=(64,), extra={"init_from": ckpt}), 400)
        check_error(err, "invalid_field", "model.hidden", "[64] differs from the checkpoint's [32]")
        err = submit(d, "alice", idx_job("cnn", files, extra={"init_from": ckpt, "model": {"encoder": "cnn"}}), 400)
        check_error(err, "invalid_field", "model.encoder", "\"cnn\" differs from the checkpoint's \"mlp\"")
        submit(d, "alice", small("from-file", files, init_from=ckpt))
        print("  bob may start from alice's succeeded job, a job from a transfer job; a file with another encoder -> 400")
        check(d.stop() == 0, "stop:\n" + d.log())
    finally:
        d.cleanup()


def test_attempts_cap(exe):
    d = Daemon(exe)
    try:
        root = os.path.join(d.state_dir, "data")
        os.mkdir(root)
        files = small_dataset(root)
        args = ("--workers", "1", "--data-root", root)   # --max-attempts: the default, 3
        d.start(*args)
        spec = idx_job("poison", files, pretrain={"epochs": 1000, "batch_size": 64, "time_budget_s": 600})
        s, sub = d.post("/v1/jobs", spec)
        check(s == 201, "submit -> %d %s" % (s, sub))
        jid = sub["id"]

        def running():
            return d.job(jid)["state"] == "running"

        def row():
            return db_exec(d, "SELECT state, attempts, interruptions, error FROM jobs WHERE id = ?", (jid,))[0]

        # A clean stop first: it checkpoints and requeues, and does not count.
        wait_for(lambda: running() and d.job(jid)["progress"]["stage"] == "pretrain", "the job to train", 120, d)
        check(d.stop(signal.SIGTERM) == 0, "SIGTERM:\n" + d.log())
        check(row()[:3] == ("queued", 1, 0), "after a clean stop: %s" % (row(),))
        # Then three crashes while it runs.
        for i in range(1, 4):
            d.start(*args)
            wait_for(running, "the job to run again (interruptions so far: %d)" % (i - 1), 120, d)
            check(d.kill() == -signal.SIGKILL, "kill")
            check(row()[:3] == ("running", i + 1, i - 1), "after kill %d: %s" % (i, row()))
        d.start(*args)
        j = d.job(jid)
        check(j["state"] == "failed", "after 3 interruptions the job is %s (requeued again?)" % j["state"])
        check(j["error"] == "interrupted 3 times (the daemon stopped or crashed while it ran); giving up",
              "error: %r" % j["error"])
        check(j["attempts"] == 4 and j["interruptions"] == 3, "attempts %s, interruptions %s" % (j["attempts"], j["interruptions"]))
        s, ev = d.get("/v1/jobs/%d/events?limit=1000" % jid)
        check(any("interrupted 3 times" in e["message"] for e in ev["events"]), "no event says why it failed")
        check(d.stop() == 0, "stop:\n" + d.log())
        print("  a clean stop and 3 kills: the job failed on the next start with the reason (attempts 4)")
    finally:
        d.cleanup()


def main(exe):
    skip_unless_dataset()
    test_priority_and_init_from(exe)
    test_attempts_cap(exe)


if __name__ == "__main__":
    run(main)
