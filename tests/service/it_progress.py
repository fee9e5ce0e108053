"""it_progress.py - what a job says about itself, over real HTTP on a real ssld:

- progress: GET /v1/jobs/{id} "progress.fraction" covers the whole job - it never goes down from
  pretraining through every evaluation (no restart at 0 per evaluation), the ETA is known while
  the evaluations run, and it is 1 when the job succeeds; the event log states the plan first;
- results lead with "headline": the best SSL protocol at the smallest label fraction against the
  from-scratch baseline at that fraction (gain = accuracy - baseline_accuracy), the random-init
  probe run without being asked and listed among "baselines";
- labels: a labels_per_class that limit_train cannot supply is a warning event and a "labels"
  entry (requested vs used per class), never silent; random_init_baseline false skips the probe;
- a time budget: the plan names it, and an event says when it stops pretraining.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ssld_harness import Daemon, check, run, short_job, skip_unless_dataset  # noqa: E402


def events(d, jid):
    s, ev = d.get("/v1/jobs/%d/events" % jid)
    check(s == 200, "events -> %d" % s)
    return ev["events"]


def watch_progress(d, jid, timeout=120):
    """Every (stage, fraction, eta_s) seen while the job runs, then the final job."""
    seen, deadline = [], time.time() + timeout
    while time.time() < deadline:
        j = d.job(jid)
        if j["state"] == "running" and j["progress"]["fraction"] is not None:
            p = j["progress"]
            seen.append((p["stage"], p["fraction"], p["eta_s"]))
        if j["state"] in ("succeeded", "failed", "cancelled"):
            return seen, j
        time.sleep(0.05)
    raise AssertionError("job %d did not finish within %d s" % (jid, timeout))


def main(exe):
    skip_unless_dataset()
    d = Daemon(exe)
    try:
        d.start("--workers", "1")
        evals = [{"protocol": "linear_probe", "label_fractions": [0.01, 0.1]},
                 {"protocol": "supervised", "label_fractions": [0.01, 0.1], "epochs": 40}]
        spec = short_job("it-progress", epochs=3, limit_train=4096, hidden=(256, 256),
                         extra={"evaluations": evals})
        s, sub = d.post("/v1/jobs", spec)
        check(s == 201, "submit -> %d %s" % (s, sub))
        seen, j = watch_progress(d, sub["id"])
        check(j["state"] == "succeeded", "job ended %s: %s\n%s" % (j["state"], j["error"], d.log()))
        fr = [f for _, f, _ in seen]
        check(all(0 <= f < 1 for f in fr), "running fractions outside [0, 1): %s" % seen)
        check(all(a <= b for a, b in zip(fr, fr[1:])), "progress went down: %s" % seen)
        stages = [st for st, _, _ in seen]
        check("pretrain" in stages and any(st.startswith("supervised@") for st in stages),
              "did not see pretraining and an evaluation run: %s" % sorted(set(stages)))
        check(all(eta is not None for st, _, eta in seen if st != "pretrain"),
              "ETA unknown during the evaluations: %s" % seen)
        check(j["progress"]["fraction"] == 1, "final progress %s" % j["progress"])
        msgs = [e["message"] for e in events(d, sub["id"])]
        plan = [m for m in msgs if m.startswith("plan: ")]
        check(plan == ["plan: 192 pretraining steps; then 5 evaluations (4 asked for and the "
                       "random-init probe)"], "plan event: %s" % plan)

        res = j["results"]
        ev = res["evaluations"]
        check([e["protocol"] for e in ev if e.get("baseline")] == ["supervised", "supervised", "random_init"],
              "baselines marked: %s" % ev)
        at1 = {e["protocol"]: e["test_accuracy"] for e in ev if e.get("label_fraction") == 0.01}
        h = res["headline"]
        check(h["protocol"] == "linear_probe" and h["label_fraction"] == 0.01 and h["baseline"] == "scratch",
              "headline: %s" % h)
        check(h["accuracy"] == at1["linear_probe"] and h["baseline_accuracy"] == at1["supervised"],
              "headline accuracies %s, evaluations at 1%%: %s" % (h, at1))
        check(abs(h["gain"] - round(h["accuracy"] - h["baseline_accuracy"], 4)) < 1e-9, "gain: %s" % h)
        check(h["summary"] == "%+.1f points %s scratch at 1 %% labels"
              % (100 * h["gain"], "over" if h["gain"] >= 0 else "against"), "summary: %s" % h["summary"])
        kinds = {(b["kind"], b.get("label_fraction")) for b in res["baselines"]}
        check(("random_init", 0.01) in kinds and ("scratch", 0.1) in kinds, "baselines: %s" % res["baselines"])

        # 30 labels per class out of 200 training samples: no class can supply them.
        short = short_job("it-labels", epochs=1, limit_train=200,
                          extra={"evaluations": [{"protocol": "knn", "labels_per_class": 30}],
                                 "random_init_baseline": False})
        s, sub = d.post("/v1/jobs", short)
        check(s == 201, "submit -> %d %s" % (s, sub))
        j = d.wait_state(sub["id"], ("succeeded", "failed", "cancelled"))
        check(j["state"] == "succeeded", "labels job ended %s: %s" % (j["state"], j["error"]))
        res = j["results"]
        check([e["protocol"] for e in res["evaluations"]] == ["knn"], "random_init ran although off: %s"
              % res["evaluations"])
        note = res["labels"][0]
        used = res["evaluations"][0]["labels"]
        check(note["labels_per_class"] == 30 and note["requested"] == 300 and note["used"] == used == 200
              and sum(note["used_per_class"]) == 200 and note["classes_short"] > 0, "labels: %s" % note)
        warn = [e for e in events(d, sub["id"]) if e["level"] == "warning" and "classes have fewer" in e["message"]]
        check(len(warn) == 1 and "300 in all" in warn[0]["message"] and "200 labels are used" in warn[0]["message"],
              "labels warning: %s" % warn)
        check(res["headline"]["protocol"] == "knn" and res["headline"]["baseline"] is None
              and res["headline"]["gain"] is None, "headline without a baseline: %s" % res["headline"])

        # A time budget far below the planned steps: the plan says so, and so does the stop.
        budget = short_job("it-budget", epochs=10000, limit_train=512,
                           extra={"pretrain": {"epochs": 10000, "batch_size": 64, "time_budget_s": 1}})
        s, sub = d.post("/v1/jobs", budget)
        check(s == 201, "submit -> %d %s" % (s, sub))
        j = d.wait_state(sub["id"], ("succeeded", "failed", "cancelled"))
        check(j["state"] == "succeeded" and j["progress"]["fraction"] == 1, "budget job: %s" % j)
        msgs = [e["message"] for e in events(d, sub["id"])]
        check("plan: 1-second budget, at most 80,000 steps; then no evaluations" in msgs, "plan: %s" % msgs)
        check(any(m.startswith("the time budget of 1 s stopped pretraining at step ") and m.endswith(" of 80,000")
                  for m in msgs), "budget stop event: %s" % msgs)
    finally:
        d.cleanup()


if __name__ == "__main__":
    run(main)
