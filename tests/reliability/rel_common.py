"""rel_common.py - shared pieces of the reliability tests (stdlib only).

small_dataset(dir): the first 4096 training and 256 test images of Fashion-MNIST as raw
(uncompressed) IDX files in dir, so a job restarted 20 times does not spend most of each
start-up decompressing 60,000 images; the daemon is started with `--data-root dir`.
idx_job(...): ssld_harness.short_job on those files (2 epochs unless pretrain says otherwise).
CKPT, sha(path): a job's checkpoint file name, and a file's SHA-256 to tell whether it changed.
"""
import gzip
import hashlib
import os
import struct
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "service"))
from ssld_harness import FASHION, short_job  # noqa: E402

CKPT = "checkpoint.safetensors"


def sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


FILES = {"train_images": ("train-images-idx3-ubyte.gz", 4096), "train_labels": ("train-labels-idx1-ubyte.gz", 4096),
         "test_images": ("t10k-images-idx3-ubyte.gz", 256), "test_labels": ("t10k-labels-idx1-ubyte.gz", 256)}


def small_dataset(out_dir):
    """{spec key: path} of the four IDX files written into out_dir."""
    paths = {}
    for key, (name, n) in FILES.items():
        with gzip.open(os.path.join(FASHION, name), "rb") as f:
            magic, count = struct.unpack(">II", f.read(8))
            ndim = magic & 0xff
            dims = struct.unpack(">%dI" % (ndim - 1), f.read(4 * (ndim - 1))) if ndim > 1 else ()
            per = 1
            for x in dims:
                per *= x
            body = f.read(per * n)
        path = os.path.join(out_dir, name[:-3])
        with open(path, "wb") as f:
            f.write(struct.pack(">II", magic, n))
            f.write(struct.pack(">%dI" % len(dims), *dims))
            f.write(body)
        paths[key] = path
    return paths


def idx_job(name, files, hidden=(512, 512), pretrain=None, extra=None):
    spec = short_job(name, hidden=hidden)
    spec["dataset"] = dict(format="idx", **files)
    spec["pretrain"] = pretrain or {"epochs": 2, "batch_size": 64}
    if extra:
        spec.update(extra)
    return spec
