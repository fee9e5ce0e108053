#!/usr/bin/env python3
"""mpi_scaling.py - one job, same global batch: 1 rank x 2 threads against 2 ranks x 1 thread.

    bench/mpi_scaling.py --ssld build/daemon/ssld [--steps 40] [--rounds 3] [--model cnn|mlp]

Runs `ssld run` on a SimCLR job (the examples' CNN or an MLP, Fashion-MNIST, global batch 256)
as one process with "threads": 2, then under `mpirun --oversubscribe -np 2` with "threads": 1 and
"distributed": {"processes": 2}, alternating, `rounds` times each. A run's figure is its
pretraining seconds per step from results.json (the runner's own clock, without start-up and
data loading); the table shows each setting's median and spread and the ratio. It needs an ssld
built with -Dmpi=enabled; the last line is a JSON object.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

MODELS = {
    "cnn": {"encoder": "cnn", "channels": [32, 64, 128], "batchnorm": True, "pool_grid": 2},
    "mlp": {"encoder": "mlp", "hidden": [1024, 1024], "out_dim": 128},
}


def spec(model, steps, threads, processes):
    s = {"name": "mpi-scaling", "method": "simclr",
         "dataset": {"name": "fashion-mnist", "limit_train": 8192, "limit_test": 256},
         "model": MODELS[model], "augment": "simclr",
         "pretrain": {"max_steps": steps, "batch_size": 256,
                      "schedule": {"name": "cosine", "warmup_epochs": 0}},
         "seed": 1, "threads": threads, "checkpoint_interval_s": 3600}
    if processes > 1:
        s["distributed"] = {"processes": processes}
    return s


def one_run(ssld, model, steps, threads, processes, work):
    job = os.path.join(work, "job.json")
    out = os.path.join(work, "out-%d" % processes)
    shutil.rmtree(out, ignore_errors=True)
    with open(job, "w") as f:
        json.dump(spec(model, steps, threads, processes), f)
    cmd = [ssld, "run", job, "--out", out, "--quiet"]
    env = dict(os.environ)
    if processes > 1:
        cmd = ["mpirun", "--oversubscribe", "-np", str(processes)] + cmd
        env.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if p.returncode != 0:
        sys.exit("mpi_scaling: %s failed (%d):\n%s" % (" ".join(cmd), p.returncode, p.stderr[-3000:]))
    with open(os.path.join(out, "results.json")) as f:
        pre = json.load(f)["pretext"]
    return pre["seconds"] / pre["steps"], pre.get("final_loss")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ssld", default="build/daemon/ssld")
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--model", choices=sorted(MODELS), default="cnn")
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="ssld-mpi-scaling-")
    t = {1: [], 2: []}
    loss = {}
    try:
        for _ in range(a.rounds):
            for procs, threads in ((1, 2), (2, 1)):
                s, l = one_run(os.path.abspath(a.ssld), a.model, a.steps, threads, procs, work)
                t[procs].append(s)
                loss[procs] = l
    finally:
        shutil.rmtree(work, ignore_errors=True)
    med = {k: statistics.median(v) for k, v in t.items()}
    print("SimCLR %s, global batch 256, %d steps, median of %d runs (load %s)"
          % (a.model, a.steps, a.rounds, " ".join("%.1f" % x for x in os.getloadavg())))
    for procs, threads in ((1, 2), (2, 1)):
        v = t[procs]
        print("  %d rank%s x %d thread%s: %7.1f ms/step (%.1f-%.1f), final loss %s"
              % (procs, "s" if procs > 1 else "", threads, "s" if threads > 1 else "", med[procs] * 1e3, min(v) * 1e3, max(v) * 1e3,
                 loss[procs]))
    ratio = med[2] / med[1]
    print("  2 ranks / 1 rank step time: %.3f (target <= 1.10)" % ratio)
    print(json.dumps({"bench": "mpi_scaling", "model": a.model, "steps": a.steps, "rounds": a.rounds,
                      "ms_per_step_1x2": round(med[1] * 1e3, 2), "ms_per_step_2x1": round(med[2] * 1e3, 2),
                      "ratio": round(ratio, 3)}))


if __name__ == "__main__":
    main()
