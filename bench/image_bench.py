#!/usr/bin/env python3
"""image_bench.py - decode + resize to 64 px: ssld's decoders (bench/image_bench.c) vs PIL.

Both decode the same files to RGB (alpha composited on white), resize the shorter side to SIZE with
an antialiasing bilinear filter and take the centre SIZE x SIZE, on one thread pinned to CPU 0,
timed in CPU seconds of the process, so the figures are images/s per core (and a busy machine
changes them less than it changes wall time). JPEGs may be shrunk in the DCT first on both sides (PIL: Image.draft; ssld:
libjpeg-turbo scaling). Three timed rounds each, alternating, after an untimed warm-up (page cache):
median and spread (min..max). Default files: Debian openclipart-png (/usr/share/openclipart/png), the first
--limit PNGs in path order.

  bench/run image --limit 2000 --size 64
"""
import argparse, json, os, platform, statistics, subprocess, sys, tempfile, time


def cpu_name():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def pil_round(paths, size):
    from PIL import Image, ImageOps
    t0 = time.process_time()
    ok = 0
    for p in paths:
        try:
            im = Image.open(p)
            if im.format == "JPEG":
                im.draft("RGB", (size, size))
            im = ImageOps.exif_transpose(im)
            if im.mode in ("RGBA", "LA", "P", "PA") or "transparency" in im.info:
                im = im.convert("RGBA")
                bg = Image.new("RGBA", im.size, (255, 255, 255, 255))
                im = Image.alpha_composite(bg, im)
            im = im.convert("RGB")
            im = ImageOps.fit(im, (size, size), Image.BILINEAR)
            im.tobytes()
            ok += 1
        except Exception:
            pass
    return ok, time.process_time() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--exe", required=True)
    ap.add_argument("--dir", default="/usr/share/openclipart/png")
    ap.add_argument("--limit", type=int, default=2000)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    if not os.path.isdir(a.dir):
        print("image_bench: %s not found (apt-get install openclipart-png, or --dir)" % a.dir, file=sys.stderr)
        return 77
    paths = []
    for root, dirs, files in os.walk(a.dir):
        dirs.sort()
        for f in sorted(files):
            if f.lower().endswith((".png", ".jpg", ".jpeg")):
                paths.append(os.path.join(root, f))
    paths = paths[: a.limit]
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as lf:
        lf.write("\n".join(paths) + "\n")
    try:
        os.sched_setaffinity(0, {0})
    except (AttributeError, OSError):
        pass
    # Rounds alternate between the two so a change in machine load hits both alike.
    ssld, pil = [], []
    pil_round(paths, a.size)   # warm-up (the C side warms up inside each run)
    try:
        for _ in range(a.rounds):
            out = subprocess.run(["taskset", "-c", "0", a.exe, lf.name, str(a.size), "1"],
                                 check=True, capture_output=True, text=True).stdout
            for line in out.splitlines():
                if line.startswith("round"):
                    parts = line.split()
                    ssld.append(int(parts[2]) / float(parts[5]))
            ok, t = pil_round(paths, a.size)
            pil.append(ok / t)
    finally:
        os.unlink(lf.name)
    nbytes = sum(os.path.getsize(p) for p in paths)
    med_s, med_p = statistics.median(ssld), statistics.median(pil)
    print("decode + resize to %d px, RGB, 1 thread, %d files (%.1f MB) from %s" %
          (a.size, len(paths), nbytes / 1e6, a.dir))
    print("CPU: %s" % cpu_name())
    print("%-6s %14s %20s" % ("", "images/CPU-s", "spread (min..max)"))
    print("%-6s %14.0f %12.0f..%-7.0f" % ("ssld", med_s, min(ssld), max(ssld)))
    print("%-6s %14.0f %12.0f..%-7.0f" % ("PIL", med_p, min(pil), max(pil)))
    print("ratio ssld/PIL: %.2fx" % (med_s / med_p))
    print(json.dumps({"bench": "image", "size": a.size, "files": len(paths), "cpu": cpu_name(),
                      "ssld_images_per_s": round(med_s, 1), "ssld_spread": [round(min(ssld), 1), round(max(ssld), 1)],
                      "pil_images_per_s": round(med_p, 1), "pil_spread": [round(min(pil), 1), round(max(pil), 1)],
                      "ratio": round(med_s / med_p, 3)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
