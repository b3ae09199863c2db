"""The vanishing- and exploding-gradient demonstrations of the notebook's section 8.

They use torch.autograd: they analyse deeper networks and are not the student's task. Every
random draw comes from a private generator; torch's global generator is not touched.
"""
import torch
from matplotlib.figure import Figure

ACTIVATIONS = {"sigmoid": torch.sigmoid, "relu": torch.relu}


def activation_and_derivative(name, x):
    """An activation function and its derivative at the points x, the derivative by autograd.

    Args:
        name: "sigmoid" or "relu"; x: (M,) points.
    Returns:
        (values, derivatives), both (M,) tensors detached from the graph.
    """
    x = x.detach().clone().requires_grad_()
    values = ACTIVATIONS[name](x)
    (derivatives,) = torch.autograd.grad(values.sum(), x)
    return values.detach(), derivatives


def plot_activations(x=None):
    """Sigmoid and ReLU with their derivatives, side by side (the sigmoid's peaks at 0.25).

    Returns:
        Figure with two axes.
    """
    x = torch.linspace(-6, 6, 601) if x is None else x
    fig = Figure(figsize=(11, 4), layout="constrained")
    for ax, name in zip(fig.subplots(1, 2), ("sigmoid", "relu")):
        values, derivatives = activation_and_derivative(name, x)
        ax.plot(x, values, label=name)
        ax.plot(x, derivatives, "--", label=f"derivative of {name}")
        peak = derivatives.max().item()
        ax.axhline(peak, color="grey", linewidth=0.8)
        ax.text(x[0].item(), peak, f" max derivative {peak:g}", va="bottom", fontsize="small")
        ax.set(title=name, xlabel="x")
        ax.legend(loc="center right")
    return fig


def init_deep_net(depth, in_features, width, num_classes, gain, seed=0, dtype=torch.float32,
                  device="cpu"):
    """Weights of a fully-connected net with `depth` layers, drawn with std gain / sqrt(fan_in).

    Drawn on the CPU from a private generator seeded with `seed`, then moved to `device`.

    Returns:
        list of depth (W, b) pairs: W (fan_in, fan_out), b zeros; in_features -> width ... ->
        num_classes.
    """
    g = torch.Generator().manual_seed(seed)
    sizes = [in_features] + [width] * (depth - 1) + [num_classes]
    layers = []
    for fan_in, fan_out in zip(sizes, sizes[1:]):
        W = gain / fan_in ** 0.5 * torch.randn(fan_in, fan_out, generator=g, dtype=dtype)
        layers.append((W.to(device), torch.zeros(fan_out, dtype=dtype, device=device)))
    return layers


def deep_net_scores(layers, X, activation):
    """Class scores of the net: the activation after every layer but the last. (N, C)."""
    h = X
    for i, (W, b) in enumerate(layers):
        h = h @ W + b
        if i < len(layers) - 1:
            h = ACTIVATIONS[activation](h)
    return h


def layer_gradient_norms(activation, depth=8, width=64, gain=1.0, num_examples=256,
                         num_classes=10, seed=0):
    """The gradient norm of every layer's weights of a freshly initialised deep net.

    The inputs are standard normal and the labels random; the loss is softmax cross-entropy.

    Returns:
        list of depth floats, ||dL/dW_l|| for l = 1 (next to the input) ... depth (the scores).
    """
    g = torch.Generator().manual_seed(seed + 1)
    X = torch.randn(num_examples, width, generator=g)
    y = torch.randint(num_classes, (num_examples,), generator=g)
    layers = init_deep_net(depth, width, width, num_classes, gain, seed)
    weights = [W.requires_grad_() for W, _ in layers]
    loss = torch.nn.functional.cross_entropy(deep_net_scores(layers, X, activation), y)
    return [grad.norm().item() for grad in torch.autograd.grad(loss, weights)]


def plot_layer_gradient_norms(norms_by_label):
    """Bars of each layer's gradient norm on a log scale, one colour per network.

    Args:
        norms_by_label: {label: list of per-layer gradient norms, input side first}.
    Returns:
        Figure with one axis.
    """
    fig = Figure(figsize=(9, 4.5), layout="constrained")
    ax = fig.subplots()
    width = 0.8 / len(norms_by_label)
    for k, (label, norms) in enumerate(norms_by_label.items()):
        ax.bar([i + 1 + (k - (len(norms_by_label) - 1) / 2) * width for i in range(len(norms))],
               norms, width=width, label=label)
    depth = max(len(norms) for norms in norms_by_label.values())
    ax.set_xticks(range(1, depth + 1))
    ax.set(yscale="log", title="Gradient norm of each layer's weights at initialisation",
           xlabel="Layer (1 = next to the input)", ylabel="||dL/dW|| (log scale)")
    top = max(max(norms) for norms in norms_by_label.values())
    ax.set_ylim(top=top * 100)  # room for the legend above the bars
    ax.legend(loc="upper left", ncols=len(norms_by_label), fontsize="small")
    return fig


def clip_by_norm(grads, max_norm):
    """Scale a list of gradients so that their joint L2 norm is at most max_norm.

    Returns:
        (clipped gradients, the norm before clipping).
    """
    total = torch.sqrt(sum(g.pow(2).sum() for g in grads)).item()
    scale = min(1.0, max_norm / total) if total > 0 else 1.0
    return [g * scale for g in grads], total


def train_deep_net(X, y, activation="relu", depth=8, width=64, gain=2 ** 0.5, learning_rate=1e-2,
                   num_iters=200, batch_size=200, clip_norm=None, seed=0):
    """Minibatch SGD on a deep fully-connected net (autograd), optionally clipping the gradient.

    Stops at the first non-finite loss, like nn_train. The minibatches come from a private
    generator seeded with `seed`; torch's global generator is not touched.

    Returns:
        stats dict: loss_history and grad_norm_history (the norm before clipping), one float per
        iteration, and diverged_at (the iteration whose loss was not finite, or None).
    """
    g = torch.Generator().manual_seed(seed + 2)
    num_classes = int(y.max()) + 1
    layers = init_deep_net(depth, X.shape[1], width, num_classes, gain, seed, X.dtype, X.device)
    params = [p.requires_grad_() for layer in layers for p in layer]
    stats = {"loss_history": [], "grad_norm_history": [], "diverged_at": None}
    for it in range(num_iters):
        idx = torch.randint(X.shape[0], (batch_size,), generator=g).to(X.device)
        scores = deep_net_scores(layers, X[idx], activation)
        loss = torch.nn.functional.cross_entropy(scores, y[idx])
        if not torch.isfinite(loss):
            stats["diverged_at"] = it
            break
        grads = torch.autograd.grad(loss, params)
        if clip_norm is not None:
            grads, norm = clip_by_norm(grads, clip_norm)
        else:
            norm = torch.sqrt(sum(gr.pow(2).sum() for gr in grads)).item()
        with torch.no_grad():
            for p, grad in zip(params, grads):
                p -= learning_rate * grad
        stats["loss_history"].append(loss.item())
        stats["grad_norm_history"].append(norm)
    return stats
