"""it_client.py - the command-line client (`ssld submit|ls|show|watch|logs|cancel|results`) against a real
daemon with tokens, and where it finds its server and token.

- configuration: ~/.config/ssld/client.conf (a temporary HOME) gives server and token; SSLD_SERVER /
  SSLD_TOKEN override the file; --server / --token override both; $XDG_CONFIG_HOME wins over HOME;
  a token file others can read draws a warning; a wrong token gets the server's 401 and a hint;
- submit prints the job id; ls lists it with its owner; show prints state, progress and metrics;
  watch with stdout not a terminal prints plain lines (no carriage returns or escape codes), ends
  with the results table and exit 0; on a terminal (a pty) it redraws a bar with ETA and loss; results prints the evaluation table; cancel of a queued job
  says cancelled, of someone else's job exits 1 with the server's 403; a job that is not finished
  has no results (exit 1); logs prints the job's events in order, and logs --follow started on a
  running job ends once that job is cancelled, with every event printed.
"""
import json
import os
import pty
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ssld_harness import Daemon, check, run, short_job, skip_unless_dataset, ssld  # noqa: E402


def main(exe):
    skip_unless_dataset()
    tmp = tempfile.mkdtemp(prefix="ssld-client-")
    d = Daemon(exe)
    try:
        d.start("--workers", "1")
        state = d.state_dir
        alice = ssld(exe, "token", "create", "alice", "--state-dir", state, check_rc=0).stdout.strip()
        bob = ssld(exe, "token", "create", "bob", "--state-dir", state, check_rc=0).stdout.strip()
        url = "http://127.0.0.1:%d" % d.port
        home = os.path.join(tmp, "home")
        conf_dir = os.path.join(home, ".config", "ssld")
        os.makedirs(conf_dir)
        conf = os.path.join(conf_dir, "client.conf")
        with open(conf, "w") as f:
            f.write("# written by it_client.py\nserver = %s\ntoken = \"%s\"\n" % (url, alice))
        os.chmod(conf, 0o600)
        base = {k: v for k, v in os.environ.items() if not k.startswith("SSLD_") and k != "XDG_CONFIG_HOME"}
        env = dict(base, HOME=home)

        job = short_job("client-job", epochs=2, limit_train=512,
                        extra={"evaluations": [{"protocol": "linear_probe", "label_fractions": [0.1]}]})
        job_file = os.path.join(tmp, "job.json")
        with open(job_file, "w") as f:
            json.dump(job, f)

        # ---- submit with the config file only ----------------------------------------------------
        p = ssld(exe, "submit", job_file, env=env, check_rc=0)
        check(re.fullmatch(r"\d+\n", p.stdout), "submit stdout is not just the id: %r" % p.stdout)
        check("warning" not in p.stderr, "mode 600 config warned: %s" % p.stderr)
        jid = int(p.stdout)
        check(d.job(jid)["owner"] == "alice", "the job does not belong to the config file's token")

        # ---- watch (not a TTY): plain lines, results at the end ---------------------------------
        p = ssld(exe, "watch", str(jid), "--interval", "0.2", env=env, timeout=300, check_rc=0)
        check("\r" not in p.stdout and "\033" not in p.stdout, "watch wrote terminal codes to a pipe: %r" % p.stdout[:300])
        lines = p.stdout.splitlines()
        progress = [l for l in lines if re.match(r"job %d (queued|running|succeeded|failed|cancelled)\b" % jid, l)]
        check(progress and progress[-1].startswith("job %d succeeded" % jid), "watch's last line: %s" % progress[-1:])
        check(any(" running" in l for l in progress), "watch never printed the running state: %s" % progress)
        check(any("loss " in l for l in progress), "watch never printed the latest loss: %s" % progress)
        check(any(l.startswith("linear_probe") for l in lines), "watch did not end with the results:\n%s" % p.stdout)
        check(len(progress) < 60, "watch printed %d lines for a short job (a line per poll?)" % len(progress))

        # ---- watch on a terminal: the bar redrawn in place ----------------------------------------
        master, slave = pty.openpty()
        proc = subprocess.Popen([exe, "watch", str(jid)], stdout=slave, stderr=subprocess.PIPE, env=env,
                                stdin=subprocess.DEVNULL)
        os.close(slave)
        out = b""
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:   # EIO: the child closed the terminal
                break
            if not chunk:
                break
            out += chunk
        os.close(master)
        check(proc.wait(120) == 0, "watch on a terminal exited %s: %s" % (proc.returncode, proc.stderr.read()))
        tty = out.decode(errors="replace")
        check("\r\033[K" in tty, "watch on a terminal does not redraw in place: %r" % tty[:300])
        check(re.search(r"\[#{30}\] 100%", tty) and "ETA" in tty and "loss " in tty,
              "no full progress bar with ETA and loss on a terminal: %r" % tty[:300])

        # ---- results, show, ls -----------------------------------------------------------------
        p = ssld(exe, "results", str(jid), env=env, check_rc=0)
        row = [l for l in p.stdout.splitlines() if l.startswith("linear_probe")]
        check(row, "results has no linear_probe row:\n%s" % p.stdout)
        acc = row[0].split()[3]
        want = d.job(jid)["results"]["evaluations"][0]["test_accuracy"]
        check(acc == "%.2f%%" % (100 * want), "results table says %s, the API %s" % (acc, want))
        p = ssld(exe, "results", str(jid), "--json", env=env, check_rc=0)
        check(json.loads(p.stdout)["evaluations"][0]["protocol"] == "linear_probe", "results --json: %s" % p.stdout[:200])
        p = ssld(exe, "show", str(jid), env=env, check_rc=0)
        for want_text in ("job %d" % jid, "succeeded", "alice", "simclr", "metrics", "loss="):
            check(want_text in p.stdout, "show lacks %r:\n%s" % (want_text, p.stdout))
        p = ssld(exe, "ls", env=env, check_rc=0)
        row = [l for l in p.stdout.splitlines() if l.split()[:1] == [str(jid)]]
        check(row and "succeeded" in row[0] and "alice" in row[0] and "client-job" in row[0], "ls:\n%s" % p.stdout)
        p = ssld(exe, "ls", "--json", env=env, check_rc=0)
        check(any(j["id"] == jid for j in json.loads(p.stdout)["jobs"]), "ls --json")

        # ---- cancel: own queued job; someone else's -> the server's 403 -----------------------------
        long_job = short_job("client-long", epochs=200, limit_train=4096, hidden=(256,))
        with open(job_file, "w") as f:
            json.dump(long_job, f)
        run_id = int(ssld(exe, "submit", job_file, env=env, check_rc=0).stdout)
        queued_id = int(ssld(exe, "submit", job_file, env=env, check_rc=0).stdout)
        d.wait_state(run_id, ("running",), timeout=60)
        follow = subprocess.Popen([exe, "logs", str(run_id), "--follow", "--interval", "0.2"], env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
        p = ssld(exe, "results", str(queued_id), env=env)
        check(p.returncode == 1 and "queued" in p.stderr, "results of a queued job: %d %s" % (p.returncode, p.stderr))
        p = ssld(exe, "cancel", str(queued_id), "--token", bob, env=env)
        check(p.returncode == 1 and "HTTP 403 forbidden" in p.stderr and "belongs to 'alice'" in p.stderr,
              "bob cancelling: %d %s" % (p.returncode, p.stderr))
        p = ssld(exe, "cancel", str(queued_id), env=env, check_rc=0)
        check("cancelled" in p.stdout, "cancel queued: %s" % p.stdout)
        p = ssld(exe, "cancel", str(run_id), env=env, check_rc=0)
        check("cancel requested" in p.stdout, "cancel running: %s" % p.stdout)
        p = ssld(exe, "watch", str(run_id), "--interval", "0.2", env=env, timeout=60)
        check(p.returncode == 1 and "cancelled" in p.stdout, "watch of a cancelled job: %d %s" % (p.returncode, p.stdout))

        # ---- logs: the event log as the API has it; --follow ends when the job does -------------------
        out, err = follow.communicate(timeout=60)
        check(follow.returncode == 0, "logs --follow exited %d: %s" % (follow.returncode, err))
        events = d.get("/v1/jobs/%d/events?limit=1000" % run_id)[1]["events"]
        lines = out.splitlines()
        check(len(lines) == len(events) and events, "logs --follow printed %d lines for %d events:\n%s"
              % (len(lines), len(events), out[-500:]))
        check(all(e["message"] in l and e["level"] in l for e, l in zip(events, lines)),
              "logs lines do not follow the events in order:\n%s" % out[-500:])
        p = ssld(exe, "logs", str(jid), env=env, check_rc=0)
        done = d.get("/v1/jobs/%d/events?limit=1000" % jid)[1]["events"]
        check(len(p.stdout.splitlines()) == len(done) and done[-1]["message"] in p.stdout.splitlines()[-1],
              "logs of a finished job:\n%s" % p.stdout[-500:])

        # ---- precedence: flags > environment > config file -----------------------------------------
        bad = "http://127.0.0.1:1"   # nothing listens on port 1
        with open(conf, "w") as f:
            f.write("server = %s\ntoken = ssld_wrong\n" % bad)
        p = ssld(exe, "ls", env=env)
        check(p.returncode == 1 and "cannot connect to %s" % bad in p.stderr, "config server: %s" % p.stderr)
        p = ssld(exe, "ls", env=dict(env, SSLD_SERVER=url), check_rc=0)   # reads are open on loopback
        p = ssld(exe, "cancel", str(jid), env=dict(env, SSLD_SERVER=url))
        check(p.returncode == 1 and "HTTP 401" in p.stderr and "--token" in p.stderr,
              "the config file's wrong token: %d %s" % (p.returncode, p.stderr))
        p = ssld(exe, "cancel", str(jid), env=dict(env, SSLD_SERVER=url, SSLD_TOKEN=alice))
        check(p.returncode == 1 and "HTTP 409" in p.stderr, "SSLD_TOKEN over the file: %d %s" % (p.returncode, p.stderr))
        p = ssld(exe, "cancel", str(jid), "--server", url, "--token", alice, env=dict(env, SSLD_SERVER=bad, SSLD_TOKEN="x"))
        check(p.returncode == 1 and "HTTP 409" in p.stderr, "flags over the environment: %d %s" % (p.returncode, p.stderr))
        xdg = os.path.join(tmp, "xdg")
        os.makedirs(os.path.join(xdg, "ssld"))
        with open(os.path.join(xdg, "ssld", "client.conf"), "w") as f:
            f.write("server = %s\ntoken = %s\n" % (url, alice))
        os.chmod(os.path.join(xdg, "ssld", "client.conf"), 0o644)
        p = ssld(exe, "cancel", str(jid), env=dict(env, XDG_CONFIG_HOME=xdg))
        check(p.returncode == 1 and "HTTP 409" in p.stderr, "XDG_CONFIG_HOME: %d %s" % (p.returncode, p.stderr))
        check("others may read it" in p.stderr, "no warning for a world-readable token file: %s" % p.stderr)
        with open(conf, "w") as f:
            f.write("server = %s\nsecret = 1\n" % url)
        p = ssld(exe, "ls", env=env)
        check(p.returncode == 2 and "unknown key 'secret'" in p.stderr, "bad config key: %d %s" % (p.returncode, p.stderr))
        p = ssld(exe, "show", "x", env=env)
        check(p.returncode == 2, "show with a bad id exits %d" % p.returncode)
        check(d.stop() == 0, "ssld did not stop cleanly")
        print("  client: submit/watch/results/show/ls/cancel against the daemon; watch printed %d plain lines; "
              "flags > env > client.conf" % len(progress))
    finally:
        d.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    run(main)
