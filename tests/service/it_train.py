"""it_train.py - a short real training job through a real ssld:

- POST a SimCLR job on a slice of Fashion-MNIST; it is claimed and runs;
- poll GET /v1/jobs/{id}/metrics?after=CURSOR while it trains: the curve grows, every answer holds
  only points after the cursor, and the union of all answers equals the full history exactly
  (no point twice, none missing);
- progress (step/total/ETA) and latest metrics in GET /v1/jobs/{id}; results when it succeeds;
- events, artifacts listed with size and sha256, and downloaded byte for byte;
- keys filter and LTTB downsampling (first and last points kept, at most max_points);
- Prometheus counters (steps, finished jobs) moved.
"""
import hashlib
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
        spec = short_job("it-train", epochs=8, limit_train=4096, hidden=(512, 512),
                         extra={"evaluations": [{"protocol": "knn", "label_fractions": [0.1]}]})
        s, sub = d.post("/v1/jobs", spec)
        check(s == 201 and sub["state"] == "queued", "submit -> %d %s" % (s, sub))
        jid = sub["id"]

        cursor, polls, growth, seen = 0, 0, [], {}
        saw_running_progress = False
        deadline = time.time() + 180
        while time.time() < deadline:
            s, m = d.get("/v1/jobs/%d/metrics?after=%d" % (jid, cursor))
            check(s == 200, "metrics -> %d %s" % (s, m))
            check(m["cursor"] >= cursor, "cursor went back: %d -> %d" % (cursor, m["cursor"]))
            new = 0
            for key, ser in m["series"].items():
                check(not ser["downsampled"], "incremental answers must not be downsampled")
                for step, value in ser["points"]:
                    check((key, step) not in seen, "point (%s, %d) returned twice" % (key, step))
                    seen[(key, step)] = value
                    new += 1
            if new:
                growth.append(new)
            cursor = m["cursor"]
            polls += 1
            if m["state"] == "running":
                j = d.job(jid)
                p = j["progress"]
                if p["total"] > 0 and p["step"] > 0 and p["stage"] == "pretrain":
                    check(0 < p["fraction"] <= 1 and p["step"] <= p["total"], "progress: %s" % p)
                    check("loss" in j["metrics"], "latest metrics lack loss: %s" % j["metrics"])
                    saw_running_progress = True
            if m["state"] in ("succeeded", "failed", "cancelled"):
                # One more read after the final state: the last batch was flushed before it.
                s, m = d.get("/v1/jobs/%d/metrics?after=%d" % (jid, cursor))
                for key, ser in m["series"].items():
                    for step, value in ser["points"]:
                        check((key, step) not in seen, "point (%s, %d) returned twice" % (key, step))
                        seen[(key, step)] = value
                break
            time.sleep(0.3)
        j = d.job(jid)
        check(j["state"] == "succeeded", "job ended %s: %s\n%s" % (j["state"], j["error"], d.log()))
        check(len(growth) >= 3, "the curve did not grow over several polls: %s" % growth)
        check(saw_running_progress, "never saw pretrain progress while running")
        loss_steps = sorted(st for (k, st) in seen if k == "loss")
        total = 8 * (4096 // 64)   # epochs x steps per epoch (the final progress is the last stage's)
        check(loss_steps == list(range(1, total + 1)), "loss points are not exactly steps 1..%d: %d points" % (total, len(loss_steps)))

        # The whole history in one read equals what the cursor polls collected.
        s, full = d.get("/v1/jobs/%d/metrics?max_points=100000" % jid)
        n_full = sum(len(ser["points"]) for ser in full["series"].values())
        check(n_full == len(seen), "full read has %d points, polls collected %d" % (n_full, len(seen)))
        check(full["cursor"] == cursor, "final cursor differs")

        # Keys filter and downsampling.
        s, part = d.get("/v1/jobs/%d/metrics?keys=loss,lr&max_points=10" % jid)
        check(s == 200 and set(part["series"]) == {"loss", "lr"}, "keys filter: %s" % list(part["series"]))
        loss = part["series"]["loss"]
        check(loss["downsampled"] and len(loss["points"]) == 10 and loss["count"] == total, "downsampled: %s" % loss)
        check(loss["points"][0][0] == 1 and loss["points"][-1][0] == total, "LTTB must keep the first and last points")
        steps = [p[0] for p in loss["points"]]
        check(steps == sorted(steps) and len(set(steps)) == 10, "downsampled steps not increasing")
        check(all(abs(v - seen[("loss", st)]) <= 1e-6 * max(1, abs(v)) for st, v in loss["points"]),
              "downsampled values are not original points")

        # Results, progress, events.
        check(j["results"] and j["results"]["evaluations"][0]["protocol"] == "knn", "results: %s" % j["results"])
        check(j["progress"]["fraction"] == 1 and j["finished_at"] and j["error"] is None, "final job: %s" % j)
        check(j["checkpoint_step"] == total, "checkpoint step %s" % j["checkpoint_step"])
        s, ev = d.get("/v1/jobs/%d/events" % jid)
        msgs = [e["message"] for e in ev["events"]]
        check(any("started" in m for m in msgs) and any("succeeded" in m for m in msgs), "events: %s" % msgs)
        s, ev2 = d.get("/v1/jobs/%d/events?after=%d" % (jid, ev["events"][0]["id"]))
        check(len(ev2["events"]) == len(ev["events"]) - 1, "event cursor")

        # Artifacts: listed with size and sha256, downloadable byte for byte.
        s, ar = d.get("/v1/jobs/%d/artifacts" % jid)
        names = {a["name"]: a for a in ar["artifacts"]}
        check("results.json" in names and "encoder.safetensors" in names, "artifacts: %s" % list(names))
        for a in ar["artifacts"]:
            s, hdrs, data = d.raw("GET", a["url"])
            check(s == 200, "download %s -> %d" % (a["url"], s))
            check(len(data) == a["size"] and hashlib.sha256(data).hexdigest() == a["sha256"],
                  "%s: size/sha256 mismatch" % a["name"])
        s, e = d.get("/v1/jobs/%d/artifacts/no-such-file" % jid)
        check(s == 404, "missing artifact -> %d" % s)

        s, hdrs, text = d.raw("GET", "/metrics")
        text = text.decode()
        check('ssld_jobs_finished_total{outcome="succeeded"} 1' in text, "finished counter")
        steps_line = [l for l in text.splitlines() if l.startswith("ssld_train_steps_total ")]
        check(steps_line and int(steps_line[0].split()[1]) == total, "steps counter: %s" % steps_line)
        check(d.stop() == 0, "ssld did not stop cleanly:\n" + d.log())
        print("  %d polls, curve grew in %d of them, %d points, each once; %d steps; artifacts verified"
              % (polls, len(growth), len(seen), total))
    finally:
        d.cleanup()


if __name__ == "__main__":
    run(main)
