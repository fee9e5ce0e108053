#!/usr/bin/env python3
"""embed_map.py - ssld's embedding map beside scikit-learn's t-SNE on the same embeddings.

    bench/run embed_map                      # a short SimCLR job on Fashion-MNIST, 2000 points
    bench/run embed_map --points 5000        # a larger map (the job's test slice grows with it)
    bench/run embed_map --run runs/simclr    # a finished job's directory (or downloaded artifacts)

A job with "embedding_map" writes embedding_map.json (the map) and embedding_map_features.npy (the
embeddings it mapped, in map order). This script runs scikit-learn's TSNE (Barnes-Hut, PCA init,
learning rate "auto", the same perplexity and iterations) on exactly those embeddings and reports
the trustworthiness (k = 10, sklearn.manifold.trustworthiness) of both maps, the figure ssld
computed itself, and the time each t-SNE took. Needs Debian's python3-sklearn.

Not here: a pass/fail verdict (tests/engine/test_tsne.c checks quality on synthetic clusters).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_job(ssld, points, seed, threads, out):
    with open(os.path.join(ROOT, "examples", "hello.json")) as f:
        spec = json.load(f)
    spec["name"] = "embed-map-bench"
    spec["dataset"]["limit_test"] = max(points, 2000)
    spec["evaluations"] = []
    spec["seed"] = seed
    spec["threads"] = threads
    spec["embedding_map"] = {"points": points}
    path = os.path.join(out, "job.json")
    with open(path, "w") as f:
        json.dump(spec, f)
    subprocess.run([ssld, "run", path, "--out", os.path.join(out, "run"), "--quiet"], check=True)
    return os.path.join(out, "run")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ssld", default=os.path.join(ROOT, "build", "daemon", "ssld"))
    ap.add_argument("--run", help="a directory holding embedding_map.json and embedding_map_features.npy")
    ap.add_argument("--points", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    try:
        import numpy as np
        from sklearn.manifold import TSNE, trustworthiness
    except ImportError as e:
        print(f"embed_map: needs numpy and scikit-learn (apt-get install python3-sklearn): {e}")
        return 77

    tmp = None
    run = a.run
    if not run:
        tmp = tempfile.TemporaryDirectory(prefix="ssld-embed-map-")
        t0 = time.time()
        run = run_job(a.ssld, a.points, a.seed, a.threads, tmp.name)
        print(f"ssld run (short SimCLR job + map): {time.time() - t0:.1f} s")
    with open(os.path.join(run, "embedding_map.json")) as f:
        m = json.load(f)
    x = np.load(os.path.join(run, m.get("features", "embedding_map_features.npy")))
    y_ssld = np.c_[m["x"], m["y"]]
    n, d = x.shape
    assert n == len(m["x"]), "features and map disagree on the number of points"

    t0 = time.time()
    kw = dict(n_components=2, perplexity=m["perplexity"], learning_rate="auto", init="pca",
              random_state=a.seed, method="barnes_hut", n_jobs=a.threads)
    try:
        tsne = TSNE(n_iter=m["iterations"], **kw)
    except TypeError:   # scikit-learn >= 1.5 renamed it
        tsne = TSNE(max_iter=m["iterations"], **kw)
    y_sk = tsne.fit_transform(x)
    t_sk = time.time() - t0

    k = 10
    tw_ssld = trustworthiness(x, y_ssld, n_neighbors=k)
    tw_sk = trustworthiness(x, y_sk, n_neighbors=k)
    rows = [
        ("ssld (exact repulsion)", tw_ssld, m.get("tsne_seconds")),
        ("scikit-learn Barnes-Hut", tw_sk, t_sk),
    ]
    print(f"\n{n} points, {d}-d embeddings, perplexity {m['perplexity']}, {m['iterations']} iterations, "
          f"{a.threads} threads")
    print(f"{'t-SNE':<26}{'trustworthiness (k=10)':>24}{'seconds':>10}")
    for name, tw, s in rows:
        print(f"{name:<26}{tw:>24.4f}{(s if s is not None else float('nan')):>10.1f}")
    print(f"ssld's own trustworthiness figure: {m.get('trustworthiness')}; difference to scikit-learn "
          f"{tw_ssld - tw_sk:+.4f}")
    print(json.dumps({"bench": "embed_map", "points": n, "dim": d, "perplexity": m["perplexity"],
                      "iterations": m["iterations"], "threads": a.threads,
                      "trustworthiness_ssld": round(tw_ssld, 4), "trustworthiness_sklearn": round(tw_sk, 4),
                      "trustworthiness_ssld_own": m.get("trustworthiness"),
                      "seconds_ssld": m.get("tsne_seconds"), "seconds_sklearn": round(t_sk, 2)}))
    if tmp:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
