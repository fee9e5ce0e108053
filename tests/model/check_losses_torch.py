#!/usr/bin/python3
"""check_losses_torch.py - recompute the engine's loss cases (a JSON file written by
test_loss_torch) with the usual PyTorch formulations, in float64, and compare loss values and
input gradients. Exit 0 ok, 1 mismatch, 77 torch missing."""
import json
import sys

try:
    import torch
    import torch.nn.functional as F
except ImportError as e:
    print(f"SKIP: torch is not installed ({e})")
    sys.exit(77)

# The engine computes in float32, the reference here in float64 from the same float32 inputs, so
# the difference is the engine's rounding (docs/testing.md). Its longest path is InfoNCE at
# temperature 0.07: logits |q.k| / 0.07 <= ~18 from 8-term dot products carry k eps |logit| ~ 2e-5
# absolute error (k ~ 10 roundings), which the softmax passes on as the same relative error to
# every probability, hence to the loss and each gradient. RTOL is ten times that; ATOL (x10 for
# gradients) covers elements that cancel to near zero, where only the absolute error is bounded.
RTOL, ATOL = 2e-4, 2e-6


def reference(kind, opts, t):
    if kind == "mse":
        return F.mse_loss(t["pred"], t["target"])
    if kind == "masked_mse":
        m = torch.tensor(opts["mask"], dtype=torch.bool)
        per_row = ((t["pred"] - t["target"]) ** 2).mean(-1).reshape(-1)
        return per_row[m].mean()
    if kind == "bce_logits":
        return F.binary_cross_entropy_with_logits(t["logits"], t["target"])
    if kind == "cross_entropy":
        x = t["logits"]
        return F.cross_entropy(x.reshape(-1, x.shape[-1]), torch.tensor(opts["labels"]),
                               ignore_index=-1, label_smoothing=opts["smoothing"])
    if kind == "nt_xent":  # SimCLR: rows i and i+N are positives, self-similarity excluded
        z = F.normalize(t["z"], dim=1)
        n = z.shape[0] // 2
        sim = z @ z.T / opts["temperature"]
        sim = sim.masked_fill(torch.eye(2 * n, dtype=torch.bool), float("-inf"))
        target = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)])
        return F.cross_entropy(sim, target)
    if kind == "infonce_moco":  # MoCo: positive logit first, then the queue of negatives
        q, k, neg = t["q"], t["k"], t["neg"]
        logits = torch.cat([(q * k).sum(1, keepdim=True), q @ neg.T], 1) / opts["temperature"]
        return F.cross_entropy(logits, torch.zeros(q.shape[0], dtype=torch.long))
    if kind == "infonce_clip":  # one direction of CLIP, learnable logit scale
        logits = t["scale"] * t["q"] @ t["k"].T
        return F.cross_entropy(logits, torch.arange(t["q"].shape[0]))
    if kind == "kl_gaussian":
        mu, lv = t["mu"], t["logvar"]
        return (-0.5 * (1 + lv - mu ** 2 - lv.exp())).sum(1).mean()
    if kind == "cosine_sim":
        return (F.cosine_similarity(t["a"], t["b"], dim=-1, eps=1e-8) * t["w"]).sum()
    raise ValueError(kind)


def main():
    cases = json.load(open(sys.argv[1]))
    failures = 0
    for c in cases:
        t = {}
        for name, v in c["tensors"].items():
            x = torch.tensor(v["data"], dtype=torch.float64).reshape(v["shape"])
            x.requires_grad_("grad" in v)
            t[name] = x
        loss = reference(c["kind"], c["opts"], t)
        loss.backward()
        worst = abs(loss.item() - c["loss"]) / max(abs(loss.item()), 1e-3)
        ok = abs(loss.item() - c["loss"]) <= RTOL * abs(loss.item()) + ATOL
        for name, v in c["tensors"].items():
            if "grad" not in v:
                continue
            g = torch.tensor(v["grad"], dtype=torch.float64).reshape(v["shape"])
            ref = t[name].grad
            if not torch.allclose(g, ref, rtol=RTOL, atol=ATOL * 10):
                ok = False
                d = (g - ref).abs().max().item()
                print(f"  {c['kind']} {c['opts']}: grad of {name} differs by up to {d:.3g}")
        print(f"{'ok' if ok else 'FAIL':4} {c['kind']:14} {json.dumps(c['opts'])[:48]:48} "
              f"engine {c['loss']:.7g} torch {loss.item():.7g} (rel {worst:.1e})")
        failures += not ok
    if failures:
        print(f"{failures} case(s) differ from PyTorch")
        return 1
    print(f"all {len(cases)} loss cases match PyTorch {torch.__version__}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
