"""dashboard_bench.py - bench setup for bench/dashboard_bench.mjs: writes a long job's worth of
metric points straight into a job's rows of a live ssld database (storage/store.c schema: metrics,
metric_keys, jobs), and marks the job succeeded with evaluation results, so the dashboard has a
100,000-step job to render without training one.

    python3 dashboard_bench.py DB JOB_ID STEPS DENSE_KEYS
      DENSE_KEYS  comma list of keys with a point at every step (e.g. loss,lr,grad_norm)
Health keys get a point every 50 steps. Prints the number of points written. Not a test: it
checks nothing beyond SQLite's own errors.
"""
import json
import math
import random
import sqlite3
import sys
import time


def main():
    db_path, job_id, steps, dense = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4].split(",")
    rng = random.Random(job_id)
    db = sqlite3.connect(db_path, timeout=30)
    db.execute("PRAGMA busy_timeout=30000")
    t0 = time.time() - steps * 0.05
    rows = []
    for s in range(1, steps + 1):
        t = t0 + s * 0.05
        frac = s / steps
        for k in dense:
            if k == "lr":
                v = 1e-3 * min(1.0, s / (steps * 0.02)) * 0.5 * (1 + math.cos(math.pi * frac))
            elif k == "grad_norm":
                v = 0.8 + 2.5 * math.exp(-8 * frac) + rng.gauss(0, 0.15)
            else:  # a loss: fast drop, slow tail, noise
                v = 3.6 + 1.2 * math.exp(-12 * frac) + 0.15 * math.exp(-frac) + rng.gauss(0, 0.06)
            rows.append((job_id, s, k, v, t))
        if s % 50 == 0:
            rows.append((job_id, s, "health/std_mean", 0.7 + 0.25 * (1 - math.exp(-6 * frac)) + rng.gauss(0, 0.01), t))
            rows.append((job_id, s, "health/eff_rank", 12 + 30 * math.exp(-5 * frac) + rng.gauss(0, 0.5), t))
            rows.append((job_id, s, "health/uniformity", -2.3 - 0.8 * (1 - math.exp(-4 * frac)) + rng.gauss(0, 0.02), t))
    evals = []
    for proto, base in (("linear_probe", 0.70), ("knn", 0.66), ("supervised", 0.62)):
        for f in (0.01, 0.1, 1.0):
            acc = min(0.93, base + 0.08 * math.log10(f * 100) + (0.0 if proto != "supervised" else 0.04 * math.log10(f * 100)))
            evals.append({"protocol": proto, "label_fraction": f, "labels": int(60000 * f), "test_accuracy": round(acc, 4)})
            rows.append((job_id, steps, "eval/%s@%g" % (proto, f), acc, t0 + steps * 0.05))
    with db:
        db.executemany("INSERT INTO metrics(job_id, step, key, value, time) VALUES (?, ?, ?, ?, ?)", rows)
        db.execute(
            "INSERT OR REPLACE INTO metric_keys(job_id, key, last_id, last_step, last_value) "
            "SELECT job_id, key, MAX(id), MAX(step), NULL FROM metrics WHERE job_id = ? GROUP BY key", (job_id,))
        db.execute(
            "UPDATE metric_keys SET last_value = (SELECT value FROM metrics m WHERE m.id = metric_keys.last_id) WHERE job_id = ?",
            (job_id,))
        results = {"job": "bench", "method": "simclr", "pretext": {"steps": steps, "final_loss": rows[-1][3]}, "evaluations": evals}
        end = t0 + steps * 0.05
        db.execute(
            "UPDATE jobs SET state = 'succeeded', started_at = ?, finished_at = ?, updated_at = ?, step = ?, total = ?, "
            "stage = 'done', results = ? WHERE id = ?",
            (t0, end, end, steps, steps, json.dumps(results), job_id))
    print(len(rows))


if __name__ == "__main__":
    main()
