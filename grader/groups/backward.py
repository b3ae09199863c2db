"""The loss, its stability and the four gradient tests: nn_forward_backward's calls, judged
against the autograd oracle (loss_stability: scores of magnitude 1e3-1e4)."""
import torch

from grader.calls import AutogradWatch, ContractError, as_tensor, params_of
from grader.rubric import (
    Draw,
    FINITE_DIFFERENCES,
    PARAM_NAMES,
    THRESHOLD,
    Group,
    Verdict,
    case_arrays,
    check_array,
    child_error,
    describe,
    draw_case,
    draw_shapes,
    judge_errors,
    oracle_forward,
    oracle_loss_and_grads,
    rel_error,
)


# Scores of ordinary training magnitude (the `loss` test): a correct class with log-probability
# below log(1e-12) = -27.6 is common there, so `log(p + eps)` is visibly wrong.
LARGE_SCORES = (30.0, 100.0)
# Pre-activations put this close to 0 (kink cases). Any float64 summation order computes them
# within ~1e-15, so backpropagation's ReLU mask is exact there; a finite-difference step h moves
# them by h * |x| and crosses the kink for any h > KINK, averaging both sides of it (and a step
# below KINK is too small for float64: its rounding fails the 1e-6 bar by itself).
KINK = 1e-10
# A finite difference across the kink takes half of one example's share of a hidden unit's
# gradient: relative errors of 1e-2 and more. The decision needs that much at the kinks and
# KINK_CONTRAST times less everywhere else, so an honest bug (wrong everywhere) never meets it.
KINK_ERROR = 1e-3
KINK_CONTRAST = 100.0
# The other cases keep every pre-activation at least KINK_MARGIN from 0: a finite-difference step
# moves one by h * |x| (|x| < 5 here), so steps up to 2e-4 (the course's 1e-7, cs231n's 1e-5)
# never cross a kink there and the contrast above holds. Without it, a kink met by chance in an
# ordinary case (about one secret in a hundred) hid finite differences as an ordinary wrong value.
KINK_MARGIN = 1e-3
ORDINARY, LARGE, KINKED = "ordinary", "large", "kink"
KINDS = [ORDINARY] * 4 + [LARGE] * 2 + [KINKED] * 2  # of the backward group's cases, in order


def build(seed):
    g = Draw(seed, "backward")
    shapes = draw_shapes(g, len(KINDS))
    arrays, calls, expected = {}, [], []
    for i, (shape, kind) in enumerate(zip(shapes, KINDS)):
        params, X, y = draw_case(g, *shape)
        if kind != KINKED:
            params["b1"] = clear_of_kinks(g, params, X)
        if kind == LARGE:
            scale = LARGE_SCORES[0] + (LARGE_SCORES[1] - LARGE_SCORES[0]) * float(g.rand(1))
            scale /= oracle_forward(params, X)[0].abs().max().item()
            params["W2"], params["b2"] = params["W2"] * scale, params["b2"] * scale
        if kind == KINKED:
            params["b1"] = kinked_bias(g, params, X)
        arrays.update(case_arrays(f"case{i}", params, X, y))
        reg = round(0.05 + 0.5 * float(g.rand(1)), 4)
        for r in (0.0,) if kind == KINKED else (0.0, reg):
            calls.append((i, r))
            loss, grads = oracle_loss_and_grads(params, X, y, r)
            l2 = (params["W1"] ** 2).sum() + (params["W2"] ** 2).sum()
            expected.append({"loss": loss, "grads": grads, "half_reg": loss - 0.5 * r * l2,
                             "kind": kind})

    def judge(meta, out):
        return judge_backward(meta, out, calls, shapes, expected)

    return Group("backward", ["loss", "grad_W1", "grad_b1", "grad_W2", "grad_b2"],
                 {"calls": calls}, arrays, judge)


def clear_of_kinks(g, params, X):
    """b1, redrawn for each hidden unit that has a pre-activation within KINK_MARGIN of 0."""
    b1 = params["b1"].clone()
    for _ in range(1000):
        near = ((X @ params["W1"] + b1).abs() < KINK_MARGIN).any(dim=0)
        if not near.any():
            return b1
        b1[near] = g.randn(int(near.sum()), scale=0.5)
    raise AssertionError("no b1 keeps the pre-activations off the kink; the draw is broken")


def kinked_bias(g, params, X):
    """b1 such that, for each hidden unit j, example j % N has pre-activation +-KINK."""
    N, H = X.shape[0], params["W1"].shape[1]
    rows = torch.arange(H) % N
    signs = torch.where(g.rand(H) < 0.5, -1.0, 1.0).to(X.dtype)
    return KINK * signs - (X[rows] * params["W1"].T).sum(dim=1)


def build_stability(seed):
    g = Draw(seed, "loss_stability")
    shapes = [(8, 6, 10, 4), (1, 5, 7, 3), (20, 9, 12, 10)]
    arrays, calls, expected = {}, [], []
    for i, shape in enumerate(shapes):
        params, X, y = draw_case(g, *shape, w2_scale=3000.0)
        arrays.update(case_arrays(f"case{i}", params, X, y))
        calls.append((i, 0.0))  # no L2 term: with W2 this large it would drown the data loss
        loss, _ = oracle_loss_and_grads(params, X, y, 0.0)
        expected.append({"loss": loss, "magnitude": oracle_forward(params, X)[0].abs().max().item()})
    # A control: the first case's inputs at ordinary scores, so a hint about large scores is
    # given only when the loss is right without them.
    params = {k: arrays[f"case0/{k}"] / (3000.0 if k == "W2" else 1.0) for k in PARAM_NAMES}
    X, y = arrays["case0/X"], arrays["case0/y"]
    arrays.update(case_arrays(f"case{len(shapes)}", params, X, y))
    calls.append((len(shapes), 0.0))
    shapes.append(shapes[0])
    control = oracle_loss_and_grads(params, X, y, 0.0)[0]

    def judge(meta, out):
        return {"loss_stability": judge_stability(meta, out, calls, shapes, expected, control)}

    return Group("loss_stability", ["loss_stability"], {"calls": calls}, arrays, judge)


def judge_stability(meta, out, calls, shapes, expected, control):
    """The loss at huge scores, and finite gradients (their values are the gradient tests')."""
    control_index = len(calls) - 1
    control_error, control_problem = check_array(out.get(f"call{control_index}/loss"), control,
                                                 "loss")
    control_right = control_problem is None and control_error <= THRESHOLD
    checks = []
    for j, ((case, _), want) in enumerate(zip(calls[:-1], expected)):
        label = (f"case {case} ({describe(shapes[case])}, scores of magnitude up to "
                 f"{want['magnitude']:.0e})")
        error = child_error(meta, f"call{j}")
        if error:
            return Verdict(False, f"{label}: nn_forward_backward raised {error}")
        got = out.get(f"call{j}/loss")
        loss_error, problem = check_array(got, want["loss"], "loss")
        bad_grads = [k for k in PARAM_NAMES if out.get(f"call{j}/grad/{k}") is not None
                     and out[f"call{j}/grad/{k}"].is_floating_point()
                     and not bool(torch.isfinite(out[f"call{j}/grad/{k}"]).all())]
        hint = stability_hint(got, loss_error, problem, bad_grads, control_right)
        if hint is None and bad_grads:
            hint = (f"grads['{bad_grads[0]}'] contains NaN or inf (the loss is right): "
                    "compute the gradients from the shifted, normalised probabilities")
        checks.append((label, loss_error, hint))
    return judge_errors(checks, f"over {len(checks)} calls, with finite gradients")


def stability_hint(got, error, problem, bad_grads, control_right):
    """What is wrong with the loss at huge scores, with a cause only where the grader saw it:
    the same inputs at ordinary scores give the right loss (else: the loss itself is wrong)."""
    if problem is None and error <= THRESHOLD:
        return None
    if problem is not None and not problem.endswith("NaN or inf"):
        return problem
    seen = problem or f"loss relative error {error:.1e} > {THRESHOLD:.0e}"
    if not control_right:
        return seen + ("; the loss is wrong at ordinary scores as well (the same inputs with "
                       "W2 3000 times smaller), so fix the loss first: see the `loss` test")
    nan = got is not None and bool(torch.isnan(got).any())
    if problem is not None and (nan or bad_grads):
        return seen + ("; it is right at ordinary scores, so exp of the large scores overflowed: "
                       "subtract each row's maximum score before exp")
    if problem is not None:
        return seen + ("; it is right at ordinary scores, so a probability underflowed to 0 and "
                       "its log is -inf: compute the log-probabilities from the shifted scores, "
                       "shifted - log(sum(exp(shifted))), instead of log(probs)")
    return seen + "; it is right at ordinary scores and wrong at large ones"


def judge_backward(meta, out, calls, shapes, expected):
    """Verdicts for the loss test and the four gradient tests from nn_forward_backward's calls."""
    autograd = (meta or {}).get("autograd") or []
    loss_checks, grad_checks = [], {k: [] for k in PARAM_NAMES}
    for j, ((case, reg), want) in enumerate(zip(calls, expected)):
        label = f"case {case} ({describe(shapes[case])}, reg={reg:g})"
        error = child_error(meta, f"call{j}")
        if error:
            failed = Verdict(False, f"{label}: nn_forward_backward raised {error}")
            return {"loss": failed, **{f"grad_{k}": failed for k in PARAM_NAMES}}
        got_loss = out.get(f"call{j}/loss")
        loss_error, problem = check_array(got_loss, want["loss"], "loss")
        loss_checks.append((f"{label}, loss", loss_error,
                            loss_hint(got_loss, want, reg, loss_error, problem)))
        for k in PARAM_NAMES:
            got = out.get(f"call{j}/grad/{k}")
            error, problem = check_array(got, want["grads"][k], f"grads['{k}']")
            if got is None:
                problem = (f"nn_forward_backward returned no grads['{k}']: write its Part 2, the "
                           "backward pass (backpropagate to grads['W1'], grads['b1'], grads['W2'], "
                           "grads['b2'])")
            grad_checks[k].append((f"{label}, grads['{k}']", error, problem, want["kind"]))
    # The worst call is named (a missing value first): log(p + eps) is 2e-4 off in one ordinary
    # case and 24% off at training magnitudes, and the hint for the latter says why.
    loss_checks.sort(key=lambda check: -(float("inf") if check[1] is None else check[1]))
    verdicts = {"loss": judge_errors(loss_checks, f"over {len(calls)} calls")}
    numeric = finite_differences(grad_checks)
    for k in PARAM_NAMES:
        if autograd:
            verdicts[f"grad_{k}"] = Verdict(False, "nn_forward_backward used torch.autograd ("
                                            + ", ".join(autograd) + "); the gradients must be "
                                            "computed by hand, so the gradient tests score 0")
        elif numeric:
            verdicts[f"grad_{k}"] = Verdict(False, numeric)
        else:
            verdicts[f"grad_{k}"] = judge_errors([c[:3] for c in grad_checks[k]],
                                                 f"over {len(calls)} calls")
    return verdicts


def finite_differences(grad_checks):
    """Why the gradients are finite differences, or None: grossly wrong for W1 or b1 where a
    pre-activation is within KINK of 0 (which changes nothing for backpropagation, and makes a
    finite difference average both sides of the kink), and far closer everywhere else."""
    if any(c[2] is not None for k in PARAM_NAMES for c in grad_checks[k]):
        return None
    kinked = [c for k in ("W1", "b1") for c in grad_checks[k] if c[3] == KINKED]
    elsewhere = max(c[1] for k in PARAM_NAMES for c in grad_checks[k] if c[3] != KINKED)
    worst = max(kinked, key=lambda c: c[1], default=None)
    if worst is None or worst[1] < KINK_ERROR or elsewhere > worst[1] / KINK_CONTRAST:
        return None
    return (f"{FINITE_DIFFERENCES}: the gradients are grossly wrong only where a hidden unit's "
            f"pre-activation is within {KINK:.0e} of 0 ({worst[0]}: max relative error "
            f"{worst[1]:.1e}; {elsewhere:.1e} or less elsewhere); backpropagation is exact "
            "there, a finite difference averages both sides of ReLU's kink. The assignment is "
            "backpropagation by hand, so the gradient tests score 0")


def loss_hint(got, want, reg, error, problem):
    """The problem with a loss, naming the common mistake behind it; never the expected value."""
    if problem is None and error <= THRESHOLD:
        return None
    if problem is not None:
        return problem
    message = f"loss relative error {error:.1e} > {THRESHOLD:.0e}"
    if reg > 0 and rel_error(got, want["half_reg"]) <= THRESHOLD:
        return message + ("; it matches 0.5 * reg * sum(W**2): the contract's regulariser is "
                          "reg * (sum(W1**2) + sum(W2**2)), without the 1/2")
    if want["kind"] == LARGE:
        return message + (" at scores of ordinary training magnitude (up to ~100), where the "
                          "probability of a correct class can be far below 1e-12")
    return message


def run(runner, meta, arrays):
    with AutogradWatch() as watch:
        for call_index, (case, reg) in enumerate(meta["calls"]):
            params = params_of(arrays, f"case{case}")
            X, y = arrays[f"case{case}/X"].clone(), arrays[f"case{case}/y"].clone()

            def call():
                result = runner.module.nn_forward_backward(params, X, y, reg)
                if not isinstance(result, tuple) or len(result) != 2:
                    raise ContractError(f"nn_forward_backward with labels returned "
                                        f"{type(result).__name__}, expected a tuple (loss, grads)")
                loss, grads = result
                if not isinstance(grads, dict):
                    raise ContractError(f"grads is a {type(grads).__name__}, expected a dict")
                watch.check_outputs(params, grads)
                runner.arrays[f"call{call_index}/loss"] = as_tensor(loss, "loss")
                for k, grad in grads.items():
                    if k in params:
                        runner.arrays[f"call{call_index}/grad/{k}"] = as_tensor(grad, f"grads['{k}']")

            runner.guarded(f"call{call_index}", call)
        runner.meta["autograd"] = sorted(set(watch.used))
