"""The child: the process that runs one submission's code, behind every wall.

Forked by the zygote (grader.zygote), `main` reads its request from the worker through its own
pipe, puts up its walls (see `enter_walls`), then imports the submission and runs one test
group (or executes the notebook) and writes the result to the worker through another pipe.
What this process has held: the zygote's memory (the grader's code, no submission's data) and
its own request, nothing else.

The child gets the hidden inputs of one test group (never the expected values, never the seed),
calls the student's functions on fresh copies of them, and returns what they produced as
arrays plus a JSON-able `meta` (errors, flags, call records). Every call is guarded: an
exception, even a BaseException such as SystemExit, becomes a message with the last frames of
its traceback that point into the student's files; the other calls still run.
"""
import ctypes
import gc
import importlib.machinery
import importlib.util
import os
import signal
import sys
import tempfile

import torch

import helpers  # noqa: F401 -- loaded before any fork, so that a submission may import it
from grader import namespaces, notebook, sandbox, seccomp, wire
from grader.calls import MESSAGE_LIMIT, Runner
from grader.groups import BY_NAME
from helpers_lib.errors import headline

MODULE_NAME = "two_layer_net"
REQUEST_CAP = 256 << 20
OPEN_FILES = 256
FILE_SIZE = 64 << 20
PROCESSES = 64
ADDRESS_SLACK = 2 << 30  # reservations beyond real use, where a cgroup counts the real use
SCRATCH_BYTES = 256 << 20  # a child's scratch file system, where namespaces give it one
SCRATCH_FILES = 4096
DEVICES = ["/dev/null", "/dev/zero", "/dev/urandom", "/dev/random"]
PYTHON_PATHS = sandbox.python_paths()  # read now: sysconfig imports lazily
WALLS_UP = b"W"  # first byte on the result pipe: every wall is up, the submission's code not yet run
IMPORTED = b"I"  # second byte: the submission's import has finished
KEYCTL_JOIN_SESSION_KEYRING, KEYCTL_CLEAR = 1, 7
KEY_SPEC_USER_KEYRING, KEY_SPEC_USER_SESSION_KEYRING = -4, -5
_SYS_KEYCTL = seccomp.ARCHES.get(os.uname().machine, (0, {}, 0))[1].get("keyctl")
_libc = ctypes.CDLL(None, use_errno=True)


def main(request_fd, out_fd, result_fd, join_cgroup_fd=None):
    """In the forked child: read the request, put up the walls, run the group, send the result."""
    with os.fdopen(os.dup(request_fd), "rb") as requests:
        request, arrays = wire.decode(wire.receive(requests, REQUEST_CAP), REQUEST_CAP)
    os.close(request_fd)
    enter_walls(request, out_fd, result_fd, join_cgroup_fd)
    os.write(result_fd, WALLS_UP)  # from here on, whatever happens is the submission's doing

    def imported():
        os.write(result_fd, IMPORTED)

    if request["group"] == "notebook":
        imported()
        meta, result_arrays = run_notebook(request["notebook_path"], request["scratch"],
                                           request["timeout"])
    else:
        meta, result_arrays = run(request["group"], request["module_path"], request["meta"],
                                  arrays, on_imported=imported, standins=[request["standin"]])
    message = wire.encode(meta, result_arrays)
    view = memoryview(message)
    while view:
        view = view[os.write(result_fd, view):]
    os.close(result_fd)
    sys.stdout.flush()
    sys.stderr.flush()


def enter_walls(request, out_fd, result_fd, join_cgroup_fd):
    """Every wall, in an order where each step still has the rights it needs.

    With namespaces (request["namespaces"]): this process is process 1 of a PID namespace of
    its own (the zygote made it so); here it enters IPC and mount namespaces of its own and
    gets a scratch tmpfs of SCRATCH_BYTES and SCRATCH_FILES, charged to its memory cgroup and
    gone when it ends. Then: its cgroup, no descriptor but its pipes, a clean environment,
    rlimits, Landlock (a test child may execute no file), the sandbox uid (or root without
    capabilities), a fresh session keyring and an empty user keyring, and seccomp.
    """
    os.setpgid(0, 0)
    sandbox.prctl(sandbox.PR_SET_PDEATHSIG, signal.SIGKILL)
    scratch, uid, test = request["scratch"], request.get("uid"), request["group"] != "notebook"
    if request.get("namespaces"):
        namespaces.unshare(namespaces.CLONE_NEWIPC | namespaces.CLONE_NEWNS)
        namespaces.private_scratch(scratch, SCRATCH_BYTES, SCRATCH_FILES, uid)
    if join_cgroup_fd is not None:
        os.write(join_cgroup_fd, b"0")  # "0": this process; its descendants follow it
        os.close(join_cgroup_fd)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(out_fd, 1)
    os.dup2(out_fd, 2)
    os.closerange(3, result_fd)
    os.closerange(result_fd + 1, 65536)
    os.chdir(scratch)
    os.environ.clear()
    os.environ.update({"HOME": scratch, "TMPDIR": scratch, "MPLCONFIGDIR": scratch,
                       "JUPYTER_RUNTIME_DIR": scratch, "JUPYTER_CONFIG_DIR": scratch,
                       "JUPYTER_DATA_DIR": scratch, "IPYTHONDIR": scratch,
                       "JUPYTER_PLATFORM_DIRS": "1", "PATH": "/usr/bin:/bin",
                       "LANG": "C.UTF-8", "OMP_NUM_THREADS": "1"})
    tempfile.tempdir = scratch  # the zygote computed it before TMPDIR changed
    sandbox.set_limits(address_space=address_space_limit(request),
                       cpu_seconds=int(request["timeout"]) + 5, file_size=FILE_SIZE,
                       open_files=OPEN_FILES, processes=PROCESSES if uid is not None else None)
    sandbox.prctl(sandbox.PR_SET_NO_NEW_PRIVS, 1)
    sandbox.apply_landlock(read_paths=PYTHON_PATHS + request["read_paths"] + DEVICES,
                           write_paths=[scratch], execute=not test)
    if uid is not None:  # after Landlock, which opens the paths it allows
        sandbox.drop_privileges(uid, request["gid"])
        # A change of uid clears the parent-death signal: set it again, or a child whose worker
        # is killed (Ctrl-C) would run on.
        sandbox.prctl(sandbox.PR_SET_PDEATHSIG, signal.SIGKILL)
        clear_keyrings()
    elif os.geteuid() == 0:  # no uid of our own can run Python here: root without its powers
        sandbox.drop_capabilities()
    if seccomp.available():
        seccomp.install(no_new_processes=test)
    sys.path[:] = [p for p in sys.path if p and _under(os.path.abspath(p), PYTHON_PATHS)]
    gc.disable()


def clear_keyrings():
    """As the sandbox uid: empty its user keyrings (a key stored there, by an earlier grader
    without the seccomp wall, say, outlives every process) and leave the grader's session
    keyring for a new, empty one."""
    if _SYS_KEYCTL is None:
        return
    for keyring in (KEY_SPEC_USER_KEYRING, KEY_SPEC_USER_SESSION_KEYRING):
        _libc.syscall(_SYS_KEYCTL, ctypes.c_long(KEYCTL_CLEAR), ctypes.c_long(keyring))
    _libc.syscall(_SYS_KEYCTL, ctypes.c_long(KEYCTL_JOIN_SESSION_KEYRING), None)


def _under(path, folders):
    """True when `path` is one of `folders` or lies inside one (lib-dynload inside the stdlib)."""
    return any(path == f or path.startswith(f.rstrip(os.sep) + os.sep) for f in folders)


def address_space_limit(request):
    """RLIMIT_AS for a child. With a memory cgroup, the cgroup measures real use and this is a
    backstop far above it (torch reserves much more address space than it touches); without one,
    it is the only memory wall: --memory above what the zygote already maps, four times that
    for a notebook, whose kernel is a new interpreter that imports torch itself."""
    memory = request["memory_mb"] << 20
    if request["group"] == "notebook":
        return sandbox.RLIM_INFINITY if request.get("cgroup") else 4 * memory
    slack = ADDRESS_SLACK if request.get("cgroup") else 0
    return sandbox.address_space_in_use() + memory + slack


class SubmissionFinder:
    """Finds the submission's own modules (and then the grader's stand-ins), last of all and
    only for an import made by the submission's own code.

    The submission's folder is not on sys.path: the standard library, the installed packages
    and the grader come first for everyone, and a file of the submission (a `hmac.py`, a
    `triton.py`) is never what the standard library or torch imports, even for a name that
    nothing installed provides. A submission's `linear_classifier.py` still wins over the
    grader's stand-in for that course module.
    """

    def __init__(self, folders):
        self.folders, self.student_folder = list(folders), folders[0]

    def find_spec(self, name, path=None, target=None):
        if path is not None or not self._asked_by_submission():
            return None
        return importlib.machinery.PathFinder.find_spec(name, self.folders)

    def _asked_by_submission(self):
        frame = sys._getframe(2)
        while frame is not None and (frame.f_code.co_filename.startswith("<frozen importlib")
                                     or frame.f_globals.get("__name__") == "importlib"):
            frame = frame.f_back
        filename = os.path.abspath(frame.f_code.co_filename) if frame is not None else ""
        return filename.startswith(self.student_folder + os.sep)

    def invalidate_caches(self):
        pass


def import_submission(module_path, standins=()):
    """Import the student's two_layer_net.py as `two_layer_net`; its own modules are found
    after everything installed (see SubmissionFinder), then the grader's `standins` folders."""
    folder = os.path.dirname(os.path.abspath(module_path))
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, SubmissionFinder)]
    sys.meta_path.append(SubmissionFinder([folder, *standins]))
    spec = importlib.util.spec_from_file_location(MODULE_NAME, module_path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[MODULE_NAME] = module
    spec.loader.exec_module(module)
    return module


def run_notebook(notebook_path, workdir, timeout):
    """Execute the submitted notebook in `workdir` with a fresh kernel; returns (meta, arrays).

    Every cell runs (errors are kept as outputs, for the person grading); meta lists the cells
    that raised. The kernel talks over Unix sockets in `workdir` (the sandbox allows no TCP).
    """
    import nbformat

    executed = nbformat.read(notebook_path, as_version=4)
    client = notebook.client(executed, cwd=workdir, timeout=timeout, allow_errors=True,
                             over_ipc=True)
    meta = {"errors": {}}
    try:
        client.execute()
    except BaseException as error:  # noqa: BLE001 -- a dead kernel or a timeout is a finding too
        meta["errors"]["notebook"] = headline(error, str(error)[:MESSAGE_LIMIT])
    failed = []
    for index, cell in enumerate(executed.cells):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                failed.append({"cell": index, "error": f"{output.get('ename')}: "
                                                       f"{str(output.get('evalue'))[:MESSAGE_LIMIT]}"})
    meta["failed_cells"] = failed
    data = nbformat.writes(executed).encode()
    return meta, {"notebook": torch.frombuffer(bytearray(data), dtype=torch.uint8)}


def run(group, module_path, meta, arrays, on_imported=None, standins=()):
    """Import the submission and run one group; returns (meta, arrays) to send back.

    on_imported() is called once the import has finished, whether or not it raised, so that
    the supervisor can tell a hang at import from a hang in the tested function.
    """
    folder = os.path.dirname(os.path.abspath(module_path))
    torch.manual_seed(0)
    runner = Runner(None, folder)
    runner.module = runner.guarded("import", lambda: import_submission(module_path, standins))
    if on_imported is not None:
        on_imported()
    if runner.module is not None:
        BY_NAME[group].run(runner, meta, arrays)
    return runner.meta, runner.arrays
