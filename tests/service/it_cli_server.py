"""it_cli_server.py - the client commands that read a job, download from it, sample from it and run
it again, driving the built `ssld` against a real daemon (tiny jobs on 2 workers):

- `ssld artifacts ID` lists what GET /v1/jobs/{id}/artifacts lists; `--get NAME -o FILE` writes
  the very bytes the server serves (its SHA-256), `-o -` writes them to stdout; an unknown name
  exits 1 naming it with the nearest name, and leaves no file behind;
- `ssld generate ID` asks the server: a language model's continuation is the API's for the same
  seed (and the local mode on the job directory gives the same text); an image grid lands in
  -o FILE, byte for byte the artifact the job recorded; a job that cannot generate exits 1 with
  the server's 409;
- `ssld submit --from ID --set pretrain.optimizer.lr=3e-3 --set seed=2 --set name=again --watch`
  queues the source's spec with exactly those three fields changed and follows it to success; a
  mistyped path is shown as a new key and refused by the server naming the field, a path through a number is refused
  naming it, `--from` a missing job exits 1 with the 404 - and none of these queues a job;
- `ssld ls` shows AGE, TIME and RESULT (the headline gain when the results carry one, else the
  best accuracy, else the pretext figure), with the accuracy formatted as `ssld results`,
  `submit --watch` and `show` format it (one formatter: the API's fraction as a percentage);
- `--output json` of ls, show, results, artifacts, logs and methods prints the API's JSON;
- `ssld results` of a cancelled job says it was cancelled, of a failed one its reason, not that
  results will come; the submit hint names the job's id.
"""
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ssld_harness import FASHION, Daemon, check, lm_job, run, short_job, skip_unless_dataset, ssld, write_corpus  # noqa: E402

ENDED = ("succeeded", "failed", "cancelled")


def key_result(res):
    """What `ssld ls` must show as RESULT for a results object (cli/format.h)."""
    h = res.get("headline")
    if isinstance(h, dict) and isinstance(h.get("accuracy"), (int, float)):
        pts = 100 * (h["accuracy"] - h["baseline_accuracy"])
        return "%+.1f pts @%s" % (pts, "%.4g%%" % (100 * h["label_fraction"]))
    evs = [e for e in res.get("evaluations", []) if isinstance(e.get("test_accuracy"), (int, float))]
    ssl = [e for e in evs if e["protocol"] != "supervised"] or evs
    best = max(ssl, key=lambda e: e["test_accuracy"])
    return "%.2f%% @%s" % (100 * best["test_accuracy"], "%.4g%%" % (100 * best["label_fraction"]))


def main(exe):
    skip_unless_dataset()
    tmp = tempfile.mkdtemp(prefix="ssld-cli-server-")
    root = os.path.join(tmp, "data")
    os.makedirs(root)
    d = Daemon(exe)
    try:
        corpus = write_corpus(os.path.join(root, "corpus.txt"))
        d.start("--workers", "2", "--data-root", root, "--data-root", os.path.dirname(FASHION))
        env = {k: v for k, v in os.environ.items() if not k.startswith("SSLD_")}
        env.update(SSLD_SERVER="http://127.0.0.1:%d" % d.port, HOME=tmp, XDG_CONFIG_HOME=os.path.join(tmp, "xdg"))

        def cli(*args, rc=None):
            return ssld(exe, *args, env=env, check_rc=rc)

        def submit(spec):
            path = os.path.join(tmp, "job.json")
            with open(path, "w") as f:
                json.dump(spec, f)
            p = cli("submit", path, rc=0)
            jid = int(p.stdout)
            check("`ssld watch %d`" % jid in p.stderr, "the submit hint does not name job %d: %s" % (jid, p.stderr))
            return jid

        probe = submit(short_job("cli-probe", epochs=1, extra={
            "evaluations": [{"protocol": "linear_probe", "label_fractions": [0.1]}]}))
        lm = submit(lm_job("cli-lm", corpus))
        vae = submit({"name": "cli-vae", "method": "vae",
                      "dataset": {"name": "fashion-mnist", "limit_train": 512, "limit_test": 256},
                      "model": {"encoder": "mlp", "hidden": [64], "out_dim": 8},
                      "pretrain": {"epochs": 1, "batch_size": 64}, "seed": 1, "threads": 1})
        with open(os.path.join(root, "tiny.txt"), "w") as f:
            f.write("ab\n")   # valid, but too short to hold out a test split: the job fails at run time
        failed = submit(lm_job("cli-fail", os.path.join(root, "tiny.txt")))
        cancelled = submit(short_job("cli-cancel", epochs=200, limit_train=4096, hidden=(256,)))
        cli("cancel", str(cancelled), rc=0)
        for jid in (probe, lm, vae):
            j = d.wait_state(jid, ENDED, timeout=180)
            check(j["state"] == "succeeded", "job %d: %s (%s)" % (jid, j["state"], j["error"]))
        check(d.wait_state(cancelled, ENDED, timeout=60)["state"] == "cancelled", "job %d was not cancelled" % cancelled)
        check(d.wait_state(failed, ENDED, timeout=60)["state"] == "failed", "job %d did not fail" % failed)

        # ---- artifacts ------------------------------------------------------------------------------
        listed = d.get("/v1/jobs/%d/artifacts" % probe)[1]["artifacts"]
        enc = [a for a in listed if a["name"] == "encoder.safetensors"]
        check(enc, "job %d lists no encoder.safetensors: %s" % (probe, listed))
        p = cli("artifacts", str(probe), rc=0)
        rows = {l.split()[0]: l for l in p.stdout.splitlines()[1:]}
        check(set(rows) == {a["name"] for a in listed}, "artifacts lists %s, the API %s" % (sorted(rows), listed))
        check(re.search(r"\d KiB ", rows["encoder.safetensors"]), "no size: %s" % rows["encoder.safetensors"])
        out = os.path.join(tmp, "enc.safetensors")
        p = cli("artifacts", str(probe), "--get", "encoder.safetensors", "-o", out, rc=0)
        with open(out, "rb") as f:
            got = f.read()
        check(hashlib.sha256(got).hexdigest() == enc[0]["sha256"] and len(got) == enc[0]["size"],
              "the downloaded encoder is not the listed one (%d bytes)" % len(got))
        raw = ssld_bytes(exe, env, "artifacts", str(probe), "--get", "encoder.safetensors", "-o", "-")
        check(raw == got, "-o - wrote %d bytes, not the artifact's %d" % (len(raw), len(got)))
        p = cli("artifacts", str(probe), "--get", "encodr.safetensors", "-o", os.path.join(tmp, "x"))
        check(p.returncode == 1 and "no artifact 'encodr.safetensors'" in p.stderr
              and "did you mean 'encoder.safetensors'" in p.stderr, "unknown artifact: %d %s" % (p.returncode, p.stderr))
        check(not [n for n in os.listdir(tmp) if n.startswith("x")], "a refused download left a file: %s" % os.listdir(tmp))

        # ---- generate against the server -------------------------------------------------------------
        s, api = d.post("/v1/jobs/%d/generate" % lm, {"prompt": "the ", "max_tokens": 12, "seed": 5})
        check(s == 200, "POST generate -> %d %s" % (s, api))
        p = cli("generate", str(lm), "--prompt", "the ", "--max-tokens", "12", "--seed", "5", rc=0)
        check(p.stdout == "the " + api["text"] + "\n", "generate %d printed %r, the API %r" % (lm, p.stdout, api["text"]))
        local = cli("generate", os.path.join(d.state_dir, "jobs", str(lm)), "--prompt", "the ", "--max-tokens", "12",
                    "--seed", "5", rc=0)
        check(local.stdout == p.stdout, "the job directory's generation %r differs from the server's %r"
              % (local.stdout, p.stdout))
        png = os.path.join(tmp, "grid.png")
        p = cli("generate", str(vae), "--n", "4", "--seed", "3", "-o", png, rc=0)
        check(p.stdout.strip() == png, "generate printed %r, not the file" % p.stdout)
        with open(png, "rb") as f:
            grid = f.read()
        check(grid[:8] == b"\x89PNG\r\n\x1a\n", "%s is not a PNG" % png)
        arts = {a["name"]: a for a in d.get("/v1/jobs/%d/artifacts" % vae)[1]["artifacts"]}
        made = re.search(r"artifact (samples-generated-\d\.png)", p.stderr)
        check(made and made.group(1) in arts and arts[made.group(1)]["sha256"] == hashlib.sha256(grid).hexdigest(),
              "the grid written is not the job's recorded artifact: %s %s" % (p.stderr, sorted(arts)))
        p = cli("generate", str(probe), "--n", "2")
        check(p.returncode == 1 and "409 not_generative" in p.stderr, "generate from simclr: %d %s" % (p.returncode, p.stderr))

        # ---- submit --from with --set -----------------------------------------------------------------
        before = len(d.get("/v1/jobs?limit=1000")[1]["jobs"])
        p = cli("submit", "--from", str(probe), "--set", "pretrain.optimizr.lr=1")
        check(p.returncode == 1 and "HTTP 400 unknown_key: pretrain.optimizr: unknown key" in p.stderr
              and "pretrain.optimizr.lr: (absent) -> 1" in p.stderr, "a mistyped --set path: %d %s" % (p.returncode, p.stderr))
        p = cli("submit", "--from", str(probe), "--set", "seed.x=1")
        check(p.returncode == 2 and "'seed' is a number" in p.stderr, "--set through a number: %d %s" % (p.returncode, p.stderr))
        p = cli("submit", "--from", "99999", "--set", "seed=2")
        check(p.returncode == 1 and "404" in p.stderr and "99999" in p.stderr, "--from a missing job: %d %s"
              % (p.returncode, p.stderr))
        check(len(d.get("/v1/jobs?limit=1000")[1]["jobs"]) == before, "a refused submit --from queued a job")
        p = cli("submit", "--from", str(probe), "--set", "pretrain.optimizer.lr=3e-3", "--set", "seed=2",
                "--set", "name=again", "--watch", "--interval", "0.2", rc=0)
        again = int(p.stdout.splitlines()[0])
        check("pretrain.optimizer.lr: 0.001 -> 0.003" in p.stderr and "seed: 3 -> 2" in p.stderr,
              "submit --from did not show its edits: %s" % p.stderr)
        src, new = d.job(probe)["spec"], d.job(again)["spec"]
        check(new["pretrain"]["optimizer"]["lr"] == 3e-3 and new["seed"] == 2 and new["name"] == "again",
              "the edits did not reach the new job: %s" % new)
        src["pretrain"]["optimizer"]["lr"], src["seed"], src["name"] = 3e-3, 2, "again"
        check(src == new, "submit --from changed more than the --set fields:\n%s\n%s" % (src, new))
        watched = [l for l in p.stdout.splitlines() if l.startswith("linear_probe")]

        # ---- one number format: results, watch, ls ------------------------------------------------------
        res = d.job(again)["results"]
        cell = "%.2f%%" % (100 * res["evaluations"][0]["test_accuracy"])
        p = cli("results", str(again), rc=0)
        row = [l for l in p.stdout.splitlines() if l.startswith("linear_probe")]
        check(row and row[0].split()[1] == "10%" and row[0].split()[3] == cell,
              "results row %s, want fraction 10%% and accuracy %s" % (row, cell))
        check(watched == row, "submit --watch printed %s, results %s" % (watched, row))
        p = cli("show", str(again), rc=0)
        check(" eval/linear_probe@0.1=%s" % cell in p.stdout, "show's evaluation metric is not %s:\n%s" % (cell, p.stdout))
        p = cli("ls", rc=0)
        head, lines = p.stdout.splitlines()[0].split(), {l.split()[0]: l for l in p.stdout.splitlines()[1:]}
        check(head[:9] == ["ID", "STATE", "METHOD", "OWNER", "AGE", "TIME", "PROGRESS", "RESULT", "NAME"], "ls header %s" % head)
        for jid in (probe, again):
            want = key_result(d.job(jid)["results"])
            check(re.match(r"%d +succeeded +simclr +anonymous +\d+[smhd] +\d+:\d\d +100%% +%s +" % (jid, re.escape(want)),
                           lines[str(jid)]), "ls row of job %d, want result %r:\n%s" % (jid, want, lines[str(jid)]))
        check(re.search(r" mse \d", lines[str(vae)]), "ls shows no reconstruction error for the VAE: %s" % lines[str(vae)])
        check(re.search(r" cancelled .* - +cli-cancel$", lines[str(cancelled)]), "ls cancelled row: %s" % lines[str(cancelled)])

        # ---- --output json is the API's JSON ----------------------------------------------------------------
        def as_json(*args):
            return json.loads(cli(*args, "--output", "json", rc=0).stdout)
        check([j["id"] for j in as_json("ls")["jobs"]] == [j["id"] for j in d.get("/v1/jobs")[1]["jobs"]], "ls --output json")
        check(as_json("show", str(probe)) == d.job(probe), "show --output json is not GET /v1/jobs/%d" % probe)
        check(as_json("results", str(probe)) == d.job(probe)["results"], "results --output json")
        check(as_json("artifacts", str(probe)) == d.get("/v1/jobs/%d/artifacts" % probe)[1], "artifacts --output json")
        check(as_json("methods") == d.get("/v1/methods")[1], "methods --output json is not GET /v1/methods")
        events = d.get("/v1/jobs/%d/events?limit=1000" % probe)[1]
        check(as_json("logs", str(probe)) == events, "logs --output json is not the job's events")
        p = cli("ls", "--output", "yaml")
        check(p.returncode == 2 and "unknown format 'yaml'" in p.stderr, "--output yaml: %d %s" % (p.returncode, p.stderr))

        # ---- a job without results says what happened --------------------------------------------------
        p = cli("results", str(cancelled))
        check(p.returncode == 1 and "was cancelled" in p.stderr and "appear" not in p.stderr,
              "results of a cancelled job: %d %s" % (p.returncode, p.stderr))
        p = cli("results", str(failed))
        check(p.returncode == 1 and "job %d failed" % failed in p.stderr and d.job(failed)["error"] in p.stderr
              and "appear" not in p.stderr, "results of a failed job: %d %s" % (p.returncode, p.stderr))
        check(d.stop() == 0, "ssld did not stop cleanly")
        print("  cli server: artifacts, generate (text and image), submit --from with 3 edits, ls %s, "
              "--output json on 6 commands" % key_result(res))
    finally:
        d.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


def ssld_bytes(exe, env, *args):
    """stdout of an ssld command as bytes (a download to -o -); exit 0 required."""
    p = subprocess.run([exe] + list(args), capture_output=True, env=env, timeout=60, stdin=subprocess.DEVNULL)
    check(p.returncode == 0, "ssld %s: exit %d %s" % (" ".join(args), p.returncode, p.stderr[-500:]))
    return p.stdout


if __name__ == "__main__":
    run(main)
