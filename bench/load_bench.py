#!/usr/bin/env python3
"""load_bench.py [--ssld PATH] [--seconds 60] - the API under heavy polling while a job trains.

A real ssld (one worker training a SimCLR MLP on a 4,096-image IDX slice of Fashion-MNIST), 50
concurrent keep-alive clients on the read endpoints a dashboard polls (job list, one job, its
metrics, its events, health, Prometheus text, the static page) for 60 s, plus 5 clients submitting
jobs. The readers are wrk (2 threads, 50 connections, a Lua script rotating the paths and counting
5xx) when it is installed, else Python threads (tests/reliability/load_core.py, whose latencies
include client-side delay). Prints requests, statuses, p50/p99 and, last, one JSON line.
The short version of the same run is the test tests/reliability/it_load.py.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "service"))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "reliability"))
from ssld_harness import Daemon  # noqa: E402
from rel_common import idx_job, small_dataset  # noqa: E402
from load_core import report, run_load  # noqa: E402

LUA = r'''
local paths = {"/v1/jobs?limit=50", "/v1/jobs/JOB", "/v1/jobs/JOB/metrics?after=0&max_points=2000",
               "/v1/jobs/JOB/metrics?keys=loss&max_points=500", "/v1/jobs/JOB/events?limit=100",
               "/v1/health", "/metrics", "/"}
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) i = math.random(#paths); fivexx = 0; other = 0 end
function request() i = i % #paths + 1; return wrk.format("GET", paths[i]) end
function response(status, headers, body)
  if status >= 500 then fivexx = fivexx + 1 elseif status ~= 200 then other = other + 1 end
end
function done(summary, latency, requests)
  local f, o = 0, 0
  for _, t in ipairs(threads) do f = f + t:get("fivexx"); o = o + t:get("other") end
  io.write(string.format("RESULT requests=%d errors_connect=%d errors_read=%d errors_timeout=%d fivexx=%d other=%d p50_us=%d p90_us=%d p99_us=%d max_us=%d\n",
    summary.requests, summary.errors.connect, summary.errors.read, summary.errors.timeout, f, o,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
'''


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ssld", default=os.path.join(HERE, "..", "build", "daemon", "ssld"))
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--python-readers", action="store_true", help="use Python threads even if wrk is installed")
    a = ap.parse_args()
    d = Daemon(a.ssld)
    try:
        data = os.path.join(d.state_dir, "data")
        os.mkdir(data)
        files = small_dataset(data)
        d.start("--workers", "1", "--data-root", data)
        s, sub = d.post("/v1/jobs", idx_job("bench-train", files, pretrain={"epochs": 1000, "batch_size": 64,
                                                                            "time_budget_s": a.seconds + 600}))
        jid = sub["id"]
        d.wait_state(jid, ("running",), timeout=60)
        time.sleep(3)
        step0 = d.job(jid)["progress"]["step"]
        small = idx_job("bench-submit", files, hidden=(32,), pretrain={"epochs": 1, "batch_size": 64})
        wrk = shutil.which("wrk") if not a.python_readers else None
        figures = {"seconds": a.seconds, "readers": 50, "submitters": 5}
        if wrk:
            lua = os.path.join(d.state_dir, "rotate.lua")
            with open(lua, "w") as f:
                f.write(LUA.replace("JOB", str(jid)))
            out = {}
            subs = threading.Thread(target=lambda: out.update(run_load(d, jid, a.seconds, small, readers=0, submitters=5)))
            subs.start()
            r = subprocess.run([wrk, "-t2", "-c50", "-d%ds" % int(a.seconds), "--timeout", "10s", "-s", lua,
                                "http://127.0.0.1:%d" % d.port], capture_output=True, text=True)
            subs.join()
            print(r.stdout)
            m = dict(re.findall(r"(\w+)=(\d+)", r.stdout.split("RESULT", 1)[1]))
            m = {k: int(v) for k, v in m.items()}
            sub_5xx = len(out["fivexx"])
            figures.update(readers_tool="wrk", read_requests=m["requests"], read_rps=round(m["requests"] / a.seconds),
                           read_p50_ms=m["p50_us"] / 1e3, read_p90_ms=m["p90_us"] / 1e3, read_p99_ms=m["p99_us"] / 1e3,
                           read_max_ms=m["max_us"] / 1e3, read_5xx=m["fivexx"], read_other_non200=m["other"],
                           read_socket_errors=m["errors_connect"] + m["errors_read"] + m["errors_timeout"],
                           submits=out["requests"], submit_201=out["by_status"].get(201, 0), submit_5xx=sub_5xx,
                           submit_p50_ms=round(out["submit_p50_ms"], 2), submit_p99_ms=round(out["submit_p99_ms"], 2),
                           submit_errors=len(out["errors"]))
            print("reads (wrk, 50 connections): %d requests (%d/s), p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, max %.1f ms; "
                  "5xx %d, other non-200 %d, socket errors %d" % (m["requests"], m["requests"] / a.seconds, m["p50_us"] / 1e3,
                                                                m["p90_us"] / 1e3, m["p99_us"] / 1e3, m["max_us"] / 1e3,
                                                                m["fivexx"], m["other"], figures["read_socket_errors"]))
            print("submits (5 Python clients): %d requests, %d created, p50 %.2f ms, p99 %.2f ms, 5xx %d, errors %d"
                  % (out["requests"], figures["submit_201"], out["submit_p50_ms"], out["submit_p99_ms"], sub_5xx,
                     len(out["errors"])))
        else:
            st = run_load(d, jid, a.seconds, small)
            print(report(st))
            figures.update(readers_tool="python", read_requests=st["reads"], read_p50_ms=round(st["read_p50_ms"], 2),
                           read_p99_ms=round(st["read_p99_ms"], 2), fivexx=len(st["fivexx"]), errors=len(st["errors"]),
                           submits=len(st["submitted"]))
        j = d.job(jid)
        figures["training_steps_during_load"] = j["progress"]["step"] - step0
        figures["training_state"] = j["state"]
        print("training job: %s, %d steps during the load" % (j["state"], figures["training_steps_during_load"]))
        d.post("/v1/jobs/%d/cancel" % jid)
        d.stop()
    finally:
        d.cleanup()
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
