"""it_datasets.py - uploaded datasets in a real ssld: push, list, show, train, delete, limits, attacks.

- alice pushes an image folder built here (JPEG and PNG, 2 classes) as a tar: 201 with per-class
  counts; list and show agree; a job names it as "dataset:alice/flowers" and trains (CNN) to
  success, after which show lists its decoded pixels (decode_cache);
- a tar of WAV class folders built here (2 x 3 tones) is an audio_folder (its "use" names it) and a
  contrastive_audio job on it succeeds; a flat folder of WAVs is an unlabelled audio_folder; an
  archive of images and audio together is refused (400 mixed_media naming one of each);
- bob may read it (loopback reads are open) but his job cannot name it (403) and he cannot delete
  it (403); alice's DELETE is refused (409 naming the job) while a job using it is queued or
  running, and works once it ended (the directory is gone);
- limits: max-upload-bytes, max-dataset-bytes, dataset-quota-bytes (413), max-datasets-per-owner
  (429), max-dataset-files (100,000 tiny members against a bound of 5000, 413) each name the limit;
  two uploads of one owner at once that together pass the quota: exactly one is published;
- archive attacks: "..", an absolute name, a symlink, a hard link, a device, a zip bomb, a
  duplicate name, invalid UTF-8, a body that is not an archive: 400 (the bomb 413) naming the
  problem, and nothing written outside the dataset's directory nor left in the state dir;
- archives are unpacked off the HTTP threads: with one HTTP thread and an unpack held at its start,
  health and the dataset list still answer;
- a client that disconnects mid-upload, and a daemon killed mid-upload, leave nothing behind
  (after the restart's clean-up); at start-up a row whose files are gone is dropped, and files
  without a row (another database's) are moved aside to uploads/.orphans, never deleted.
"""
import gzip
import io
import math
import os
import shutil
import socket
import struct
import sys
import tarfile
import tempfile
import threading
import time
import wave
import zipfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ssld_harness import Daemon, Failure, bearer, check, run, ssld  # noqa: E402

try:
    from PIL import Image
except ImportError:
    Image = None

TAR = {"Content-Type": "application/x-tar"}
TGZ = {"Content-Type": "application/gzip"}
ZIP = {"Content-Type": "application/zip"}


def token(exe, state, name, *flags):
    return ssld(exe, "token", "create", name, "--state-dir", state, *flags, check_rc=0).stdout.strip()


def tar_bytes(members, mode="w"):
    """members: (TarInfo, data bytes or None)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode, format=tarfile.GNU_FORMAT, encoding="utf-8",
                      errors="surrogateescape") as t:
        for ti, data in members:
            t.addfile(ti, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def member(name, data=b"x", kind=tarfile.REGTYPE, link=""):
    ti = tarfile.TarInfo(name)
    ti.type = kind
    ti.size = len(data) if kind == tarfile.REGTYPE else 0
    ti.linkname = link
    return ti, (data if kind == tarfile.REGTYPE else None)


def many_members(n):
    """A tar.gz of n empty files, headers written directly (tarfile takes seconds for 100,000)."""
    base = bytearray(512)
    for off, text in ((100, b"0000644\0"), (108, b"0000000\0"), (116, b"0000000\0"), (124, b"00000000000\0"),
                      (136, b"00000000000\0"), (148, b" " * 8), (156, b"0"), (257, b"ustar\x0000")):
        base[off:off + len(text)] = text
    base_sum = sum(base)
    out = []
    for i in range(n):
        name = b"m/%d.txt" % i
        h = bytearray(base)
        h[0:len(name)] = name
        h[148:156] = b"%06o\0 " % (base_sum + sum(name))
        out.append(bytes(h))
    out.append(b"\0" * 1024)
    return gzip.compress(b"".join(out), 1)


def image_folder_tar():
    members = []
    for cls, colour, n in (("red", (220, 30, 30), 24), ("blue", (30, 30, 220), 20)):
        for i in range(n):
            img = Image.new("RGB", (16, 16), colour)
            img.putpixel((i % 16, (i * 7) % 16), (255, 255, 255))
            b = io.BytesIO()
            # half JPEG, half PNG: a folder of photos as people have them
            img.save(b, "JPEG" if i % 2 else "PNG", **({"quality": 95} if i % 2 else {}))
            members.append(member("%s/%03d.%s" % (cls, i, "jpg" if i % 2 else "png"), b.getvalue()))
    return tar_bytes(members)


def wav_bytes(freq, seconds=0.25, rate=8000):
    """A 16-bit mono WAV of a sine tone."""
    b = io.BytesIO()
    with wave.open(b, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        n = int(seconds * rate)
        w.writeframes(b"".join(struct.pack("<h", int(12000 * math.sin(2 * math.pi * freq * i / rate))) for i in range(n)))
    return b.getvalue()


def audio_folder_tar():
    """2 classes x 3 clips of 0.25 s: low and high tones."""
    return tar_bytes([member("%s/%d.wav" % (cls, i), wav_bytes(f * (1 + 0.1 * i)))
                      for cls, f in (("low", 300.0), ("high", 2000.0)) for i in range(3)])


def push(d, name, body, headers, tok):
    h = dict(headers)
    h.update(bearer(tok))
    return d.call("POST", "/v1/datasets?name=" + name, body, h)


def expect(d, name, body, headers, tok, status, code, words, what):
    s, e = push(d, name, body, headers, tok)
    check(s == status and e and e.get("error", {}).get("code") == code,
          "%s: expected %d %s, got %d %s" % (what, status, code, s, e))
    for w in words:
        check(w in e["error"]["message"], "%s: the message does not say %r: %s" % (what, w, e["error"]["message"]))
    return e


def leftovers(state):
    """Paths under STATE/datasets other than the published datasets' own trees."""
    root = os.path.join(state, "uploads")
    out = []
    for dirpath, dirs, files in os.walk(os.path.join(root, ".tmp")):
        out += [os.path.join(dirpath, f) for f in files + dirs]
    return out


def wait_clean(state, what, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if not leftovers(state):
            return
        time.sleep(0.05)
    raise Failure("%s: the state dir still holds %s" % (what, leftovers(state)))


def image_job(name, ref, epochs=1, max_steps=4):
    return {
        "name": name, "method": "simclr",
        "dataset": {"format": "image_folder", "train": ref, "image_size": 16, "channels": 3,
                    "test_fraction": 0.25},
        "model": {"encoder": "cnn", "channels": [8, 16]},
        "pretrain": {"epochs": epochs, "max_steps": max_steps, "batch_size": 8},
        "evaluations": [],
        "threads": 1, "seed": 1,
    }


def delete(d, tok, name):
    s, e = d.call("DELETE", "/v1/datasets/alice/" + name, None, bearer(tok))
    check(s == 200 and e["deleted"] is True, "delete %s -> %d %s" % (name, s, e))


def audio(d, state, alice):
    """Class folders of WAVs classify as audio_folder and train an audio job; a folder of WAVs
    without classes is an unlabelled audio_folder; images beside audio are refused."""
    s, ds = push(d, "tones", audio_folder_tar(), TAR, alice)
    check(s == 201, "push tones -> %d %s" % (s, ds))
    check(ds["format"] == "audio_folder" and ds["audio"] == 6 and ds["images"] == 0 and
          {c["name"]: c["files"] for c in ds["classes"]} == {"high": 3, "low": 3} and ds["sample_grid"] is None and
          ds["use"] == {"format": "audio_folder", "train": "dataset:alice/tones"}, "push tones: %s" % ds)
    spec = {"name": "tones", "method": "contrastive_audio",
            "dataset": dict(ds["use"], sample_rate=8000, clip_seconds=0.25, n_mels=16, test_fraction=0.34),
            "model": {"encoder": "cnn", "channels": [8, 16]},
            "pretrain": {"epochs": 1, "max_steps": 2, "batch_size": 4}, "evaluations": [], "threads": 1, "seed": 1}
    s, j = d.post("/v1/jobs", spec, bearer(alice))
    check(s == 201, "audio job -> %d %s" % (s, j))
    jj = d.wait_state(j["id"], ("succeeded", "failed", "cancelled"), timeout=120)
    check(jj["state"] == "succeeded", "the audio job on the uploaded dataset: %s" % jj)
    check(jj["spec"]["dataset"]["format"] == "audio_folder" and
          jj["spec"]["dataset"]["train"] == os.path.join(os.path.realpath(state), "uploads", "alice", "tones"),
          "the audio job's stored dataset: %s" % jj["spec"]["dataset"])
    s, one = d.get("/v1/datasets/alice/tones")
    cached = one.get("decode_cache") or []
    check(s == 200 and any(c["list"] == "train" and c["images"] == 6 for c in cached),
          "decode_cache after the audio job: %s" % cached)
    delete(d, alice, "tones")   # alice may hold 3 datasets

    s, flat = push(d, "clips", tar_bytes([member("c%d.WAV" % i, wav_bytes(440.0)) for i in range(3)]), TAR, alice)
    check(s == 201 and flat["format"] == "audio_folder" and flat["classes"] == [] and flat["audio"] == 3 and
          flat["use"]["train"] == "dataset:alice/clips", "push an unlabelled folder of WAVs -> %d %s" % (s, flat))
    delete(d, alice, "clips")

    mixed = tar_bytes([member("a/x.wav", wav_bytes(440.0)), member("b/y.png", b"\x89PNG")])
    expect(d, "mixed", mixed, TAR, alice, 400, "mixed_media", ['"a/x.wav"', '"b/y.png"', "two datasets"],
           "images and audio in one archive")
    check(d.get("/v1/datasets/alice/mixed")[0] == 404, "a refused mixed archive was published")
    wait_clean(state, "a refused mixed archive")
    print("  audio: class folders of WAVs -> audio_folder (2 classes); contrastive_audio on it succeeded; "
          "a flat folder -> unlabelled audio_folder; images with audio -> 400 mixed_media")


def attacks(d, state, alice, tmp):
    outside = os.path.join(tmp, "escaped.png")
    cases = [
        ("dotdot", tar_bytes([member("a/ok.png"), member("../../escaped.png")]), TAR, 400, "unsafe_archive",
         ['".." is not allowed']),
        ("absolute", tar_bytes([member(outside)]), TAR, 400, "unsafe_archive", ["absolute names"]),
        ("symlink", tar_bytes([member("a/l.png", kind=tarfile.SYMTYPE, link="/etc/passwd")]), TAR, 400,
         "unsafe_archive", ["symbolic links"]),
        ("hardlink", tar_bytes([member("a/x.png"), member("a/h.png", kind=tarfile.LNKTYPE, link="a/x.png")]), TAR,
         400, "unsafe_archive", ["hard links"]),
        ("device", tar_bytes([member("a/dev", kind=tarfile.CHRTYPE)]), TAR, 400, "unsafe_archive", ["device files"]),
        ("duplicate", tar_bytes([member("a/x.png", b"1"), member("a/x.png", b"2")]), TAR, 400, "unsafe_archive",
         ["a/x.png", "appears twice"]),
        ("utf8", tar_bytes([member("a/bad\udcff.png")]), TAR, 400, "unsafe_archive", ["not valid UTF-8", "\\xff"]),
        ("not-archive", b"this is plain text, not an archive at all\n" * 20, TAR, 400, "invalid_archive",
         ["not a tar, tar.gz or zip archive"]),
    ]
    zb = io.BytesIO()
    with zipfile.ZipFile(zb, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("bomb/zeros.png", b"\0" * (5 << 20))
    cases.append(("zip-bomb", zb.getvalue(), ZIP, 413, "dataset_too_large", ["bomb/zeros.png", "times its"]))
    for what, body, hdr, status, code, words in cases:
        expect(d, "attack", body, hdr, alice, status, code, words, what)
        check(not os.path.exists(outside), "%s: a file was written outside the dataset" % what)
        s, e = d.get("/v1/datasets/alice/attack")
        check(s == 404, "%s: the refused dataset is visible: %d %s" % (what, s, e))
        check(not os.path.exists(os.path.join(state, "uploads", "alice", "attack")), "%s: its directory exists" % what)
        wait_clean(state, what)
    print("  attacks: %s refused, nothing written" % ", ".join(c[0] for c in cases))


def limits(d, state, alice, bob, ops):
    expect(d, "big", os.urandom(9 << 20), TAR, alice, 413, "upload_too_large", ["max-upload-bytes"], "upload size")
    # A declared 200 MB: answered at once, without reading a body that size.
    with socket.create_connection(("127.0.0.1", d.port), timeout=30) as sock:
        sock.sendall(("POST /v1/datasets?name=huge HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-tar\r\n"
                      "Authorization: Bearer %s\r\nContent-Length: %d\r\n\r\n" % (alice, 200 << 20)).encode())
        answer = b""
        while b"\r\n\r\n" not in answer:
            piece = sock.recv(4096)
            if not piece:
                break
            answer += piece
    check(answer.startswith(b"HTTP/1.1 413"), "a declared 200 MB upload: %r" % answer[:200])
    hexdata = os.urandom(int(2.6 * (1 << 20))).hex().encode()   # 5.2 MB that gzip halves
    expect(d, "big", tar_bytes([member("t/a.txt", hexdata)], "w:gz"), TGZ, alice, 413, "dataset_too_large",
           ["max-dataset-bytes"], "dataset size")
    s, e = push(d, "bob1", tar_bytes([member("b/1.bin", os.urandom(int(2.5 * (1 << 20))))]), TAR, bob)
    check(s == 201, "bob's first dataset -> %d %s" % (s, e))
    expect(d, "bob2", tar_bytes([member("b/2.bin", os.urandom(int(3.9 * (1 << 20))))]), TAR, bob, 413,
           "dataset_too_large", ["dataset-quota-bytes"], "quota")
    # Two uploads of one owner at once, each within what the quota leaves, together past it:
    # whichever order the server sees them in, exactly one is published.
    got = {}
    def up(n):
        got[n] = push(d, n, tar_bytes([member("b/%s.bin" % n, os.urandom(2 << 20))]), TAR, bob)
    ts = [threading.Thread(target=up, args=(n,)) for n in ("bob3", "bob4")]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    check(sorted(s for s, _ in got.values()) == [201, 413] and
          all(e["error"]["code"] in ("quota_exceeded", "dataset_too_large") for s, e in got.values() if s == 413),
          "two uploads at once past the quota: %s" % {n: (s, (e or {}).get("error")) for n, (s, e) in got.items()})
    for i in range(3):
        s, e = push(d, "small%d" % i, tar_bytes([member("c/x.txt", b"hi")]), TAR, ops)
        check(s == 201, "ops dataset %d -> %d %s" % (i, s, e))
    expect(d, "small3", tar_bytes([member("c/x.txt", b"hi")]), TAR, ops, 429, "too_many_datasets",
           ["max-datasets-per-owner"], "datasets per owner")
    expect(d, "many", many_members(100000), TGZ, alice, 413, "dataset_too_large", ["max-dataset-files", "5000"],
           "100,000 members")
    wait_clean(state, "limits")
    print("  limits: upload, dataset and quota bytes 413, per-owner count 429, 100,000 members 413")


def partial_upload(d, state, tok, name):
    """Starts uploading the dataset name (4 MiB declared, 256 KiB sent) and waits until its body is
    being written under the state dir: the open socket, for the caller to cut or outlive."""
    sock = socket.create_connection(("127.0.0.1", d.port))
    sock.sendall(("POST /v1/datasets?name=%s HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-tar\r\n"
                  "Authorization: Bearer %s\r\nContent-Length: %d\r\n\r\n" % (name, tok, 4 << 20)).encode())
    sock.sendall(b"\0" * (256 << 10))
    deadline = time.time() + 120
    while not leftovers(state) and time.time() < deadline:
        time.sleep(0.02)
    check(leftovers(state), "the upload never reached the state dir")
    return sock


def disconnect(d, state, alice):
    # The body is being written to a temp dir; cut the connection mid-way.
    sock = partial_upload(d, state, alice, "cut")
    sock.close()
    wait_clean(state, "after a disconnect mid-upload")
    s, e = d.get("/v1/datasets/alice/cut")
    check(s == 404, "a cut upload is visible: %d %s" % (s, e))
    print("  disconnect mid-upload: nothing left")


def cli(exe, d, tmp, alice, bob):
    src = os.path.join(tmp, "petals")
    for cls, n in (("daisy", 3), ("rose", 2)):
        os.makedirs(os.path.join(src, cls))
        for i in range(n):
            Image.new("RGB", (8, 8), (i * 40, 90, 200)).save(os.path.join(src, cls, "%d.png" % i))
    os.symlink("/etc/passwd", os.path.join(src, "rose", "link.png"))
    url = "http://127.0.0.1:%d" % d.port
    p = ssld(exe, "dataset", "push", src, "petals", "--server", url, "--token", alice, check_rc=0)
    check("(100%)" in p.stderr and "leaving out" in p.stderr and "link.png" in p.stderr, "push stderr: %s" % p.stderr)
    check("alice/petals: image_folder, 5 files" in p.stdout and "dataset:alice/petals" in p.stdout, "push: %s" % p.stdout)
    p = ssld(exe, "dataset", "ls", "--server", url, "--output", "json", check_rc=0)
    check("petals" in [x["name"] for x in __import__("json").loads(p.stdout)["datasets"]], "ls: %s" % p.stdout)
    p = ssld(exe, "dataset", "show", "alice/petals", "--server", url, check_rc=0)
    check("daisy" in p.stdout and "3 files" in p.stdout, "show: %s" % p.stdout)
    p = ssld(exe, "dataset", "rm", "petals", "--server", url, "--token", bob, check_rc=1)
    check("403" in p.stderr and "only its owner or an admin" in p.stderr, "bob's rm: %s" % p.stderr)
    p = ssld(exe, "dataset", "rm", "petals", "--server", url, "--token", alice, check_rc=0)
    print("  cli: push DIR (symlink left out, progress), ls, show, rm (403 for bob, 0 for alice)")


def off_http_threads(d, tmp, flags, alice):
    """An archive is unpacked off the HTTP threads: with one HTTP thread and the unpack held at its
    start (engine/fault.h, dataset_unpack), the server still answers other requests."""
    gate = os.path.join(tmp, "unpack-gate")
    env = dict(os.environ, SSLD_FAULT="dataset_unpack@1", SSLD_FAULT_GATE=gate)
    d.start(*flags, "--http-threads", "1", env=env)
    answer = {}
    t = threading.Thread(target=lambda: answer.update(r=push(d, "held", tar_bytes([member("c/x.txt", b"hi")]), TAR, alice)))
    t.start()
    deadline = time.time() + 120
    while not os.path.exists(gate + ".waiting"):
        check(time.time() < deadline and t.is_alive(), "the upload never reached its unpacking: %s" % answer)
        time.sleep(0.02)
    s, h = d.get("/v1/health")
    s2, lst = d.get("/v1/datasets?owner=alice")
    check(s == 200 and s2 == 200 and t.is_alive(), "while an archive is unpacked: health %d, list %d, upload %s" %
          (s, s2, "waiting" if t.is_alive() else answer))
    check("held" not in [x["name"] for x in lst["datasets"]], "listed before it is unpacked: %s" % lst)
    open(gate, "w").close()
    t.join(120)
    check(not t.is_alive() and answer["r"][0] == 201, "the held upload -> %s" % answer)
    s, e = d.call("DELETE", "/v1/datasets/alice/held", None, bearer(alice))
    check(s == 200, "delete held -> %d %s" % (s, e))
    d.stop()
    print("  unpacking off the HTTP threads: health and list answered (one HTTP thread) while an unpack waited")


def main(exe):
    if Image is None:
        print("SKIP: python3-pil is not installed (the test builds PNG files)")
        sys.exit(77)
    tmp = tempfile.mkdtemp(prefix="ssld-ds-")
    state = os.path.join(tmp, "state")
    os.mkdir(state)
    root = os.path.join(tmp, "root")   # a data root apart from the state dir: uploads are not under it
    os.mkdir(root)
    alice, bob = token(exe, state, "alice"), token(exe, state, "bob")
    ops = token(exe, state, "ops", "--admin")
    flags = ("--workers", "1", "--max-upload-bytes", "8M", "--max-dataset-bytes", "4M", "--dataset-quota-bytes", "6M",
             "--max-datasets-per-owner", "3", "--max-dataset-files", "5000", "--data-root", root,
             # libmicrohttpd sometimes sees a client's close only when the request deadline ends it
             "--request-deadline", "8")
    d = Daemon(exe, state)
    try:
        d.start(*flags)
        # ---- push, list, show ----------------------------------------------------------------
        s, ds = push(d, "flowers", image_folder_tar(), TAR, alice)
        check(s == 201, "push -> %d %s" % (s, ds))
        counts = {c["name"]: c["files"] for c in ds["classes"]}
        check(ds["format"] == "image_folder" and counts == {"red": 24, "blue": 20} and ds["files"] == 44,
              "push answer: %s" % ds)
        check(ds["ref"] == "dataset:alice/flowers" and ds["use"]["train"] == "dataset:alice/flowers", "ref: %s" % ds)
        s, lst = d.get("/v1/datasets")
        check(s == 200 and [(x["owner"], x["name"], x["classes"]) for x in lst["datasets"]] == [("alice", "flowers", 2)],
              "list: %d %s" % (s, lst))
        s, one = d.get("/v1/datasets/alice/flowers")
        check(s == 200 and {c["name"]: c["files"] for c in one["classes"]} == counts, "show: %d %s" % (s, one))
        st, hdrs, png = d.raw("GET", ds["sample_grid"])
        check(st == 200 and hdrs.get("content-type") == "image/png", "grid: %d %s" % (st, hdrs))
        g = Image.open(io.BytesIO(png)).convert("RGB")
        cx = 2 + 16   # the centre of the first cell of each row (2 px of padding)
        r0, r1 = g.getpixel((cx, cx)), g.getpixel((cx, cx + 34))
        check(g.size == (8 * 34 + 2, 2 * 34 + 2) and r0[2] > 180 and r0[0] < 80 and r1[0] > 180 and r1[2] < 80,
              "grid: size %s, first cells %s %s (expected a blue row, then a red one: classes by name)" % (g.size, r0, r1))
        check([c["name"] for c in ds["classes"]] == ["blue", "red"], "classes by name: %s" % ds["classes"])
        expect(d, "flowers", image_folder_tar(), TAR, alice, 409, "exists", ["already exists"], "same name again")
        expect(d, "flowers", b"x", {"Content-Type": "text/plain"}, alice, 415, "unsupported_media_type",
               ["Content-Type"], "text body")
        expect(d, "flowers", image_folder_tar(), TAR, None, 401, "unauthorized", [], "no token")
        print("  push: 201, 2 classes (24, 20); list and show agree; sample grid: a blue row, a red row")

        # ---- another owner -------------------------------------------------------------------
        s, e = d.post("/v1/jobs", image_job("bob-job", "dataset:alice/flowers"), bearer(bob))
        check(s == 403 and e["error"]["code"] == "forbidden_path" and "belongs to alice" in e["error"]["message"],
              "bob's job on alice's dataset -> %d %s" % (s, e))
        s, e = d.call("DELETE", "/v1/datasets/alice/flowers", None, bearer(bob))
        check(s == 403 and "only its owner or an admin" in e["error"]["message"], "bob deletes -> %d %s" % (s, e))

        # ---- in use: 409; a job trains on it; then delete ---------------------------------------
        s, blocker = d.post("/v1/jobs", image_job("long", "dataset:alice/flowers", epochs=100000, max_steps=0),
                            bearer(alice))
        check(s == 201, "long job -> %d %s" % (s, blocker))
        s, e = d.call("DELETE", "/v1/datasets/alice/flowers", None, bearer(alice))
        check(s == 409 and e["error"]["code"] == "dataset_in_use" and ("job %d" % blocker["id"]) in e["error"]["message"],
              "delete while used -> %d %s" % (s, e))
        s, _ = d.post("/v1/jobs/%d/cancel" % blocker["id"], None, bearer(alice))
        check(s in (200, 202), "cancel -> %d" % s)
        d.wait_state(blocker["id"], ("cancelled",))
        tiny = image_job("tiny", "dataset:alice/flowers")
        tiny["dataset"] = "dataset:alice/flowers"   # the short form: an image folder
        s, j = d.post("/v1/jobs", tiny, bearer(alice))
        check(s == 201, "tiny job -> %d %s" % (s, j))
        jj = d.wait_state(j["id"], ("succeeded", "failed", "cancelled"), timeout=120)
        check(jj["state"] == "succeeded", "the job on the uploaded dataset: %s" % jj)
        check(jj["spec"]["dataset"]["format"] == "image_folder" and
              jj["spec"]["dataset"]["train"] == os.path.join(os.path.realpath(state), "uploads", "alice", "flowers"),
              "the stored spec's dataset: %s" % jj["spec"]["dataset"])
        s, one = d.get("/v1/datasets/alice/flowers")
        sizes = {jj["spec"]["dataset"]["image_size"]}
        cached = one.get("decode_cache") or []
        check(s == 200 and sizes <= {c["image_size"] for c in cached} and all(c["channels"] == 3 and c["images"] > 0
              and c["bytes"] > 0 and "root" not in c for c in cached) and "train" in {c["list"] for c in cached},
              "decode_cache after the job: %s (the job decoded size %s)" % (cached, sizes))
        print("  job on dataset:alice/flowers succeeded (its decoded pixels listed); delete while used -> 409")

        audio(d, state, alice)
        cli(exe, d, tmp, alice, bob)
        attacks(d, state, alice, tmp)
        limits(d, state, alice, bob, ops)
        disconnect(d, state, alice)

        s, e = d.call("DELETE", "/v1/datasets/alice/flowers", None, bearer(alice))
        check(s == 200 and e["deleted"] is True, "alice deletes -> %d %s" % (s, e))
        check(not os.path.exists(os.path.join(state, "uploads", "alice", "flowers")), "the files are still there")
        check(not os.path.exists(os.path.join(state, "uploads", "alice", ".flowers.png")), "the grid is still there")
        s, e = d.get("/v1/datasets/alice/flowers")
        check(s == 404, "after delete: %d %s" % (s, e))

        # ---- killed mid-upload: the restart cleans up -----------------------------------------
        sock = partial_upload(d, state, alice, "crash")
        d.kill()
        sock.close()
        d.start(*flags)
        check(not leftovers(state), "after a crash and restart the state dir holds %s" % leftovers(state))
        s, lst = d.get("/v1/datasets?owner=alice")
        check(s == 200 and lst["datasets"] == [], "after restart: %s" % lst)
        print("  killed mid-upload: the restart leaves nothing")

        # ---- start-up: a row without files is dropped, files without a row are moved aside ----
        s, e = push(d, "keep", tar_bytes([member("c/x.txt", b"hi")]), TAR, alice)
        check(s == 201, "keep -> %d %s" % (s, e))
        check(d.stop() == 0, "ssld did not stop cleanly")
        shutil.rmtree(os.path.join(state, "uploads", "alice", "keep"))
        stray = os.path.join(state, "uploads", "alice", "stray")
        os.makedirs(stray)
        with open(os.path.join(stray, "x.png"), "wb") as f:
            f.write(b"data")
        d.start(*flags)
        s, e = d.get("/v1/datasets/alice/keep")
        check(s == 404, "a dataset whose files are gone is still listed: %d %s" % (s, e))
        aside = [n for n in os.listdir(os.path.join(state, "uploads", ".orphans")) if n.startswith("alice.stray.")]
        check(not os.path.exists(stray) and len(aside) == 1 and
              os.path.exists(os.path.join(state, "uploads", ".orphans", aside[0], "x.png")),
              "a directory without a row: %s, aside %s" % (os.path.exists(stray), aside))
        print("  start-up: a row without files dropped, files without a row moved aside (not deleted)")
        d.stop()
        off_http_threads(d, tmp, flags, alice)
    finally:
        d.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    run(main)
