"""it_bad_inputs.py SSLD [--print] - the bad-input catalogue, docs/bad-inputs.md, is the test.

Every row of the catalogue's table is parsed and sent to a real ssld (tokens configured, one
worker, a small IDX dataset plus damaged copies of it under its own data root), and the answer
must be exactly the row's status, error code and field, in the one error shape
{"error":{"code","message","field"}}, as JSON. Rows whose status reads "201, then failed" are
accepted (the damage is only visible when the file is read) and the job must then fail with an
error that contains the row's text and names the file. Afterwards nothing else was queued and the
daemon still answers and stops cleanly. So the table and the behaviour cannot drift apart: change
one and this test tells you.

--print sends every row and prints the answers as table cells instead of checking them (for
writing new rows).

Body notation (the table's `body` column, in backticks):
  -                 no body
  GOOD              a valid job (SimCLR, MLP, the small IDX set); GOOD + {...} replaces top-level
                    keys, GOOD - key drops one; IDX(key=path) is GOOD with one dataset file replaced
  @deep(N)          {"a": N nested arrays}
  @spaces(N)        N spaces (K and M suffixes allowed)
  @declare(N)       only the headers, announcing a Content-Length of N (raw socket)
  @cl2(A,B)         two Content-Length headers, A and B, then A bytes of body (raw socket)
  @longkey(N)       {"xxx...": 1} with a key of N x's
  anything else     sent verbatim after Python string escapes (\\x00, \\xff, \\| for a pipe)
$ROOT in a body or path is the data root, $JOB a finished job of the same owner.
In the request path, @repeat(C,N) is the character C N times.
Auth column: `token` (a valid bearer token), `none`, or a literal Authorization header value.
"""
import codecs
import hashlib
import json
import os
import re
import shutil
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "service"))
from ssld_harness import FASHION, Daemon, Failure, check, run, skip_unless_dataset  # noqa: E402
from rel_common import idx_job, small_dataset  # noqa: E402

DOC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "docs", "bad-inputs.md")
TOKEN = "alice-secret"


def parse_table(path):
    """[(row number, kind, method, path, body, auth, status, code, field)] from the doc's table."""
    rows = []
    with open(path) as f:
        for line in f:
            if not re.match(r"\|\s*\d+\s*\|", line):
                continue
            cells = [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
            check(len(cells) == 8, "bad-inputs.md: row needs 8 cells: %s" % line)
            num, kind, req, body, auth, status, code, field = cells
            method, _, target = req.strip("`").partition(" ")
            rows.append((int(num), kind, method, target, body.strip("`") if body.startswith("`") else body,
                         auth.strip("`"), status, code.strip("`"), field.strip("`")))
    return rows


def make_data(root):
    """The small IDX set and damaged copies of it, all under root."""
    files = small_dataset(root)
    with open(files["train_images"], "rb") as f:
        img = f.read()
    with open(files["train_labels"], "rb") as f:
        lab = f.read()
    with open(os.path.join(root, "truncated-images"), "wb") as f:
        f.write(img[:len(img) // 2])
    with open(os.path.join(root, "bad-magic"), "wb") as f:
        f.write(b"\x00\x00\x09\x03" + img[4:])
    with open(os.path.join(root, "short-labels"), "wb") as f:
        f.write(lab[:4] + (1000).to_bytes(4, "big") + lab[8:1008])   # a whole file of 1,000 labels
    with open(os.path.join(root, "not-idx.txt"), "w") as f:
        f.write("this is not an IDX file\n" * 100)
    with open(os.path.join(root, "empty"), "wb"):
        pass
    os.symlink("/etc/passwd", os.path.join(root, "escape-link"))
    os.symlink("/etc", os.path.join(root, "escape-dir"))
    os.mkdir(os.path.join(root, "a-directory"))
    return files


def build_body(text, ctx):
    """(bytes or None, declared length or None)."""
    text = text.replace("$ROOT", ctx["root"]).replace("$JOB", str(ctx.get("job", 0)))
    if text in ("-", ""):
        return None, None

    def size(s):
        mult = {"K": 1024, "M": 1024 * 1024}.get(s[-1], 1)
        return int(s.rstrip("KM")) * mult
    m = re.fullmatch(r"@cl2\((\d+),(\d+)\)", text)
    if m:
        return b" " * int(m.group(1)), (int(m.group(1)), int(m.group(2)))
    m = re.fullmatch(r"@(deep|spaces|declare|longkey)\((\w+)\)", text)
    if m:
        n = size(m.group(2))
        if m.group(1) == "deep":
            return b'{"a":' + b"[" * n + b"]" * n + b"}", None
        if m.group(1) == "spaces":
            return b" " * n, None
        if m.group(1) == "longkey":
            return b'{"' + b"x" * n + b'":1}', None
        return None, n
    good = idx_job("bad-input", ctx["files"], hidden=(32,), pretrain={"epochs": 1, "batch_size": 64})
    m = re.fullmatch(r"IDX\((\w+)=(.*)\)", text)
    if m:
        good["dataset"][m.group(1)] = m.group(2)
        return json.dumps(good).encode(), None
    m = re.fullmatch(r"GOOD(?:\s*([+-])\s*(.*))?", text, re.S)
    if m:
        if m.group(1) == "+":
            good.update(json.loads(m.group(2)))
        elif m.group(1) == "-":
            good.pop(m.group(2).strip())
        return json.dumps(good).encode(), None
    return codecs.decode(text.encode("latin-1"), "unicode_escape").encode("latin-1"), None


def send(d, method, target, body, declared, auth):
    headers = {}
    if auth == "token":
        headers["Authorization"] = "Bearer " + TOKEN
    elif auth != "none":
        headers["Authorization"] = auth
    if declared is not None:
        sock = socket.create_connection(("127.0.0.1", d.port), timeout=10)
        extra = "".join("%s: %s\r\n" % kv for kv in headers.items())
        lengths = declared if isinstance(declared, tuple) else (declared,)
        sock.sendall(("%s %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n%s%s\r\n"
                      % (method, target, "".join("Content-Length: %d\r\n" % n for n in lengths), extra)).encode()
                     + (body or b""))
        data = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
            head, sep, rest = data.partition(b"\r\n\r\n")
            m = re.search(rb"content-length: *(\d+)", head, re.I)
            if sep and m and len(rest) >= int(m.group(1)):
                break
        sock.close()
        head, _, rest = data.partition(b"\r\n\r\n")
        status = int(head.split()[1]) if head else 0
        return status, {"content-type": "application/json" if b"application/json" in head.lower() else ""}, rest
    if body is not None:
        headers["Content-Type"] = "application/json"
    return d.raw(method, target, body, headers)


def answer(status, hdrs, data):
    """(status, code, field, message) of an answer; code '' when it is not the error shape."""
    try:
        obj = json.loads(data)
    except ValueError:
        return status, "", "", "not JSON: %r" % data[:120]
    one = lambda e: isinstance(e, dict) and set(e) == {"code", "message", "field"} and e["message"]
    # a refused job spec also lists every error, the first being "error"
    errors_ok = "errors" not in obj if isinstance(obj, dict) else False
    if isinstance(obj, dict) and isinstance(obj.get("errors"), list) and obj["errors"]:
        errors_ok = all(one(e) for e in obj["errors"]) and obj["errors"][0] == obj.get("error")
    if not (isinstance(obj, dict) and set(obj) <= {"error", "errors"} and one(obj.get("error")) and errors_ok):
        return status, "", "", "not the error shape: %r" % data[:200]
    e = obj["error"]
    return status, e["code"], "-" if e["field"] is None else e["field"], e["message"]


def main(exe, print_only=False):
    skip_unless_dataset()
    rows = parse_table(DOC)
    check(len(rows) >= 30, "the catalogue has %d rows, fewer than 30" % len(rows))
    check([r[0] for r in rows] == list(range(1, len(rows) + 1)), "rows are not numbered 1..%d" % len(rows))
    d = Daemon(exe)
    try:
        root = os.path.join(d.state_dir, "data")
        os.mkdir(root)
        ctx = {"root": root, "files": make_data(root)}
        tokens = os.path.join(d.state_dir, "tokens")
        with open(tokens, "w") as f:
            f.write("alice %s\nbob %s\n" % (hashlib.sha256(TOKEN.encode()).hexdigest(),
                                            hashlib.sha256(b"bob-secret").hexdigest()))
        d.start("--workers", "1", "--data-root", root, "--data-root", os.path.dirname(FASHION), "--tokens-file", tokens)
        # $JOB: a job that ran to the end, for the rows about an existing job.
        body, _ = build_body("GOOD", ctx)
        s, sub = d.post("/v1/jobs", json.loads(body), {"Authorization": "Bearer " + TOKEN})
        check(s == 201, "the good job -> %d %s" % (s, sub))
        ctx["job"] = sub["id"]
        j = d.wait_state(sub["id"], ("succeeded", "failed"), timeout=120)
        check(j["state"] == "succeeded", "the good job ended %s: %s" % (j["state"], j["error"]))
        accepted = {sub["id"]}

        bad = []
        for num, kind, method, target, body_text, auth, status, code, field in rows:
            body, declared = build_body(body_text, ctx)
            target = target.replace("$JOB", str(ctx["job"]))
            target = re.sub(r"@repeat\((.),(\d+)\)", lambda m: m.group(1) * int(m.group(2)), target)
            s, hdrs, data = send(d, method, target, body, declared, auth)
            if status.startswith("201"):
                # Accepted; the damage shows when the worker reads the file.
                ok = s == 201
                msg = data[:200]
                if ok:
                    jid = json.loads(data)["id"]
                    accepted.add(jid)
                    j = d.wait_state(jid, ("succeeded", "failed", "cancelled"), timeout=120)
                    got_path = json.loads(body)["dataset"]
                    msg = j["error"] or ""
                    ok = j["state"] == "failed" and field in msg and any(
                        str(v) in msg for k, v in got_path.items() if k != "format")
                if print_only:
                    print("%d | %d -> %s: %s" % (num, s, j["state"] if s == 201 else "-", msg))
                elif not ok:
                    bad.append("row %d (%s): %d, job error %r; expected the job to fail with %r naming the file"
                               % (num, kind, s, msg, field))
                continue
            got = answer(s, hdrs, data)
            if print_only:
                print("%d | %s | %d | `%s` | `%s` | %s" % (num, kind, got[0], got[1], got[2], got[3]))
                continue
            want = (int(status), code, field)
            if got[:3] != want or not hdrs.get("content-type", "").startswith("application/json"):
                bad.append("row %d (%s): %s %s -> %s, expected %s (%s)" % (num, kind, method, target[:60], got[:3], want,
                                                                           got[3]))
        check(not bad, "%d of %d catalogue rows answered differently:\n  %s" % (len(bad), len(rows), "\n  ".join(bad)))
        # Nothing but the accepted rows got queued, and the daemon is still well.
        s, lst = d.get("/v1/jobs?limit=1000")
        ids = {x["id"] for x in lst["jobs"]}
        check(ids == accepted, "jobs in the queue: %s, expected %s" % (sorted(ids), sorted(accepted)))
        s, h = d.get("/v1/health")
        check(s == 200 and h["status"] == "ok", "health after the catalogue: %s" % h)
        check(d.stop() == 0, "ssld did not stop cleanly:\n" + d.log())
        print("  %d catalogue rows: each answered with its status, code and field; %d accepted rows failed "
              "naming their file; nothing else queued" % (len(rows), len(accepted) - 1))
    finally:
        d.cleanup()


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--print"]
    if "--print" in sys.argv:
        main(args[0], print_only=True)
    else:
        sys.argv = [sys.argv[0]] + args
        run(main)
