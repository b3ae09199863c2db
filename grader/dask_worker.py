"""What a Dask worker runs for the grader: one request at a time, handed to a local worker process.

This module's functions run inside a Dask worker process (`dask worker`) on a grading machine. A
task gets a request as data: the wire message the grader would write to a local worker (the
group, the limits, the inputs) and the files its paths name (the staged submission, the stand-in,
the scratch folder or the notebook's work folder). It never gets the seed or an expected value:
the grader's process keeps those and judges the raw reply itself (see grader.cluster).

Each Dask worker thread owns a slot as a local grader's job thread does (see grader.batch): a
`python -m grader.worker` process started on first use, its sandbox uid (as root) and its memory
cgroup (where one can be made). A task writes the request's files into a fresh folder under the
slot's run folder, points the request's paths and uid there, runs it through the worker process
and returns the wire-encoded reply; the folder goes afterwards. Before anything, a task compares
this machine's kit (grader.GRADER_VERSION, torch's version) with the grader's and refuses to
grade (KitMismatch) when they differ.
"""
import atexit
import multiprocessing.util
import os
import shutil
import sys
import tempfile
import threading

import torch

import grader
from grader import batch, cgroup, namespaces, sandbox, wire

PATH_FIELDS = ("module_path", "scratch", "standin", "notebook_path")
PREFIX = "two-layer-net-dask-"  # then the Dask worker's pid: its run folder's and cgroups' names
REQUEST_CAP = 256 << 20


class KitMismatch(RuntimeError):
    """This Dask worker's kit is not the grader's: it must not grade."""


def kit():
    """This machine's kit and the walls its slots cannot put up: {"grader", "torch",
    "walls_down"}. Read at call time, so that what the process runs now is what is reported."""
    down = []
    if os.geteuid() != 0:
        down.append("separate sandbox uids (the Dask worker does not run as root)")
    up, why = namespaces.available()
    if not up:
        down.append(f"namespaces and memory cgroups ({why})")
    return {"grader": grader.GRADER_VERSION, "torch": torch.__version__, "walls_down": down}


def describe(k):
    return f"grader {k['grader']}, torch {k['torch']}"


def check_kit(expected):
    """Raise KitMismatch, naming both kits, unless this machine's is `expected`."""
    own = kit()
    if (own["grader"], own["torch"]) != (expected["grader"], expected["torch"]):
        raise KitMismatch(f"this Dask worker's kit is {describe(own)}; the grader's is "
                          f"{describe(expected)}")


class _Slots:
    """This process's slots, one per Dask worker thread, and the run folder they share."""

    def __init__(self):
        self.lock = threading.Lock()
        self.by_thread = {}
        self.locks = []
        self.run_root = None
        self.next_uid = 0
        self.namespaces = None
        self.notebook_as_root = False

    def get(self):
        """This thread's slot, started on first use."""
        ident = threading.get_ident()
        with self.lock:
            if ident in self.by_thread:
                return self.by_thread[ident]
            if self.run_root is None:
                remove_stale(tempfile.gettempdir())
                self.run_root = tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-")
                os.chmod(self.run_root, 0o711)
                self.namespaces = namespaces.available()[0]
                # As batch.Grader decides: without namespaces, where no other uid may run this
                # Python, notebooks run as root stripped of every capability.
                self.notebook_as_root = (os.geteuid() == 0 and not self.namespaces and not all(
                    sandbox.world_readable(p) for p in
                    (os.path.dirname(os.path.realpath(sys.executable)), *sandbox.python_paths())))
                # A worker under a nanny is a multiprocessing child, which ends without atexit
                # but runs multiprocessing's finalizers; a worker without one runs atexit.
                multiprocessing.util.Finalize(None, self.close, exitpriority=10)
                atexit.register(self.close)
            uid = None
            if os.geteuid() == 0:
                start = int(os.environ.get("GRADER_SANDBOX_UID", batch.DEFAULT_SANDBOX_UID))
                uid, lock = sandbox.claim_uid(max(start, self.next_uid))
                self.next_uid = uid + 1
                self.locks.append(lock)
            memory_cgroup = None
            if self.namespaces:
                memory_cgroup = cgroup.create_slot(f"{PREFIX}{os.getpid()}-{len(self.by_thread)}")
                if memory_cgroup is not None and not self.by_thread:
                    remove_stale(os.path.dirname(memory_cgroup))
            slot = batch.Slot(batch.WorkerProcess(self.run_root, memory_cgroup), uid, memory_cgroup)
            self.by_thread[ident] = slot
            return slot

    def replace(self, slot):
        slot.worker.close()
        slot.worker = batch.WorkerProcess(self.run_root, slot.memory_cgroup)

    def close(self):
        with self.lock:
            for slot in self.by_thread.values():
                slot.worker.close()
                if slot.memory_cgroup is not None:
                    cgroup.remove_slot(slot.memory_cgroup)
            for lock in self.locks:
                lock.close()
            self.by_thread.clear()
            if self.run_root is not None:
                shutil.rmtree(self.run_root, ignore_errors=True)
                self.run_root = None


SLOTS = _Slots()


def remove_stale(parent):
    """Remove what Dask workers that were killed on this machine left in `parent`: run folders
    and (empty) memory cgroups named after a pid that is no longer running."""
    for name in os.listdir(parent):
        pid = name[len(PREFIX):].split("-")[0]
        if name.startswith(PREFIX) and pid.isdigit() and not os.path.exists(f"/proc/{pid}"):
            path = os.path.join(parent, name)
            if os.path.isfile(os.path.join(path, "cgroup.procs")):
                cgroup.remove_slot(path)
            else:
                shutil.rmtree(path, ignore_errors=True)


def run_request(message, files, folders, origin, expected_kit):
    """The Dask task: ("reply", wire bytes of (report_meta, arrays)) or ("crash", why).

    message: wire bytes of the request; files: {path relative to `origin`: bytes}; folders: the
    folders (relative to `origin`) to create, the scratch folder among them; origin: the grader's
    run folder, which the request's paths start with; expected_kit: the grader's kit().
    """
    check_kit(expected_kit)
    request, arrays = wire.decode(message, REQUEST_CAP)
    slot = SLOTS.get()
    here = tempfile.mkdtemp(dir=SLOTS.run_root)
    os.chmod(here, 0o711)
    try:
        _materialise(here, files, folders)
        request = relocate(request, origin, here)
        uid = None if request["group"] == "notebook" and SLOTS.notebook_as_root else slot.uid
        request["uid"] = request["gid"] = uid
        if uid is not None:
            for root, dirs, names in os.walk(request["scratch"]):
                for path in [root, *(os.path.join(root, n) for n in names)]:
                    os.chown(path, uid, uid)
        try:
            report_meta, reply = slot.worker.run(request, arrays)
        except batch.WorkerCrash as e:
            SLOTS.replace(slot)
            return "crash", str(e)
        return "reply", wire.encode(report_meta, reply)
    finally:
        shutil.rmtree(here, ignore_errors=True)


def _materialise(here, files, folders):
    """Write the request's folders (0755) and files (0644) under `here`, refusing any path that
    would leave it."""
    for rel in [*folders, *(os.path.dirname(r) for r in files)]:
        target = _inside(here, rel)
        os.makedirs(target, mode=0o755, exist_ok=True)
        os.chmod(target, 0o755)
    for rel, data in files.items():
        target = _inside(here, rel)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(target, 0o644)


def _inside(here, rel):
    target = os.path.normpath(os.path.join(here, rel))
    if os.path.isabs(rel) or not target.startswith(here + os.sep) and target != here:
        raise ValueError(f"request path '{rel}' leaves the request's folder")
    return target


def relocate(request, origin, here):
    """`request` with every path under `origin` (the grader's run folder) moved under `here`;
    a path outside it is the kit's own, the same on every machine."""
    def move(path):
        rel = os.path.relpath(path, origin)
        return path if rel.startswith(os.pardir) else os.path.join(here, rel)

    moved = dict(request)
    for key in PATH_FIELDS:
        if key in moved:
            moved[key] = move(moved[key])
    moved["read_paths"] = [move(p) for p in request.get("read_paths", [])]
    return moved
