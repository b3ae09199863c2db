"""Linux namespaces: walls that end with the process they hold.

Where the grader runs as root on Linux and the kernel lets it create namespaces (a plain machine,
a VM, a container with CAP_SYS_ADMIN), each worker enters, once, at start:

- a mount namespace whose root is a fresh tmpfs holding only what a child may see: the Python
  installation and the system libraries (read-only), the grader's run folder (submissions, scratch
  folders), /dev/null, /dev/zero, /dev/urandom and /proc. No socket, shared-memory file, home folder
  or instructor file of the host is in it. The Python folders keep their paths, so a Python that
  lives in a private home (/root/.pyenv) is reachable for the sandbox uid without opening /root;
- a network namespace with no interface but a loopback that is down: no TCP, UDP or Unix socket
  of the host (abstract Unix sockets belong to a network namespace) can be reached.

and every child (forked by the worker's zygote) gets its own

- PID namespace, in which the child is process 1: when it ends, the kernel kills every process
  it started, whatever session, group or uid they moved to;
- IPC namespace: System V shared memory, semaphores and message queues it creates vanish with it
  and no other child, submission or host process can see them;
- mount namespace, in which its scratch folder is a tmpfs of its own (`private_scratch`): what
  it writes is bounded in bytes and files, charged to its memory cgroup, never on the host's
  disk, and gone when it ends.

Where namespaces are unavailable (not root, macOS, a container without CAP_SYS_ADMIN such as
Docker's default profile), `available()` says why and the grader falls back to the uid, the
rlimits and Landlock; README's "What the grader guarantees" lists what that loses.
"""
import ctypes
import os
import sys

CLONE_NEWNS = 0x00020000
CLONE_NEWIPC = 0x08000000
CLONE_NEWNET = 0x40000000
CLONE_NEWPID = 0x20000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
MNT_DETACH = 2
_SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41}

_libc = ctypes.CDLL(None, use_errno=True)


class NamespaceError(OSError):
    """A namespace could not be created or set up."""


def _check(result, what):
    if result != 0:
        errno = ctypes.get_errno()
        raise NamespaceError(errno, f"{what}: {os.strerror(errno)}")


def unshare(flags):
    _check(_libc.unshare(ctypes.c_int(flags)), f"unshare({flags:#x})")


def _mount(source, target, fstype, flags, data=None):
    _check(_libc.mount(source and source.encode(), target.encode(), fstype and fstype.encode(),
                       ctypes.c_ulong(flags), data and data.encode()), f"mount({target})")


def available():
    """(True, "") where this process may create every namespace the walls use, else (False, why)."""
    if not sys.platform.startswith("linux"):
        return False, f"namespaces are Linux only (this is {sys.platform})"
    if os.geteuid() != 0:
        return False, "namespaces need root (the grader runs as a normal user)"
    if os.environ.get("GRADER_NO_NAMESPACES"):
        return False, "GRADER_NO_NAMESPACES is set"
    if os.uname().machine not in _SYS_PIVOT_ROOT:
        return False, f"no pivot_root number known for {os.uname().machine}"
    pid = os.fork()
    if pid == 0:  # try in a throw-away child, so that a refusal changes nothing here
        try:
            unshare(CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWPID)
            _mount(None, "/", None, MS_REC | MS_PRIVATE)
            code = 0
        except BaseException:  # noqa: BLE001 -- any failure means "not available"
            code = 1
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        return False, "the kernel or the container refused to create namespaces (no CAP_SYS_ADMIN?)"
    return True, ""


def enter_view(root, read_paths, write_paths):
    """Move this process into new mount and network namespaces whose whole file system is a
    tmpfs at `root` holding `read_paths` (read-only) and `write_paths` (writable) at their own
    paths, then make `root` the root. Nothing else of the host stays reachable."""
    unshare(CLONE_NEWNS | CLONE_NEWNET)
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    os.makedirs(root, mode=0o755, exist_ok=True)
    _mount("tmpfs", root, "tmpfs", MS_NOSUID, "mode=755,size=4m")  # /dev's nodes live on it
    for path in write_paths:  # not recursive: `root` itself may lie inside one of them
        _bind(root, path, readonly=False, recursive=False)
    for path in read_paths:
        _bind(root, path, readonly=True)
    old = os.path.join(root, ".old-root")
    os.mkdir(old)
    _check(_libc.syscall(_SYS_PIVOT_ROOT[os.uname().machine], root.encode(), old.encode()),
           "pivot_root")
    os.chdir("/")
    _check(_libc.umount2(b"/.old-root", MNT_DETACH), "umount(old root)")
    os.rmdir("/.old-root")
    _mount(None, "/", None, MS_REMOUNT | MS_RDONLY | MS_NOSUID)


def _bind(root, path, readonly, recursive=True):
    """Bind `path` (a folder or a file) at the same path under `root`; a link (such as /lib64 ->
    usr/lib64, where the dynamic loader lives) becomes the same link beside its bound target."""
    if not os.path.exists(path):
        return
    if os.path.islink(path):
        link = root + os.path.abspath(path)
        if not os.path.lexists(link):
            os.makedirs(os.path.dirname(link), mode=0o755, exist_ok=True)
            os.symlink(os.readlink(path), link)
        path = os.path.realpath(path)
    target = root + path
    if os.path.isdir(path):
        os.makedirs(target, mode=0o755, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(target), mode=0o755, exist_ok=True)
        if not os.path.exists(target):
            open(target, "w").close()
    if os.path.ismount(target):  # an earlier bind of a folder above already holds it
        return
    _mount(path, target, None, MS_BIND | (MS_REC if recursive else 0))
    if readonly:
        device = path.startswith("/dev/")
        _mount(None, target, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID
               | (0 if device else MS_NODEV))


def private_scratch(folder, size, files, uid):
    """In a new mount namespace: replace `folder` by a tmpfs of at most `size` bytes and
    `files` inodes, owned by `uid` (root when None), holding a copy of what `folder` held
    (a notebook's work folder comes filled)."""
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    held = []
    for root, folders, names in os.walk(folder):
        rel = os.path.relpath(root, folder)
        held += [(os.path.join(rel, n), None) for n in folders]
        for name in names:
            with open(os.path.join(root, name), "rb") as f:
                held.append((os.path.join(rel, name), f.read()))
    owner = 0 if uid is None else uid
    _mount("tmpfs", folder, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
           f"size={size},nr_inodes={files},mode=0700,uid={owner},gid={owner}")
    for rel, data in held:
        path = os.path.normpath(os.path.join(folder, rel))
        if data is None:
            os.makedirs(path, mode=0o755, exist_ok=True)
        else:
            with open(path, "wb") as f:
                f.write(data)
        os.chown(path, owner, owner)


class PidNamespaces:
    """Fork children that are process 1 of a PID namespace of their own.

    unshare(CLONE_NEWPID) changes only the namespace of the next child; `fork` puts it back to
    this process's own right after, so every child gets a fresh one.
    """

    def __init__(self):
        self._own = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)

    def fork(self):
        unshare(CLONE_NEWPID)
        try:
            return os.fork()
        finally:
            if os.getpid() != 1:  # in the parent (the child is process 1 of its namespace)
                _check(_libc.setns(self._own, CLONE_NEWPID), "setns(own PID namespace)")
