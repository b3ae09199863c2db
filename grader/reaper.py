"""A small root helper that kills every process of a sandbox uid, on request.

The worker asks it after every child, so that nothing a submission started survives, whatever
session or process group it moved to. It is forked before the worker imports torch: forking a
small process costs a fraction of a millisecond, forking the worker several.
"""
import os
import signal
import struct

from grader import sandbox


class Reaper:
    def __init__(self):
        request_r, request_w = os.pipe()
        ack_r, ack_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                os.close(request_w)
                os.close(ack_r)
                sandbox.prctl(sandbox.PR_SET_PDEATHSIG, signal.SIGKILL)
                _serve(request_r, ack_w)
            except BaseException:  # noqa: BLE001 -- the helper must never outlive its purpose
                code = 1
            finally:
                os._exit(code)
        os.close(request_r)
        os.close(ack_w)
        self.pid, self._requests, self._acks = pid, request_w, ack_r

    def kill_uid(self, uid, gid):
        """Kill every process running as `uid`; returns when they have been signalled."""
        os.write(self._requests, struct.pack(">II", uid, gid))
        if os.read(self._acks, 1) != b"k":
            raise RuntimeError("the grader's reaper process stopped")


def _serve(requests, acks):
    while True:
        request = os.read(requests, 8)
        if len(request) < 8:
            return
        uid, gid = struct.unpack(">II", request)
        pid = os.fork()
        if pid == 0:
            try:
                sandbox.drop_privileges(uid, gid)
                os.kill(-1, signal.SIGKILL)  # every process of this uid but the caller
            finally:
                os._exit(0)
        os.waitpid(pid, 0)
        os.write(acks, b"k")
