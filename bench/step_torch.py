#!/usr/bin/env python3
"""step_torch - the PyTorch peer of bench/step.c: the same training step (forward, cross-entropy
on 128 random classes, backward, AdamW) of the same networks (built by python/ssld_torch.py from
the same configs) at the same batch on the same number of CPU threads. Prints ms/step, images/s
and GFLOP/s (the same sgemm FLOP count as bench/step.c: matmul/conv FLOPs, forward and backward,
no input gradient for the first layer). Last line: one JSON object."""

import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))

import torch  # noqa: E402
import ssld_torch  # noqa: E402

CONFIGS = {
    "mlp": {"kind": "mlp", "hidden": [1024, 1024], "out_dim": 128, "batchnorm": True},
    "cnn": {"kind": "cnn", "channels": [32, 64, 128], "batchnorm": True, "out_dim": 0},
}


def gemm_gflop(model, batch):
    """sgemm GFLOP of one training step, counted like bench/step.c's interposed cblas_sgemm."""
    flops, first = 0.0, True
    h = w = 28
    for m in model.modules():
        if isinstance(m, torch.nn.Linear):
            f = 2.0 * batch * m.in_features * m.out_features
        elif isinstance(m, torch.nn.Conv2d):
            h = (h + 2 * m.padding[0] - m.kernel_size[0]) // m.stride[0] + 1
            w = (w + 2 * m.padding[1] - m.kernel_size[1]) // m.stride[1] + 1
            f = 2.0 * batch * h * w * m.out_channels * m.in_channels * m.kernel_size[0] ** 2
        else:
            continue
        flops += f * (2 if first else 3)      # forward + dW (+ dX after the first layer)
        first = False
    return flops * 1e-9


def bench(name, batch, steps):
    torch.manual_seed(1)
    model = ssld_torch.build_encoder(CONFIGS[name], (1, 28, 28))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.05)
    x = torch.rand(batch, 1, 28, 28)
    y = torch.randint(0, 128, (batch,))
    times = []
    for s in range(2 + steps):
        t0 = time.perf_counter()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=False)
        loss.backward()
        opt.step()
        if s >= 2:
            times.append(time.perf_counter() - t0)
    step = statistics.median(times)
    g = gemm_gflop(model, batch)
    return {"ms_per_step": 1e3 * step, "images_per_s": batch / step, "gflop_per_step": g,
            "gflops": g / step}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--only", choices=sorted(CONFIGS))
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    names = [a.only] if a.only else ["mlp", "cnn"]
    res = {n: bench(n, a.batch, a.steps if n == "mlp" else min(a.steps, 5)) for n in names}
    print(f"PyTorch {torch.__version__} step: batch {a.batch}, {a.threads} thread(s)")
    print(f"{'model':5} {'ms/step':>9} {'img/s':>9} {'GFLOP/step':>10} {'GFLOP/s':>9}")
    for n, r in res.items():
        print(f"{n:5} {r['ms_per_step']:9.2f} {r['images_per_s']:9.0f} {r['gflop_per_step']:10.3f} "
              f"{r['gflops']:9.1f}")
    out = {"bench": "step_torch", "torch": torch.__version__, "batch": a.batch,
           "threads": a.threads}
    out.update({n: {k: round(v, 4) for k, v in r.items()} for n, r in res.items()})
    print(json.dumps(out))


if __name__ == "__main__":
    main()
