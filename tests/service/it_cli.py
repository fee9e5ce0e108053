"""it_cli.py - the `ssld` command line as a user meets it, checked against its own command table.

- bare `ssld` prints the table (usage line and one row per command) and exits 0, and so do
  `ssld help`, `ssld --help`; `ssld --version` prints the version;
- every command of the table answers `--help` (and `-h`) on stdout with its usage, exit 0;
  `ssld help CMD` prints the same usage;
- a mistyped command (`ssld sumbit`) exits 2 and suggests `submit`; a word far from every
  command gets no suggestion; an unknown option of a command that parses its options
  (`ssld ls --lmit 3`, `ssld run --qiet`) exits 2 and suggests the right one; a mistyped `token`
  subcommand, job state (`ssld ls --state runing`) and serve setting get one too; serve's old bare form (`ssld --listen ...`) exits 2
  and points at `ssld serve`;
- `ssld serve` still starts (the shared daemon harness) and serves /v1/health.
"""
import os
import re
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ssld_harness import Daemon, check, run, ssld  # noqa: E402


def commands_of(help_text):
    """The command names of the table in `ssld`'s help: the indented rows under "commands:"."""
    body = help_text.split("commands:\n", 1)
    check(len(body) == 2, "no 'commands:' section in the help:\n%s" % help_text)
    names = []
    for line in body[1].splitlines():
        m = re.match(r"  ([a-z][a-z-]*)  +\S", line)
        if not m:
            break
        names.append(m.group(1))
    return names


def main(exe):
    # In a directory of its own: an ssld that served when called bare would put ./state here.
    exe = os.path.abspath(exe)
    cwd = tempfile.mkdtemp(prefix="ssld-cli-")
    os.chdir(cwd)
    try:
        check_commands(exe)
    finally:
        os.chdir("/")
        shutil.rmtree(cwd, ignore_errors=True)


def check_commands(exe):
    # ---- the table --------------------------------------------------------------------------------
    bare = ssld(exe, timeout=120)
    check(bare.returncode == 0, "bare ssld: exit %d\n%s" % (bare.returncode, bare.stderr))
    check(bare.stdout.startswith("usage: ssld COMMAND"), "bare ssld does not start with its usage:\n%s" % bare.stdout)
    names = commands_of(bare.stdout)
    for must in ("serve", "run", "check", "schema", "methods", "submit", "ls", "show", "watch", "cancel",
                 "results", "artifacts", "generate", "token", "version", "help"):
        check(must in names, "the help lists no '%s': %s" % (must, names))
    check(len(set(names)) == len(names), "a command is listed twice: %s" % names)
    for alias in (["help"], ["--help"], ["-h"]):
        p = ssld(exe, *alias, check_rc=0)
        check(p.stdout == bare.stdout, "`ssld %s` differs from bare `ssld`" % alias[0])
    p = ssld(exe, "--version", check_rc=0)
    check(re.fullmatch(r"ssld \S+\n", p.stdout), "--version: %r" % p.stdout)

    # ---- every command's --help ---------------------------------------------------------------------
    for name in names:
        for flag in ("--help", "-h"):
            p = ssld(exe, name, flag, timeout=120)
            check(p.returncode == 0, "ssld %s %s: exit %d\n%s" % (name, flag, p.returncode, p.stderr))
            check(p.stdout.startswith("usage: ssld %s" % name),
                  "ssld %s %s does not start with its usage:\n%s" % (name, flag, p.stdout[:300]))
        if name != "serve":   # serve's --help adds its flags to the table's usage line
            same = ssld(exe, "help", name, check_rc=0)
            check(same.stdout == p.stdout, "`ssld help %s` is not `ssld %s --help`" % (name, name))

    # ---- did you mean -------------------------------------------------------------------------------
    p = ssld(exe, "sumbit", "job.json")
    check(p.returncode == 2 and "unknown command 'sumbit'" in p.stderr and "did you mean 'submit'" in p.stderr,
          "ssld sumbit: exit %d, %r" % (p.returncode, p.stderr))
    p = ssld(exe, "frobnicate")
    check(p.returncode == 2 and "unknown command 'frobnicate'" in p.stderr and "did you mean" not in p.stderr,
          "ssld frobnicate: exit %d, %r" % (p.returncode, p.stderr))
    for args, wrong, right in ((["ls", "--lmit", "3"], "--lmit", "--limit"),
                               (["run", "--qiet", "job.json"], "--qiet", "--quiet"),
                               (["watch", "1", "--intervall", "2"], "--intervall", "--interval"),
                               (["token", "craete", "alice"], "craete", "create"),
                               (["ls", "--state", "queued,runing"], "runing", "running")):
        p = ssld(exe, *args)
        check(p.returncode == 2 and "'%s'" % wrong in p.stderr and "did you mean '%s'" % right in p.stderr,
              "ssld %s: exit %d, %r" % (" ".join(args), p.returncode, p.stderr))
    p = ssld(exe, "methods", "extra")
    check(p.returncode == 2 and "unexpected argument 'extra'" in p.stderr, "methods extra: %d %r" % (p.returncode, p.stderr))
    p = ssld(exe, "--listen", "127.0.0.1:0")
    check(p.returncode == 2 and "ssld serve --listen" in p.stderr, "bare flags: exit %d, %r" % (p.returncode, p.stderr))

    # ---- serve still serves; a mistyped setting is named with its nearest flag ------------------
    d = Daemon(exe)
    try:
        p = ssld(exe, "serve", "--state-dir", d.state_dir, "--lsten", "127.0.0.1:0")
        check(p.returncode == 2 and "--lsten" in p.stderr and "did you mean 'listen'" in p.stderr,
              "serve --lsten: exit %d, %r" % (p.returncode, p.stderr))
        d.start("--workers", "0")
        status, body = d.get("/v1/health")
        check(status == 200, "GET /v1/health after `ssld serve`: %d %s" % (status, body))
        check(d.stop() == 0, "ssld serve did not stop cleanly")
    finally:
        d.cleanup()
    print("  cli: %d commands, each with --help; suggestions for commands, options, subcommands, settings"
          % len(names))


if __name__ == "__main__":
    run(main)
