"""The contract's rubric: its table, hidden inputs from a seed, expected values from torch.autograd.

Everything here runs in the grader's own process. The test groups (grader/groups/, whose
`build(seed)` gives the rubric's groups) draw their inputs with `Draw` and compute the expected
values with the independent autograd oracle (helpers_lib/oracle.py; never the reference
solution). A `Group` holds what its child receives (`meta`, `arrays`: inputs only) and a `judge`
that turns what the child returned into one verdict per rubric test. This module imports no
group: the groups import it.

Seeds: a batch's seed is the instructor's secret (or the public self-check seed); each
submission's inputs come from `submission_seed(seed, content_hash)`, stretched by SHA-256 into a
256-bit SeedSequence for numpy's PCG64. So inputs differ per submission, and a student who
recovers their own inputs from a leak learns nothing about anyone else's. The public
self-check's inputs are the seed's own, the same for every submission (the release replays
their expected values).
"""
import hashlib
from dataclasses import dataclass
from typing import Callable

import numpy
import torch

from grader import PUBLIC_SEED, audit  # noqa: F401 -- PUBLIC_SEED: the rubric's public inputs
from grader import locate
from helpers_lib import oracle
from helpers_lib.gradcheck import rel_error

GRADIENT_TESTS = ("grad_W1", "grad_b1", "grad_W2", "grad_b2")
RUBRIC = {"forward": 15, "loss": 10, "loss_stability": 5, "grad_W1": 10, "grad_b1": 10,
          "grad_W2": 10, "grad_b2": 10, "train_update": 10, "train_schedule": 10, "predict": 10}
PARAM_NAMES = ("W1", "b1", "W2", "b2")
# The contract's bar: a correct float64 solution is ~1e-15 from autograd; 1e-6 leaves room for
# any order of summation and still fails every real bug.
THRESHOLD = 1e-6
FINITE_DIFFERENCES = "finite differences, not backpropagation"  # a gradient verdict's opening
DTYPE = torch.float64


@dataclass
class Verdict:
    passed: bool
    message: str


@dataclass
class Group:
    """One child process's worth of tests."""
    name: str
    tests: list
    meta: dict
    arrays: dict
    judge: Callable  # (meta, arrays) returned by the child -> {test: Verdict}


def submission_seed(seed, content_hash):
    """The seed of one submission's inputs: the batch's seed and the submission's content."""
    return f"{seed}/submission/{content_hash}"


class Draw:
    """Random tensors from a seed string and a purpose (so groups draw independently): numpy's
    PCG64 seeded with all 256 bits of SHA-256(seed/purpose). torch's own generator keeps only 32
    bits of its seed, few enough to search when some inputs leak."""

    def __init__(self, seed, purpose):
        entropy = int.from_bytes(hashlib.sha256(f"{seed}/{purpose}".encode()).digest(), "big")
        self.rng = numpy.random.Generator(numpy.random.PCG64(numpy.random.SeedSequence(entropy)))

    def randn(self, *shape, scale=1.0):
        return scale * torch.from_numpy(self.rng.standard_normal(shape))

    def rand(self, *shape):
        return torch.from_numpy(self.rng.random(shape))

    def randint(self, low, high, shape=()):
        return torch.from_numpy(self.rng.integers(low, high, shape, dtype=numpy.int64))


def draw_shapes(g, count):
    """`count` shapes (N, D, H, C); the first has N=1, the second C=2."""
    shapes = []
    for i in range(count):
        N, D, H = (int(v) for v in g.randint(2, 40, (3,)))
        C = int(g.randint(3, 12))
        shapes.append((1 if i == 0 else N, D, H, 2 if i == 1 else C))
    return shapes


def draw_case(g, N, D, H, C, w2_scale=1.0):
    params = {"W1": g.randn(D, H, scale=2.0 / D ** 0.5), "b1": g.randn(H, scale=0.5),
              "W2": g.randn(H, C, scale=w2_scale * 2.0 / H ** 0.5), "b2": g.randn(C, scale=0.5)}
    X = g.randn(N, D)
    y = g.randint(0, C, (N,))
    return params, X, y


def case_arrays(prefix, params, X, y=None):
    arrays = {f"{prefix}/{k}": v for k, v in params.items()}
    arrays[f"{prefix}/X"] = X
    if y is not None:
        arrays[f"{prefix}/y"] = y
    return arrays


def describe(shape):
    N, D, H, C = shape
    return f"N={N}, D={D}, H={H}, C={C}"


# The expected values: the kit's one autograd oracle (float64, on the CPU).
oracle_forward = oracle.forward
oracle_loss_and_grads = oracle.loss_and_grads


def check_array(got, want, what):
    """(relative error, None) when `got` has want's shape and dtype and is finite; else (None, why)."""
    if got is None:
        return None, f"no {what} was returned"
    if tuple(got.shape) != tuple(want.shape):
        return None, f"{what} has shape {tuple(got.shape)}, expected {tuple(want.shape)}"
    if got.dtype != want.dtype:
        return None, f"{what} has dtype {got.dtype}, expected {want.dtype}"
    if got.is_floating_point() and not torch.isfinite(got).all():
        return None, f"{what} contains NaN or inf"
    return rel_error(got, want), None


def judge_errors(checks, passing_note):
    """A verdict from [(label, relative error or None, problem or None)]: the worst one decides."""
    worst = 0.0
    for label, error, problem in checks:
        if problem is not None:
            return Verdict(False, f"{label}: {problem}")
        if not error <= THRESHOLD:
            return Verdict(False, f"{label}: max relative error {error:.1e} > {THRESHOLD:.0e}")
        worst = max(worst, error)
    return Verdict(True, f"max relative error {worst:.1e} <= {THRESHOLD:.0e} {passing_note}")


def child_error(meta, key):
    return (meta or {}).get("errors", {}).get(key)


def apply_audit(verdicts, findings, flags):
    """The source audit (grader.audit, read in the grader's process) decides the gradient tests;
    what the child reports of its own autograd use can only add to it, never remove it."""
    why = audit.gradient_verdict(findings)
    seen = any("used torch.autograd" in verdicts[name].message for name in GRADIENT_TESTS
               if name in verdicts)
    if seen and not why:
        flags.append("autograd seen at run time")
    if any(verdicts[name].message.startswith(FINITE_DIFFERENCES) for name in GRADIENT_TESTS
           if name in verdicts):
        flags.append("finite differences in the backward pass (seen in its values)")
    if why:
        for name in GRADIENT_TESTS:
            verdicts[name] = Verdict(False, why)


def locate_failures(verdicts, files):
    """Each failed test that judged a value gets, on a line of its own, the line(s) of the
    submission ({file name: bytes} of its .py files) that compute that value (grader.locate,
    read in the grader's process). Other failures (an exception, whose traceback names its
    line; a timeout; the audit's verdict) keep their message as it is."""
    failures = {name: v.message for name, v in verdicts.items() if not v.passed}
    try:
        found = locate.annotate(files, failures)
    except Exception:  # noqa: BLE001 -- a location is an extra: never a reason to lose a grade
        found = {}
    for name, where in found.items():
        verdicts[name] = Verdict(False, f"{verdicts[name].message}\n{where}")
