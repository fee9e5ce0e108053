"""seccomp_exec.py - exec a command under ssld.service's system call filter, built the way systemd
builds it (libseccomp through ctypes; used by it_sandbox.py).

    seccomp_exec.py ALLOWED_FILE CMD [ARGS...]

ALLOWED_FILE holds the system call names the unit allows, one per line (it_sandbox.py expands
SystemCallFilter=@system-service minus ~@privileged @resources with `systemd-analyze
syscall-filter`). Two filters are loaded, as systemd does, and the kernel applies the stricter
answer of the two:
  1. an allow list for the native architecture only (SystemCallArchitectures=native); anything
     else fails with EPERM (SystemCallErrorNumber=EPERM);
  2. MemoryDenyWriteExecute=: mmap asking for PROT_WRITE|PROT_EXEC, mprotect/pkey_mprotect asking
     for PROT_EXEC and shmat with SHM_EXEC fail with EPERM.
The caller must have set no_new_privs (setpriv --no-new-privs), as NoNewPrivileges= does.
"""
import ctypes
import errno
import os
import sys

SCMP_ACT_ALLOW = 0x7FFF0000
SCMP_CMP_MASKED_EQ = 7
PROT_WRITE, PROT_EXEC, SHM_EXEC = 0x2, 0x4, 0o100000


def act_errno(e):
    return 0x00050000 | (e & 0xFFFF)


class ArgCmp(ctypes.Structure):
    _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int), ("datum_a", ctypes.c_uint64), ("datum_b", ctypes.c_uint64)]


def main():
    allowed_file, cmd = sys.argv[1], sys.argv[2:]
    lib = ctypes.CDLL("libseccomp.so.2", use_errno=True)
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_init.argtypes = [ctypes.c_uint32]
    lib.seccomp_rule_add_array.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint,
                                           ctypes.POINTER(ArgCmp)]
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_load.argtypes = [ctypes.c_void_p]
    lib.seccomp_release.argtypes = [ctypes.c_void_p]

    def nr(name):
        n = lib.seccomp_syscall_resolve_name(name.encode())
        return n if n >= 0 else None   # unknown, or a pseudo call that does not exist on this arch

    allow = lib.seccomp_init(act_errno(errno.EPERM))
    names = [l.strip() for l in open(allowed_file) if l.strip()]
    added = 0
    for name in names:
        n = nr(name)
        if n is not None and lib.seccomp_rule_add_array(allow, SCMP_ACT_ALLOW, n, 0, None) == 0:
            added += 1
    mdwe = lib.seccomp_init(SCMP_ACT_ALLOW)
    rules = [("mmap", PROT_WRITE | PROT_EXEC), ("mprotect", PROT_EXEC), ("pkey_mprotect", PROT_EXEC), ("shmat", SHM_EXEC)]
    for name, bits in rules:
        n = nr(name)
        if n is None:
            continue
        cmp = ArgCmp(2, SCMP_CMP_MASKED_EQ, bits, bits)
        rc = lib.seccomp_rule_add_array(mdwe, act_errno(errno.EPERM), n, 1, ctypes.byref(cmp))
        if rc != 0:
            sys.exit("seccomp_exec: MemoryDenyWriteExecute rule for %s: %s" % (name, os.strerror(-rc)))
    for ctx, what in ((mdwe, "MemoryDenyWriteExecute"), (allow, "allow list")):
        rc = lib.seccomp_load(ctx)
        if rc != 0:
            sys.exit("seccomp_exec: loading the %s filter: %s" % (what, os.strerror(-rc)))
        lib.seccomp_release(ctx)
    sys.stderr.write("seccomp_exec: %d of %d allowed system calls exist here; MemoryDenyWriteExecute on\n"
                     % (added, len(names)))
    sys.stderr.flush()
    os.execv(cmd[0], cmd)


if __name__ == "__main__":
    main()
