#!/usr/bin/python3
"""compare_torch.py - the PyTorch side of bench/compare: one training step of the same models,
batch sizes, losses and optimizer as bench/compare_ssld.c, timed the same way.

Each model is built to match ssld's layout exactly (engine/model.c, engine/layers.h): Linear and
Conv2d followed by BatchNorm have no bias; BatchNorm eps 1e-5, momentum 0.1; pre-LN Transformer
blocks with a fused qkv Linear(D,3D), GELU (tanh), tied LM head; AdamW (lr 1e-3, betas
(0.9, 0.999), eps 1e-8, weight decay 1e-4 on weights only - biases, norms and positional
embeddings excluded, as ssld's PARAM_DECAY does). The ResNet-18 models are torchvision's own
ResNet (BasicBlock, zero_init_residual) with the CIFAR stem (conv1 3x3 stride 1, no max-pool) and
no fc, at width 1 or with every stage's channels halved (built with torchvision's _make_layer, as
engine/resnet.h counts them: round(64 * width * 2^i)). Inputs are seeded random data of the real
shapes (Fashion-MNIST 28x28 images, byte tokens), so the step cost does not depend on data.

It prints one JSON object per model (last line): step wall time (median), process CPU seconds
per step, throughput (samples/s or tokens/s, from the median wall time and from CPU time), and
the peak RSS of this process. It deliberately does not pick thread settings: the caller
(bench/compare) runs it under each setting (OMP_WAIT_POLICY, OPENBLAS_NUM_THREADS) and keeps
the best. It is not a test.

    /usr/bin/python3 bench/compare_torch.py --model simclr_mlp --threads 2 --seconds 20
"""

import argparse
import json
import math
import os
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn

# ------------------------------------------------------------------------------------------------
# models (the same as bench/compare_ssld.c)


def mlp(dims, bn=True, final_act=False):
    """dims[0] -> ... -> dims[-1]; BN+ReLU after every layer but the last (ssld mlp_new)."""
    layers = []
    n = len(dims) - 1
    for i in range(n):
        act = i < n - 1 or final_act
        layers.append(nn.Linear(dims[i], dims[i + 1], bias=not (act and bn)))
        if act:
            if bn:
                layers.append(nn.BatchNorm1d(dims[i + 1]))
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def cnn(channels, strides, in_c=1):
    layers = []
    c = in_c
    for ch, s in zip(channels, strides):
        layers += [nn.Conv2d(c, ch, 3, stride=s, padding=1, bias=False), nn.BatchNorm2d(ch),
                   nn.ReLU()]
        c = ch
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    return nn.Sequential(*layers)


def resnet18_cifar(width):
    """torchvision's ResNet-18 with the CIFAR stem and stage channels round(64*width*2^i)."""
    from torchvision.models.resnet import BasicBlock, ResNet
    ch = [max(1, round(64 * width * 2 ** i)) for i in range(4)]
    net = ResNet(BasicBlock, [2, 2, 2, 2], zero_init_residual=True)
    if width != 1:
        net.inplanes = ch[0]
        net.layer1 = net._make_layer(BasicBlock, ch[0], 2)
        net.layer2 = net._make_layer(BasicBlock, ch[1], 2, stride=2)
        net.layer3 = net._make_layer(BasicBlock, ch[2], 2, stride=2)
        net.layer4 = net._make_layer(BasicBlock, ch[3], 2, stride=2)
        for m in net.modules():   # the constructor's zero_init_residual, for the rebuilt stages
            if isinstance(m, BasicBlock):
                nn.init.constant_(m.bn2.weight, 0)
    net.conv1 = nn.Conv2d(3, ch[0], 3, stride=1, padding=1, bias=False)
    net.bn1 = nn.BatchNorm2d(ch[0])
    net.maxpool = nn.Identity()
    net.fc = nn.Identity()
    return net, ch[3]


def nt_xent(z, tau):
    """SimCLR NT-Xent over 2N rows, positives i <-> i+N, self-similarity excluded."""
    z = F.normalize(z, dim=1)
    m = z.shape[0]
    n = m // 2
    sim = z @ z.t() / tau
    eye = torch.eye(m, dtype=torch.bool)
    sim = sim.masked_fill(eye, float("-inf"))
    target = torch.cat([torch.arange(n, m), torch.arange(0, n)])
    return F.cross_entropy(sim, target)


class Attention(nn.Module):
    def __init__(self, d, heads, causal):
        super().__init__()
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.h = heads
        self.causal = causal

    def forward(self, x):
        b, t, d = x.shape
        q, k, v = self.qkv(x).split(d, dim=2)
        q = q.view(b, t, self.h, d // self.h).transpose(1, 2)
        k = k.view(b, t, self.h, d // self.h).transpose(1, 2)
        v = v.view(b, t, self.h, d // self.h).transpose(1, 2)
        s = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(d // self.h))
        if self.causal:
            mask = torch.ones(t, t, dtype=torch.bool).triu(1)
            s = s.masked_fill(mask, float("-inf"))
        o = F.softmax(s, dim=-1) @ v
        return self.proj(o.transpose(1, 2).reshape(b, t, d))


class Block(nn.Module):
    def __init__(self, d, heads, causal, ratio=4):
        super().__init__()
        self.norm1 = nn.LayerNorm(d)
        self.attn = Attention(d, heads, causal)
        self.norm2 = nn.LayerNorm(d)
        self.fc1 = nn.Linear(d, ratio * d)
        self.fc2 = nn.Linear(ratio * d, d)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.fc2(F.gelu(self.fc1(self.norm2(x)), approximate="tanh"))


class CharLM(nn.Module):
    def __init__(self, vocab=256, ctx=128, d=128, depth=4, heads=4):
        super().__init__()
        self.wte = nn.Embedding(vocab, d)
        self.wpe = nn.Parameter(torch.randn(ctx, d) * 0.02)
        self.blocks = nn.ModuleList([Block(d, heads, True) for _ in range(depth)])
        self.norm = nn.LayerNorm(d)

    def forward(self, ids):
        t = ids.shape[1]
        x = self.wte(ids) + self.wpe[:t]
        for b in self.blocks:
            x = b(x)
        return self.norm(x) @ self.wte.weight.t()


class Mae(nn.Module):
    """ViT-tiny MAE (engine/methods/mae.c layout): patch 4 on 28x28 (49 patches), encoder d 128,
    depth 4, heads 4 on the visible 25%; decoder d 64, depth 2, heads 4; MSE on masked patches."""

    def __init__(self, d=128, depth=4, heads=4, dd=64, ddepth=2, patch=4, keep=12):
        super().__init__()
        self.patch, self.keep, self.n = patch, keep, (28 // patch) ** 2
        self.proj = nn.Conv2d(1, d, patch, stride=patch)
        self.pos = nn.Parameter(torch.randn(1, self.n, d) * 0.02)
        self.blocks = nn.ModuleList([Block(d, heads, False) for _ in range(depth)])
        self.norm = nn.LayerNorm(d)
        self.embed = nn.Linear(d, dd)
        self.mask_token = nn.Parameter(torch.randn(1, 1, dd) * 0.02)
        self.dpos = nn.Parameter(torch.randn(1, self.n, dd) * 0.02)
        self.dblocks = nn.ModuleList([Block(dd, heads, False) for _ in range(ddepth)])
        self.dnorm = nn.LayerNorm(dd)
        self.pred = nn.Linear(dd, patch * patch)

    def forward(self, x, keep, restore, masked, target):
        b = x.shape[0]
        t = self.proj(x).flatten(2).transpose(1, 2) + self.pos            # (B,N,D)
        t = torch.gather(t, 1, keep.unsqueeze(-1).expand(-1, -1, t.shape[2]))
        for blk in self.blocks:
            t = blk(t)
        t = self.embed(self.norm(t))
        seq = torch.cat([t, self.mask_token.expand(b, self.n - self.keep, -1)], dim=1)
        seq = torch.gather(seq, 1, restore.unsqueeze(-1).expand(-1, -1, seq.shape[2]))
        seq = seq + self.dpos
        for blk in self.dblocks:
            seq = blk(seq)
        pred = self.pred(self.dnorm(seq))                                  # (B,N,p*p)
        err = ((pred - target) ** 2).mean(dim=2)
        return (err * masked).sum() / masked.sum()


class Vae(nn.Module):
    """MLP VAE (examples/vae): 784-512-256-128 encoder (BN+ReLU), mu/logvar 128 -> 16, decoder
    16-256-512-784 (BN+ReLU), Bernoulli BCE summed over pixels + KL, mean over the batch."""

    def __init__(self, latent=16):
        super().__init__()
        self.enc = mlp([784, 512, 256, 128])
        self.mu = nn.Linear(128, latent)
        self.logvar = nn.Linear(128, latent)
        self.dec = mlp([latent, 256, 512, 784])

    def forward(self, x, eps):
        f = self.enc(x.flatten(1))
        mu, lv = self.mu(f), self.logvar(f)
        z = mu + torch.exp(0.5 * lv) * eps
        logits = self.dec(z)
        recon = F.binary_cross_entropy_with_logits(logits, x.flatten(1), reduction="mean") * 784
        kl = (-0.5 * (1 + lv - mu * mu - lv.exp()).sum(dim=1)).mean()
        return recon + kl


def adamw(model):
    """Weight decay on weights only (ssld: PARAM_DECAY on Linear/Conv/Embedding weights)."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        is_weight = name.endswith("weight") and p.dim() >= 2
        (decay if is_weight else no_decay).append(p)
    return torch.optim.AdamW([{"params": decay, "weight_decay": 1e-4},
                              {"params": no_decay, "weight_decay": 0.0}], lr=1e-3)


# ------------------------------------------------------------------------------------------------
# one step per model: returns (step function, samples per step, unit)


def build(name, g):
    B = 256
    if name.startswith("simclr"):
        if name == "simclr_mlp":
            enc = mlp([784, 1024, 1024, 128])
            head = mlp([128, 128, 128])
            flat = True
        else:
            strides = [1, 1, 1] if name == "simclr_cnn_s1" else [1, 2, 2]
            enc = cnn([32, 64, 128], strides)
            head = mlp([128, 512, 128])
            flat = False
        model = nn.Sequential(nn.Flatten(), enc, head) if flat else nn.Sequential(enc, head)
        opt = adamw(model)
        v1 = torch.rand(B, 1, 28, 28, generator=g)
        v2 = torch.rand(B, 1, 28, 28, generator=g)

        def step():
            opt.zero_grad(set_to_none=False)
            loss = nt_xent(model(torch.cat([v1, v2])), 0.5)
            loss.backward()
            opt.step()
            return loss
        return step, model, B, "img/s"
    if name in ("resnet18", "resnet18_w05"):
        enc, feat = resnet18_cifar(0.5 if name == "resnet18_w05" else 1.0)
        model = nn.Sequential(enc, mlp([feat, 512, 128]))
        opt = adamw(model)
        half = B // 2   # two views of 128: 256 images per step
        v1 = torch.rand(half, 3, 32, 32, generator=g)
        v2 = torch.rand(half, 3, 32, 32, generator=g)

        def step():
            opt.zero_grad(set_to_none=False)
            loss = nt_xent(model(torch.cat([v1, v2])), 0.5)
            loss.backward()
            opt.step()
            return loss
        return step, model, B, "img/s"
    if name == "char_transformer":
        B, T = 32, 128
        model = CharLM()
        nn.init.normal_(model.wte.weight, std=0.02)
        opt = adamw(model)
        ids = torch.randint(0, 256, (B, T + 1), generator=g)
        x, y = ids[:, :T], ids[:, 1:]

        def step():
            opt.zero_grad(set_to_none=False)
            loss = F.cross_entropy(model(x).reshape(B * T, 256), y.reshape(B * T))
            loss.backward()
            opt.step()
            return loss
        return step, model, B * T, "tok/s"
    if name == "mae_vit":
        model = Mae()
        opt = adamw(model)
        x = torch.rand(B, 1, 28, 28, generator=g)
        n, k = model.n, model.keep
        # patches (B,N,16), pixel order (y,x) inside a patch as in mae.c
        target = x.reshape(B, 1, 7, 4, 7, 4).permute(0, 2, 4, 1, 3, 5).reshape(B, n, 16)

        def step():
            opt.zero_grad(set_to_none=False)
            noise = torch.rand(B, n, generator=g)
            order = noise.argsort(dim=1)
            keep = order[:, :k].sort(dim=1).values
            masked = torch.ones(B, n)
            masked.scatter_(1, keep, 0.0)
            # restore: position p takes row rank(p) of [visible (ascending) | mask tokens]
            rank = masked.argsort(dim=1, stable=True)
            restore = rank.argsort(dim=1)
            loss = model(x, keep, restore, masked, target)
            loss.backward()
            opt.step()
            return loss
        return step, model, B, "img/s"
    if name == "vae_mlp":
        model = Vae()
        opt = adamw(model)
        x = torch.rand(B, 1, 28, 28, generator=g)

        def step():
            opt.zero_grad(set_to_none=False)
            loss = model(x, torch.randn(B, 16, generator=g))
            loss.backward()
            opt.step()
            return loss
        return step, model, B, "img/s"
    raise SystemExit(f"compare_torch: unknown model {name!r}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=30, help="timed steps at most")
    ap.add_argument("--seconds", type=float, default=15.0, help="timed wall seconds at most")
    ap.add_argument("--warmup", type=int, default=3)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    g = torch.Generator().manual_seed(1)
    step, model, per_step, unit = build(a.model, g)
    model.train()
    for _ in range(a.warmup):
        loss = step()
    walls, cpus = [], []
    t_end = time.monotonic() + a.seconds
    while len(walls) < a.steps and (len(walls) < 3 or time.monotonic() < t_end):
        w0, c0 = time.monotonic(), time.process_time()
        loss = step()
        walls.append(time.monotonic() - w0)
        cpus.append(time.process_time() - c0)
    walls.sort()
    med = walls[len(walls) // 2]
    cpu = sum(cpus) / len(cpus)
    # VmHWM: the peak RSS of this process's memory (ru_maxrss carries a parent's over fork+exec)
    rss_kb = 0.0
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                rss_kb = float(line.split()[1])
    print(json.dumps({
        "impl": "torch", "model": a.model, "threads": a.threads, "steps": len(walls),
        "step_ms": round(1e3 * med, 3), "best_step_ms": round(1e3 * walls[0], 3),
        "cpu_ms_per_step": round(1e3 * cpu, 3), "per_step": per_step, "unit": unit,
        "throughput": round(per_step / med, 2),
        "cpu_throughput": round(per_step * a.threads / cpu, 2),
        "peak_rss_mb": round(rss_kb / 1024.0, 1), "loss": float(loss),
        "torch": torch.__version__,
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "default"),
        "openblas_threads": os.environ.get("OPENBLAS_NUM_THREADS", "default"),
    }))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
