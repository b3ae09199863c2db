"""The course's modules that code written for it imports, supplied by the grader as stand-ins.

Code written for the original course (EECS 498-007 A2) imports `sample_batch` from
`linear_classifier` and the course's helper package `eecs598` (most often `eecs598.reset_seed`
while tuning, and `plot_acc_curves` from `eecs598.a2_helpers` at module level; the 2020
release kept that module beside the assignment as `a2_helpers`). The grader writes these
sources into a stand-in folder placed after the submission's own folder on `sys.path`, so a
submission's own copy, when it has one, wins.
They are the kit's own, written to the original API; nothing here computes a gradient with
torch.autograd (the audit does not read these files: they are the kit's).
"""
import os

LINEAR_CLASSIFIER = '''"""Stand-in for the course's linear_classifier module (supplied by the grader)."""
import torch


def sample_batch(X, y, num_train, batch_size):
    """batch_size examples drawn uniformly with replacement, on the inputs' device."""
    idx = torch.randint(num_train, (batch_size,), device=X.device)
    return X[idx], y[idx]
'''

A2_HELPERS = '''"""The assignment's notebook helpers (toy data, plots of a training run), supplied by the
grader; plots draw on matplotlib's file backend and return the Figure."""
import random

import torch

from .utils import reset_seed


def hello_helper():
    print("Hello from a2_helpers.py!")


def get_toy_data(num_inputs=5, input_size=4, hidden_size=10, num_classes=3,
                 dtype=torch.float32, device="cpu"):
    """(X, y, params) of a toy problem: X (num_inputs, input_size), y (num_inputs,) labels,
    params W1, b1, W2, b2 with small random weights, all drawn after reset_seed(0)."""
    reset_seed(0)
    X = 10 * torch.randn(num_inputs, input_size, dtype=dtype, device=device)
    y = torch.tensor([random.randrange(num_classes) for _ in range(num_inputs)], device=device)
    params = {"W1": 1e-4 * torch.randn(input_size, hidden_size, dtype=dtype, device=device),
              "b1": torch.zeros(hidden_size, dtype=dtype, device=device),
              "W2": 1e-4 * torch.randn(hidden_size, num_classes, dtype=dtype, device=device),
              "b2": torch.zeros(num_classes, dtype=dtype, device=device)}
    return X, y, params


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_stats(stat_dict):
    """The loss history and both accuracy histories of one training run."""
    plt = _pyplot()
    figure, (top, bottom) = plt.subplots(2, 1)
    top.plot(stat_dict["loss_history"], "o")
    top.set(title="Loss history", xlabel="Iteration", ylabel="Loss")
    bottom.plot(stat_dict["train_acc_history"], "o-", label="train")
    bottom.plot(stat_dict["val_acc_history"], "o-", label="val")
    bottom.set(title="Classification accuracy history", xlabel="Epoch", ylabel="Accuracy")
    bottom.legend()
    return figure


def plot_acc_curves(stat_dict):
    """Validation accuracy per epoch of several runs: {hidden size or label: stats}."""
    plt = _pyplot()
    figure, axes = plt.subplots()
    for key, stats in stat_dict.items():
        axes.plot(stats["val_acc_history"], label=str(key))
    axes.set(title="Validation accuracy history", xlabel="Epoch", ylabel="Accuracy")
    axes.legend()
    return figure


def visualize_grid(Xs, ubound=255.0, padding=1):
    """(N, H, W, C) images tiled into one (grid, grid, C) tensor scaled to [0, ubound]."""
    count, height, width, channels = Xs.shape
    side = max(int(count ** 0.5 + 0.999), 1)
    grid = torch.zeros(side * (height + padding) - padding, side * (width + padding) - padding,
                       channels, dtype=Xs.dtype, device=Xs.device)
    for index in range(count):
        row, col = divmod(index, side)
        image = Xs[index]
        low, high = image.min(), image.max()
        top, left = row * (height + padding), col * (width + padding)
        grid[top:top + height, left:left + width] = ubound * (image - low) / (high - low + 1e-12)
    return grid


def show_net_weights(net):
    """The first layer's weights of a TwoLayerNet as 32x32 colour images."""
    plt = _pyplot()
    W1 = net.params["W1"]
    images = W1.reshape(3, 32, 32, -1).permute(3, 1, 2, 0)
    figure, axes = plt.subplots()
    axes.imshow(visualize_grid(images, padding=3).to("cpu", torch.uint8).numpy())
    axes.axis("off")
    return figure
'''

# The top-level a2_helpers cannot import eecs598: only the submission's own imports are served
# from the stand-in folder (grader.child.SubmissionFinder), so it seeds by itself.
SEEDING = '''

def reset_seed(number):
    random.seed(number)
    torch.manual_seed(number)
'''

EECS598 = {
    "__init__.py": '''"""Stand-in for the course's helper package eecs598 (supplied by the grader)."""
from . import data, grad, submit, utils, vis
from .grad import compute_numeric_gradient, rel_error
from .utils import reset_seed, tensor_to_image, visualize_dataset
''',
    "utils.py": '''"""Seeding and image helpers of the course package."""
import random

import torch


def reset_seed(number):
    """Seed Python's and torch's random number generators with `number`."""
    random.seed(number)
    torch.manual_seed(number)


def tensor_to_image(tensor):
    """A (3, H, W) tensor with values in [0, 1] as a (H, W, 3) uint8 numpy array."""
    image = tensor.mul(255).add(0.5).clamp(0, 255).permute(1, 2, 0)
    return image.to("cpu", torch.uint8).numpy()


def visualize_dataset(X_data, y_data, samples_per_class, class_list):
    """A grid image of `samples_per_class` examples of each class, as a (3, H, W) tensor."""
    rows = []
    for label in range(len(class_list)):
        picked = (y_data == label).nonzero().flatten()[:samples_per_class]
        rows.append(torch.cat(list(X_data[picked]), dim=2) if len(picked) else X_data[:0])
    rows = [row for row in rows if row.numel()]
    return torch.cat(rows, dim=1) if rows else X_data[:0]
''',
    "grad.py": '''"""Gradient checks of the course package: relative error and central differences."""
import random

import torch


def rel_error(x, y, eps=1e-10):
    """max|x - y| / max(|x| + |y|, eps)."""
    top = (x - y).abs().max().item()
    bottom = (x.abs() + y.abs()).clamp(min=eps).max().item()
    return top / bottom


def compute_numeric_gradient(f, x, dLdf=None, h=1e-7):
    """Central differences of f at x (x is changed in place and restored), times dLdf."""
    fx = f(x)
    flat_x = x.contiguous().flatten()
    grad = torch.zeros_like(x)
    flat_grad = grad.flatten()
    upstream = torch.ones_like(fx) if dLdf is None else dLdf
    for i in range(flat_x.shape[0]):
        old = flat_x[i].item()
        flat_x[i] = old + h
        plus = f(flat_x.view_as(x)).clone()
        flat_x[i] = old - h
        minus = f(flat_x.view_as(x)).clone()
        flat_x[i] = old
        flat_grad[i] = ((plus - minus) * upstream).sum() / (2 * h)
    return flat_grad.view_as(x)


def grad_check_sparse(f, x, analytic_grad, num_checks=10, h=1e-7):
    """Print the relative error of `num_checks` random entries of analytic_grad."""
    for _ in range(num_checks):
        index = tuple(random.randrange(size) for size in x.shape)
        old = x[index].item()
        x[index] = old + h
        plus = f(x).item()
        x[index] = old - h
        minus = f(x).item()
        x[index] = old
        numeric = (plus - minus) / (2 * h)
        analytic = analytic_grad[index].item()
        error = abs(numeric - analytic) / max(abs(numeric) + abs(analytic), 1e-10)
        print(f"numerical: {numeric:f} analytic: {analytic:f}, relative error: {error:e}")
''',
    "data.py": '''"""The course's data loaders: the grader has no data sets, so they say so when called."""


def _no_data(*args, **kwargs):
    raise RuntimeError("the grader has no data sets; eecs598.data works in the notebook only")


cifar10 = preprocess_cifar10 = _no_data
''',
    "submit.py": '''"""The course's submission zippers: the grader is where a submission arrives, not where
one is made, so they say so when called."""


def _not_here(*args, **kwargs):
    raise RuntimeError("making a submission zip works in the notebook only; use python grade.py "
                       "submit there")


make_a1_submission = make_a2_submission = make_a3_submission = _not_here
make_a4_submission = make_a5_submission = make_a6_submission = _not_here
''',
    "vis.py": '''"""Image helpers (the 2020 release kept them here rather than in utils)."""
from .utils import tensor_to_image, visualize_dataset  # noqa: F401
''',
    "a2_helpers.py": A2_HELPERS,
}


def write(folder):
    """Write the stand-ins into `folder` (made if missing), readable by every uid."""
    package = os.path.join(folder, "eecs598")
    os.makedirs(package, mode=0o755, exist_ok=True)
    os.chmod(folder, 0o755)
    files = {"linear_classifier.py": LINEAR_CLASSIFIER,
             "a2_helpers.py": A2_HELPERS.replace("from .utils import reset_seed\n", SEEDING),
             **{os.path.join("eecs598", name): text for name, text in EECS598.items()}}
    for name, text in files.items():
        path = os.path.join(folder, name)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, 0o644)
