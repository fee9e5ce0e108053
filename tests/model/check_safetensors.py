#!/usr/bin/python3
"""check_safetensors.py - reads checkpoints written by the ssld engine with nothing but the
standard library and NumPy (then with PyTorch) and compares them with the values the engine
reported in a side file; also writes a file the engine must read back.

usage: check_safetensors.py CHECKPOINT EXPORT EXPECTED_JSON OUT_FOR_ENGINE

Exit status: 0 all good, 1 a mismatch (printed), 77 NumPy or PyTorch missing (reason printed).
The `safetensors` package is not in Debian, so the header is parsed with json and tensors are
built with numpy.frombuffer / torch.frombuffer, exactly as the format specifies.
"""
import json
import struct
import sys
import zlib

try:
    import numpy as np
except ImportError as e:
    print(f"SKIP: numpy is not installed ({e})")
    sys.exit(77)

failures = 0


def check(cond, msg):
    global failures
    if not cond:
        failures += 1
        print("FAIL:", msg)


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    check(8 + n <= len(raw), f"{path}: header length {n} beyond the file")
    check((8 + n) % 8 == 0, f"{path}: data section not 8-byte aligned")
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    data = raw[8 + n:]
    meta = header.pop("__metadata__", {})
    check(all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items()),
          f"{path}: __metadata__ must map strings to strings")
    # the format requires contiguous, complete coverage of the data section
    spans = sorted((v["data_offsets"][0], v["data_offsets"][1]) for v in header.values())
    at = 0
    for b, e in spans:
        check(b == at, f"{path}: hole or overlap at byte {b}")
        at = e
    check(at == len(data), f"{path}: tensors cover {at} of {len(data)} data bytes")
    return header, meta, data


def canonical_digest(header, meta):
    """CRC-32 of the canonical header documented in engine/checkpoint.c."""
    c = 0
    items = sorted(header.items(), key=lambda kv: (kv[1]["data_offsets"][0],
                                                   kv[1]["data_offsets"][1], kv[0].encode()))
    for name, v in items:
        c = zlib.crc32(name.encode() + b"\0", c)
        c = zlib.crc32(v["dtype"].encode() + b"\0", c)
        nums = [len(v["shape"])] + list(v["shape"]) + list(v["data_offsets"])
        c = zlib.crc32(b"".join(struct.pack("<Q", x) for x in nums), c)
    for k in sorted(meta, key=lambda s: s.encode()):
        if k == "ssld.header_crc32":
            continue
        c = zlib.crc32(k.encode() + b"\0" + meta[k].encode() + b"\0", c)
    return c


def numpy_tensors(path, header, data):
    out = {}
    for name, v in header.items():
        check(v["dtype"] == "F32", f"{path}: {name} dtype {v['dtype']}")
        b, e = v["data_offsets"]
        arr = np.frombuffer(data[b:e], dtype="<f4").reshape(v["shape"])
        out[name] = arr
    return out


def main():
    ckpt, export, expected_path, out_path = sys.argv[1:5]
    with open(expected_path) as f:
        expected = json.load(f)

    # ---- the full checkpoint, with json + numpy only -------------------------------------------
    header, meta, data = read_safetensors(ckpt)
    check(zlib.crc32(data) == int(meta["ssld.data_crc32"], 16), "data CRC-32 differs from zlib")
    check(canonical_digest(header, meta) == int(meta["ssld.header_crc32"], 16),
          "canonical header CRC-32 differs")
    arrays = numpy_tensors(ckpt, header, data)
    check(set(arrays) == set(expected["tensors"]),
          f"tensor names differ: {sorted(set(arrays) ^ set(expected['tensors']))}")
    for name, want in expected["tensors"].items():
        if name not in arrays:
            continue
        arr = arrays[name]
        check(list(arr.shape) == want["shape"], f"{name}: shape {arr.shape} != {want['shape']}")
        bits = arr.reshape(-1).view("<u4")
        wbits = np.array([int(x, 16) for x in want["bits"]], dtype=np.uint32)
        check(bits.shape == wbits.shape and bool(np.all(bits == wbits)),
              f"{name}: values differ bit-wise")
    for k, v in expected["meta"].items():
        check(meta.get(k) == v, f"metadata {k}: {meta.get(k)!r} != {v!r}")
    cfg = json.loads(meta["ssld.encoder_config"])  # the stored config is itself JSON
    check(cfg.get("kind") == "cnn", f"encoder config {cfg}")

    # ---- the encoder export ----------------------------------------------------------------------
    eh, em, ed = read_safetensors(export)
    check(zlib.crc32(ed) == int(em["ssld.data_crc32"], 16), "export data CRC-32")
    check(canonical_digest(eh, em) == int(em["ssld.header_crc32"], 16), "export header CRC-32")
    ea = numpy_tensors(export, eh, ed)
    for name, arr in ea.items():
        check(name.startswith("encoder."), f"export name {name}")
        src = "online." + name
        check(src in arrays and arrays[src].tobytes() == arr.tobytes(),
              f"export {name} differs from {src}")

    # ---- a file for the engine to read back (what a PyTorch user would hand us) -----------------
    vals = {"x.weight": (np.arange(12, dtype="<f4").reshape(3, 4) * 0.5 - 1.0),
            "x.bias": np.array([-0.0, 1e-40, 3.25], dtype="<f4")}
    hdr, blobs, off = {"__metadata__": {"format": "pt"}}, [], 0
    for name in sorted(vals):
        blob = vals[name].tobytes()
        hdr[name] = {"dtype": "F32", "shape": list(vals[name].shape),
                     "data_offsets": [off, off + len(blob)]}
        blobs.append(blob)
        off += len(blob)
    hb = json.dumps(hdr, separators=(",", ":")).encode()
    hb += b" " * ((8 - (8 + len(hb)) % 8) % 8)
    with open(out_path, "wb") as f:
        f.write(struct.pack("<Q", len(hb)) + hb + b"".join(blobs))

    if failures:
        print(f"{failures} check(s) failed (json + numpy)")
        return 1
    print(f"json + numpy: {len(arrays)} tensors and {len(meta)} metadata keys match bit-exactly")

    # ---- PyTorch --------------------------------------------------------------------------------
    try:
        import torch
    except ImportError as e:
        print(f"SKIP: torch is not installed ({e}); the json + numpy part passed")
        return 77
    for name, v in header.items():
        b, e = v["data_offsets"]
        t = torch.frombuffer(bytearray(data[b:e]), dtype=torch.float32).reshape(v["shape"])
        check(t.view(torch.int32).numpy().tobytes() == arrays[name].tobytes(),
              f"torch {name} differs")
    # the exported encoder loads into the equivalent torch module, strictly
    enc = torch.nn.Module()
    enc.conv1 = torch.nn.Conv2d(1, 4, 3)
    enc.bn1 = torch.nn.BatchNorm2d(4)
    enc.fc = torch.nn.Linear(4, 5)
    state = {}
    for name, v in eh.items():
        b, e = v["data_offsets"]
        state[name[len("encoder."):]] = torch.frombuffer(bytearray(ed[b:e]),
                                                         dtype=torch.float32).reshape(v["shape"])
    missing, unexpected = enc.load_state_dict(state, strict=False)
    check(not unexpected, f"torch: unexpected keys {unexpected}")
    # ssld stores what it has; torch's BatchNorm also wants running_var / num_batches_tracked
    check(set(missing) <= {"bn1.weight", "bn1.bias", "bn1.running_var", "bn1.num_batches_tracked"},
          f"torch: missing keys {missing}")
    check(torch.equal(enc.fc.weight.detach(), state["fc.weight"]), "torch fc.weight")
    x = torch.ones(2, 1, 5, 5)
    y = enc.fc(enc.conv1(x).mean(dim=(2, 3)))
    check(tuple(y.shape) == (2, 5) and bool(torch.isfinite(y).all()), "torch forward")
    if failures:
        print(f"{failures} check(s) failed (torch)")
        return 1
    print(f"torch {torch.__version__}: all tensors equal; exported encoder loads into nn.Module")
    return 0


if __name__ == "__main__":
    sys.exit(main())
