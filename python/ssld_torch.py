"""ssld_torch - rebuild an ssld encoder in PyTorch and load its weights.

ssld (C) writes weights as safetensors with dotted names ("encoder.conv0.weight") and the
encoder config as JSON (encoder_config_to_json in engine/model.h). This module builds the same
network in PyTorch (the architectures are documented at the top of engine/encoders/*.c and in
engine/resnet.h; the ResNets keep torchvision's module names) and loads the
weights with strict name and shape matching, so an encoder pretrained by ssld can be used from
Python. It does not train, and needs nothing but torch (the safetensors file is parsed by hand).

    import json, ssld_torch
    cfg = json.load(open("config.json"))
    tensors, meta = ssld_torch.read_safetensors("model.safetensors")
    enc = ssld_torch.load_encoder(cfg, tensors, prefix="encoder")   # eval mode
    feats = enc(images)                                              # (B,C,H,W) -> (B,out_dim)

Command line (used by the C test tests/model_layers/test_export_python.c):

    python3 ssld_torch.py [--config cfg.json] --weights w.safetensors --prefix encoder \
        --input x.f32 --shape 4,1,28,28 --output y.f32

reads raw little-endian float32 input (token ids as floats for a transformer), writes the
features as raw float32.
"""

import argparse
import json
import math
import struct
import sys

import torch
from torch import nn

_DTYPES = {"F32": torch.float32, "F64": torch.float64, "F16": torch.float16,
           "BF16": torch.bfloat16, "I64": torch.int64, "I32": torch.int32, "U8": torch.uint8}


def read_safetensors(path):
    """{name: tensor} and the __metadata__ dict of a safetensors file."""
    with open(path, "rb") as f:
        blob = f.read()
    if len(blob) < 8:
        raise ValueError(f"{path}: too short for a safetensors header ({len(blob)} bytes)")
    (hlen,) = struct.unpack("<Q", blob[:8])
    if 8 + hlen > len(blob):
        raise ValueError(f"{path}: header length {hlen} exceeds the file size {len(blob)}")
    header = json.loads(blob[8:8 + hlen].decode("utf-8"))
    data = bytearray(blob[8 + hlen:])
    meta = header.pop("__metadata__", {}) or {}
    out = {}
    for name, info in header.items():
        dtype = _DTYPES.get(info["dtype"])
        if dtype is None:
            raise ValueError(f"{path}: tensor {name}: unsupported dtype {info['dtype']}")
        begin, end = info["data_offsets"]
        if not 0 <= begin <= end <= len(data):
            raise ValueError(f"{path}: tensor {name}: data offsets {begin}..{end} outside the data")
        shape = list(info["shape"])
        if begin == end:
            t = torch.zeros(shape, dtype=dtype)
        else:
            t = torch.frombuffer(data, dtype=dtype, count=(end - begin) // torch.tensor(
                [], dtype=dtype).element_size(), offset=begin).clone()
            t = t.reshape(shape)
        out[name] = t
    return out, meta


# ------------------------------------------------------------------------------------------------
# The architectures of engine/model.c


class MlpEncoder(nn.Module):
    def __init__(self, cfg, in_dim):
        super().__init__()
        dims = [in_dim] + list(cfg.get("hidden", []))
        out_dim = int(cfg.get("out_dim", 0))
        bn = bool(cfg.get("batchnorm", True))
        self.n_hidden = len(dims) - 1
        self.bn = bn
        for i in range(self.n_hidden):
            self.add_module(f"fc{i}", nn.Linear(dims[i], dims[i + 1], bias=not bn))
            if bn:
                self.add_module(f"bn{i}", nn.BatchNorm1d(dims[i + 1], eps=1e-5, momentum=0.1))
        self.has_out = out_dim > 0
        if self.has_out:
            self.add_module(f"fc{self.n_hidden}", nn.Linear(dims[-1], out_dim))

    def forward(self, x):
        x = x.reshape(x.shape[0], -1)
        for i in range(self.n_hidden):
            x = getattr(self, f"fc{i}")(x)
            if self.bn:
                x = getattr(self, f"bn{i}")(x)
            x = torch.relu(x)
        if self.has_out:
            x = getattr(self, f"fc{self.n_hidden}")(x)
        return x


class CnnEncoder(nn.Module):
    def __init__(self, cfg, in_c):
        super().__init__()
        chans = list(cfg.get("channels", [32, 64, 128]))
        bn = bool(cfg.get("batchnorm", True))
        out_dim = int(cfg.get("out_dim", 0))
        self.n = len(chans)
        self.bn = bn
        c = in_c
        strides = list(cfg.get("strides") or [1 if i == 0 else 2 for i in range(len(chans))])
        for i, o in enumerate(chans):
            self.add_module(f"conv{i}", nn.Conv2d(c, o, 3, stride=strides[i], padding=1,
                                                  bias=not bn))
            if bn:
                self.add_module(f"bn{i}", nn.BatchNorm2d(o, eps=1e-5, momentum=0.1))
            c = o
        self.grid = int(cfg.get("pool_grid", 1))
        self.fc = nn.Linear(c * max(self.grid, 1) ** 2, out_dim) if out_dim > 0 else None

    def forward(self, x):
        for i in range(self.n):
            x = getattr(self, f"conv{i}")(x)
            if self.bn:
                x = getattr(self, f"bn{i}")(x)
            x = torch.relu(x)
        if self.grid > 1:
            x = torch.flatten(nn.functional.adaptive_avg_pool2d(x, self.grid), 1)
        else:
            x = x.mean(dim=(2, 3))
        return self.fc(x) if self.fc is not None else x


class Attention(nn.Module):
    def __init__(self, dim, heads, causal):
        super().__init__()
        self.heads, self.causal = heads, causal
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        B, T, D = x.shape
        H = self.heads
        q, k, v = self.qkv(x).reshape(B, T, 3, H, D // H).permute(2, 0, 3, 1, 4)
        s = q @ k.transpose(-1, -2) / (D // H) ** 0.5
        if self.causal:
            mask = torch.ones(T, T, dtype=torch.bool).triu(1)
            s = s.masked_fill(mask, float("-inf"))
        o = s.softmax(-1) @ v                       # (B,H,T,Dh)
        return self.proj(o.transpose(1, 2).reshape(B, T, D))


class Mlp(nn.Module):
    def __init__(self, dim, ratio):
        super().__init__()
        self.fc1 = nn.Linear(dim, ratio * dim)
        self.fc2 = nn.Linear(ratio * dim, dim)

    def forward(self, x):
        return self.fc2(nn.functional.gelu(self.fc1(x), approximate="tanh"))


class Block(nn.Module):
    def __init__(self, dim, heads, ratio, causal):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-5)
        self.attn = Attention(dim, heads, causal)
        self.norm2 = nn.LayerNorm(dim, eps=1e-5)
        self.mlp = Mlp(dim, ratio)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


def _pool(cfg):
    p = cfg.get("pool", "mean")
    return 1 if p in ("cls", 1, True) else 0


class VitEncoder(nn.Module):
    def __init__(self, cfg, in_c, in_h, in_w):
        super().__init__()
        dim, p = int(cfg["dim"]), int(cfg["patch"])
        self.pool = _pool(cfg)
        n = (in_h // p) * (in_w // p)
        self.patch_embed = nn.Module()
        self.patch_embed.proj = nn.Conv2d(in_c, dim, p, stride=p)
        self.pos_embed = nn.Parameter(torch.zeros(1, n + self.pool, dim))
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim)) if self.pool else None
        self.blocks = nn.ModuleList(Block(dim, int(cfg["heads"]), int(cfg["mlp_ratio"]), False)
                                    for _ in range(int(cfg["depth"])))
        self.norm = nn.LayerNorm(dim, eps=1e-5)
        out_dim = int(cfg.get("out_dim", 0))
        self.fc = nn.Linear(dim, out_dim) if out_dim > 0 else None

    def forward(self, x):
        t = self.patch_embed.proj(x).flatten(2).transpose(1, 2)     # (B,N,D)
        if self.pool:
            t = t + self.pos_embed[:, 1:]
            c = (self.cls_token + self.pos_embed[:, :1]).expand(t.shape[0], -1, -1)
            t = torch.cat([c, t], dim=1)
        else:
            t = t + self.pos_embed
        for b in self.blocks:
            t = b(t)
        t = self.norm(t)
        f = t[:, 0] if self.pool else t.mean(1)
        return self.fc(f) if self.fc is not None else f


class TransformerEncoder(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        dim = int(cfg["dim"])
        self.pool = _pool(cfg)
        self.wte = nn.Embedding(int(cfg["vocab"]), dim)
        self.wpe = nn.Parameter(torch.zeros(int(cfg["context"]), dim))
        self.blocks = nn.ModuleList(Block(dim, int(cfg["heads"]), int(cfg["mlp_ratio"]),
                                          bool(cfg.get("causal", False)))
                                    for _ in range(int(cfg["depth"])))
        self.norm = nn.LayerNorm(dim, eps=1e-5)
        out_dim = int(cfg.get("out_dim", 0))
        self.fc = nn.Linear(dim, out_dim) if out_dim > 0 else None

    def forward_tokens(self, ids):                  # ids (B,T) int64 -> (B,T,D)
        t = self.wte(ids) + self.wpe[: ids.shape[1]]
        for b in self.blocks:
            t = b(t)
        return self.norm(t)

    def forward(self, x):                           # token ids, any float/int tensor (B,...)
        ids = x.reshape(x.shape[0], -1).round().long()
        t = self.forward_tokens(ids)
        f = t[:, 0] if self.pool else t.mean(1)
        return self.fc(f) if self.fc is not None else f


def _resnet_channels(width, stage):
    """Stage channels as engine/resnet.c computes them: round(64 * width * 2^stage), at least 1,
    with width as the float32 ssld holds."""
    w = struct.unpack("<f", struct.pack("<f", float(width)))[0]
    return max(1, int(math.floor(64.0 * w * (1 << stage) + 0.5)))


class ResBlock(nn.Module):
    """torchvision's BasicBlock (conv1 3x3/s, conv2 3x3) or Bottleneck (conv1 1x1, conv2 3x3/s,
    conv3 1x1), downsample = 1x1/s conv + BN when the stride or the channels change."""

    def __init__(self, in_c, planes, stride, bottleneck):
        super().__init__()
        out = planes * (4 if bottleneck else 1)
        self.bottleneck = bottleneck
        if bottleneck:
            self.conv1 = nn.Conv2d(in_c, planes, 1, bias=False)
            self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
            self.conv3 = nn.Conv2d(planes, out, 1, bias=False)
            self.bn3 = nn.BatchNorm2d(out, eps=1e-5)
        else:
            self.conv1 = nn.Conv2d(in_c, planes, 3, stride=stride, padding=1, bias=False)
            self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes, eps=1e-5)
        self.bn2 = nn.BatchNorm2d(planes, eps=1e-5)
        self.downsample = None
        if stride != 1 or in_c != out:
            self.downsample = nn.Sequential(nn.Conv2d(in_c, out, 1, stride=stride, bias=False),
                                            nn.BatchNorm2d(out, eps=1e-5))
        self.out_c = out

    def forward(self, x):
        y = torch.relu(self.bn1(self.conv1(x)))
        if self.bottleneck:
            y = torch.relu(self.bn2(self.conv2(y)))
            y = self.bn3(self.conv3(y))
        else:
            y = self.bn2(self.conv2(y))
        return torch.relu(y + (self.downsample(x) if self.downsample is not None else x))


class ResnetEncoder(nn.Module):
    """engine/resnet.h: torchvision's ResNet without fc; stem "cifar" (3x3 stride 1, no max-pool)
    or "imagenet" (7x7 stride 2 + 3x3/2 max-pool), `width` channel multiplier; features are the
    global average pool of the last stage."""

    _LAYOUT = {"resnet18": (False, (2, 2, 2, 2)), "resnet34": (False, (3, 4, 6, 3)),
               "resnet50": (True, (3, 4, 6, 3))}

    def __init__(self, cfg, in_c):
        super().__init__()
        bottleneck, blocks = self._LAYOUT[cfg["kind"]]
        width = float(cfg.get("width", 1.0))
        self.imagenet = cfg.get("stem", "cifar") == "imagenet"
        c = _resnet_channels(width, 0)
        k = 7 if self.imagenet else 3
        self.conv1 = nn.Conv2d(in_c, c, k, stride=2 if self.imagenet else 1, padding=k // 2,
                               bias=False)
        self.bn1 = nn.BatchNorm2d(c, eps=1e-5)
        for s, n in enumerate(blocks):
            layer = []
            for j in range(n):
                b = ResBlock(c, _resnet_channels(width, s), 2 if s > 0 and j == 0 else 1,
                             bottleneck)
                c = b.out_c
                layer.append(b)
            self.add_module(f"layer{s + 1}", nn.Sequential(*layer))

    def forward(self, x):
        x = torch.relu(self.bn1(self.conv1(x)))
        if self.imagenet:
            x = nn.functional.max_pool2d(x, 3, stride=2, padding=1)
        for s in range(1, 5):
            x = getattr(self, f"layer{s}")(x)
        return x.mean(dim=(2, 3))


def build_encoder(cfg, in_shape):
    """An untrained encoder for config dict cfg and one sample's shape (C,H,W)."""
    c, h, w = in_shape
    kind = cfg.get("kind")
    if kind == "mlp":
        return MlpEncoder(cfg, c * h * w)
    if kind == "cnn":
        return CnnEncoder(cfg, c)
    if kind == "vit":
        return VitEncoder(cfg, c, h, w)
    if kind == "transformer":
        return TransformerEncoder(cfg)
    if kind in ResnetEncoder._LAYOUT:
        return ResnetEncoder(cfg, c)
    raise ValueError(f"config.kind: unknown encoder kind {kind!r}")


def _infer_in_shape(cfg, tensors, prefix):
    kind = cfg.get("kind")
    if kind == "mlp":
        w = tensors.get(prefix + "fc0.weight")
        if w is None:
            raise KeyError(f"missing {prefix}fc0.weight (needed to infer the input size)")
        return (1, 1, w.shape[1])
    if kind == "cnn":
        w = tensors.get(prefix + "conv0.weight")
        if w is None:
            raise KeyError(f"missing {prefix}conv0.weight (needed to infer the input channels)")
        return (w.shape[1], 1, 1)
    if kind == "transformer":
        return (1, 1, 1)
    if kind in ResnetEncoder._LAYOUT:
        w = tensors.get(prefix + "conv1.weight")
        if w is None:
            raise KeyError(f"missing {prefix}conv1.weight (needed to infer the input channels)")
        return (w.shape[1], 1, 1)
    raise ValueError(f"config.in_shape is required for a {kind} encoder")


def load_encoder(cfg, tensors, prefix="encoder", in_shape=None):
    """Build the encoder of cfg and load tensors[prefix + "." + name] into it, strictly: every
    parameter and buffer of the module must be present with the same shape and every tensor under
    the prefix must be used (BatchNorm's num_batches_tracked is the one torch-only buffer).
    Returns the module in eval mode."""
    pre = prefix + "." if prefix else ""
    if in_shape is None:
        in_shape = cfg.get("in_shape") or _infer_in_shape(cfg, tensors, pre)
    enc = build_encoder(cfg, tuple(in_shape))
    own = {k: v for k, v in enc.state_dict().items() if not k.endswith("num_batches_tracked")}
    given = {k[len(pre):]: v for k, v in tensors.items() if k.startswith(pre)}
    missing = sorted(set(own) - set(given))
    unexpected = sorted(set(given) - set(own))
    if missing or unexpected:
        raise KeyError(f"weights do not match the {cfg.get('kind')} encoder: missing {missing}, "
                       f"unexpected {unexpected}")
    for k, v in own.items():
        if tuple(given[k].shape) != tuple(v.shape):
            raise ValueError(f"{pre}{k}: shape {tuple(given[k].shape)} in the file, "
                             f"{tuple(v.shape)} in the module")
    enc.load_state_dict({k: given[k].to(v.dtype) for k, v in own.items()}, strict=False)
    enc.eval()
    return enc


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", help="encoder config JSON file (default: the ssld.encoder_config "
                    "metadata of the weights file)")
    ap.add_argument("--weights", required=True, help="safetensors file")
    ap.add_argument("--prefix", default="encoder")
    ap.add_argument("--input", required=True, help="raw float32 input")
    ap.add_argument("--shape", required=True, help="input shape, e.g. 4,1,28,28")
    ap.add_argument("--output", required=True, help="raw float32 features to write")
    a = ap.parse_args(argv)
    shape = [int(s) for s in a.shape.split(",")]
    tensors, meta = read_safetensors(a.weights)
    if a.config:
        with open(a.config) as f:
            cfg = json.load(f)
    elif "ssld.encoder_config" in meta:
        cfg = json.loads(meta["ssld.encoder_config"])
    else:
        ap.error(f"{a.weights} has no ssld.encoder_config metadata; pass --config")
    in_shape = cfg.get("in_shape")
    if in_shape is None and cfg.get("kind") == "vit":
        in_shape = shape[1:]
    enc = load_encoder(cfg, tensors, a.prefix, in_shape)
    with open(a.input, "rb") as f:
        x = torch.frombuffer(bytearray(f.read()), dtype=torch.float32).reshape(shape)
    with torch.no_grad():
        y = enc(x).float().contiguous()
    with open(a.output, "wb") as f:
        f.write(y.numpy().tobytes())
    print(f"ssld_torch: {cfg.get('kind')} encoder, input {tuple(shape)} -> {tuple(y.shape)}",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
