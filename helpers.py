"""What the notebook, the tests and the grader share: toy data, gradient checks, data sets, plots.

Shapes: N examples, D input features, H hidden units, C classes. Every function returns values;
the caller decides what to print or show. Plots return a matplotlib `Figure` that is not
registered with pyplot, so a notebook shows it once and a script can `savefig` it.
"""
import json
import os
import pickle

import torch
from matplotlib.figure import Figure

CIFAR10_TRAIN_FILES = [f"data_batch_{i}" for i in range(1, 6)]
CIFAR10_TEST_FILE = "test_batch"
CIFAR10_CLASSES = ["plane", "car", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
CIFAR10_IMAGE_SHAPE = (3, 32, 32)
DIGITS_IMAGE_SHAPE = (8, 8)
TOY_REFERENCE_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                  "tests", "fixtures", "toy_reference.json")


def get_toy_data(num_inputs=5, input_size=4, hidden_size=10, num_classes=3, std=1e-4,
                 dtype=torch.float64, device="cpu", seed=0):
    """The classic toy problem: a tiny network and a handful of inputs.

    Everything is drawn on the CPU in float64 from a private generator seeded with `seed`, then
    converted, so the same seed gives the same numbers on every machine and device.

    Returns:
        X: (N, D) inputs of standard deviation 10; y: (N,) int64 labels in [0, C);
        params: dict with W1 (D, H), b1 (H,), W2 (H, C), b2 (C,); weights of standard deviation
        `std`, biases of standard deviation 0.1 (so that a bias bug changes the scores).
    """
    g = torch.Generator().manual_seed(seed)
    N, D, H, C = num_inputs, input_size, hidden_size, num_classes

    def randn(*shape):
        return torch.randn(*shape, generator=g, dtype=torch.float64)

    params = {"W1": std * randn(D, H), "b1": 0.1 * randn(H),
              "W2": std * randn(H, C), "b2": 0.1 * randn(C)}
    X = 10.0 * randn(N, D)
    y = torch.randint(C, (N,), generator=g)
    params = {k: v.to(dtype=dtype, device=device) for k, v in params.items()}
    return X.to(dtype=dtype, device=device), y.to(device), params


def load_toy_reference(path=TOY_REFERENCE_PATH):
    """The committed toy cases (tests/make_fixtures.py) with their expected outputs, in float64.

    Returns:
        {case name: dict with X (N, D), y (N,), params, reg, scores (N, C), hidden (N, H),
        loss and loss_no_reg (0-dim), grads (dict like params)}; "small_weights" is the
        classic toy problem (weights of std 1e-4), "large_weights" tells reg*sum(W**2) from
        0.5*reg*sum(W**2).
    """
    try:
        with open(path) as f:
            cases = json.load(f)["cases"]
    except (OSError, ValueError, KeyError) as e:
        raise ValueError(f"cannot read the toy reference '{path}' ({e}); restore it with "
                         "'git checkout tests/fixtures' or regenerate it with "
                         "'python tests/make_fixtures.py'") from e

    def tensors(value):
        if isinstance(value, dict):
            return {k: tensors(v) for k, v in value.items()}
        return torch.tensor(value, dtype=torch.float64) if isinstance(value, (list, float)) else value

    reference = {}
    for name, case in cases.items():
        case = tensors(case)
        case["y"] = case["y"].to(torch.int64)
        reference[name] = case
    return reference


def rel_error(a, b, eps=1e-10):
    """Largest absolute difference over the largest magnitude: max|a-b| / max(|a|+|b|, eps)."""
    a, b = torch.as_tensor(a, dtype=torch.float64), torch.as_tensor(b, dtype=torch.float64)
    top = (a - b.to(a.device)).abs().max().item()
    bottom = (a.abs() + b.to(a.device).abs()).clamp(min=eps).max().item()
    return top / bottom


def numeric_gradient(f, x, h=1e-6):
    """Central-difference gradient of a scalar function, computed in float64.

    Args:
        f: function of one tensor shaped like x, returning a scalar (tensor or float).
        x: the point; it is not modified (f receives a float64 copy).
        h: the step.
    Returns:
        grad: float64 tensor shaped like x, (f(x + h e_i) - f(x - h e_i)) / 2h for every i.
    """
    x = x.detach().to(torch.float64).clone()
    grad = torch.zeros_like(x)
    flat_x, flat_grad = x.view(-1), grad.view(-1)
    for i in range(flat_x.numel()):
        old = flat_x[i].item()
        flat_x[i] = old + h
        f_plus = float(f(x))
        flat_x[i] = old - h
        f_minus = float(f(x))
        flat_x[i] = old
        flat_grad[i] = (f_plus - f_minus) / (2 * h)
    return grad


def grad_check(loss_func, params, X, y, reg=0.0, h=1e-6):
    """Compare the analytic gradients of `loss_func` with central differences, in float64.

    Args:
        loss_func: (params, X, y=y, reg=reg) -> (loss, grads), e.g. nn_forward_backward.
        params: dict of parameters (copied to float64; not modified).
        X: (N, D) inputs; y: (N,) labels; reg: regularisation strength.
    Returns:
        dict: parameter name -> max relative error between analytic and numeric gradient.
    """
    params64 = {k: v.detach().to(torch.float64).clone() for k, v in params.items()}
    X64 = X.detach().to(torch.float64)
    _, grads = loss_func(params64, X64, y=y, reg=reg)
    require_gradients(grads, params64)
    errors = {}
    for name in params64:
        def loss_at(value, name=name):
            return loss_func({**params64, name: value}, X64, y=y, reg=reg)[0]
        errors[name] = rel_error(grads[name], numeric_gradient(loss_at, params64[name], h))
    return errors


class MissingGradients(NotImplementedError):
    """nn_forward_backward returned the loss without some of its gradients (Part 2 unwritten)."""

    described_plainly = True  # describe_error gives the message alone: the place is not the bug


def require_gradients(grads, params):
    """`grads` when it holds a gradient for every key of `params`; else MissingGradients."""
    missing = [k for k in params if k not in grads]
    if missing:
        names = ", ".join(f"grads['{k}']" for k in missing)
        raise MissingGradients(f"nn_forward_backward returned no {names}: backpropagate (Part 2 "
                               "of nn_forward_backward, still to write)")
    return grads


def autograd_loss_and_grads(params, X, y, reg=0.0):
    """The loss and its gradients through torch.autograd, in float64: an oracle for checks.

    Returns:
        (loss, grads): a 0-dim float64 tensor and a dict like params, on the CPU.
    """
    leaves = {k: v.detach().to("cpu", torch.float64).clone().requires_grad_()
              for k, v in params.items()}
    X64, y = X.detach().to("cpu", torch.float64), y.to("cpu")
    hidden = torch.relu(X64 @ leaves["W1"] + leaves["b1"])
    scores = hidden @ leaves["W2"] + leaves["b2"]
    loss = torch.nn.functional.cross_entropy(scores, y)
    loss = loss + reg * (leaves["W1"].square().sum() + leaves["W2"].square().sum())
    loss.backward()
    return loss.detach(), {k: v.grad for k, v in leaves.items()}


def huge_scores_case(magnitude, N=16, D=8, H=12, C=5, reg=0.0, seed=0):
    """A float64 problem whose scores reach `magnitude` (W2 scaled up), with its correct loss
    and gradients from `autograd_loss_and_grads`.

    Returns:
        dict with X (N, D), y (N,), params, reg, magnitude (the largest |score|), loss (0-dim)
        and grads (dict like params).
    """
    g = torch.Generator().manual_seed(seed)

    def randn(*shape, scale=1.0):
        return scale * torch.randn(*shape, generator=g, dtype=torch.float64)

    params = {"W1": randn(D, H, scale=D ** -0.5), "b1": randn(H, scale=0.1),
              "W2": randn(H, C, scale=H ** -0.5), "b2": randn(C, scale=0.1)}
    X = randn(N, D)
    y = torch.randint(C, (N,), generator=g)
    scores = torch.relu(X @ params["W1"] + params["b1"]) @ params["W2"] + params["b2"]
    params["W2"] *= magnitude / scores.abs().max()
    params["b2"] *= magnitude / scores.abs().max()
    loss, grads = autograd_loss_and_grads(params, X, y, reg)
    largest = (torch.relu(X @ params["W1"] + params["b1"]) @ params["W2"] + params["b2"]).abs()
    return {"X": X, "y": y, "params": params, "reg": reg, "magnitude": largest.max().item(),
            "loss": loss, "grads": grads}


def _split(X, y, num_train, num_val, num_test, seed):
    """Shuffle with a private generator and cut into train, validation and test parts."""
    if num_train + num_val + num_test > X.shape[0]:
        raise ValueError(f"asked for {num_train} + {num_val} + {num_test} examples but the data set "
                         f"has {X.shape[0]}; ask for fewer")
    order = torch.randperm(X.shape[0], generator=torch.Generator().manual_seed(seed))
    cuts = [0, num_train, num_train + num_val, num_train + num_val + num_test]
    parts = [order[a:b] for a, b in zip(cuts, cuts[1:])]
    return [(X[p], y[p]) for p in parts]


def _finish(splits, subtract_mean, dtype, device):
    """Subtract the training mean (per feature) and build the data dict on `device`."""
    (X_train, y_train), (X_val, y_val), (X_test, y_test) = splits
    mean = X_train.mean(dim=0) if subtract_mean else torch.zeros(X_train.shape[1])
    data = {}
    for name, X, y in [("train", X_train, y_train), ("val", X_val, y_val), ("test", X_test, y_test)]:
        data[f"X_{name}"] = (X - mean).to(dtype=dtype, device=device)
        data[f"y_{name}"] = y.to(dtype=torch.int64, device=device)
    return data


def load_digits_data(num_train=1200, num_val=300, num_test=297, seed=0, subtract_mean=True,
                     dtype=torch.float32, device="cpu"):
    """The handwritten digits that scikit-learn ships (1,797 8x8 images, 10 classes; offline).

    Pixels are scaled from [0, 16] to [0, 1] and the training mean is subtracted; the split is
    drawn with a private generator seeded with `seed`.

    Returns:
        dict with X_train (num_train, 64), y_train (num_train,), X_val, y_val, X_test, y_test;
        X in `dtype` on `device`, y int64.
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    X = torch.as_tensor(digits.data, dtype=torch.float64) / 16.0
    y = torch.as_tensor(digits.target, dtype=torch.int64)
    return _finish(_split(X, y, num_train, num_val, num_test, seed), subtract_mean, dtype, device)


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles plain containers and numpy arrays only, never arbitrary code."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
               ("numpy._core.multiarray", "scalar"), ("_codecs", "encode")}

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}: a CIFAR-10 batch "
                                         "holds only a dict of arrays, labels and names")
        return super().find_class(module, name)


def _read_cifar_batch(path):
    """One CIFAR-10 python batch: (10000, 3072) uint8 rows (R, G, B planes) and int labels."""
    import numpy as np

    try:
        with open(path, "rb") as f:
            batch = _ArrayUnpickler(f, encoding="bytes").load()
        data = np.asarray(batch[b"data"], dtype=np.uint8)
        labels = np.asarray(batch[b"labels"], dtype=np.int64)
    except (OSError, EOFError, pickle.UnpicklingError, KeyError, TypeError, ValueError,
            IndexError, AttributeError) as e:
        raise ValueError(f"CIFAR-10 file '{path}' is not a valid python-version batch "
                         f"({type(e).__name__}: {e}); expected a pickled dict with b'data' "
                         "(uint8, 3072 columns) and b'labels'; download the python version "
                         "again from https://www.cs.toronto.edu/~kriz/cifar.html") from e
    n = CIFAR10_IMAGE_SHAPE[0] * CIFAR10_IMAGE_SHAPE[1] * CIFAR10_IMAGE_SHAPE[2]
    if data.ndim != 2 or data.shape[1] != n or labels.shape != (data.shape[0],):
        raise ValueError(f"CIFAR-10 file '{path}' holds data of shape {data.shape} and "
                         f"{labels.shape[0]} labels; expected (M, {n}) and M labels")
    if labels.size and (labels.min() < 0 or labels.max() >= len(CIFAR10_CLASSES)):
        raise ValueError(f"CIFAR-10 file '{path}' has labels outside 0..9")
    return torch.from_numpy(data.copy()), torch.from_numpy(labels.copy())


def find_cifar10_folder(path):
    """The folder holding the CIFAR-10 batches: `path` itself or its `cifar-10-batches-py`."""
    path = os.fspath(path)
    for folder in (path, os.path.join(path, "cifar-10-batches-py")):
        if os.path.isfile(os.path.join(folder, CIFAR10_TEST_FILE)):
            return folder
    raise FileNotFoundError(
        f"no CIFAR-10 data in '{path}': expected the python version's files "
        f"{', '.join(CIFAR10_TRAIN_FILES)} and {CIFAR10_TEST_FILE} in that folder or in its "
        "'cifar-10-batches-py' subfolder (download cifar-10-python.tar.gz from "
        "https://www.cs.toronto.edu/~kriz/cifar.html and unpack it there)")


def load_cifar10(path, num_train=49000, num_val=1000, num_test=1000, seed=0, subtract_mean=True,
                 dtype=torch.float32, device="cpu"):
    """CIFAR-10 from a local folder of the standard python-pickle batches.

    Pixels are scaled to [0, 1] and the training mean is subtracted. The validation set comes
    from the training batches (after shuffling with `seed`); the test set is the first
    `num_test` images of `test_batch`.

    Returns:
        dict with X_train (num_train, 3072), y_train, X_val, y_val, X_test, y_test; a row holds
        the R, G and B planes of a 32x32 image (reshape to CIFAR10_IMAGE_SHAPE).
    """
    folder = find_cifar10_folder(path)
    missing = [f for f in CIFAR10_TRAIN_FILES if not os.path.isfile(os.path.join(folder, f))]
    if missing:
        raise FileNotFoundError(f"CIFAR-10 folder '{folder}' lacks {', '.join(missing)}; expected "
                                f"all of {', '.join(CIFAR10_TRAIN_FILES)} and {CIFAR10_TEST_FILE}")
    batches = [_read_cifar_batch(os.path.join(folder, f)) for f in CIFAR10_TRAIN_FILES]
    X = torch.cat([b[0] for b in batches]).to(torch.float32) / 255.0
    y = torch.cat([b[1] for b in batches])
    X_test, y_test = _read_cifar_batch(os.path.join(folder, CIFAR10_TEST_FILE))
    if num_test > X_test.shape[0]:
        raise ValueError(f"asked for {num_test} test images but '{folder}/{CIFAR10_TEST_FILE}' "
                         f"has {X_test.shape[0]}")
    (train, val, _) = _split(X, y, num_train, num_val, 0, seed)
    test = (X_test[:num_test].to(torch.float32) / 255.0, y_test[:num_test])
    return _finish([train, val, test], subtract_mean, dtype, device)


def plot_stats(stats):
    """Loss per iteration beside train and validation accuracy per epoch.

    Args:
        stats: dict returned by nn_train.
    Returns:
        Figure with two axes.
    """
    fig = Figure(figsize=(11, 4), layout="constrained")
    ax_loss, ax_acc = fig.subplots(1, 2)
    ax_loss.plot(stats["loss_history"])
    ax_loss.set(title="Loss history", xlabel="Iteration", ylabel="Loss")
    ax_acc.plot(stats["train_acc_history"], "o-", label="train")
    ax_acc.plot(stats["val_acc_history"], "o-", label="val")
    ax_acc.set(title="Classification accuracy history", xlabel="Epoch", ylabel="Accuracy")
    ax_acc.legend()
    return fig


def plot_loss_curves(stats_by_label, title="Training loss"):
    """Loss curves of several runs overlaid on a log scale; a diverged run ends in an X.

    Args:
        stats_by_label: {label: stats dict returned by nn_train}.
    Returns:
        Figure with one axis.
    """
    fig = Figure(figsize=(8, 4.5), layout="constrained")
    ax = fig.subplots()
    for label, stats in stats_by_label.items():
        losses = stats["loss_history"]
        diverged_at = stats.get("diverged_at")
        if diverged_at is not None:
            label = f"{label} (diverged at iteration {diverged_at})"
        (line,) = ax.plot(range(len(losses)), losses, label=label)
        if diverged_at is not None:
            y_mark = losses[-1] if losses else 1.0
            ax.plot([diverged_at], [y_mark], "X", color=line.get_color(), markersize=12)
    ax.set_yscale("log")
    ax.set(title=title, xlabel="Iteration", ylabel="Loss (log scale)")
    ax.legend()
    return fig


def show_net_weights(params, image_shape, max_units=100):
    """The first-layer weights of each hidden unit, drawn as images.

    Args:
        params: dict with W1 (D, H), D = product of image_shape.
        image_shape: (height, width) for grey images, or (channels, height, width).
        max_units: draw at most this many hidden units.
    Returns:
        Figure with one image per hidden unit, each scaled to its own range.
    """
    W1 = params["W1"].detach().to("cpu", torch.float32)
    H = min(W1.shape[1], max_units)
    cols = min(H, 10)
    rows = -(-H // cols)
    fig = Figure(figsize=(cols * 1.0, rows * 1.0), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= H:
            continue
        w = W1[:, i].reshape(image_shape)
        if w.dim() == 3:
            w = w.permute(1, 2, 0)  # (channels, height, width) -> (height, width, channels)
        w = (w - w.min()) / (w.max() - w.min()).clamp(min=1e-12)
        ax.imshow(w.numpy(), cmap="gray" if w.dim() == 2 else None)
    fig.suptitle("First-layer weights")
    return fig


# The notebook's support (appended for two_layer_net.ipynb): checks that report an error in one
# line instead of a traceback, progress bars, extra plots, and the vanishing/exploding-gradient
# demonstrations. Those demonstrations use torch.autograd: they analyse deeper networks, they are
# not the student's task.
import builtins  # noqa: E402 - this section keeps its imports with it
import contextlib  # noqa: E402
import dataclasses  # noqa: E402
import functools  # noqa: E402
import hashlib  # noqa: E402
import math  # noqa: E402
import sys  # noqa: E402
import traceback  # noqa: E402
import types  # noqa: E402

ACTIVATIONS = {"sigmoid": torch.sigmoid, "relu": torch.relu}

# CPU threads for the notebook and main.py, set in one place (use_threads). Their nets are tiny
# (the digits: 200 x 64 @ 64 x 100); measured on a 2-core machine, one thread ran both fastest
# (README.md, "Threads"). $KIT_THREADS overrides it: a number, or "default" for torch's own.
NUM_THREADS = 1
THREADS_ENV = "KIT_THREADS"


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


def describe_error(error):
    """One line for an exception: its type, message and where it was raised (no traceback).

    Returns:
        e.g. "NotImplementedError: compute the scores (two_layer_net.py, line 47, in
        nn_forward_pass)"; the place is the innermost frame outside torch's own code.
    """
    if getattr(error, "described_plainly", False):
        return str(error)
    text = f"{type(error).__name__}: {error}".strip()
    if isinstance(error, SyntaxError) and error.filename:
        return f"{type(error).__name__}: {error.msg} ({os.path.basename(error.filename)}, " \
               f"line {error.lineno})"
    torch_dir = os.path.dirname(torch.__file__)
    frames = traceback.extract_tb(error.__traceback__)
    outside_torch = [f for f in frames if not f.filename.startswith(torch_dir)]
    if not (outside_torch or frames):
        return text
    frame = (outside_torch or frames)[-1]
    if "ipykernel_" in frame.filename or frame.filename.startswith("<"):
        return f"{text} (this cell, line {frame.lineno})"
    return f"{text} ({os.path.basename(frame.filename)}, line {frame.lineno}, in {frame.name})"


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
        digest = None if source is None else hashlib.sha256(source).hexdigest()
        if digest is not None and digest == self.digest:
            return False
        first = self.digest is None and self.error is None
        self.digest = digest
        if source is not None:
            reason = self._load(source)
        if reason is None:
            self.error = None
            if not first:
                print(f"({os.path.basename(self.path)} changed on disk: reloaded)")
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


def accuracy(y_pred, y):
    """Fraction of predictions equal to the labels, a float in [0, 1]."""
    return (y_pred == y.to(y_pred.device)).float().mean().item()


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


def learning_rate_schedule(learning_rate, learning_rate_decay, num_iters, num_train, batch_size):
    """The learning rate nn_train uses at each iteration (it decays once per epoch).

    Returns:
        list of num_iters floats; entry `it` is the rate of the update at iteration `it`.
    """
    iterations_per_epoch = max(num_train // batch_size, 1)
    rates, rate = [], learning_rate
    for it in range(num_iters):
        rates.append(rate)
        if it % iterations_per_epoch == 0:
            rate *= learning_rate_decay
    return rates


# A learning rate below this moves float64 weights of order 1 by less than their rounding error.
SMALLEST_RATE_SHOWN = 1e-16


def plot_loss_and_learning_rate(stats_by_label, rates_by_label):
    """Loss curves (log scale) beside the learning rate of each iteration (log scale).

    Args:
        stats_by_label: {label: stats dict returned by nn_train}.
        rates_by_label: {label: list of learning rates, one per iteration}.
    Returns:
        Figure with two axes.
    """
    fig = Figure(figsize=(12, 4.5), layout="constrained")
    ax_loss, ax_rate = fig.subplots(1, 2)
    for label, stats in stats_by_label.items():  # shorter runs drawn on top of longer ones
        ax_loss.plot(stats["loss_history"], label=label, zorder=-len(stats["loss_history"]))
    ax_loss.set(title="Training loss", xlabel="Iteration (log scale)", ylabel="Loss",
                xscale="log")
    ax_loss.legend()
    for label, rates in rates_by_label.items():
        ax_rate.plot(rates, label=label, zorder=-len(rates))
    smallest = min(min(rates) for rates in rates_by_label.values())
    largest = max(max(rates) for rates in rates_by_label.values())
    ax_rate.set(title="Learning rate used at each iteration", xlabel="Iteration (log scale)",
                ylabel="Learning rate (log scale)", xscale="log", yscale="log")
    if smallest < SMALLEST_RATE_SHOWN:
        ax_rate.set_ylim(SMALLEST_RATE_SHOWN, largest * 10)
        ax_rate.set_title(f"Learning rate used at each iteration (below {SMALLEST_RATE_SHOWN:g} "
                          "not shown)")
    ax_rate.legend()
    return fig


def plot_acc_curves(stats_by_label, title):
    """Train (solid) and validation (dashed) accuracy per epoch, one colour per setting.

    Args:
        stats_by_label: {label: stats dict returned by nn_train}.
    Returns:
        Figure with one axis.
    """
    fig = Figure(figsize=(8, 4.5), layout="constrained")
    ax = fig.subplots()
    for label, stats in stats_by_label.items():
        (line,) = ax.plot(stats["train_acc_history"], label=f"{label} train")
        ax.plot(stats["val_acc_history"], "--", color=line.get_color(), label=f"{label} val")
    ax.set(title=title, xlabel="Epoch", ylabel="Accuracy")
    ax.legend(ncols=2, fontsize="small")
    return fig


def plot_search_heatmap(search):
    """Validation accuracy of a hyperparameter search: learning rate by regularisation, one panel
    per hidden size (the best over any other hyperparameter).

    Args:
        search: list of dicts with learning_rate, hidden_size, reg and val_acc, as in
            best_stat["search"].
    Returns:
        Figure with one heat map per hidden size, each cell labelled with its accuracy.
    """
    if not search:
        raise ValueError("the search list is empty; find_best_net should fill best_stat['search']")
    rates = sorted({s["learning_rate"] for s in search})
    regs = sorted({s["reg"] for s in search})
    sizes = sorted({s["hidden_size"] for s in search})
    fig = Figure(figsize=(4.2 * len(sizes) + 1, 3.8), layout="constrained")
    axes = fig.subplots(1, len(sizes), squeeze=False)[0]
    for ax, size in zip(axes, sizes):
        grid = torch.full((len(rates), len(regs)), float("nan"))
        for s in search:
            if s["hidden_size"] == size:
                i, j = rates.index(s["learning_rate"]), regs.index(s["reg"])
                grid[i, j] = max(s["val_acc"], grid[i, j].nan_to_num(-1.0).item())
        image = ax.imshow(grid.numpy(), cmap="viridis", vmin=0.0, vmax=1.0, origin="lower")
        for i in range(len(rates)):
            for j in range(len(regs)):
                if not math.isnan(grid[i, j]):
                    ax.text(j, i, f"{grid[i, j]:.3f}", ha="center", va="center",
                            color="white" if grid[i, j] < 0.6 else "black", fontsize="small")
        ax.set_xticks(range(len(regs)), [f"{r:g}" for r in regs])
        ax.set_yticks(range(len(rates)), [f"{r:g}" for r in rates])
        ax.set(title=f"hidden size {size}", xlabel="regularisation", ylabel="learning rate")
    fig.colorbar(image, ax=list(axes), label="validation accuracy")
    return fig


def activation_and_derivative(name, x):
    """An activation function and its derivative at the points x, the derivative by autograd.

    Args:
        name: "sigmoid" or "relu"; x: (M,) points.
    Returns:
        (values, derivatives), both (M,) tensors detached from the graph.
    """
    x = x.detach().clone().requires_grad_()
    values = ACTIVATIONS[name](x)
    (derivatives,) = torch.autograd.grad(values.sum(), x)
    return values.detach(), derivatives


def plot_activations(x=None):
    """Sigmoid and ReLU with their derivatives, side by side (the sigmoid's peaks at 0.25).

    Returns:
        Figure with two axes.
    """
    x = torch.linspace(-6, 6, 601) if x is None else x
    fig = Figure(figsize=(11, 4), layout="constrained")
    for ax, name in zip(fig.subplots(1, 2), ("sigmoid", "relu")):
        values, derivatives = activation_and_derivative(name, x)
        ax.plot(x, values, label=name)
        ax.plot(x, derivatives, "--", label=f"derivative of {name}")
        peak = derivatives.max().item()
        ax.axhline(peak, color="grey", linewidth=0.8)
        ax.text(x[0].item(), peak, f" max derivative {peak:g}", va="bottom", fontsize="small")
        ax.set(title=name, xlabel="x")
        ax.legend(loc="center right")
    return fig


def init_deep_net(depth, in_features, width, num_classes, gain, seed=0, dtype=torch.float32,
                  device="cpu"):
    """Weights of a fully-connected net with `depth` layers, drawn with std gain / sqrt(fan_in).

    Drawn on the CPU from a private generator seeded with `seed`, then moved to `device`.

    Returns:
        list of depth (W, b) pairs: W (fan_in, fan_out), b zeros; in_features -> width ... ->
        num_classes.
    """
    g = torch.Generator().manual_seed(seed)
    sizes = [in_features] + [width] * (depth - 1) + [num_classes]
    layers = []
    for fan_in, fan_out in zip(sizes, sizes[1:]):
        W = gain / fan_in ** 0.5 * torch.randn(fan_in, fan_out, generator=g, dtype=dtype)
        layers.append((W.to(device), torch.zeros(fan_out, dtype=dtype, device=device)))
    return layers


def deep_net_scores(layers, X, activation):
    """Class scores of the net: the activation after every layer but the last. (N, C)."""
    h = X
    for i, (W, b) in enumerate(layers):
        h = h @ W + b
        if i < len(layers) - 1:
            h = ACTIVATIONS[activation](h)
    return h


def layer_gradient_norms(activation, depth=8, width=64, gain=1.0, num_examples=256,
                         num_classes=10, seed=0):
    """The gradient norm of every layer's weights of a freshly initialised deep net.

    The inputs are standard normal and the labels random; the loss is softmax cross-entropy.

    Returns:
        list of depth floats, ||dL/dW_l|| for l = 1 (next to the input) ... depth (the scores).
    """
    g = torch.Generator().manual_seed(seed + 1)
    X = torch.randn(num_examples, width, generator=g)
    y = torch.randint(num_classes, (num_examples,), generator=g)
    layers = init_deep_net(depth, width, width, num_classes, gain, seed)
    weights = [W.requires_grad_() for W, _ in layers]
    loss = torch.nn.functional.cross_entropy(deep_net_scores(layers, X, activation), y)
    return [grad.norm().item() for grad in torch.autograd.grad(loss, weights)]


def plot_layer_gradient_norms(norms_by_label):
    """Bars of each layer's gradient norm on a log scale, one colour per network.

    Args:
        norms_by_label: {label: list of per-layer gradient norms, input side first}.
    Returns:
        Figure with one axis.
    """
    fig = Figure(figsize=(9, 4.5), layout="constrained")
    ax = fig.subplots()
    width = 0.8 / len(norms_by_label)
    for k, (label, norms) in enumerate(norms_by_label.items()):
        ax.bar([i + 1 + (k - (len(norms_by_label) - 1) / 2) * width for i in range(len(norms))],
               norms, width=width, label=label)
    depth = max(len(norms) for norms in norms_by_label.values())
    ax.set_xticks(range(1, depth + 1))
    ax.set(yscale="log", title="Gradient norm of each layer's weights at initialisation",
           xlabel="Layer (1 = next to the input)", ylabel="||dL/dW|| (log scale)")
    top = max(max(norms) for norms in norms_by_label.values())
    ax.set_ylim(top=top * 100)  # room for the legend above the bars
    ax.legend(loc="upper left", ncols=len(norms_by_label), fontsize="small")
    return fig


def clip_by_norm(grads, max_norm):
    """Scale a list of gradients so that their joint L2 norm is at most max_norm.

    Returns:
        (clipped gradients, the norm before clipping).
    """
    total = torch.sqrt(sum(g.pow(2).sum() for g in grads)).item()
    scale = min(1.0, max_norm / total) if total > 0 else 1.0
    return [g * scale for g in grads], total


def train_deep_net(X, y, activation="relu", depth=8, width=64, gain=2 ** 0.5, learning_rate=1e-2,
                   num_iters=200, batch_size=200, clip_norm=None, seed=0):
    """Minibatch SGD on a deep fully-connected net (autograd), optionally clipping the gradient.

    Stops at the first non-finite loss, like nn_train. The minibatches come from a private
    generator seeded with `seed`; torch's global generator is not touched.

    Returns:
        stats dict: loss_history and grad_norm_history (the norm before clipping), one float per
        iteration, and diverged_at (the iteration whose loss was not finite, or None).
    """
    g = torch.Generator().manual_seed(seed + 2)
    num_classes = int(y.max()) + 1
    layers = init_deep_net(depth, X.shape[1], width, num_classes, gain, seed, X.dtype, X.device)
    params = [p.requires_grad_() for layer in layers for p in layer]
    stats = {"loss_history": [], "grad_norm_history": [], "diverged_at": None}
    for it in range(num_iters):
        idx = torch.randint(X.shape[0], (batch_size,), generator=g).to(X.device)
        scores = deep_net_scores(layers, X[idx], activation)
        loss = torch.nn.functional.cross_entropy(scores, y[idx])
        if not torch.isfinite(loss):
            stats["diverged_at"] = it
            break
        grads = torch.autograd.grad(loss, params)
        if clip_norm is not None:
            grads, norm = clip_by_norm(grads, clip_norm)
        else:
            norm = torch.sqrt(sum(gr.pow(2).sum() for gr in grads)).item()
        with torch.no_grad():
            for p, grad in zip(params, grads):
                p -= learning_rate * grad
        stats["loss_history"].append(loss.item())
        stats["grad_norm_history"].append(norm)
    return stats
