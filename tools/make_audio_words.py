#!/usr/bin/env python3
"""make_audio_words.py - a labelled corpus of spoken words for the audio_folder format, synthesised
with espeak-ng (Debian has no labelled speech corpus; this is synthetic speech, not recordings).

Every word is spoken by every voice: an English accent of espeak-ng (en-us, en-gb, ...) combined
with one of its voice variants (Alex, f1, klatt, whisper, ...), at a speed and a pitch drawn per
clip from a few values (seeded, so the corpus is the same on every run). Files are 16-bit WAV at
espeak-ng's 22,050 Hz in class folders:

    OUT/train/<word>/<accent>+<variant>.wav
    OUT/test/<word>/<accent>+<variant>.wav

The split is by voice variant: every --test-every-th variant (in name order) and all its accents
go to test only, so an evaluation on OUT/test is on voices the model never heard in training.

    python3 tools/make_audio_words.py OUT [--words 30] [--accents en-us,en-gb] [--jobs 2]

Writes OUT/corpus.json (words, voices, the split, espeak-ng's version). Files already present are
kept, so an interrupted run continues where it stopped.
"""
import argparse, concurrent.futures, hashlib, json, os, subprocess, sys

WORDS = ("zero one two three four five six seven eight nine yes no up down left right on off "
         "stop go cat dog bird house tree water fire music happy sun").split()
ACCENTS = ["en-us", "en-gb", "en-gb-scotland", "en-029"]
SPEEDS = [130, 160, 190, 220]          # words per minute (espeak-ng's default is 175)
PITCHES = [25, 40, 55, 70, 85]         # 0..99 (default 50)


def variants():
    out = subprocess.run(["espeak-ng", "--voices=variant"], check=True, capture_output=True,
                         text=True).stdout.splitlines()[1:]
    # columns: Pty Language Age/Gender VoiceName File ...; the file is "!v/<name>"
    names = sorted({line.split()[4].split("/", 1)[1] for line in out if len(line.split()) >= 5})
    return names


def draw(key, choices):
    h = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "little")
    return choices[h % len(choices)]


def speak(path, accent, variant, word):
    if os.path.exists(path) and os.path.getsize(path) > 44:
        return 0
    key = f"{accent}+{variant}/{word}"
    tmp = path + ".tmp"
    r = subprocess.run(["espeak-ng", "-v", f"{accent}+{variant}", "-s", str(draw(key + "s", SPEEDS)),
                        "-p", str(draw(key + "p", PITCHES)), "-w", tmp, word],
                       capture_output=True, text=True)
    if r.returncode != 0 or not os.path.exists(tmp):
        print(f"espeak-ng failed for {key}: {r.stderr.strip()}", file=sys.stderr)
        return 1
    os.replace(tmp, path)
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out")
    ap.add_argument("--words", type=int, default=len(WORDS), help="how many of the built-in words")
    ap.add_argument("--accents", default=",".join(ACCENTS))
    ap.add_argument("--variants", type=int, default=0, help="use the first N variants (0: all)")
    ap.add_argument("--test-every", type=int, default=5, help="every N-th variant is test only")
    ap.add_argument("--jobs", type=int, default=2)
    a = ap.parse_args()
    words = WORDS[:a.words]
    accents = [x for x in a.accents.split(",") if x]
    vs = variants()
    if a.variants:
        vs = vs[:a.variants]
    test_vs = vs[a.test_every - 1::a.test_every]
    tasks = []
    for i, v in enumerate(vs):
        split = "test" if v in test_vs else "train"
        for w in words:
            os.makedirs(os.path.join(a.out, split, w), exist_ok=True)
            for acc in accents:
                tasks.append((os.path.join(a.out, split, w, f"{acc}+{v}.wav"), acc, v, w))
    print(f"{len(words)} words x {len(vs)} variants x {len(accents)} accents = {len(tasks)} clips "
          f"({len(test_vs)} variants held out for test)", file=sys.stderr)
    with concurrent.futures.ThreadPoolExecutor(a.jobs) as ex:
        failed = sum(ex.map(lambda t: speak(*t), tasks))
    version = subprocess.run(["espeak-ng", "--version"], capture_output=True, text=True).stdout.strip()
    with open(os.path.join(a.out, "corpus.json"), "w") as f:
        json.dump({"synthetic": "espeak-ng", "espeak_ng": version, "words": words,
                   "accents": accents, "train_variants": [v for v in vs if v not in test_vs],
                   "test_variants": test_vs, "speeds_wpm": SPEEDS, "pitches": PITCHES,
                   "failed": failed}, f, indent=1)
    print(f"wrote {len(tasks) - failed} clips under {a.out} ({failed} failed)", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
