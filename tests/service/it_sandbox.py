"""it_sandbox.py - a real training job inside an approximation of ssld.service's sandbox.

The test machines do not run systemd as PID 1, so the unit itself cannot be started. This rebuilds
the parts of its sandbox that plain Linux tools can, around a real `ssld serve`, and runs a short
job to the end (train, checkpoint, evaluate, results):

  ProcSubset=pid, ProtectProc=invisible   a private /proc mounted with subset=pid,hidepid=invisible
  ProtectSystem=strict                    / remounted read-only (the state directory stays writable,
                                          like StateDirectory=; /tmp stays writable, like PrivateTmp=)
  ProtectHome=yes                         empty read-only tmpfs over /home and /root
  User=, NoNewPrivileges=,                setpriv: uid/gid 65534, no supplementary groups,
  CapabilityBoundingSet= (empty)          no_new_privs, empty bounding and inheritable sets

  SystemCallFilter=@system-service        seccomp_exec.py: the allow list systemd would build
  SystemCallFilter=~@privileged @resources  (expanded with `systemd-analyze syscall-filter`),
  SystemCallErrorNumber=EPERM,            EPERM for the rest, native architecture only, and the
  SystemCallArchitectures=native,         MemoryDenyWriteExecute= rules (when systemd-analyze
  MemoryDenyWriteExecute=yes              and libseccomp.so.2 are there; said when not)

Not reproduced: PrivateDevices=, PrivateTmp='s privacy, RestrictAddressFamilies= and the IP
address filter (`systemd-analyze security` in it_install checks they are set). Needs root,
unshare and setpriv; skips (77) without them.
"""
import ctypes.util
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ssld_harness import Failure, check, run, short_job, skip_unless_dataset  # noqa: E402

NOBODY = 65534

def syscall_groups():
    """{"@group": [members]} from `systemd-analyze syscall-filter`, or None."""
    sa = shutil.which("systemd-analyze")
    if not sa:
        return None
    p = subprocess.run([sa, "syscall-filter", "--no-pager"], capture_output=True, text=True)
    groups, cur = {}, None
    for line in p.stdout.splitlines():
        if line.startswith("@"):
            cur = groups.setdefault(line.strip(), [])
        elif not line.strip() or line.startswith("#"):
            cur = None if line.startswith("#") else cur
        elif cur is not None and not line.strip().startswith("#"):
            cur.append(line.strip())
    return groups or None


def expand(groups, name, seen=None):
    seen = set() if seen is None else seen
    out = set()
    for m in groups[name]:
        if m.startswith("@"):
            if m not in seen:
                seen.add(m)
                out |= expand(groups, m, seen)
        else:
            out.add(m)
    return out


def unit_syscalls():
    """The system calls ssld.service allows: @system-service minus @privileged and @resources."""
    g = syscall_groups()
    if not g or "@system-service" not in g:
        return None
    return sorted(expand(g, "@system-service") - expand(g, "@privileged") - expand(g, "@resources"))


SCRIPT = r"""
set -e
mount -t proc -o subset=pid,hidepid=invisible proc /proc
mount --bind /tmp /tmp
mount -o remount,bind,ro /
for d in /home /root; do [ -d $d ] && mount -t tmpfs -o ro,mode=0755 tmpfs $d; done
if touch /etc/.ssld-sandbox-probe 2>/dev/null; then echo "sandbox: / is still writable" >&2; exit 90; fi
[ -e /proc/cpuinfo ] && { echo "sandbox: /proc/cpuinfo still visible" >&2; exit 91; }
exec setpriv --no-new-privs --inh-caps=-all --bounding-set=-all --reuid=%(uid)d --regid=%(uid)d --clear-groups \
  "$@"
"""


def call(port, method, path, body=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        c.request(method, path, body=json.dumps(body) if body is not None else None)
        r = c.getresponse()
        return r.status, json.loads(r.read() or b"null")
    finally:
        c.close()


def main(exe):
    skip_unless_dataset()
    if os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("setpriv"):
        print("SKIP: needs root, unshare and setpriv to build the sandbox")
        sys.exit(77)
    probe = subprocess.run(["unshare", "-mpf", "--propagation", "private", "sh", "-c",
                            "mount -t proc -o subset=pid proc /proc && test ! -e /proc/cpuinfo"],
                           capture_output=True, text=True)
    if probe.returncode != 0:
        print("SKIP: this kernel or container cannot mount a private /proc with subset=pid: %s" % probe.stderr.strip())
        sys.exit(77)
    tmp = tempfile.mkdtemp(prefix="ssld-sandbox-")
    os.chmod(tmp, 0o755)
    state = os.path.join(tmp, "state")
    os.mkdir(state, 0o750)
    os.chown(state, NOBODY, NOBODY)
    wrapper = []
    allowed = unit_syscalls()
    have_seccomp = allowed is not None and ctypes.util.find_library("seccomp")
    if have_seccomp:
        allowed_file = os.path.join(tmp, "allowed-syscalls.txt")
        with open(allowed_file, "w") as f:
            f.write("\n".join(allowed) + "\n")
        shutil.copy(os.path.join(os.path.dirname(os.path.abspath(__file__)), "seccomp_exec.py"), tmp)
        wrapper = ["/usr/bin/python3", os.path.join(tmp, "seccomp_exec.py"), allowed_file]
    else:
        print("  (no system call filter: %s)" % ("libseccomp.so.2 not found" if allowed else
                                                 "systemd-analyze syscall-filter unavailable"))
    log_path = os.path.join(tmp, "ssld.log")
    log = open(log_path, "ab")
    proc = subprocess.Popen(["unshare", "-mpf", "--kill-child", "--propagation", "private", "sh", "-c", SCRIPT % {"uid": NOBODY}, "sh"] + wrapper +
                            [exe, "serve", "--listen", "127.0.0.1:0", "--state-dir", state, "--workers", "1"],
                            stdout=log, stderr=log, stdin=subprocess.DEVNULL)
    log.close()
    try:
        port = None
        deadline = time.time() + 120
        while time.time() < deadline and port is None:
            check(proc.poll() is None, "the sandboxed ssld exited %s:\n%s" % (proc.returncode, open(log_path).read()))
            try:
                port = int(open(os.path.join(state, "port")).read())
            except (FileNotFoundError, ValueError):
                time.sleep(0.1)
        check(port, "no port file from the sandboxed ssld:\n%s" % open(log_path).read())
        job = short_job("sandboxed", epochs=1, limit_train=512,
                        extra={"evaluations": [{"protocol": "knn", "label_fractions": [0.1]}]})
        s, j = call(port, "POST", "/v1/jobs", job)
        check(s == 201, "submit -> %d %s" % (s, j))
        deadline = time.time() + 180
        while time.time() < deadline:
            s, jj = call(port, "GET", "/v1/jobs/%d" % j["id"])
            if jj["state"] in ("succeeded", "failed", "cancelled"):
                break
            time.sleep(0.2)
        check(jj["state"] == "succeeded", "the job ended %s in the sandbox: %s\n%s" % (jj["state"], jj["error"],
                                                                                       open(log_path).read()))
        acc = jj["results"]["evaluations"][0]["test_accuracy"]
        s, arts = call(port, "GET", "/v1/jobs/%d/artifacts" % j["id"])
        check(s == 200 and arts["artifacts"], "no artifacts from the sandboxed job: %s" % arts)
        owners = {os.stat(os.path.join(dp, f)).st_uid for dp, _, fs in os.walk(state) for f in fs}
        check(owners == {NOBODY}, "files in the state directory owned by %s, expected only the service user" % owners)
        # unshare does not forward signals: SIGTERM its child (ssld, pid 1 of the new namespace).
        with open("/proc/%d/task/%d/children" % (proc.pid, proc.pid)) as f:
            child = int(f.read().split()[0])
        os.kill(child, 15)
        rc = proc.wait(60)
        check(rc == 0, "the sandboxed ssld exited %d after SIGTERM" % rc)
        log_text = open(log_path, errors="replace").read()
        if have_seccomp:
            check("MemoryDenyWriteExecute on" in log_text, "the seccomp wrapper did not report its filters:\n" + log_text)
        print("  sandboxed job: succeeded (knn accuracy %.3f, %d artifacts), exit %d; every file in the state "
              "directory owned by uid %d; system call filter: %s" % (acc, len(arts["artifacts"]), rc, NOBODY,
              "%d calls allowed, MemoryDenyWriteExecute on" % len(allowed) if have_seccomp else "not applied"))
    except Failure:
        print("---- ssld log ----\n%s" % open(log_path, errors="replace").read()[-4000:])
        raise
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    run(main)
