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
            the gradient of sum(features * W) with respect to the input is written too.
  export:   seed torch, build the same model with random weights and BatchNorm statistics, save
            its whole state dict (fc.* and the I64 num_batches_tracked included) as safetensors,
            and write its eval-mode features of the input.

    python3 torchvision_resnet.py compare --arch resnet18 --stem cifar --weights enc.safetensors \\
        --input x.f32 --shape 2,3,32,32 --output y.f32
    python3 torchvision_resnet.py export --arch resnet18 --stem imagenet --weights tv.safetensors \\
        --input x.f32 --shape 2,3,64,64 --output y.f32

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
except ImportError as e:
    print(f"torchvision_resnet: {e} (Debian: python3-torch, python3-torchvision)", file=sys.stderr)
    sys.exit(3)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ssld_torch  # noqa: E402  (read_safetensors)

_DTYPE_NAMES = {torch.float32: "F32", torch.int64: "I64"}


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
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    shape = [int(s) for s in args.shape.split(",")]
    torch.set_num_threads(1)
    return compare(args, shape) if args.mode == "compare" else export(args, shape)


if __name__ == "__main__":
    sys.exit(main())
