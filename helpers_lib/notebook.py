"""The notebook's support: checks and reports that say an error in one line instead of a
traceback, the student's module followed as saved, seeds, threads and progress bars.
"""
import builtins
import contextlib
import dataclasses
import functools
import hashlib
import os
import re
import sys
import types

import torch

from helpers_lib.errors import describe_error, place

# CPU threads for the notebook (and the kit's scripts), set in one place (use_threads). Their
# nets are tiny (the digits: 200 x 64 @ 64 x 100); on a 2-core machine one thread ran fastest.
# $KIT_THREADS overrides it: a number, or "default" for torch's own.
NUM_THREADS = 1
THREADS_ENV = "KIT_THREADS"
# What a followed module's (re)load prints: its file and the start of its SHA-256, so that the
# saved notebook records which file it last ran with (`grade.py submit` compares it with the
# file it zips, through DIGEST_LINE).
DIGEST_CHARS = 16
DIGEST_LINE = re.compile(r"(?P<file>[\w.-]+\.py) (?:loaded|changed on disk: reloaded), "
                         r"sha256 (?P<digest>[0-9a-f]{%d})" % DIGEST_CHARS)


def module_digest(data):
    """The digest a followed module's (re)load prints for the file's bytes."""
    return hashlib.sha256(data).hexdigest()[:DIGEST_CHARS]


def use_threads(num_threads=None):
    """Set torch's CPU thread count: `num_threads`, else $KIT_THREADS, else NUM_THREADS.

    "default" (or 0) leaves torch's own choice. Returns the number of threads now in use.
    """
    choice = num_threads if num_threads is not None else os.environ.get(THREADS_ENV, NUM_THREADS)
    if str(choice).strip().lower() not in ("default", "0"):
        try:
            count = int(choice)
        except ValueError:
            raise ValueError(f"${THREADS_ENV}={choice!r} is not a thread count; set a positive "
                             "number or 'default'") from None
        if count < 1:
            raise ValueError(f"{count} threads: set a positive number or 'default'")
        torch.set_num_threads(count)
    return torch.get_num_threads()


class ModuleNotLoaded(ImportError):
    """Raised when a name of the student's module is used while the module, as saved, does not
    load; the message says why."""

    described_plainly = True


class _Unavailable:
    """Stands for a name of a module that did not load: calling it or using it raises."""

    def __init__(self, name, reason):
        self._name, self._reason = name, reason

    def __call__(self, *args, **kwargs):
        raise ModuleNotLoaded(self._reason)

    def __getattr__(self, attr):
        if attr.startswith("__"):
            raise AttributeError(attr)
        raise ModuleNotLoaded(self._reason)

    def __repr__(self):
        return f"<{self._name}: unavailable, {self._reason}>"


_FOLLOWED = {}  # module name -> its FollowedModule, so that re-running set-up replaces the hook


class FollowedModule:
    """Keeps names in a namespace bound to a module's file as saved: `refresh` re-executes the
    file when its bytes changed, and binds stand-ins that raise ModuleNotLoaded when it does
    not load, so that no cell runs old code or meets a NameError.

    The module keeps one `__dict__` across reloads, so code holding an old reference (a
    TwoLayerNet built before an edit) calls the new functions too, or the stand-ins.
    """

    def __init__(self, name, names, namespace, path=None):
        self.name, self.names, self.namespace = name, tuple(names), namespace
        self.path = os.path.abspath(path or f"{name}.py")
        self.digest = None
        self.error = None  # why the file as saved does not load, or None
        self.module = types.ModuleType(name)

    def refresh(self, *_):
        """Reload the module if its file changed since the last load; True when it did.

        Prints one line when a changed file was reloaded, or why it could not be (an IPython
        pre_run_cell hook: the line appears in the cell being run).
        """
        try:
            with open(self.path, "rb") as f:
                source = f.read()
        except OSError as e:
            source = None
            reason = f"cannot read {self.path} ({e.strerror})"
        digest = None if source is None else module_digest(source)
        if digest is not None and digest == self.digest:
            return False
        first = self.digest is None and self.error is None
        self.digest = digest
        if source is not None:
            reason = self._load(source)
        if reason is None:
            self.error = None
            how = "loaded" if first else "changed on disk: reloaded"
            print(f"({os.path.basename(self.path)} {how}, sha256 {digest})")
        else:
            self.error = (f"{os.path.basename(self.path)} could not be loaded: {reason}; fix it "
                          "and save it, then run the cell again")
            print(f"ERROR: {self.error}")
            self._bind_stand_ins()
        return True

    def _load(self, source):
        """Execute `source` as the module; None, or why it failed (one line)."""
        try:
            code = compile(source, self.path, "exec")
        except SyntaxError as error:
            return describe_error(error)
        namespace = self.module.__dict__
        namespace.clear()
        namespace.update(__name__=self.name, __file__=self.path, __builtins__=builtins,
                         __package__="", __spec__=None)
        sys.modules[self.name] = self.module
        try:
            exec(code, namespace)
        except Exception as error:  # noqa: BLE001 - any error at import is the student's to see
            return describe_error(error)
        for n in self.names:
            self.namespace[n] = namespace[n] if n in namespace else _Unavailable(
                n, f"{os.path.basename(self.path)} defines no {n}; restore it (the notebook "
                   "and the grader call it by that name)")
        return None

    def _bind_stand_ins(self):
        """Stand-ins for the followed names and for everything the module itself defined, so
        that old objects cannot run the old code either."""
        namespace = self.module.__dict__
        for n, value in list(namespace.items()):
            if getattr(value, "__module__", None) == self.name and callable(value):
                namespace[n] = _Unavailable(n, self.error)
        for n in self.names:
            self.namespace[n] = _Unavailable(n, self.error)


def follow_module(name, names, namespace, path=None):
    """Bind `names` of the module `name` (the file name.py in the working folder) in
    `namespace`, and keep them bound to the file as saved: in IPython, before every cell.

    Returns:
        the FollowedModule; its `error` says why the file does not load (None when it does).
    """
    followed = FollowedModule(name, names, namespace, path)
    shell = _ipython()
    previous = _FOLLOWED.pop(name, None)
    if shell is not None and previous is not None:
        try:
            shell.events.unregister("pre_run_cell", previous.refresh)
        except ValueError:
            pass
    followed.refresh()
    if shell is not None:
        shell.events.register("pre_run_cell", followed.refresh)
    _FOLLOWED[name] = followed
    return followed


def _ipython():
    """The running IPython shell, or None outside IPython."""
    get = getattr(builtins, "get_ipython", None)
    return get() if get is not None else None


@contextlib.contextmanager
def report_errors():
    """Run a block of the student's code; on an exception print one line naming it and go on.

    The block stops at the error, so names it would have assigned keep their earlier values.
    """
    try:
        yield
    except Exception as error:  # noqa: BLE001 - any error in a student's code is reported
        print(f"ERROR: {describe_error(error)}")


class WrongPrediction(ValueError):
    """A prediction function returned something other than (N,) integer labels; the message
    names the function's own code, not the caller that tripped over the result."""

    described_plainly = True


def checked_predict(pred_func):
    """`pred_func` (e.g. nn_predict) with its result checked: (N,) integer labels, else
    WrongPrediction at pred_func's place (a wrong result would otherwise fail later, inside
    the code that uses it, such as nn_train's accuracy)."""
    @functools.wraps(pred_func)
    def checked(params, loss_func, X):
        y_pred = pred_func(params, loss_func, X)
        expected = (X.shape[0],)
        if isinstance(y_pred, torch.Tensor):
            if tuple(y_pred.shape) == expected and not y_pred.is_floating_point():
                return y_pred
            got = f"a {str(y_pred.dtype).replace('torch.', '')} tensor of shape {tuple(y_pred.shape)}"
        else:
            got = f"a {type(y_pred).__name__}"
        name = getattr(pred_func, "__name__", "the prediction function")
        code = getattr(pred_func, "__code__", None)
        where = f" {place(os.path.basename(code.co_filename), code.co_firstlineno, name)}" if code else ""
        raise WrongPrediction(f"{name} returned {got}, not {expected} integer labels: one "
                              f"label per example, the index of its highest score{where}")
    return checked


@dataclasses.dataclass
class CheckResult:
    """One notebook check: `value` against `threshold`, or the error that prevented computing it."""

    label: str
    value: float | None
    threshold: float
    relation: str  # "<" (the value must be below the threshold) or ">=" (at least the threshold)
    fmt: str = ".2g"
    error: str | None = None

    @property
    def passed(self):
        if self.error is not None or self.value is None:
            return False
        return self.value < self.threshold if self.relation == "<" else self.value >= self.threshold

    def __str__(self):
        if self.error is not None:
            return f"{self.label}: FAIL: {self.error}"
        verdict = "PASS" if self.passed else "FAIL"
        bound = "< " if self.relation == "<" else "at least "
        value = format(self.value, self.fmt)
        return f"{self.label}: {value} (should be {bound}{self.threshold:g}): {verdict}"


def check(label, compute, *, below=None, at_least=None, fmt=".2g"):
    """Compute a number and compare it with a threshold, never raising.

    Args:
        label: what the number is, e.g. "Difference between your scores and correct scores".
        compute: () -> float; an exception inside it makes the check FAIL with its message.
        below: the value must be < below; or
        at_least: the value must be >= at_least (give exactly one of the two).
        fmt: format of the value when printed.
    Returns:
        CheckResult; str() of it reads "label: value (should be < threshold): PASS" or FAIL.
    """
    if (below is None) == (at_least is None):
        raise ValueError(f"check '{label}' needs exactly one of below= and at_least=")
    threshold, relation = (below, "<") if below is not None else (at_least, ">=")
    try:
        value = float(compute())
    except Exception as error:  # noqa: BLE001 - a check reports the student's error, never raises
        return CheckResult(label, None, threshold, relation, fmt, describe_error(error))
    return CheckResult(label, value, threshold, relation, fmt)


def final_loss(stats):
    """The last loss a training run recorded; a clear error when there is none."""
    if not stats or not stats.get("loss_history"):
        raise ValueError("no training loss recorded: the training cell above did not finish")
    return stats["loss_history"][-1]


def to_device(value, device):
    """`value` with every tensor in it (nested dicts too) moved to `device`."""
    if isinstance(value, dict):
        return {k: to_device(v, device) for k, v in value.items()}
    return value.to(device) if isinstance(value, torch.Tensor) else value


@contextlib.contextmanager
def seeded(seed):
    """Run the block with torch's global generators seeded with `seed`, then restore them.

    Each experiment then draws the same minibatches whatever ran before it.
    """
    with torch.random.fork_rng(devices=range(torch.cuda.device_count())):
        torch.manual_seed(seed)
        yield


@contextlib.contextmanager
def progress_bar(total, desc):
    """A text progress bar (tqdm, on stderr) that reads cleanly in a notebook and its HTML copy."""
    from tqdm import tqdm

    bar = tqdm(total=total, desc=desc, ascii=True, mininterval=0.5, file=sys.stderr)
    try:
        yield bar
    finally:
        bar.close()


def loss_func_with_progress(loss_func, bar):
    """`loss_func` that advances `bar` by one at every training step (every call with labels)."""
    def counted(params, X, y=None, reg=0.0):
        result = loss_func(params, X, y=y, reg=reg)
        if y is not None:
            bar.update(1)
        return result
    return counted


@contextlib.contextmanager
def advance_on_call(owner, name, bar):
    """For the block's duration, advance `bar` by one after each call of `owner.<name>`."""
    original = getattr(owner, name)

    @functools.wraps(original)
    def counted(*args, **kwargs):
        result = original(*args, **kwargs)
        bar.update(1)
        return result

    setattr(owner, name, counted)
    try:
        yield
    finally:
        setattr(owner, name, original)
