"""The kit's one oracle: the two-layer net's forward pass, loss and gradients by torch.autograd.

Every expected value of the kit comes from here: the grader's (grader/rubric.py), the public
tests' (tests/test_two_layer_net.py) and the notebook's (helpers_lib/gradcheck.py, data.py).
It is the instructor's: the student release ships release/oracle.py in its place, which replays
what this module computed for the release's own fixed inputs when the release was built
(`grade.py release` writes them to helpers_lib/expected.pt), so that no working implementation
of a graded part leaves the kit.

Recording: with $TWO_LAYER_NET_ORACLE_RECORD set to a path when this module is imported, every
call's inputs and outputs are saved there when the process exits; `recording()` collects them
within a process. Shapes: N examples, D input features, H hidden units, C classes.
"""
import atexit
import contextlib
import os

import torch

RECORD_ENV = "TWO_LAYER_NET_ORACLE_RECORD"
FORWARD, LOSS_AND_GRADS = "forward", "loss_and_grads"

_records = []  # one list per recording() in progress (and one for $TWO_LAYER_NET_ORACLE_RECORD)


def forward(params, X):
    """(scores (N, C), hidden (N, H)) of the net, float64 on the CPU."""
    params64, X64 = _as_float64(params), X.detach().to("cpu", torch.float64)
    hidden = (X64 @ params64["W1"] + params64["b1"]).clamp(min=0)
    scores = hidden @ params64["W2"] + params64["b2"]
    _record(FORWARD, params, X, None, None, {"scores": scores, "hidden": hidden})
    return scores, hidden


def loss_and_grads(params, X, y, reg=0.0):
    """(loss, grads): the softmax loss plus reg * (sum(W1**2) + sum(W2**2)), a 0-dim float64
    tensor, and its gradients by torch.autograd, a dict like params (float64, on the CPU)."""
    with torch.enable_grad():  # whatever ran in this process before may have switched it off
        leaves = {k: v.requires_grad_() for k, v in _as_float64(params).items()}
        X64, y_cpu = X.detach().to("cpu", torch.float64), y.detach().to("cpu")
        hidden = (X64 @ leaves["W1"] + leaves["b1"]).clamp(min=0)
        scores = hidden @ leaves["W2"] + leaves["b2"]
        correct = scores.gather(1, y_cpu[:, None])[:, 0]
        loss = (torch.logsumexp(scores, dim=1) - correct).mean()
        loss = loss + reg * ((leaves["W1"] ** 2).sum() + (leaves["W2"] ** 2).sum())
        loss.backward()
    loss, grads = loss.detach(), {k: v.grad for k, v in leaves.items()}
    _record(LOSS_AND_GRADS, params, X, y, reg, {"loss": loss, "grads": grads})
    return loss, grads


def _as_float64(params):
    return {k: v.detach().to("cpu", torch.float64).clone() for k, v in params.items()}


def _record(call, params, X, y, reg, outputs):
    if not _records:
        return
    entry = {"call": call, "params": {k: v.detach().to("cpu").clone() for k, v in params.items()},
             "X": X.detach().to("cpu").clone(), "outputs": outputs}
    if y is not None:
        entry["y"], entry["reg"] = y.detach().to("cpu").clone(), float(reg)
    for records in _records:
        records.append(entry)


@contextlib.contextmanager
def recording():
    """Collect every call made inside the block: yields the list of records, each a dict
    {"call", "params", "X", ["y", "reg"], "outputs"} of CPU tensors (torch.save-able)."""
    records = []
    _records.append(records)
    try:
        yield records
    finally:
        _records.remove(records)


def _same(a, b):
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, torch.Tensor):
        return (isinstance(b, torch.Tensor) and a.dtype == b.dtype and a.shape == b.shape
                and bool(torch.equal(a, b)))
    return a == b


def distinct(records):
    """The records without repeats (the same call on identical inputs), in their first order;
    equal tensors are one object, so torch.save writes each once (a case's inputs serve several
    calls: with and without reg, the loss and the gradient tests)."""
    kept, tensors = [], {}

    def shared(value):
        if isinstance(value, dict):
            return {k: shared(v) for k, v in value.items()}
        if isinstance(value, torch.Tensor):
            key = (value.dtype, tuple(value.shape), value.contiguous().numpy().tobytes())
            return tensors.setdefault(key, value)
        return value

    for entry in records:
        inputs = {k: v for k, v in entry.items() if k != "outputs"}
        if not any(_same(inputs, {k: v for k, v in other.items() if k != "outputs"})
                   for other in kept):
            kept.append(shared(entry))
    return kept


def _save_at_exit(records, path):
    torch.save(distinct(records), path)


if os.environ.get(RECORD_ENV):
    _records.append([])
    atexit.register(_save_at_exit, _records[-1], os.environ[RECORD_ENV])
