"""What a test group's child code needs: calling the submission, checking what it returned.

Runs in the child, behind the walls. The group modules (grader/groups/) import it for their
`run` side; grader/child.py imports it to report the import's own exception. It imports nothing
of the grader's process (no rubric, no expected values).
"""
import os
import re
import traceback

import torch

from grader import wire
from helpers_lib.errors import headline

MODULE_FILE = "two_layer_net.py"
MESSAGE_LIMIT = 300
TRACEBACK_FRAMES = 3
# Numbers in an exception's message may be hidden inputs (a failed assert prints them): shown to
# SHOWN_DIGITS significant digits, enough to tell a sign or a magnitude, too few to recover inputs.
SHOWN_DIGITS = 3
LONG_NUMBER = re.compile(r"(?<![\w.])-?\d+\.\d+(?:[eE][-+]?\d+)?")
# What a submission may import besides its own files (stated in the message when one is missing).
SUPPLIED = ("torch, numpy, matplotlib, tqdm, Python's standard library and the course's "
            "linear_classifier and eecs598 (the grader supplies those two)")


def trim_values(message):
    """`message` with every decimal number cut to SHOWN_DIGITS significant digits."""
    def cut(match):
        text = match.group(0)
        digits = len(re.sub(r"[^0-9]", "", text.split("e")[0].split("E")[0]).lstrip("0"))
        return text if digits <= SHOWN_DIGITS else f"{float(text):.{SHOWN_DIGITS}g}"
    return LONG_NUMBER.sub(cut, message)


# The errors torch raises for a device the grader does not have (or for tensors on two devices):
# real solutions hard-wire the course's Colab GPU (`torch.zeros(N, H, device='cuda')`, `.cuda()`).
CUDA_ERROR = re.compile(r"not compiled with CUDA|no NVIDIA driver|No CUDA GPUs|CUDA driver|"
                        r"Expected all tensors to be on the same device")
CUDA_NOTE = (" (the grader runs on the CPU: take the device from the inputs, e.g. "
             "device=X.device, never 'cuda' or .cuda(); the assignment's header says so too)")


def missing_module_note(name):
    return (f" (the grader's Python has no module '{name}': submit it with two_layer_net.py if it "
            f"is your own file; otherwise two_layer_net.py may import {SUPPLIED})")


class ContractError(Exception):
    """A returned value that does not have the contract's type or structure."""


def describe_exception(error, student_folder):
    """One paragraph: the exception, then the last frames that lie in the student's files."""
    if isinstance(error, SyntaxError) and error.lineno is not None:
        where = f"{os.path.basename(error.filename or MODULE_FILE)}, line {error.lineno}"
        return f"SyntaxError in {where}: {error.msg}"
    message = trim_values(str(error))
    if len(message) > MESSAGE_LIMIT:
        message = message[:MESSAGE_LIMIT] + " ..."
    if isinstance(error, ModuleNotFoundError) and error.name:
        message += missing_module_note(error.name)
    if CUDA_ERROR.search(str(error)):
        message += CUDA_NOTE
    frames = [f for f in traceback.extract_tb(error.__traceback__)
              if os.path.abspath(f.filename).startswith(student_folder + os.sep)]
    lines = [headline(error, message)]
    for frame in frames[-TRACEBACK_FRAMES:]:
        lines.append(f'  File "{os.path.basename(frame.filename)}", line {frame.lineno}, '
                     f"in {frame.name}: {(frame.line or '').strip()[:120]}")
    return "\n".join(lines)


class AutogradWatch:
    """Notices a submission that calls torch.autograd (backward, grad or torch.func), while it
    is open (`with AutogradWatch() as watch:`). Closing puts torch's own engine and functions
    back: in a process that grades again (the self-check without a sandbox), a second watch
    must not wrap the first."""

    FUNCTIONS = ("grad", "grad_and_value", "vjp", "jacrev", "jacfwd", "hessian")

    def __init__(self):
        self.used = []
        from torch.autograd.variable import Variable
        import torch.func

        self._restore = [(Variable, "_execution_engine", Variable._execution_engine)]
        self._restore += [(torch.func, name, getattr(torch.func, name)) for name in self.FUNCTIONS]

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
        for name in self.FUNCTIONS:
            original = getattr(torch.func, name)
            setattr(torch.func, name, self._wrap(original, f"torch.func.{name}"))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for owner, name, original in self._restore:
            setattr(owner, name, original)

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
