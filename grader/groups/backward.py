"""The loss, its stability and the four gradient tests: nn_forward_backward's calls, judged
against the autograd oracle (loss_stability: scores of magnitude 1e3-1e4)."""
import torch

from grader.child import AutogradWatch, ContractError, as_tensor, params_of
from grader.rubric import (
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
    generator_for,
    judge_errors,
    oracle_forward,
    oracle_loss_and_grads,
    rel_error,
)


def build(seed):
    g = generator_for(seed, "backward")
    shapes = draw_shapes(g, 4)
    arrays, calls, expected = {}, [], []
    for i, shape in enumerate(shapes):
        params, X, y = draw_case(g, *shape)
        arrays.update(case_arrays(f"case{i}", params, X, y))
        reg = round(0.05 + 0.5 * float(torch.rand(1, generator=g)), 4)
        for r in (0.0, reg):
            calls.append((i, r))
            loss, grads = oracle_loss_and_grads(params, X, y, r)
            l2 = (params["W1"] ** 2).sum() + (params["W2"] ** 2).sum()
            expected.append({"loss": loss, "grads": grads, "half_reg": loss - 0.5 * r * l2})

    def judge(meta, out):
        return judge_backward(meta, out, calls, shapes, expected, "loss", "")

    return Group("backward", ["loss", "grad_W1", "grad_b1", "grad_W2", "grad_b2"],
                 {"calls": calls}, arrays, judge)


def build_stability(seed):
    g = generator_for(seed, "loss_stability")
    shapes = [(8, 6, 10, 4), (1, 5, 7, 3), (20, 9, 12, 10)]
    arrays, calls, expected = {}, [], []
    for i, shape in enumerate(shapes):
        params, X, y = draw_case(g, *shape, w2_scale=3000.0)
        arrays.update(case_arrays(f"case{i}", params, X, y))
        calls.append((i, 0.0))  # no L2 term: with W2 this large it would drown the data loss
        loss, grads = oracle_loss_and_grads(params, X, y, 0.0)
        expected.append({"loss": loss, "grads": grads, "half_reg": None,
                         "magnitude": oracle_forward(params, X)[0].abs().max().item()})

    def judge(meta, out):
        verdicts = judge_backward(meta, out, calls, shapes, expected, "loss_stability",
                                  "with scores of magnitude up to {magnitude:.0e}",
                                  ignore_autograd=True)
        failed = [v for v in verdicts.values() if not v.passed]
        return {"loss_stability": failed[0] if failed else verdicts["loss_stability"]}

    return Group("loss_stability", ["loss_stability"], {"calls": calls}, arrays, judge)


def judge_backward(meta, out, calls, shapes, expected, loss_test, huge_note,
                   ignore_autograd=False):
    """Verdicts for the loss test and the four gradient tests from nn_forward_backward's calls."""
    autograd = [] if ignore_autograd else (meta or {}).get("autograd") or []
    loss_checks, grad_checks = [], {k: [] for k in PARAM_NAMES}
    for j, ((case, reg), want) in enumerate(zip(calls, expected)):
        label = f"case {case} ({describe(shapes[case])}, reg={reg:g})"
        if huge_note:
            label += " " + huge_note.format(**want)
        error = child_error(meta, f"call{j}")
        if error:
            failed = Verdict(False, f"{label}: nn_forward_backward raised {error}")
            return {loss_test: failed, **{f"grad_{k}": failed for k in PARAM_NAMES}}
        got_loss = out.get(f"call{j}/loss")
        loss_error, problem = check_array(got_loss, want["loss"], "loss")
        grads_nan = any(out.get(f"call{j}/grad/{k}") is not None
                        and out[f"call{j}/grad/{k}"].is_floating_point()
                        and bool(torch.isnan(out[f"call{j}/grad/{k}"]).any()) for k in PARAM_NAMES)
        loss_checks.append((f"{label}, loss", loss_error,
                            loss_hint(got_loss, want, reg, loss_error, problem, grads_nan)))
        for k in PARAM_NAMES:
            got = out.get(f"call{j}/grad/{k}")
            error, problem = check_array(got, want["grads"][k], f"grads['{k}']")
            if got is None:
                problem = (f"nn_forward_backward returned no grads['{k}']: write its Part 2, the "
                           "backward pass (backpropagate to grads['W1'], grads['b1'], grads['W2'], "
                           "grads['b2'])")
            grad_checks[k].append((f"{label}, grads['{k}']", error, problem))
    verdicts = {loss_test: judge_errors(loss_checks, f"over {len(calls)} calls")}
    for k in PARAM_NAMES:
        if autograd:
            verdicts[f"grad_{k}"] = Verdict(False, "nn_forward_backward used torch.autograd ("
                                            + ", ".join(autograd) + "); the gradients must be "
                                            "computed by hand, so the gradient tests score 0")
        else:
            verdicts[f"grad_{k}"] = judge_errors(grad_checks[k], f"over {len(calls)} calls")
    return verdicts


def loss_hint(got, want, reg, error, problem, grads_nan=False):
    """The problem with a loss, naming the common mistake behind it; never the expected value.

    A non-finite loss has two usual causes: exp of unshifted scores overflows (inf / inf, so the
    gradients are NaN too), or the scores were shifted but log(probs) was taken, and a
    probability that underflowed to 0 makes the loss inf while the gradients stay finite."""
    if problem is None and error <= THRESHOLD:
        return None
    if problem is not None and not problem.endswith("NaN or inf"):
        return problem
    if problem is not None and (grads_nan or (got is not None and bool(torch.isnan(got).any()))):
        return problem + (": exp of large scores overflows; subtract each row's maximum score "
                          "before exp")
    if problem is not None:
        return problem + (": a probability underflowed to 0 and its log is -inf; compute the "
                          "log-probabilities from the shifted scores, shifted - log(sum(exp("
                          "shifted))), instead of log(probs)")
    message = f"loss relative error {error:.1e} > {THRESHOLD:.0e}"
    if want["half_reg"] is not None and reg > 0 and rel_error(got, want["half_reg"]) <= THRESHOLD:
        return message + ("; it matches 0.5 * reg * sum(W**2): the contract's regulariser is "
                          "reg * (sum(W1**2) + sum(W2**2)), without the 1/2")
    return message


def run(runner, meta, arrays):
    watch = AutogradWatch()
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
