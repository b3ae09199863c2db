"""The two training tests: nn_train against a spy loss_func that returns fixed gradients
(`train_update`: the update, in place or re-bound, and reg; `train_schedule`: decay, histories,
accuracies, read from whichever parameters the update moves)."""
import torch

from grader.calls import ContractError, fresh, params_of
from grader.rubric import (
    Draw,
    DTYPE,
    PARAM_NAMES,
    THRESHOLD,
    Group,
    Verdict,
    check_array,
    child_error,
    draw_case,
)
from helpers_lib.training import epoch_starts, iterations_per_epoch, learning_rate_schedule

# A step per unit of gradient this close to 0, 1 or -learning_rate is that bug (no update, no
# learning rate, the wrong sign): the spy's gradients are exact and at least 1 in magnitude, so
# a correct float64 update lands within ~1e-15 of -learning_rate, far inside this.
STEP_TOLERANCE = 1e-6


def train_inputs(g, N, D, H, C, n_val):
    params, X, _ = draw_case(g, N, D, H, C)
    grads = {k: torch.sign(g.randn(*v.shape)) * (1 + g.rand(*v.shape)) for k, v in params.items()}
    arrays = {f"start/{k}": v for k, v in params.items()}
    arrays.update({f"spy_grad/{k}": v for k, v in grads.items()})
    arrays.update({"X": X, "y": torch.zeros(N, dtype=torch.int64),
                   "X_val": g.randn(n_val, D),
                   "y_val": torch.zeros(n_val, dtype=torch.int64)})
    return params, grads, arrays


def build_update(seed):
    g = Draw(seed, "train_update")
    params, grads, arrays = train_inputs(g, 50, 4, 6, 3, 7)
    meta = {"learning_rate": 0.1, "decay": 1.0, "reg": 0.123, "num_iters": 5, "batch_size": 10,
            "num_classes": 3, "grow_grads": True, "loss0": 2.0, "loss_step": -0.125}
    total = sum(range(1, meta["num_iters"] + 1))  # the spy's gradient at call i is (i+1) * G
    expected = {k: params[k] - meta["learning_rate"] * total * grads[k] for k in params}

    def judge(meta_out, out):
        problem = train_problem(meta_out, meta, check_reg=True)
        for k in PARAM_NAMES if problem is None else ():
            final = out.get(f"final/{k}")
            error, problem = check_array(final, expected[k], f"params['{k}']")
            if problem is None and not error <= THRESHOLD:
                step = ((params[k] - final) / (total * grads[k])).mean().item()
                problem = update_hint(k, step, meta["learning_rate"], error)
            if problem is not None:
                break
        if problem is None:
            return {"train_update": Verdict(True, "every parameter holds params[k] - "
                                                  "learning_rate * grads[k] after each step, "
                                                  "with reg passed through")}
        return {"train_update": Verdict(False, problem)}

    return Group("train_update", ["train_update"], meta, arrays, judge)


def update_hint(k, step, learning_rate, error):
    """What a wrong update did to params[k], from what it subtracted per unit of gradient."""
    seen = (f"params['{k}'] after training is {error:.1e} (relative) from params['{k}'] - "
            f"learning_rate * grads['{k}'] at every step")
    if abs(step) <= STEP_TOLERANCE:
        return seen + f": params['{k}'] did not change; update every key of params"
    if abs(step + learning_rate) <= STEP_TOLERANCE * learning_rate:
        return seen + (f": it moved up the gradient; subtract: params['{k}'] -= learning_rate "
                       f"* grads['{k}']")
    if abs(step - 1) <= STEP_TOLERANCE:
        return seen + f": each step subtracted grads['{k}'] without the learning rate"
    return seen + (f": each step subtracted {step:.3g} x grads['{k}'], expected learning_rate "
                   f"x grads['{k}'] = {learning_rate:g} x grads['{k}']")


def train_problem(meta_out, meta, check_reg):
    """What is wrong with nn_train's calls of the spy loss_func, or None (reg is train_update's
    business alone)."""
    error = child_error(meta_out, "train")
    if error:
        return f"nn_train raised {error}"
    calls = meta_out.get("train_calls") or []
    if len(calls) != meta["num_iters"]:
        return (f"loss_func was called {len(calls)} times with labels, expected once per "
                f"iteration (num_iters={meta['num_iters']})")
    for call in calls:
        if check_reg and call.get("reg") != meta["reg"]:
            return (f"loss_func received reg={call.get('reg')}, expected the reg given to "
                    f"nn_train ({meta['reg']}): pass reg=reg")
        if call.get("batch") != meta["batch_size"]:
            return (f"loss_func received a batch of {call.get('batch')} examples, expected "
                    f"batch_size={meta['batch_size']}")
    return None


def build_schedule(seed):
    g = Draw(seed, "train_schedule")
    N, n_val = 100, 20
    params, grads, arrays = train_inputs(g, N, 5, 4, 3, n_val)
    meta = {"learning_rate": 0.8, "decay": 0.5, "reg": 0.0, "num_iters": 10, "batch_size": 30,
            "num_classes": 3, "grow_grads": False, "loss0": 2.0, "loss_step": -0.125}
    per_epoch = iterations_per_epoch(N, meta["batch_size"])
    rates = learning_rate_schedule(meta["learning_rate"], meta["decay"], meta["num_iters"], N,
                                   meta["batch_size"])
    starts = epoch_starts(meta["num_iters"], N, meta["batch_size"])
    want = {"loss_history": [meta["loss0"] + meta["loss_step"] * i for i in range(meta["num_iters"])],
            # all labels are 0 and the spy predicts 0 for the first `calls so far` examples
            "train_acc_history": [min(it + 1, meta["batch_size"]) / meta["batch_size"]
                                  for it in starts],
            "val_acc_history": [min(it + 1, n_val) / n_val for it in starts]}

    def judge(meta_out, out):
        problem = train_problem(meta_out, meta, check_reg=False)
        if problem is None:
            problem = schedule_problem(out, grads, rates, per_epoch)
        if problem is None:
            problem = history_problem(out, want, per_epoch)
        verdict = Verdict(problem is None, problem or (
            f"the learning rate decays once per epoch ({per_epoch} iterations) and the "
            f"histories hold {len(want['train_acc_history'])} epoch-start accuracies"))
        return {"train_schedule": verdict}

    return Group("train_schedule", ["train_schedule"], meta, arrays, judge)


def schedule_problem(out, grads, rates, per_epoch):
    """The learning rates, read back from every parameter that the update moves, against the
    schedule. A parameter's step per unit of gradient is its rate times a factor that an update
    bug may change (a sign, a missing learning rate): the schedule is in the ratios between
    steps, and one parameter that follows it is enough (an update bug is train_update's)."""
    first = None
    for k in PARAM_NAMES:
        snapshots = [out.get(f"{k}_at_call{i}") for i in range(len(rates))] + [out.get(f"final/{k}")]
        if any(v is None or v.shape != grads[k].shape or v.dtype != grads[k].dtype
               for v in snapshots):
            return f"params['{k}'] could not be followed through training"
        steps = [((before - after) / grads[k]).mean().item()
                 for before, after in zip(snapshots, snapshots[1:])]
        if all(abs(step) <= STEP_TOLERANCE for step in steps):
            continue  # not updated: train_update says so
        if all(abs(abs(step) - 1) <= STEP_TOLERANCE for step in steps) and rates[0] != 1:
            continue  # stepped without the learning rate: its schedule cannot show here
        used = [step / steps[0] * rates[0] if steps[0] else float("nan") for step in steps]
        wrong = next((i for i, rate in enumerate(rates)
                      if not abs(used[i] - rate) <= THRESHOLD * abs(rate)), None)
        if wrong is None:
            return None
        first = first or (f"iteration {wrong} stepped with learning rate {used[wrong]:.6g}, "
                          f"expected {rates[wrong]:.6g}: multiply the rate by "
                          f"learning_rate_decay once per epoch (every {per_epoch} iterations, "
                          "at the epoch check after the update)")
    return first


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


def run_update(runner, meta, arrays):
    _train(runner, meta, arrays, record_steps=False)


def run_schedule(runner, meta, arrays):
    _train(runner, meta, arrays, record_steps=True)


def _train(runner, meta, arrays, record_steps):
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
        if record_steps:
            for k in PARAM_NAMES:
                if isinstance(params_now.get(k), torch.Tensor):
                    runner.arrays[f"{k}_at_call{i}"] = params_now[k].detach().clone()
        scale = float(i + 1) if meta["grow_grads"] else 1.0
        loss = torch.tensor(meta["loss0"] + meta["loss_step"] * i, dtype=X.dtype)
        return loss, {k: scale * g.clone() for k, g in base_grads.items()}

    def spy_pred(params_now, loss_func, X):
        right = len(calls["train"])  # accuracy encodes which iteration asked, and on what
        return (torch.arange(X.shape[0]) >= right).long()

    def call():
        stats = runner.module.nn_train(
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
            runner.arrays[f"stats/{key}"] = torch.tensor([float(v) for v in values],
                                                       dtype=torch.float64)

    runner.guarded("train", call)
    runner.meta["train_calls"] = calls["train"]
    for k, tensor in originals.items():
        final = params.get(k, tensor)
        if isinstance(final, torch.Tensor):
            runner.arrays[f"final/{k}"] = final.detach().clone()


def _plain(value):
    """A JSON-able record of a value the submission passed (e.g. reg)."""
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return float(value)
    if isinstance(value, (int, float)):
        return float(value)
    return repr(value)[:80]
