#!/usr/bin/python3
"""selfpred_compare.py - the self-predictive image methods on Fashion-MNIST, one table.

Runs the five examples (examples/{autoencoder,denoising-autoencoder,vae,mae,rotation}-fashion-
mnist.json) with `ssld run`, each followed by the same linear probe on the same architecture with
random (untrained) weights: a "method": "none" job with the example's model, dataset, seed and
evaluations (methods with the same model share one such run). Beside each method's own pretext
figure it computes the reference the issue compares it with:

  autoencoder            test reconstruction MSE vs PCA with 32 components fitted on the same 60,000
                         training images (numpy, here: float64 covariance + eigh)
  denoising_autoencoder  MSE(output on noisy, clean) vs MSE(noisy, clean), same test noise
  vae                    negative ELBO on the test set (nats per image), first vs last logged loss,
                         and a fresh 8x8 sample grid from `ssld generate` on the checkpoint
  mae                    masked-patch loss on masked test images vs the first logged training loss
  rotation               4-way rotation accuracy on the test set (target >= 90%)

--budget S caps each method's pretraining at S seconds of wall time (the example's own
time_budget_s otherwise; the examples take about 5-10 minutes each on 2 free cores). Budgets are
wall-clock, so on a loaded machine a budget buys fewer steps: the table states the steps reached.

    bench/selfpred_compare.py --ssld build/daemon/ssld                         # the examples as they are
    bench/selfpred_compare.py --ssld build/daemon/ssld --budget 150 --methods vae,rotation
    bench/selfpred_compare.py --ssld build/daemon/ssld --save-samples docs/img/vae-samples.png
    bench/run selfpred_compare                                                 # via meson's benchmarks

Every row's command is printed; the last line is one JSON object with every figure.
"""

import argparse
import gzip
import json
import os
import re
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
FMNIST = os.environ.get("SSLD_FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist")

METHODS = ["autoencoder", "denoising_autoencoder", "vae", "mae", "rotation"]
FRACTIONS = [0.01, 0.1, 1.0]


def example_path(method):
    return os.path.join(ROOT, "examples", "%s-fashion-mnist.json" % method.replace("_", "-"))


def run(ssld, spec, out_dir):
    """ssld run SPEC --out DIR; returns results.json plus the command, wall time and log losses."""
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, "spec.json")
    with open(path, "w") as f:
        json.dump(spec, f, indent=2)
    cmd = [ssld, "run", path, "--out", out_dir]
    load = os.getloadavg()[0]
    t0 = time.time()
    log_path = os.path.join(out_dir, "log.txt")
    with open(log_path, "w") as log:
        rc = subprocess.call(cmd, stdout=log, stderr=subprocess.STDOUT)
    wall = time.time() - t0
    if rc != 0:
        sys.exit("%s failed (exit %d); see %s" % (" ".join(cmd), rc, log_path))
    with open(os.path.join(out_dir, "results.json")) as f:
        res = json.load(f)
    # "pretrain: step 12/4000 loss 0.0421 eta 01:10" lines: the loss curve as the log saw it.
    losses = []
    with open(log_path) as f:
        for line in f:
            m = re.match(r"pretrain: step (\d+)/\d+ loss ([-0-9.eE+naif]+)", line)
            if m:
                losses.append((int(m.group(1)), float(m.group(2))))
    res["_command"] = " ".join(cmd)
    res["_wall_s"] = round(wall, 1)
    res["_load_start"] = round(load, 2)
    res["_load_end"] = round(os.getloadavg()[0], 2)
    res["_first_logged_loss"] = losses[0][1] if losses else None
    res["_first_logged_step"] = losses[0][0] if losses else None
    return res


def acc(res, fraction, protocol="linear_probe"):
    for e in res.get("evaluations", []):
        if e["protocol"] == protocol and abs(e.get("label_fraction", -1) - fraction) < 1e-9:
            return e["test_accuracy"]
    return None


# ---- PCA -----------------------------------------------------------------------------------------

def idx_images(path):
    import numpy as np
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic, n, h, w = (int.from_bytes(data[i:i + 4], "big") for i in range(0, 16, 4))
    if magic != 0x803:
        sys.exit("%s: bad magic 0x%08x, expected 0x00000803" % (path, magic))
    return np.frombuffer(data, dtype=np.uint8, offset=16).reshape(n, h * w).astype(np.float64) / 255.0


def pca_mse(k):
    """Test MSE per pixel of the rank-k PCA reconstruction fitted on the training images (pixels in
    [0,1], the autoencoder's targets), raw and clipped to [0,1]."""
    import numpy as np
    t0 = time.time()
    tr = idx_images(os.path.join(FMNIST, "train-images-idx3-ubyte.gz"))
    te = idx_images(os.path.join(FMNIST, "t10k-images-idx3-ubyte.gz"))
    mean = tr.mean(axis=0)
    xc = tr - mean
    cov = xc.T @ xc / len(tr)
    vals, vecs = np.linalg.eigh(cov)
    v = vecs[:, np.argsort(vals)[::-1][:k]]
    rec = (te - mean) @ v @ v.T + mean
    mse = float(((rec - te) ** 2).mean())
    mse_clip = float(((np.clip(rec, 0, 1) - te) ** 2).mean())
    explained = float(vals[np.argsort(vals)[::-1][:k]].sum() / vals.sum())
    return {"components": k, "test_mse": mse, "test_mse_clipped": mse_clip,
            "explained_variance": explained, "seconds": round(time.time() - t0, 1)}


# ---- main ----------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ssld", default=os.path.join(ROOT, "build", "daemon", "ssld"))
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--budget", type=float, default=0,
                    help="pretraining seconds per method (0 = the example's time_budget_s)")
    ap.add_argument("--out", default=os.path.join(os.environ.get("TMPDIR", "/tmp"), "ssld-selfpred-compare"))
    ap.add_argument("--seed", type=int, default=0, help="0 = the examples' seed")
    ap.add_argument("--no-random-init", action="store_true", help="skip the random-init probes")
    ap.add_argument("--save-samples", metavar="PNG",
                    help="copy the VAE's fresh sample grid (ssld generate) here")
    a = ap.parse_args()
    methods = [m for m in a.methods.split(",") if m]
    for m in methods:
        if m not in METHODS:
            sys.exit("unknown method %r; choose from %s" % (m, ", ".join(METHODS)))
    if not os.access(a.ssld, os.X_OK):
        sys.exit("%s: not an executable ssld (build it, or give --ssld)" % a.ssld)

    t_all = time.time()
    rows, randoms, figures = [], {}, {}
    for m in methods:
        with open(example_path(m)) as f:
            spec = json.load(f)
        spec["name"] = "selfpred-" + m.replace("_", "-")
        if a.budget > 0:
            spec["pretrain"]["time_budget_s"] = a.budget
        if a.seed:
            spec["seed"] = a.seed
        print("== %s: pretraining (budget %g s) ..." % (m, spec["pretrain"].get("time_budget_s", 0)),
              flush=True)
        res = run(a.ssld, spec, os.path.join(a.out, m))
        row = {"method": m, "res": res, "model": spec["model"]}
        # The random-init twin: same model, data, seed and evaluations, no pretraining.
        key = json.dumps(spec["model"], sort_keys=True)
        if not a.no_random_init and key not in randoms:
            rspec = {"name": "selfpred-random-" + m.replace("_", "-"), "method": "none",
                     "dataset": spec["dataset"], "model": spec["model"],
                     "evaluations": spec["evaluations"], "seed": spec["seed"],
                     "threads": spec.get("threads", 2)}
            print("== %s: random-init probe of the same model ..." % m, flush=True)
            randoms[key] = run(a.ssld, rspec, os.path.join(a.out, "random-" + m))
        row["random"] = randoms.get(key)
        if m == "vae":
            # A fresh grid from the finished checkpoint, as POST /v1/jobs/{id}/generate does.
            d = os.path.join(a.out, m)
            g = subprocess.run([a.ssld, "generate", d, "--n", "64", "--seed", "12345", "--json"],
                               capture_output=True, text=True)
            if g.returncode != 0:
                sys.exit("ssld generate %s failed: %s" % (d, g.stderr.strip()))
            art = json.loads(g.stdout)["artifact"]
            row["generate"] = {"command": "%s generate %s --n 64 --seed 12345" % (a.ssld, d),
                               "artifact": os.path.join(d, art)}
            if a.save_samples:
                os.makedirs(os.path.dirname(os.path.abspath(a.save_samples)), exist_ok=True)
                shutil.copyfile(os.path.join(d, art), a.save_samples)
                row["generate"]["saved"] = a.save_samples
        rows.append(row)

    pca = None
    if "autoencoder" in methods:
        print("== PCA (32 components, numpy) ...", flush=True)
        pca = pca_mse(32)

    # ---- the table ----
    def pct(x):
        return "%.2f" % (100 * x) if x is not None else "-"

    print()
    print("Self-predictive methods on Fashion-MNIST: pretext figure, linear probe (test accuracy %)")
    print("at 1/10/100% of the training labels, and the same model with random weights probed the same way")
    print()
    hdr = "%-22s %-44s %7s %7s %7s   %7s %7s %7s %7s %8s" % (
        "method", "pretext", "LP 1%", "LP 10%", "LP 100%", "rnd 1%", "rnd 10%", "rnd 100%",
        "steps", "pretr s")
    print(hdr)
    print("-" * len(hdr))
    out_rows = []
    for row in rows:
        m, res, rnd = row["method"], row["res"], row["random"]
        p = res.get("pretext", {})
        first = res.get("_first_logged_loss")
        if m == "autoencoder":
            text = "test MSE %.5f (PCA-32 %.5f)" % (p.get("test_recon_mse", float("nan")),
                                                   pca["test_mse"] if pca else float("nan"))
            ok = pca is not None and p.get("test_recon_mse", 1) < pca["test_mse"]
        elif m == "denoising_autoencoder":
            text = "MSE(out,clean) %.5f vs noisy %.5f" % (p.get("test_denoise_mse", float("nan")),
                                                         p.get("test_noisy_mse", float("nan")))
            ok = p.get("test_denoise_mse", 1) <= p.get("test_noisy_mse", 0) / 2
        elif m == "vae":
            # The first logged training loss is (nearly) the bound of the barely trained model.
            text = "test -ELBO %.1f nats (first logged loss %.1f)" % (
                p.get("test_neg_elbo_nats", float("nan")), first or float("nan"))
            ok = first is not None and p.get("test_neg_elbo_nats", first) < first
        elif m == "mae":
            text = "masked loss %.4f (first logged %.4f)" % (p.get("test_masked_loss", float("nan")),
                                                            first or float("nan"))
            ok = first is not None and p.get("test_masked_loss", first) < first
        else:
            text = "rotation accuracy %s%%" % pct(p.get("test_rotation_accuracy"))
            ok = p.get("test_rotation_accuracy", 0) >= 0.90
        lp = [acc(res, f) for f in FRACTIONS]
        rp = [acc(rnd, f) for f in FRACTIONS] if rnd else [None] * 3
        beats = all(x is not None and y is not None and x > y for x, y in ((lp[0], rp[0]), (lp[2], rp[2])))
        print("%-22s %-44s %7s %7s %7s   %7s %7s %7s %7d %8.0f" % (
            m, text, pct(lp[0]), pct(lp[1]), pct(lp[2]), pct(rp[0]), pct(rp[1]), pct(rp[2]),
            p.get("steps", 0), p.get("seconds", 0)))
        o = {"method": m, "pretext": p, "pretext_target_met": bool(ok),
             "linear_probe": dict(zip(["0.01", "0.1", "1.0"], lp)),
             "random_init": dict(zip(["0.01", "0.1", "1.0"], rp)),
             "beats_random_at_1_and_100": bool(beats),
             "first_logged_loss": first, "command": res["_command"],
             "random_command": rnd["_command"] if rnd else None,
             "wall_s": res["_wall_s"], "load": [res["_load_start"], res["_load_end"]]}
        if "generate" in row:
            o["generate"] = row["generate"]
        out_rows.append(o)
    print()
    if pca:
        print("PCA-32 on the same data: test MSE %.5f (clipped to [0,1]: %.5f), %.1f%% of the variance"
              % (pca["test_mse"], pca["test_mse_clipped"], 100 * pca["explained_variance"]))
    for o in out_rows:
        print("%-22s targets %s, beats random init at 1%% and 100%%: %s" % (
            o["method"], "met" if o["pretext_target_met"] else "NOT met",
            "yes" if o["beats_random_at_1_and_100"] else "NO"))
    for o in out_rows:
        print("  %s: %s" % (o["method"], o["command"]))
        if o.get("random_command"):
            print("  %s (random init): %s" % (o["method"], o["random_command"]))
        if o.get("generate"):
            print("  vae samples: %s -> %s" % (o["generate"]["command"], o["generate"]["artifact"]))
    figures = {"bench": "selfpred_compare", "budget_s": a.budget or None, "pca": pca,
               "rows": out_rows, "total_s": round(time.time() - t_all, 1),
               "loadavg_end": round(os.getloadavg()[0], 2)}
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
