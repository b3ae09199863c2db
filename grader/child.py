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

from grader import wire

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
    frames = [f for f in traceback.extract_tb(error.__traceback__)
              if os.path.abspath(f.filename).startswith(student_folder + os.sep)]
    lines = [f"{type(error).__name__}: {message}"]
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
        except BaseException as error:  # noqa: B036 -- SystemExit and friends are student bugs too
            traceback.clear_frames(error.__traceback__)  # free what the failed call held
            try:
                self.meta["errors"][key] = describe_exception(error, self.folder)
            except MemoryError:
                self.meta["errors"][key] = "MemoryError"
            return None

    def forward(self, meta, arrays):
        for case in range(meta["cases"]):
            params, X = params_of(arrays, f"case{case}"), arrays[f"case{case}/X"].clone()

            def call():
                result = self.module.nn_forward_pass(params, X)
                if not isinstance(result, tuple) or len(result) != 2:
                    raise ContractError(f"nn_forward_pass returned {type(result).__name__}, "
                                        "expected a tuple (scores, hidden)")
                scores = as_tensor(result[0], "scores")
                hidden = as_tensor(result[1], "hidden")
                self.arrays[f"case{case}/scores"] = scores
                self.arrays[f"case{case}/hidden"] = hidden

            self.guarded(f"case{case}", call)

    def backward(self, meta, arrays):
        watch = AutogradWatch()
        for call_index, (case, reg) in enumerate(meta["calls"]):
            params = params_of(arrays, f"case{case}")
            X, y = arrays[f"case{case}/X"].clone(), arrays[f"case{case}/y"].clone()

            def call():
                result = self.module.nn_forward_backward(params, X, y, reg)
                if not isinstance(result, tuple) or len(result) != 2:
                    raise ContractError(f"nn_forward_backward with labels returned "
                                        f"{type(result).__name__}, expected a tuple (loss, grads)")
                loss, grads = result
                if not isinstance(grads, dict):
                    raise ContractError(f"grads is a {type(grads).__name__}, expected a dict")
                watch.check_outputs(params, grads)
                self.arrays[f"call{call_index}/loss"] = as_tensor(loss, "loss")
                for k, grad in grads.items():
                    if k in params:
                        self.arrays[f"call{call_index}/grad/{k}"] = as_tensor(grad, f"grads['{k}']")

            self.guarded(f"call{call_index}", call)
        self.meta["autograd"] = sorted(set(watch.used))

    loss_stability = backward

    def train_update(self, meta, arrays):
        self._train(meta, arrays, record_b2=False)

    def train_schedule(self, meta, arrays):
        self._train(meta, arrays, record_b2=True)

    def _train(self, meta, arrays, record_b2):
        """nn_train with the spy loss_func and pred_func of the contract."""
        params = params_of(arrays, "start")
        originals = dict(params)
        base_grads = fresh(arrays, "spy_grad")
        calls = {"train": [], "scores": 0}

        def spy_loss(params_now, X, y=None, reg=0.0):
            if y is None:
                calls["scores"] += 1
                return torch.zeros(X.shape[0], meta["num_classes"], dtype=X.dtype)
            i = len(calls["train"])
            calls["train"].append({"batch": int(X.shape[0]), "reg": _plain(reg)})
            if record_b2:
                self.arrays[f"b2_at_call{i}"] = params_now["b2"].detach().clone()
            scale = float(i + 1) if meta["grow_grads"] else 1.0
            loss = torch.tensor(meta["loss0"] + meta["loss_step"] * i, dtype=X.dtype)
            return loss, {k: scale * g.clone() for k, g in base_grads.items()}

        def spy_pred(params_now, loss_func, X):
            right = len(calls["train"])  # accuracy encodes which iteration asked, and on what
            return (torch.arange(X.shape[0]) >= right).long()

        def call():
            stats = self.module.nn_train(
                params, spy_loss, spy_pred, arrays["X"].clone(), arrays["y"].clone(),
                arrays["X_val"].clone(), arrays["y_val"].clone(),
                learning_rate=meta["learning_rate"], learning_rate_decay=meta["decay"],
                reg=meta["reg"], num_iters=meta["num_iters"], batch_size=meta["batch_size"])
            if not isinstance(stats, dict):
                raise ContractError(f"nn_train returned {type(stats).__name__}, expected the stats dict")
            for key in ("loss_history", "train_acc_history", "val_acc_history"):
                values = stats.get(key)
                if not isinstance(values, (list, tuple)):
                    raise ContractError(f"stats['{key}'] is {type(values).__name__}, expected a list")
                self.arrays[f"stats/{key}"] = torch.tensor([float(v) for v in values],
                                                           dtype=torch.float64)

        self.guarded("train", call)
        self.meta["train_calls"] = calls["train"]
        self.meta["replaced"] = sorted(k for k in originals
                                       if params.get(k) is not originals[k])
        for k, tensor in originals.items():
            final = params.get(k, tensor)
            if isinstance(final, torch.Tensor):
                self.arrays[f"final/{k}"] = final.detach().clone()

    def predict(self, meta, arrays):
        for case in range(meta["cases"]):
            params, X = params_of(arrays, f"case{case}"), arrays[f"case{case}/X"].clone()

            def scores_func(params_now, X_now, y=None, reg=0.0):
                if y is not None:
                    raise ContractError("nn_predict called loss_func with labels; call "
                                        "loss_func(params, X) to get the scores")
                hidden = torch.relu(X_now @ params_now["W1"] + params_now["b1"])
                return hidden @ params_now["W2"] + params_now["b2"]

            def call():
                labels = self.module.nn_predict(params, scores_func, X)
                self.arrays[f"case{case}/labels"] = as_tensor(labels, "nn_predict's result")

            self.guarded(f"case{case}", call)


def _plain(value):
    """A JSON-able record of a value the submission passed (e.g. reg)."""
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return float(value)
    if isinstance(value, (int, float)):
        return float(value)
    return repr(value)[:80]


def run_notebook(notebook_path, workdir, timeout):
    """Execute the submitted notebook in `workdir` with a fresh kernel; returns (meta, arrays).

    Every cell runs (errors are kept as outputs, for the person grading); meta lists the cells
    that raised. The kernel talks over Unix sockets in `workdir` (the sandbox allows no TCP).
    """
    import nbformat
    from jupyter_client import AsyncKernelManager
    from nbclient import NotebookClient

    notebook = nbformat.read(notebook_path, as_version=4)
    manager = AsyncKernelManager(kernel_name="python3", transport="ipc",
                                 ip=os.path.join(workdir, ".kernel"))
    client = NotebookClient(notebook, km=manager, timeout=timeout, allow_errors=True,
                            resources={"metadata": {"path": workdir}})
    meta = {"errors": {}}
    try:
        client.execute()
    except BaseException as error:  # noqa: B036 -- a dead kernel or a timeout is a finding too
        meta["errors"]["notebook"] = f"{type(error).__name__}: {str(error)[:MESSAGE_LIMIT]}"
    failed = []
    for index, cell in enumerate(notebook.cells):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                failed.append({"cell": index, "error": f"{output.get('ename')}: "
                                                       f"{str(output.get('evalue'))[:MESSAGE_LIMIT]}"})
    meta["failed_cells"] = failed
    data = nbformat.writes(notebook).encode()
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
        getattr(runner, group)(meta, arrays)
    return runner.meta, runner.arrays
