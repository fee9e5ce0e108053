"""it_install.py - `meson install --destdir` of this build, then the installed unit as systemd sees it.

1. `meson install --no-rebuild --destdir ROOT`: every file the installed ssld.service refers to is
   in ROOT - the ExecStart binary (executable), its --config file, the Documentation= page, the
   web-dir that config names (index.html), the sysusers.d entry for User=, the tmpfiles.d entry
   for StateDirectory= - and the unit, sysusers and tmpfiles files sit in directories systemd
   reads. The installed binary serves with the installed config (every key valid) and the
   installed dashboard.
2. `systemd-analyze verify` accepts ssld.service and ssld.socket. verify insists that executables
   exist at their real paths, which a destdir cannot give, so it runs with --root=ROOT; ROOT gets
   what an OS would supply (systemd's stock units such as sysinit.target, and the ExecReload
   /bin/kill) copied from this machine. systemd-sysusers and systemd-tmpfiles --root=ROOT apply
   the installed snippets (user ssld, /var/lib/ssld) inside ROOT.
3. `systemd-analyze security --offline=yes` rates the installed unit: the exposure figure is
   printed and must be <= 1.5.
Skips (77) only when systemd-analyze is not installed, after part 1.
"""
import glob
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ssld_harness import Daemon, check, run  # noqa: E402

MAX_EXPOSURE = 1.5
UNIT_DIRS = ("/etc/systemd/system", "/usr/local/lib/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system")


def parse_unit(path):
    """{key: [values]} of a unit file (sections merged; the keys used here are unique anyway)."""
    out = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line[0] in "#;[" or "=" not in line:
                continue
            k, v = line.split("=", 1)
            out.setdefault(k.strip(), []).append(v.strip())
    return out


def parse_conf(path):
    out = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line[0] == "#":
                continue
            k, v = line.split("=", 1)
            out.setdefault(k.strip(), []).append(v.strip().strip('"'))
    return out


def inside(root, path):
    return os.path.join(root, path.lstrip("/"))


def sh(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, **kw)


def main(argv):
    meson, build = argv[2], argv[3]
    tmp = tempfile.mkdtemp(prefix="ssld-install-")
    root = os.path.join(tmp, "root")
    try:
        p = sh([meson, "install", "-C", build, "--no-rebuild", "--quiet", "--destdir", root])
        check(p.returncode == 0, "meson install failed (%d):\n%s%s" % (p.returncode, p.stdout, p.stderr))
        units = glob.glob(os.path.join(root, "**", "systemd", "system", "ssld.service"), recursive=True)
        check(len(units) == 1, "installed ssld.service: %s" % units)
        unit = units[0]
        unit_rel = "/" + os.path.relpath(unit, root)
        unit_dir = os.path.dirname(unit_rel)
        check(unit_dir in UNIT_DIRS, "the unit is installed to %s, where systemd does not look (%s)" % (unit_dir, UNIT_DIRS))
        check(os.path.exists(os.path.join(os.path.dirname(unit), "ssld.socket")), "ssld.socket not installed beside it")
        u = parse_unit(unit)

        # ---- what the unit refers to -----------------------------------------------------------
        argv0, *args = shlex.split(u["ExecStart"][0])
        binary = inside(root, argv0)
        check(os.path.isfile(binary) and os.access(binary, os.X_OK), "ExecStart binary %s not installed" % argv0)
        check(args[:1] == ["serve"] and "--config" in args, "ExecStart does not serve with --config: %s" % args)
        config = args[args.index("--config") + 1]
        check(os.path.isfile(inside(root, config)), "ExecStart's --config %s not installed" % config)
        for doc in u.get("Documentation", []):
            for ref in doc.split():
                if ref.startswith("file://"):
                    check(os.path.isfile(inside(root, ref[7:])), "Documentation= %s not installed" % ref)
        c = parse_conf(inside(root, config))
        web = c.get("web-dir", [None])[0]
        check(web and os.path.isfile(os.path.join(inside(root, web), "index.html")),
              "the config's web-dir %s has no installed index.html" % web)
        check(os.path.isfile(os.path.join(inside(root, web), "js", "app.js")), "web-dir lacks js/app.js")
        user = u["User"][0]
        sysusers = glob.glob(os.path.join(root, "**", "sysusers.d", "*.conf"), recursive=True)
        check(any(re.search(r"^u\s+%s\s" % re.escape(user), open(f).read(), re.M) for f in sysusers),
              "no installed sysusers.d entry creates User=%s (%s)" % (user, sysusers))
        for f in sysusers:
            check(os.path.dirname("/" + os.path.relpath(f, root)) in ("/usr/lib/sysusers.d", "/usr/local/lib/sysusers.d"),
                  "sysusers snippet at %s, where systemd-sysusers does not look" % f)
        state = "/var/lib/" + u["StateDirectory"][0]
        tmpfiles = glob.glob(os.path.join(root, "**", "tmpfiles.d", "*.conf"), recursive=True)
        check(any(re.search(r"^d\s+%s\s" % re.escape(state), open(f).read(), re.M) for f in tmpfiles),
              "no installed tmpfiles.d entry for %s (%s)" % (state, tmpfiles))
        for f in tmpfiles:
            check(os.path.dirname("/" + os.path.relpath(f, root)) in ("/usr/lib/tmpfiles.d", "/usr/local/lib/tmpfiles.d"),
                  "tmpfiles snippet at %s, where systemd-tmpfiles does not look" % f)
        installed = sorted("/" + os.path.relpath(p, root) for p in glob.glob(os.path.join(root, "**"), recursive=True)
                           if os.path.isfile(p) and "/web/" not in p)
        print("  installed: %s (+ %d dashboard files)" % (", ".join(installed),
              len(glob.glob(os.path.join(inside(root, web), "**"), recursive=True))))

        # ---- the installed binary, config and dashboard work together ---------------------------
        d = Daemon(binary)
        try:
            d.start("--config", inside(root, config), "--web-dir", inside(root, web), "--workers", "0")
            status, hdrs, body = d.raw("GET", "/")
            check(status == 200 and b"<html" in body.lower() and hdrs["content-type"].startswith("text/html"),
                  "GET / from the installed dashboard -> %d" % status)
            s, h = d.get("/v1/health")
            check(s == 200, "health -> %d" % s)
            check(d.stop() == 0, "installed ssld did not stop cleanly")
        finally:
            d.cleanup()

        # ---- systemd-analyze -------------------------------------------------------------------
        sa = shutil.which("systemd-analyze")
        if not sa:
            print("SKIP: systemd-analyze is not installed; the install itself checked out")
            sys.exit(77)
        # What the OS gives a real root: the stock units and the tools ExecReload= names.
        host_units = next((d for d in ("/usr/lib/systemd/system", "/lib/systemd/system") if os.path.isdir(d)), None)
        check(host_units, "systemd-analyze is here but this machine has no systemd unit directory")
        shutil.copytree(host_units, inside(root, "/usr/lib/systemd/system"), symlinks=True, dirs_exist_ok=True,
                        ignore=lambda d, names: [n for n in names if n.startswith("ssld.")])
        for key in ("ExecReload", "ExecStop", "ExecStartPre", "ExecStartPost"):
            for v in u.get(key, []):
                tool = shlex.split(v.lstrip("-@:+!"))[0]
                if not os.path.exists(inside(root, tool)):
                    check(os.path.exists(tool), "%s= %s exists neither in the install nor on this machine" % (key, tool))
                    os.makedirs(os.path.dirname(inside(root, tool)), exist_ok=True)
                    shutil.copy2(os.path.realpath(tool), inside(root, tool))
        for name in ("ssld.service", "ssld.socket"):
            p = sh([sa, "verify", "--root=" + root, os.path.join(unit_dir, name)])
            text = (p.stdout + p.stderr).strip()
            check(p.returncode == 0 and not text, "systemd-analyze verify %s: exit %d\n%s" % (name, p.returncode, text))
        print("  systemd-analyze verify: ssld.service and ssld.socket accepted")
        if os.geteuid() == 0 and shutil.which("systemd-sysusers") and shutil.which("systemd-tmpfiles"):
            os.makedirs(inside(root, "/etc"), exist_ok=True)
            p = sh(["systemd-sysusers", "--root=" + root])
            check(p.returncode == 0, "systemd-sysusers --root: %s" % p.stderr)
            check(re.search(r"^%s:" % re.escape(user), open(inside(root, "/etc/passwd")).read(), re.M),
                  "systemd-sysusers did not create user %s" % user)
            # No file arguments: it finds the snippet through its own search path inside ROOT.
            p = sh(["systemd-tmpfiles", "--root=" + root, "--create"])
            check(p.returncode == 0, "systemd-tmpfiles --root --create: %s" % p.stderr)
            st = os.stat(inside(root, state))
            check(oct(st.st_mode & 0o777) == "0o750", "%s mode %o" % (state, st.st_mode & 0o777))
            print("  systemd-sysusers/tmpfiles --root: user %s and %s (0750) created in the install root" % (user, state))
        p = sh([sa, "security", "--offline=yes", "--no-pager", "--root=" + root, unit_rel])
        m = re.search(r"Overall exposure level for ssld\.service:\s*([0-9.]+)\s*(\S+)", p.stdout + p.stderr)
        check(m, "no exposure figure from systemd-analyze security (exit %d):\n%s%s" % (p.returncode, p.stdout, p.stderr))
        exposure = float(m.group(1))
        weak = [l.split()[1] for l in p.stdout.splitlines() if l.startswith("\u2717")]
        print("  systemd-analyze security --offline=yes: exposure %.1f %s (limit %.1f); not set: %s"
              % (exposure, m.group(2), MAX_EXPOSURE, ", ".join(weak)))
        check(exposure <= MAX_EXPOSURE, "exposure %.1f is above %.1f:\n%s" % (exposure, MAX_EXPOSURE, p.stdout))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    run(lambda exe: main(sys.argv))
