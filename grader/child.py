"""What runs inside a submission's child process: import the module, call it, report plain data.

The child gets the hidden inputs of one test group (never the expected values, never the seed),
calls the student's functions on fresh copies of them, and returns what they produced as
arrays plus a JSON-able `meta` (errors, flags, call records). Every call is guarded: an
exception, even a BaseException such as SystemExit, becomes a message with the last frames of
its traceback that point into the student's files; the other calls still run.
"""
import importlib.util
import os
import sys
import traceback

import torch

import helpers  # noqa: F401 -- loaded before any fork, so that a submission may import it
from grader import notebook, wire
from helpers_lib.errors import headline

MODULE_NAME = "two_layer_net"
MESSAGE_LIMIT = 300
TRACEBACK_FRAMES = 3


class ContractError(Exception):
    """A returned value that does not have the contract's type or structure."""


def import_submission(module_path):
    """Import the student's two_layer_net.py as `two_layer_net`, from its own folder."""
    folder = os.path.dirname(module_path)
    sys.path.insert(0, folder)
    spec = importlib.util.spec_from_file_location(MODULE_NAME, module_path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[MODULE_NAME] = module
    spec.loader.exec_module(module)
    return module


def describe_exception(error, student_folder):
    """One paragraph: the exception, then the last frames that lie in the student's files."""
    if isinstance(error, SyntaxError) and error.lineno is not None:
        where = f"{os.path.basename(error.filename or MODULE_NAME + '.py')}, line {error.lineno}"
        return f"SyntaxError in {where}: {error.msg}"
    message = str(error)
    if len(message) > MESSAGE_LIMIT:
        message = message[:MESSAGE_LIMIT] + " ..."
    if isinstance(error, ModuleNotFoundError) and error.name:
        message += (f" (the grader's Python has no module '{error.name}': two_layer_net.py may "
                    "import torch and Python's standard library only)")
    frames = [f for f in traceback.extract_tb(error.__traceback__)
              if os.path.abspath(f.filename).startswith(student_folder + os.sep)]
    lines = [headline(error, message)]
    for frame in frames[-TRACEBACK_FRAMES:]:
        lines.append(f'  File "{os.path.basename(frame.filename)}", line {frame.lineno}, '
                     f"in {frame.name}: {(frame.line or '').strip()[:120]}")
    return "\n".join(lines)


class AutogradWatch:
    """Notices a submission that calls torch.autograd (backward, grad or torch.func)."""

    def __init__(self):
        self.used = []
        from torch.autograd.variable import Variable

        watch = self

        class Engine:
            def __init__(self, engine):
                self._engine = engine

            def run_backward(self, *args, **kwargs):
                watch.used.append("loss.backward() / torch.autograd")
                return self._engine.run_backward(*args, **kwargs)

            def __getattr__(self, name):
                return getattr(self._engine, name)

        Variable._execution_engine = Engine(Variable._execution_engine)
        import torch.func

        for name in ("grad", "grad_and_value", "vjp", "jacrev", "jacfwd", "hessian"):
            original = getattr(torch.func, name)
            setattr(torch.func, name, self._wrap(original, f"torch.func.{name}"))

    def _wrap(self, original, label):
        def wrapped(*args, **kwargs):
            self.used.append(label)
            return original(*args, **kwargs)
        return wrapped

    def check_outputs(self, params, grads):
        """Autograd evidence left on the values: graph-carrying outputs or grad-requiring inputs."""
        if any(isinstance(g, torch.Tensor) and (g.requires_grad or g.grad_fn is not None)
               for g in grads.values()):
            self.used.append("returned gradients that carry an autograd graph")
        if any(p.requires_grad for p in params.values()):
            self.used.append("params.requires_grad_()")


def as_tensor(value, what):
    """A dense CPU copy of a returned tensor, or a ContractError that names what is wrong with it."""
    if not isinstance(value, torch.Tensor):
        raise ContractError(f"{what} is a {type(value).__name__}, expected a torch.Tensor")
    if value.layout != torch.strided:
        raise ContractError(f"{what} is a {value.layout} tensor, expected an ordinary dense tensor")
    if value.dtype not in wire.DTYPE_NAMES:
        raise ContractError(f"{what} has dtype {value.dtype}, expected a real floating-point "
                            "tensor (torch.float64 here) or int64 labels")
    return value.detach().to("cpu")


def fresh(arrays, prefix):
    """Copies of the arrays under `prefix/`, keyed by the rest of their name."""
    return {name[len(prefix) + 1:]: tensor.clone() for name, tensor in arrays.items()
            if name.startswith(prefix + "/")}


def params_of(arrays, prefix):
    return {k: arrays[f"{prefix}/{k}"].clone() for k in ("W1", "b1", "W2", "b2")}


class Runner:
    """Runs one test group against the imported module; collects meta and arrays to return."""

    def __init__(self, module, student_folder):
        self.module = module
        self.folder = student_folder
        self.meta = {"errors": {}}
        self.arrays = {}

    def guarded(self, key, call):
        """Run call(); on any exception record its description under `key` and return None."""
        try:
            return call()
        except BaseException as error:  # noqa: BLE001 -- SystemExit and friends are student bugs too
            traceback.clear_frames(error.__traceback__)  # free what the failed call held
            try:
                self.meta["errors"][key] = describe_exception(error, self.folder)
            except MemoryError:
                self.meta["errors"][key] = "MemoryError"
            return None



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


def run(group, module_path, meta, arrays, on_imported=None):
    """Import the submission and run one group; returns (meta, arrays) to send back.

    on_imported() is called once the import has finished, whether or not it raised, so that
    the supervisor can tell a hang at import from a hang in the tested function.
    """
    folder = os.path.dirname(os.path.abspath(module_path))
    torch.manual_seed(0)
    runner = Runner(None, folder)
    runner.module = runner.guarded("import", lambda: import_submission(module_path))
    if on_imported is not None:
        on_imported()
    if runner.module is not None:
        from grader.groups import BY_NAME

        BY_NAME[group].run(runner, meta, arrays)
    return runner.meta, runner.arrays
