"""Gradient checks: relative error, central differences, and the kit's oracle (helpers_lib/oracle.py).

Everything is computed in float64; each function returns its numbers and prints nothing.
"""
import torch

from helpers_lib import oracle


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


def grad_check(loss_func, params, X, y, reg=0.0, h=1e-6, names=None):
    """Compare the analytic gradients of `loss_func` with central differences, in float64.

    Args:
        loss_func: (params, X, y=y, reg=reg) -> (loss, grads), e.g. nn_forward_backward.
        params: dict of parameters (copied to float64; not modified).
        X: (N, D) inputs; y: (N,) labels; reg: regularisation strength.
        names: the parameters to check (default: all); only their gradients must be right in
            shape, so that one wrong gradient fails its own check alone.
    Returns:
        dict: parameter name -> max relative error between analytic and numeric gradient.
    """
    params64 = {k: v.detach().to(torch.float64).clone() for k, v in params.items()}
    X64 = X.detach().to(torch.float64)
    names = list(params64) if names is None else list(names)
    _, grads = loss_func(params64, X64, y=y, reg=reg)
    require_gradients(grads, {k: params64[k] for k in names})
    errors = {}
    for name in names:
        def loss_at(value, name=name):
            return loss_func({**params64, name: value}, X64, y=y, reg=reg)[0]
        errors[name] = rel_error(grads[name], numeric_gradient(loss_at, params64[name], h))
    return errors


class MissingGradients(NotImplementedError):
    """nn_forward_backward returned the loss without some of its gradients (Part 2 unwritten)."""

    described_plainly = True  # describe_error gives the message alone: the place is not the bug


class WrongGradientShape(ValueError):
    """A gradient whose shape is not its parameter's: the message names both."""

    described_plainly = True


def require_gradients(grads, params):
    """`grads` when it holds, for every key of `params`, a tensor of that parameter's shape;
    else MissingGradients (a key missing) or WrongGradientShape."""
    missing = [k for k in params if k not in grads]
    if missing:
        names = ", ".join(f"grads['{k}']" for k in missing)
        raise MissingGradients(f"nn_forward_backward returned no {names}: backpropagate (Part 2 "
                               "of nn_forward_backward, still to write)")
    for k, value in params.items():
        shape = tuple(getattr(grads[k], "shape", ()))
        if not isinstance(grads[k], torch.Tensor) or shape != tuple(value.shape):
            got = (f"shape {shape}" if isinstance(grads[k], torch.Tensor)
                   else f"a {type(grads[k]).__name__}")
            raise WrongGradientShape(f"nn_forward_backward returned grads['{k}'] of {got}; "
                                     f"params['{k}'] has shape {tuple(value.shape)}, and each "
                                     "gradient has the shape of its parameter")
    return grads


def largest_differences(yours, correct, count=3):
    """Where two tensors of one shape differ most: [(index, yours, correct)], largest
    |yours - correct| first, at most `count` entries (none when they are equal)."""
    yours = torch.as_tensor(yours).detach().to("cpu", torch.float64)
    correct = torch.as_tensor(correct).detach().to("cpu", torch.float64)
    if yours.shape != correct.shape:
        raise ValueError(f"your tensor has shape {tuple(yours.shape)}, the correct one "
                         f"{tuple(correct.shape)}")
    difference = (yours - correct).abs().flatten()
    difference = torch.where(torch.isnan(difference), torch.inf, difference)
    order = difference.argsort(descending=True)[:count]
    return [(tuple(int(i) for i in torch.unravel_index(flat, yours.shape)),
             yours.flatten()[flat].item(), correct.flatten()[flat].item())
            for flat in order if difference[flat] > 0]


def autograd_loss_and_grads(params, X, y, reg=0.0):
    """The loss and its gradients from the kit's oracle (helpers_lib/oracle.py: torch.autograd
    in the instructor's kit, the values recorded for the release's checks in the release).

    Returns:
        (loss, grads): a 0-dim float64 tensor and a dict like params, on the CPU.
    """
    return oracle.loss_and_grads(params, X, y, reg)
