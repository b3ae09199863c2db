"""Memory cgroups: `--memory` measured as memory really used, shared memory included.

Address-space limits (RLIMIT_AS) count what a process reserves, not what it uses: torch and its
thread pools reserve far more than they touch, so a cap low enough to matter breaks a correct
notebook. A cgroup counts the pages a process and its descendants actually use, System V and
tmpfs shared memory among them, and the kernel's OOM killer ends a child that goes over.

The grader makes one cgroup per job slot (`create_slot`, no limit of its own); its worker makes
one inside it for every child (`ChildCgroups`), capped at that child's --memory. A child of its
own, not the slot's: the kernel frees a finished child's IPC namespace, and the shared memory
in it, a little later, and what is still charged then must not count against the next child.
The worker opens the slot's folder before it leaves the host's file system and works through
that descriptor; a child joins its cgroup by writing "0" (itself) to its `cgroup.procs`.

cgroup v2 (`memory.max`) where the grader's own cgroup offers the memory controller, else
cgroup v1 (`memory.limit_in_bytes`); `create_slot` returns None where neither can be written
(not root, macOS, a read-only /sys/fs/cgroup) and the grader falls back to RLIMIT_AS.
"""
import contextlib
import os

ROOT = "/sys/fs/cgroup"
# version: (files that cap memory, the file whose `oom_kill` line counts the kernel's kills)
FILES = {2: (("memory.max", "memory.swap.max"), "memory.events"),
         1: (("memory.limit_in_bytes", "memory.memsw.limit_in_bytes"), "memory.oom_control")}


def _v2_parent():
    try:
        with open("/proc/self/cgroup") as f:
            own = next((line.split(":", 2)[2].strip() for line in f if line.startswith("0::")), None)
    except OSError:
        return None
    for base in (ROOT, os.path.join(ROOT, "unified")):
        parent = os.path.join(base, (own or "/").lstrip("/"))
        try:
            with open(os.path.join(parent, "cgroup.subtree_control")) as f:
                if "memory" in f.read().split():
                    return parent
        except OSError:
            continue
    return None


def create_slot(name):
    """A new memory cgroup folder `name` for a job slot, or None where none can be made."""
    if os.geteuid() != 0 or os.environ.get("GRADER_NO_CGROUP"):
        return None
    parent = _v2_parent()
    candidates = [os.path.join(parent, name)] if parent else []
    if os.path.isfile(os.path.join(ROOT, "memory", "memory.limit_in_bytes")):
        candidates.append(os.path.join(ROOT, "memory", name))
    for path in candidates:
        try:
            os.mkdir(path)
        except FileExistsError:
            pass
        except OSError:
            continue
        if version_of(path):
            if version_of(path) == 2:  # let the children below use the memory controller
                with contextlib.suppress(OSError), open(os.path.join(path, "cgroup.subtree_control"), "w") as f:
                    f.write("+memory")
            return path
        remove_slot(path)
    return None


def version_of(path):
    """2 or 1 for a memory cgroup folder, None when it is neither."""
    for version, (caps, _) in FILES.items():
        if os.path.exists(os.path.join(path, caps[0])):
            return version
    return None


def remove_slot(path):
    """Delete a slot's cgroup and any child cgroup left in it (once no process is left)."""
    for entry in sorted(os.listdir(path)) if os.path.isdir(path) else []:
        if os.path.isdir(os.path.join(path, entry)):
            with contextlib.suppress(OSError):
                os.rmdir(os.path.join(path, entry))
    with contextlib.suppress(OSError):
        os.rmdir(path)


class ChildCgroups:
    """In the worker: a fresh memory cgroup for each child, inside the slot's."""

    def __init__(self, slot_path):
        self.version = version_of(slot_path)
        self._dir = os.open(slot_path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        self._count = 0

    def create(self, limit_bytes):
        """(name, descriptor of its cgroup.procs) of a new cgroup capped at `limit_bytes`."""
        self._count += 1
        name = f"child-{self._count}"
        os.mkdir(name, dir_fd=self._dir)
        for cap in FILES[self.version][0]:
            with contextlib.suppress(FileNotFoundError):  # no swap accounting: no swap file
                fd = os.open(f"{name}/{cap}", os.O_WRONLY, dir_fd=self._dir)
                try:
                    os.write(fd, str(limit_bytes).encode())
                finally:
                    os.close(fd)
        return name, os.open(f"{name}/cgroup.procs", os.O_WRONLY | os.O_CLOEXEC, dir_fd=self._dir)

    def oom_killed(self, name):
        """True when the kernel killed a process of cgroup `name` for going over its limit."""
        try:
            fd = os.open(f"{name}/{FILES[self.version][1]}", os.O_RDONLY, dir_fd=self._dir)
        except OSError:
            return False
        try:
            text = os.read(fd, 4096).decode()
        finally:
            os.close(fd)
        return any(line.split()[1:2] not in (["0"], []) for line in text.splitlines()
                   if line.startswith("oom_kill "))

    def remove(self, name):
        """Delete cgroup `name`; its last processes may still be leaving, so try a while."""
        for _ in range(100):
            try:
                os.rmdir(name, dir_fd=self._dir)
                return
            except FileNotFoundError:
                return
            except OSError:
                os.sched_yield()
