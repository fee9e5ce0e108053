"""it_blas_core.py - ssld chooses OpenBLAS's kernels when OpenBLAS fell back to an older family.

Runs the real binary with OPENBLAS_CORETYPE unset and reads the kernels from GET /v1/health:
where OpenBLAS's own choice (asked here through ctypes, in a process without the variable) ranks
below the family the CPU's flags allow (/proc/cpuinfo), the daemon must run that family, say
"chosen by ssld" in its log and carry OPENBLAS_CORETYPE in its own environment (same pid: it
executed itself again); elsewhere it must run OpenBLAS's choice untouched. Then SSLD_BLAS_CORETYPE=
keep, a user's OPENBLAS_CORETYPE, a bad SSLD_BLAS_CORETYPE, and `ssld run`'s line. Passes on any
x86-64 CPU; on one OpenBLAS knows it checks that nothing is changed.
"""
import ctypes
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ssld_harness import Daemon, check, run, ssld  # noqa: E402

# OpenBLAS core names by the widest instructions their kernels use (0 SSE ... 4 AVX-512 + BF16).
RANK = {"prescott": 0, "core2": 0, "penryn": 0, "dunnington": 0, "nehalem": 0, "atom": 0,
        "barcelona": 0, "opteron": 0, "opteron_sse3": 0, "bobcat": 0, "nano": 0,
        "sandybridge": 1, "bulldozer": 1, "piledriver": 1, "steamroller": 1,
        "haswell": 2, "excavator": 2, "zen": 2, "skylakex": 3, "cooperlake": 4, "sapphirerapids": 4}


def cpu_family():
    flags = set()
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    if {"avx512f", "avx512bw", "avx512vl"} <= flags:
        return "Cooperlake" if "avx512_bf16" in flags else "SkylakeX"
    if {"avx2", "fma"} <= flags:
        return "Haswell"
    return "Sandybridge" if "avx" in flags else ""


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENBLAS_CORETYPE", "SSLD_BLAS_CORETYPE", "SSLD_SIMD"))}
    env.update(extra)
    return env


def openblas_own():
    """(core name, DYNAMIC_ARCH?) of the OpenBLAS ssld loads, in a process without the variable."""
    code = ("import ctypes; l = ctypes.CDLL('libopenblas.so.0'); "
            "l.openblas_get_corename.restype = l.openblas_get_config.restype = ctypes.c_char_p; "
            "print(l.openblas_get_corename().decode()); print(l.openblas_get_config().decode())")
    out = subprocess.run([sys.executable, "-c", code], env=clean_env(), capture_output=True, text=True,
                         check=True).stdout.splitlines()
    return out[0], "DYNAMIC_ARCH" in out[1]


SIMD_LEVELS = ("sse", "avx2", "avx512")


def cpu_simd():
    """The widest level of the engine's vector kernels /proc/cpuinfo allows (engine/simd.h)."""
    with open("/proc/cpuinfo") as f:
        flags = next((l.split(":", 1)[1].split() for l in f if l.startswith("flags")), [])
    v3 = ("avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "abm", "movbe", "xsave")   # x86-64-v3
    v4 = v3 + ("avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl")          # x86-64-v4
    return "avx512" if all(x in flags for x in v4) else "avx2" if all(x in flags for x in v3) else "sse"


def health_blas(exe, env):
    d = Daemon(exe)
    try:
        d.start("--workers", "0", env=env)
        s, h = d.get("/v1/health")
        check(s == 200 and "blas" in h, "GET /v1/health -> %d %s" % (s, h))
        with open("/proc/%d/environ" % d.proc.pid, "rb") as f:
            environ = dict(kv.split(b"=", 1) for kv in f.read().split(b"\0") if b"=" in kv)
        log = d.log()
        rc = d.stop()
        check(rc == 0, "ssld exited %s:\n%s" % (rc, log))
        levels = h.get("simd_levels")
        cpu = SIMD_LEVELS.index(cpu_simd())
        check(isinstance(levels, list) and levels and levels[0] == "sse" and
              all(SIMD_LEVELS.index(l) <= cpu for l in levels) and h.get("simd") in levels,
              "health simd %r of %r; /proc/cpuinfo allows %s" % (h.get("simd"), levels, cpu_simd()))
        return h["blas"], environ, log, h["simd"], levels
    finally:
        d.cleanup()


def main(exe):
    own, dynamic = openblas_own()
    want = cpu_family()
    chooses = dynamic and own.lower() in RANK and want and RANK[own.lower()] < RANK[want.lower()]
    print("OpenBLAS's own choice %s (DYNAMIC_ARCH %s); the CPU's flags allow %s; ssld should %s"
          % (own, dynamic, want or "SSE only", "choose " + want if chooses else "keep " + own))

    blas, environ, log, level, levels = health_blas(exe, clean_env())
    check(level == levels[-1], "engine vector kernels %s, not the widest of %s" % (level, levels))
    check("engine vector kernels: %s" % level in log, "no vector-kernel level in the log:\n" + log)
    check(blas["cpu_family"] == want, "cpu_family %s, /proc/cpuinfo says %s" % (blas["cpu_family"], want))
    if chooses:
        check(blas["kernels"] == want and blas["chosen_by"] == "ssld", "health blas %s, expected %s by ssld" % (blas, want))
        check(environ.get(b"OPENBLAS_CORETYPE") == want.encode(), "the serving pid's OPENBLAS_CORETYPE: %s"
              % environ.get(b"OPENBLAS_CORETYPE"))
        check("kernels %s (chosen by ssld: OpenBLAS picked %s" % (want, own) in log, "no BLAS line in the log:\n" + log)
    else:
        check(blas["kernels"] == own and blas["chosen_by"] == "openblas", "health blas %s, expected %s untouched" % (blas, own))
        check(b"OPENBLAS_CORETYPE" not in environ, "OPENBLAS_CORETYPE set though nothing was chosen")

    blas, environ, log, level, _ = health_blas(exe, clean_env(SSLD_BLAS_CORETYPE="keep", SSLD_SIMD="sse"))
    check(level == "sse", "SSLD_SIMD=sse: health simd %s" % level)
    check(blas["kernels"] == own and blas["chosen_by"] == "openblas", "keep: %s, expected %s" % (blas, own))
    check(b"OPENBLAS_CORETYPE" not in environ, "keep: OPENBLAS_CORETYPE set")

    mine = "Sandybridge" if want else "Prescott"
    blas, environ, log, level, _ = health_blas(exe, clean_env(OPENBLAS_CORETYPE=mine))
    if dynamic:
        check(blas["kernels"] == mine and blas["chosen_by"] == "OPENBLAS_CORETYPE", "user's %s: %s" % (mine, blas))

    p = ssld(exe, "serve", "--listen", "127.0.0.1:0", env=clean_env(SSLD_BLAS_CORETYPE="fast"), timeout=60)
    check(p.returncode == 2 and "SSLD_BLAS_CORETYPE=fast: expected auto" in p.stderr,
          "bad SSLD_BLAS_CORETYPE: exit %d, stderr %r" % (p.returncode, p.stderr))

    # ssld run executes again the same way and says so on stderr before doing its work.
    p = ssld(exe, "run", "/nonexistent/job.json", env=clean_env(), timeout=60)
    check(p.returncode == 2 and "/nonexistent/job.json" in p.stderr, "run: exit %d %r" % (p.returncode, p.stderr))
    check(("BLAS: OpenBLAS" in p.stderr and "kernels %s (chosen by ssld" % want in p.stderr) == bool(chooses),
          "run's stderr: %r" % p.stderr)


if __name__ == "__main__":
    run(main)
