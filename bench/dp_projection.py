#!/usr/bin/env python3
"""dp_projection.py - what data parallelism over N nodes would make of each model of bench/compare:
communication against computation per step, from measured step times and parameter counts.

    bench/dp_projection.py [--latency-us 25] [--overlap 0] [--json]

A model's step at the global batch takes T seconds on one node (the 2-core box of BENCHMARKS.md);
over N nodes each computes its shard in T/N (strong scaling: the batch is global) and then the
gradients, 4 bytes per parameter, are summed by a ring allreduce:
    t_comm = 2 (N-1)/N * 4 P / bandwidth + 2 (N-1) * latency
With --overlap f (0..1) that share of t_comm hides behind the backward pass. Speed-up over one
node = T / (T/N + (1-f) t_comm); parallel efficiency = speed-up / N. "Stops paying" is the node
count beyond which adding nodes makes a step slower (the speed-up falls), or, where it never
falls in range, where efficiency drops below 50 %. Nothing is measured here: the inputs are the
table below (docs/distributed.md says where each figure comes from).
"""
import argparse
import json

# model: (parameters, samples per step, unit, samples/s of one 2-thread step)
# Step throughputs: BENCHMARKS.md "ssld vs PyTorch" (AMD EPYC, 2 threads, wall) and, for the
# ResNet, its Xeon SkylakeX CPU-time figure; parameters: compare_ssld's "params".
MODELS = {
    "simclr_mlp": (2019840, 256, "img", 3927),
    "simclr_cnn": (225120, 256, "img", 567),
    "char_transformer": (842496, 4096, "tok", 8869),
    "mae_vit": (914384, 256, "img", 444),
    "vae_mlp": (1109936, 256, "img", 10535),
    "resnet18_w05": (2797376, 256, "img", 149),
}
NODES = [1, 2, 4, 8, 16, 32, 64]
LINKS_GBPS = [10, 25, 100]


def project(params, step_s, n, gbps, latency_s, overlap):
    if n == 1:
        return step_s, 0.0
    comm = 2 * (n - 1) / n * 4 * params / (gbps * 1e9 / 8) + 2 * (n - 1) * latency_s
    return step_s / n + (1 - overlap) * comm, comm


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--latency-us", type=float, default=25.0, help="per-hop latency (default 25 us, TCP)")
    ap.add_argument("--overlap", type=float, default=0.0, help="share of communication hidden (0..1)")
    ap.add_argument("--json", action="store_true", help="only the JSON line")
    a = ap.parse_args()
    out = {"latency_us": a.latency_us, "overlap": a.overlap, "models": {}}
    for name, (params, per_step, unit, rate) in MODELS.items():
        step = per_step / rate
        m = out["models"][name] = {"params": params, "step_ms": round(step * 1e3, 1), "links": {}}
        if not a.json:
            print("\n%s: %.2f M parameters (%.1f MB of gradients), %.0f ms per step of %d %s on one node"
                  % (name, params / 1e6, params * 4 / 1e6, step * 1e3, per_step, unit))
            print("  %8s" % "Gb/s" + "".join("%16s" % ("N=%d" % n) for n in NODES[1:]) + "   stops paying")
        for g in LINKS_GBPS:
            row, best_n, best_speed, last = [], 1, 1.0, None
            for n in NODES[1:]:
                t, comm = project(params, step, n, g, a.latency_us * 1e-6, a.overlap)
                speed = step / t
                row.append({"nodes": n, "speedup": round(speed, 2), "efficiency": round(speed / n, 3),
                            "comm_ms": round(comm * 1e3, 2), "compute_ms": round(step / n * 1e3, 2)})
                if speed > best_speed:
                    best_n, best_speed = n, speed
                if last is None and speed / n < 0.5:
                    last = n
            stop = ("beyond %d nodes (%.1fx)" % (best_n, best_speed) if best_n < NODES[-1]
                    else ("efficiency < 50 %% from %d" % last if last else "not within 64"))
            m["links"][str(g)] = {"per_nodes": row, "stops_paying": stop}
            if not a.json:
                print("  %8d" % g + "".join("%16s" % ("%.1fx %3.0f%%" % (r["speedup"], 100 * r["efficiency"]))
                                           for r in row) + "   " + stop)
    if not a.json:
        print("\ncells: speed-up over one node and parallel efficiency; latency %.0f us per hop, overlap %.0f %%"
              % (a.latency_us, 100 * a.overlap))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
