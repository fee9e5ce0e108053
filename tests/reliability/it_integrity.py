"""it_integrity.py SSLD - state that is not a run's own is never adopted, and lost state is never
acknowledged (docs/bad-inputs.md, "State on disk"):

- reused job ids: jobs 1 and 2 succeed, the database is deleted while the daemon is down, and the
  new jobs 1 (the same spec), 2 (another architecture) and 3 (whose directory holds a checkpoint
  without a job key, as an older ssld left them) train from step 1: their loss curves are whole,
  nothing is "resumed", and the old directories are moved aside with their checkpoints
  byte-for-byte intact (before: job 1 resumed the old job's checkpoint; job 2 failed with a shape
  mismatch);
- `ssld run` into the same --out: a checkpoint of a changed spec (batch size, method) is refused
  with exit 2 naming what changed and the two ways on (--restart, --resume), the checkpoint
  untouched; --resume resumes it; --restart moves the old output aside and starts over; a
  finished run run again says it is complete and points to results.json, rewriting nothing, and
  with --resume reports its real final loss (before: "resumed from checkpoint", the evaluations
  again and a loss of 0);
- the database deleted (with its WAL), only its WAL deleted, or the database replaced by a copy,
  under a running daemon: /v1/health answers 503 naming the file and what happened, and every
  submit gets 503 (before: 201 and "ok", and the jobs were gone after a restart);
- ssld.lock deleted under a running daemon: a second daemon on the state directory still refuses
  to start, and once the first has written the file again the refusal names its pid;
- a read-only state directory (a read-only tmpfs in a user namespace): the refusal says read-only,
  not "in use by another ssld".
"""
import glob
import json
import os
import signal
import subprocess
import sys
import tempfile
import shutil

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "service"))
sys.path.insert(0, HERE)
from ssld_harness import Daemon, Failure, check, run, skip_unless_dataset, wait_for  # noqa: E402
from rel_common import CKPT, idx_job, sha, small_dataset  # noqa: E402

def events(d, jid):
    s, ev = d.get("/v1/jobs/%d/events?limit=1000" % jid)
    check(s == 200, "events of job %d -> %d" % (jid, s))
    return [e["message"] for e in ev["events"]]


def loss_steps(d, jid):
    s, m = d.get("/v1/jobs/%d/metrics?keys=loss&max_points=100000" % jid)
    check(s == 200, "metrics of job %d -> %d" % (jid, s))
    series = m["series"].get("loss")
    return [p[0] for p in series["points"]] if series else []


def new_daemon(exe):
    d = Daemon(exe)
    data = os.path.join(d.state_dir, "data")
    os.mkdir(data)
    d.files = small_dataset(data)
    d.args_ = ("--workers", "1", "--data-root", data)
    return d


# ---- 1. a reused job id -----------------------------------------------------------------------

def reused_ids(exe):
    d = new_daemon(exe)
    try:
        d.start(*d.args_)
        old = [idx_job("old-a", d.files, hidden=(64,), pretrain={"epochs": 1, "batch_size": 64},
                       extra={"evaluations": []}),
               idx_job("old-b", d.files, hidden=(64,), pretrain={"epochs": 1, "batch_size": 64},
                       extra={"evaluations": []})]
        for i, spec in enumerate(old, 1):
            s, sub = d.post("/v1/jobs", spec)
            check(s == 201 and sub["id"] == i, "old job %d -> %d %s" % (i, s, sub))
            j = d.wait_state(i, ("succeeded", "failed"))
            check(j["state"] == "succeeded", "old job %d: %s %s" % (i, j["state"], j["error"]))
        old_sha = {i: sha(os.path.join(d.state_dir, "jobs", str(i), CKPT)) for i in (1, 2)}
        check(d.stop() == 0, "stop after the old jobs")
        for suffix in ("", "-wal", "-shm"):   # the database is lost; the job directories stay
            p = os.path.join(d.state_dir, "ssld.db" + suffix)
            if os.path.exists(p):
                os.unlink(p)
        # A directory an older ssld left: a checkpoint and no job key.
        legacy = os.path.join(d.state_dir, "jobs", "3")
        os.mkdir(legacy)
        shutil.copyfile(os.path.join(d.state_dir, "jobs", "1", CKPT), os.path.join(legacy, CKPT))
        old_sha[3] = sha(os.path.join(legacy, CKPT))
        d.start(*d.args_)
        new = [idx_job("new-a", d.files, hidden=(64,), pretrain={"epochs": 2, "batch_size": 64},
                       extra={"evaluations": []}),
               idx_job("new-b", d.files, hidden=(128, 32), pretrain={"epochs": 2, "batch_size": 64},
                       extra={"evaluations": []}),
               idx_job("new-c", d.files, hidden=(64,), pretrain={"epochs": 2, "batch_size": 64},
                       extra={"evaluations": []})]
        for i, spec in enumerate(new, 1):
            s, sub = d.post("/v1/jobs", spec)
            check(s == 201 and sub["id"] == i, "new job %d got id %s (%d)" % (i, sub.get("id"), s))
        for i in (1, 2, 3):
            j = d.wait_state(i, ("succeeded", "failed"))
            check(j["state"] == "succeeded", "new job %d adopted old state: %s %s" % (i, j["state"], j["error"]))
            total = j["results"]["pretext"]["steps"]
            steps = loss_steps(d, i)
            check(total > 0 and steps == list(range(1, total + 1)),
                  "new job %d trained %d of %d steps (it resumed the old job's checkpoint)" % (i, len(steps), total))
            ev = events(d, i)
            check(not any("resumed from checkpoint" in m for m in ev), "new job %d resumed: %s" % (i, ev))
            moved = [m for m in ev if "moved it aside" in m and "did not create" in m]
            check(moved, "new job %d: no event says the old directory was moved aside: %s" % (i, ev))
            aside = glob.glob(os.path.join(d.state_dir, "jobs", "%d.orphan-*" % i))
            check(len(aside) == 1 and aside[0] in moved[0], "job %d: moved-aside dirs %s, event %r" % (i, aside, moved[0]))
            check(sha(os.path.join(aside[0], CKPT)) == old_sha[i], "job %d: the old checkpoint changed" % i)
        check(d.stop() == 0, "final stop")
        print("  reused ids: new jobs 1, 2 and 3 trained from step 1; the old (and the unkeyed) directories were moved aside intact")
    finally:
        d.cleanup()


# ---- 2. `ssld run` with a changed spec ---------------------------------------------------------

def write_spec(dirname, name, spec):
    path = os.path.join(dirname, name)
    with open(path, "w") as f:
        json.dump(spec, f)
    return path


def ssld_run(exe, *args):
    return subprocess.run([exe, "run"] + list(args), capture_output=True, text=True, timeout=600,
                          stdin=subprocess.DEVNULL)


def interrupted_run(exe, spec_path, out):
    """Starts `ssld run`, waits for its first checkpoint, stops it with SIGINT (exit 130)."""
    p = subprocess.Popen([exe, "run", spec_path, "--out", out], stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    try:
        wait_for(lambda: os.path.exists(os.path.join(out, CKPT)) or p.poll() is not None, "a first checkpoint", 120)
        p.send_signal(signal.SIGINT)
        err = p.communicate(timeout=120)[1]
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    check(p.returncode == 130, "interrupted run: exit %s\n%s" % (p.returncode, err))


def run_expect_refusal(exe, spec_path, out):
    """`ssld run` that must refuse before training: (exit code, stderr). A run that starts training
    instead (it loads the dataset) is stopped at once and reported, not waited for."""
    p = subprocess.Popen([exe, "run", spec_path, "--out", out], stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    lines = []
    try:
        for line in p.stderr:
            lines.append(line)
            if "dataset loaded" in line or "resumed from checkpoint" in line:
                p.kill()
                p.wait()
                raise Failure("%s: ssld run started training instead of refusing:\n%s" % (spec_path, "".join(lines)))
        p.wait(timeout=120)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    return p.returncode, "".join(lines)


def resume_until_noticed(exe, spec_path, out):
    """`ssld run --resume`: returns its first lines up to "resumed from checkpoint", then SIGINT."""
    p = subprocess.Popen([exe, "run", spec_path, "--out", out, "--resume"], stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    lines = []
    try:
        for line in p.stderr:
            lines.append(line)
            if "resumed from checkpoint at step" in line or len(lines) > 200:
                break
        p.send_signal(signal.SIGINT)
        p.communicate(timeout=120)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    return "".join(lines)


def run_changed_spec(exe):
    tmp = tempfile.mkdtemp(prefix="ssld-it-run-")
    try:
        files = small_dataset(tmp)
        base = idx_job("run", files, hidden=(512, 512), pretrain={"epochs": 1000, "batch_size": 64},
                       extra={"evaluations": []})
        a = write_spec(tmp, "a.json", base)
        b = write_spec(tmp, "b.json", dict(base, pretrain={"epochs": 1000, "batch_size": 32}))
        c = write_spec(tmp, "c.json", dict(base, method="byol"))
        out = os.path.join(tmp, "out")
        interrupted_run(exe, a, out)
        ck = os.path.join(out, CKPT)
        before = sha(ck)
        for spec, changed in ((b, "pretrain.batch_size"), (c, "method")):
            rc, err = run_expect_refusal(exe, spec, out)
            check(rc == 2, "changed %s: exit %d (expected a refusal)\n%s" % (changed, rc, err))
            check(changed in err and "--restart" in err and "--resume" in err,
                  "changed %s: the refusal does not name the change and the ways on:\n%s" % (changed, err))
            check(sha(ck) == before, "changed %s: the checkpoint was touched by a refused run" % changed)
        said = resume_until_noticed(exe, b, out)
        check("resumed from checkpoint at step" in said, "--resume did not resume:\n%s" % said)
        print("  ssld run: changed batch size and method refused by name, checkpoint untouched; --resume resumes")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run_restart_and_finished(exe):
    tmp = tempfile.mkdtemp(prefix="ssld-it-run-")
    try:
        files = small_dataset(tmp)
        base = idx_job("run", files, hidden=(64,), pretrain={"epochs": 1, "batch_size": 64},
                       extra={"evaluations": []})
        out = os.path.join(tmp, "out")
        first = write_spec(tmp, "a.json", dict(base, pretrain={"epochs": 2, "batch_size": 64}))
        r = ssld_run(exe, first, "--out", out)
        check(r.returncode == 0, "first run: exit %d\n%s" % (r.returncode, r.stderr))

        # --restart: the old output moves aside whole, the run starts over and finishes.
        short = write_spec(tmp, "d.json", base)
        r = ssld_run(exe, short, "--out", out, "--restart")
        check(r.returncode == 0 and "resumed from checkpoint" not in r.stderr, "--restart: exit %d\n%s" % (r.returncode, r.stderr))
        aside = glob.glob(out + ".old-*")
        check(len(aside) == 1 and os.path.exists(os.path.join(aside[0], CKPT)) and aside[0] in r.stderr,
              "--restart: old output not moved aside (%s)\n%s" % (aside, r.stderr))
        with open(os.path.join(out, "results.json")) as f:
            res = json.load(f)
        steps, loss = res["pretext"]["steps"], res["pretext"]["final_loss"]
        check(steps == 64 and loss > 0, "--restart run: %d steps, loss %s" % (steps, loss))

        # The finished run again: complete, not re-evaluated, results unchanged.
        mtime = os.stat(os.path.join(out, "results.json")).st_mtime_ns
        r = ssld_run(exe, short, "--out", out)
        check(r.returncode == 0 and "is complete" in r.stderr and "results.json" in r.stderr
              and "resumed from checkpoint" not in r.stderr,
              "finished run again: exit %d\n%s" % (r.returncode, r.stderr))
        check(os.stat(os.path.join(out, "results.json")).st_mtime_ns == mtime, "results.json was rewritten")
        check(("final_loss=%.4g" % loss) in r.stdout, "the finished run's results are not shown:\n%s" % r.stdout)
        # Insisting (--resume) runs nothing more and reports the checkpoint's last loss, not 0.
        r = ssld_run(exe, short, "--out", out, "--resume")
        with open(os.path.join(out, "results.json")) as f:
            again = json.load(f)["pretext"]
        check(r.returncode == 0 and again["steps"] == steps and again["final_loss"] == loss,
              "--resume of a finished run: exit %d, %s (first: %d steps, loss %s)" % (r.returncode, again, steps, loss))
        print("  ssld run: --restart moved the old output aside and started over; a finished run is reported, not rerun")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ---- 3. the database deleted under a running daemon ---------------------------------------------

def db_deleted(exe):
    # (files deleted, or one replaced by a copy of itself: same bytes, another inode), the word
    for what, word in ((("ssld.db", "ssld.db-wal"), "deleted"), (("ssld.db-wal",), "deleted"),
                       (("replace", "ssld.db"), "replaced")):
        d = new_daemon(exe)
        try:
            d.start("--workers", "0", "--data-root", os.path.dirname(d.files["train_images"]))
            spec = idx_job("db", d.files, hidden=(64,))
            s, sub = d.post("/v1/jobs", spec)
            check(s == 201, "submit before -> %d %s" % (s, sub))
            s, h = d.get("/v1/health")
            check(s == 200 and h["database"] == "ok", "health before -> %d %s" % (s, h))
            if what[0] == "replace":
                path = os.path.join(d.state_dir, what[1])
                shutil.copyfile(path, path + ".copy")
                os.replace(path + ".copy", path)
            else:
                for name in what:
                    os.unlink(os.path.join(d.state_dir, name))
            s, h = d.get("/v1/health")
            check(s == 503 and h["status"] != "ok" and "ssld.db" in h["database"]
                  and word in h["database"], "health after %s -> %d %s" % (what, s, h))
            for i in range(4):
                s, body = d.post("/v1/jobs", dict(spec, name="after-%d" % i))
                check(s == 503 and body["error"]["code"] == "storage_error" and word in body["error"]["message"],
                      "submit after %s -> %d %s" % (what, s, body))
            check("while ssld was running" in d.log(), "the loss of the database was not logged")
            d.stop()
            print("  %s: health 503 (%s...), submits 503" % (" ".join(what), h["database"][:60]))
        finally:
            d.cleanup()


# ---- 4. ssld.lock deleted under a running daemon ------------------------------------------------

def second_daemon(exe, state_dir):
    try:
        p = subprocess.run([exe, "serve", "--listen", "127.0.0.1:0", "--state-dir", state_dir, "--workers", "0"],
                           capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise Failure("a second ssld started on %s and ran" % state_dir)
    return p.returncode, p.stderr


def lock_deleted(exe):
    d = Daemon(exe)
    try:
        d.start("--workers", "0")
        lock = os.path.join(d.state_dir, "ssld.lock")
        os.unlink(lock)
        rc, err = second_daemon(exe, d.state_dir)
        check(rc != 0 and "in use by another ssld" in err, "second daemon after rm ssld.lock: exit %d %s" % (rc, err))
        check(d.proc.poll() is None, "the first daemon died")
        s, h = d.get("/v1/health")
        check(s == 200, "first daemon health -> %d" % s)
        # The first daemon notices (its status timer) and writes the file again with its pid.
        wait_for(lambda: os.path.exists(lock) and open(lock).read().strip() == str(d.proc.pid), "ssld.lock written again", 60)
        rc, err = second_daemon(exe, d.state_dir)
        check(rc != 0 and ("pid %d" % d.proc.pid) in err, "the refusal does not name pid %d: %s" % (d.proc.pid, err))
        check("was deleted" in d.log(), "the first daemon did not log the deleted lock file")
        check(d.stop() == 0, "stop")
        print("  rm ssld.lock: a second daemon is refused (%s)" % err.strip()[-80:])
    finally:
        d.cleanup()


# ---- 5. a read-only state directory -------------------------------------------------------------

def read_only(exe):
    probe = subprocess.run(["unshare", "-r", "-m", "true"], capture_output=True)
    if probe.returncode != 0:
        print("  read-only state dir: skipped (no user namespaces here: %s)" % probe.stderr.decode().strip())
        return
    tmp = tempfile.mkdtemp(prefix="ssld-it-ro-")
    try:
        script = 'mount -t tmpfs -o ro tmpfs "$1" && exec "$2" serve --listen 127.0.0.1:0 --state-dir "$1" --workers 0'
        p = subprocess.run(["unshare", "-r", "-m", "sh", "-c", script, "sh", tmp, exe], capture_output=True,
                           text=True, timeout=60, stdin=subprocess.DEVNULL)
        check(p.returncode != 0 and "read-only" in p.stderr and "in use by another" not in p.stderr,
              "read-only state dir: exit %d %s" % (p.returncode, p.stderr))
        print("  read-only state dir: %s" % p.stderr.strip()[-100:])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main(exe):
    skip_unless_dataset()
    lock_deleted(exe)
    read_only(exe)
    db_deleted(exe)
    reused_ids(exe)
    run_changed_spec(exe)
    run_restart_and_finished(exe)


if __name__ == "__main__":
    run(main)
