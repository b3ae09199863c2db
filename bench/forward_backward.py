"""Part 1: nn_forward_backward against torch.autograd and against its matrix products alone.

Four candidates on the same float32 problem, timed interleaved:
- ours: `nn_forward_backward(params, X, y, reg)`, the loss and all four gradients;
- autograd: the same network written the plain way (`relu(X @ W1 + b1) @ W2 + b2`,
  `F.cross_entropy`, `reg * ((W1 ** 2).sum() + (W2 ** 2).sum())`) and `loss.backward()`;
- autograd, F.linear: the test suite's oracle (tests/conftest.py), `F.linear(X, W1.T, b1)` and
  `W.square().sum()`; its W1 gradient arrives transposed and is added to the L2 term's in
  the other memory order (slower than the plain version in most of our runs, not all);
- matmul floor: the five products no implementation can skip, each one `torch.mm` into a fresh
  tensor in the layout the API needs: X @ W1, hidden @ W2, hidden.T @ dscores, dscores @ W2.T
  and X.T @ dz1.
"""
import time

import torch
import torch.nn.functional as F

from timing import Row, Spread, interleave, ratios, seconds
from two_layer_net import nn_forward_backward

CIFAR_SHAPE = (200, 3072, 100, 10)
SMALL_SHAPE = (64, 64, 100, 10)
TARGETS = {"autograd": 0.70, "autograd_linear": 0.70, "floor": 1.15}  # for the CIFAR shape only
LABELS = {"autograd": "autograd", "autograd_linear": "autograd (F.linear, as tests/conftest.py)",
          "floor": "matmul floor"}
REG = 1e-3
SAMPLE_SECONDS = 0.05  # each timed sample repeats a call until it lasts about this long


def make_problem(N, D, H, C, seed=0):
    """float32 params at a trained net's scale (std 1/sqrt(fan-in)), X (N, D) and y (N,)."""
    g = torch.Generator().manual_seed(seed)
    params = {"W1": torch.randn(D, H, generator=g) / D ** 0.5,
              "b1": 0.1 * torch.randn(H, generator=g),
              "W2": torch.randn(H, C, generator=g) / H ** 0.5,
              "b2": 0.1 * torch.randn(C, generator=g)}
    X = torch.randn(N, D, generator=g)
    y = torch.randint(C, (N,), generator=g)
    return params, X, y


def autograd_loss(leaves, X, y, reg):
    """The network and its loss, written the plain way, on leaves that require grad."""
    hidden = torch.relu(X @ leaves["W1"] + leaves["b1"])
    scores = hidden @ leaves["W2"] + leaves["b2"]
    l2 = (leaves["W1"] ** 2).sum() + (leaves["W2"] ** 2).sum()
    return F.cross_entropy(scores, y) + reg * l2


def autograd_linear_loss(leaves, X, y, reg):
    """The network and its loss as the test suite's oracle writes them (tests/conftest.py)."""
    hidden = F.relu(F.linear(X, leaves["W1"].T, leaves["b1"]))
    scores = F.linear(hidden, leaves["W2"].T, leaves["b2"])
    loss = F.cross_entropy(scores, y)
    return loss + reg * (leaves["W1"].square().sum() + leaves["W2"].square().sum())


def candidates(params, X, y, reg):
    """{name: function of no arguments} for ours, both autograd versions and the floor."""
    leaves = {k: v.clone().requires_grad_() for k, v in params.items()}
    W1, W2 = params["W1"], params["W2"]
    hidden = torch.relu(X @ W1 + params["b1"])
    dscores = torch.softmax(hidden @ W2, dim=1)
    dz1 = hidden.clone()

    def ours():
        return nn_forward_backward(params, X, y, reg)

    def autograd():
        for leaf in leaves.values():
            leaf.grad = None
        loss = autograd_loss(leaves, X, y, reg)
        loss.backward()
        return loss

    def autograd_linear():
        for leaf in leaves.values():
            leaf.grad = None
        loss = autograd_linear_loss(leaves, X, y, reg)
        loss.backward()
        return loss

    def floor():
        return (torch.mm(X, W1), torch.mm(hidden, W2), torch.mm(hidden.T, dscores),
                torch.mm(dscores, W2.T), torch.mm(X.T, dz1))

    return {"ours": ours, "autograd": autograd, "autograd_linear": autograd_linear, "floor": floor}


def check_agreement(params, X, y, reg):
    """Raise unless ours agrees with autograd, so that a wrong answer is never timed."""
    loss, grads = nn_forward_backward(params, X, y, reg)
    leaves = {k: v.clone().requires_grad_() for k, v in params.items()}
    want = autograd_loss(leaves, X, y, reg)
    want.backward()
    torch.testing.assert_close(loss, want.detach(), rtol=1e-4, atol=1e-6)
    for k in params:
        torch.testing.assert_close(grads[k], leaves[k].grad, rtol=1e-4, atol=1e-6)


def calls_per_sample(fn, seconds_wanted=SAMPLE_SECONDS):
    """How many calls of `fn` last about `seconds_wanted` (at least 1)."""
    fn()
    start = time.perf_counter()
    fn()
    once = max(time.perf_counter() - start, 1e-7)
    return max(1, round(seconds_wanted / once))


def run(*, threads, rounds):
    """Rows for both shapes: ours / autograd and ours / matmul floor, with their spreads."""
    rows = []
    for shape in (CIFAR_SHAPE, SMALL_SHAPE):
        N, D, H, C = shape
        params, X, y = make_problem(*shape)
        check_agreement(params, X, y, REG)
        fns = candidates(params, X, y, REG)
        number = calls_per_sample(fns["autograd"])
        samples = interleave(fns, rounds=rounds, number=number, warmup=number)
        median = {k: Spread.of(v).median for k, v in samples.items()}
        is_cifar = shape == CIFAR_SHAPE
        name = f"N={N}, D={D}, H={H}, C={C}"
        for baseline, label in LABELS.items():
            rows.append(Row(
                part="1", measurement=f"nn_forward_backward / {label}, {name}",
                threads=str(threads), ratio=ratios(samples, "ours", baseline),
                target=TARGETS[baseline] if is_cifar else None,
                ours=seconds(median["ours"]), baseline=seconds(median[baseline]),
                note=f"{rounds} rounds x {number} calls"))
    return rows
