"""The gradient-flow demonstrations (helpers_lib/deepnets.py): activations, deep-net gradient
norms, clipping."""
import math

import pytest
import torch
from matplotlib.figure import Figure

from helpers import (activation_and_derivative, clip_by_norm, deep_net_scores, init_deep_net,
                     layer_gradient_norms, load_digits_data, plot_activations,
                     plot_layer_gradient_norms, train_deep_net)

# float32 rounding of a sigmoid and its derivative (~6e-8 relative).
FLOAT32_TOL = 1e-6
# Measured at initialisation (8 layers, width 64, seeds 0-4): the sigmoid net's gradient shrinks
# by a factor 0.08-0.43 per layer towards the input, 2e-5 to 6e-5 from layer 8 to layer 1;
# He-initialised ReLU stays within a factor 2-6 across layers; std 3/sqrt(fan_in) makes every
# layer's gradient 240x or more He's. The bounds sit outside those ranges, far from what a broken
# demonstration gives.
SIGMOID_SHRINK_PER_LAYER = 0.5
SIGMOID_FIRST_OVER_LAST = 1e-3
HE_SPREAD = 20.0
TOO_LARGE_OVER_HE = 20.0


def test_sigmoid_derivative_is_s_times_one_minus_s_and_peaks_at_a_quarter():
    x = torch.linspace(-6, 6, 1201)
    s, ds = activation_and_derivative("sigmoid", x)
    assert torch.allclose(s, torch.sigmoid(x), atol=FLOAT32_TOL)
    assert torch.allclose(ds, s * (1 - s), atol=FLOAT32_TOL)
    assert ds.max().item() == pytest.approx(0.25, abs=FLOAT32_TOL)
    assert x[ds.argmax()].item() == pytest.approx(0.0, abs=0.01)
    assert not x.requires_grad


def test_relu_derivative_is_a_step():
    x = torch.tensor([-2.0, -0.5, 0.5, 3.0])
    values, derivatives = activation_and_derivative("relu", x)
    assert values.tolist() == [0.0, 0.0, 0.5, 3.0]
    assert derivatives.tolist() == [0.0, 0.0, 1.0, 1.0]


def test_plot_activations_shows_both_with_their_derivatives():
    fig = plot_activations()
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    sigmoid_ax, relu_ax = fig.axes
    derivative = sigmoid_ax.lines[1].get_ydata()
    assert max(derivative) == pytest.approx(0.25, abs=FLOAT32_TOL)
    assert max(relu_ax.lines[1].get_ydata()) == 1.0


def test_deep_net_scores_match_torch_nn():
    layers = init_deep_net(4, 5, 7, 3, gain=1.0, seed=3)
    X = torch.randn(6, 5, generator=torch.Generator().manual_seed(0))
    modules = []
    for i, (W, b) in enumerate(layers):
        linear = torch.nn.Linear(*W.shape)
        linear.weight.data, linear.bias.data = W.T.clone(), b.clone()
        modules += [linear] + ([torch.nn.Sigmoid()] if i < len(layers) - 1 else [])
    want = torch.nn.Sequential(*modules)(X)
    torch.testing.assert_close(deep_net_scores(layers, X, "sigmoid"), want)


def test_init_deep_net_shapes_scale_and_seed():
    layers = init_deep_net(8, 64, 256, 10, gain=2.0, seed=1)
    assert [tuple(W.shape) for W, _ in layers] == [(64, 256)] + [(256, 256)] * 6 + [(256, 10)]
    assert all(torch.equal(b, torch.zeros_like(b)) for _, b in layers)
    assert layers[1][0].std().item() == pytest.approx(2.0 / 16, rel=0.02)
    again = init_deep_net(8, 64, 256, 10, gain=2.0, seed=1)
    assert all(torch.equal(a[0], b[0]) for a, b in zip(layers, again))


def test_layer_gradient_norms_match_autograd_through_torch_nn():
    norms = layer_gradient_norms("relu", depth=3, width=6, gain=1.5, num_examples=9, num_classes=4,
                                 seed=2)
    layers = init_deep_net(3, 6, 6, 4, gain=1.5, seed=2)
    g = torch.Generator().manual_seed(3)  # the inputs' generator: seed + 1
    X = torch.randn(9, 6, generator=g)
    y = torch.randint(4, (9,), generator=g)
    net = torch.nn.Sequential(torch.nn.Linear(6, 6), torch.nn.ReLU(), torch.nn.Linear(6, 6),
                              torch.nn.ReLU(), torch.nn.Linear(6, 4))
    for linear, (W, b) in zip(net[::2], layers):
        linear.weight.data, linear.bias.data = W.T.clone(), b.clone()
    torch.nn.functional.cross_entropy(net(X), y).backward()
    want = [linear.weight.grad.norm().item() for linear in net[::2]]
    assert norms == pytest.approx(want, rel=1e-5)


@pytest.mark.parametrize("seed", range(3))
def test_sigmoid_gradients_shrink_geometrically_towards_the_input(seed):
    norms = layer_gradient_norms("sigmoid", gain=1.0, seed=seed)
    assert len(norms) == 8
    ratios = [a / b for a, b in zip(norms, norms[1:])]
    assert max(ratios) < SIGMOID_SHRINK_PER_LAYER, ratios
    assert norms[0] / norms[-1] < SIGMOID_FIRST_OVER_LAST


@pytest.mark.parametrize("seed", range(3))
def test_he_initialised_relu_keeps_gradients_and_a_too_large_init_explodes_them(seed):
    he = layer_gradient_norms("relu", gain=2 ** 0.5, seed=seed)
    assert max(he) / min(he) < HE_SPREAD, he
    too_large = layer_gradient_norms("relu", gain=3.0, seed=seed)
    assert all(big > TOO_LARGE_OVER_HE * small for big, small in zip(too_large, he))


def test_plot_layer_gradient_norms_draws_a_log_scale_bar_per_layer_and_net():
    fig = plot_layer_gradient_norms({"a": [1e-5, 1e-3, 1e-1], "b": [1.0, 2.0, 3.0]})
    (ax,) = fig.axes
    assert ax.get_yscale() == "log"
    assert len(ax.patches) == 6
    assert sorted(p.get_height() for p in ax.patches) == [1e-5, 1e-3, 1e-1, 1.0, 2.0, 3.0]


def test_clip_by_norm_matches_torch_and_leaves_small_gradients_alone():
    g = torch.Generator().manual_seed(0)
    grads = [torch.randn(4, 3, generator=g) * 10, torch.randn(5, generator=g) * 10]
    clipped, norm = clip_by_norm(grads, 2.0)
    params = [torch.zeros_like(gr, requires_grad=True) for gr in grads]
    for p, gr in zip(params, grads):
        p.grad = gr.clone()
    want_norm = torch.nn.utils.clip_grad_norm_(params, 2.0)
    assert norm == pytest.approx(want_norm.item(), rel=1e-6)
    for c, p in zip(clipped, params):
        torch.testing.assert_close(c, p.grad)
    total = math.sqrt(sum(c.pow(2).sum().item() for c in clipped))
    assert total == pytest.approx(2.0, rel=1e-6)
    small = [gr / 1000 for gr in grads]
    unchanged, _ = clip_by_norm(small, 2.0)
    assert all(torch.equal(a, b) for a, b in zip(unchanged, small))


@pytest.fixture(scope="module")
def digits():
    return load_digits_data()


def test_too_large_init_diverges_and_clipping_rescues_it(digits):
    state = torch.get_rng_state()
    X, y = digits["X_train"], digits["y_train"]
    he = train_deep_net(X, y, gain=2 ** 0.5, learning_rate=0.1, num_iters=100)
    exploding = train_deep_net(X, y, gain=3.0, learning_rate=0.1, num_iters=100)
    clipped = train_deep_net(X, y, gain=3.0, learning_rate=0.1, num_iters=100, clip_norm=5.0)
    assert torch.equal(torch.get_rng_state(), state), "must not touch the global generator"
    assert he["diverged_at"] is None and he["loss_history"][-1] < he["loss_history"][0] / 2
    assert exploding["diverged_at"] is not None and exploding["diverged_at"] < 20
    assert len(exploding["loss_history"]) == exploding["diverged_at"]
    assert exploding["grad_norm_history"][0] > 100 * he["grad_norm_history"][0]
    assert clipped["diverged_at"] is None and len(clipped["loss_history"]) == 100
    assert clipped["loss_history"][-1] < clipped["loss_history"][0] / 100
    assert clipped["grad_norm_history"][0] == exploding["grad_norm_history"][0], \
        "the history holds the norm before clipping"
