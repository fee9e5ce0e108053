#!/usr/bin/env python3
"""lm_bench - the language-model benchmarks, two modes:

  lm_bench.py --exe build/bench/lm_bench            (benchmark "lm")
      Step throughput of the char Transformer (4 layers, d_model 128, 4 heads, context 128,
      batch 32) in ssld (bench/lm_bench.c, the autoregressive_lm method's own code) beside the
      same model, batch and thread count in PyTorch (python/ssld_torch.py's TransformerEncoder,
      LM head tied to the embedding, AdamW), plus ssld's forward-only evaluation throughput and
      the time to sample 500 bytes with the KV cache.

  lm_bench.py --quality --ssld build/daemon/ssld     (benchmark "lm_quality", ~30 minutes)
      Runs examples/autoregressive-lm-fortunes.json and reports its test bits per byte beside what
      xz -9e achieves on the same held-out bytes when, like the model, it has seen the training
      text: (|xz(train+test)| - |xz(train)|) * 8 / |test|, and beside xz on the test text alone;
      the wall time of the run; a sample. Then examples/masked-lm-fortunes.json: masked-byte
      accuracy on held-out records beside the unigram baseline, and the linear probe of its
      encoder on the fortune-file classification at 1/10/100% labels beside the same Transformer
      trained from scratch on the same labels and a bag-of-bytes logistic regression.

--ar-budget S / --mlm-budget S run a copy of the example with pretrain.time_budget_s = S (for a
shorter measurement than the examples' own budgets; the figures then say so).

Each mode prints a readable table and, as its last line, one JSON object with its figures.
Timings are only meaningful on an otherwise idle machine."""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.join(ROOT, "python"))


# ---- throughput ------------------------------------------------------------------------------------

def torch_step(threads, steps, dim, depth, heads, context, batch):
    import torch
    import torch.nn.functional as F
    import ssld_torch

    torch.set_num_threads(threads)
    torch.manual_seed(1)
    cfg = {"kind": "transformer", "dim": dim, "depth": depth, "heads": heads, "mlp_ratio": 4,
           "context": context, "vocab": 256, "causal": True, "pool": "mean", "out_dim": 0}
    model = ssld_torch.build_encoder(cfg, (1, 1, context))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    text = b""
    for name in ("art", "computers", "cookie", "definitions", "people"):
        with open(os.path.join("/usr/share/games/fortunes", name), "rb") as f:
            text += f.read()
    data = torch.tensor(list(text), dtype=torch.long)
    g = torch.Generator().manual_seed(1)
    times = []
    for s in range(steps + 3):
        t0 = time.perf_counter()
        starts = torch.randint(0, len(data) - context - 1, (batch,), generator=g)
        x = torch.stack([data[i:i + context] for i in starts])
        y = torch.stack([data[i + 1:i + context + 1] for i in starts])
        h = model.forward_tokens(x)                       # (B,T,D)
        logits = h @ model.wte.weight.t()                 # tied head (B,T,256)
        loss = F.cross_entropy(logits.reshape(-1, 256), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if s >= 3:
            times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    return {"ms_per_step": med * 1e3, "tokens_per_s": batch * context / med,
            "torch": torch.__version__}


def throughput(args):
    shape = ["--dim", "128", "--depth", "4", "--heads", "4", "--context", "128", "--batch", "32"]
    out = subprocess.run([args.exe, "--threads", str(args.threads), "--steps", str(args.steps)]
                         + shape, check=True, capture_output=True, text=True).stdout
    print(out, end="")
    ours = json.loads(out.strip().splitlines()[-1])
    peer = torch_step(args.threads, args.steps, 128, 4, 4, 128, 32)
    print(f"  PyTorch {peer['torch']:<10} {peer['ms_per_step']:8.1f} ms/step            "
          f"{peer['tokens_per_s']:8.0f} tokens/s   (same model, batch, {args.threads} threads)")
    ratio = ours["tokens_per_s"] / peer["tokens_per_s"]
    print(f"  ssld / PyTorch     {ratio:8.2f}x tokens/s")
    print(json.dumps({"bench": "lm", "threads": args.threads,
                      "ssld_tokens_per_s": round(ours["tokens_per_s"]),
                      "torch_tokens_per_s": round(peer["tokens_per_s"]),
                      "ssld_ms_per_step": round(ours["ms_per_step"], 2),
                      "torch_ms_per_step": round(peer["ms_per_step"], 2),
                      "ratio": round(ratio, 3),
                      "eval_tokens_per_s": ours["eval_tokens_per_s"],
                      "sample_500_bytes_s": ours["sample_500_bytes_s"]}))


# ---- quality ---------------------------------------------------------------------------------------

def xz_size(data):
    return len(subprocess.run(["xz", "-9e", "-c", "--format=xz"], input=data, check=True,
                              capture_output=True).stdout)


def text_split(spec):
    """The byte stream and the held-out tail exactly as engine/data/text.c splits it."""
    import struct
    data = b""
    for path in spec["dataset"]["files"]:
        with open(path, "rb") as f:
            data += f.read()
    frac = spec["dataset"].get("test_fraction", 0.1)
    frac32 = struct.unpack("f", struct.pack("f", frac))[0]    # the C side holds it as a float
    n_test = int(len(data) * frac32)
    return data[:len(data) - n_test], data[len(data) - n_test:]


def budgeted(spec_path, budget, work):
    """spec_path itself, or (budget > 0) a copy in work with pretrain.time_budget_s = budget."""
    if not budget:
        return spec_path
    with open(spec_path) as f:
        spec = json.load(f)
    spec["pretrain"]["time_budget_s"] = budget
    path = os.path.join(work, os.path.basename(spec_path))
    with open(path, "w") as f:
        json.dump(spec, f)
    return path


def run_job(ssld, spec_path, out_dir):
    t0 = time.monotonic()
    subprocess.run([ssld, "run", spec_path, "--out", out_dir, "--quiet"], check=True,
                   stdout=subprocess.DEVNULL)
    wall = time.monotonic() - t0
    with open(os.path.join(out_dir, "results.json")) as f:
        return json.load(f), wall


def quality_ar(args, work):
    spec_path = os.path.join(ROOT, "examples", "autoregressive-lm-fortunes.json")
    with open(spec_path) as f:
        spec = json.load(f)
    train, test = text_split(spec)
    t0 = time.monotonic()
    base = xz_size(train)
    both = xz_size(train + test)
    alone = xz_size(test)
    xz_s = time.monotonic() - t0
    xz_seen = (both - base) * 8 / len(test)
    xz_alone = alone * 8 / len(test)
    out = os.path.join(work, "ar")
    res, wall = run_job(args.ssld, budgeted(spec_path, args.ar_budget, work), out)
    pre = res["pretext"]
    bpb = pre["test_bits_per_byte"]
    sample = subprocess.run([args.ssld, "generate", out, "--prompt", "Q: ", "--max-tokens", "400",
                             "--temperature", "0.8", "--top-k", "40", "--seed", "1"],
                            check=True, capture_output=True, text=True)
    print(f"autoregressive_lm ({os.path.relpath(spec_path, ROOT)}): {len(train)} train bytes, "
          f"{len(test)} held-out bytes")
    print(f"  model        {bpb:6.3f} bits/byte on the held-out text   "
          f"({pre['steps']} steps, {pre['seconds']:.0f} s pretraining, {wall:.0f} s whole job)")
    print(f"  xz -9e       {xz_seen:6.3f} bits/byte having seen the training text   "
          f"({xz_alone:.3f} on the test text alone; {xz_s:.0f} s)")
    print(f"  {'beats' if bpb < xz_seen else 'does NOT beat'} xz by {xz_seen - bpb:+.3f} bits/byte")
    print("  sample (T 0.8, top-k 40):")
    for line in (sample.stdout.rstrip("\n")).splitlines():
        print("    | " + line)
    print("  " + sample.stderr.strip())
    return {"ar_test_bits_per_byte": round(bpb, 4), "ar_time_budget_s": args.ar_budget or None, "xz_seen_bits_per_byte": round(xz_seen, 4),
            "xz_alone_bits_per_byte": round(xz_alone, 4), "ar_job_seconds": round(wall, 1),
            "ar_pretrain_seconds": pre["seconds"], "ar_steps": pre["steps"]}


def quality_mlm(args, work):
    spec_path = os.path.join(ROOT, "examples", "masked-lm-fortunes.json")
    out = os.path.join(work, "mlm")
    res, wall = run_job(args.ssld, budgeted(spec_path, args.mlm_budget, work), out)
    pre = res["pretext"]
    print(f"masked_lm ({os.path.relpath(spec_path, ROOT)}): {pre['steps']} steps, "
          f"{pre['seconds']:.0f} s pretraining, {wall:.0f} s whole job")
    print(f"  masked-byte accuracy on held-out records {pre['test_masked_accuracy']:.3f}   "
          f"(unigram baseline {pre['unigram_accuracy']:.3f}; loss {pre['test_masked_loss']:.3f} vs "
          f"{pre['unigram_loss']:.3f} nats)")
    table = {}
    for e in res["evaluations"]:
        table.setdefault(e["label_fraction"], {})[e["protocol"]] = e
    print(f"  fortune-file classification ({len(table)} label fractions), test accuracy:")
    print(f"    {'labels':>8} {'fraction':>8}  {'MLM probe':>9}  {'scratch':>9}  {'bag of bytes':>12}")
    figures = {}
    for frac in sorted(table):
        row = table[frac]
        probe = row.get("linear_probe", {}).get("test_accuracy")
        sup = row.get("supervised", {}).get("test_accuracy")
        bob = pre.get(f"bag_of_bytes_probe@{frac:g}")
        n = next(iter(row.values()))["labels"]
        fmt = lambda v: f"{v:9.3f}" if v is not None else f"{'-':>9}"
        print(f"    {n:8d} {frac:8g}  {fmt(probe)}  {fmt(sup)}  {fmt(bob):>12}")
        figures[f"{frac:g}"] = {"probe": probe, "supervised": sup, "bag_of_bytes": bob,
                                "labels": n}
    return {"mlm_test_masked_accuracy": pre["test_masked_accuracy"],
            "mlm_unigram_accuracy": pre["unigram_accuracy"], "mlm_job_seconds": round(wall, 1),
            "mlm_classification": figures}


def quality(args):
    work = tempfile.mkdtemp(prefix="ssld-lm-bench-")
    figures = {"bench": "lm_quality"}
    try:
        if not args.skip_ar:
            figures.update(quality_ar(args, work))
        if not args.skip_mlm:
            figures.update(quality_mlm(args, work))
    finally:
        if args.keep:
            print(f"job directories kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(figures))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--exe", help="build/bench/lm_bench (throughput mode)")
    ap.add_argument("--ssld", help="build/daemon/ssld (quality mode)")
    ap.add_argument("--quality", action="store_true", help="run the two example jobs")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--skip-ar", action="store_true")
    ap.add_argument("--skip-mlm", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep the job directories")
    ap.add_argument("--ar-budget", type=float, default=0,
                    help="override the AR example's pretrain.time_budget_s (seconds; 0 = as written)")
    ap.add_argument("--mlm-budget", type=float, default=0,
                    help="override the MLM example's pretrain.time_budget_s (seconds; 0 = as written)")
    args = ap.parse_args()
    if args.quality:
        if not args.ssld:
            ap.error("--quality needs --ssld")
        quality(args)
    else:
        if not args.exe:
            ap.error("throughput mode needs --exe")
        throughput(args)


if __name__ == "__main__":
    main()
