"""The long-lived worker: imports torch once, then forks one sandboxed child per test group.

Started by the grader as a fresh interpreter (`python -m grader.worker --run-root DIR`) with a
clean environment, so it holds no secret: no seed, no expected values, only the inputs it is sent.
It keeps torch at one thread before any tensor work (a fork after multi-threaded torch work can
hang the child).

Where namespaces are available (see grader.namespaces), the worker moves at start into a file
system that holds only the Python installation, the system libraries and the run folder, with no
network, and each child is process 1 of its own PID and IPC namespaces, joined to the slot's
memory cgroup: whatever a child starts ends with it. Elsewhere the worker is a child subreaper and
kills what a child leaves behind (its uid's processes, through the reaper, and orphans).

Protocol on stdin/stdout: `grader.wire` messages framed by `wire.send`/`wire.receive`. A request's
meta names the group, the module, the scratch folder and the limits; its arrays are the group's
inputs. The reply's meta is the supervision report (status, exit code, output kept, whether the
walls were up and the import had finished); its one array, `result`, holds the child's own
message as raw bytes, for the grader to decode.
"""
import argparse
import gc
import os
import selectors
import signal
import sys
import tempfile
import time

from grader import cgroup as cgroup_module
from grader import namespaces, reaper, sandbox

if __name__ == "__main__":  # decided while this process is still small (before torch)
    NAMESPACES, NO_NAMESPACES_WHY = namespaces.available()
    # Without namespaces, a small root helper kills a child's uid after it (see grader.reaper).
    REAPER = reaper.Reaper() if os.geteuid() == 0 and not NAMESPACES else None
else:
    NAMESPACES, NO_NAMESPACES_WHY, REAPER = False, "not the worker process", None

import torch  # noqa: E402

torch.set_num_threads(1)

# Common imports of student code, loaded before any fork: cheaper children, and where the
# sandbox user cannot read the Python installation and no namespace can show it, what is
# already loaded still works.
import collections  # noqa: E402,F401
import copy  # noqa: E402,F401
import functools  # noqa: E402,F401
import itertools  # noqa: E402,F401
import math  # noqa: E402,F401
import random  # noqa: E402,F401
import statistics  # noqa: E402,F401
import typing  # noqa: E402,F401

import numpy  # noqa: E402,F401
import torch.func  # noqa: E402,F401
import torch.nn.functional  # noqa: E402,F401

from grader import child, groups, wire  # noqa: E402,F401 -- groups: the children's test code

OUTPUT_KEPT = 16 * 1024
RESULT_CAP = 64 << 20
REQUEST_CAP = 256 << 20
OPEN_FILES = 256
FILE_SIZE = 64 << 20
PROCESSES = 64
KILL_ROUNDS = 50
ADDRESS_SLACK = 2 << 30  # reservations beyond real use, where a cgroup counts the real use
DEVICES = ["/dev/null", "/dev/zero", "/dev/urandom", "/dev/random"]
PYTHON_PATHS = sandbox.python_paths()  # read now: sysconfig imports lazily
WALLS_UP = b"W"  # first byte on the result pipe: every wall is up, the submission's code not yet run
IMPORTED = b"I"  # second byte: the submission's import has finished
PID_NAMESPACES = None  # set by main() where namespaces are available
CHILD_CGROUPS = None  # cgroup.ChildCgroups of the slot's memory cgroup, where there is one
_JOIN_CGROUP = None  # in a new child: the descriptor of its own cgroup's cgroup.procs


def preload_for_private_python():
    """Without namespaces, where the sandbox user cannot read the Python installation, load
    what code commonly needs now, before any fork; say so once."""
    if os.geteuid() != 0 or all(sandbox.world_readable(p) for p in PYTHON_PATHS):
        return
    import cProfile  # noqa: F401
    import encodings.idna  # noqa: F401
    import socket  # noqa: F401

    torch.func.grad(lambda x: (x * x).sum())(torch.ones(1, dtype=torch.float64))
    private = [p for p in PYTHON_PATHS if not sandbox.world_readable(p)]
    print(f"grade.py: note: {NO_NAMESPACES_WHY}, and the sandbox user cannot read "
          f"{', '.join(private)}; submissions can import only what the grader preloads (run the "
          "grader as root where namespaces are allowed, or install Python where every user can "
          "read it, to lift this)", file=sys.stderr)


def child_main(request, arrays, out_fd, result_fd):
    """In the forked child: put up the walls, run the group, send the result, exit."""
    os.setpgid(0, 0)
    sandbox.prctl(sandbox.PR_SET_PDEATHSIG, signal.SIGKILL)
    if PID_NAMESPACES is not None:
        namespaces.unshare(namespaces.CLONE_NEWIPC)
    if _JOIN_CGROUP is not None:
        os.write(_JOIN_CGROUP, b"0")  # "0": this process; its descendants follow it
        os.close(_JOIN_CGROUP)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(out_fd, 1)
    os.dup2(out_fd, 2)
    os.closerange(3, result_fd)
    os.closerange(result_fd + 1, 65536)
    scratch = request["scratch"]
    os.chdir(scratch)
    os.environ.clear()
    os.environ.update({"HOME": scratch, "TMPDIR": scratch, "MPLCONFIGDIR": scratch,
                       "JUPYTER_RUNTIME_DIR": scratch, "JUPYTER_CONFIG_DIR": scratch,
                       "JUPYTER_DATA_DIR": scratch, "IPYTHONDIR": scratch,
                       "JUPYTER_PLATFORM_DIRS": "1", "PATH": "/usr/bin:/bin",
                       "LANG": "C.UTF-8", "OMP_NUM_THREADS": "1"})
    tempfile.tempdir = scratch  # the worker computed it before TMPDIR changed
    sandbox.set_limits(address_space=address_space_limit(request),
                       cpu_seconds=int(request["timeout"]) + 5, file_size=FILE_SIZE,
                       open_files=OPEN_FILES,
                       processes=PROCESSES if request.get("uid") is not None else None)
    sandbox.prctl(sandbox.PR_SET_NO_NEW_PRIVS, 1)
    sandbox.apply_landlock(read_paths=PYTHON_PATHS + request["read_paths"] + DEVICES,
                           write_paths=[scratch])
    if request.get("uid") is not None:  # after Landlock, which opens the paths it allows
        sandbox.drop_privileges(request["uid"], request["gid"])
        # A change of uid clears the parent-death signal: set it again, or a child whose worker
        # is killed (Ctrl-C) would run on.
        sandbox.prctl(sandbox.PR_SET_PDEATHSIG, signal.SIGKILL)
    elif os.geteuid() == 0:  # no uid of our own can run Python here: root without its powers
        sandbox.drop_capabilities()
    sys.path[:] = [p for p in sys.path if p and _under(os.path.abspath(p), PYTHON_PATHS)]
    sys.path.append(request["standin"])
    gc.disable()
    os.write(result_fd, WALLS_UP)  # from here on, whatever happens is the submission's doing

    def imported():
        os.write(result_fd, IMPORTED)

    if request["group"] == "notebook":
        imported()
        meta, result_arrays = child.run_notebook(request["notebook_path"], scratch,
                                                 request["timeout"])
    else:
        meta, result_arrays = child.run(request["group"], request["module_path"],
                                        request["meta"], arrays, on_imported=imported)
    message = wire.encode(meta, result_arrays)
    view = memoryview(message)
    while view:
        view = view[os.write(result_fd, view):]
    os.close(result_fd)
    sys.stdout.flush()
    sys.stderr.flush()


def _under(path, folders):
    """True when `path` is one of `folders` or lies inside one (lib-dynload inside the stdlib)."""
    return any(path == f or path.startswith(f.rstrip(os.sep) + os.sep) for f in folders)


def address_space_limit(request):
    """RLIMIT_AS for a child. With a memory cgroup, the cgroup measures real use and this is a
    backstop far above it (torch reserves much more address space than it touches); without one,
    it is the only memory wall: --memory above what the worker already maps, four times that
    for a notebook, whose kernel is a new interpreter that imports torch itself."""
    memory = request["memory_mb"] << 20
    if request["group"] == "notebook":
        return sandbox.RLIM_INFINITY if CHILD_CGROUPS is not None else 4 * memory
    slack = ADDRESS_SLACK if CHILD_CGROUPS is not None else 0
    return sandbox.address_space_in_use() + memory + slack


def supervise(request, arrays):
    """Fork the child, collect its output and result under a wall-clock limit, then clean up."""
    global _JOIN_CGROUP
    out_r, out_w = os.pipe()
    result_r, result_w = os.pipe()
    cgroup_name = None
    if CHILD_CGROUPS is not None:
        cgroup_name, _JOIN_CGROUP = CHILD_CGROUPS.create(request["memory_mb"] << 20)
    started = time.monotonic()
    pid = PID_NAMESPACES.fork() if PID_NAMESPACES is not None else os.fork()
    if pid == 0:
        code = 0
        try:
            os.close(out_r)
            os.close(result_r)
            child_main(request, arrays, out_w, result_w)
        except BaseException as error:  # noqa: BLE001 -- report anything, then leave
            code = 70
            try:
                os.write(2, f"\ngrader child: {type(error).__name__}: {error}\n".encode())
            except OSError:
                pass
        finally:
            os._exit(code)
    os.close(out_w)
    os.close(result_w)
    if _JOIN_CGROUP is not None:
        os.close(_JOIN_CGROUP)
        _JOIN_CGROUP = None
    try:
        os.setpgid(pid, pid)
    except OSError:
        pass  # the child already did it, or already exited
    report, result = collect(pid, out_r, result_r, started + request["timeout"])
    report["seconds"] = round(time.monotonic() - started, 4)
    if cgroup_name is not None:
        report["oom_killed"] = CHILD_CGROUPS.oom_killed(cgroup_name)
        CHILD_CGROUPS.remove(cgroup_name)
    report["walls_up"] = result[:1] == WALLS_UP
    report["imported"] = report["walls_up"] and result[1:2] == IMPORTED
    if PID_NAMESPACES is None:  # with namespaces, the kernel has already ended them all
        kill_leftovers(request.get("uid"), request.get("gid"))
    return report, result[2:] if report["imported"] else b""


def collect(pid, out_r, result_r, deadline):
    """Read output (keeping the first OUTPUT_KEPT bytes) and the result until the child ends."""
    selector = selectors.DefaultSelector()
    pidfd = os.pidfd_open(pid)
    selector.register(out_r, selectors.EVENT_READ, "output")
    selector.register(result_r, selectors.EVENT_READ, "result")
    selector.register(pidfd, selectors.EVENT_READ, "exit")
    output, output_bytes, result, result_overflow = bytearray(), 0, bytearray(), False
    status, exited = None, False
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            status = "timeout"
            break
        open_pipes = [k for k in selector.get_map().values() if k.data != "exit"]
        if exited and not open_pipes:
            break
        events = selector.select(min(remaining, 0.05) if exited else remaining)
        if exited and not events:
            break  # the child is gone; something it left behind holds the pipes open
        for key, _ in events:
            if key.data == "exit":
                selector.unregister(pidfd)
                exited = True
                continue
            data = os.read(key.fd, 1 << 16)
            if not data:
                selector.unregister(key.fd)
            elif key.data == "output":
                output_bytes += len(data)
                output += data[:max(0, OUTPUT_KEPT - len(output))]
            elif len(result) + len(data) > RESULT_CAP:
                result_overflow = True
            else:
                result += data
    selector.close()
    for fd in (out_r, result_r, pidfd):
        os.close(fd)
    for kill in (os.killpg, os.kill):
        try:
            kill(pid, signal.SIGKILL)
        except OSError:
            pass
    _, wait_status = os.waitpid(pid, 0)
    report = {"status": status or "exited", "output": output.decode("utf-8", "replace"),
              "output_bytes": output_bytes, "result_overflow": result_overflow}
    if os.WIFSIGNALED(wait_status):
        report["signal"] = signal.Signals(os.WTERMSIG(wait_status)).name
    else:
        report["exit_code"] = os.WEXITSTATUS(wait_status)
    return report, bytes(result)


def children_of(pid):
    """Processes whose parent is `pid` (those left behind are reparented to this subreaper)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        if int(stat[stat.rindex(")") + 2:].split()[1]) == pid:
            found.append(int(entry))
    return found


def kill_leftovers(uid, gid):
    """Kill every process the child left behind: its uid's, and orphans reparented to us."""
    if uid is not None:
        REAPER.kill_uid(uid, gid)
    spared = {REAPER.pid} if REAPER else set()
    for _ in range(KILL_ROUNDS):
        leftovers = [pid for pid in children_of(os.getpid()) if pid not in spared]
        if not leftovers:
            return
        for stray in leftovers:
            try:
                os.kill(stray, signal.SIGKILL)
            except OSError:
                pass
        for stray in leftovers:
            try:
                os.waitpid(stray, 0)
            except ChildProcessError:
                pass


def enter_walls(run_root, cgroup):
    """Put the worker itself behind the walls every child shares (see the module docstring)."""
    global PID_NAMESPACES, CHILD_CGROUPS
    sandbox.prctl(sandbox.PR_SET_CHILD_SUBREAPER, 1)
    sandbox.prctl(sandbox.PR_SET_DUMPABLE, 0)
    if not NAMESPACES:
        preload_for_private_python()
        return
    if cgroup:
        CHILD_CGROUPS = cgroup_module.ChildCgroups(cgroup)
    PID_NAMESPACES = namespaces.PidNamespaces()
    namespaces.enter_view(os.path.join(run_root, f"view-{os.getpid()}"),
                          read_paths=PYTHON_PATHS + DEVICES + ["/proc"], write_paths=[run_root])


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m grader.worker")
    parser.add_argument("--run-root", required=True, help="the grader's run folder")
    parser.add_argument("--cgroup", help="the slot's memory cgroup folder, if any")
    args = parser.parse_args(argv)
    enter_walls(args.run_root, args.cgroup)
    gc.freeze()  # children then leave the loaded objects' pages shared instead of copying them
    requests, replies = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # a stray print must not corrupt the protocol
    while True:
        message = wire.receive(requests, REQUEST_CAP)
        if message is None:
            return 0
        request, arrays = wire.decode(message, REQUEST_CAP)
        report, result = supervise(request, arrays)
        result_array = torch.frombuffer(bytearray(result), dtype=torch.uint8) if result else \
            torch.empty(0, dtype=torch.uint8)
        wire.send(replies, wire.encode(report, {"result": result_array}))


if __name__ == "__main__":
    sys.exit(main())
