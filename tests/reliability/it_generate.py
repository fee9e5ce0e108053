"""it_generate.py SSLD - generation is bounded, runs off the HTTP threads, and a stop ends it.

Two small autoregressive_lm jobs (A, B) train on a generated text under the test's data root,
then three daemon runs on the same state directory:

1. --generate-max-tokens 8: a 5-token request is answered whole ("truncated": false), a 20-token
   request is cut to 8 tokens ("truncated_by": "max_tokens"); a VAE's and a GAN's image grids
   (when Fashion-MNIST is installed) are still recorded as artifacts and served.
2. SSLD_FAULT=generate_step@1+ (every token 50 ms slower: a 4,096-token request would take over
   200 s) and --generate-max-seconds 2: the request ends early, "truncated_by": "max_seconds".
3. The same slow tokens, no time cap, --generate-queue 1 and --stop-timeout 30: while one long
   generation runs (ssld_generate_running 1 in /metrics) /v1/health, GET /v1/jobs and another
   job's GET answer; a second request waits (ssld_generate_waiting 1), a third is refused at once
   (503 busy). SIGTERM then ends both generations (503 shutting_down) and the daemon exits 0
   within the stop timeout - it used to wait for the generation to finish.
"""
import json
import os
import signal
import sys
import tempfile
import threading
import shutil

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "service"))
from ssld_harness import FASHION, Daemon, Failure, check, lm_job, run, wait_for, write_corpus  # noqa: E402

SLOW = "generate_step@1+"


def generate(d, jid, body, timeout=30):
    status, hdrs, data = d.raw("POST", "/v1/jobs/%d/generate" % jid, body, timeout=timeout)
    try:
        return status, json.loads(data)
    except ValueError:
        raise Failure("generate on job %d -> %d: not JSON: %r" % (jid, status, data[:200]))


class Background(threading.Thread):
    """One generate request on its own thread; result: (status, body) or the exception."""

    def __init__(self, d, jid, body):
        super().__init__(daemon=True)
        self.d, self.jid, self.body, self.result = d, jid, body, None

    def run(self):
        try:
            self.result = generate(self.d, self.jid, self.body, timeout=300)
        except Exception as e:   # noqa: BLE001 - checked by the main thread
            self.result = e


def main(exe):
    root = tempfile.mkdtemp(prefix="ssld-gen-root-")
    d = Daemon(exe)
    roots = ["--data-root", root]
    have_fashion = os.path.exists(os.path.join(FASHION, "train-images-idx3-ubyte.gz"))
    if have_fashion:
        roots += ["--data-root", os.path.dirname(FASHION)]
    try:
        corpus = write_corpus(os.path.join(root, "corpus.txt"))

        # ---- 1: the token cap, answers as before -------------------------------------------------
        d.start("--workers", "1", "--generate-max-tokens", "8", *roots)
        ids = []
        for name in ("gen-a", "gen-b"):
            s, j = d.post("/v1/jobs", lm_job(name, corpus))
            check(s == 201, "submit %s -> %d %s" % (name, s, j))
            ids.append(j["id"])
        vae = None
        if have_fashion:
            s, j = d.post("/v1/jobs", {"name": "gen-vae", "method": "vae",
                                       "dataset": {"name": "fashion-mnist", "limit_train": 512, "limit_test": 256},
                                       "model": {"encoder": "mlp", "hidden": [64], "out_dim": 8},
                                       "pretrain": {"epochs": 1, "batch_size": 64}, "seed": 1, "threads": 1})
            check(s == 201, "submit the VAE -> %d %s" % (s, j))
            vae = j["id"]
            s, j = d.post("/v1/jobs", {"name": "gen-gan", "method": "gan", "params": {"latent_dim": 8},
                                       "dataset": {"name": "fashion-mnist", "limit_train": 256, "limit_test": 64},
                                       "model": {"encoder": "cnn", "channels": [8, 16], "batchnorm": False},
                                       "pretrain": {"max_steps": 4, "batch_size": 32}, "seed": 1, "threads": 1})
            check(s == 201, "submit the GAN -> %d %s" % (s, j))
            gan = j["id"]
        for jid in ids + ([vae, gan] if vae else []):
            j = d.wait_state(jid, ("succeeded", "failed", "cancelled"), timeout=240)
            check(j["state"] == "succeeded", "job %d: %s (%s)" % (jid, j["state"], j["error"]))
        a, b = ids

        s, g = generate(d, a, {"prompt": "the ", "max_tokens": 5, "seed": 2})
        check(s == 200, "generate 5 tokens -> %d %s" % (s, g))
        check(g["tokens"] == 5 and g["truncated"] is False and "truncated_by" not in g, "5 tokens under the cap: %s" % g)
        s, g = generate(d, a, {"prompt": "the ", "max_tokens": 20, "seed": 2})
        check(s == 200, "generate 20 tokens -> %d %s" % (s, g))
        check(g["tokens"] == 8 and g["truncated"] is True and g["truncated_by"] == "max_tokens",
              "20 tokens over a cap of 8: %s" % g)
        if vae:
            s, g = generate(d, vae, {"n": 4, "seed": 7}, timeout=120)
            check(s == 200 and g.get("url") == "/v1/jobs/%d/artifacts/samples-generated-0.png" % vae, "VAE samples -> %d %s" % (s, g))
            st, hdrs, png = d.raw("GET", g["url"])
            check(st == 200 and png[:8] == b"\x89PNG\r\n\x1a\n", "GET %s -> %d" % (g["url"], st))
            s, g = generate(d, gan, {"n": 4, "seed": 7}, timeout=120)
            check(s == 200 and g.get("url") == "/v1/jobs/%d/artifacts/samples-generated-0.png" % gan, "GAN samples -> %d %s" % (s, g))
            st, hdrs, png = d.raw("GET", g["url"])
            check(st == 200 and png[:8] == b"\x89PNG\r\n\x1a\n", "GET %s -> %d" % (g["url"], st))
        check(d.stop() == 0, "run 1 did not stop cleanly:\n%s" % d.log())

        # ---- 2: the time cap ---------------------------------------------------------------------
        env = dict(os.environ, SSLD_FAULT=SLOW)
        d.start("--workers", "0", "--generate-max-seconds", "2", *roots, env=env)
        s, g = generate(d, a, {"prompt": "the ", "max_tokens": 4096}, timeout=120)
        check(s == 200, "generate under a time cap -> %d %s" % (s, g))
        check(g["truncated"] is True and g["truncated_by"] == "max_seconds" and g["tokens"] < 4096,
              "4,096 slow tokens under a 2 s cap: %s" % {k: g[k] for k in g if k != "text"})
        check(d.stop() == 0, "run 2 did not stop cleanly:\n%s" % d.log())

        # ---- 3: off the HTTP threads, bounded, and ended by SIGTERM -------------------------------
        d.start("--workers", "0", "--generate-max-seconds", "0", "--generate-queue", "1", "--stop-timeout", "30",
                *roots, env=env)
        first = Background(d, a, {"prompt": "the ", "max_tokens": 4096})
        first.start()
        wait_for(lambda: d.metric("ssld_generate_running") == 1, "the first generation running")
        for _ in range(5):
            s, h = d.get("/v1/health")
            check(s == 200 and h["status"] == "ok", "GET /v1/health during a generation -> %d %s" % (s, h))
            s, j = d.get("/v1/jobs/%d" % b)
            check(s == 200 and j["state"] == "succeeded", "GET /v1/jobs/%d during a generation -> %d" % (b, s))
            s, js = d.get("/v1/jobs")
            check(s == 200 and len(js["jobs"]) >= 2, "GET /v1/jobs during a generation -> %d" % s)
        second = Background(d, b, {"prompt": "a ", "max_tokens": 4096})
        second.start()
        wait_for(lambda: d.metric("ssld_generate_waiting") == 1, "the second generation waiting")
        s, g = generate(d, a, {"max_tokens": 10})
        check(s == 503 and g["error"]["code"] == "busy" and "generate-queue" in g["error"]["message"],
              "a third generation with one running and one waiting -> %d %s" % (s, g))
        check(first.result is None and second.result is None, "a generation ended early: %s / %s"
              % (first.result, second.result))
        s, h = d.get("/v1/health")
        check(s == 200, "GET /v1/health with the queue full -> %d" % s)

        rc = d.stop(signal.SIGTERM, timeout=30)
        check(rc == 0, "SIGTERM during a generation: exit %s, expected 0\n%s" % (rc, d.log()))
        for name, t in (("first", first), ("second", second)):
            t.join(30)
            check(isinstance(t.result, tuple), "the %s generation: %r" % (name, t.result))
            s, g = t.result
            check(s == 503 and g["error"]["code"] == "shutting_down",
                  "the %s generation at SIGTERM -> %d %s" % (name, s, g))
    finally:
        d.cleanup()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    run(main)
