#!/usr/bin/python3
"""make_captions.py - a SYNTHETIC image-caption set for Fashion-MNIST, for the `clip` method.

Fashion-MNIST has no captions. This script writes one caption per training image, built from the
image's class label only: a caption template, a synonym of the class name and, for most
templates, an attribute word, each drawn at random (seeded). The captions carry no information
beyond the label - "a striped tee", "catalog shot of a slim pair of trousers" - so a CLIP model
trained on them learns to align images with class words; the attribute words are noise it must
learn to ignore. They are not real descriptions of the pictures, and results obtained with them
say nothing about captions written by people.

Output: JSON lines, one per training image, in file order (the format engine/data/captions.c reads
with "dataset": {"format": "captions", "file": PATH}):

    {"image": 0, "caption": "a strappy sandal on a plain background"}

Held-out prompts: the zero-shot evaluation in engine/methods/clip.c classifies the test images
with CLIP-style prompt templates ("a photo of a {class}.", "a blurry photo of a {class}.", ...).
No training template here contains the word "photo", so every one of those templates - and the
word itself - is unseen in training (clip.c checks this against the loaded captions and reports
zero_shot_held_out_templates).

Where the file goes (convention): <state dir>/datasets/fashion-mnist-captions.jsonl. The daemon
accepts datasets under STATE_DIR/datasets by default (see `ssld --help`, --data-root), so with a
systemd install that is /var/lib/ssld/datasets/fashion-mnist-captions.jsonl; for `ssld run` (no
data roots) any path works. The default --out is ./state/datasets/fashion-mnist-captions.jsonl,
matching `ssld`'s default state dir ./state.

    tools/make_captions.py                                   # all 60000 training images
    tools/make_captions.py --out /var/lib/ssld/datasets/fashion-mnist-captions.jsonl
    tools/make_captions.py --limit 8192 --out /tmp/caps.jsonl   # the first 8192 images only

Deterministic: the same --seed gives the same file on every machine. Standard library only.
"""

import argparse
import gzip
import json
import os
import random
import struct
import sys

FMNIST_DIR = "/usr/share/datasets/fashion-mnist"

# Per class (Fashion-MNIST label order): synonyms (the first is the dataset's own class name,
# lowercased) and attribute words that make sense for it.
CLASSES = [
    (["t-shirt/top", "t-shirt", "tee", "top", "tee shirt", "short-sleeved top"],
     ["plain", "striped", "printed", "cotton", "graphic", "loose", "fitted", "basic"]),
    (["trouser", "trousers", "pants", "slacks", "pair of trousers", "jeans"],
     ["long", "slim", "wide-leg", "denim", "straight", "tailored", "casual", "dark"]),
    (["pullover", "sweater", "jumper", "knit pullover", "sweatshirt"],
     ["warm", "knitted", "wool", "long-sleeved", "cosy", "thick", "ribbed", "chunky"]),
    (["dress", "gown", "frock", "sundress"],
     ["long", "short", "summer", "evening", "sleeveless", "flowing", "elegant", "fitted"]),
    (["coat", "jacket", "overcoat", "parka", "winter coat"],
     ["warm", "heavy", "padded", "long", "zip-up", "hooded", "buttoned", "thick"]),
    (["sandal", "sandals", "flip-flop", "strappy sandal", "slide"],
     ["open", "summer", "flat", "strappy", "light", "beach", "leather", "low"]),
    (["shirt", "button-up shirt", "blouse", "collared shirt", "button-down"],
     ["formal", "collared", "long-sleeved", "checked", "buttoned", "office", "crisp", "casual"]),
    (["sneaker", "sneakers", "trainer", "running shoe", "athletic shoe"],
     ["sporty", "low-top", "lace-up", "white", "canvas", "comfortable", "running", "casual"]),
    (["bag", "handbag", "purse", "tote", "shoulder bag", "satchel"],
     ["leather", "large", "small", "structured", "zipped", "everyday", "square", "shoulder"]),
    (["ankle boot", "boot", "bootie", "short boot", "chelsea boot"],
     ["leather", "heeled", "sturdy", "winter", "zip-up", "suede", "lace-up", "chunky"]),
]

# Training templates. {a} is the article for what follows ("a"/"an"), {attr} an attribute word,
# {syn} a synonym. None contains "photo" (the held-out zero-shot prompts all do).
TEMPLATES = [
    "{a} {attr} {syn}",
    "{attr} {syn}",
    "{syn}",
    "{syn}, {attr}",
    "this is {a} {syn}",
    "this is {a} {attr} {syn}",
    "picture of {a} {attr} {syn}",
    "product image: {attr} {syn}",
    "catalog shot of {a} {attr} {syn}",
    "grayscale image showing {a} {syn}",
    "{a} {syn} on a plain background",
    "someone is selling {a} {attr} {syn}",
    "{syn}: {attr} style",
    "small thumbnail of {a} {syn}",
    "online shop listing: {attr} {syn}",
    "fashion item: {syn}",
]


def article(word):
    return "an" if word[:1] in "aeiou" else "a"


def caption(rng, label):
    synonyms, attrs = CLASSES[label]
    template = rng.choice(TEMPLATES)
    syn = rng.choice(synonyms)
    attr = rng.choice(attrs)
    # the article agrees with the word right after it
    following = attr if template.find("{a} {attr}") >= 0 else syn
    return template.format(a=article(following), attr=attr, syn=syn)


def read_labels(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    if len(data) < 8:
        raise ValueError("%s: truncated header" % path)
    magic, n = struct.unpack(">II", data[:8])
    if magic != 0x00000801:
        raise ValueError("%s: bad magic 0x%08x, expected 0x00000801" % (path, magic))
    if len(data) != 8 + n:
        raise ValueError("%s: expected %d bytes, got %d" % (path, 8 + n, len(data)))
    labels = list(data[8:])
    if any(v >= len(CLASSES) for v in labels):
        raise ValueError("%s: a label is out of range 0..9" % path)
    return labels


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--fmnist-dir", default=FMNIST_DIR,
                    help="directory with train-labels-idx1-ubyte.gz (default %(default)s)")
    ap.add_argument("--out", default="state/datasets/fashion-mnist-captions.jsonl",
                    help="output JSON lines file (default %(default)s)")
    ap.add_argument("--seed", type=int, default=1, help="random seed (default %(default)s)")
    ap.add_argument("--limit", type=int, default=0,
                    help="caption only the first N training images (default: all)")
    args = ap.parse_args()

    labels = read_labels(os.path.join(args.fmnist_dir, "train-labels-idx1-ubyte.gz"))
    if args.limit > 0:
        labels = labels[:args.limit]
    rng = random.Random(args.seed)
    out_dir = os.path.dirname(args.out)
    if out_dir:
        os.makedirs(out_dir, exist_ok=True)
    tmp = args.out + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        for i, y in enumerate(labels):
            f.write(json.dumps({"image": i, "caption": caption(rng, y)}) + "\n")
    os.replace(tmp, args.out)
    print("%s: %d synthetic captions (%d templates, seed %d)" % (args.out, len(labels),
                                                                 len(TEMPLATES), args.seed),
          file=sys.stderr)


if __name__ == "__main__":
    main()
