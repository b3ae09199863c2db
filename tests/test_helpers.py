"""helpers.py, the import point, and its parts helpers_lib/data.py, gradcheck.py and plots.py:
toy data, gradient checks, data loaders and plots."""
import os
import pickle

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

import helpers
from helpers import (get_toy_data, grad_check, load_cifar10, load_digits_data, numeric_gradient,
                     plot_loss_curves, plot_stats, rel_error, show_net_weights)
from two_layer_net import nn_forward_backward


def test_toy_data_is_the_classic_shape_and_reproducible():
    state = torch.get_rng_state()
    X, y, params = get_toy_data()
    assert torch.equal(torch.get_rng_state(), state), "must not touch the global generator"
    assert X.shape == (5, 4) and y.shape == (5,) and y.dtype == torch.int64
    assert {k: tuple(v.shape) for k, v in params.items()} == {
        "W1": (4, 10), "b1": (10,), "W2": (10, 3), "b2": (3,)}
    assert all(v.dtype == torch.float64 for v in [X, *params.values()])
    assert 0.5e-4 < params["W1"].std() < 2e-4
    X2, y2, params2 = get_toy_data()
    assert torch.equal(X, X2) and torch.equal(y, y2)
    assert all(torch.equal(params[k], params2[k]) for k in params)
    X32, _, params32 = get_toy_data(dtype=torch.float32)
    assert X32.dtype == torch.float32 and torch.equal(X32, X.float())


def test_rel_error_uses_the_largest_magnitude_and_an_epsilon():
    assert rel_error(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 2.0])) == 0.0
    assert rel_error(torch.tensor([1.0, 100.0]), torch.tensor([2.0, 100.0])) == pytest.approx(1 / 200)
    assert rel_error(torch.zeros(3), torch.zeros(3)) == 0.0
    assert rel_error(torch.tensor(0.0), torch.tensor(1e-12), eps=1e-10) == pytest.approx(1e-2)


def test_numeric_gradient_of_a_known_function_leaves_x_alone():
    x = torch.tensor([[1.0, -2.0], [0.5, 3.0]], dtype=torch.float32)
    before = x.clone()
    grad = numeric_gradient(lambda v: (v ** 3).sum(), x)
    assert grad.dtype == torch.float64 and grad.shape == x.shape
    assert rel_error(grad, 3 * x.double() ** 2) < 1e-9
    assert torch.equal(x, before)


def test_grad_check_reports_small_errors_for_right_and_large_for_wrong_gradients():
    X, y, params = get_toy_data(std=0.3)
    errors = grad_check(nn_forward_backward, params, X, y, reg=0.1)
    assert max(errors.values()) < 1e-6, errors

    def wrong_b1(params, X, y=None, reg=0.0):
        loss, grads = nn_forward_backward(params, X, y, reg)
        return loss, {**grads, "b1": 2 * grads["b1"]}

    errors = grad_check(wrong_b1, params, X, y, reg=0.1)
    assert errors["b1"] > 0.1 and errors["W2"] < 1e-6


def test_digits_split_is_fixed_disjoint_and_normalised():
    data = load_digits_data()
    sizes = {k: tuple(v.shape) for k, v in data.items()}
    assert sizes == {"X_train": (1200, 64), "y_train": (1200,), "X_val": (300, 64),
                     "y_val": (300,), "X_test": (297, 64), "y_test": (297,)}
    assert data["X_train"].dtype == torch.float32 and data["y_train"].dtype == torch.int64
    assert data["X_train"].mean(dim=0).abs().max() < 1e-5
    assert set(data["y_train"].tolist()) == set(range(10))
    rows = torch.cat([data["X_train"], data["X_val"], data["X_test"]])
    assert len(torch.unique(rows, dim=0)) > 1750, "the parts must not repeat images"
    again = load_digits_data()
    assert all(torch.equal(data[k], again[k]) for k in data)
    other = load_digits_data(seed=1)
    assert not torch.equal(data["y_train"], other["y_train"])


def test_digits_asks_for_too_many_examples():
    with pytest.raises(ValueError, match="has 1797"):
        load_digits_data(num_train=1700, num_val=100, num_test=100)


def write_cifar_batch(path, num, seed, protocol=2):
    """A CIFAR-10 python batch in the real format: a pickled dict with bytes keys."""
    rng = np.random.default_rng(seed)
    batch = {b"batch_label": b"testing batch",
             b"labels": [int(v) for v in rng.integers(0, 10, num)],
             b"data": rng.integers(0, 256, (num, 3072), dtype=np.uint8),
             b"filenames": [f"img_{i}.png".encode() for i in range(num)]}
    with open(path, "wb") as f:
        pickle.dump(batch, f, protocol=protocol)
    return batch


@pytest.fixture
def cifar_folder(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    batches = [write_cifar_batch(folder / f"data_batch_{i}", 6, seed=i) for i in range(1, 6)]
    test = write_cifar_batch(folder / "test_batch", 8, seed=99)
    return folder, batches, test


def test_load_cifar10_reads_the_real_format(cifar_folder):
    folder, batches, test = cifar_folder
    data = load_cifar10(folder, num_train=20, num_val=10, num_test=8, subtract_mean=False)
    assert data["X_train"].shape == (20, 3072) and data["X_val"].shape == (10, 3072)
    assert data["X_test"].shape == (8, 3072) and data["y_test"].dtype == torch.int64
    want = torch.from_numpy(test[b"data"].astype(np.float32) / 255.0)
    assert torch.allclose(data["X_test"], want)
    assert data["y_test"].tolist() == test[b"labels"]
    all_train = {tuple(row) for b in batches for row in b[b"data"].tolist()}
    got = (data["X_train"] * 255).round().to(torch.uint8).tolist()
    assert all(tuple(row) in all_train for row in got)


def test_load_cifar10_accepts_the_parent_folder_and_subtracts_the_mean(cifar_folder):
    folder, _, _ = cifar_folder
    data = load_cifar10(folder.parent, num_train=20, num_val=10, num_test=8)
    assert data["X_train"].mean(dim=0).abs().max() < 1e-5


def test_load_cifar10_missing_folder_says_what_was_expected(tmp_path):
    with pytest.raises(FileNotFoundError, match="data_batch_1.*test_batch.*cifar-10-batches-py"):
        load_cifar10(tmp_path / "nowhere")


def test_load_cifar10_missing_batch_is_named(cifar_folder):
    folder, _, _ = cifar_folder
    os.remove(folder / "data_batch_3")
    with pytest.raises(FileNotFoundError, match="data_batch_3"):
        load_cifar10(folder)


def test_load_cifar10_corrupt_file_is_named(cifar_folder):
    folder, _, _ = cifar_folder
    (folder / "data_batch_2").write_bytes(b"\x80\x02}q\x00(garbage")
    with pytest.raises(ValueError, match="data_batch_2.*not a valid"):
        load_cifar10(folder)


class _Evil:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


def test_load_cifar10_refuses_pickles_that_run_code(cifar_folder, monkeypatch):
    folder, _, _ = cifar_folder
    monkeypatch.chdir(folder)
    with open(folder / "data_batch_1", "wb") as f:
        pickle.dump({b"data": _Evil(), b"labels": []}, f, protocol=2)
    with pytest.raises(ValueError, match="refusing to load"):
        load_cifar10(folder)
    assert not os.path.exists("pwned")


def test_plot_stats_has_loss_and_accuracy_axes():
    stats = {"loss_history": [2.0, 1.0, 0.5], "train_acc_history": [0.1, 0.5],
             "val_acc_history": [0.1, 0.4], "diverged_at": None}
    fig = plot_stats(stats)
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    loss_ax, acc_ax = fig.axes
    assert list(loss_ax.lines[0].get_ydata()) == [2.0, 1.0, 0.5]
    assert [list(line.get_ydata()) for line in acc_ax.lines] == [[0.1, 0.5], [0.1, 0.4]]


def test_plot_loss_curves_marks_divergence_on_a_log_scale():
    curves = {"lr 0.1": {"loss_history": [1.0, 0.5, 0.2], "diverged_at": None},
              "lr 3": {"loss_history": [1.0, 50.0], "diverged_at": 2}}
    fig = plot_loss_curves(curves)
    (ax,) = fig.axes
    assert ax.get_yscale() == "log"
    markers = [line for line in ax.lines if line.get_marker() == "X"]
    assert len(markers) == 1 and list(markers[0].get_xdata()) == [2]
    assert any("diverged at iteration 2" in t.get_text() for t in ax.get_legend().get_texts())


@pytest.mark.parametrize("shape", [(8, 8), (3, 32, 32)])
def test_show_net_weights_draws_one_image_per_hidden_unit(shape):
    D = int(np.prod(shape))
    params = {"W1": torch.randn(D, 12)}
    fig = show_net_weights(params, shape)
    images = [ax.images[0] for ax in fig.axes if ax.images]
    assert len(images) == 12
    assert images[0].get_array().shape[:2] == shape[-2:]
    assert helpers.DIGITS_IMAGE_SHAPE == (8, 8)


def test_use_threads_sets_the_count_from_the_argument_the_environment_or_the_default(monkeypatch):
    before = torch.get_num_threads()
    try:
        monkeypatch.delenv(helpers.THREADS_ENV, raising=False)
        assert helpers.use_threads() == helpers.NUM_THREADS == torch.get_num_threads()
        monkeypatch.setenv(helpers.THREADS_ENV, "2")
        assert helpers.use_threads() == 2
        assert helpers.use_threads(1) == 1, "an argument wins over the environment"
        monkeypatch.setenv(helpers.THREADS_ENV, "default")
        assert helpers.use_threads() == 1, "'default' leaves the count as it is"
        monkeypatch.setenv(helpers.THREADS_ENV, "many")
        with pytest.raises(ValueError, match="KIT_THREADS='many' is not a thread count"):
            helpers.use_threads()
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("magnitude", [1e3, 1e4])
def test_huge_scores_case_reaches_its_magnitude_and_breaks_log_of_probs(magnitude):
    case = helpers.huge_scores_case(magnitude)
    params, X, y = case["params"], case["X"], case["y"]
    scores = torch.relu(X @ params["W1"] + params["b1"]) @ params["W2"] + params["b2"]
    assert case["magnitude"] == pytest.approx(magnitude) == scores.abs().max().item()
    loss, grads = nn_forward_backward(params, X, y, reg=case["reg"])
    assert rel_error(loss, case["loss"]) < 1e-14
    assert all(rel_error(grads[k], case["grads"][k]) < 1e-14 for k in params)
    shifted = scores - scores.max(dim=1, keepdim=True).values
    probs = shifted.exp() / shifted.exp().sum(dim=1, keepdim=True)
    naive = -probs.log()[torch.arange(len(y)), y].mean()
    assert not torch.isfinite(naive), "the case must tell log(probs) from shifted log-probs"


def test_autograd_oracle_matches_the_reference_on_the_toy_fixture():
    case = helpers.load_toy_reference()["large_weights"]
    loss, grads = helpers.autograd_loss_and_grads(case["params"], case["X"], case["y"], case["reg"])
    assert rel_error(loss, case["loss"]) < 1e-12
    assert all(rel_error(grads[k], case["grads"][k]) < 1e-12 for k in grads)


def test_require_gradients_names_what_is_missing_and_what_to_write():
    params = {k: torch.ones(2, 3) for k in ("W1", "b1", "W2", "b2")}
    grads = {k: torch.zeros(2, 3) for k in params}
    assert helpers.require_gradients(grads, params) is grads
    with pytest.raises(NotImplementedError) as caught:
        helpers.require_gradients({"W1": 0}, params)
    assert helpers.describe_error(caught.value) == (
        "nn_forward_backward returned no grads['b1'], grads['W2'], grads['b2']: backpropagate "
        "(Part 2 of nn_forward_backward, still to write)")
    X, y, toy = get_toy_data()
    with pytest.raises(NotImplementedError, match="backpropagate"):
        grad_check(lambda params, X, y=None, reg=0.0: (torch.tensor(1.0), {}), toy, X, y)


def test_a_gradient_of_the_wrong_shape_fails_its_own_check_with_a_clear_message():
    """A db2 of shape (1, C): the numeric check of db2 names both shapes; dW1's still runs."""
    X, y, params = get_toy_data()

    def db2_as_row(params, X, y=None, reg=0.0):
        loss, grads = nn_forward_backward(params, X, y, reg)
        return loss, {**grads, "b2": grads["b2"].reshape(1, -1)}

    with pytest.raises(helpers.WrongGradientShape) as caught:
        grad_check(db2_as_row, params, X, y, names=["b2"])
    assert str(caught.value) == ("nn_forward_backward returned grads['b2'] of shape (1, 3); "
                                 "params['b2'] has shape (3,), and each gradient has the shape "
                                 "of its parameter")
    assert helpers.describe_error(caught.value) == str(caught.value)
    assert grad_check(db2_as_row, params, X, y, names=["W1"])["W1"] < 1e-6


def test_largest_differences_show_where_two_tensors_differ_with_every_digit():
    correct = torch.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=torch.float64)
    yours = correct.clone()
    yours[1, 0] += 1e-5
    yours[0, 1] -= 3e-5
    assert helpers.largest_differences(yours, correct) == [
        ((0, 1), 2.0 - 3e-5, 2.0), ((1, 0), 3.0 + 1e-5, 3.0)]
    assert helpers.largest_differences(correct, correct) == []


def test_a_prediction_of_scores_is_reported_at_the_prediction_function():
    """nn_predict returning the scores fails inside nn_train's accuracy; checked_predict names
    the prediction function and its line instead."""
    import inspect

    import two_layer_net

    def scores_not_labels(params, loss_func, X):
        return loss_func(params, X)

    X, y, params = get_toy_data()
    with pytest.raises(helpers.WrongPrediction) as caught:
        two_layer_net.nn_train(params, nn_forward_backward, helpers.checked_predict(scores_not_labels),
                               X, y, X, y, num_iters=1)
    line = inspect.getsourcelines(scores_not_labels)[1]
    said = helpers.describe_error(caught.value)
    assert said.startswith("scores_not_labels returned a float64 tensor of shape (200, 3), not (200,) "
                           "integer labels")
    assert said.endswith(f"(test_helpers.py, line {line}, in scores_not_labels)")
    assert "nn_train" not in said


def test_the_toy_reference_error_names_only_what_a_release_holds(tmp_path):
    with pytest.raises(ValueError) as caught:
        helpers.load_toy_reference(str(tmp_path / "missing.json"))
    said = str(caught.value)
    assert "git" not in said and "make_fixtures" not in said
    assert "tests/fixtures/toy_reference.json" in said
