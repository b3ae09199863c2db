"""The walls around a submission's child process, applied by the child right after fork().

- Resource limits: address space, CPU seconds, file size, open files, no core dumps, and (when
  the grader runs as root) a process count.
- Privileges: as root, the child drops to an unprivileged uid/gid with no supplementary groups.
- Landlock (Linux >= 5.13; signals and abstract sockets need >= 6.12): the child may read only
  the Python installation and the submission, write only its scratch folder, execute no file
  at all (a test child; a notebook's child may start its kernel), open no TCP
  connection, and signal no process outside its own sandbox. Instructor files (the reference
  solution, the secret seed, other submissions, the results folder) stay out of reach whatever
  their permissions. Without Landlock the walls are the uid (as root) and the limits alone;
  `landlock_abi()` tells which.
"""
import ctypes
import ctypes.util
import fcntl
import os
import resource
import sys
import sysconfig
import tempfile

_libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)

PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38

_SYS_LANDLOCK_CREATE_RULESET = 444  # the same number on x86_64 and aarch64
_SYS_LANDLOCK_ADD_RULE = 445
_SYS_LANDLOCK_RESTRICT_SELF = 446
_LANDLOCK_CREATE_RULESET_VERSION = 1
_LANDLOCK_RULE_PATH_BENEATH = 1

_FS_EXECUTE, _FS_WRITE_FILE, _FS_READ_FILE, _FS_READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
_FS_RIGHTS_BY_ABI = {1: (1 << 13) - 1, 2: (1 << 14) - 1, 3: (1 << 15) - 1, 5: (1 << 16) - 1}
_FILE_RIGHTS = _FS_EXECUTE | _FS_WRITE_FILE | _FS_READ_FILE | (1 << 14) | (1 << 15)
_NET_BIND_TCP, _NET_CONNECT_TCP = 1 << 0, 1 << 1
_SCOPE_ABSTRACT_UNIX_SOCKET, _SCOPE_SIGNAL = 1 << 0, 1 << 1


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64),
                ("scoped", ctypes.c_uint64)]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


class SandboxError(OSError):
    """A wall could not be put up; the child must not run the submission."""


def _check(result, what):
    if result < 0:
        errno = ctypes.get_errno()
        raise SandboxError(errno, f"{what}: {os.strerror(errno)}")
    return result


def prctl(option, arg):
    return _check(_libc.prctl(option, ctypes.c_ulong(arg), 0, 0, 0), f"prctl({option})")


def landlock_abi():
    """The kernel's Landlock ABI version, or 0 when Landlock is unavailable."""
    if not sys.platform.startswith("linux"):
        return 0
    version = _libc.syscall(_SYS_LANDLOCK_CREATE_RULESET, None, ctypes.c_size_t(0),
                            ctypes.c_uint32(_LANDLOCK_CREATE_RULESET_VERSION))
    return max(version, 0)


SYSTEM_LIBRARIES = ["/lib", "/lib64", "/usr/lib", "/usr/lib64", "/usr/local/lib",
                    "/etc/ld.so.cache"]


def python_paths():
    """What a child may read and run: the standard library, site-packages, the interpreter (a
    notebook's kernel is a new Python process) and the system's shared libraries."""
    executable = os.path.realpath(sys.executable)
    paths = {os.path.dirname(os.__file__), *sysconfig.get_paths().values(),
             os.path.dirname(executable), os.path.dirname(sys.executable),
             os.path.join(sys.base_prefix, "lib"), *SYSTEM_LIBRARIES}
    paths.update(p for p in sys.path if "site-packages" in p or "dist-packages" in p)
    return sorted(p for p in paths if os.path.exists(p))


def world_readable(path):
    """True when any user may read `path` (list it, for a folder) and pass through every folder
    above it."""
    path = os.path.abspath(path)
    needed = 0o005 if os.path.isdir(path) else 0o004  # read (and search) it, search those above
    while True:
        try:
            if os.stat(path).st_mode & needed != needed:
                return False
        except OSError:
            return False
        parent = os.path.dirname(path)
        if parent == path:
            return True
        path, needed = parent, 0o001


def apply_landlock(read_paths, write_paths, abi=None, execute=True):
    """Confine this process (and its future children) to the given folders; returns the ABI.

    With `execute` False it may execute no file at all (a test child; a notebook's child needs
    to start its kernel).

    Raises SandboxError when Landlock is available but cannot be applied; returns 0 and does
    nothing when the kernel has no Landlock.
    """
    abi = landlock_abi() if abi is None else abi
    if abi <= 0:
        return 0
    fs_rights = _FS_RIGHTS_BY_ABI[max(a for a in _FS_RIGHTS_BY_ABI if a <= abi)]
    attr = _RulesetAttr(handled_access_fs=fs_rights)
    size = 8
    if abi >= 4:
        attr.handled_access_net = _NET_BIND_TCP | _NET_CONNECT_TCP
        size = 16
    if abi >= 6:
        attr.scoped = _SCOPE_ABSTRACT_UNIX_SOCKET | _SCOPE_SIGNAL
        size = 24
    ruleset = _check(_libc.syscall(_SYS_LANDLOCK_CREATE_RULESET, ctypes.byref(attr),
                                   ctypes.c_size_t(size), ctypes.c_uint32(0)),
                     "landlock_create_ruleset")
    try:
        read_rights = _FS_READ_FILE | _FS_READ_DIR | (_FS_EXECUTE if execute else 0)
        write_rights = fs_rights & ~(0 if execute else _FS_EXECUTE)
        for rights, paths in ((read_rights, read_paths), (write_rights, write_paths)):
            for path in paths:
                _add_path_rule(ruleset, path, rights & fs_rights)
        prctl(PR_SET_NO_NEW_PRIVS, 1)
        _check(_libc.syscall(_SYS_LANDLOCK_RESTRICT_SELF, ctypes.c_int(ruleset),
                             ctypes.c_uint32(0)), "landlock_restrict_self")
    finally:
        os.close(ruleset)
    return abi


def _add_path_rule(ruleset, path, rights):
    try:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    try:
        if not os.path.isdir(path):
            rights &= _FILE_RIGHTS
        rule = _PathBeneathAttr(allowed_access=rights, parent_fd=fd)
        _check(_libc.syscall(_SYS_LANDLOCK_ADD_RULE, ctypes.c_int(ruleset),
                             ctypes.c_int(_LANDLOCK_RULE_PATH_BENEATH), ctypes.byref(rule),
                             ctypes.c_uint32(0)), f"landlock_add_rule({path})")
    finally:
        os.close(fd)


RLIM_INFINITY = resource.RLIM_INFINITY
UID_SEARCH = 4000


def claim_uid(start):
    """(uid, lock file) for a uid at or above `start` that no other running grader holds.

    Each job slot's children run as their own uid, and without namespaces the worker kills every
    process of that uid after each child; two graders at once (two batches, parallel CI jobs)
    must therefore never share one. The claim is an exclusive lock, released when the file is
    closed.
    """
    for uid in range(start, start + UID_SEARCH):
        lock = open(os.path.join(tempfile.gettempdir(), f"two-layer-net-sandbox-uid-{uid}.lock"), "a")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            lock.close()
            continue
        return uid, lock
    raise RuntimeError(f"no free sandbox uid in {start}..{start + UID_SEARCH - 1}; set "
                       "GRADER_SANDBOX_UID to another range")


def set_limits(*, address_space, cpu_seconds, file_size, open_files, processes=None):
    """Hard resource limits for this process; `processes` only where a private uid is used."""
    limits = [(resource.RLIMIT_AS, address_space), (resource.RLIMIT_CPU, cpu_seconds),
              (resource.RLIMIT_FSIZE, file_size), (resource.RLIMIT_NOFILE, open_files),
              (resource.RLIMIT_CORE, 0)]
    if processes is not None:
        limits.append((resource.RLIMIT_NPROC, processes))
    for which, value in limits:
        soft, hard = resource.getrlimit(which)
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)
        resource.setrlimit(which, (value, value))


PR_CAPBSET_DROP = 24
PR_SET_SECUREBITS = 28
PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 47, 4
# SECBIT_NOROOT, SECBIT_NO_SETUID_FIXUP, SECBIT_KEEP_CAPS_LOCKED, SECBIT_NO_CAP_AMBIENT_RAISE
# and their locks: uid 0 gains nothing from exec, setuid or ambient capabilities ever again.
_SECUREBITS_LOCKED = 0x01 | 0x02 | 0x04 | 0x08 | 0x20 | 0x40 | 0x80
_CAPABILITY_VERSION_3 = 0x20080522
_LAST_CAP = 63


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


def drop_capabilities():
    """Stay uid 0 but give up every capability, for good (for when no other uid can run Python).

    What is left is an ordinary user that happens to own root's files; Landlock then keeps it
    out of them.
    """
    prctl(PR_SET_SECUREBITS, _SECUREBITS_LOCKED)
    for cap in range(_LAST_CAP + 1):
        if _libc.prctl(PR_CAPBSET_DROP, ctypes.c_ulong(cap), 0, 0, 0) < 0 and cap < 32:
            _check(-1, f"prctl(PR_CAPBSET_DROP, {cap})")
    _libc.prctl(PR_CAP_AMBIENT, ctypes.c_ulong(PR_CAP_AMBIENT_CLEAR_ALL), 0, 0, 0)
    header = _CapHeader(_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    _check(_libc.capset(ctypes.byref(header), data), "capset")


def drop_privileges(uid, gid):
    """Become uid/gid with no supplementary groups (only meaningful when running as root)."""
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    if os.getuid() != uid or os.geteuid() != uid:
        raise SandboxError(0, f"could not drop to uid {uid}")


def address_space_in_use():
    """This process's current virtual memory size in bytes (VmSize)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    raise SandboxError(0, "no VmSize in /proc/self/status")
