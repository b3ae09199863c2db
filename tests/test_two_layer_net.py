"""The student API of two_layer_net.py, checked against the kit's oracle and the contract.

The expected values come from helpers_lib/oracle.py: torch.autograd in the instructor's kit; in
the student release, the values it gave for these tests' fixed inputs when the release was built.

Run `python -m pytest -q`. A part you have not written yet fails the first test that needs it,
with its message; the other tests it blocks are skipped with one line each, so the first runs
stay short. The tests follow the order of the assignment: forward pass, loss, gradients,
training, prediction, search.
"""
import ast
import functools
import math
import os
import sys
import warnings

import pytest
import torch

from conftest import FLOAT32_TOL, FLOAT64_TOL, ROOT, SHAPES, make_problem
from helpers import get_toy_data, grad_check, load_digits_data, load_toy_reference, rel_error
from helpers_lib import oracle
from two_layer_net import (TwoLayerNet, find_best_net, nn_forward_backward, nn_forward_pass,
                           nn_get_search_params, nn_predict, nn_train, sample_batch)

TOLS = {torch.float64: FLOAT64_TOL, torch.float32: FLOAT32_TOL}
# Central differences in float64 with h=1e-6 on the toy problem: the loss (~1.1) loses ~1e-16 *
# 1.1 / (2h * |grad|) to cancellation, i.e. up to ~1e-6 where the gradient is ~1e-4. A wrong
# gradient is off by O(1).
NUMERIC_GRAD_TOL = 1e-5
# The toy problem with learning-rate decay 1.0 reaches ~1e-3 (float64 and float32 alike); with
# the default decay of 0.95 per epoch (= per iteration here) it stalls near 0.97.
TOY_TRAINED_LOSS = 0.05
NO_GRADIENTS = ("nn_forward_backward returned grads without {missing}: write its Part 2, "
                "backpropagate to grads['W1'], grads['b1'], grads['W2'], grads['b2']")


def gradients(params, X, y, reg):
    """(loss, grads) of nn_forward_backward; NotImplementedError while Part 2 is not written."""
    loss, grads = nn_forward_backward(params, X, y, reg=reg)
    missing = [k for k in params if k not in grads]
    if missing:
        raise NotImplementedError(NO_GRADIENTS.format(missing=", ".join(missing)))
    return loss, grads


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("shape", SHAPES)
def test_forward_matches_relu_linear(shape, dtype):
    params, X, _ = make_problem(*shape, dtype=dtype)
    scores, hidden = nn_forward_pass(params, X)
    want_scores, want_hidden = oracle.forward(params, X)
    assert hidden.shape == want_hidden.shape and scores.shape == want_scores.shape
    assert hidden.dtype == scores.dtype == dtype
    assert rel_error(hidden, want_hidden) <= TOLS[dtype]
    assert rel_error(scores, want_scores) <= TOLS[dtype]


def test_scores_when_y_is_none():
    params, X, _ = make_problem(5, 4, 10, 3)
    scores = nn_forward_backward(params, X)
    assert isinstance(scores, torch.Tensor) and scores.shape == (5, 3)
    assert rel_error(scores, nn_forward_pass(params, X)[0]) == 0


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("reg", [0.0, 0.37])
def test_loss_matches_autograd(shape, dtype, reg):
    params, X, y = make_problem(*shape, dtype=dtype)
    loss, _ = nn_forward_backward(params, X, y, reg=reg)
    want_loss, _ = oracle.loss_and_grads(params, X, y, reg)
    assert isinstance(loss, torch.Tensor) and loss.dim() == 0 and loss.dtype == dtype
    assert rel_error(loss, want_loss) <= TOLS[dtype]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("reg", [0.0, 0.37])
def test_backward_matches_autograd(shape, dtype, reg):
    params, X, y = make_problem(*shape, dtype=dtype)
    _, grads = gradients(params, X, y, reg)
    _, want_grads = oracle.loss_and_grads(params, X, y, reg)
    assert set(grads) == set(params)
    for k, grad in grads.items():
        assert grad.shape == params[k].shape and grad.dtype == dtype and grad.device == X.device, k
        assert rel_error(grad, want_grads[k]) <= TOLS[dtype], k


@pytest.mark.parametrize("seed", range(5))
def test_backward_matches_autograd_on_random_shapes(seed):
    g = torch.Generator().manual_seed(seed)
    N, D, H, C = (int(v) for v in torch.randint(1, 40, (4,), generator=g))
    C = max(C, 2)
    params, X, y = make_problem(N, D, H, C, seed=seed, weight_scale=3.0)
    loss, grads = gradients(params, X, y, 0.1)
    want_loss, want_grads = oracle.loss_and_grads(params, X, y, 0.1)
    assert rel_error(loss, want_loss) <= FLOAT64_TOL
    for k in params:
        assert rel_error(grads[k], want_grads[k]) <= FLOAT64_TOL, k


def test_loss_matches_cross_entropy_plus_l2():
    params, X, y = make_problem(20, 6, 8, 4, weight_scale=4.0)
    reg = 0.25
    loss, _ = nn_forward_backward(params, X, y, reg=reg)
    want, _ = oracle.loss_and_grads(params, X, y, reg)
    assert rel_error(loss, want) <= FLOAT64_TOL


def test_regulariser_is_reg_times_sum_of_squares_without_half():
    params, X, y = make_problem(5, 4, 10, 3, weight_scale=5.0)
    reg = 0.1
    with_reg, _ = nn_forward_backward(params, X, y, reg=reg)
    without, _ = nn_forward_backward(params, X, y, reg=0.0)
    l2 = (params["W1"] ** 2).sum() + (params["W2"] ** 2).sum()
    assert l2 > 1.0, "weights too small to tell the conventions apart"
    assert rel_error(with_reg - without, reg * l2) <= FLOAT64_TOL
    assert rel_error(with_reg - without, 0.5 * reg * l2) > 0.1


def test_biases_are_not_regularised():
    params, X, y = make_problem(5, 4, 10, 3)
    _, grads_reg = gradients(params, X, y, reg=10.0)
    _, grads_none = gradients(params, X, y, reg=0.0)
    for k in ("b1", "b2"):
        assert rel_error(grads_reg[k], grads_none[k]) <= FLOAT64_TOL, k
    for k in ("W1", "W2"):
        assert rel_error(grads_reg[k] - grads_none[k], 2 * 10.0 * params[k]) <= FLOAT64_TOL, k


def huge_scores_problem(magnitude, dtype):
    params, X, y = make_problem(16, 8, 12, 5, dtype=dtype)
    params["W2"] = params["W2"] * magnitude
    scores, _ = nn_forward_pass(params, X)
    assert scores.abs().max() > magnitude / 10, "scores are not huge; the test would prove nothing"
    return params, X, y


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("magnitude", [1e3, 1e4])
def test_loss_is_finite_and_right_for_huge_scores(magnitude, dtype):
    params, X, y = huge_scores_problem(magnitude, dtype)
    loss, _ = nn_forward_backward(params, X, y, reg=1e-3)
    assert torch.isfinite(loss), ("the loss is not finite at scores of magnitude "
                                  f"{magnitude:g}: see the comment above Part 1 of "
                                  "nn_forward_backward")
    want_loss, _ = oracle.loss_and_grads(params, X, y, 1e-3)
    assert rel_error(loss, want_loss) <= TOLS[dtype]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("magnitude", [1e3, 1e4])
def test_gradients_are_finite_and_right_for_huge_scores(magnitude, dtype):
    params, X, y = huge_scores_problem(magnitude, dtype)
    _, grads = gradients(params, X, y, reg=1e-3)
    assert all(torch.isfinite(g).all() for g in grads.values())
    _, want_grads = oracle.loss_and_grads(params, X, y, 1e-3)
    for k in params:
        assert rel_error(grads[k], want_grads[k]) <= TOLS[dtype], k


def test_numeric_gradient_check_on_toy_problem():
    X, y, params = get_toy_data()
    gradients(params, X, y, reg=0.05)
    errors = grad_check(nn_forward_backward, params, X, y, reg=0.05)
    assert set(errors) == {"W1", "b1", "W2", "b2"}
    assert all(e <= NUMERIC_GRAD_TOL for e in errors.values()), errors


def test_inputs_are_not_modified():
    params, X, y = make_problem(9, 5, 6, 3)
    before = {k: v.clone() for k, v in params.items()}
    X_before, y_before = X.clone(), y.clone()
    nn_forward_pass(params, X)
    nn_forward_backward(params, X, y, reg=0.5)
    nn_forward_backward(params, X)
    nn_predict(params, nn_forward_backward, X)
    for k in params:
        assert torch.equal(params[k], before[k]), k
    assert torch.equal(X, X_before) and torch.equal(y, y_before)


def test_toy_fixture_matches_reference_and_autograd():
    for name, case in load_toy_reference().items():
        scores, hidden = nn_forward_pass(case["params"], case["X"])
        loss, grads = gradients(case["params"], case["X"], case["y"], reg=case["reg"])
        want_loss, want_grads = oracle.loss_and_grads(case["params"], case["X"], case["y"],
                                                        case["reg"])
        assert rel_error(scores, case["scores"]) <= FLOAT64_TOL, name
        assert rel_error(hidden, case["hidden"]) <= FLOAT64_TOL, name
        assert rel_error(loss, case["loss"]) <= FLOAT64_TOL, name
        assert rel_error(want_loss, case["loss"]) <= FLOAT64_TOL, name
        for k in grads:
            assert rel_error(grads[k], case["grads"][k]) <= FLOAT64_TOL, (name, k)
            assert rel_error(want_grads[k], case["grads"][k]) <= FLOAT64_TOL, (name, k)


def test_toy_fixture_large_weights_case_tells_the_regulariser_apart():
    case = load_toy_reference()["large_weights"]
    l2 = case["params"]["W1"].pow(2).sum() + case["params"]["W2"].pow(2).sum()
    reg_term = case["loss"] - case["loss_no_reg"]
    assert rel_error(reg_term, case["reg"] * l2) <= FLOAT64_TOL
    assert abs(reg_term - 0.5 * case["reg"] * l2) > 0.1


def test_sample_batch_draws_with_replacement_on_the_inputs_device():
    X = torch.arange(10, dtype=torch.float64).reshape(10, 1)
    y = torch.arange(10)
    X_batch, y_batch = sample_batch(X, y, 10, 1000)
    assert X_batch.shape == (1000, 1) and y_batch.shape == (1000,)
    assert X_batch.device == X.device
    assert torch.equal(X_batch[:, 0].long(), y_batch), "rows and labels must stay paired"
    assert len(torch.unique(y_batch)) == 10, "1000 draws from 10 should hit every row"
    assert len(y_batch) > len(torch.unique(y_batch)), "draws are with replacement"


class SpyLoss:
    """A loss_func that records its calls and returns fixed gradients (the contract's spy)."""

    def __init__(self, params, losses=None):
        g = torch.Generator().manual_seed(1)
        self.grads = {k: torch.randn(v.shape, generator=g, dtype=v.dtype) for k, v in params.items()}
        self.losses = losses
        self.calls = []

    def __call__(self, params, X, y=None, reg=0.0):
        if y is None:
            return torch.zeros(X.shape[0], 3, dtype=X.dtype)
        self.calls.append({"batch": X.shape[0], "reg": reg, "b2": params["b2"].clone()})
        i = len(self.calls) - 1
        loss = self.losses[i] if self.losses is not None else 10.0 - 0.5 * i
        return torch.tensor(loss, dtype=X.dtype), {k: v.clone() for k, v in self.grads.items()}


def spy_pred(params, loss_func, X):
    return torch.zeros(X.shape[0], dtype=torch.int64)


def test_train_updates_every_parameter_and_passes_reg():
    """After each step params[k] holds params[k] - lr * grads[k]: changed in place or a new
    tensor stored under the same key, both as in the original course."""
    params, X, y = make_problem(50, 4, 6, 3)
    start = {k: v.clone() for k, v in params.items()}
    spy = SpyLoss(params)
    nn_train(params, spy, spy_pred, X, y, X[:7], y[:7], learning_rate=0.1,
             learning_rate_decay=1.0, reg=0.123, num_iters=4, batch_size=10)
    for k in params:
        assert rel_error(params[k], start[k] - 4 * 0.1 * spy.grads[k]) <= FLOAT64_TOL, k
    assert [c["reg"] for c in spy.calls] == [0.123] * 4
    assert [c["batch"] for c in spy.calls] == [10] * 4


def test_train_decays_learning_rate_once_per_epoch():
    params, X, y = make_problem(100, 4, 6, 3)
    spy = SpyLoss(params)
    nn_train(params, spy, spy_pred, X, y, X[:20], y[:20], learning_rate=1.0,
             learning_rate_decay=0.5, reg=0.0, num_iters=10, batch_size=30)
    # 100 // 30 = 3 iterations per epoch: the rate decays after iterations 0, 3, 6 and 9.
    b2 = [c["b2"] for c in spy.calls] + [params["b2"]]
    rates = [((b2[i] - b2[i + 1]) / spy.grads["b2"]).mean().item() for i in range(10)]
    want = [1.0, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.125, 0.125, 0.125]
    assert rates == pytest.approx(want, rel=1e-9)


def test_train_records_histories_at_epoch_starts():
    params, X, _ = make_problem(100, 4, 6, 3)
    y = torch.zeros(100, dtype=torch.int64)
    spy = SpyLoss(params)
    seen = []

    def pred(params, loss_func, X):
        seen.append((len(spy.calls), X.shape[0]))
        n_right = len(spy.calls)  # accuracy tells which iteration asked
        return (torch.arange(X.shape[0]) >= n_right).long()

    stats = nn_train(params, spy, pred, X, y, X[:20], y[:20], learning_rate=0.1,
                     learning_rate_decay=1.0, num_iters=10, batch_size=30)
    assert stats["loss_history"] == [10.0 - 0.5 * i for i in range(10)]
    assert sorted(seen) == [(1, 20), (1, 30), (4, 20), (4, 30), (7, 20), (7, 30), (10, 20), (10, 30)]
    assert stats["train_acc_history"] == pytest.approx([1 / 30, 4 / 30, 7 / 30, 10 / 30])
    assert stats["val_acc_history"] == pytest.approx([1 / 20, 4 / 20, 7 / 20, 10 / 20])
    assert stats["diverged_at"] is None


def test_train_stops_at_the_first_non_finite_loss_with_one_warning():
    params, X, y = make_problem(50, 4, 6, 3)
    spy = SpyLoss(params, losses=[2.0, 1.5, 1.0, float("nan"), 0.5, float("inf")])
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        stats = nn_train(params, spy, spy_pred, X, y, X, y, learning_rate=0.7,
                         learning_rate_decay=1.0, num_iters=6, batch_size=10)
    assert [w.category for w in record] == [RuntimeWarning], "one RuntimeWarning, no other"
    assert stats["diverged_at"] == 3
    assert stats["loss_history"] == [2.0, 1.5, 1.0]
    assert len(spy.calls) == 4, "training must stop at the non-finite loss"


def test_train_diverges_on_toy_problem_with_learning_rate_3():
    # float32 overflows near 3e38; with weights of std 0.1 the loss passes that within ~20 steps.
    X, y, params = get_toy_data(std=1e-1, dtype=torch.float32)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        stats = nn_train(params, nn_forward_backward, nn_predict, X, y, X, y, learning_rate=3.0,
                         reg=1e-6, num_iters=200)
    assert [w.category for w in record] == [RuntimeWarning]
    assert stats["diverged_at"] is not None
    assert len(stats["loss_history"]) == stats["diverged_at"]


def test_predict_is_argmax_of_scores():
    params, X, _ = make_problem(40, 6, 8, 5)
    y_pred = nn_predict(params, nn_forward_backward, X)
    assert y_pred.dtype == torch.int64 and y_pred.shape == (40,)
    assert torch.equal(y_pred, nn_forward_pass(params, X)[0].argmax(dim=1))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_toy_problem_trains_to_low_loss(dtype):
    X, y, params = get_toy_data(dtype=dtype)
    stats = nn_train(params, nn_forward_backward, nn_predict, X, y, X, y, learning_rate=1e-1,
                     learning_rate_decay=1.0, reg=1e-6, num_iters=200)
    assert stats["loss_history"][0] > 1.0
    assert stats["loss_history"][-1] < TOY_TRAINED_LOSS
    assert (nn_predict(params, nn_forward_backward, X) == y).all()


def test_net_seed_is_reproducible_and_leaves_global_rng_alone():
    state = torch.get_rng_state()
    a, b = TwoLayerNet(4, 5, 3, seed=7), TwoLayerNet(4, 5, 3, seed=7)
    assert torch.equal(torch.get_rng_state(), state)
    assert all(torch.equal(a.params[k], b.params[k]) for k in a.params)
    assert not torch.equal(a.params["W1"], TwoLayerNet(4, 5, 3, seed=8).params["W1"])


def test_net_save_load_round_trip(tmp_path):
    net = TwoLayerNet(4, 5, 3, dtype=torch.float64, seed=1)
    net.params["b2"] += 1.0
    net.save(tmp_path / "net.pt")
    other = TwoLayerNet(4, 5, 3, dtype=torch.float64, seed=2)
    other.load(tmp_path / "net.pt")
    assert all(torch.equal(net.params[k], other.params[k]) for k in net.params)
    with pytest.raises(ValueError, match="shape"):
        TwoLayerNet(4, 6, 3).load(tmp_path / "net.pt")
    torch.save({"weights": torch.zeros(3)}, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="W1, b1, W2, b2"):
        net.load(tmp_path / "bad.pt")


def test_find_best_net_keeps_the_best_validation_accuracy():
    data = load_digits_data(num_train=300, num_val=100, num_test=0)
    grid = ([1e-3, 1.0], [32], [1e-4], [1.0])
    best_net, best_stat, best_val_acc = find_best_net(data, lambda: grid, num_iters=200)
    assert isinstance(best_net, TwoLayerNet)
    assert len(best_stat["search"]) == 2
    accs = [s["val_acc"] for s in best_stat["search"]]
    assert best_val_acc == max(accs) and 0.0 <= best_val_acc <= 1.0
    assert best_val_acc == (best_net.predict(data["X_val"]) == data["y_val"]).float().mean().item()
    assert accs[1] > accs[0], "learning rate 1 should beat 1e-3 in 200 iterations"


def test_search_params_are_four_nonempty_lists():
    lists = nn_get_search_params()
    assert len(lists) == 4 and all(isinstance(v, list) and v for v in lists)


def test_module_imports_only_torch_and_the_standard_library():
    tree = ast.parse(open(os.path.join(ROOT, "two_layer_net.py")).read())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            names.add(node.module.split(".")[0])
    assert names - {"torch"} <= set(sys.stdlib_module_names), names


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_backward_on_cuda_matches_autograd_and_stays_there():
    params, X, y = make_problem(37, 13, 21, 10, device="cuda")
    # reg=0.37: the inputs of test_backward_matches_autograd's largest case, whose expected
    # values the student release holds (this test is skipped where the release is built).
    loss, grads = nn_forward_backward(params, X, y, reg=0.37)
    want_loss, want_grads = oracle.loss_and_grads(params, X, y, 0.37)
    assert loss.device.type == "cuda" and all(g.device.type == "cuda" for g in grads.values())
    assert rel_error(loss, want_loss) <= FLOAT64_TOL
    for k in params:
        assert rel_error(grads[k], want_grads[k]) <= FLOAT64_TOL, k
    stats = nn_train(params, nn_forward_backward, nn_predict, X, y, X, y, num_iters=20,
                     batch_size=8)
    assert len(stats["loss_history"]) == 20 and math.isfinite(stats["loss_history"][-1])


# Short reports while parts are unwritten: the first test that meets a part still to write fails
# with its NotImplementedError; every later test stopped by the same part is skipped with the
# same one-line reason (pytest -ra folds those into one line).
_UNWRITTEN = set()


def _report_each_unwritten_part_once(test):
    @functools.wraps(test)
    def run(*args, **kwargs):
        try:
            return test(*args, **kwargs)
        except NotImplementedError as error:
            if str(error) in _UNWRITTEN:
                pytest.skip(f"blocked by a part not written yet: {error}")
            _UNWRITTEN.add(str(error))
            raise
    return run


for _name, _test in list(globals().items()):
    if _name.startswith("test_") and callable(_test):
        globals()[_name] = _report_each_unwritten_part_once(_test)
