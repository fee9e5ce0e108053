"""it_auth.py - a shared box: tokens, owners, limits, data roots and read access in a real ssld.

- tokens made with `ssld token create|list|revoke` (the real binary, same state directory as the
  running daemon, no restart): once one exists, a POST without a token, with an unknown one or a
  revoked one gets 401 and queues nothing; jobs record the token's name as owner; another owner
  cancelling gets 403 naming the rule; the owner and an admin token may cancel;
- per-owner and global queue limits: 429 naming max-queued-per-owner / max-queued, nothing queued;
- data roots: `..`, an absolute path elsewhere, a symlink inside the root pointing out, and a
  missing file outside -> 403 forbidden_path naming the roots, nothing queued; a file inside works;
- read access: loopback (default: reads open on 127.0.0.1), token (401 without one; health and the
  dashboard stay open), open;
- the per-owner running limit: with 2 workers and max-running-per-owner 1, an owner's second job
  waits (GET /v1/jobs/{id} names the limit in "waiting") while another owner's job runs;
- authentication stays on: revoking the last token warns, keeps writes refused (also after a
  restart) and says so in `ssld token list`, until `ssld token off`;
- tokens-file reloads (SIGHUP): a bad line is skipped and reported, a removed token stops working,
  an unreadable file accepts no token; `ssld token list` names the file in force;
- no data roots at all (the defaults hidden in a mount namespace): file datasets get 403 saying so;
- data roots at run time: a symlink swapped after submit makes the job fail naming the file; the
  403 for a path outside the roots never says where it leads;
- generate: only the owner or an admin (403 for another owner, nothing written), and at most 8
  sample files per job whatever the seeds.
"""
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ssld_harness import Daemon, Failure, bearer, check, run, short_job, ssld  # noqa: E402

TEXT = "the quick brown fox jumps over the lazy dog. " * 40 + "\n"


def text_job(path, name="lm"):
    return {"name": name, "method": "autoregressive_lm", "dataset": {"format": "text", "files": [path]}}


def total_jobs(d):
    s, h = d.get("/v1/health")
    check(s == 200, "health -> %d %s" % (s, h))
    return sum(h["jobs"].values())


def expect_error(d, method, path, body, headers, status, code, words, what):
    before = total_jobs(d)
    s, e = d.call(method, path, body, headers)
    check(s == status and e and e["error"]["code"] == code,
          "%s: expected %d %s, got %d %s" % (what, status, code, s, e))
    for w in words:
        check(w in e["error"]["message"], "%s: message does not say %r: %s" % (what, w, e["error"]["message"]))
    check(total_jobs(d) == before, "%s: the refused request changed the job table" % what)
    return e


def token_create(exe, state, name, *flags):
    p = ssld(exe, "token", "create", name, "--state-dir", state, *flags, check_rc=0)
    tok = p.stdout.strip()
    check(tok.startswith("ssld_") and len(tok) == 48 and "\n" not in tok, "token create printed %r" % p.stdout)
    check("shown only this once" in p.stderr, "token create did not warn it is shown once: %s" % p.stderr)
    return tok


def main(exe):
    tmp = tempfile.mkdtemp(prefix="ssld-auth-")
    root = os.path.join(tmp, "root")
    outside = os.path.join(tmp, "outside")
    os.makedirs(os.path.join(root, "sub"))
    os.makedirs(outside)
    for p in (os.path.join(root, "ok.txt"), os.path.join(outside, "secret.txt")):
        with open(p, "w") as f:
            f.write(TEXT)
    os.symlink(os.path.join(outside, "secret.txt"), os.path.join(root, "link.txt"))
    os.symlink(outside, os.path.join(root, "out"))
    d = Daemon(exe)
    try:
        for section in (auth_stays_on, tokens_file_reload, no_data_roots, symlink_swap_at_run_time, generate_owner):
            section(exe, tmp, root, outside)
        state = d.state_dir
        d.start("--workers", "0", "--data-root", root, "--max-queued-per-owner", "2", "--max-queued", "4")

        # ---- no tokens yet: the API is open, jobs belong to "anonymous" ----------------------
        p = ssld(exe, "token", "list", "--state-dir", state, check_rc=0)
        check("no tokens" in p.stdout, "token list on an empty table: %s" % p.stdout)
        s, j = d.post("/v1/jobs", text_job("ok.txt", "anon"))
        check(s == 201, "anonymous submit without tokens -> %d %s" % (s, j))
        check(d.job(j["id"])["owner"] == "anonymous", "owner of an open-API job: %s" % d.job(j["id"]))
        s, c = d.post("/v1/jobs/%d/cancel" % j["id"])
        check(s == 200, "anonymous cancel without tokens -> %d %s" % (s, c))

        # ---- tokens through the real binary, while the daemon runs ---------------------------
        alice = token_create(exe, state, "alice")
        bob = token_create(exe, state, "bob")
        ops = token_create(exe, state, "ops", "--admin")
        check(len({alice, bob, ops}) == 3, "tokens are not distinct")
        p = ssld(exe, "token", "create", "alice", "--state-dir", state)
        check(p.returncode == 1 and "already exists" in p.stderr, "duplicate name: %d %s" % (p.returncode, p.stderr))
        p = ssld(exe, "token", "create", "no spaces!", "--state-dir", state)
        check(p.returncode == 2 and "name" in p.stderr, "bad name: %d %s" % (p.returncode, p.stderr))
        p = ssld(exe, "token", "list", "--state-dir", state, check_rc=0)
        # Without --state-dir (and no installed config, no $STATE_DIRECTORY): ./state of the cwd.
        cwd = os.path.join(tmp, "cwd")
        os.makedirs(cwd)
        os.symlink(state, os.path.join(cwd, "state"))
        env = {k: v for k, v in os.environ.items() if k != "STATE_DIRECTORY"}
        q = subprocess.run([exe, "token", "list"], cwd=cwd, env=env, capture_output=True, text=True)
        if not any(os.path.exists(c) for c in ("/etc/ssld/ssld.conf", "/usr/local/etc/ssld/ssld.conf")):
            check(q.returncode == 0 and q.stdout == p.stdout,
                  "token list from ./state: %d %s %s" % (q.returncode, q.stdout, q.stderr))
        rows = {l.split()[0]: l.split()[1] for l in p.stdout.splitlines()[1:]}
        check(rows == {"alice": "user", "bob": "user", "ops": "admin"}, "token list: %s" % p.stdout)
        check(alice not in p.stdout, "token list prints a token")
        with open(os.path.join(state, "ssld.db"), "rb") as f:
            db = f.read()
        wal = os.path.join(state, "ssld.db-wal")
        if os.path.exists(wal):
            with open(wal, "rb") as f:
                db += f.read()
        check(alice.encode() not in db and ops.encode() not in db, "a token is stored in clear in the database")

        # ---- 401: no token, unknown token, wrong scheme ---------------------------------------
        job = text_job("ok.txt", "alice-1")
        status, hdrs, _ = d.raw("POST", "/v1/jobs", job)
        check(status == 401 and hdrs.get("www-authenticate", "").startswith("Bearer"),
              "no token -> %d, WWW-Authenticate %r" % (status, hdrs.get("www-authenticate")))
        expect_error(d, "POST", "/v1/jobs", job, {}, 401, "unauthorized", ["bearer token", "ssld token create"],
                     "submit without a token")
        expect_error(d, "POST", "/v1/jobs", job, bearer("ssld_" + "x" * 43), 401, "unauthorized", ["not valid"],
                     "submit with an unknown token")
        expect_error(d, "POST", "/v1/jobs", job, {"Authorization": "Basic YWxpY2U6eA=="}, 401, "unauthorized", [],
                     "submit with Basic auth")

        # ---- owners: 403 for someone else's job, the owner and an admin may cancel ------------
        s, a1 = d.post("/v1/jobs", job, bearer(alice))
        check(s == 201, "alice submit -> %d %s" % (s, a1))
        check(d.job(a1["id"])["owner"] == "alice", "owner recorded: %s" % d.job(a1["id"])["owner"])
        expect_error(d, "POST", "/v1/jobs/%d/cancel" % a1["id"], None, {}, 401, "unauthorized", [],
                     "cancel without a token")
        e = expect_error(d, "POST", "/v1/jobs/%d/cancel" % a1["id"], None, bearer(bob), 403, "forbidden",
                         ["belongs to 'alice'", "only its owner or an admin", "you are 'bob'"], "bob cancels alice's job")
        check(d.job(a1["id"])["state"] == "queued", "bob's refused cancel changed the job")
        s, c = d.post("/v1/jobs/%d/cancel" % a1["id"], None, bearer(alice))
        check(s == 200 and c["state"] == "cancelled", "alice cancels her job -> %d %s" % (s, c))
        s, a2 = d.post("/v1/jobs", text_job("ok.txt", "alice-2"), bearer(alice))
        check(s == 201, "alice submit 2 -> %d %s" % (s, a2))
        s, c = d.post("/v1/jobs/%d/cancel" % a2["id"], None, bearer(ops))
        check(s == 200 and c["state"] == "cancelled", "admin cancels alice's job -> %d %s" % (s, c))
        print("  tokens: 401 without/unknown/Basic, 403 for another owner (%s), owner and admin cancel"
              % e["error"]["message"])

        # ---- data roots: 403 naming the rule, nothing queued -------------------------------------
        escapes = [
            ("../outside/secret.txt", "'..' out of the root"),
            (os.path.join(root, "sub", "..", "..", "outside", "secret.txt"), "absolute path with '..'"),
            (os.path.join(outside, "secret.txt"), "absolute path elsewhere"),
            ("/etc/passwd", "a system file"),
            ("link.txt", "symlink inside the root pointing out"),
            (os.path.join(outside, "missing.txt"), "missing file outside (no existence leak)"),
            ("out/secret.txt", "through a symlinked directory pointing out"),
            ("out/missing.txt", "a missing file through a symlinked directory pointing out"),
            ("/proc/self/cwd", "the daemon's working directory"),
        ]
        for path, what in escapes:
            e = expect_error(d, "POST", "/v1/jobs", text_job(path), bearer(alice), 403, "forbidden_path",
                             ["outside the allowed data roots", root], "dataset " + what)
            check(e["error"]["field"] == "dataset.files[0]", "%s: field %s" % (what, e["error"]["field"]))
            # Nothing about where it leads: not the target, not whether it exists.
            check(outside not in e["error"]["message"].replace(path, "") and "resolves" not in e["error"]["message"],
                  "%s: the 403 tells where the path leads: %s" % (what, e["error"]["message"]))
        s, ok = d.post("/v1/jobs", text_job(os.path.join(root, "sub", "..", "ok.txt"), "inside"), bearer(alice))
        check(s == 201, "a file inside the root (through sub/..) -> %d %s" % (s, ok))
        spec = d.job(ok["id"])["spec"]
        check(spec["dataset"]["files"] == [os.path.realpath(os.path.join(root, "ok.txt"))],
              "stored spec keeps the resolved path: %s" % spec["dataset"])
        d.post("/v1/jobs/%d/cancel" % ok["id"], None, bearer(alice))
        print("  data roots: %d escapes refused with 403 forbidden_path, a path inside accepted" % len(escapes))

        # ---- queue limits: 429 naming the limit, nothing queued -----------------------------------
        for i in range(2):
            s, j = d.post("/v1/jobs", text_job("ok.txt", "a%d" % i), bearer(alice))
            check(s == 201, "alice queued job %d -> %d %s" % (i, s, j))
        e = expect_error(d, "POST", "/v1/jobs", text_job("ok.txt"), bearer(alice), 429, "queue_full",
                         ["owner 'alice'", "max-queued-per-owner = 2"], "alice's third queued job")
        for i in range(2):
            s, j = d.post("/v1/jobs", text_job("ok.txt", "b%d" % i), bearer(bob))
            check(s == 201, "bob queued job %d -> %d %s (per-owner limit is per owner)" % (i, s, j))
        e2 = expect_error(d, "POST", "/v1/jobs", text_job("ok.txt"), bearer(ops), 429, "queue_full",
                          ["max-queued = 4"], "a fifth queued job")
        print("  limits: %s | %s" % (e["error"]["message"], e2["error"]["message"]))

        # ---- revoke: the next request fails, no restart ----------------------------------------
        p = ssld(exe, "token", "revoke", "bob", "--state-dir", state, check_rc=0)
        check("revoked" in p.stdout, "revoke said %s" % p.stdout)
        p = ssld(exe, "token", "revoke", "bob", "--state-dir", state)
        check(p.returncode == 1 and "no token named 'bob'" in p.stderr, "revoke twice: %d %s" % (p.returncode, p.stderr))
        expect_error(d, "POST", "/v1/jobs/%d/cancel" % j["id"], None, bearer(bob), 401, "unauthorized", ["not valid"],
                     "a revoked token")
        p = ssld(exe, "token", "list", "--state-dir", state, check_rc=0)
        check("bob" not in p.stdout and "alice" in p.stdout, "list after revoke: %s" % p.stdout)

        # ---- read access -------------------------------------------------------------------------
        s, lst = d.get("/v1/jobs")
        check(s == 200 and len(lst["jobs"]) >= 4, "read-access loopback: GET /v1/jobs without a token -> %d" % s)
        check(d.stop() == 0, "stop (loopback)")
        d.start("--workers", "0", "--data-root", root, "--read-access", "token")
        for path in ("/v1/jobs", "/v1/jobs/%d" % j["id"], "/v1/jobs/%d/metrics" % j["id"], "/metrics"):
            status, _, body = d.raw("GET", path)
            check(status == 401, "read-access token: GET %s without a token -> %d %s" % (path, status, body[:200]))
            status, _, _ = d.raw("GET", path, headers=bearer("ssld_nope"))
            check(status == 401, "read-access token: GET %s with an unknown token -> %d" % (path, status))
            status, _, _ = d.raw("GET", path, headers=bearer(alice))
            check(status == 200, "read-access token: GET %s with alice's token -> %d" % (path, status))
        status, _, body = d.raw("GET", "/v1/jobs")
        check(b"read-access = token" in body, "the 401 does not name the read rule: %s" % body[:300])
        for path in ("/v1/health", "/v1/methods", "/v1"):
            status, _, _ = d.raw("GET", path)
            check(status == 200, "read-access token: %s must stay open -> %d" % (path, status))
        check(d.stop() == 0, "stop (token)")
        d.start("--workers", "0", "--data-root", root, "--read-access", "open")
        s, lst = d.get("/v1/jobs")
        check(s == 200, "read-access open -> %d" % s)
        expect_error(d, "POST", "/v1/jobs", text_job("ok.txt"), {}, 401, "unauthorized", [],
                     "read-access open still needs a token to write")
        for jj in d.get("/v1/jobs?state=queued")[1]["jobs"]:   # the next daemon has workers
            s, c = d.post("/v1/jobs/%d/cancel" % jj["id"], None, bearer(ops))
            check(s == 200, "admin cancels job %d -> %d %s" % (jj["id"], s, c))
        check(d.stop() == 0, "stop (open)")
        print("  read access: loopback open, token -> 401 without one (health/methods open), open")

        # ---- per-owner running limit --------------------------------------------------------------
        if not os.path.exists("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"):
            print("  running limit: not checked (Fashion-MNIST is not installed)")
            return
        d.start("--workers", "2", "--max-running-per-owner", "1", "--data-root", "/usr/share/datasets")
        slow = dict(epochs=200, limit_train=4096, hidden=(256,))
        ids = {}
        for who, tok in (("alice1", alice), ("alice2", alice), ("ops1", ops)):
            s, j = d.post("/v1/jobs", short_job(who, **slow), bearer(tok))
            check(s == 201, "submit %s -> %d %s" % (who, s, j))
            ids[who] = j["id"]
        d.wait_state(ids["alice1"], ("running",), timeout=60)
        d.wait_state(ids["ops1"], ("running",), timeout=60)
        time.sleep(0.5)
        j2 = d.job(ids["alice2"])
        check(j2["state"] == "queued", "alice's second job must wait while her first runs: %s" % j2["state"])
        check(j2["waiting"] and "max-running-per-owner = 1" in j2["waiting"] and "alice" in j2["waiting"],
              "queued job does not name the running limit: %r" % j2.get("waiting"))
        check(d.job(ids["ops1"])["waiting"] is None, "a running job has a waiting reason")
        s, c = d.post("/v1/jobs/%d/cancel" % ids["alice1"], None, bearer(alice))
        check(s == 202, "cancel alice1 -> %d %s" % (s, c))
        d.wait_state(ids["alice2"], ("running",), timeout=60)
        for who in ("alice2", "ops1"):
            d.post("/v1/jobs/%d/cancel" % ids[who], None, bearer(ops))
        for who in ids:
            d.wait_state(ids[who], ("cancelled",), timeout=60)
        check(d.stop() == 0, "stop (running limit)")
        print("  running limit: %s; it started once alice1 was cancelled" % j2["waiting"])
    finally:
        d.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


def anon_submit(d, path="ok.txt", name="anon"):
    return d.post("/v1/jobs", text_job(path, name))


def auth_stays_on(exe, tmp, root, outside):
    """Revoking the last token must not open the API (an anonymous cancel of alice's job was 200)."""
    d = Daemon(exe)
    try:
        state = d.state_dir
        d.start("--workers", "0", "--data-root", root)
        alice = token_create(exe, state, "alice")
        s, j = d.post("/v1/jobs", text_job("ok.txt", "alice-job"), bearer(alice))
        check(s == 201, "alice submit -> %d %s" % (s, j))
        p = ssld(exe, "token", "revoke", "alice", "--state-dir", state, check_rc=0)
        check("last token" in p.stderr and "ssld token off" in p.stderr,
              "revoking the last token did not warn: %r" % p.stderr)
        expect_error(d, "POST", "/v1/jobs/%d/cancel" % j["id"], None, {}, 401, "unauthorized", [],
                     "anonymous cancel after the last token was revoked")
        expect_error(d, "POST", "/v1/jobs", text_job("ok.txt"), {}, 401, "unauthorized", [],
                     "anonymous submit after the last token was revoked")
        p = ssld(exe, "token", "list", "--state-dir", state, check_rc=0)
        check("stays on" in p.stdout and "is open" not in p.stdout, "token list with no token left: %s" % p.stdout)
        check(d.stop() == 0, "stop")
        d.start("--workers", "0", "--data-root", root)   # the state persists across a restart
        expect_error(d, "POST", "/v1/jobs", text_job("ok.txt"), {}, 401, "unauthorized", [],
                     "anonymous submit after a restart with no token left")
        p = ssld(exe, "token", "off", "--state-dir", state, check_rc=0)
        check("authentication is off" in p.stdout, "token off said %r" % p.stdout)
        s, c = d.post("/v1/jobs/%d/cancel" % j["id"])
        check(s == 200, "anonymous cancel after `ssld token off` -> %d %s" % (s, c))
        p = ssld(exe, "token", "list", "--state-dir", state, check_rc=0)
        check("the API is open" in p.stdout, "token list after token off: %s" % p.stdout)
        # `token off` refuses while tokens remain.
        token_create(exe, state, "bob")
        p = ssld(exe, "token", "off", "--state-dir", state)
        check(p.returncode == 1 and "revoke them first" in p.stderr, "token off with a token left: %d %s"
              % (p.returncode, p.stderr))
        check(d.stop() == 0, "stop")
        print("  last token revoked: writes stay refused (also after a restart) until `ssld token off`")
    finally:
        d.cleanup()


def wait_log(d, text, what):
    """Polls the daemon's log for text (the daemon logs each reload when it has happened)."""
    for _ in range(600):
        if text in d.log():
            return
        time.sleep(0.05)
    raise Failure("%s: the log never said %r:\n%s" % (what, text, d.log()))


def tokens_file_reload(exe, tmp, root, outside):
    """A reload with a bad line must still drop a removed token; an unreadable file accepts none."""
    d = Daemon(exe)
    try:
        tokens = os.path.join(tmp, "tokens")

        def line(owner, secret):
            return "%s %s\n" % (owner, hashlib.sha256(secret.encode()).hexdigest())
        with open(tokens, "w") as f:
            f.write(line("alice", "alice-secret") + line("bob", "bob-secret"))
        d.start("--workers", "0", "--data-root", root, "--tokens-file", tokens)
        s, j = d.post("/v1/jobs", text_job("ok.txt", "bob-job"), bearer("bob-secret"))
        check(s == 201, "bob submit from the tokens file -> %d %s" % (s, j))
        p = ssld(exe, "token", "list", "--state-dir", d.state_dir, check_rc=0)
        check(tokens in p.stdout and "in force" in p.stdout and "is open" not in p.stdout,
              "token list with a tokens file in force: %s" % p.stdout)
        # bob removed, and a bad line added.
        with open(tokens, "w") as f:
            f.write(line("alice", "alice-secret") + "carol not-a-sha256\n")
        d.proc.send_signal(signal.SIGHUP)
        wait_log(d, "%s:2: skipped" % tokens, "reload with a bad line")
        expect_error(d, "POST", "/v1/jobs/%d/cancel" % j["id"], None, bearer("bob-secret"), 401, "unauthorized",
                     ["not valid"], "bob, removed from the tokens file, after a reload with a bad line")
        s, a = d.post("/v1/jobs", text_job("ok.txt", "alice-job"), bearer("alice-secret"))
        check(s == 201, "alice, still in the file, after the reload -> %d %s" % (s, a))
        # The file disappears: fail closed, and authentication stays on.
        os.unlink(tokens)
        d.proc.send_signal(signal.SIGHUP)
        wait_log(d, "no token from that file is accepted", "reload of a missing file")
        expect_error(d, "POST", "/v1/jobs", text_job("ok.txt"), bearer("alice-secret"), 401, "unauthorized", [],
                     "alice after the tokens file vanished")
        expect_error(d, "POST", "/v1/jobs", text_job("ok.txt"), {}, 401, "unauthorized", [],
                     "anonymous after the tokens file vanished")
        check(d.stop() == 0, "stop")
        print("  tokens-file reload: a bad line is skipped and reported, a removed token stops working, "
              "an unreadable file accepts none")
    finally:
        d.cleanup()


def no_data_roots(exe, tmp, root, outside):
    """With none of the default roots present, file datasets are refused (/etc/shadow got 201)."""
    if not shutil.which("unshare"):
        print("  no data roots: not checked (needs unshare to hide the default roots)")
        return
    probe = subprocess.run(["unshare", "-rm", "sh", "-c", "mount -t tmpfs none /usr/share"], capture_output=True)
    if probe.returncode != 0:
        print("  no data roots: not checked (no user and mount namespaces here: %s)" % probe.stderr.decode().strip())
        return
    wrapper = os.path.join(tmp, "ssld-without-default-roots")
    with open(wrapper, "w") as f:   # /usr/share empty: /usr/share/datasets and .../fortunes do not exist
        f.write('#!/bin/sh\nexec unshare -rm sh -c \'mount -t tmpfs none /usr/share && exec "$0" "$@"\' %s "$@"\n' % exe)
    os.chmod(wrapper, 0o755)
    d = Daemon(wrapper)
    try:
        d.start("--workers", "0")
        check("data roots: (none)" in d.log(), "the daemon found default data roots:\n%s" % d.log())
        for path in ("/etc/shadow", os.path.join(outside, "secret.txt")):
            expect_error(d, "POST", "/v1/jobs", text_job(path), {}, 403, "forbidden_path",
                         ["no data roots are configured"], "dataset %s with no data roots" % path)
        expect_error(d, "POST", "/v1/jobs", {"method": "simclr", "dataset": "fashion-mnist"}, {}, 403,
                     "forbidden_path", ["no data roots are configured"], "the built-in dataset with no data roots")
        check(d.stop() == 0, "stop")
        print("  no data roots: file datasets get 403 saying no data roots are configured")
    finally:
        d.cleanup()


def symlink_swap_at_run_time(exe, tmp, root, outside):
    """Roots were checked at submit only: a symlink swapped afterwards made the job read /etc/passwd."""
    d = Daemon(exe)
    try:
        link = os.path.join(root, "swap.txt")
        shutil.copy(os.path.join(root, "ok.txt"), link)   # a plain file at submit (the stored path is this file)
        d.start("--workers", "0", "--data-root", root)
        job = text_job("swap.txt", "swapped")
        job["pretrain"] = {"epochs": 1, "max_steps": 2, "batch_size": 4}
        job["model"] = {"encoder": "transformer", "dim": 16, "depth": 1, "heads": 2, "context": 16}
        s, j = d.post("/v1/jobs", job)
        check(s == 201, "submit of a file inside the root -> %d %s" % (s, j))
        check(d.stop() == 0, "stop")
        os.unlink(link)
        os.symlink(os.path.join(outside, "secret.txt"), link)   # now it leads out of the root
        d.start("--workers", "1", "--data-root", root)
        j = d.wait_state(j["id"], ("succeeded", "failed", "cancelled"), timeout=120)
        check(j["state"] == "failed" and "outside the data roots" in (j["error"] or "") and "swap.txt" in j["error"],
              "a job whose dataset symlink was swapped to a file outside the root ended %s: %s" % (j["state"], j["error"]))
        check(d.stop() == 0, "stop")
        os.unlink(link)
        print("  run-time confinement: the swapped symlink failed the job: %s" % j["error"])
    finally:
        d.cleanup()


def generate_owner(exe, tmp, root, outside):
    """Anyone with a token generated into anyone's job directory, one file per seed."""
    if not os.path.exists("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"):
        print("  generate: not checked (Fashion-MNIST is not installed)")
        return
    d = Daemon(exe)
    try:
        state = d.state_dir
        d.start("--workers", "1", "--data-root", "/usr/share/datasets")
        alice = token_create(exe, state, "alice")
        bob = token_create(exe, state, "bob")
        ops = token_create(exe, state, "ops", "--admin")
        vae = {"name": "vae", "method": "vae", "params": {"latent_dim": 4},
               "dataset": {"name": "fashion-mnist", "limit_train": 256, "limit_test": 64},
               "model": {"encoder": "mlp", "hidden": [32], "out_dim": 16},
               "pretrain": {"epochs": 1, "batch_size": 64}, "threads": 1}
        s, j = d.post("/v1/jobs", vae, bearer(alice))
        check(s == 201, "alice's VAE -> %d %s" % (s, j))
        jid = j["id"]
        j = d.wait_state(jid, ("succeeded", "failed"), timeout=300)
        check(j["state"] == "succeeded", "the VAE ended %s: %s" % (j["state"], j["error"]))
        job_dir = os.path.join(state, "jobs", str(jid))
        check(os.path.isdir(job_dir), "no job directory %s" % job_dir)
        before = sorted(os.listdir(job_dir))
        gen = "/v1/jobs/%d/generate" % jid
        e = expect_error(d, "POST", gen, {"n": 4, "seed": 7}, bearer(bob), 403, "forbidden",
                         ["belongs to 'alice'", "you are 'bob'"], "bob generates from alice's job")
        expect_error(d, "POST", gen, {"n": 4, "seed": 7}, {}, 401, "unauthorized", [], "anonymous generate")
        check(sorted(os.listdir(job_dir)) == before, "a refused generate changed the job directory: %s -> %s"
              % (before, sorted(os.listdir(job_dir))))
        keep = 8
        names = []
        for i in range(keep + 2):
            seed = 2 ** 53 - i   # seeds up to 2^53 named one file each
            s, g = d.post(gen, {"n": 4, "seed": seed}, bearer(ops if i == 0 else alice))
            check(s == 200 and g.get("artifact"), "generate %d (seed %d) -> %d %s" % (i, seed, s, g))
            check(g["seed"] == seed, "the answer does not give the seed: %s" % g)
            names.append(g["artifact"])
            status, hdrs, png = d.raw("GET", g["url"], headers=bearer(alice))
            check(status == 200 and png[:8] == b"\x89PNG\r\n\x1a\n", "GET %s -> %d" % (g["url"], status))
        made = sorted(set(os.listdir(job_dir)) - set(before))
        check(len(made) == keep and all(n.startswith("samples-generated-") for n in made),
              "after %d generations the job directory gained %s; expected %d sample files" % (keep + 2, made, keep))
        check(names[keep] == names[0] and names[keep + 1] == names[1],
              "the oldest sample files were not the ones replaced: %s" % names)
        s, arts = d.get("/v1/jobs/%d/artifacts" % jid)
        gen_arts = [a["name"] for a in arts["artifacts"] if a["name"].startswith("samples-generated-")]
        check(len(gen_arts) == keep, "artifacts listed for generated samples: %s" % gen_arts)
        check(d.stop() == 0, "stop")
        print("  generate: %s; %d generations kept %d files" % (e["error"]["message"], keep + 2, keep))
    finally:
        d.cleanup()


if __name__ == "__main__":
    run(main)
