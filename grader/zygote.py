"""The zygote: the clean process every child is forked from.

The worker (grader.worker) forks it once, right after importing torch and what student code
commonly imports, and after entering the namespaces' file system view, before it reads any
request: the zygote's memory holds the grader's code and libraries and nothing of any
submission, and it never receives any. Its one job, on the worker's word, is to fork a child
and, when the worker says the child is done, to reap it and pass on its exit status:

    worker -> zygote   b"F" + descriptors (SCM_RIGHTS): the child's request pipe (read end),
                       its output and result pipes (write ends), its cgroup.procs, if any
    zygote -> worker   the child's pid
    worker -> zygote   b"R" (the worker has collected the child and killed what was left)
    zygote -> worker   the child's wait status

The child reads its request (the submission's module path, its group's inputs, its limits)
from the worker through its own pipe and sends its output and result to the worker through
theirs: no submission's data ever passes through the zygote, so no child can find another
submission's data in the memory it was forked with. Forking the zygote, which has imported
torch but run no tensor work on more than one thread, costs what forking the worker did
(FIELD-NOTES: 7-14 ms).
"""
import gc
import os
import signal
import socket
import struct
import sys

import torch

# Common imports of student code, loaded before any fork: cheaper children, and where the
# sandbox user cannot read the Python installation and no namespace can show it, what is
# already loaded still works.
import collections  # noqa: F401,E402
import copy  # noqa: F401,E402
import functools  # noqa: F401,E402
import itertools  # noqa: F401,E402
import math  # noqa: F401,E402
import random  # noqa: F401,E402
import statistics  # noqa: F401,E402
import typing  # noqa: F401,E402

import numpy  # noqa: F401,E402
import torch.func  # noqa: F401,E402
import torch.nn.functional  # noqa: F401,E402

from grader import child, groups, namespaces, sandbox  # noqa: F401,E402 -- groups: the children's test code

FORK, REAP = b"F", b"R"
MAX_FDS = 4


class Zygote:
    """In the worker: the zygote process and the socket to it."""

    def __init__(self, pid_namespaces, no_namespaces_why=""):
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                ours.close()
                _serve(theirs, pid_namespaces, no_namespaces_why)
            except BaseException:  # noqa: BLE001 -- the zygote never outlives its worker
                code = 1
            finally:
                os._exit(code)
        theirs.close()
        self.pid, self._socket = pid, ours

    def fork(self, fds):
        """Have the zygote fork a child holding `fds`; returns the child's pid."""
        socket.send_fds(self._socket, [FORK], fds)
        return struct.unpack("=i", self._receive(4))[0]

    def reap(self):
        """Have the zygote reap the child (killed or exited by now); returns its wait status."""
        self._socket.send(REAP)
        return struct.unpack("=i", self._receive(4))[0]

    def _receive(self, size):
        data = self._socket.recv(size)
        if len(data) != size:
            raise RuntimeError("the grader's zygote process stopped")
        return data


def preload_for_private_python(no_namespaces_why):
    """Without namespaces, where the sandbox user cannot read the Python installation, load
    what code commonly needs now, before any fork; say so once."""
    if os.geteuid() != 0 or all(sandbox.world_readable(p) for p in child.PYTHON_PATHS):
        return
    import cProfile  # noqa: F401
    import encodings.idna  # noqa: F401

    torch.func.grad(lambda x: (x * x).sum())(torch.ones(1, dtype=torch.float64))
    private = [p for p in child.PYTHON_PATHS if not sandbox.world_readable(p)]
    print(f"grade.py: note: {no_namespaces_why}, and the sandbox user cannot read "
          f"{', '.join(private)}; submissions can import only what the grader preloads (run the "
          "grader as root where namespaces are allowed, or install Python where every user can "
          "read it, to lift this)", file=sys.stderr)


def _serve(connection, pid_namespaces, no_namespaces_why):
    """The zygote's loop (see the module docstring)."""
    sandbox.prctl(sandbox.PR_SET_PDEATHSIG, signal.SIGKILL)
    if not pid_namespaces:
        preload_for_private_python(no_namespaces_why)
    forker = namespaces.PidNamespaces() if pid_namespaces else None
    gc.freeze()  # children then leave the loaded objects' pages shared instead of copying them
    while True:
        message, fds, _, _ = socket.recv_fds(connection, 1, MAX_FDS)
        if message != FORK:
            return
        pid = forker.fork() if forker is not None else os.fork()
        if pid == 0:
            code = 0
            try:
                connection.close()
                child.main(*fds)
            except BaseException as error:  # noqa: BLE001 -- report anything, then leave
                code = 70
                try:
                    os.write(2, f"\ngrader child: {type(error).__name__}: {error}\n".encode())
                except OSError:
                    pass
            finally:
                os._exit(code)
        for fd in fds:
            os.close(fd)
        connection.send(struct.pack("=i", pid))
        if connection.recv(1) != REAP:
            os.kill(pid, signal.SIGKILL)
            return
        _, status = os.waitpid(pid, 0)
        connection.send(struct.pack("=i", status))

