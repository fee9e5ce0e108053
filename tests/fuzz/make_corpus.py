#!/usr/bin/env python3
"""make_corpus.py - writes the seed corpora in tests/fuzz/corpus/<harness>/ (small valid and
invalid examples of each input the harnesses take; see each fuzz_*.c for the input layout).

Run it from anywhere: python3 tests/fuzz/make_corpus.py. It only (re)writes the seeds it names
("seed-*" files); inputs that crashed a harness once are kept beside them as "crash-*" /
"regress-*" files and are never touched here. Deterministic: same bytes every run.
"""
import json, os, struct, sys, zlib, gzip, io

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SPLIT = b"\n--8<--\n"


def out(harness, name, data):
    d = os.path.join(HERE, "corpus", harness)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


def gz(b):
    bio = io.BytesIO()
    with gzip.GzipFile(fileobj=bio, mode="wb", mtime=0) as g:
        g.write(b)
    return bio.getvalue()


# ---- jobspec -------------------------------------------------------------------------------
def jobspec():
    for p in sorted(os.listdir(os.path.join(ROOT, "examples"))):
        if p.endswith(".json"):
            out("jobspec", "example-" + p, open(os.path.join(ROOT, "examples", p), "rb").read())
    small = {"method": "simclr", "dataset": {"format": "csv", "train": "train.csv", "test": "test.csv",
             "label_column": 0, "header": "auto"},
             "model": {"encoder": "mlp", "hidden": [16]}, "pretrain": {"epochs": 1, "batch_size": 8}}
    specs = {
        "csv.json": small,
        "idx.json": {"method": "byol", "dataset": {"format": "idx", "train_images": "images.idx",
                     "train_labels": "labels.idx", "test_images": "images.idx", "test_labels": "labels.idx"},
                     "evaluations": [{"protocol": "knn", "k": 5}, {"protocol": "linear_probe",
                     "label_fractions": [0.1, 1.0]}]},
        "text.json": {"method": "autoregressive_lm", "dataset": {"format": "text", "files": ["a.txt", "b.txt"]}},
        "records.json": {"method": "masked_lm", "dataset": {"format": "text_records", "files": ["a.txt"],
                         "max_record_bytes": 64}},
        "captions.json": {"method": "clip", "dataset": {"format": "captions", "file": "captions.jsonl"}},
        "fmdir.json": {"method": "mae", "dataset": {"name": "fashion-mnist", "dir": "fm", "limit_train": 64}},
        "init.json": {"method": "vicreg", "dataset": "fashion-mnist", "init_from": "ckpt.safetensors",
                      "priority": 3, "seed": 18446744073709551615, "threads": 1},
        "augment.json": {"method": "simclr", "dataset": "fashion-mnist", "augment": {"preset": "simclr",
                         "blur": {"p": 0.5}}, "augment2": "light"},
    }
    for k, v in specs.items():
        out("jobspec", k, json.dumps(v))
    bad = {
        "empty.json": "", "array.json": "[]", "null.json": "null", "obj.json": "{}",
        "unknown-key.json": '{"method":"simclr","dataset":"fashion-mnist","epochz":3}',
        "wrong-type.json": '{"method":"simclr","dataset":"fashion-mnist","pretrain":{"epochs":"3"}}',
        "negative-lr.json": '{"method":"simclr","dataset":"fashion-mnist","pretrain":{"optimizer":{"name":"sgd","lr":-1}}}',
        "huge.json": '{"method":"simclr","dataset":"fashion-mnist","pretrain":{"epochs":1e999,"batch_size":99999999999999999999}}',
        "deep.json": '{"a":' * 200 + '1' + '}' * 200,
        "traversal.json": '{"method":"simclr","dataset":{"format":"csv","train":"../../../etc/passwd"}}',
        "absolute.json": '{"method":"simclr","dataset":{"format":"csv","train":"/etc/passwd"}}',
        "truncated.json": '{"method":"simclr","dataset":{"format":"csv","tr',
        "trailing.json": '{"method":"simclr","dataset":"fashion-mnist"} x',
        "dup.json": '{"method":"simclr","method":"byol","dataset":"fashion-mnist"}',
        "escapes.json": '{"name":"\\u00e9\\ud83d\\ude00\\u0000x","method":"simclr","dataset":"fashion-mnist"}',
        "bad-method.json": '{"method":"simclrr","dataset":"fashion-mnist"}',
        "params.json": '{"method":"moco","dataset":"fashion-mnist","params":{"queue_size":-5,"temperature":0}}',
        "float-overflow.json": '{"method":"simclr","dataset":"fashion-mnist","pretrain":{"optimizer":{"weight_decay":8.8e67}},"evaluations":[{"protocol":"supervised","weight_decay":1e39}]}',
        "fractions.json": '{"method":"simclr","dataset":"fashion-mnist","evaluations":[{"protocol":"linear_probe","label_fractions":[0,1.5,0.1,0.1,0.1,0.1,0.1,0.1,0.1]}]}',
    }
    for k, v in bad.items():
        out("jobspec", k, v)


# ---- api -----------------------------------------------------------------------------------
GET, POST, HEAD, PUT, DELETE, OPTIONS, PATCH, BREW = range(8)


def req(method, url, auth="", body="", flags=0):
    return bytes([method | flags]) + url.encode() + b"\n" + auth.encode() + b"\n" + (
        body.encode() if isinstance(body, str) else body)


def api():
    tok = "Bearer fuzz-token"
    job = json.dumps({"method": "simclr", "dataset": {"format": "csv", "train": "train.csv"},
                      "model": {"encoder": "mlp", "hidden": [8]}, "pretrain": {"epochs": 1}})
    seeds = {
        "root": req(GET, "/v1"), "jobs": req(GET, "/v1/jobs?state=queued,running&limit=5&owner=fuzzer"),
        "jobs-before": req(GET, "/v1/jobs?before=2&limit=1000"), "job1": req(GET, "/v1/jobs/1"),
        "metrics": req(GET, "/v1/jobs/1/metrics?keys=loss,lr&max_points=10&after=3"),
        "events": req(GET, "/v1/jobs/1/events?after=0&limit=2"),
        "artifacts": req(GET, "/v1/jobs/1/artifacts"),
        "artifact": req(GET, "/v1/jobs/1/artifacts/views.png"),
        "artifact-missing": req(GET, "/v1/jobs/1/artifacts/..%2f..%2fssld.db"),
        "methods": req(GET, "/v1/methods"), "health": req(HEAD, "/v1/health"),
        "prometheus": req(GET, "/metrics", tok), "static": req(GET, "/"), "static-js": req(GET, "/js/app.js"),
        "traversal": req(GET, "/../../etc/passwd"), "traversal-enc": req(GET, "/%2e%2e/%2e%2e/etc/passwd"),
        "bigid": req(GET, "/v1/jobs/99999999999999999999999"), "negid": req(GET, "/v1/jobs/-1/metrics"),
        "unknown-param": req(GET, "/v1/jobs?bogus=1&limit=abc"), "bad-limit": req(GET, "/v1/jobs?limit=0x10"),
        "submit": req(POST, "/v1/jobs", tok, job), "submit-noauth": req(POST, "/v1/jobs", "", job),
        "submit-badtoken": req(POST, "/v1/jobs", "Bearer nope", job),
        "submit-bad": req(POST, "/v1/jobs", tok, '{"method":"simclr","dataset":{"format":"csv","train":"../x"}}'),
        "submit-nul": req(POST, "/v1/jobs", tok, b'{"method":"\x00"}'),
        "submit-expect": req(POST, "/v1/jobs", tok, job, flags=8),
        "submit-huge": req(POST, "/v1/jobs", tok, job, flags=16),
        "cancel": req(POST, "/v1/jobs/2/cancel", tok), "cancel-done": req(POST, "/v1/jobs/1/cancel", tok),
        "delete": req(DELETE, "/v1/jobs/1", tok), "put": req(PUT, "/v1/jobs", tok, "{}"),
        "options": req(OPTIONS, "/v1/jobs"), "brew": req(BREW, "/coffee"),
        "query-enc": req(GET, "/v1/jobs/1/metrics?keys=%6coss%2C%00&after=%2b1"),
        "space": req(GET, "/v1/jobs/1 /events"),
    }
    for k, v in seeds.items():
        out("api", k, v)


# ---- idx -----------------------------------------------------------------------------------
def idx_images(n, h, w, c=None):
    if c is None:
        hdr = struct.pack(">IIII", 0x803, n, h, w)
        size = n * h * w
    else:
        hdr = struct.pack(">IIIII", 0x804, n, c, h, w)
        size = n * c * h * w
    return hdr + bytes((i * 37) & 255 for i in range(size))


def idx_labels(n, k=10):
    return struct.pack(">II", 0x801, n) + bytes(i % k for i in range(n))


def idx():
    im, lb = idx_images(6, 4, 3), idx_labels(6)
    out("idx", "raw", b"\x00" + im + SPLIT + lb)
    out("idx", "gz-by-harness", b"\x01" + im + SPLIT + lb)
    out("idx", "separate-test", b"\x03" + im + SPLIT + lb)
    out("idx", "holdout", b"\x04" + idx_images(10, 2, 2) + SPLIT + idx_labels(10, 3))
    out("idx", "limit", b"\x30" + im + SPLIT + lb)
    out("idx", "4d", b"\x00" + idx_images(4, 2, 2, c=3) + SPLIT + idx_labels(4))
    out("idx", "gz-stream", b"\x00" + gz(im) + SPLIT + gz(lb))
    out("idx", "gz-truncated", b"\x00" + gz(im)[:-6] + SPLIT + gz(lb))
    out("idx", "count-mismatch", b"\x00" + im + SPLIT + idx_labels(5))
    out("idx", "bad-magic", b"\x00" + b"\x00\x00\x08\x02" + im[4:] + SPLIT + lb)
    out("idx", "truncated", b"\x00" + im[:-3] + SPLIT + lb)
    out("idx", "trailing", b"\x00" + im + b"xx" + SPLIT + lb)
    out("idx", "huge-count", b"\x00" + struct.pack(">IIII", 0x803, 100000000, 28, 28) + SPLIT + lb)
    out("idx", "zero-dim", b"\x00" + struct.pack(">IIII", 0x803, 1, 0, 28) + SPLIT + lb)


# ---- csv -----------------------------------------------------------------------------------
def csv():
    seeds = {
        "header": "\x00f1,f2,f3,label\r\n1,2,3,0\r\n4,5,6,2\r\n\r\n\"7\",8e-1,-9,1\r\n",
        "names": "\x00a,b,cls\n1,2,cat\n3,4,dog\n5,6,cat\n7,8,\n",
        "noheader-first": "\x05" + "0,1.5,2\n1,2.5,3\n2,-1,4\n",
        "test-same": "\x10" + "1,2,0\n3,4,1\n",
        "frac-half": "\x20" + "1,2,0\n3,4,1\n5,6,1\n7,8,0\n",
        "gz": "\x40" + "1,2,1\n3,4,0\n5,6,1\n7,8,0\n9,10,1\n",
        "quoted": "\x00" + '"a,b",c\n"1",2\n"3""",4\n',
        "ragged": "\x00" + "1,2,3\n4,5\n",
        "nan": "\x01" + "nan,1,0\ninf,2,1\n",
        "empty": "\x00",
        "blank": "\x00\n\n\n",
        "unterminated-quote": "\x00" + '1,"2\n3,4\n',
        "label-col-oob": "\x0c" + "1,2\n3,4\n",
        "long-field": "\x00" + "1," + "9" * 5000 + ",0\n",
    }
    for k, v in seeds.items():
        out("csv", k, v.encode("latin-1"))


# ---- text ----------------------------------------------------------------------------------
def text():
    fortunes = "A fortune.\n%\nAnother one,\nover two lines.\n%\n%\nThird.\n"
    seeds = {
        "stream": b"\x00" + b"hello world, a small text stream\n" * 4,
        "stream-two": b"\x10" + b"first file\n" + SPLIT + b"second file\n",
        "stream-short": b"\x00abc",
        "records": b"\x01" + fortunes.encode() + SPLIT + b"Other.\n%\nFile.\n%\nTwo.\n",
        "records-three": b"\x05" + fortunes.encode() + SPLIT + b"x\n%\ny\n" + SPLIT + b"z\n%\nw\n%\nv\n",
        "records-tab": b"\x03" + b"pos\tgood film\nneg\tbad film\npos\tnice\nneg\tawful\n\tno label\nnolabel\n",
        "records-gz": b"\x81" + fortunes.encode(),
        "records-big": b"\x0d" + ("x" * 400 + "\n%\n").encode() * 3,
        "nul": b"\x00ab\x00cd",
        "bom": b"\x00\xff\xfeh\x00i\x00",
        "utf8": "\x01caf\u00e9\n%\n\u65e5\u672c\n%\n\U0001F600\n".encode(),
        "empty-file": b"\x01" + SPLIT + b"a\n%\nb\n",
    }
    for k, v in seeds.items():
        out("text", k, v)


# ---- png -----------------------------------------------------------------------------------
def chunk(t, d):
    return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)


def png(w, h, depth, ctype, rows, extra=b"", interlace=0):
    raw = b"".join(b"\x00" + r for r in rows)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, ctype, 0, 0, interlace))
            + extra + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def pngs():
    g = png(4, 4, 8, 0, [bytes((r * 4 + c) * 16 for c in range(4)) for r in range(4)])
    rgb = png(3, 2, 8, 2, [bytes((r * 9 + c * 3 + k) * 10 for c in range(3) for k in range(3)) for r in range(2)])
    ga = png(2, 2, 8, 4, [b"\x10\x80\x20\xff", b"\x30\x00\x40\x40"])
    rgba = png(2, 1, 8, 6, [b"\x10\x20\x30\x80\xff\x00\x00\xff"])
    g16 = png(2, 2, 16, 0, [b"\x12\x34\xff\xff", b"\x00\x00\x80\x00"])
    g1 = png(8, 2, 1, 0, [b"\xa5", b"\x5a"])
    pal = png(2, 2, 8, 3, [b"\x00\x01", b"\x01\x00"], extra=chunk(b"PLTE", b"\xff\x00\x00\x00\x00\xff"))
    trns = png(2, 2, 8, 3, [b"\x00\x01", b"\x01\x00"],
               extra=chunk(b"PLTE", b"\xff\x00\x00\x00\x00\xff") + chunk(b"tRNS", b"\x80"))
    inter = png(4, 4, 8, 0, [bytes((r * 4 + c) * 16 for c in range(4)) for r in range(4)], interlace=1)
    seeds = {"gray": b"\x00" + g, "gray-as-rgb": b"\x02" + g, "rgb": b"\x00" + rgb, "rgb-as-gray": b"\x01" + rgb,
             "ga": b"\x00" + ga, "rgba": b"\x02" + rgba, "g16": b"\x00" + g16, "g1": b"\x00" + g1,
             "palette": b"\x00" + pal, "trns": b"\x00" + trns, "bad-crc": b"\x00" + g[:-5] + b"\x00" + g[-4:],
             "truncated": b"\x00" + g[:40], "not-png": b"\x00GIF89a", "empty": b"\x00",
             "huge-dims": b"\x00" + b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 100000, 100000, 8, 0, 0, 0, 0)),
             "interlaced": b"\x00" + inter}
    for k, v in seeds.items():
        out("png", k, v)
    return g, rgb


# ---- image (JPEG and PNG decoders) -----------------------------------------------------------
def jpegs():
    """JPEG seeds need an encoder: python3-pil when it is installed (else the PNG seeds only)."""
    try:
        from PIL import Image
    except ImportError:
        return {}
    res = {}
    def enc(img, **kw):
        bio = io.BytesIO()
        img.save(bio, "JPEG", **kw)
        return bio.getvalue()
    rgb = Image.new("RGB", (16, 12))
    rgb.putdata([(x * 16, y * 20, 200) for y in range(12) for x in range(16)])
    res["jpeg-rgb"] = enc(rgb, quality=90)
    res["jpeg-gray"] = enc(rgb.convert("L"), quality=90)
    res["jpeg-progressive"] = enc(rgb, quality=80, progressive=True)
    res["jpeg-cmyk"] = enc(rgb.convert("CMYK"), quality=90)
    exif = Image.Exif()
    exif[0x0112] = 6
    res["jpeg-exif6"] = enc(rgb, quality=90, exif=exif.tobytes())
    res["jpeg-truncated"] = res["jpeg-rgb"][: len(res["jpeg-rgb"]) // 2]
    return res


def images(g, rgb):
    seeds = {"png-gray": b"\x00" + g, "png-rgb-shorter": b"\x12" + rgb, "png-rgb-stretch": b"\x16" + rgb,
             "png-crop": b"\x2a" + rgb, "text": b"\x00hello, this is not an image\n", "empty": b"\x00",
             "png-huge-dims": b"\x00" + b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 100000, 100000, 8, 2, 0, 0, 0))
             + chunk(b"IDAT", b"")}
    for k, v in jpegs().items():
        seeds[k] = b"\x22" + v
    for k, v in seeds.items():
        out("image", k, v)


# ---- captions ------------------------------------------------------------------------------
def captions():
    seeds = {
        "index": "\x00" + "\n".join(json.dumps({"image": i, "caption": "a photo of item %d" % i}) for i in range(6)) + "\n",
        "index-label": "\x08" + '{"image": 3, "caption": "x", "label": 7}\n{"caption": "y", "image": 19, "extra": {"a": [1, {"b": null}]}}\n',
        "index-limit": "\x02" + "\n".join('{"image": %d, "caption": "c%d"}' % (i, i) for i in range(10)),
        "index-oob": "\x00" + '{"image": 20, "caption": "past the end"}\n',
        "index-negative": "\x00" + '{"image": -1, "caption": "neg"}\n',
        "paths-gray": "\x08" + '{"image": "g.png", "caption": "gray", "label": 0}\n{"image": "a.png", "caption": "alpha", "label": 1}\n{"image": "g.png", "caption": "again"}\n',
        "paths-rgb": "\x18" + '{"image": "c.png", "caption": "colour \\u00e9 \\ud83d\\ude00"}\n{"image": "g.png", "caption": "gray as rgb"}\n',
        "paths-shape": "\x00" + '{"image": "g.png", "caption": "a"}\n{"image": "w.png", "caption": "b"}\n',
        "paths-missing": "\x00" + '{"image": "nope.png", "caption": "a"}\n',
        "mixed": "\x00" + '{"image": 1, "caption": "a"}\n{"image": "g.png", "caption": "b"}\n',
        "escapes": "\x00" + '{"image": 0, "caption": "\\"q\\" \\\\ \\/ \\b\\f\\n\\r\\t \\u0041 \\udc00"}\n',
        "blank-lines": "\x00\n   \n\t\n" + '{"image": 0, "caption": "x"}\r\n\n',
        "unterminated": "\x00" + '{"image": 0, "caption": "x\n',
        "no-caption": "\x00" + '{"image": 0}\n',
        "deep": "\x00" + '{"image": 0, "caption": "x", "z": ' + "[" * 40 + "]" * 40 + "}\n",
        "big-int": "\x00" + '{"image": 99999999999999999999999, "caption": "x"}\n',
        "empty": "\x00",
    }
    for k, v in seeds.items():
        out("captions", k, v)


# ---- safetensors ---------------------------------------------------------------------------
def st_file(tensors, meta=None, pad=True, header_override=None):
    hdr, data = {}, b""
    for name, dtype, shape, vals in tensors:
        b = struct.pack("<%df" % len(vals), *vals) if dtype == "F32" else bytes(vals)
        hdr[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(b)]}
        data += b
    if meta is not None:
        hdr["__metadata__"] = meta
    h = header_override if header_override is not None else json.dumps(hdr, separators=(",", ":")).encode()
    if pad:
        h += b" " * ((8 - (8 + len(h)) % 8) % 8)
    return struct.pack("<Q", len(h)) + h + data


def safetensors(checked):
    ps = [("fc.weight", "F32", [3, 2], [0.5 * i for i in range(6)]), ("fc.bias", "F32", [3], [1, 2, 3]),
          ("bn.mean", "F32", [3], [0, 0, 1])]
    meta = {"ssld.format": "1", "ssld.step": "12", "ssld.epoch": "1", "ssld.elapsed_s": "3.5",
            "ssld.rng": "0123456789abcdef 1 2 3", "ssld.method": "simclr", "ssld.encoder_config": "{\"encoder\":\"mlp\"}"}
    seeds = {
        "plain": b"\x00" + st_file(ps), "meta": b"\x00" + st_file(ps, meta), "allow": b"\x06" + st_file(ps[:2] + [("x", "F32", [1], [9])]),
        "online": b"\x1e" + st_file([("online." + n, d, s, v) for n, d, s, v in ps], meta),
        "prefix-load": b"\x10" + st_file([("online." + n, d, s, v) for n, d, s, v in ps]),
        "shape-mismatch": b"\x00" + st_file([("fc.weight", "F32", [2, 3], list(range(6)))] + ps[1:]),
        "f16": b"\x00" + st_file([("fc.weight", "F16", [3, 2], list(range(12)))]),
        "scalar": b"\x00" + st_file([("s", "F32", [], [1.0])]),
        "zero-dim": b"\x06" + st_file([("z", "F32", [0, 4], [])] + ps),
        "bad-offsets": b"\x00" + st_file(ps, header_override=b'{"fc.weight":{"dtype":"F32","shape":[3,2],"data_offsets":[0,999]}}'),
        "overlap": b"\x00" + st_file(ps, header_override=b'{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}'),
        "huge-header-len": b"\x00" + struct.pack("<Q", 1 << 62) + b"{}",
        "short": b"\x00\x02\x00",
        "not-json": b"\x00" + struct.pack("<Q", 8) + b"not json",
        "escaped-name": b"\x00" + st_file([("fc.\\u0077eight", "F32", [3, 2], [0] * 6)]),
        "unpadded": b"\x00" + st_file(ps, pad=False),
        "checked-unchecked": b"\x01" + st_file(ps, meta),
    }
    for k, v in seeds.items():
        out("safetensors", k, v)
    for i, b in enumerate(checked):
        out("safetensors", "ssld-%d" % i, b"\x01" + b)
        out("safetensors", "ssld-%d-relaxed" % i, b"\x0e" + b)


def archives():
    """fuzz_archive: one control byte (bit 0: unpack to disk, else check only), then the archive."""
    import tarfile, zipfile

    def tar(members, mode="w"):
        bio = io.BytesIO()
        with tarfile.open(fileobj=bio, mode=mode, format=tarfile.GNU_FORMAT, encoding="utf-8",
                          errors="surrogateescape") as t:
            for name, kind, data, link in members:
                ti = tarfile.TarInfo(name)
                ti.type, ti.mtime, ti.linkname = kind, 0, link
                ti.size = len(data) if kind == tarfile.REGTYPE else 0
                t.addfile(ti, io.BytesIO(data) if kind == tarfile.REGTYPE else None)
        return bio.getvalue()

    def f(name, data=b"x"):
        return (name, tarfile.REGTYPE, data, "")

    folder = [f("red/0.png", b"\x89PNG" * 8), f("blue/0.png"), f("train/red/1.png"), ("empty", tarfile.DIRTYPE, b"", "")]
    zb = io.BytesIO()
    with zipfile.ZipFile(zb, "w", zipfile.ZIP_DEFLATED) as z:
        for n in ("a/1.png", "a/2.png", "b/1.txt"):
            z.writestr(zipfile.ZipInfo(n, (1980, 1, 1, 0, 0, 0)), b"data " * 20)
    seeds = {
        "tar": b"\x01" + tar(folder),
        "tar-check": b"\x00" + tar(folder),
        "zip": b"\x01" + zb.getvalue(),
        "dotdot": b"\x01" + tar([f("a/../../x")]),
        "absolute": b"\x01" + tar([f("/tmp/x")]),
        "symlink": b"\x01" + tar([("a/l", tarfile.SYMTYPE, b"", "/etc/passwd"), f("a/l/x")]),
        "hardlink": b"\x01" + tar([f("a/x"), ("a/h", tarfile.LNKTYPE, b"", "a/x")]),
        "duplicate": b"\x01" + tar([f("a/x"), f("a/x")]),
        "file-then-dir": b"\x01" + tar([f("a"), f("a/b")]),
        "utf8": b"\x01" + tar([f("a/\udcff")]),
        "not-archive": b"\x01" + b"plain text\n" * 10,
    }
    bio = io.BytesIO()
    with gzip.GzipFile(fileobj=bio, mode="wb", mtime=0) as g:
        g.write(tar(folder))
    seeds["tar-gz"] = b"\x01" + bio.getvalue()
    for k, v in seeds.items():
        out("archive", k, v)


# ---- audio ---------------------------------------------------------------------------------
def wav(frames, channels=1, rate=16000, bits=16, fmt=1, data_len=None, extra=b""):
    """A RIFF/WAVE file of `frames` samples per channel (a ramp), PCM (fmt 1) or float (fmt 3)."""
    n = frames * channels
    if fmt == 3:
        body = b"".join(struct.pack("<f", ((i % 50) - 25) / 25.0) for i in range(n))
        bits = 32
    elif bits == 8:
        body = bytes((i * 7) & 255 for i in range(n))
    else:
        body = b"".join(struct.pack("<h", ((i * 613) % 20000) - 10000) for i in range(n))
    align = channels * bits // 8
    fmt_chunk = struct.pack("<HHIIHH", fmt, channels, rate, rate * align, align, bits)
    dl = len(body) if data_len is None else data_len
    chunks = b"fmt " + struct.pack("<I", 16) + fmt_chunk + extra + b"data" + struct.pack("<I", dl) + body
    return b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WAVE" + chunks


def audio():
    ctl = b"\x05"                       # 16 kHz, 98 samples
    out("audio", "mono16", ctl + wav(200))
    out("audio", "stereo8-22k", b"\x06" + wav(150, channels=2, rate=22050, bits=8))
    out("audio", "float-8ch", b"\x1d" + wav(60, channels=8, fmt=3, rate=48000))
    out("audio", "zero-frames", ctl + wav(0))
    out("audio", "zero-channels", ctl + wav(10, channels=0))
    out("audio", "truncated", ctl + wav(200)[:300])
    out("audio", "long-header", ctl + wav(100, data_len=10**9))
    out("audio", "not-audio", ctl + b"hello, this is not a sound file\n" * 4)


if __name__ == "__main__":
    audio()
    archives()
    jobspec(); api(); idx(); csv(); text(); images(*pngs()); captions()
    checked = [open(p, "rb").read() for p in sys.argv[1:]]   # files written by checkpoint_save
    if not checked:
        d = os.path.join(HERE, "corpus", "safetensors")
        checked = [open(os.path.join(d, f), "rb").read()[1:] for f in sorted(os.listdir(d))
                   if f.startswith("seed-ssld-") and not f.endswith("-relaxed")] if os.path.isdir(d) else []
    safetensors(checked)
