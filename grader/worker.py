"""The worker: the supervisor of one job slot. It relays requests and replies and watches each
child; it never forks a child itself.

Started by the grader as a fresh interpreter (`python -m grader.worker --run-root DIR`) with a
clean environment, so it holds no secret: no seed, no expected values, only the inputs it is sent.
Before it reads any request, it enters the walls every child shares and forks the zygote
(grader.zygote), which imports what children need and forks each child; the worker itself
then holds submissions' data (requests, children's output and replies) but no child is ever
forked from it. The process model, in full: docs/process-model.md.

Where namespaces are available (see grader.namespaces), the worker moves at start into a file
system that holds only the Python installation, the system libraries and the run folder, with no
network, and each child is process 1 of its own PID namespace (and has IPC and mount namespaces
of its own), joined to a memory cgroup of its own: whatever a child starts ends with it.
Elsewhere the worker is a child subreaper and kills what a child leaves behind (its uid's
processes, through the reaper, and orphans, which come to the worker, not to the zygote).

Protocol on stdin/stdout: `grader.wire` messages framed by `wire.send`/`wire.receive`. A request's
meta names the group, the module, the scratch folder and the limits; its arrays are the group's
inputs; the worker passes both to the child through the child's own pipe. The reply's meta is the
supervision report (status, exit code, output kept, whether the walls were up and the import had
finished); its one array, `result`, holds the child's own message as raw bytes, for the grader
to decode.
"""
import argparse
import os
import selectors
import signal
import sys
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

from grader import child, wire, zygote  # noqa: E402

OUTPUT_KEPT = 16 * 1024
RESULT_CAP = 64 << 20
REQUEST_CAP = child.REQUEST_CAP
KILL_ROUNDS = 50
CHILD_CGROUPS = None  # cgroup.ChildCgroups of the slot's memory cgroup, where there is one
ZYGOTE = None  # the zygote.Zygote, forked by main() before the first request


def supervise(request, arrays):
    """Have the zygote fork a child, hand it its request, collect its output and result under
    a wall-clock limit, then clean up."""
    out_r, out_w = os.pipe()
    result_r, result_w = os.pipe()
    request_r, request_w = os.pipe()
    fds = [request_r, out_w, result_w]
    cgroup_name = None
    if CHILD_CGROUPS is not None:
        cgroup_name, join = CHILD_CGROUPS.create(request["memory_mb"] << 20)
        fds.append(join)
    message = wire.framed(wire.encode({**request, "namespaces": NAMESPACES,
                                       "cgroup": CHILD_CGROUPS is not None}, arrays))
    started = time.monotonic()
    try:
        pid = ZYGOTE.fork(fds)
    finally:
        for fd in fds:
            os.close(fd)
    report, result = collect(pid, request_w, message, out_r, result_r,
                             started + request["timeout"])
    wait_status = ZYGOTE.reap()
    if os.WIFSIGNALED(wait_status):
        report["signal"] = signal.Signals(os.WTERMSIG(wait_status)).name
    else:
        report["exit_code"] = os.WEXITSTATUS(wait_status)
    report["seconds"] = round(time.monotonic() - started, 4)
    if cgroup_name is not None:
        report["oom_killed"] = CHILD_CGROUPS.oom_killed(cgroup_name)
        CHILD_CGROUPS.remove(cgroup_name)
    report["walls_up"] = result[:1] == child.WALLS_UP
    report["imported"] = report["walls_up"] and result[1:2] == child.IMPORTED
    if not NAMESPACES:  # with namespaces, the kernel has already ended them all
        kill_leftovers(request.get("uid"), request.get("gid"))
    return report, result[2:] if report["imported"] else b""


def collect(pid, request_w, message, out_r, result_r, deadline):
    """Write the child's request, read its output (keeping the first OUTPUT_KEPT bytes) and
    result until it ends, then kill it and its process group. The zygote reaps it after."""
    selector = selectors.DefaultSelector()
    pidfd = os.pidfd_open(pid)  # the child stays a zombie until the zygote reaps it
    os.set_blocking(request_w, False)
    unsent = memoryview(message)
    selector.register(request_w, selectors.EVENT_WRITE, "request")
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
        open_pipes = [k for k in selector.get_map().values() if k.data in ("output", "result")]
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
            if key.data == "request":
                try:
                    unsent = unsent[os.write(request_w, unsent):]
                except BlockingIOError:
                    continue
                except OSError:  # the child is gone, or closed its end: it ends without it
                    unsent = unsent[:0]
                if not unsent:
                    selector.unregister(request_w)
                    os.close(request_w)
                    request_w = None
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
    for kill in (os.killpg, lambda _, sig: signal.pidfd_send_signal(pidfd, sig)):
        try:
            kill(pid, signal.SIGKILL)
        except OSError:
            pass
    for fd in (out_r, result_r, pidfd, request_w):
        if fd is not None:
            os.close(fd)
    report = {"status": status or "exited", "output": output.decode("utf-8", "replace"),
              "output_bytes": output_bytes, "result_overflow": result_overflow}
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
    spared = {REAPER.pid, ZYGOTE.pid} if REAPER else {ZYGOTE.pid}
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
    global CHILD_CGROUPS
    sandbox.prctl(sandbox.PR_SET_CHILD_SUBREAPER, 1)
    sandbox.prctl(sandbox.PR_SET_DUMPABLE, 0)
    if not NAMESPACES:
        return
    if cgroup:
        CHILD_CGROUPS = cgroup_module.ChildCgroups(cgroup)
    namespaces.enter_view(os.path.join(run_root, f"view-{os.getpid()}"),
                          read_paths=child.PYTHON_PATHS + child.DEVICES + ["/proc"],
                          write_paths=[run_root])


def main(argv=None):
    global ZYGOTE
    parser = argparse.ArgumentParser(prog="python -m grader.worker")
    parser.add_argument("--run-root", required=True, help="the grader's run folder")
    parser.add_argument("--cgroup", help="the slot's memory cgroup folder, if any")
    args = parser.parse_args(argv)
    enter_walls(args.run_root, args.cgroup)
    # Before the first request: the zygote's memory never holds any submission's data.
    ZYGOTE = zygote.Zygote(pid_namespaces=NAMESPACES, no_namespaces_why=NO_NAMESPACES_WHY)
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
