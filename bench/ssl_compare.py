#!/usr/bin/python3
"""ssl_compare.py - the SSL method comparison on Fashion-MNIST (docs/contrastive.md's table).

Every method pretrains the same encoder (the CNN with channels [32, 64, 128], AdamW, cosine
schedule over the budget; batch and learning rate per method in TRAIN) for the same wall-clock
budget, then the same evaluations run on it:
kNN (k 20) and a linear probe at 1%, 10% and 100% of the Fashion-MNIST training labels ("first k
per class" subsets), on the 10,000 test images. The baselines run the same evaluations on the
same architecture: "none" probes the randomly initialised encoder, and its supervised@1% row
trains the network from scratch on the 1% labels. CLIP pretrains on synthetic captions
(tools/make_captions.py) and reports zero-shot accuracy with held-out prompt templates.

Each run is one `ssld run SPEC --out DIR`; the spec is written next to its results, so any row
can be reproduced with the command printed in the table. Budgets are wall-clock: on a shared
machine the number of steps a budget buys varies with the load, so the table states the steps
each run reached and the load average when it ran.

    bench/ssl_compare.py --ssld build/daemon/ssld                    # all methods, 150 s each
    bench/ssl_compare.py --ssld build/daemon/ssld --budget 120 --methods simclr,none
    bench/run ssl_compare                                             # via meson's benchmarks

The last line printed is one JSON object with every figure.
"""

import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

ENCODER = {"encoder": "cnn", "channels": [32, 64, 128], "batchnorm": True}
FRACTIONS = [0.01, 0.1, 1.0]

# Method parameters: the catalogue defaults, written out so the spec documents itself, except
# BYOL's EMA rate: its default (0.99, rising to 1) suits runs of thousands of steps; in a budget of
# a few hundred steps the target would still be largely its random initialisation at the end (the
# init's share is exp(-sum(1 - tau)) ~ exp(-0.01 * steps / 2)), so a short comparison starts it at
# 0.96. MoCo keeps 0.99: in the quality tests' short runs a faster key encoder did worse (m 0.9:
# probe 0.59, kNN below random init; 0.96: 0.66), as in the MoCo paper's momentum ablation.
PARAMS = {
    "simclr": {"temperature": 0.5, "proj_hidden": 512, "proj_dim": 128},
    "moco": {"temperature": 0.2, "queue_size": 4096, "momentum": 0.99, "momentum_cosine": True,
             "symmetric": True, "key_bn_groups": 4, "proj_hidden": 512, "proj_dim": 128},
    "byol": {"tau_base": 0.96, "predictor": True, "proj_hidden": 512, "proj_dim": 128},
    "barlow_twins": {"lambda": 0.005, "proj_hidden": 1024, "proj_dim": 1024},
    # VICReg's expander is 512 wide: with 1024/1024 at batch 128 it fell below random init in the
    # 150 s run (kNN 57.9/68.1/74.8, linear 70.2/77.1/79.3 in 412 steps): a 1024 x 1024 covariance
    # from 128 samples has rank <= 127, so the covariance term fights noise.
    "vicreg": {"sim_weight": 25, "var_weight": 25, "cov_weight": 1, "proj_hidden": 512,
               "proj_dim": 512},
    "clip": {"embed_dim": 128, "text_dim": 256, "text_buckets": 8192},
}

# Batch and AdamW learning rate per method. A short wall-clock budget is better spent on more,
# smaller steps (batch 128); the learning rates are the ones that worked in the quality tests'
# short runs (tests/contrastive: SimCLR loses probe accuracy at 5e-3, the others gain from 4e-3).
# CLIP keeps batch 256: its negatives are the batch's other captions.
TRAIN = {
    "simclr": (128, 0.002),
    "moco": (128, 0.004),
    "byol": (128, 0.004),
    "barlow_twins": (128, 0.004),
    "vicreg": (128, 0.004),
    "clip": (256, 0.002),
}

AUGMENT = {
    "byol": ({"preset": "simclr", "blur": {"p": 1.0}},
             {"preset": "simclr", "blur": {"p": 0.1}, "solarize": {"p": 0.2}}),
    "clip": ("light", None),
}


def spec_for(method, budget, seed, captions=None):
    evals = [
        {"protocol": "knn", "label_fractions": FRACTIONS},
        {"protocol": "linear_probe", "label_fractions": FRACTIONS},
    ]
    spec = {
        "name": "compare-%s" % method.replace("_", "-"),
        "method": method,
        "dataset": "fashion-mnist",
        "model": ENCODER,
        "evaluations": evals,
        "seed": seed,
        "threads": 2,
        "checkpoint_interval_s": 600,
    }
    if method == "none":
        evals.append({"protocol": "supervised", "label_fractions": [0.01]})
        return spec
    spec["params"] = dict(PARAMS[method])
    a1, a2 = AUGMENT.get(method, ("simclr", None))
    spec["augment"] = a1
    if a2:
        spec["augment2"] = a2
    spec["pretrain"] = {
        "epochs": 100,                       # the budget ends pretraining first
        "time_budget_s": budget,
        "batch_size": TRAIN[method][0],
        "optimizer": {"name": "adamw", "lr": TRAIN[method][1], "weight_decay": 1e-6},
        "schedule": {"name": "cosine", "warmup_epochs": 1},
    }
    if method == "clip":
        spec["dataset"] = {"format": "captions", "file": captions}
        spec["evaluations"] = [{"protocol": "linear_probe", "label_fractions": [0.01]}]
    return spec


def run(ssld, spec, out_dir, reuse=False):
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, "spec.json")
    done = os.path.join(out_dir, "summary.json")
    if reuse and os.path.exists(done) and os.path.exists(path):
        with open(path) as f:
            same = json.load(f) == spec
        if same:
            with open(done) as f:
                return json.load(f)
    # A fresh run: `ssld run` resumes from a checkpoint in its --out directory, so the files of an
    # earlier run (another spec) must go first.
    for name in ("checkpoint.safetensors", "encoder.safetensors", "results.json", "summary.json"):
        if os.path.exists(os.path.join(out_dir, name)):
            os.remove(os.path.join(out_dir, name))
    with open(path, "w") as f:
        json.dump(spec, f, indent=2)
    cmd = [ssld, "run", path, "--out", out_dir]
    load = os.getloadavg()[0]
    t0 = time.time()
    with open(os.path.join(out_dir, "log.txt"), "w") as log:
        rc = subprocess.call(cmd, stdout=log, stderr=subprocess.STDOUT)
    wall = time.time() - t0
    if rc != 0:
        sys.exit("%s failed (exit %d); see %s/log.txt" % (" ".join(cmd), rc, out_dir))
    with open(os.path.join(out_dir, "results.json")) as f:
        res = json.load(f)
    res["_command"] = " ".join(cmd)
    res["_wall_s"] = round(wall, 1)
    res["_load_start"] = round(load, 2)
    res["_load_end"] = round(os.getloadavg()[0], 2)
    with open(done, "w") as f:
        json.dump(res, f, indent=1)
    return res


def acc(res, protocol, fraction):
    for e in res.get("evaluations", []):
        if e["protocol"] == protocol and abs(e.get("label_fraction", -1) - fraction) < 1e-9:
            return e["test_accuracy"]
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ssld", default=os.path.join(ROOT, "build", "daemon", "ssld"))
    ap.add_argument("--budget", type=float, default=150, help="pretraining seconds per method")
    ap.add_argument("--methods", default="none,simclr,moco,byol,barlow_twins,vicreg,clip")
    ap.add_argument("--out", default="/tmp/ssld-ssl-compare")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--reuse", action="store_true",
                    help="keep a method's earlier result when DIR/<method>/spec.json is unchanged "
                         "(a comparison can then be run method by method, e.g. one per lock hold)")
    args = ap.parse_args()

    results = {}
    for m in args.methods.split(","):
        captions = None
        if m == "clip":
            captions = os.path.join(args.out, "fashion-mnist-captions.jsonl")
            subprocess.check_call([sys.executable, os.path.join(ROOT, "tools", "make_captions.py"),
                                   "--out", captions])
        print("running %s (budget %.0f s) ..." % (m, args.budget), file=sys.stderr, flush=True)
        results[m] = run(args.ssld, spec_for(m, args.budget, args.seed, captions),
                         os.path.join(args.out, m), args.reuse)
        r = results[m]
        print("  %s: %s steps in %s s, wall %.0f s, load %.1f -> %.1f" % (
            m, r["pretext"].get("steps", 0), r["pretext"].get("seconds", 0), r["_wall_s"],
            r["_load_start"], r["_load_end"]), file=sys.stderr, flush=True)

    base = results.get("none")
    sup1 = acc(base, "supervised", 0.01) if base else None
    print("\n%-14s %6s %8s | %7s %7s %7s | %7s %7s %7s" % (
        "method", "steps", "seconds", "knn 1%", "knn 10%", "knn100%", "lin 1%", "lin 10%",
        "lin100%"))
    summary = {"budget_s": args.budget, "supervised_1pct": sup1, "methods": {}}
    cols = [(p, f) for p in ("knn", "linear_probe") for f in FRACTIONS]
    for m, r in results.items():
        if m == "clip":
            continue
        row = {p + "@" + str(f): acc(r, p, f) for p, f in cols}
        row.update(steps=r["pretext"].get("steps", 0) if "pretext" in r else 0,
                   seconds=r["pretext"].get("seconds", 0) if "pretext" in r else 0,
                   command=r["_command"], load=[r["_load_start"], r["_load_end"]])
        summary["methods"][m] = row
        cells = ["%6.2f%%" % (100 * row[p + "@" + str(f)]) if row[p + "@" + str(f)] is not None
                 else "      -" for p, f in cols]
        print("%-14s %6s %8s | %s %s %s | %s %s %s" % (m, row["steps"], row["seconds"], *cells))
    if sup1 is not None:
        print("%-14s %6s %8s | supervised from scratch on 1%% labels: %.2f%%" % (
            "none", "-", "-", 100 * sup1))

    # The two bars, per method: every cell above the random-init encoder's same cell,
    # and the 1% linear probe above supervised-from-scratch on the same 1% labels.
    rnd = summary["methods"].get("none")
    checks = {}
    for m, row in summary["methods"].items():
        if m == "none":
            continue
        beats_rnd = None if rnd is None else all(
            row[k] is not None and rnd[k] is not None and row[k] > rnd[k]
            for k in (p + "@" + str(f) for p, f in cols))
        beats_sup = None if sup1 is None or row["linear_probe@0.01"] is None else \
            row["linear_probe@0.01"] > sup1
        checks[m] = {"beats_random_init_everywhere": beats_rnd, "lin1_beats_supervised1": beats_sup}
    summary["checks"] = checks

    # The README table (markdown), one row per encoder, figures in percent.
    names = {"none": "random init (no pretraining)", "simclr": "SimCLR", "moco": "MoCo v2",
             "byol": "BYOL", "barlow_twins": "Barlow Twins", "vicreg": "VICReg"}
    md = ["| encoder | steps | kNN 1% | kNN 10% | kNN 100% | linear 1% | linear 10% | "
          "linear 100% |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for m, row in summary["methods"].items():
        cells = ["%.1f" % (100 * row[p + "@" + str(f)]) if row[p + "@" + str(f)] is not None
                 else "-" for p, f in cols]
        md.append("| %s | %s | %s |" % (names.get(m, m), row["steps"] if m != "none" else "-",
                                        " | ".join(cells)))
    if sup1 is not None:
        md.append("| supervised from scratch, 1%% labels | - | | | | %.1f | | |" % (100 * sup1))
    print("\n" + "\n".join(md))
    for m, c in checks.items():
        print("check %-13s beats random init in every cell: %s; linear 1%% beats supervised 1%%: %s"
              % (m, c["beats_random_init_everywhere"], c["lin1_beats_supervised1"]))
    if "clip" in results:
        pre = results["clip"]["pretext"]
        summary["clip"] = {k: pre.get(k) for k in ("steps", "seconds", "zero_shot_accuracy",
                                                   "zero_shot_held_out_templates",
                                                   "zero_shot_test_images")}
        summary["clip"]["linear_probe@0.01"] = acc(results["clip"], "linear_probe", 0.01)
        summary["clip"]["command"] = results["clip"]["_command"]
        print("clip: zero-shot %.2f%% on %d test images with %d held-out prompt templates "
              "(%s steps)" % (100 * pre.get("zero_shot_accuracy", 0),
                              pre.get("zero_shot_test_images", 0),
                              pre.get("zero_shot_held_out_templates", 0), pre.get("steps")))
    print("commands: %s/<method>/spec.json, run as printed in results[...].command" % args.out)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
