"""it_crash.py SSLD [SEED] - kill -9 a real ssld at 20 seeded random moments of one training job,
restart it each time, and check after every kill that nothing it reported as done was lost.

The kill moments cycle through four kinds, chosen by a seeded RNG so a failure can be replayed:
  load   - shortly after the restart, while the job loads its dataset and checkpoint;
  step   - a random delay into training (most of a step loop is sgemm);
  write  - while checkpoint.safetensors.tmp.* exists (the checkpoint is being written/fsynced);
  commit - just after that temporary file is renamed, while the worker flushes the metric batch
           and records the checkpoint in SQLite (the window between the file and the database).
A reader thread keeps GET requests in flight during every kill. After each kill, on the dead
daemon's files:
  - PRAGMA integrity_check is "ok";
  - the recorded checkpoint_step never goes back;
  - the stored `loss` steps, in row order, are strictly increasing, without duplicates, and are
    1..max with holes only where a previous run died before flushing its last batch;
and after each restart the job resumes from the checkpoint file that was complete at the kill
("resumed from checkpoint at step N" with N = that file's ssld.step, never less than the database
record), and its step counter never drops below it. At the end the job succeeds with results,
its loss curve holds every step exactly once (minus those unflushed holes), and no temporary
checkpoint files are left behind. The job trains under a time budget, so the test's length does
not depend on the machine's speed (about a minute).
"""
import json
import os
import random
import sqlite3
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "service"))
from ssld_harness import Daemon, Failure, check, run, skip_unless_dataset, wait_for  # noqa: E402
from rel_common import idx_job, small_dataset  # noqa: E402

KILLS = 20
KINDS = ["step", "write", "commit", "step", "load"]
BUDGET = 24          # training seconds of the job (wall time, carried across restarts)
RESERVE = 8          # kills that would leave less than this much budget do not let it progress
POLL = 0.002         # seconds between polls: a checkpoint's temporary file lives for milliseconds


def ckpt_file_state(path):
    """(ssld.step, ssld.elapsed_s) of the complete checkpoint file, or (None, 0) if there is none."""
    try:
        with open(path, "rb") as f:
            n = int.from_bytes(f.read(8), "little")
            meta = json.loads(f.read(n))["__metadata__"]
        return int(meta["ssld.step"]), float(meta["ssld.elapsed_s"])
    except FileNotFoundError:
        return None, 0.0


def db_state(state_dir, jid):
    db = sqlite3.connect(os.path.join(state_dir, "ssld.db"))
    try:
        ok = db.execute("PRAGMA integrity_check").fetchall()
        row = db.execute("SELECT state, checkpoint_step, attempts FROM jobs WHERE id = ?", (jid,)).fetchone()
        steps = [r[0] for r in db.execute("SELECT step FROM metrics WHERE job_id = ? AND key = 'loss' ORDER BY id", (jid,))]
        msgs = [r[0] for r in db.execute("SELECT message FROM events WHERE job_id = ?", (jid,))]
        seen = (sum(m.startswith("pretraining simclr") for m in msgs), sum(m.startswith("resumed from checkpoint") for m in msgs))
        return ok, row, steps, seen
    finally:
        db.close()


def temp_files(job_dir):
    try:
        return [n for n in os.listdir(job_dir) if ".tmp" in n]
    except FileNotFoundError:
        return []


class Reader(threading.Thread):
    """GET requests in flight all the time; connection errors while the daemon is dead are fine,
    a 5xx never is."""

    def __init__(self, d, jid):
        super().__init__(daemon=True)
        self.d, self.jid = d, jid
        self.stop = False
        self.ok = self.errors = 0
        self.bad = []

    def run(self):
        paths = ["/v1/jobs/%d" % self.jid, "/v1/jobs/%d/metrics?keys=loss&after=0" % self.jid,
                 "/v1/jobs?limit=10", "/v1/jobs/%d/events?limit=50" % self.jid, "/v1/health"]
        i = 0
        while not self.stop:
            if self.d.port is None:
                time.sleep(0.01)
                continue
            try:
                s, _, body = self.d.raw("GET", paths[i % len(paths)], timeout=5)
                if s >= 500:
                    self.bad.append((paths[i % len(paths)], s, body[:200]))
                self.ok += 1
            except OSError:
                self.errors += 1
                time.sleep(0.01)
            i += 1


def events(d, jid):
    s, ev = d.get("/v1/jobs/%d/events?limit=1000" % jid)
    check(s == 200, "events -> %d" % s)
    return [e["message"] for e in ev["events"]]


def main(exe, seed):
    skip_unless_dataset()
    rng = random.Random(seed)
    t_begin = time.time()
    d = Daemon(exe)
    reader = None
    try:
        data = os.path.join(d.state_dir, "data")
        os.mkdir(data)
        files = small_dataset(data)
        # 20 kills of one job: far more interruptions than --max-attempts allows by default.
        args = ("--workers", "1", "--data-root", data, "--max-attempts", "0")
        d.start(*args)
        # A time budget (training seconds, carried across restarts in the checkpoint) instead of an
        # epoch count: long enough to be killed 20 times on a fast or a slow machine.
        spec = idx_job("crash", files, pretrain={"epochs": 1000, "batch_size": 64, "time_budget_s": BUDGET})
        s, sub = d.post("/v1/jobs", spec)
        check(s == 201, "submit -> %d %s" % (s, sub))
        jid = sub["id"]
        job_dir = os.path.join(d.state_dir, "jobs", str(jid))
        ckpt_path = os.path.join(job_dir, "checkpoint.safetensors")
        reader = Reader(d, jid)
        reader.start()

        last_db_ckpt = -1
        holes = set()          # steps a run died before flushing, then resumed past
        kinds_done = {}
        resumes_checked = 0
        seen = (0, 0)          # (pretraining, resumed) events stored before the last restart
        file_step, spent = None, 0.0
        for k in range(KILLS):
            kind = KINDS[k % 4] if k < 4 else KINDS[rng.randrange(len(KINDS))]
            if spent > BUDGET - RESERVE and kind in ("step", "commit"):
                # The budget a checkpoint carries includes each run's start-up: on a slow machine
                # the job could finish before the 20th kill. Kills that keep no new checkpoint.
                kind = "load" if rng.random() < 0.5 else "write"
            if k == 0:
                wait_for(lambda: d.job(jid)["state"] == "running", "the job to start", 30, d, POLL)
            if kind == "load":
                time.sleep(rng.uniform(0.0, 0.8))
            else:
                # This run has reached its step loop: its pretraining event is stored. If it resumed,
                # it did so from exactly the checkpoint file that was complete at the last kill.
                def started():
                    msgs = events(d, jid)
                    pre = [m for m in msgs if m.startswith("pretraining simclr")]
                    res = [m for m in msgs if m.startswith("resumed from checkpoint")]
                    return (pre, res) if len(pre) > seen[0] else None
                pre, res = wait_for(started, "run %d to reach its step loop" % (k + 1), 90, d, POLL)
                if k > 0 and file_step is not None:
                    want = "resumed from checkpoint at step %d" % file_step
                    check(len(res) > seen[1] and res[-1] == want,
                          "after kill %d: resume events %s, expected %r" % (k, res[seen[1]:], want))
                    resumes_checked += 1
                    s_now = d.job(jid)["progress"]["step"]
                    check(s_now >= file_step, "after kill %d: step counter %d below the checkpoint %d" % (k, s_now, file_step))
            if kind == "step":
                time.sleep(rng.uniform(0.05, 2.0))
            elif kind in ("write", "commit"):
                # The next checkpoint write (one a second), and for "commit" its rename too.
                # A temporary file left by an earlier kill is removed when the run starts.
                tmp = wait_for(lambda: temp_files(job_dir), "a checkpoint write", 60, d, POLL)
                if kind == "commit":
                    wait_for(lambda: tmp[0] not in temp_files(job_dir), "the checkpoint rename", 60, d, POLL)
            if d.job(jid)["state"] != "running":
                raise Failure("job ended after only %d kills: %s" % (k, d.job(jid)))
            rc = d.kill()
            check(rc == -9, "kill %d: exit code %s" % (k + 1, rc))
            d.port = None
            kinds_done[kind] = kinds_done.get(kind, 0) + 1

            ok, row, steps, seen = db_state(d.state_dir, jid)
            check(ok == [("ok",)], "kill %d (%s): integrity_check %s" % (k + 1, kind, ok))
            check(row is not None, "kill %d: the job row is gone" % (k + 1))
            state, db_ckpt, attempts = row
            db_ckpt = -1 if db_ckpt is None else db_ckpt
            check(state == "running", "kill %d: job state %s in the database" % (k + 1, state))
            check(db_ckpt >= last_db_ckpt, "kill %d: checkpoint_step went back from %d to %d" % (k + 1, last_db_ckpt, db_ckpt))
            last_db_ckpt = db_ckpt
            check(all(a < b for a, b in zip(steps, steps[1:])),
                  "kill %d: loss steps not strictly increasing: %s" % (k + 1, [(a, b) for a, b in zip(steps, steps[1:]) if a >= b][:5]))
            flushed = steps[-1] if steps else 0
            missing = set(range(1, flushed + 1)) - set(steps)
            check(missing <= holes, "kill %d: loss steps missing beyond unflushed batches: %s" % (k + 1, sorted(missing - holes)[:10]))
            check(set(range(flushed + 1, db_ckpt + 1)) <= holes,
                  "kill %d: checkpoint recorded at step %d but loss stored only to %d" % (k + 1, db_ckpt, flushed))
            file_step, spent = ckpt_file_state(ckpt_path)
            if file_step is not None:
                check(file_step >= db_ckpt, "kill %d: checkpoint file at step %d behind the record %d" % (k + 1, file_step, db_ckpt))
                if file_step > flushed:
                    holes |= set(range(flushed + 1, file_step + 1))   # never flushed, resumed past
            print("  kill %2d %-6s at %5.1f s: checkpoint file at step %s (%.1f s of budget), recorded %d, loss stored to %d"
                  % (k + 1, kind, time.time() - t_begin, file_step, spent, db_ckpt, flushed))
            d.start(*args)
            with open(d.log_path, errors="replace") as f:
                recovered = f.read().count("stopped uncleanly")
            check(recovered == k + 1, "after kill %d: %d recovery log lines" % (k + 1, recovered))

        reader.stop = True
        j = d.wait_state(jid, ("succeeded", "failed", "cancelled"), timeout=120)
        check(j["state"] == "succeeded", "job ended %s: %s\n%s" % (j["state"], j.get("error"), d.log()))
        total = j["results"]["pretext"]["steps"]
        check(total > 0 and "final_loss" in j["results"]["pretext"], "results: %s" % j["results"])
        check(j["attempts"] == KILLS + 1, "attempts %d, expected %d" % (j["attempts"], KILLS + 1))
        s, m = d.get("/v1/jobs/%d/metrics?keys=loss&max_points=100000" % jid)
        steps = [p[0] for p in m["series"]["loss"]["points"]]
        want = [s_ for s_ in range(1, total + 1) if s_ not in holes]
        check(steps == want, "final loss curve: %d points for %d steps, %d holes; first differences %s"
              % (len(steps), total, len(holes), [(a, b) for a, b in zip(steps, want) if a != b][:5]))
        ok, row, _, _ = db_state(d.state_dir, jid)
        check(ok == [("ok",)], "final integrity_check %s" % ok)
        check(temp_files(job_dir) == [], "temporary files left in the job directory: %s" % temp_files(job_dir))
        check(not reader.bad, "5xx answers while killing: %s" % reader.bad[:5])
        check(d.stop() == 0, "final stop not clean:\n" + d.log())
        print("  %d/%d kills survived (%s); %d resumes checked against the checkpoint file; job succeeded at "
              "step %d with its loss curve intact (%d unflushed steps lost); %d requests answered, none 5xx; %.1f s"
              % (KILLS, KILLS, ", ".join("%s %d" % kv for kv in sorted(kinds_done.items())), resumes_checked, total,
                 len(holes), reader.ok, time.time() - t_begin))
    finally:
        if reader:
            reader.stop = True
        d.cleanup()


if __name__ == "__main__":
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else 12
    run(lambda exe: main(exe, seed))
