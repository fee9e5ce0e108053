#!/usr/bin/python3
"""compare_tta.py - time to accuracy for bench/compare: how long the SimCLR example's recipe
(examples/simclr-fashion-mnist.json) takes, in ssld and in PyTorch on the same threads, to
pretrain an encoder whose linear probe on 10% of the Fashion-MNIST labels reaches a stated test
accuracy.

The recipe: SimCLR (NT-Xent, temperature 0.5, projection 128-512(BN+ReLU)-128), the {32,64,128}
CNN with BatchNorm, the `simclr` augmentations (random resized crop scale 0.2-1 ratio 3/4-4/3
bilinear, horizontal flip 0.5, brightness/contrast jitter 0.4 with p 0.8, gaussian blur sigma
0.1-1 with p 0.5, erase 2-20% of the area with p 0.25, pixels clamped to [0,1]), batch 256,
AdamW lr 2e-3, weight decay 1e-6 on weights only, 1 warm-up epoch then cosine over the
example's 30 epochs, seed 1. The budget is reduced: pretraining stops after each rung of
--steps (default 150,300), i.e. the first steps of the example's own trajectory, not a shorter
schedule. ssld runs the recipe with `ssld run` (one run per rung, from scratch, max_steps set);
PyTorch runs it once (this file, torch ops for the augmentations, on the main thread) and saves
the encoder at each rung. Every encoder - ssld's and PyTorch's - is then probed by the same
program, `ssld run` of a `"method": "none"` job with `init_from` the encoder's safetensors and a
linear_probe at 10% (the first 600 per class; L2 chosen on a validation slice, L-BFGS), so the
probe cannot differ between the two. The figure is the pretraining wall time (probe excluded) of
the first rung whose probe reaches --target; "not reached" otherwise.

The default target 0.81 sits above the random-init encoder's probe (0.781 at 10%, README) and
below what the README's 487-step SimCLR run reached (0.822).

    bench/compare_tta.py --ssld build/daemon/ssld --threads 2 --steps 150,300 --target 0.81
    bench/compare_tta.py --only torch --torch-setting blas1    # one side per lock hold

Prints a table, then one JSON object (last line). Not a test.
"""

import argparse
import gzip
import json
import math
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
FMNIST = "/usr/share/datasets/fashion-mnist"
EPOCH_STEPS = 60000 // 256          # drop_last batches per epoch (234)
EPOCHS = 30                         # the example's schedule length
TORCH_SETTINGS = {                  # as bench/compare's SETTINGS
    "default": {},
    "passive": {"OMP_WAIT_POLICY": "PASSIVE"},
    "passive+blas1": {"OMP_WAIT_POLICY": "PASSIVE", "OPENBLAS_NUM_THREADS": "1"},
    "blas1": {"OPENBLAS_NUM_THREADS": "1"},
}


def example_spec():
    with open(os.path.join(ROOT, "examples", "simclr-fashion-mnist.json")) as f:
        return json.load(f)


def run_ssld(ssld, spec, out_dir):
    """`ssld run` of spec in a fresh out_dir; returns (results, wall seconds)."""
    if os.path.exists(out_dir):
        shutil.rmtree(out_dir)   # ssld run would resume an earlier run's checkpoint
    os.makedirs(out_dir)
    path = os.path.join(out_dir, "spec.json")
    with open(path, "w") as f:
        json.dump(spec, f, indent=1)
    t0 = time.time()
    with open(os.path.join(out_dir, "log.txt"), "w") as log:
        rc = subprocess.call([ssld, "run", path, "--out", out_dir, "--quiet"], stdout=log,
                             stderr=subprocess.STDOUT)
    wall = time.time() - t0
    if rc != 0:
        sys.exit(f"compare_tta: ssld run {path} failed (exit {rc}); see {out_dir}/log.txt")
    with open(os.path.join(out_dir, "results.json")) as f:
        return json.load(f), wall


def probe_acc(res):
    for e in res.get("evaluations", []):
        if e["protocol"] == "linear_probe" and abs(e.get("label_fraction", 0) - 0.1) < 1e-9:
            return e["test_accuracy"]
    raise SystemExit("compare_tta: no linear_probe 0.1 in results")


PROBE = [{"protocol": "linear_probe", "label_fractions": [0.1]}]


def ssld_rung(a, steps, work):
    spec = example_spec()
    spec["name"] = f"tta-ssld-{steps}"
    spec["threads"] = a.threads
    spec["pretrain"]["max_steps"] = steps
    spec["pretrain"]["time_budget_s"] = 0
    spec["checkpoint_interval_s"] = 100000
    spec["evaluations"] = PROBE
    # The PyTorch twin below pools the last feature map globally; the example's pool_grid 2
    # (2x2 cells, 512 features) would give ssld a different network.
    spec["model"]["pool_grid"] = 1
    res, wall = run_ssld(a.ssld, spec, os.path.join(work, f"ssld-{steps}"))
    pre = res.get("pretext", {})
    return {"steps": int(pre.get("steps", steps)), "pretrain_s": float(pre.get("seconds", 0)),
            "probe10": probe_acc(res), "wall_s": round(wall, 1)}


def probe_encoder(a, weights, work, name):
    """The linear probe of an encoder safetensors file, by ssld (the same probe as ssld's runs)."""
    spec = example_spec()
    for k in ("params", "augment", "pretrain"):
        spec.pop(k, None)
    spec["name"] = name
    spec["method"] = "none"
    spec["threads"] = a.threads
    spec["init_from"] = weights
    spec["evaluations"] = PROBE
    res, _ = run_ssld(a.ssld, spec, os.path.join(work, name))
    return probe_acc(res)


# ------------------------------------------------------------------------------------------------
# PyTorch twin


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic, n = struct.unpack(">II", data[:8])
    if magic == 0x803:
        h, w = struct.unpack(">II", data[8:16])
        return data[16:], (n, h, w)
    return data[8:], (n,)


def write_safetensors(path, tensors):
    """{name: float32 tensor} as safetensors with ssld's two checksums in __metadata__ (see the
    top of engine/checkpoint.c: CRC-32 of the data section, and of a canonical header)."""
    header, blobs, off = {}, [], 0
    canon = b""
    for name, t in tensors.items():
        b = t.detach().contiguous().float().numpy().tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        canon += name.encode() + b"\0" + b"F32\0" + struct.pack("<Q", t.dim())
        canon += b"".join(struct.pack("<Q", d) for d in t.shape)
        canon += struct.pack("<QQ", off, off + len(b))
        blobs.append(b)
        off += len(b)
    data = b"".join(blobs)
    meta = {"ssld.data_crc32": "%08x" % zlib.crc32(data)}
    for k in sorted(meta):
        canon += k.encode() + b"\0" + meta[k].encode() + b"\0"
    meta["ssld.header_crc32"] = "%08x" % zlib.crc32(canon)
    header = {"__metadata__": meta, **header}
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        f.write(data)


def torch_run(a, rungs, work):
    import torch
    import torch.nn.functional as F
    from torch import nn
    sys.dont_write_bytecode = True   # no bench/__pycache__
    sys.path.insert(0, HERE)
    from compare_torch import mlp, nt_xent   # the step benchmark's twins of ssld's layers

    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    raw, (n, h, w) = read_idx(os.path.join(FMNIST, "train-images-idx3-ubyte.gz"))
    x_all = torch.frombuffer(bytearray(raw), dtype=torch.uint8).reshape(n, 1, h, w).float() / 255

    class Encoder(nn.Module):   # python/ssld_torch.py's CnnEncoder layout (names match ssld)
        def __init__(self):
            super().__init__()
            c = 1
            for i, (o, s) in enumerate(zip([32, 64, 128], [1, 2, 2])):
                self.add_module(f"conv{i}", nn.Conv2d(c, o, 3, stride=s, padding=1, bias=False))
                self.add_module(f"bn{i}", nn.BatchNorm2d(o, eps=1e-5, momentum=0.1))
                c = o

        def forward(self, x):
            for i in range(3):
                x = torch.relu(getattr(self, f"bn{i}")(getattr(self, f"conv{i}")(x)))
            return x.mean(dim=(2, 3))

    enc = Encoder()
    head = mlp([128, 512, 128])
    params = list(enc.named_parameters()) + list(head.named_parameters())
    decay = [p for nm, p in params if p.ndim > 1]
    no_decay = [p for nm, p in params if p.ndim <= 1]
    lr = 2e-3
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 1e-6},
                             {"params": no_decay, "weight_decay": 0.0}], lr=lr,
                            betas=(0.9, 0.999), eps=1e-8)
    total, warm = EPOCHS * EPOCH_STEPS, EPOCH_STEPS

    def lr_at(s):
        if s < warm:
            return lr * (s + 1) / warm
        return 0.5 * lr * (1 + math.cos(math.pi * (s - warm) / (total - warm)))

    B = 256
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, h), torch.linspace(-1, 1, w), indexing="ij")

    def augment(x):
        b = x.shape[0]
        # random resized crop: area scale in [0.2,1], log-uniform ratio in [3/4,4/3], bilinear
        scale = torch.empty(b).uniform_(0.2, 1.0)
        ratio = torch.exp(torch.empty(b).uniform_(math.log(3 / 4), math.log(4 / 3)))
        cw = torch.sqrt(scale * ratio).clamp(max=1.0)
        ch = torch.sqrt(scale / ratio).clamp(max=1.0)
        cx = (torch.rand(b) * 2 - 1) * (1 - cw)
        cy = (torch.rand(b) * 2 - 1) * (1 - ch)
        flip = torch.where(torch.rand(b) < 0.5, -1.0, 1.0)
        theta = torch.zeros(b, 2, 3)
        theta[:, 0, 0] = cw * flip
        theta[:, 0, 2] = cx
        theta[:, 1, 1] = ch
        theta[:, 1, 2] = cy
        grid = F.affine_grid(theta, (b, 1, h, w), align_corners=False)
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        # brightness and contrast 0.4 with p 0.8: (x*bf - m*bf)*cf + m*bf
        on = (torch.rand(b) < 0.8).float().view(b, 1, 1, 1)
        bf = torch.empty(b, 1, 1, 1).uniform_(0.6, 1.4)
        cf = torch.empty(b, 1, 1, 1).uniform_(0.6, 1.4)
        m = x.mean(dim=(1, 2, 3), keepdim=True) * bf
        x = on * ((x * bf - m) * cf + m) + (1 - on) * x
        # gaussian blur, sigma 0.1..1 with p 0.5 (radius 3, depthwise per image)
        sig = torch.empty(b).uniform_(0.1, 1.0)
        r = torch.arange(-3, 4).float()
        k = torch.exp(-(r.view(1, -1) ** 2) / (2 * sig.view(-1, 1) ** 2))
        k = k / k.sum(dim=1, keepdim=True)
        blur = torch.rand(b) < 0.5
        if blur.any():
            xb = x[blur].transpose(0, 1)                     # (1, nb, h, w)
            kb = k[blur]
            nb = kb.shape[0]
            xb = F.conv2d(F.pad(xb, (3, 3, 0, 0), mode="replicate"), kb.view(nb, 1, 1, 7),
                          groups=nb)
            xb = F.conv2d(F.pad(xb, (0, 0, 3, 3), mode="replicate"), kb.view(nb, 1, 7, 1),
                          groups=nb)
            x = x.clone()
            x[blur] = xb.transpose(0, 1)
        # erase 2-20% of the area, aspect 0.3..3.3, p 0.25
        er = torch.rand(b) < 0.25
        s = torch.empty(b).uniform_(0.02, 0.2)
        rr = torch.exp(torch.empty(b).uniform_(math.log(0.3), math.log(1 / 0.3)))
        eh = torch.sqrt(h * w * s / rr).round().clamp(1, h)
        ew = torch.sqrt(h * w * s * rr).round().clamp(1, w)
        y0 = (torch.rand(b) * (h - eh + 1)).floor()
        x0 = (torch.rand(b) * (w - ew + 1)).floor()
        iy = torch.arange(h).view(1, h, 1).float()
        ix = torch.arange(w).view(1, 1, w).float()
        box = ((iy >= y0.view(b, 1, 1)) & (iy < (y0 + eh).view(b, 1, 1)) &
               (ix >= x0.view(b, 1, 1)) & (ix < (x0 + ew).view(b, 1, 1)) & er.view(b, 1, 1))
        x = x.masked_fill(box.unsqueeze(1), 0.0)
        return x.clamp(0.0, 1.0)

    out = []
    g = torch.Generator().manual_seed(1)
    perm = torch.randperm(n, generator=g)
    enc.train()
    head.train()
    pretrain_s, step, rung = 0.0, 0, 0
    while rung < len(rungs):
        t0 = time.time()
        i = (step % EPOCH_STEPS) * B
        if i == 0 and step > 0:
            perm = torch.randperm(n, generator=g)
        xb = x_all[perm[i:i + B]]
        v = torch.cat([augment(xb), augment(xb)])
        for gr in opt.param_groups:
            gr["lr"] = lr_at(step)
        loss = nt_xent(head(enc(v)), 0.5)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        pretrain_s += time.time() - t0
        if step == rungs[rung]:
            path = os.path.join(work, f"torch-{step}.safetensors")
            sd = {f"encoder.{k}": v for k, v in enc.state_dict().items()
                  if not k.endswith("num_batches_tracked")}
            write_safetensors(path, sd)
            out.append({"steps": step, "pretrain_s": round(pretrain_s, 1), "weights": path,
                        "loss": round(loss.item(), 4)})
            rung += 1
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ssld", default=os.path.join(ROOT, "build", "daemon", "ssld"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", default="150,300", help="pretraining rungs (steps of batch 256)")
    ap.add_argument("--epochs", default=None, help="(bench/compare's old option; ignored)")
    ap.add_argument("--target", type=float, default=0.81,
                    help="linear-probe test accuracy at 10%% labels")
    ap.add_argument("--only", choices=["ssld", "torch"], default=None,
                    help="one side only (e.g. one measurement-lock hold each)")
    ap.add_argument("--torch-setting", default="blas1", choices=list(TORCH_SETTINGS),
                    help="PyTorch's thread environment (bench/compare's best step setting)")
    ap.add_argument("--torch-child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--work", default=None, help="scratch directory (default: a temp dir)")
    a = ap.parse_args()
    rungs = sorted(int(s) for s in a.steps.split(","))
    work = a.work or tempfile.mkdtemp(prefix="ssld-tta-")
    os.makedirs(work, exist_ok=True)
    if a.torch_child:   # the PyTorch pretraining itself, in the environment the parent set
        print(json.dumps(torch_run(a, rungs, work)))
        return
    load0 = os.getloadavg()[0]
    res = {"target": a.target, "label_fraction": 0.1, "threads": a.threads, "rungs": rungs}
    if a.only != "torch":
        res["ssld"] = [ssld_rung(a, s, work) for s in rungs]
    if a.only != "ssld":
        # a child process: OpenMP and OpenBLAS read their thread settings at start-up
        env = dict(os.environ)
        for k in ("OMP_WAIT_POLICY", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
            env.pop(k, None)
        env.update(TORCH_SETTINGS[a.torch_setting])
        p = subprocess.run([sys.executable, os.path.abspath(__file__), "--torch-child",
                            "--threads", str(a.threads), "--steps", a.steps, "--work", work],
                           env=env, stdout=subprocess.PIPE, text=True)
        if p.returncode != 0:
            sys.exit("compare_tta: the PyTorch run failed")
        tr = json.loads(p.stdout.strip().splitlines()[-1])
        for r in tr:
            r["probe10"] = probe_encoder(a, r.pop("weights"), work, f"probe-torch-{r['steps']}")
        res["torch"] = tr
        res["torch_setting"] = a.torch_setting
    res["load"] = [round(load0, 2), round(os.getloadavg()[0], 2)]

    print(f"Time to accuracy: SimCLR example recipe, linear probe at 10% labels >= "
          f"{a.target:.3f}, {a.threads} threads (rungs of the same trajectory: {a.steps} steps)")
    print(f"{'impl':<8} {'steps':>6} {'pretrain s':>11} {'probe 10%':>10}")
    for impl in ("ssld", "torch"):
        for r in res.get(impl, []):
            print(f"{impl:<8} {r['steps']:>6} {r['pretrain_s']:>11.1f} {r['probe10']:>10.4f}")
        hit = next((r for r in res.get(impl, []) if r["probe10"] >= a.target), None)
        if impl in res:
            res[impl + "_time_to_target_s"] = hit["pretrain_s"] if hit else None
            print(f"  {impl}: " + (f"target reached after {hit['steps']} steps, "
                                   f"{hit['pretrain_s']:.1f} s of pretraining" if hit else
                                   f"target not reached within {rungs[-1]} steps"))
    print(f"(load average {res['load'][0]} at start, {res['load'][1]} at the end; work dir {work})")
    print(json.dumps(res))


if __name__ == "__main__":
    main()
