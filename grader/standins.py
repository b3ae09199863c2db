"""The course's modules that code written for it imports, supplied by the grader as stand-ins.

Code written for the original course (EECS 498-007 A2) imports `sample_batch` from
`linear_classifier` and the course's helper package `eecs598` (most often `eecs598.reset_seed`
while tuning). The grader writes these sources into a stand-in folder placed after the
submission's own folder on `sys.path`, so a submission's own copy, when it has one, wins.
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

EECS598 = {
    "__init__.py": '''"""Stand-in for the course's helper package eecs598 (supplied by the grader)."""
from . import data, grad, utils
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
}


def write(folder):
    """Write the stand-ins into `folder` (made if missing), readable by every uid."""
    package = os.path.join(folder, "eecs598")
    os.makedirs(package, mode=0o755, exist_ok=True)
    os.chmod(folder, 0o755)
    files = {"linear_classifier.py": LINEAR_CLASSIFIER,
             **{os.path.join("eecs598", name): text for name, text in EECS598.items()}}
    for name, text in files.items():
        path = os.path.join(folder, name)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, 0o644)
