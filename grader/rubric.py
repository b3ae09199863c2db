"""The contract's rubric: hidden inputs from a seed, expected values from torch.autograd, verdicts.

Everything here runs in the grader's own process. `build(seed)` draws every test group's inputs
from the seed and computes the expected values with an independent autograd computation (it
never imports the reference solution). A `Group` holds what its child receives (`meta`,
`arrays`: inputs only) and a `judge` that turns what the child returned into one verdict per
rubric test.
"""
import hashlib
from dataclasses import dataclass
from typing import Callable

import torch

from helpers import rel_error

STANDIN = '''"""Stand-in for the course's linear_classifier module (supplied by the grader)."""
import torch


def sample_batch(X, y, num_train, batch_size):
    """batch_size examples drawn uniformly with replacement, on the inputs' device."""
    idx = torch.randint(num_train, (batch_size,), device=X.device)
    return X[idx], y[idx]
'''
GRADIENT_TESTS = ("grad_W1", "grad_b1", "grad_W2", "grad_b2")
RUBRIC = {"forward": 15, "loss": 10, "loss_stability": 5, "grad_W1": 10, "grad_b1": 10,
          "grad_W2": 10, "grad_b2": 10, "train_update": 10, "train_schedule": 10, "predict": 10}
PARAM_NAMES = ("W1", "b1", "W2", "b2")
# The contract's bar: a correct float64 solution is ~1e-15 from autograd; 1e-6 leaves room for
# any order of summation and still fails every real bug.
THRESHOLD = 1e-6
PUBLIC_SEED = "public-self-check"
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


def generator_for(seed, purpose):
    """A torch generator derived from the seed string and a purpose, so groups draw independently."""
    digest = hashlib.sha256(f"{seed}/{purpose}".encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "big") >> 1)


def draw_shapes(g, count):
    """`count` shapes (N, D, H, C); the first has N=1, the second C=2."""
    shapes = []
    for i in range(count):
        N, D, H = (int(v) for v in torch.randint(2, 40, (3,), generator=g))
        C = int(torch.randint(3, 12, (1,), generator=g))
        shapes.append((1 if i == 0 else N, D, H, 2 if i == 1 else C))
    return shapes


def draw_case(g, N, D, H, C, w2_scale=1.0):
    def randn(*shape, scale=1.0):
        return scale * torch.randn(*shape, generator=g, dtype=DTYPE)
    params = {"W1": randn(D, H, scale=2.0 / D ** 0.5), "b1": randn(H, scale=0.5),
              "W2": randn(H, C, scale=w2_scale * 2.0 / H ** 0.5), "b2": randn(C, scale=0.5)}
    X = randn(N, D)
    y = torch.randint(C, (N,), generator=g)
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


def oracle_forward(params, X):
    hidden = (X @ params["W1"] + params["b1"]).clamp(min=0)
    return hidden @ params["W2"] + params["b2"], hidden


def oracle_loss_and_grads(params, X, y, reg):
    """Loss and gradients by torch.autograd, with a stable log-sum-exp."""
    leaves = {k: v.detach().clone().requires_grad_() for k, v in params.items()}
    scores, _ = oracle_forward(leaves, X)
    correct = scores.gather(1, y[:, None])[:, 0]
    loss = (torch.logsumexp(scores, dim=1) - correct).mean()
    loss = loss + reg * ((leaves["W1"] ** 2).sum() + (leaves["W2"] ** 2).sum())
    loss.backward()
    return loss.detach(), {k: v.grad for k, v in leaves.items()}


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


def forward_group(seed):
    g = generator_for(seed, "forward")
    shapes = draw_shapes(g, 4)
    arrays, expected = {}, []
    for i, shape in enumerate(shapes):
        params, X, _ = draw_case(g, *shape)
        arrays.update(case_arrays(f"case{i}", params, X))
        expected.append(oracle_forward(params, X))

    def judge(meta, out):
        checks = []
        for i, (scores, hidden) in enumerate(expected):
            label = f"case {i} ({describe(shapes[i])})"
            error = child_error(meta, f"case{i}")
            if error:
                return {"forward": Verdict(False, f"{label}: nn_forward_pass raised {error}")}
            checks.append((f"{label}, scores", *check_array(out.get(f"case{i}/scores"), scores, "scores")))
            checks.append((f"{label}, hidden", *check_array(out.get(f"case{i}/hidden"), hidden, "hidden")))
        return {"forward": judge_errors(checks, f"over {len(shapes)} cases")}

    return Group("forward", ["forward"], {"cases": len(shapes)}, arrays, judge)


def backward_group(seed):
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


def stability_group(seed):
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
            grad_checks[k].append((f"{label}, grads['{k}']",
                                   *check_array(out.get(f"call{j}/grad/{k}"), want["grads"][k],
                                                f"grads['{k}']")))
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


def train_inputs(g, N, D, H, C, n_val):
    params, X, _ = draw_case(g, N, D, H, C)
    grads = {k: torch.sign(torch.randn(v.shape, generator=g, dtype=DTYPE))
             * (1 + torch.rand(v.shape, generator=g, dtype=DTYPE)) for k, v in params.items()}
    arrays = {f"start/{k}": v for k, v in params.items()}
    arrays.update({f"spy_grad/{k}": v for k, v in grads.items()})
    arrays.update({"X": X, "y": torch.zeros(N, dtype=torch.int64),
                   "X_val": torch.randn(n_val, D, generator=g, dtype=DTYPE),
                   "y_val": torch.zeros(n_val, dtype=torch.int64)})
    return params, grads, arrays


def train_update_group(seed):
    g = generator_for(seed, "train_update")
    params, grads, arrays = train_inputs(g, 50, 4, 6, 3, 7)
    meta = {"learning_rate": 0.1, "decay": 1.0, "reg": 0.123, "num_iters": 5, "batch_size": 10,
            "num_classes": 3, "grow_grads": True, "loss0": 2.0, "loss_step": -0.125}
    total = sum(range(1, meta["num_iters"] + 1))  # the spy's gradient at call i is (i+1) * G
    expected = {k: params[k] - meta["learning_rate"] * total * grads[k] for k in params}

    def judge(meta_out, out):
        problem = train_problem(meta_out, meta)
        if problem is None and meta_out.get("replaced"):
            k = meta_out["replaced"][0]
            problem = (f"params['{k}'] was replaced by a new tensor; update it in place: "
                       "params[k] -= learning_rate * grads[k]")
        if problem is None:
            checks = [(f"params['{k}'] after {meta['num_iters']} steps",
                       *check_array(out.get(f"final/{k}"), expected[k], f"params['{k}']"))
                      for k in PARAM_NAMES]
            return {"train_update": judge_errors(checks, "on every parameter, in place, "
                                                 "with reg passed through")}
        return {"train_update": Verdict(False, problem)}

    return Group("train_update", ["train_update"], meta, arrays, judge)


def train_problem(meta_out, meta):
    """What is wrong with nn_train's calls of the spy loss_func, or None."""
    error = child_error(meta_out, "train")
    if error:
        return f"nn_train raised {error}"
    calls = meta_out.get("train_calls") or []
    if len(calls) != meta["num_iters"]:
        return (f"loss_func was called {len(calls)} times with labels, expected once per "
                f"iteration (num_iters={meta['num_iters']})")
    for call in calls:
        if call.get("reg") != meta["reg"]:
            return (f"loss_func received reg={call.get('reg')}, expected the reg given to "
                    f"nn_train ({meta['reg']}): pass reg=reg")
        if call.get("batch") != meta["batch_size"]:
            return (f"loss_func received a batch of {call.get('batch')} examples, expected "
                    f"batch_size={meta['batch_size']}")
    return None


def train_schedule_group(seed):
    g = generator_for(seed, "train_schedule")
    N, n_val = 100, 20
    params, grads, arrays = train_inputs(g, N, 5, 4, 3, n_val)
    meta = {"learning_rate": 1.0, "decay": 0.5, "reg": 0.0, "num_iters": 10, "batch_size": 30,
            "num_classes": 3, "grow_grads": False, "loss0": 2.0, "loss_step": -0.125}
    per_epoch = max(N // meta["batch_size"], 1)
    rates, lr = [], meta["learning_rate"]
    epoch_starts = []
    for it in range(meta["num_iters"]):
        rates.append(lr)
        if it % per_epoch == 0:
            epoch_starts.append(it)
            lr *= meta["decay"]
    want = {"loss_history": [meta["loss0"] + meta["loss_step"] * i for i in range(meta["num_iters"])],
            # all labels are 0 and the spy predicts 0 for the first `calls so far` examples
            "train_acc_history": [min(it + 1, meta["batch_size"]) / meta["batch_size"]
                                  for it in epoch_starts],
            "val_acc_history": [min(it + 1, n_val) / n_val for it in epoch_starts]}

    def judge(meta_out, out):
        problem = train_problem(meta_out, meta)
        if problem is None:
            problem = schedule_problem(out, grads["b2"], rates, per_epoch)
        if problem is None:
            problem = history_problem(out, want, per_epoch)
        verdict = Verdict(problem is None, problem or (
            f"the learning rate decays once per epoch ({per_epoch} iterations) and the "
            f"histories hold {len(want['train_acc_history'])} epoch-start accuracies"))
        return {"train_schedule": verdict}

    return Group("train_schedule", ["train_schedule"], meta, arrays, judge)


def schedule_problem(out, grad_b2, rates, per_epoch):
    """Learning rates read back from b2 before and after every step, against the schedule."""
    snapshots = [out.get(f"b2_at_call{i}") for i in range(len(rates))] + [out.get("final/b2")]
    for i, (before, after) in enumerate(zip(snapshots, snapshots[1:])):
        for value in (before, after):
            if value is None or value.shape != grad_b2.shape or value.dtype != grad_b2.dtype:
                return "params['b2'] could not be followed through training"
        used = ((before - after) / grad_b2).mean().item()
        if not abs(used - rates[i]) <= THRESHOLD * abs(rates[i]):
            return (f"iteration {i} stepped with learning rate {used:.6g}, expected "
                    f"{rates[i]:.6g}: multiply the rate by learning_rate_decay once per epoch "
                    f"(every {per_epoch} iterations, at the epoch check after the update)")
    return None


def history_problem(out, want, per_epoch):
    for key, expected in want.items():
        got = out.get(f"stats/{key}")
        if got is None:
            return f"stats['{key}'] is missing"
        if len(got) != len(expected):
            every = "per iteration" if key == "loss_history" else f"per epoch ({per_epoch} iterations)"
            return f"stats['{key}'] has {len(got)} entries, expected {len(expected)} (one {every})"
        if not torch.allclose(got, torch.tensor(expected, dtype=DTYPE), rtol=THRESHOLD, atol=0):
            what = ("the loss of every iteration, in order" if key == "loss_history" else
                    "the accuracy of pred_func at each epoch start, after that iteration's update"
                    + (" on X_batch" if key == "train_acc_history" else " on X_val"))
            return f"stats['{key}'] does not hold {what}"
    return None


def predict_group(seed):
    g = generator_for(seed, "predict")
    shapes = [(1, 6, 8, 2), (200, 12, 16, 10)]
    arrays, expected = {}, []
    for i, shape in enumerate(shapes):
        params, X, _ = draw_case(g, *shape)
        arrays.update(case_arrays(f"case{i}", params, X))
        expected.append(oracle_forward(params, X)[0].argmax(dim=1))

    def judge(meta, out):
        for i, want in enumerate(expected):
            label = f"case {i} ({describe(shapes[i])})"
            error = child_error(meta, f"case{i}")
            if error:
                return {"predict": Verdict(False, f"{label}: nn_predict raised {error}")}
            got = out.get(f"case{i}/labels")
            _, problem = check_array(got, want, "the labels")
            if problem:
                return {"predict": Verdict(False, f"{label}: {problem}")}
            wrong = int((got != want).sum())
            if wrong:
                return {"predict": Verdict(False, f"{label}: {wrong} of {len(want)} labels are "
                                                  "not the argmax of the scores")}
        return {"predict": Verdict(True, f"every label is the argmax of the scores "
                                         f"({len(expected)} cases)")}

    return Group("predict", ["predict"], {"cases": len(shapes)}, arrays, judge)


def apply_audit(verdicts, findings, flags):
    """The source audit (grader.audit, read in the grader's process) decides the gradient tests;
    what the child reports of its own autograd use can only add to it, never remove it."""
    from grader import audit

    why = audit.gradient_verdict(findings)
    seen = any("used torch.autograd" in verdicts[name].message for name in GRADIENT_TESTS
               if name in verdicts)
    if seen and not why:
        flags.append("autograd seen at run time")
    if why:
        for name in GRADIENT_TESTS:
            verdicts[name] = Verdict(False, why)


def build(seed):
    """Every test group of the rubric, with inputs and expected values drawn from `seed`."""
    groups = [forward_group(seed), backward_group(seed), stability_group(seed),
              train_update_group(seed), train_schedule_group(seed), predict_group(seed)]
    covered = [t for group in groups for t in group.tests]
    assert sorted(covered) == sorted(RUBRIC), f"groups cover {covered}, not the rubric"
    return groups
