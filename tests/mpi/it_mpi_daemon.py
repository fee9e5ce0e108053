"""it_mpi_daemon.py MODE SSLD - "distributed" jobs through a real ssld that starts them under mpirun.

MODE run:
- the 400s at submit: processes that do not divide the global batch (field distributed.processes),
  a host entry with shell text (distributed.hosts[0]), processes 0; an ssld built without MPI
  answers every "distributed" spec with the "built without MPI" 400 and the rest is skipped;
- a job over 2 processes runs to success through the daemon, its loss points streamed into the
  store while it runs, its results stored, the launch named in its events;
- a cancelled distributed job ends `cancelled` and leaves no process of its tree behind.
MODE faults:
- killing one rank mid-run fails the job with mpirun's message naming the rank that died;
- a daemon stop requeues a running distributed job; the next start resumes it from its
  checkpoint (attempt 2, the step counter continues) and it succeeds, each loss step stored once.
MODE crash:
- a daemon killed with SIGKILL under a running distributed job: the next start relaunches it, no
  process of the old tree survives, and every loss step is stored once.

Every rank is `ssld run` on this machine (mpirun --oversubscribe, OpenMPI's allow-run-as-root
settings come from ssld itself when it runs as root).
"""
import os
import signal
import sqlite3
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "service"))
from ssld_harness import Daemon, Failure, check, run, short_job, skip_unless_dataset, wait_for  # noqa: E402

MPIRUN = "/usr/bin/mpirun"


def dist_job(name, processes=2, epochs=2, limit_train=1024, hidden=(64,)):
    return short_job(name, epochs=epochs, limit_train=limit_train, hidden=hidden,
                     extra={"distributed": {"processes": processes}})


def start(d):
    return d.start("--workers", "1", "--mpirun", MPIRUN, "--mpirun-args", "--oversubscribe")


def job_pids(job_dir):
    """Processes whose command line names the job's directory (mpirun and its ranks)."""
    pids = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % p, "rb") as f:
                cmd = f.read().split(b"\0")
        except OSError:
            continue
        if job_dir.encode() in cmd:
            pids.append(int(p))
    return pids


def rank_pid(job_dir, rank):
    for pid in job_pids(job_dir):
        try:
            with open("/proc/%d/environ" % pid, "rb") as f:
                env = f.read().split(b"\0")
        except OSError:
            continue
        if ("OMPI_COMM_WORLD_RANK=%d" % rank).encode() in env:
            return pid
    return None


def wait_training(d, jid, min_ckpt=1):
    def ready():
        j = d.job(jid)
        if j["state"] not in ("queued", "running"):
            raise Failure("job ended before the test could act on it: %s" % j)
        return j if j["state"] == "running" and (j["checkpoint_step"] or 0) >= min_ckpt else None
    return wait_for(ready, "job %d to train past a checkpoint" % jid, 90)


def expect_400(d, spec, field, words):
    s, e = d.post("/v1/jobs", spec)
    check(s == 400, "%s: expected 400, got %d %s" % (field, s, e))
    check(e["error"]["field"] == field, "expected field %s: %s" % (field, e))
    check(words in e["error"]["message"], "message lacks %r: %s" % (words, e))


def mode_run(exe):
    d = Daemon(exe)
    try:
        start(d)
        s, e = d.post("/v1/jobs", dist_job("probe"))
        if s == 400 and e["error"]["field"] == "distributed":
            check("built without MPI" in e["error"]["message"] and "-Dmpi=enabled" in e["error"]["message"],
                  "no-MPI answer: %s" % e)
            print("SKIP: this ssld was built without MPI (the 400 it answers was checked)")
            sys.exit(77)
        check(s == 201, "submit probe -> %d %s" % (s, e))
        d.post("/v1/jobs/%d/cancel" % e["id"])
        d.wait_state(e["id"], ("cancelled", "succeeded", "failed"), 60)

        expect_400(d, dist_job("odd", processes=3), "distributed.processes", "must divide pretrain.batch_size")
        bad = dist_job("shell")
        bad["distributed"]["hosts"] = ["node1; touch /tmp/pwned"]
        expect_400(d, bad, "distributed.hosts[0]", "letters, digits")
        expect_400(d, dist_job("zero", processes=0), "distributed.processes", ">= 1")

        # 2 ranks to success, metrics streamed while it runs.
        s, sub = d.post("/v1/jobs", dist_job("two-ranks", epochs=6, limit_train=2048, hidden=(256,)))
        check(s == 201, "submit -> %d %s" % (s, sub))
        jid = sub["id"]
        def streaming():
            s, m = d.get("/v1/jobs/%d/metrics?keys=loss" % jid)
            if m["state"] not in ("queued", "running"):
                raise Failure("job ended before a loss point was seen while it ran: %s" % d.job(jid))
            return m["state"] == "running" and m["series"].get("loss", {}).get("count", 0) > 0
        wait_for(streaming, "loss points while it runs", 60)
        j = d.wait_state(jid, ("succeeded", "failed", "cancelled"), 120)
        check(j["state"] == "succeeded", "distributed job ended %s: %s" % (j["state"], j["error"]))
        s, m = d.get("/v1/jobs/%d/metrics?keys=loss&max_points=100000" % jid)
        steps = [p[0] for p in m["series"]["loss"]["points"]]
        total = 6 * (2048 // 64)
        check(steps == list(range(1, total + 1)), "loss steps %s.. (%d) for %d steps" % (steps[:5], len(steps), total))
        check(j["results"] and "pretext" in j["results"], "no results stored: %s" % j["results"])
        s, ev = d.get("/v1/jobs/%d/events" % jid)
        check(any("running on 2 MPI processes" in e["message"] for e in ev["events"]), "no launch event: %s" % ev)
        job_dir = os.path.join(d.state_dir, "jobs", str(jid))
        check(not job_pids(job_dir), "processes left after success: %s" % job_pids(job_dir))

        # Cancel: the job is cancelled and nothing of its tree is left.
        s, sub = d.post("/v1/jobs", dist_job("cancel-me", epochs=500, limit_train=4096, hidden=(512, 512)))
        jid = sub["id"]
        job_dir = os.path.join(d.state_dir, "jobs", str(jid))
        wait_training(d, jid, 0)
        wait_for(lambda: rank_pid(job_dir, 0) and rank_pid(job_dir, 1), "both ranks", 30)
        s, r = d.post("/v1/jobs/%d/cancel" % jid)
        check(s == 202, "cancel -> %d %s" % (s, r))
        j = d.wait_state(jid, ("cancelled", "failed", "succeeded"), 30)
        check(j["state"] == "cancelled", "cancelled job ended %s: %s" % (j["state"], j["error"]))
        check(not job_pids(job_dir), "processes left after the cancel: %s" % job_pids(job_dir))
        check(d.stop() == 0, "ssld did not stop cleanly:\n" + d.log())
        print("  2 ranks: %d loss points, streamed while running; cancel left no process" % len(steps))
    finally:
        d.cleanup()


def mode_faults(exe):
    d = Daemon(exe)
    try:
        start(d)
        # One rank killed mid-run: the job fails, saying which rank died.
        s, sub = d.post("/v1/jobs", dist_job("rank-dies", epochs=500, limit_train=4096, hidden=(512, 512)))
        if s == 400 and e_field(sub) == "distributed":
            print("SKIP: this ssld was built without MPI")
            sys.exit(77)
        check(s == 201, "submit -> %d %s" % (s, sub))
        jid = sub["id"]
        job_dir = os.path.join(d.state_dir, "jobs", str(jid))
        wait_training(d, jid, 1)
        victim = wait_for(lambda: rank_pid(job_dir, 1), "rank 1", 30)
        os.kill(victim, signal.SIGKILL)
        j = d.wait_state(jid, ("failed", "succeeded", "cancelled"), 60)
        check(j["state"] == "failed", "job with a dead rank ended %s" % j["state"])
        check("rank 1" in j["error"] and "signal 9" in j["error"], "unclear failure: %r" % j["error"])
        check(not job_pids(job_dir), "processes left after the rank died: %s" % job_pids(job_dir))

        # A stop requeues a running distributed job; the next start resumes it from its checkpoint.
        epochs, per_epoch = 3, 2048 // 64
        s, sub = d.post("/v1/jobs", dist_job("resume", epochs=epochs, limit_train=2048,
                                             hidden=(512, 512)))
        jid = sub["id"]
        job_dir = os.path.join(d.state_dir, "jobs", str(jid))
        j = wait_training(d, jid, 5)
        check(j["progress"]["step"] < epochs * per_epoch * 0.8, "too far along to test a resume: %s" % j["progress"])
        check(d.stop(signal.SIGTERM) == 0, "SIGTERM: ssld did not exit 0:\n" + d.log())
        check(not job_pids(job_dir), "processes left after the stop: %s" % job_pids(job_dir))
        db = sqlite3.connect(os.path.join(d.state_dir, "ssld.db"))
        state, ckpt = db.execute("SELECT state, checkpoint_step FROM jobs WHERE id = ?", (jid,)).fetchone()
        db.close()
        check(state == "queued" and ckpt and ckpt > 0, "after the stop: state %s checkpoint %s" % (state, ckpt))
        start(d)
        j = d.wait_state(jid, ("succeeded", "failed", "cancelled"), 120)
        check(j["state"] == "succeeded" and j["attempts"] == 2, "resumed job: %s %s attempts %s" %
              (j["state"], j["error"], j["attempts"]))
        s, ev = d.get("/v1/jobs/%d/events" % jid)
        check(any("resuming (attempt 2) from checkpoint step %d" % ckpt in e["message"] for e in ev["events"]),
              "no resume event at step %d: %s" % (ckpt, [e["message"] for e in ev["events"]][-12:]))
        db = sqlite3.connect(os.path.join(d.state_dir, "ssld.db"))
        n, dup = db.execute("SELECT count(*), count(*) - count(DISTINCT step) FROM metrics "
                            "WHERE job_id = ? AND key = 'loss'", (jid,)).fetchone()
        db.close()
        check(n == epochs * per_epoch and dup == 0, "loss curve: %d points, %d repeated, %d steps" %
              (n, dup, epochs * per_epoch))
        check(d.stop() == 0, "ssld did not stop cleanly:\n" + d.log())
        print("  dead rank -> failed; stop at checkpoint %d -> resumed, %d loss steps once each" % (ckpt, n))
    finally:
        d.cleanup()


def mode_crash(exe):
    d = Daemon(exe)
    try:
        start(d)
        epochs, per_epoch = 3, 2048 // 64
        s, sub = d.post("/v1/jobs", dist_job("crash", epochs=epochs, limit_train=2048, hidden=(512, 512)))
        if s == 400 and e_field(sub) == "distributed":
            print("SKIP: this ssld was built without MPI")
            sys.exit(77)
        jid = sub["id"]
        job_dir = os.path.join(d.state_dir, "jobs", str(jid))
        wait_training(d, jid, 5)
        old = set(job_pids(job_dir))
        d.kill()   # SIGKILL: no chance to end the tree it started
        start(d)   # the job was left running: requeued, relaunched; what the old tree left is ended
        j = d.wait_state(jid, ("succeeded", "failed", "cancelled"), 120)
        check(j["state"] == "succeeded", "job after the crash: %s %s" % (j["state"], j["error"]))
        left = [p for p in old if os.path.exists("/proc/%d" % p)]
        check(not left and not job_pids(job_dir), "processes of the old tree left: %s" % left)
        db = sqlite3.connect(os.path.join(d.state_dir, "ssld.db"))
        n, dup = db.execute("SELECT count(*), count(*) - count(DISTINCT step) FROM metrics "
                            "WHERE job_id = ? AND key = 'loss'", (jid,)).fetchone()
        db.close()
        check(n == epochs * per_epoch and dup == 0, "loss curve after the crash: %d points, %d repeated" % (n, dup))
        check(d.stop() == 0, "ssld did not stop cleanly:\n" + d.log())
        print("  daemon killed under a 2-rank job: relaunched, old tree gone, %d loss steps once each" % n)
    finally:
        d.cleanup()


def e_field(body):
    return (body or {}).get("error", {}).get("field")


def main(mode, exe):
    skip_unless_dataset()
    if not os.access(MPIRUN, os.X_OK):
        print("SKIP: %s is not installed (Debian openmpi-bin)" % MPIRUN)
        sys.exit(77)
    # Every step of the ranks takes 50 ms longer (engine/fault.h; mpirun and the ranks inherit the
    # daemon's environment): a job is still mid-run when the test watches, stops or kills it,
    # however fast the machine is.
    os.environ["SSLD_FAULT"] = "train_step@1+"
    {"run": mode_run, "faults": mode_faults, "crash": mode_crash}[mode](exe)


if __name__ == "__main__":
    MODE = sys.argv.pop(1)   # it_mpi_daemon.py MODE SSLD: run() reads SSLD as argv[1]
    run(lambda exe: main(MODE, exe))
