#!/usr/bin/env python3
"""it_mpi.py - one job as two MPI processes against one process (suite mpi, -Dmpi=enabled).

Usage: it_mpi.py MODE DIST_LOSSES MPIRUN, MODE one of
  simclr, moco, byol, barlow_twins, vicreg
                              2 ranks x 16 samples reproduce 1 rank x 32 (the same global batch)
                              on every loss of the first 50 steps, within the bound below
                              (MoCo with a queue of 256 keys: it wraps every 4 steps, so the
                              queue's contents reach the loss)
  resume                      a 2-rank run stopped by rank 0 alone at step 12 and run again
                              continues the uninterrupted 2-rank curve bit for bit
  hang                        rank 1 stops responding at step 10: rank 0 fails with the
                              collective timeout's message, and mpirun exits non-zero
  refuse                      a method whose loss does not see the global batch, and a batch the
                              ranks do not divide, are refused by name

The bound (docs/testing.md, "Data parallelism"). With equal parameters the two runs do the same
arithmetic except the order of some sums: batchnorm statistics (double on both sides), and each
weight gradient, which one process accumulates over 2B rows in one sgemm and two ranks as two
sums of B rows plus one addition. A reordered float sum of K terms differs by about
sqrt(K) * 2^-24 of its terms' magnitude (random-walk rounding); the largest here is the first
convolution's weight gradient, K = 2 * 32 * 28 * 28 = 50176, so 224 * 6e-8 = 1.3e-5 of a
gradient. LARS scales each layer's step by ||w|| / ||g||, so a relative error e of a gradient moves
the weights by e * lr * trust * ||w||, and the loss by less than that; over 50 steps these add up
(no step amplifies them: the loss is smooth in the weights) to at most 50 * 1.3e-5 * 0.3 * 1e-3
* ||w||-relative, far below 1e-4 of a loss near 3.5. So 1e-4 relative holds with a wide margin on
every step; the first step, at equal weights, differs only by the forward's batchnorm statistics
and is held to 1e-6. AdamW with its default eps = 1e-8 is left out on purpose: its first steps
are lr * sign(g), so a gradient element near 0 whose sign the reordered sum flips moves by 2 * lr,
and the curves part by 1e-4 within 30 steps (measured; with eps = 1e-4 they stay within 5e-6).
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

MODE, EXE, MPIRUN = sys.argv[1], sys.argv[2], sys.argv[3]
FMNIST = "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"
ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
           OPENBLAS_NUM_THREADS="1")
WAIT_BOUND_S = 100   # a generous bound on a run's exit; each takes a few seconds
GNORM = {}           # run name -> {step: gradient norm}

failures = 0


def check(cond, msg):
    global failures
    if not cond:
        failures += 1
        print("FAIL:", msg, file=sys.stderr)


def spec(method, params, steps=50, batch=32):
    return {
        "name": "dp-" + method, "method": method, "params": params,
        "dataset": {"name": "fashion-mnist", "limit_train": 2000, "limit_test": 200},
        "model": {"encoder": "cnn", "channels": [8, 16], "batchnorm": True, "pool_grid": 2},
        "augment": "simclr",
        "pretrain": {"max_steps": steps, "batch_size": batch,
                     "optimizer": {"name": "adamw", "lr": 0.001, "eps": 0.001},
                     "schedule": {"name": "cosine", "warmup_epochs": 0}},
        "evaluations": [], "seed": 1, "threads": 1,
    }


def run(tmp, np, job, out, *extra, env=None):
    """mpirun -np N dist_losses JOB OUT [extra] -> (status, {step: loss}, stderr); the gradient
    norms go to GNORM[out]."""
    path = os.path.join(tmp, "job-%s.json" % os.path.basename(out))
    with open(path, "w") as f:
        json.dump(job, f)
    p = subprocess.run([MPIRUN, "--oversubscribe", "-np", str(np), EXE, path,
                        os.path.join(tmp, out), *extra],
                       capture_output=True, text=True, env=env or ENV, timeout=WAIT_BOUND_S)
    losses, GNORM[out] = {}, {}
    for line in p.stdout.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] in ("loss", "grad_norm"):
            (losses if parts[0] == "loss" else GNORM[out])[int(parts[1])] = float(parts[2])
    return p.returncode, losses, p.stderr


def rel(a, b):
    return abs(a - b) / max(abs(a), 1e-30)


def same_curve(tmp, method, params):
    job = spec(method, params)
    rc1, one, err1 = run(tmp, 1, job, "one")
    rc2, two, err2 = run(tmp, 2, job, "two")
    check(rc1 == 0 and rc2 == 0, "runs failed: %d %d\n%s\n%s" % (rc1, rc2, err1[-2000:], err2[-2000:]))
    check(sorted(one) == list(range(1, 51)) and sorted(two) == list(range(1, 51)),
          "steps: %d and %d losses" % (len(one), len(two)))
    worst = max((rel(one[s], two[s]), s) for s in one if s in two) if one and two else (1, 0)
    print("%s: 50 steps, worst relative difference %.2e at step %d" % (method, worst[0], worst[1]))
    check(worst[0] <= 1e-4, "%s: step %d: 1 rank %.9g, 2 ranks %.9g" %
          (method, worst[1], one.get(worst[1], 0), two.get(worst[1], 0)))
    if 1 in one and 1 in two:
        check(rel(one[1], two[1]) <= 1e-6, "%s: step 1 (equal weights): loss %.9g vs %.9g" %
              (method, one[1], two[1]))
    g1, g2 = GNORM["one"].get(1), GNORM["two"].get(1)
    check(g1 is not None and g2 is not None and rel(g1, g2) <= 1e-5,
          "%s: step 1 (equal weights): gradient norm %r vs %r" % (method, g1, g2))
    if g1 and g2:
        print("%s: step 1 gradient norm %.9g vs %.9g (%.1e)" % (method, g1, g2, rel(g1, g2)))
    # the outputs: rank 0 alone writes them, once
    check(os.path.exists(os.path.join(tmp, "two", "checkpoint.safetensors")), "no checkpoint")


def resume(tmp):
    job = spec("simclr", {"proj_hidden": 32, "proj_dim": 16}, steps=30)
    rc, full, err = run(tmp, 2, job, "full")
    check(rc == 0 and len(full) == 30, "uninterrupted run: rc %d, %d losses\n%s" % (rc, len(full), err[-2000:]))
    rc, first, err = run(tmp, 2, job, "part", "--stop-at", "12")
    check(rc == 3, "stop at 12 (asked by rank 0 alone): rc %d\n%s" % (rc, err[-2000:]))
    check(sorted(first) == list(range(1, 13)), "stopped run's steps: %s" % sorted(first))
    rc, rest, err = run(tmp, 2, job, "part")
    check(rc == 0, "resumed run: rc %d\n%s" % (rc, err[-2000:]))
    check(sorted(rest) == list(range(13, 31)), "resumed run's steps: %s" % sorted(rest))
    for s in range(1, 31):
        got = first.get(s, rest.get(s))
        check(got == full.get(s), "step %d: resumed curve %r, uninterrupted %r" % (s, got, full.get(s)))


def hang(tmp):
    env = dict(ENV, SSLD_DIST_TIMEOUT_S="3")
    rc, losses, err = run(tmp, 2, spec("simclr", {"proj_hidden": 32, "proj_dim": 16}), "hang",
                          "--hang-at", "10", "--rank", "1", env=env)
    check(rc != 0, "mpirun exited 0 although rank 1 hung")
    check(sorted(losses) == list(range(1, 11)), "steps before the hang: %s" % sorted(losses))
    want = "rank 0: distributed: agreement on stopping timed out after 3 s"
    check(want in err and "at step 10 on rank 0 of 2" in err,
          "rank 0's message (want %r ... 'at step 10 on rank 0 of 2'):\n%s" % (want, err[-3000:]))


def refuse(tmp):
    rc, _, err = run(tmp, 2, spec("rotation", {}), "rot")
    check(rc != 0 and 'method "rotation" cannot train as 2 processes' in err,
          "rotation on 2 ranks: rc %d\n%s" % (rc, err[-2000:]))
    rc, _, err = run(tmp, 2, spec("simclr", {}, batch=33), "odd")
    check(rc != 0 and "pretrain.batch_size 33 is not divisible by the 2 processes" in err,
          "batch 33 on 2 ranks: rc %d\n%s" % (rc, err[-2000:]))


def main():
    if not os.path.exists(FMNIST):
        print("skipped: Fashion-MNIST is not installed (%s)" % FMNIST)
        return 77
    tmp = tempfile.mkdtemp(prefix="it_mpi.")
    try:
        small = {"proj_hidden": 32, "proj_dim": 16}
        if MODE in ("simclr", "moco", "byol", "barlow_twins", "vicreg"):
            same_curve(tmp, MODE, dict(small, queue_size=256) if MODE == "moco" else small)
        elif MODE == "resume":
            resume(tmp)
        elif MODE == "hang":
            hang(tmp)
        elif MODE == "refuse":
            refuse(tmp)
        else:
            print("unknown mode", MODE, file=sys.stderr)
            return 2
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("%s: %s" % (MODE, "ok" if failures == 0 else "%d failure(s)" % failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
