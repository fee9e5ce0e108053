"""it_notify.py - ssld under a pretend systemd: sd_notify and socket activation, as the unit uses them.

- notify: the test owns an AF_UNIX datagram socket and starts ssld with NOTIFY_SOCKET pointing at
  it, WATCHDOG_USEC=300000 and WATCHDOG_PID set to ssld's own pid (as systemd does for
  Type=notify, WatchdogSec=). It must receive READY=1 only once the port answers, a STATUS= line
  ("0 running, 0 queued, ..."), a new STATUS= after a job is queued, WATCHDOG=1 repeatedly (at
  about half the interval), and STOPPING=1 on SIGTERM - every message sent by ssld's pid
  (SCM_CREDENTIALS), which is what NotifyAccess=main accepts.
- socket activation: the test binds and listens on a loopback TCP socket, passes it as fd 3 with
  LISTEN_FDS=1 and LISTEN_PID=ssld's pid (as ssld.socket would), and ssld must serve on it
  without binding anything itself.
"""
import fcntl
import http.client
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ssld_harness import Failure, check, run  # noqa: E402

WATCHDOG_USEC = 300000


def recv_all(sock, until):
    """(pid, text) datagrams until the deadline."""
    out = []
    while time.time() < until:
        sock.settimeout(max(0.01, until - time.time()))
        try:
            data, anc, _, _ = sock.recvmsg(4096, socket.CMSG_SPACE(12))
        except socket.timeout:
            break
        pid = None
        for level, typ, payload in anc:
            if level == socket.SOL_SOCKET and typ == socket.SCM_CREDENTIALS:
                pid = struct.unpack("iII", payload[:12])[0]
        out.append((pid, data.decode()))
    return out


def get(port, path):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def post(port, path, body):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        c.request("POST", path, body=json.dumps(body))
        r = c.getresponse()
        return r.status, json.loads(r.read())
    finally:
        c.close()


def spawn(exe, state, env_extra, extra_args, log, pass_fd=None):
    """ssld serve through `sh -c 'VAR=$$ exec ssld ...'`, so variables that must hold ssld's own
    pid (WATCHDOG_PID, LISTEN_PID) can be set before it starts, like systemd does."""
    env = dict(os.environ)
    env.update(env_extra)
    pid_vars = " ".join("%s=$$" % v for v in ("WATCHDOG_PID", "LISTEN_PID") if v in env_extra)
    cmd = ["sh", "-c", "export %s; exec \"$@\"" % pid_vars if pid_vars else "exec \"$@\"", "sh",
           exe, "serve", "--state-dir", state, "--workers", "0"] + extra_args
    kw = {}
    if pass_fd is not None:
        # fd 3 in the child, without close-on-exec (the socket itself has it, as every fd Python
        # opens does, so close_fds=False leaks nothing else).
        high = fcntl.fcntl(pass_fd, fcntl.F_DUPFD_CLOEXEC, 10)
        kw = dict(preexec_fn=lambda: os.dup2(high, 3), close_fds=False)
    return subprocess.Popen(cmd, env=env, stdout=log, stderr=log, stdin=subprocess.DEVNULL, **kw)


def check_notify(exe, tmp):
    state = os.path.join(tmp, "state-notify")
    path = os.path.join(tmp, "notify.sock")
    corpus = os.path.join(tmp, "corpus.txt")
    with open(corpus, "w") as f:
        f.write("a small corpus for a queued job that never runs (--workers 0)\n" * 20)
    ns = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    ns.bind(path)
    ns.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
    log = open(os.path.join(tmp, "notify.log"), "ab")
    t0 = time.time()
    proc = spawn(exe, state, {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": str(WATCHDOG_USEC), "WATCHDOG_PID": "x"},
                 ["--listen", "127.0.0.1:0", "--data-root", tmp], log)
    try:
        msgs = []
        ready_at = None
        while time.time() - t0 < 120 and ready_at is None:
            got = recv_all(ns, time.time() + 0.5)
            msgs += got
            for pid, text in got:
                if "READY=1" in text.split("\n"):
                    ready_at = time.time()
            check(proc.poll() is None, "ssld exited (%s) before READY=1" % proc.returncode)
        check(ready_at is not None, "no READY=1 within 120 s; got %s" % msgs)
        # READY=1 means listening: the port file is written before it, and the port answers now.
        with open(os.path.join(state, "port")) as f:
            port = int(f.read())
        s, body = get(port, "/v1/health")
        check(s == 200, "after READY=1, /v1/health -> %d" % s)
        msgs += recv_all(ns, time.time() + 1.0)
        s, j = post(port, "/v1/jobs", {"method": "autoregressive_lm",
                                       "dataset": {"format": "text", "files": [corpus]}})
        check(s == 201, "submit -> %d %s" % (s, j))
        msgs += recv_all(ns, time.time() + 1.0)
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(120)
        msgs += recv_all(ns, time.time() + 0.3)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
        ns.close()
    check(rc == 0, "ssld exited %d after SIGTERM" % rc)
    pids = {pid for pid, _ in msgs}
    check(pids == {proc.pid}, "notifications from pids %s, expected only ssld's %d" % (pids, proc.pid))
    lines = [l for _, text in msgs for l in text.split("\n") if l]
    status = [l for l in lines if l.startswith("STATUS=")]
    check(any("0 running, 0 queued" in s for s in status), "no initial STATUS= line: %s" % status)
    check(any("0 running, 1 queued" in s for s in status), "no STATUS= after a job was queued: %s" % status)
    wd = lines.count("WATCHDOG=1")
    # About 2 s between READY and SIGTERM at one ping per WATCHDOG_USEC/2 = 0.15 s: ~13.
    check(wd >= 5, "only %d WATCHDOG=1 in ~2 s with WATCHDOG_USEC=%d: %s" % (wd, WATCHDOG_USEC, lines))
    check("STOPPING=1" in lines, "no STOPPING=1 on SIGTERM: %s" % lines)
    check(lines.index("READY=1") < lines.index("STOPPING=1"), "STOPPING before READY")
    print("  notify: READY=1 %.2f s after exec, %d WATCHDOG=1, STATUS lines: %s"
          % (ready_at - t0, wd, " | ".join(s[7:] for s in status)))

    # Without WATCHDOG_PID matching, or without NOTIFY_SOCKET, ssld still starts (plain run).
    ns = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    os.unlink(path)
    ns.bind(path)
    log = open(os.path.join(tmp, "notify2.log"), "ab")
    env = dict(os.environ, NOTIFY_SOCKET=path, WATCHDOG_USEC=str(WATCHDOG_USEC), WATCHDOG_PID="1")
    proc = subprocess.Popen([exe, "serve", "--state-dir", state, "--workers", "0", "--listen", "127.0.0.1:0"],
                            env=env, stdout=log, stderr=log)
    try:
        texts = []
        deadline = time.time() + 120
        while time.time() < deadline and not any("READY=1" in t for t in texts):
            texts += [t for _, t in recv_all(ns, time.time() + 0.2)]
        texts += [t for _, t in recv_all(ns, time.time() + 0.6)]   # 4 watchdog periods
        check(any("READY=1" in t for t in texts), "no READY=1 within 120 s in the second run: %s" % texts)
        check(not any("WATCHDOG=1" in t for t in texts), "WATCHDOG=1 although WATCHDOG_PID is another process")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(120)
        log.close()
        ns.close()


def check_activation(exe, tmp):
    state = os.path.join(tmp, "state-act")
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.bind(("127.0.0.1", 0))
    ls.listen(16)
    port = ls.getsockname()[1]
    log_path = os.path.join(tmp, "act.log")
    log = open(log_path, "ab")
    # --listen names a port nobody may bind (1): serving proves the passed socket was used.
    proc = spawn(exe, state, {"LISTEN_FDS": "1", "LISTEN_PID": "x"}, ["--listen", "127.0.0.1:1"], log,
                 pass_fd=ls.fileno())
    try:
        deadline = time.time() + 120
        status = None
        while time.time() < deadline:
            check(proc.poll() is None, "ssld exited %s with a passed socket:\n%s" % (proc.returncode, open(log_path).read()))
            try:
                status, body = get(port, "/v1/health")
                break
            except OSError:
                time.sleep(0.1)
        check(status == 200, "GET /v1/health on the passed socket -> %s" % status)
        # The kernel queues connections on the passed socket before ssld runs, so the answer can
        # come before ssld writes its port file (just after it starts serving): wait for it.
        port_file = os.path.join(state, "port")
        while time.time() < deadline and not os.path.exists(port_file):
            time.sleep(0.05)
        with open(port_file) as f:
            check(int(f.read()) == port, "port file does not name the passed socket's port")
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
        ls.close()
    text = open(log_path).read()
    check(rc == 0, "ssld exited %d:\n%s" % (rc, text))
    check("socket passed by systemd" in text, "the log does not say it used the passed socket:\n%s" % text)
    print("  socket activation: served /v1/health on the passed fd 3 (port %d)" % port)


def main(exe):
    tmp = tempfile.mkdtemp(prefix="ssld-notify-")
    try:
        check_notify(exe, tmp)
        check_activation(exe, tmp)
    except Failure:
        for name in ("notify.log", "act.log"):
            p = os.path.join(tmp, name)
            if os.path.exists(p):
                print("---- %s ----\n%s" % (name, open(p, errors="replace").read()[-3000:]))
        raise
    finally:
        subprocess.run(["rm", "-rf", tmp])


if __name__ == "__main__":
    run(main)
