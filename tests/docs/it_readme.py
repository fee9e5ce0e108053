"""it_readme.py - follows README.md's quick start and first job as written, so README and product
cannot drift apart unnoticed:

- the quick start's fenced commands are `scripts/serve` and `scripts/test`; .ci/run runs
  scripts/test, and scripts/serve ends by starting `build/daemon/ssld serve` with the arguments this
  test then uses (its ./state becomes a temporary directory, its 127.0.0.1:8080 a free port);
- every command of the "Your first job" block that calls build/daemon/ssld, except `run` (the
  foreground alternative), runs against that daemon exactly as written (the job id the README
  assumes is replaced by the one submit printed);
- submit --watch ends with exit 0 when the job succeeds; the job is then `succeeded`, and its
  results carry the linear probe's and the from-scratch network's test accuracies, the probe ahead
  (as the README says; the same seed and thread count train the same network bit for bit), and a
  headline (the probe against scratch at 1 % labels, its gain their difference) that `ssld results`
  prints first.

Usage: it_readme.py SSLD_EXE SOURCE_ROOT
"""
import os
import re
import shlex
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "service"))
from ssld_harness import Daemon, Failure, check, run, skip_unless_dataset  # noqa: E402

ROOT = sys.argv[2] if len(sys.argv) > 2 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
WATCH_BOUND_S = 1500   # the hello job takes about a minute on 2 idle cores; the suite's box is shared


def sections(text):
    """{heading: [fenced sh block, as a list of command lines without comments]} of README.md."""
    out, heading, block = {}, None, None
    for line in text.splitlines():
        if block is not None:
            if line.startswith("```"):
                out.setdefault(heading, []).append(block)
                block = None
            else:
                cmd = line.split("#", 1)[0].strip() if not line.lstrip().startswith("#") else ""
                if cmd:
                    block.append(cmd)
        elif line.startswith("## "):
            heading = line[3:].strip()
        elif line.startswith("```sh"):
            block = []
    return out


def serve_args():
    """The arguments scripts/serve gives `build/daemon/ssld serve`, with --state-dir left to the harness."""
    with open(os.path.join(ROOT, "scripts", "serve")) as f:
        execs = [l for l in f.read().splitlines() if l.startswith("exec build/daemon/ssld serve")]
    check(len(execs) == 1, "scripts/serve has no single `exec build/daemon/ssld serve` line: %s" % execs)
    words = [w for w in shlex.split(execs[0])[3:] if w != "$@"]
    out, i = [], 0
    while i < len(words):
        if words[i] == "--state-dir":
            check(words[i + 1] == "./state", "scripts/serve keeps its state in %s, README says ./state" % words[i + 1])
            i += 2
            continue
        out.append(os.path.join(ROOT, words[i][2:]) if words[i].startswith("./") else words[i])
        i += 1
    return out


def main(exe):
    skip_unless_dataset()
    with open(os.path.join(ROOT, "README.md")) as f:
        readme = f.read()
    blocks = sections(readme)

    quick = blocks.get("Quick start", [])
    check(quick and quick[0] == ["scripts/serve", "scripts/test"],
          "README's quick start should be `scripts/serve` then `scripts/test`, got %s" % quick)
    check("127.0.0.1:8080" in readme and "./state" in readme, "README no longer says where the daemon listens")
    with open(os.path.join(ROOT, ".ci", "run")) as f:
        check(re.search(r"^exec scripts/test\b", f.read(), re.M), ".ci/run does not run scripts/test")

    first = [shlex.split(c) for b in blocks.get("Your first job", []) for c in b]
    first = [w for w in first if w and w[0] == "build/daemon/ssld" and w[1] != "run"]
    check(first and first[0][1] == "submit" and "--watch" in first[0],
          "README's first job should start with `ssld submit ... --watch`, got %s" % first)
    job_file = [w for w in first[0][2:] if not w.startswith("-")]
    check(len(job_file) == 1 and os.path.isfile(os.path.join(ROOT, job_file[0])),
          "README's first job names no existing job file: %s" % first[0])

    d = Daemon(exe)
    try:
        d.start(*serve_args())
        env = dict(os.environ, SSLD_SERVER="http://127.0.0.1:%d" % d.port)
        env.pop("SSLD_TOKEN", None)
        jid, outputs = None, []
        for words in first:
            if jid is not None:   # the README assumes a fresh daemon's first id
                words = [str(jid) if w == "1" else w for w in words]

            p = subprocess.run([exe] + words[1:], cwd=ROOT, env=env, capture_output=True, text=True,
                               timeout=WATCH_BOUND_S, stdin=subprocess.DEVNULL)
            check(p.returncode == 0, "`%s` exited %d\nstdout: %s\nstderr: %s\n%s"
                  % (" ".join(words), p.returncode, p.stdout[-3000:], p.stderr[-3000:], d.log()))
            if words[1] == "submit":
                m = re.match(r"\s*(\d+)\s*$", p.stdout.splitlines()[0] if p.stdout else "")
                check(m, "submit printed no job id first: %r" % p.stdout[:200])
                jid = int(m.group(1))
            outputs.append((words, p.stdout))
        j = d.wait_state(jid, ("succeeded", "failed", "cancelled"), timeout=60)
        check(j["state"] == "succeeded", "the first job ended %s: %s" % (j["state"], j.get("error")))
        evals = (j.get("results") or {}).get("evaluations") or []
        acc = {e.get("protocol"): e.get("test_accuracy") for e in evals}
        for proto in ("linear_probe", "supervised"):
            check(isinstance(acc.get(proto), (int, float)) and 0 < acc[proto] <= 1,
                  "results carry no %s test accuracy: %s" % (proto, evals))
        check(acc["linear_probe"] > acc["supervised"],
              "README says the pretrained encoder is ahead, but its probe %.4f <= from scratch %.4f"
              % (acc["linear_probe"], acc["supervised"]))
        h = j["results"].get("headline") or {}
        check(h.get("protocol") == "linear_probe" and h.get("baseline") == "scratch" and h.get("label_fraction") == 0.01
              and abs(h.get("gain", 0) - (acc["linear_probe"] - acc["supervised"])) < 1e-6,
              "the headline is not the probe against scratch at 1 %%: %s" % h)
        shown = [out for words, out in outputs if words[1] == "results"]
        lines = shown[0].splitlines() if shown else []
        first = next((l for l in lines if not l.startswith("job ")), "")   # after the job's name line
        m = re.match(r"headline: ([+-][0-9.]+) pts over scratch at 1% labels", first)
        # (the printed gain is rounded to 0.1: a gain of 7.35 may print as 7.3 or 7.4)
        check(m and abs(float(m.group(1)) - 100 * h["gain"]) <= 0.05 + 1e-9,
              "`ssld results` does not lead with the headline:\n%s" % (shown[0] if shown else "(not run)"))
        check(shown and "linear_probe" in shown[0] and "supervised" in shown[0],
              "`ssld results` did not show both accuracies:\n%s" % (shown[0] if shown else "(not run)"))
        print("hello: linear probe %.4f, from scratch %.4f" % (acc["linear_probe"], acc["supervised"]))
    finally:
        d.stop()
        d.cleanup()


if __name__ == "__main__":
    run(main)
