"""torchvision_resnet - run torchvision's ResNet on weights ssld exported under torchvision names,
or write a torchvision ResNet's own state dict for ssld to import.

ssld's ResNet encoders (engine/resnet.h) use torchvision's state-dict names, and
engine/export_torchvision.h writes them without the "encoder." prefix. This script is the
PyTorch side of the round trip that tests/model_layers/test_torchvision.c drives:

  compare:  build torchvision.models.<arch>() (for the cifar stem conv1 becomes a 3x3 stride 1
            conv and maxpool an Identity; another input channel count replaces conv1 too), load
            the file with load_state_dict(strict=False), require that only fc.* is missing and
            nothing is unexpected, set fc = Identity, and write the features of the input. With
            --train the model runs in training mode (batch statistics) and, with --grad-weights,
            the gradient of sum(features * W) with respect to the input is written too; with
            --grad-reference R the float64 references of that gradient (below) are written to R,
            one for torch's own float32 gradient and one for each --grad-candidates file.
  export:   seed torch, build the same model with random weights and BatchNorm statistics, save
            its whole state dict (fc.* and the I64 num_batches_tracked included) as safetensors,
            and write its eval-mode features of the input.

    python3 torchvision_resnet.py compare --arch resnet18 --stem cifar --weights enc.safetensors \\
        --input x.f32 --shape 2,3,32,32 --output y.f32
    python3 torchvision_resnet.py export --arch resnet18 --stem imagenet --weights tv.safetensors \\
        --input x.f32 --shape 2,3,64,64 --output y.f32

The float64 reference. A ReLU's derivative jumps at 0, so a pre-activation closer to 0 than the
float32 forward's rounding error may land on either side in a float32 run, and the gradient of a
correct float32 implementation is then the exact gradient of the network with that unit on the
other branch (one such unit moves a resnet18's input gradient by ~1e-3 normwise, far above
rounding). So the reference runs the network in float64 (torchvision's modules, its arithmetic)
carrying the standard deviation of each value's float32 rounding error: a convolution's K-term
sums pass their input's errors through the weights and add U^2 * K * sum((w x)^2) of their own,
batch norm scales errors by gamma / sigma, an add adds them in quadrature. Units whose
|pre-activation| is within ERROR_BAND_FACTOR deviations of 0 may take either branch; for each
float32 gradient the reference takes the branches there that fit it best. Any other difference,
or another unit on the wrong branch, still shows.

Raw files are little-endian float32. Exit status 3 when torchvision is missing (the C test
skips), 1 on any mismatch with the reason on stderr.
"""

import argparse
import json
import os
import struct
import sys

try:
    import torch
    import torchvision  # noqa: F401
    from torch import nn
    from torch.nn import functional as F
except ImportError as e:
    print(f"torchvision_resnet: {e} (Debian: python3-torch, python3-torchvision)", file=sys.stderr)
    sys.exit(3)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ssld_torch  # noqa: E402  (read_safetensors)

_DTYPE_NAMES = {torch.float32: "F32", torch.int64: "I64"}

U = 2.0 ** -24           # float32 unit roundoff
ERROR_BAND_FACTOR = 4.0  # a unit within 4 standard deviations of its float32 error of a kink
MAX_BAND_UNITS = 16      # may be on either branch; 2^16 branch choices are searched at most


def write_safetensors(path, tensors):
    """{name: tensor} (float32 or int64) as a safetensors file, in name order."""
    header, blobs, off = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous().cpu()
        raw = t.numpy().tobytes()
        header[name] = {"dtype": _DTYPE_NAMES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - (8 + len(text)) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def build(arch, stem, in_c):
    import torchvision
    model = getattr(torchvision.models, arch)()
    if stem == "cifar":
        model.conv1 = nn.Conv2d(in_c, 64, 3, 1, 1, bias=False)
        model.maxpool = nn.Identity()
    elif in_c != 3:
        model.conv1 = nn.Conv2d(in_c, 64, 7, 2, 3, bias=False)
    return model


def read_input(path, shape):
    with open(path, "rb") as f:
        raw = f.read()
    x = torch.frombuffer(bytearray(raw), dtype=torch.float32)
    want = 1
    for s in shape:
        want *= s
    if x.numel() != want:
        raise SystemExit(f"{path}: {x.numel()} floats, shape {shape} needs {want}")
    return x.reshape(shape).clone()


def write_floats(path, t):
    with open(path, "wb") as f:
        f.write(t.detach().contiguous().numpy().astype("<f4").tobytes())


class _Forward64:
    """One float64 training-mode forward of a torchvision ResNet carrying, beside every value,
    the standard deviation of its float32 rounding error (as a variance, so independent errors
    add in quadrature; None when not tracked); flips is a set of (relu call, flat unit index)
    whose branch is swapped."""

    def __init__(self, model, flips=(), track=False):
        self.m, self.flips, self.track, self.relus, self.calls = model, set(flips), track, [], 0

    def conv(self, conv, v, var):
        # K-term sums: the input's errors pass through the weights (sum of w^2 var), and the
        # sum's own roundings add U^2 * K * sum((w x)^2).
        w = conv.weight
        k = w.shape[1] * w.shape[2] * w.shape[3]
        args = dict(stride=conv.stride, padding=conv.padding)
        y = F.conv2d(v, w, **args)
        if var is None:
            return y, None
        with torch.no_grad():
            w2 = w.detach() ** 2
            vy = F.conv2d(var, w2, **args) + U * U * k * F.conv2d(v.detach() ** 2, w2, **args)
        return y, vy

    def bn(self, bn, y, var):
        # (y - mean) / sigma * gamma + beta: errors scale by gamma / sigma; those of the batch
        # mean and variance, averages of n values, are a 1/n share and left out.
        out = F.batch_norm(y, None, None, bn.weight, bn.bias, True, 0.0, bn.eps)
        if var is None:
            return out, None
        with torch.no_grad():
            sigma2 = y.var((0, 2, 3), unbiased=False, keepdim=True) + bn.eps
            vo = bn.weight.view(1, -1, 1, 1) ** 2 / sigma2 * var + (U * out) ** 2
        return out, vo

    def relu(self, v, var, name):
        k = self.calls
        self.calls += 1
        if var is not None:
            self.relus.append((v.detach(), var.sqrt(), name))
        mask = (v.detach() > 0).to(v.dtype).flatten()
        for call, unit in self.flips:
            if call == k:
                mask[unit] = 1.0 - mask[unit]
        return v * mask.view(v.shape), None if var is None else var * mask.view(v.shape)

    def block(self, b, v, var, name):
        convs = [(getattr(b, f"conv{i}"), getattr(b, f"bn{i}")) for i in (1, 2, 3)
                 if hasattr(b, f"conv{i}")]
        o, vo = v, var
        for i, (c, n) in enumerate(convs):
            o, vo = self.bn(n, *self.conv(c, o, vo))
            if i + 1 < len(convs):
                o, vo = self.relu(o, vo, f"{name}.bn{i + 1}")
        iv, ivar = v, var
        if b.downsample is not None:
            iv, ivar = self.bn(b.downsample[1], *self.conv(b.downsample[0], v, var))
        s = o + iv
        vs = None if vo is None else vo + ivar + (U * s.detach()) ** 2
        return self.relu(s, vs, f"{name} (after the add)")

    def __call__(self, x):
        m = self.m
        var = torch.zeros_like(x) if self.track else None
        v, var = self.relu(*self.bn(m.bn1, *self.conv(m.conv1, x, var)), "bn1")
        if isinstance(m.maxpool, nn.MaxPool2d):
            v, var = m.maxpool(v), None if var is None else m.maxpool(var)
        for li, layer in enumerate((m.layer1, m.layer2, m.layer3, m.layer4)):
            for bi, b in enumerate(layer):
                v, var = self.block(b, v, var, f"layer{li + 1}.{bi}")
        return v.mean((2, 3))


def _grad64(forward, x64, w):
    xg = x64.clone().requires_grad_(True)
    (forward(xg) * w).sum().backward()
    return xg.grad


def reference_gradients(model, x, w, candidates):
    """For each candidate float32 gradient of sum(features * w) with respect to x, the float64
    gradient on the branches that fit it best: the float64 signs at every ReLU, except that each
    unit within the float32 error band of its kink may take the other branch. The choice is made
    on the first-order model g(S) = g0 + sum of each band unit's own change (exact to far below
    rounding: two flips interact only through the paths that cross both), then g(S) is computed
    exactly. Returns the references, the band, per candidate its flipped units, each as
    (relu call, flat index, float64 pre-activation, error deviation, layer name), and the
    gradient on the float64 branches."""
    model = model.double()
    x64, w = x.detach().double(), w.double()
    probe = _Forward64(model, track=True)
    g0 = _grad64(probe, x64, w).flatten()
    band = []
    for k, (v, sd, name) in enumerate(probe.relus):
        near = (v.abs() <= ERROR_BAND_FACTOR * sd).flatten().nonzero().flatten().tolist()
        band += [(k, i, v.flatten()[i].item(), sd.flatten()[i].item(), name) for i in near]
    if len(band) > MAX_BAND_UNITS:
        raise SystemExit(f"{len(band)} units lie within the float32 error band of a ReLU kink "
                         f"(at most {MAX_BAND_UNITS} are searched)")
    g0 = g0.view(x.shape)
    if not band:
        return [g0] * len(candidates), band, [[] for _ in candidates], g0
    # column j: how switching band unit j alone changes the gradient
    d = torch.stack([(_grad64(_Forward64(model, [(k, i)]), x64, w) - g0).flatten()
                     for k, i, _, _, _ in band], 1)
    n = len(band)
    subsets = ((torch.arange(1 << n).view(-1, 1) >> torch.arange(n)) & 1).double()
    gram = d.T @ d
    refs, chosen = [], []
    for cand in candidates:
        r = (cand.double() - g0).flatten()
        cost = ((subsets @ gram) * subsets).sum(1) - 2.0 * subsets @ (d.T @ r)
        pick = subsets[int(cost.argmin())]
        flips = [band[j] for j in range(n) if pick[j] > 0]
        switched = _Forward64(model, [(k, i) for k, i, _, _, _ in flips])
        refs.append(_grad64(switched, x64, w) if flips else g0)
        chosen.append(flips)
    return refs, band, chosen, g0


def _rel(a, ref):
    return ((a.double() - ref).norm() / ref.norm()).item()


def compare(args, shape):
    model = build(args.arch, args.stem, shape[1])
    tensors, _ = ssld_torch.read_safetensors(args.weights)
    res = model.load_state_dict(tensors, strict=False)
    missing = sorted(res.missing_keys)
    if missing != ["fc.bias", "fc.weight"] or res.unexpected_keys:
        print(f"load_state_dict: missing {missing}, unexpected {sorted(res.unexpected_keys)}; "
              "expected only fc.weight and fc.bias missing", file=sys.stderr)
        return 1
    model.fc = nn.Identity()
    model.train(args.train)
    x = read_input(args.input, shape).requires_grad_(bool(args.grad_weights))
    feats = model(x)
    write_floats(args.output, feats)
    if args.grad_weights:
        w = read_input(args.grad_weights, list(feats.shape))
        (feats.double() * w.double()).sum().backward()
        write_floats(args.grad_output, x.grad)
        if args.grad_reference:
            names = ["torch"] + [os.path.basename(p) for p in args.grad_candidates]
            cands = [x.grad] + [read_input(p, shape) for p in args.grad_candidates]
            refs, band, chosen, g0 = reference_gradients(model, x, w, cands)
            write_floats(args.grad_reference, torch.stack(refs).float())
            print(f"{len(band)} unit(s) within {ERROR_BAND_FACTOR:g} float32 error deviations "
                  "of a ReLU kink")
            for name, flips, c, r in zip(names, chosen, cands, refs):
                print(f"  {name}: normwise {_rel(c, g0):.3g} from the float64 gradient, "
                      f"{_rel(c, r):.3g} from it on the branches that fit")
                for _, i, v, sd, layer in flips:
                    print(f"  {name}: on the other branch at the ReLU of {layer}, unit {i} "
                          f"(float64 pre-activation {v:.3g}, error deviation {sd:.3g})")
    print(f"loaded {len(tensors)} tensors (missing only fc.*), features {tuple(feats.shape)}")
    return 0


def export(args, shape):
    torch.manual_seed(args.seed)
    model = build(args.arch, args.stem, shape[1])
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
                m.running_mean.normal_(0.0, 0.2)
                m.running_var.uniform_(0.5, 2.0)
                m.num_batches_tracked.fill_(7)
    write_safetensors(args.weights, model.state_dict())
    model.fc = nn.Identity()
    model.eval()
    with torch.no_grad():
        write_floats(args.output, model(read_input(args.input, shape)))
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("mode", choices=["compare", "export"])
    ap.add_argument("--arch", required=True, choices=["resnet18", "resnet34", "resnet50"])
    ap.add_argument("--stem", required=True, choices=["cifar", "imagenet"])
    ap.add_argument("--weights", required=True)
    ap.add_argument("--input", required=True)
    ap.add_argument("--shape", required=True)
    ap.add_argument("--output", required=True)
    ap.add_argument("--train", action="store_true")
    ap.add_argument("--grad-weights")
    ap.add_argument("--grad-output")
    ap.add_argument("--grad-reference")
    ap.add_argument("--grad-candidates", nargs="*", default=[])
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    shape = [int(s) for s in args.shape.split(",")]
    torch.set_num_threads(1)
    return compare(args, shape) if args.mode == "compare" else export(args, shape)


if __name__ == "__main__":
    sys.exit(main())
