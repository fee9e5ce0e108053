"""it_export_resnet.py - a ResNet's weights out of one job and into another, through a real ssld.

Job A trains a small resnet18 (cifar stem, width 1/16) with SimCLR for a few steps on a slice of
Fashion-MNIST. `ssld export A's job dir` then rebuilds that encoder from the job's config (stem
and width included) for both formats: ONNX, and torchvision's state-dict names, whose tensors
must be A's byte for byte. Job B starts from the torchvision file (init_from) and writes its
encoder before anything trains it: every tensor must equal the file's, byte for byte; job C
likewise from the file as torch saves a whole state dict (fc.*, I64 num_batches_tracked). Files that
do not fit the job's encoder are refused at submit with 400 naming init_from: another width,
another depth either way, a cnn. Usage: it_export_resnet.py SSLD. Exit 77 without Fashion-MNIST.
"""
import json
import os
import struct
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "service"))
from ssld_harness import FASHION, Daemon, check, run, skip_unless_dataset, ssld  # noqa: E402

MODEL = {"encoder": "resnet18", "stem": "cifar", "width": 0.0625}


def read_safetensors(path):
    """{name: (dtype, shape, raw bytes)} of a safetensors file (stdlib only)."""
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n])
    header.pop("__metadata__", None)
    data = blob[8 + n:]
    return {k: (v["dtype"], v["shape"], data[v["data_offsets"][0]:v["data_offsets"][1]])
            for k, v in header.items()}


def write_safetensors(path, tensors):
    """{name: (dtype, shape, raw bytes)} as a safetensors file, as torch's writer lays it out."""
    header, off = {}, 0
    for k, (dtype, shape, raw) in tensors.items():
        header[k] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + len(raw)]}
        off += len(raw)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(raw for _, _, raw in tensors.values()))


def job_spec(name, model, **extra):
    spec = {"name": name, "method": "simclr", "model": model, "seed": 5, "threads": 1,
            "dataset": {"name": "fashion-mnist", "limit_train": 256, "limit_test": 64},
            "pretrain": {"max_steps": 4, "batch_size": 32}, "evaluations": []}
    spec.update(extra)
    return spec


def submit_ok(d, spec):
    s, body = d.post("/v1/jobs", spec)
    check(s == 201, "POST %s -> %d %s" % (spec["name"], s, body))
    j = d.wait_state(body["id"], ("succeeded", "failed", "cancelled"), timeout=180)
    check(j["state"] == "succeeded", "job %s: %s" % (spec["name"], j))
    return os.path.join(d.state_dir, "jobs", str(body["id"]))


def refused(d, spec, want):
    s, body = d.post("/v1/jobs", spec)
    err = (body or {}).get("error", {})
    check(s == 400 and err.get("field") == "init_from" and want in err.get("message", ""),
          "%s: expected 400 naming init_from with %r, got %d %s" % (spec["name"], want, s, body))
    print("refused %s: %s" % (spec["name"], err["message"]))


def main(exe):
    skip_unless_dataset()
    tmp = tempfile.mkdtemp(prefix="ssld-resnet-")
    d = Daemon(exe)
    try:
        d.start("--workers", "1", "--data-root", os.path.dirname(FASHION), "--data-root", tmp)
        a_dir = submit_ok(d, job_spec("resnet-a", MODEL))

        # ONNX from the job dir: the encoder is rebuilt with its stem and width.
        onnx = os.path.join(tmp, "a.onnx")
        p = ssld(exe, "export", a_dir, "--format", "onnx", "--out", onnx, check_rc=0)
        check("resnet18 encoder, input (N,1,28,28) -> features (N,32)" in p.stdout, p.stdout)
        check(os.path.getsize(onnx) > 1000, "%s is %d bytes" % (onnx, os.path.getsize(onnx)))

        # torchvision names: A's tensors without the prefix, plus num_batches_tracked.
        tv = os.path.join(tmp, "tv.safetensors")
        p = ssld(exe, "export", a_dir, "--format", "torchvision", "--out", tv, check_rc=0)
        print(p.stdout.strip())
        a = read_safetensors(os.path.join(a_dir, "encoder.safetensors"))
        t = read_safetensors(tv)
        mine = {k[len("encoder."):]: v for k, v in a.items()}
        check(len(mine) == 100 and all(k.startswith("encoder.") for k in a), "A's tensors: %s" % sorted(a)[:5])
        check({k for k in t if not k.endswith("num_batches_tracked")} == set(mine),
              "the torchvision file's names differ from A's: %s" % sorted(set(t) ^ set(mine))[:6])
        check(all(t[k] == mine[k] for k in mine), "a tensor of the torchvision file differs from A's")
        check(any(k.endswith("running_var") and v[2] != struct.pack("<f", 1.0) * (len(v[2]) // 4)
                  for k, v in t.items()), "A's BatchNorm statistics never moved: the check proves little")

        # Job B starts from that file: its encoder at step 0 is the file.
        b_dir = submit_ok(d, job_spec("resnet-b", MODEL, init_from=tv))
        b = read_safetensors(os.path.join(b_dir, "encoder.safetensors"))
        check(set(b) == set(a), "B's tensors differ in names from A's")
        bad = [k for k in mine if b["encoder." + k] != t[k]]
        check(not bad, "B's encoder differs from the torchvision file at %s" % bad[:5])
        print("job B starts from the torchvision file: %d tensors equal byte for byte" % len(mine))

        # torch's own state dict has fc.* and I64 num_batches_tracked too: they are left out.
        torch_like = dict(t, **{"fc.weight": ("F32", [10, 32], bytes(4 * 320)),
                                "fc.bias": ("F32", [10], bytes(40))})
        torch_like.update({k: ("I64", [], struct.pack("<q", 7)) for k in t if k.endswith("num_batches_tracked")})
        torch_file = os.path.join(tmp, "torch.safetensors")
        write_safetensors(torch_file, torch_like)
        c_dir = submit_ok(d, job_spec("resnet-c", MODEL, init_from=torch_file))
        c = read_safetensors(os.path.join(c_dir, "encoder.safetensors"))
        check(all(c["encoder." + k] == t[k] for k in mine), "C's encoder differs from the torch-style file")

        # Files that do not fit: 400 naming init_from, nothing queued.
        refused(d, job_spec("wider", dict(MODEL, width=0.125), init_from=tv),
                "\"conv1.weight\" has shape (4,1,3,3), model resnet18 (stem cifar, width 0.125, "
                "1 input channel) needs (8,1,3,3)")
        refused(d, job_spec("deeper", dict(MODEL, encoder="resnet34"), init_from=tv),
                "has no tensor \"layer1.2.conv1.weight\"")
        refused(d, job_spec("cnn", {"encoder": "cnn"}, init_from=tv), "model.encoder is cnn")
        extra = os.path.join(tmp, "extra.safetensors")
        write_safetensors(extra, dict(t, **{"layer1.2.conv1.weight": ("F32", [4, 4, 3, 3], bytes(4 * 144))}))
        refused(d, job_spec("extra", MODEL, init_from=extra), "tensor \"layer1.2.conv1.weight\" has no place")
        s, listing = d.get("/v1/jobs")
        check(s == 200 and len(listing["jobs"]) == 3, "refused jobs were queued: %s" % listing)
    finally:
        d.cleanup()
        for root, dirs, files in os.walk(tmp, topdown=False):
            for f in files:
                os.unlink(os.path.join(root, f))
            os.rmdir(root)


if __name__ == "__main__":
    run(main)
