#!/usr/bin/env python3
"""pgserver.py - a throwaway PostgreSQL server for the tests that need a real one.

Why: the PostgreSQL backend (storage/store_pg.c) and the several-node tests must run against the
real engine, started by the test itself, on a CI box where the tests run as root. PostgreSQL
refuses to run as root, so the server runs as `nobody` (when this process is root) from a
temporary directory that user owns. It listens only on a unix socket in that directory (no TCP),
trusts local connections, and is stopped and removed when the test ends, however it ends.

As a module:
    from pgserver import PgServer, skip_unless_available
    skip_unless_available()            # a test script: exit 77 with the reason when it cannot run
    with PgServer() as pg:             # initdb + start: about 2 s
        url = pg.create_db("ssld_a")   # postgresql://ssld@/ssld_a?host=/tmp/ssld-pg-XXXX
        pg.stop(); pg.start()          # a database outage and its end
As a wrapper for tests written in C (exit 77 = skipped, with the reason, when PostgreSQL's
binaries are absent):
    pgserver.py run -- ./test_storage          # SSLD_TEST_PG_URL set for the command
    pgserver.py shell                          # a server for a person: prints the URL, waits

Not here: anything ssld-specific (the schema is the store's own business).
"""
import glob
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile

SKIP = 77


def bindir():
    """The directory of initdb/pg_ctl/postgres (Debian keeps them out of PATH), or None."""
    for d in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: [int(x) if x.isdigit() else 0 for x in p.split("/")[-2].split(".")], reverse=True):
        if all(os.access(os.path.join(d, b), os.X_OK) for b in ("initdb", "pg_ctl", "postgres")):
            return d
    w = shutil.which("initdb")
    return os.path.dirname(w) if w and shutil.which("pg_ctl") else None


def skip_reason():
    """None when a server can be started here, else why not (for a skip message)."""
    if bindir() is None:
        return "PostgreSQL server binaries (initdb, pg_ctl) not found: install Debian package 'postgresql'"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("nobody")
        except KeyError:
            return "running as root and there is no 'nobody' user to run PostgreSQL as"
    return None


def skip_unless_available():
    """For a test script: exits with 77 (skipped), saying why, when no server can be started here."""
    why = skip_reason()
    if why:
        print("SKIP: " + why)
        sys.exit(SKIP)


class PgServer:
    """initdb into a temporary directory and start postgres on a unix socket there."""

    USER = "ssld"

    def __init__(self):
        self.bin = bindir()
        if self.bin is None:
            raise RuntimeError(skip_reason())
        self.dir = None
        self.running = False
        self._as = None
        if os.geteuid() == 0:
            pw = pwd.getpwnam("nobody")
            self._as = (pw.pw_uid, pw.pw_gid)

    # -- lifetime ---------------------------------------------------------------------------
    def __enter__(self):
        try:
            self.init()
            self.start()
        except BaseException:
            self.close()   # nothing left behind, even when initdb or the start fails
            raise
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def _run(self, *args, check=True):
        kw = {}
        if self._as:
            kw = {"user": self._as[0], "group": self._as[1], "extra_groups": []}
        env = dict(os.environ, LC_ALL="C", TZ="UTC")
        env.pop("PGDATA", None)
        p = subprocess.run([os.path.join(self.bin, args[0]), *args[1:]], capture_output=True, text=True,
                           env=env, cwd=self.dir, **kw)
        if check and p.returncode != 0:
            raise RuntimeError("%s failed (%d): %s%s" % (" ".join(args), p.returncode, p.stdout, p.stderr))
        return p

    def init(self):
        # Short path: the socket's path must fit in sun_path (107 bytes).
        self.dir = tempfile.mkdtemp(prefix="ssld-pg-", dir="/tmp")
        if self._as:
            os.chown(self.dir, *self._as)
        os.chmod(self.dir, 0o700)
        self.data = os.path.join(self.dir, "data")
        self._run("initdb", "-D", self.data, "-U", self.USER, "--auth=trust", "--encoding=UTF8",
                  "--no-sync", "--no-instructions")
        # Unix socket only, in this directory. fsync off (the files outlive a killed server in the
        # page cache; a test never loses power), but commits are acknowledged only once in the WAL:
        # stop() is an immediate shutdown, and an outage must not lose acknowledged commits.
        with open(os.path.join(self.data, "postgresql.conf"), "a") as f:
            f.write("\nlisten_addresses = ''\nunix_socket_directories = '%s'\nfsync = off\n"
                    "full_page_writes = off\nmax_connections = 200\n"
                    "shared_buffers = 32MB\nlog_min_messages = warning\n" % self.dir)

    def start(self):
        self._run("pg_ctl", "-D", self.data, "-l", os.path.join(self.dir, "server.log"), "-w", "-t", "60", "start")
        self.running = True

    def stop(self):
        """Stops the server (immediately: connections drop as in a crash or a partition)."""
        if self.running:
            self._run("pg_ctl", "-D", self.data, "-m", "immediate", "-w", "-t", "60", "stop", check=False)
            self.running = False

    def close(self):
        self.stop()
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    # -- databases --------------------------------------------------------------------------
    def url(self, db="postgres"):
        return "postgresql://%s@/%s?host=%s" % (self.USER, db, self.dir)

    def psql(self, sql, db="postgres"):
        """Runs sql (psql -c) and returns its unaligned output."""
        p = self._run("psql", "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", self.dir, "-U", self.USER,
                      "-d", db, "-c", sql)
        return p.stdout.strip()

    def create_db(self, name):
        """A new, empty database; returns its URL."""
        self.psql('CREATE DATABASE "%s"' % name)
        return self.url(name)

    def log(self):
        try:
            with open(os.path.join(self.dir, "server.log")) as f:
                return f.read()
        except OSError:
            return ""


def _exit_on_signal(*_):
    raise SystemExit(128 + 15)


def main(argv):
    if len(argv) < 2 or argv[1] not in ("run", "shell"):
        print(__doc__, file=sys.stderr)
        return 2
    why = skip_reason()
    if why:
        print("SKIP: " + why)
        return SKIP
    signal.signal(signal.SIGTERM, _exit_on_signal)
    signal.signal(signal.SIGINT, _exit_on_signal)
    with PgServer() as pg:
        url = pg.create_db("ssld_test")
        if argv[1] == "shell":
            print(url, flush=True)
            signal.pause()
            return 0
        cmd = argv[argv.index("--") + 1:] if "--" in argv else argv[2:]
        if not cmd:
            print("pgserver.py run: no command given", file=sys.stderr)
            return 2
        env = dict(os.environ, SSLD_TEST_PG_URL=url)
        rc = subprocess.run(cmd, env=env).returncode
        if rc not in (0, SKIP):
            sys.stderr.write("--- PostgreSQL server log ---\n" + pg.log()[-4000:])
        return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv))
