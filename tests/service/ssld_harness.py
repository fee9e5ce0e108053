"""ssld_harness.py - start a real `ssld serve` on a free loopback port and talk real HTTP to it.

Used by the integration tests (stdlib only). A Daemon owns a temporary state directory; it starts
ssld with `--listen 127.0.0.1:0` and reads the bound port from STATE_DIR/port.

    d = Daemon(sys.argv[1])
    d.start("--workers", "0")
    status, body = d.post("/v1/jobs", {"method": "simclr"})
    d.stop()                      # SIGTERM, waits, returns the exit code

wait_for(cond, what, timeout) polls a condition with a bound (every test's one polling helper);
d.metric(name) reads a counter of GET /metrics.
"""
import http.client
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time

FASHION = "/usr/share/datasets/fashion-mnist"


class Failure(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Failure(msg)


def wait_for(cond, what, timeout=60, daemon=None, interval=0.05):
    """Polls cond() every `interval` seconds until it returns something true, and returns that.
    Failure naming `what` (and showing the daemon's log, when one is given) when it does not
    within `timeout` seconds: a generous bound on a condition, never a fixed sleep."""
    deadline = time.time() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.time() >= deadline:
            raise Failure("%s: not within %g s%s" % (what, timeout, "\n" + daemon.log() if daemon else ""))
        time.sleep(interval)


def skip_unless_dataset():
    if not os.path.exists(os.path.join(FASHION, "train-images-idx3-ubyte.gz")):
        print("SKIP: Fashion-MNIST is not installed at %s" % FASHION)
        sys.exit(77)


def short_job(name, epochs=3, limit_train=512, extra=None, hidden=(64,)):
    """A short real training job (SimCLR, MLP encoder, a slice of Fashion-MNIST). Tests that must
    watch a job while it runs pass a wider `hidden`: the default trains ~10,000 images/s, so a
    job of a few thousand steps is over before a poll loop sees it."""
    spec = {
        "name": name,
        "method": "simclr",
        "dataset": {"name": "fashion-mnist", "limit_train": limit_train, "limit_test": 256},
        "model": {"encoder": "mlp", "hidden": list(hidden), "out_dim": 32},
        "pretrain": {"epochs": epochs, "batch_size": 64},
        "checkpoint_interval_s": 1,
        "threads": 1,
        "seed": 3,
    }
    if extra:
        spec.update(extra)
    return spec


def write_corpus(path, lines=400):
    """A small seeded text (8 words a line) for the language-model jobs; returns path."""
    rnd = random.Random(1)
    words = "the quick brown fox jumps over a lazy dog while cats sleep in warm sun".split()
    with open(path, "w") as f:
        f.write("\n".join(" ".join(rnd.choice(words) for _ in range(8)) for _ in range(lines)) + "\n")
    return path


def lm_job(name, corpus):
    """A tiny autoregressive_lm job on a text file (a second of training): for generation tests."""
    return {"name": name, "method": "autoregressive_lm",
            "dataset": {"format": "text", "files": [corpus], "test_fraction": 0.1},
            "model": {"encoder": "transformer", "dim": 16, "depth": 1, "heads": 2, "context": 32},
            "pretrain": {"epochs": 1, "batch_size": 8}, "seed": 1, "threads": 1}


class Daemon:
    def __init__(self, exe, state_dir=None):
        self.exe = exe
        self.own_dir = state_dir is None
        self.state_dir = state_dir or tempfile.mkdtemp(prefix="ssld-it-")
        self.proc = None
        self.port = None
        self.log_path = os.path.join(self.state_dir, "test-stderr.log")
        self.args = []

    # ---- process -----------------------------------------------------------------------------
    def start(self, *args, timeout=120, env=None):
        """env: the daemon's environment (default: this process's)."""
        self.args = list(args)
        port_file = os.path.join(self.state_dir, "port")
        if os.path.exists(port_file):
            os.unlink(port_file)   # a SIGKILLed daemon leaves its port file behind
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [self.exe, "serve", "--listen", "127.0.0.1:0", "--state-dir", self.state_dir] + self.args,
            stdout=log, stderr=log, stdin=subprocess.DEVNULL, env=env)
        log.close()
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise Failure("ssld exited with %d during start-up:\n%s" % (self.proc.returncode, self.log()))
            try:
                with open(port_file) as f:
                    text = f.read().strip()
                if text:
                    self.port = int(text)
                    return self
            except (FileNotFoundError, ValueError):
                pass
            time.sleep(0.05)
        raise Failure("ssld did not write %s within %d s:\n%s" % (port_file, timeout, self.log()))

    def stop(self, sig=signal.SIGTERM, timeout=120):
        if not self.proc or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise Failure("ssld did not exit within %d s after signal %d:\n%s" % (timeout, sig, self.log()))

    def kill(self):
        return self.stop(signal.SIGKILL)

    def cleanup(self):
        if sys.exc_info()[0] is not None:   # failing: show what the daemon said
            print("---- ssld log (%s) ----\n%s\n---- end of log ----" % (self.state_dir, self.log()))
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.own_dir:
            shutil.rmtree(self.state_dir, ignore_errors=True)

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()[-6000:]
        except FileNotFoundError:
            return ""

    # ---- HTTP --------------------------------------------------------------------------------
    def raw(self, method, path, body=None, headers=None, timeout=120):
        """(status, headers dict, body bytes). body may be bytes, str, or a JSON-able object."""
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
        if isinstance(body, str):
            body = body.encode()
        try:
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            data = r.read()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, data
        finally:
            c.close()

    def call(self, method, path, body=None, headers=None):
        """(status, parsed JSON body). Every API answer must be JSON."""
        status, hdrs, data = self.raw(method, path, body, headers)
        try:
            obj = json.loads(data) if data else None
        except ValueError:
            raise Failure("%s %s -> %d: not JSON: %r" % (method, path, status, data[:3000]))
        return status, obj

    def get(self, path):
        return self.call("GET", path)

    def post(self, path, body=None, headers=None):
        return self.call("POST", path, body, headers)

    def metric(self, name, default=None):
        """The value of an unlabelled series of GET /metrics (Prometheus text); default when the
        series is absent, or Failure when no default is given."""
        status, _, body = self.raw("GET", "/metrics")
        for line in body.decode(errors="replace").splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        if default is None:
            raise Failure("GET /metrics -> %d has no %s" % (status, name))
        return default

    def job(self, jid):
        s, j = self.get("/v1/jobs/%d" % jid)
        check(s == 200, "GET /v1/jobs/%d -> %d %s" % (jid, s, j))
        return j

    def wait_state(self, jid, states, timeout=120):
        deadline = time.time() + timeout
        while time.time() < deadline:
            j = self.job(jid)
            if j["state"] in states:
                return j
            time.sleep(0.1)
        raise Failure("job %d did not reach %s within %d s (last: %s)\n%s" % (jid, states, timeout, j, self.log()))


def bearer(token):
    """Headers for a request with this bearer token (None: no Authorization header)."""
    return {"Authorization": "Bearer " + token} if token else {}


def ssld(exe, *args, env=None, timeout=120, check_rc=None):
    """Runs the ssld binary (a client or `token` command): CompletedProcess with text output.
    check_rc: the exit code it must end with (Failure otherwise)."""
    p = subprocess.run([exe] + list(args), capture_output=True, text=True, env=env, timeout=timeout,
                       stdin=subprocess.DEVNULL)
    if check_rc is not None and p.returncode != check_rc:
        raise Failure("ssld %s: exit %d, expected %d\nstdout: %s\nstderr: %s"
                      % (" ".join(args), p.returncode, check_rc, p.stdout, p.stderr))
    return p


def run(main):
    """Runs main(exe), prints PASS/FAIL, exits 0/1 (77 passes through)."""
    exe = sys.argv[1] if len(sys.argv) > 1 else "build/daemon/ssld"
    try:
        main(exe)
    except Failure as e:
        print("FAIL: %s" % e)
        sys.exit(1)
    print("PASS")
    sys.exit(0)
