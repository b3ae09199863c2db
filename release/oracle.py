"""The expected values of this folder's checks, recorded when the instructor built the release.

The notebook's checks, the tests under tests/ and `python grade.py` compare your functions with
values computed in the instructor's kit for the inputs these checks use (they are fixed: the
same seeds every run). Those values are stored in helpers_lib/expected.pt; this module looks a
check's inputs up there and returns what was recorded. It computes nothing itself, so this
folder holds no working version of what you write.

A check on inputs that were not recorded raises NotRecorded. Shapes: N examples, D input
features, H hidden units, C classes.
"""
import math
import os

import torch

EXPECTED_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "expected.pt")
FORWARD, LOSS_AND_GRADS = "forward", "loss_and_grads"
# Inputs match a record when each tensor is within this relative distance of it (largest
# difference over largest magnitude). Some inputs are computed (the huge-scores cases scale W2
# by a largest score), and another machine's matrix products may round them ~1e-16 apart; any
# input a check really changes differs by far more. 1e-12 away, every expected value moves by
# ~1e-12 relative at most, far inside the checks' 1e-10 bar.
INPUT_RTOL = 1e-12


class NotRecorded(LookupError):
    """A check asked for the expected values of inputs that were not recorded."""


def _load():
    try:
        records = torch.load(EXPECTED_PATH, weights_only=True)
    except FileNotFoundError:
        return None
    index = {}
    for entry in records:
        index.setdefault(_signature(entry["call"], entry["params"], entry["X"],
                                    entry.get("y")), []).append(entry)
    return index


def _signature(call, params, X, y):
    def shape(t):
        return tuple(t.shape), str(t.dtype)

    return (call, tuple(sorted((k, shape(v)) for k, v in params.items())), shape(X),
            None if y is None else shape(y))


def _close(got, recorded):
    got = got.detach().to("cpu")
    if not got.is_floating_point():
        return bool(torch.equal(got, recorded))
    if not bool(torch.isfinite(got).all()):
        return bool(torch.equal(got, recorded))
    top = (got.to(torch.float64) - recorded.to(torch.float64)).abs().max().item() if got.numel() else 0.0
    scale = recorded.to(torch.float64).abs().max().item() if recorded.numel() else 0.0
    return top <= INPUT_RTOL * scale


_INDEX = _load()  # at import: a check running where files cannot be read still finds it


def _lookup(call, params, X, y=None, reg=None):
    if _INDEX is None:
        raise NotRecorded(f"{EXPECTED_PATH} is missing, so this check has no expected values; "
                          "copy helpers_lib/expected.pt back from the release you were given")
    for entry in _INDEX.get(_signature(call, params, X, y), []):
        if (all(_close(params[k], entry["params"][k]) for k in params) and _close(X, entry["X"])
                and (y is None or (_close(y, entry["y"])
                                   and math.isclose(reg, entry["reg"], rel_tol=INPUT_RTOL)))):
            return entry["outputs"]
    shapes = ", ".join(f"{k} {tuple(v.shape)}" for k, v in params.items())
    raise NotRecorded(f"no expected values were recorded for these inputs ({shapes}, X "
                      f"{tuple(X.shape)} {X.dtype}" + ("" if y is None else f", reg={reg:g}")
                      + "): the release's checks know only the inputs they use, recorded when "
                      "the release was built. Run the checks as they are given (restore a "
                      "changed test or notebook check cell from the release), and test other "
                      "inputs with helpers.grad_check (numeric gradients)")


def forward(params, X):
    """(scores (N, C), hidden (N, H)) recorded for these inputs, float64 on the CPU."""
    outputs = _lookup(FORWARD, params, X)
    return outputs["scores"].clone(), outputs["hidden"].clone()


def loss_and_grads(params, X, y, reg=0.0):
    """(loss, grads) recorded for these inputs: a 0-dim float64 tensor and a dict like params
    (float64, on the CPU)."""
    outputs = _lookup(LOSS_AND_GRADS, params, X, y, reg)
    return outputs["loss"].clone(), {k: v.clone() for k, v in outputs["grads"].items()}
