"""it_schema.py SSLD - the job spec's JSON Schema agrees with the server.

- `ssld schema` is a valid draft 2020-12 schema, and GET /v1/schema of a real daemon serves the
  same document;
- every file in examples/ validates against it, and `ssld check` and POST /v1/jobs?dry_run=1
  accept it;
- each of the bad specs below (unknown key, wrong type, out of range, bad enum, a key of another
  variant, of another method...) is rejected by the schema, by `ssld check` (exit 1, a line that
  starts with the field) and by the server (400 naming the same field, nothing queued); the good
  variants are accepted by all three.
- dry_run answers the resolved spec and an estimate; a spec with three errors gets three.
Skips (77) when python3-jsonschema or the Fashion-MNIST files are missing.
"""
import copy
import glob
import json
import os
import random
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "service"))
from ssld_harness import Daemon, check, run, skip_unless_dataset, ssld  # noqa: E402

try:
    import jsonschema
except ImportError:
    print("SKIP: python3-jsonschema is not installed")
    sys.exit(77)

EXAMPLES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples")
BASE = {"method": "simclr", "pretrain": {"epochs": 1, "batch_size": 64}}


def spec(**over):
    s = copy.deepcopy(BASE)
    s.update(over)
    return s


# (what, spec, the field the server names)
BAD = [
    ("unknown top-level key", spec(epochs=3), "epochs"),
    ("wrong type", spec(threads="2"), "threads"),
    ("a name with a slash", spec(name="a/b"), "name"),
    ("out of range", spec(pretrain={"batch_size": 1}), "pretrain.batch_size"),
    ("above a float's range", spec(pretrain={"optimizer": {"lr": 1e39}}), "pretrain.optimizer.lr"),
    ("bad enum", spec(pretrain={"optimizer": {"name": "adam"}}), "pretrain.optimizer.name"),
    ("key of another optimizer", spec(pretrain={"optimizer": {"name": "adamw", "momentum": 0.9}}),
     "pretrain.optimizer.momentum"),
    ("key of the default optimizer's rival", spec(pretrain={"optimizer": {"nesterov": True}}),
     "pretrain.optimizer.nesterov"),
    ("key of another encoder", spec(model={"encoder": "vit", "channels": [8]}), "model.channels"),
    ("patch not 4 or 7", spec(model={"encoder": "vit", "patch": 5}), "model.patch"),
    ("unknown method param", spec(params={"tau_base": 0.9}), "params.tau_base"),
    ("method param out of range", spec(params={"temperature": 0}), "params.temperature"),
    ("key of another protocol", spec(evaluations=[{"protocol": "knn", "epochs": 3}]), "evaluations[0].epochs"),
    ("unknown protocol", spec(evaluations=[{"protocol": "svm"}]), "evaluations[0].protocol"),
    ("label fraction 0", spec(evaluations=[{"protocol": "knn", "label_fractions": [0]}]),
     "evaluations[0].label_fractions[0]"),
    ("fractions and labels per class", spec(evaluations=[{"protocol": "knn", "label_fractions": [0.1],
                                                          "labels_per_class": 5}]),
     "evaluations[0].labels_per_class"),
    ("unknown transform", spec(augment={"blurr": {}}), "augment.blurr"),
    ("range of one number", spec(augment={"crop": {"scale": [0.5]}}), "augment.crop.scale"),
    ("name and format", spec(dataset={"name": "fashion-mnist", "format": "idx"}), "dataset.name"),
    ("key of another format", spec(dataset={"name": "fashion-mnist", "record_bytes": 64}), "dataset.record_bytes"),
    ("no method", {"pretrain": {"epochs": 1}}, "method"),
    ("augment2 for a one-view method", {"method": "rotation", "augment2": "light"}, "augment2"),
    ("an encoder the method does not work with", {"method": "mae", "model": {"encoder": "cnn"}}, "model.encoder"),
    ("a cnn key for a vit-only method", {"method": "mae", "model": {"channels": [8]}}, "model.channels"),
    ("pretrain without pretraining", {"method": "none", "pretrain": {},
                                      "evaluations": [{"protocol": "knn"}]}, "pretrain"),
]

GOOD = [
    spec(),
    spec(pretrain={"optimizer": {"name": "sgd", "momentum": 0.8, "nesterov": True}}),
    spec(pretrain={"optimizer": {"name": "lars", "trust_coef": 0.01}, "schedule": {"name": "constant"}}),
    spec(model={"encoder": "vit", "dim": 64, "heads": 4, "depth": 2, "patch": 7, "pool": "cls"}),
    spec(model={"encoder": "mlp", "hidden": [256], "out_dim": 64}),
    spec(model={"channels": [16, 32], "pool_grid": 7}),
    spec(evaluations=[{"protocol": "linear_probe", "label_fractions": [0.01, 0.1]},
                      {"protocol": "knn", "k": 5, "labels_per_class": 10}]),
    spec(augment={"preset": "simclr", "blur": {"p": 0}, "crop": {"scale": [0.3, 1]}}, augment2="light"),
    spec(dataset={"name": "fashion-mnist", "limit_train": 1000}),
    dict(spec(), **{"$schema": "http://127.0.0.1:8080/v1/schema"}),
    {"method": "none", "evaluations": [{"protocol": "supervised", "epochs": 2, "augment": False}]},
]


def objects(node, path=()):
    """Every (path, object) in a JSON tree."""
    if isinstance(node, dict):
        yield path, node
        for k, v in node.items():
            yield from objects(v, path + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from objects(v, path + (i,))


VALUES = [-1, 0, 1, 2, 0.5, 7, 1e9, 1e39, "x", "adamw", "cnn", True, False, None, [], {}, [0.5, 1], [1, 2, 3]]
KEYS = ["epochs", "foo", "momentum", "patch", "k", "p", "channels", "lr", "augment", "dir", "name", "format"]


def mutate(rng, spec):
    """One seeded change: a value replaced, a key added or a key removed."""
    s = copy.deepcopy(spec)
    objs = [o for _, o in objects(s)]
    o = rng.choice(objs)
    r = rng.random()
    if r < 0.6 and o:
        o[rng.choice(list(o))] = copy.deepcopy(rng.choice(VALUES))
    elif r < 0.85:
        o[rng.choice(KEYS)] = copy.deepcopy(rng.choice(VALUES))
    elif o:
        del o[rng.choice(list(o))]
    return s


def schema_errors(validator, obj):
    return [e.message for e in validator.iter_errors(obj)]


def ssld_check(exe, obj, tmp):
    path = os.path.join(tmp, "job.json")
    with open(path, "w") as f:
        json.dump(obj, f)
    return ssld(exe, "check", path)


def audio_words(root):
    """The layout the audio examples read (tools/make_audio_words.py writes the real corpus):
    root/audio-words/{train,test}/<word>/*.wav, two words, tiny tones written with `wave`."""
    import math, struct, tempfile, wave
    for split in ("train", "test"):
        for k, word in enumerate(("yes", "no")):
            d = os.path.join(root, "audio-words", split, word)
            os.makedirs(d, exist_ok=True)
            for i in range(2):
                with wave.open(os.path.join(d, "%d.wav" % i), "wb") as w:
                    w.setnchannels(1)
                    w.setsampwidth(2)
                    w.setframerate(16000)
                    w.writeframes(b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * (300 + 500 * k + 20 * i) * t / 16000)))
                                           for t in range(4000)))


def main(exe):
    skip_unless_dataset()
    p = ssld(exe, "schema", check_rc=0)
    schema = json.loads(p.stdout)
    jsonschema.Draft202012Validator.check_schema(schema)
    v = jsonschema.Draft202012Validator(schema)

    # The examples' data: the default roots plus the clip art the image examples read.
    import tempfile
    words = tempfile.mkdtemp(prefix="ssld-it-words-")
    audio_words(words)
    os.chdir(words)   # `ssld check` reads the audio examples' relative paths from here
    roots = [words] + [r for r in ("/usr/share/datasets", "/usr/share/games/fortunes", "/usr/share/openclipart")
                       if os.path.isdir(r)]
    d = Daemon(exe).start("--workers", "0", *[a for r in roots for a in ("--data-root", r)])
    try:
        st, hdrs, body = d.raw("GET", "/v1/schema")
        check(st == 200 and hdrs.get("content-type", "").startswith("application/schema+json"),
              "GET /v1/schema -> %d %s" % (st, hdrs.get("content-type")))
        check(json.loads(body) == schema, "GET /v1/schema differs from `ssld schema`")

        examples = sorted(glob.glob(os.path.join(EXAMPLES, "*.json")))
        check(len(examples) >= 10, "only %d examples" % len(examples))
        for path in examples:
            with open(path) as f:
                obj = json.load(f)
            errs = schema_errors(v, obj)
            check(not errs, "%s does not validate against the schema: %s" % (os.path.basename(path), errs[:3]))
            c = ssld(exe, "check", path)
            check(c.returncode == 0 and "estimate:" in c.stdout,
                  "ssld check %s: exit %d\n%s%s" % (os.path.basename(path), c.returncode, c.stdout[-800:], c.stderr))
            st, ans = d.post("/v1/jobs?dry_run=1", obj)
            check(st == 200 and ans["spec"]["method"] == obj["method"] and ans["estimate"]["params"] > 0,
                  "dry_run %s -> %d %s" % (os.path.basename(path), st, str(ans)[:300]))

        for obj in GOOD:
            errs = schema_errors(v, obj)
            check(not errs, "good spec rejected by the schema: %s: %s" % (json.dumps(obj), errs[:3]))
            c = ssld_check(exe, obj, d.state_dir)
            check(c.returncode == 0, "good spec rejected by ssld check: %s\n%s" % (json.dumps(obj), c.stdout))
            st, ans = d.post("/v1/jobs?dry_run=1", obj)
            check(st == 200, "good spec rejected by the server: %s -> %d %s" % (json.dumps(obj), st, ans))

        for what, obj, field in BAD:
            check(schema_errors(v, obj), "%s: the schema accepts %s" % (what, json.dumps(obj)))
            c = ssld_check(exe, obj, d.state_dir)
            lines = c.stdout.splitlines()
            check(c.returncode == 1 and any(l.startswith(field + ":") for l in lines),
                  "%s: ssld check exit %d, no line for %s:\n%s" % (what, c.returncode, field, c.stdout))
            st, ans = d.post("/v1/jobs", obj)
            check(st == 400 and ans["error"]["field"] == field and ans["errors"][0] == ans["error"],
                  "%s: server -> %d %s (wanted 400 naming %s)" % (what, st, ans, field))

        # Seeded mutations of the examples: whatever the schema refuses, the server refuses too (the
        # schema may accept what only the server can check, never the other way round).
        rng = random.Random(20)
        specs = []
        for path in examples:
            with open(path) as f:
                specs.append(json.load(f))
        refused = agreed = 0
        for i in range(400):
            obj = mutate(rng, rng.choice(specs))
            if not schema_errors(v, obj):
                continue
            refused += 1
            st, ans = d.post("/v1/jobs?dry_run=1", obj)
            check(st in (400, 403, 404), "mutation %d: the schema refuses it, the server answers %d:\n%s\nschema: %s"
                  % (i, st, json.dumps(obj), schema_errors(v, obj)[:2]))
            agreed += 1
        check(refused > 100, "only %d of 400 mutations refused by the schema" % refused)
        print("mutations: %d refused by the schema, all %d by the server" % (refused, agreed))

        # three errors, three entries: from the server, dry_run and ssld check alike
        three = {"method": "byol", "params": {"tau_base": 2}, "model": {"dropout": 0.95},
                 "pretrain": {"batch_size": 1}}
        fields = ["params.tau_base", "model.dropout", "pretrain.batch_size"]
        for path in ("/v1/jobs", "/v1/jobs?dry_run=1"):
            st, ans = d.post(path, three)
            check(st == 400 and [e["field"] for e in ans["errors"]] == fields,
                  "%s: three errors -> %d %s" % (path, st, ans))
        c = ssld_check(exe, three, d.state_dir)
        check(c.returncode == 1 and [l.split(":")[0] for l in c.stdout.splitlines()] == fields,
              "ssld check, three errors:\n%s" % c.stdout)
        c = ssld(exe, "submit", "--server", "http://127.0.0.1:%d" % d.port, os.path.join(d.state_dir, "job.json"))
        check(c.returncode != 0 and all(f + ":" in c.stderr for f in fields),
              "ssld submit, three errors: %d\n%s" % (c.returncode, c.stderr))
        c = ssld(exe, "check", "--json", os.path.join(d.state_dir, "job.json"))
        check(c.returncode == 1 and [e["field"] for e in json.loads(c.stdout)["errors"]] == fields,
              "ssld check --json:\n%s" % c.stdout)

        # the drift that reached run time: pool_grid 4 on a 7x7 map is refused at submit
        st, ans = d.post("/v1/jobs", spec(model={"pool_grid": 4}))
        check(st == 400 and ans["error"]["field"] == "model.pool_grid", "pool_grid 4 -> %d %s" % (st, ans))

        # dry_run: the resolved spec (defaults explicit) and the estimate
        st, ans = d.post("/v1/jobs?dry_run=1", spec())
        check(st == 200 and ans["spec"]["pretrain"]["optimizer"]["name"] == "adamw"
              and ans["spec"]["model"]["encoder"] == "cnn", "dry_run spec: %s" % str(ans)[:300])
        e = ans["estimate"]
        m = e["memory_bytes"]
        check(e["steps_per_epoch"] == 60000 // 64 and e["steps"] == 60000 // 64
              and m["peak"] == m["params"] + m["grads"] + m["optimizer"] + m["activations"]
              and m["optimizer"] == 2 * m["params"] and m["params"] == 4 * e["params"],
              "estimate: %s" % e)
        st, ans = d.post("/v1/jobs?dry_run=2", spec())
        check(st == 400 and ans["error"]["field"] == "dry_run", "dry_run=2 -> %d %s" % (st, ans))
        st, jobs = d.get("/v1/jobs")
        check(st == 200 and jobs["jobs"] == [], "dry runs and refusals queued jobs: %s" % jobs)
    finally:
        d.stop()
        d.cleanup()
        import shutil
        shutil.rmtree(words, ignore_errors=True)

    # --max-job-memory: the key that drives the estimate is named
    d = Daemon(exe).start("--workers", "0", "--max-job-memory", "64M")
    try:
        st, ans = d.post("/v1/jobs", spec(pretrain={"batch_size": 512}))
        check(st == 400 and ans["error"]["code"] == "too_much_memory"
              and ans["error"]["field"] == "pretrain.batch_size" and "64.0 MiB" in ans["error"]["message"],
              "big batch -> %d %s" % (st, ans))
        st, ans = d.post("/v1/jobs", spec(model={"encoder": "mlp", "hidden": [4096, 4096]},
                                          pretrain={"batch_size": 2}))
        check(st == 400 and ans["error"]["field"] == "model", "big model -> %d %s" % (st, ans))
        st, ans = d.post("/v1/jobs", spec(model={"encoder": "mlp", "hidden": [64]}, pretrain={"batch_size": 64}))
        check(st == 201, "a small job under the limit -> %d %s" % (st, ans))
    finally:
        d.stop()
        d.cleanup()


if __name__ == "__main__":
    run(main)
