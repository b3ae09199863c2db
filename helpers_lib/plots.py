"""Plots of training runs and of what a network learned.

Each function returns a matplotlib `Figure` that is not registered with pyplot, so a notebook
shows it once and a script can `savefig` it.
"""
import math

import torch
from matplotlib.figure import Figure

# A learning rate below this moves float64 weights of order 1 by less than their rounding error.
SMALLEST_RATE_SHOWN = 1e-16


def plot_stats(stats):
    """Loss per iteration beside train and validation accuracy per epoch.

    Args:
        stats: dict returned by nn_train.
    Returns:
        Figure with two axes.
    """
    fig = Figure(figsize=(11, 4), layout="constrained")
    ax_loss, ax_acc = fig.subplots(1, 2)
    ax_loss.plot(stats["loss_history"])
    ax_loss.set(title="Loss history", xlabel="Iteration", ylabel="Loss")
    ax_acc.plot(stats["train_acc_history"], "o-", label="train")
    ax_acc.plot(stats["val_acc_history"], "o-", label="val")
    ax_acc.set(title="Classification accuracy history", xlabel="Epoch", ylabel="Accuracy")
    ax_acc.legend()
    return fig


def plot_loss_curves(stats_by_label, title="Training loss"):
    """Loss curves of several runs overlaid on a log scale; a diverged run ends in an X.

    Args:
        stats_by_label: {label: stats dict returned by nn_train}.
    Returns:
        Figure with one axis.
    """
    fig = Figure(figsize=(8, 4.5), layout="constrained")
    ax = fig.subplots()
    for label, stats in stats_by_label.items():
        losses = stats["loss_history"]
        diverged_at = stats.get("diverged_at")
        if diverged_at is not None:
            label = f"{label} (diverged at iteration {diverged_at})"
        (line,) = ax.plot(range(len(losses)), losses, label=label)
        if diverged_at is not None:
            y_mark = losses[-1] if losses else 1.0
            ax.plot([diverged_at], [y_mark], "X", color=line.get_color(), markersize=12)
    ax.set_yscale("log")
    ax.set(title=title, xlabel="Iteration", ylabel="Loss (log scale)")
    ax.legend()
    return fig


def show_net_weights(params, image_shape, max_units=100):
    """The first-layer weights of each hidden unit, drawn as images.

    Args:
        params: dict with W1 (D, H), D = product of image_shape.
        image_shape: (height, width) for grey images, or (channels, height, width).
        max_units: draw at most this many hidden units.
    Returns:
        Figure with one image per hidden unit, each scaled to its own range.
    """
    W1 = params["W1"].detach().to("cpu", torch.float32)
    H = min(W1.shape[1], max_units)
    cols = min(H, 10)
    rows = -(-H // cols)
    fig = Figure(figsize=(cols * 1.0, rows * 1.0), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= H:
            continue
        w = W1[:, i].reshape(image_shape)
        if w.dim() == 3:
            w = w.permute(1, 2, 0)  # (channels, height, width) -> (height, width, channels)
        w = (w - w.min()) / (w.max() - w.min()).clamp(min=1e-12)
        ax.imshow(w.numpy(), cmap="gray" if w.dim() == 2 else None)
    fig.suptitle("First-layer weights")
    return fig


# The notebook's support (appended for two_layer_net.ipynb): checks that report an error in one


def plot_loss_and_learning_rate(stats_by_label, rates_by_label):
    """Loss curves (log scale) beside the learning rate of each iteration (log scale).

    Args:
        stats_by_label: {label: stats dict returned by nn_train}.
        rates_by_label: {label: list of learning rates, one per iteration}.
    Returns:
        Figure with two axes.
    """
    fig = Figure(figsize=(12, 4.5), layout="constrained")
    ax_loss, ax_rate = fig.subplots(1, 2)
    for label, stats in stats_by_label.items():  # shorter runs drawn on top of longer ones
        ax_loss.plot(stats["loss_history"], label=label, zorder=-len(stats["loss_history"]))
    ax_loss.set(title="Training loss", xlabel="Iteration (log scale)", ylabel="Loss",
                xscale="log")
    ax_loss.legend()
    for label, rates in rates_by_label.items():
        ax_rate.plot(rates, label=label, zorder=-len(rates))
    smallest = min(min(rates) for rates in rates_by_label.values())
    largest = max(max(rates) for rates in rates_by_label.values())
    ax_rate.set(title="Learning rate used at each iteration", xlabel="Iteration (log scale)",
                ylabel="Learning rate (log scale)", xscale="log", yscale="log")
    if smallest < SMALLEST_RATE_SHOWN:
        ax_rate.set_ylim(SMALLEST_RATE_SHOWN, largest * 10)
        ax_rate.set_title(f"Learning rate used at each iteration (below {SMALLEST_RATE_SHOWN:g} "
                          "not shown)")
    ax_rate.legend()
    return fig


def plot_acc_curves(stats_by_label, title):
    """Train (solid) and validation (dashed) accuracy per epoch, one colour per setting.

    Args:
        stats_by_label: {label: stats dict returned by nn_train}.
    Returns:
        Figure with one axis.
    """
    fig = Figure(figsize=(8, 4.5), layout="constrained")
    ax = fig.subplots()
    for label, stats in stats_by_label.items():
        (line,) = ax.plot(stats["train_acc_history"], label=f"{label} train")
        ax.plot(stats["val_acc_history"], "--", color=line.get_color(), label=f"{label} val")
    ax.set(title=title, xlabel="Epoch", ylabel="Accuracy")
    ax.legend(ncols=2, fontsize="small")
    return fig


def plot_search_heatmap(search):
    """Validation accuracy of a hyperparameter search: learning rate by regularisation, one panel
    per hidden size (the best over any other hyperparameter).

    Args:
        search: list of dicts with learning_rate, hidden_size, reg and val_acc, as in
            best_stat["search"].
    Returns:
        Figure with one heat map per hidden size, each cell labelled with its accuracy.
    """
    if not search:
        raise ValueError("the search list is empty; find_best_net should fill best_stat['search']")
    rates = sorted({s["learning_rate"] for s in search})
    regs = sorted({s["reg"] for s in search})
    sizes = sorted({s["hidden_size"] for s in search})
    fig = Figure(figsize=(4.2 * len(sizes) + 1, 3.8), layout="constrained")
    axes = fig.subplots(1, len(sizes), squeeze=False)[0]
    for ax, size in zip(axes, sizes):
        grid = torch.full((len(rates), len(regs)), float("nan"))
        for s in search:
            if s["hidden_size"] == size:
                i, j = rates.index(s["learning_rate"]), regs.index(s["reg"])
                grid[i, j] = max(s["val_acc"], grid[i, j].nan_to_num(-1.0).item())
        image = ax.imshow(grid.numpy(), cmap="viridis", vmin=0.0, vmax=1.0, origin="lower")
        for i in range(len(rates)):
            for j in range(len(regs)):
                if not math.isnan(grid[i, j]):
                    ax.text(j, i, f"{grid[i, j]:.3f}", ha="center", va="center",
                            color="white" if grid[i, j] < 0.6 else "black", fontsize="small")
        ax.set_xticks(range(len(regs)), [f"{r:g}" for r in regs])
        ax.set_yticks(range(len(rates)), [f"{r:g}" for r in rates])
        ax.set(title=f"hidden size {size}", xlabel="regularisation", ylabel="learning rate")
    fig.colorbar(image, ax=list(axes), label="validation accuracy")
    return fig
