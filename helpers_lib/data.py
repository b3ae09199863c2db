"""Data: the toy problem and its committed reference, the digits and CIFAR-10 data sets.

Shapes: N examples, D input features, H hidden units, C classes. Every random draw comes from a
private generator seeded by the caller, so the same seed gives the same numbers everywhere.
"""
import json
import os
import pickle

import torch

from helpers_lib import oracle

CIFAR10_TRAIN_FILES = [f"data_batch_{i}" for i in range(1, 6)]
CIFAR10_TEST_FILE = "test_batch"
CIFAR10_CLASSES = ["plane", "car", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
CIFAR10_IMAGE_SHAPE = (3, 32, 32)
DIGITS_IMAGE_SHAPE = (8, 8)
# helpers_lib/ sits beside tests/, in the kit, the student release or a notebook's work folder.
TOY_REFERENCE_PATH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                  "tests", "fixtures", "toy_reference.json")


def get_toy_data(num_inputs=5, input_size=4, hidden_size=10, num_classes=3, std=1e-4,
                 dtype=torch.float64, device="cpu", seed=0):
    """The classic toy problem: a tiny network and a handful of inputs.

    Everything is drawn on the CPU in float64 from a private generator seeded with `seed`, then
    converted, so the same seed gives the same numbers on every machine and device.

    Returns:
        X: (N, D) inputs of standard deviation 10; y: (N,) int64 labels in [0, C);
        params: dict with W1 (D, H), b1 (H,), W2 (H, C), b2 (C,); weights of standard deviation
        `std`, biases of standard deviation 0.1 (so that a bias bug changes the scores).
    """
    g = torch.Generator().manual_seed(seed)
    N, D, H, C = num_inputs, input_size, hidden_size, num_classes

    def randn(*shape):
        return torch.randn(*shape, generator=g, dtype=torch.float64)

    params = {"W1": std * randn(D, H), "b1": 0.1 * randn(H),
              "W2": std * randn(H, C), "b2": 0.1 * randn(C)}
    X = 10.0 * randn(N, D)
    y = torch.randint(C, (N,), generator=g)
    params = {k: v.to(dtype=dtype, device=device) for k, v in params.items()}
    return X.to(dtype=dtype, device=device), y.to(device), params


def load_toy_reference(path=TOY_REFERENCE_PATH):
    """The toy cases stored in tests/fixtures/ with their expected outputs, in float64.

    Returns:
        {case name: dict with X (N, D), y (N,), params, reg, scores (N, C), hidden (N, H),
        loss and loss_no_reg (0-dim), grads (dict like params)}; "small_weights" is the
        classic toy problem (weights of std 1e-4), "large_weights" tells reg*sum(W**2) from
        0.5*reg*sum(W**2).
    """
    try:
        with open(path) as f:
            cases = json.load(f)["cases"]
    except (OSError, ValueError, KeyError) as e:
        raise ValueError(f"cannot read the toy reference '{path}' ({e}); it comes with the "
                         "assignment: copy tests/fixtures/toy_reference.json again from the "
                         "assignment's original files") from e

    def tensors(value):
        if isinstance(value, dict):
            return {k: tensors(v) for k, v in value.items()}
        return torch.tensor(value, dtype=torch.float64) if isinstance(value, (list, float)) else value

    reference = {}
    for name, case in cases.items():
        case = tensors(case)
        case["y"] = case["y"].to(torch.int64)
        reference[name] = case
    return reference



def huge_scores_case(magnitude, N=16, D=8, H=12, C=5, reg=0.0, seed=0):
    """A float64 problem whose scores reach `magnitude` (W2 scaled up), with its correct loss
    and gradients from the kit's oracle (helpers_lib/oracle.py).

    Returns:
        dict with X (N, D), y (N,), params, reg, magnitude (the largest |score|), loss (0-dim)
        and grads (dict like params).
    """
    g = torch.Generator().manual_seed(seed)

    def randn(*shape, scale=1.0):
        return scale * torch.randn(*shape, generator=g, dtype=torch.float64)

    params = {"W1": randn(D, H, scale=D ** -0.5), "b1": randn(H, scale=0.1),
              "W2": randn(H, C, scale=H ** -0.5), "b2": randn(C, scale=0.1)}
    X = randn(N, D)
    y = torch.randint(C, (N,), generator=g)
    scale = magnitude / oracle.forward(params, X)[0].abs().max()
    params["W2"] *= scale
    params["b2"] *= scale
    loss, grads = oracle.loss_and_grads(params, X, y, reg)
    largest = oracle.forward(params, X)[0].abs()
    return {"X": X, "y": y, "params": params, "reg": reg, "magnitude": largest.max().item(),
            "loss": loss, "grads": grads}


def _split(X, y, num_train, num_val, num_test, seed):
    """Shuffle with a private generator and cut into train, validation and test parts."""
    if num_train + num_val + num_test > X.shape[0]:
        raise ValueError(f"asked for {num_train} + {num_val} + {num_test} examples but the data set "
                         f"has {X.shape[0]}; ask for fewer")
    order = torch.randperm(X.shape[0], generator=torch.Generator().manual_seed(seed))
    cuts = [0, num_train, num_train + num_val, num_train + num_val + num_test]
    parts = [order[a:b] for a, b in zip(cuts, cuts[1:])]
    return [(X[p], y[p]) for p in parts]


def _finish(splits, subtract_mean, dtype, device):
    """Subtract the training mean (per feature) and build the data dict on `device`."""
    (X_train, y_train), (X_val, y_val), (X_test, y_test) = splits
    mean = X_train.mean(dim=0) if subtract_mean else torch.zeros(X_train.shape[1])
    data = {}
    for name, X, y in [("train", X_train, y_train), ("val", X_val, y_val), ("test", X_test, y_test)]:
        data[f"X_{name}"] = (X - mean).to(dtype=dtype, device=device)
        data[f"y_{name}"] = y.to(dtype=torch.int64, device=device)
    return data


def load_digits_data(num_train=1200, num_val=300, num_test=297, seed=0, subtract_mean=True,
                     dtype=torch.float32, device="cpu"):
    """The handwritten digits that scikit-learn ships (1,797 8x8 images, 10 classes; offline).

    Pixels are scaled from [0, 16] to [0, 1] and the training mean is subtracted; the split is
    drawn with a private generator seeded with `seed`.

    Returns:
        dict with X_train (num_train, 64), y_train (num_train,), X_val, y_val, X_test, y_test;
        X in `dtype` on `device`, y int64.
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    X = torch.as_tensor(digits.data, dtype=torch.float64) / 16.0
    y = torch.as_tensor(digits.target, dtype=torch.int64)
    return _finish(_split(X, y, num_train, num_val, num_test, seed), subtract_mean, dtype, device)


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles plain containers and numpy arrays only, never arbitrary code."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
               ("numpy._core.multiarray", "scalar"), ("_codecs", "encode")}

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}: a CIFAR-10 batch "
                                         "holds only a dict of arrays, labels and names")
        return super().find_class(module, name)


def _read_cifar_batch(path):
    """One CIFAR-10 python batch: (10000, 3072) uint8 rows (R, G, B planes) and int labels."""
    import numpy as np

    try:
        with open(path, "rb") as f:
            batch = _ArrayUnpickler(f, encoding="bytes").load()
        data = np.asarray(batch[b"data"], dtype=np.uint8)
        labels = np.asarray(batch[b"labels"], dtype=np.int64)
    except (OSError, EOFError, pickle.UnpicklingError, KeyError, TypeError, ValueError,
            IndexError, AttributeError) as e:
        raise ValueError(f"CIFAR-10 file '{path}' is not a valid python-version batch "
                         f"({type(e).__name__}: {e}); expected a pickled dict with b'data' "
                         "(uint8, 3072 columns) and b'labels'; download the python version "
                         "again from https://www.cs.toronto.edu/~kriz/cifar.html") from e
    n = CIFAR10_IMAGE_SHAPE[0] * CIFAR10_IMAGE_SHAPE[1] * CIFAR10_IMAGE_SHAPE[2]
    if data.ndim != 2 or data.shape[1] != n or labels.shape != (data.shape[0],):
        raise ValueError(f"CIFAR-10 file '{path}' holds data of shape {data.shape} and "
                         f"{labels.shape[0]} labels; expected (M, {n}) and M labels")
    if labels.size and (labels.min() < 0 or labels.max() >= len(CIFAR10_CLASSES)):
        raise ValueError(f"CIFAR-10 file '{path}' has labels outside 0..9")
    return torch.from_numpy(data.copy()), torch.from_numpy(labels.copy())


def find_cifar10_folder(path):
    """The folder holding the CIFAR-10 batches: `path` itself or its `cifar-10-batches-py`."""
    path = os.fspath(path)
    for folder in (path, os.path.join(path, "cifar-10-batches-py")):
        if os.path.isfile(os.path.join(folder, CIFAR10_TEST_FILE)):
            return folder
    raise FileNotFoundError(
        f"no CIFAR-10 data in '{path}': expected the python version's files "
        f"{', '.join(CIFAR10_TRAIN_FILES)} and {CIFAR10_TEST_FILE} in that folder or in its "
        "'cifar-10-batches-py' subfolder (download cifar-10-python.tar.gz from "
        "https://www.cs.toronto.edu/~kriz/cifar.html and unpack it there)")


def load_cifar10(path, num_train=49000, num_val=1000, num_test=1000, seed=0, subtract_mean=True,
                 dtype=torch.float32, device="cpu"):
    """CIFAR-10 from a local folder of the standard python-pickle batches.

    Pixels are scaled to [0, 1] and the training mean is subtracted. The validation set comes
    from the training batches (after shuffling with `seed`); the test set is the first
    `num_test` images of `test_batch`.

    Returns:
        dict with X_train (num_train, 3072), y_train, X_val, y_val, X_test, y_test; a row holds
        the R, G and B planes of a 32x32 image (reshape to CIFAR10_IMAGE_SHAPE).
    """
    folder = find_cifar10_folder(path)
    missing = [f for f in CIFAR10_TRAIN_FILES if not os.path.isfile(os.path.join(folder, f))]
    if missing:
        raise FileNotFoundError(f"CIFAR-10 folder '{folder}' lacks {', '.join(missing)}; expected "
                                f"all of {', '.join(CIFAR10_TRAIN_FILES)} and {CIFAR10_TEST_FILE}")
    batches = [_read_cifar_batch(os.path.join(folder, f)) for f in CIFAR10_TRAIN_FILES]
    X = torch.cat([b[0] for b in batches]).to(torch.float32) / 255.0
    y = torch.cat([b[1] for b in batches])
    X_test, y_test = _read_cifar_batch(os.path.join(folder, CIFAR10_TEST_FILE))
    if num_test > X_test.shape[0]:
        raise ValueError(f"asked for {num_test} test images but '{folder}/{CIFAR10_TEST_FILE}' "
                         f"has {X_test.shape[0]}")
    (train, val, _) = _split(X, y, num_train, num_val, 0, seed)
    test = (X_test[:num_test].to(torch.float32) / 255.0, y_test[:num_test])
    return _finish([train, val, test], subtract_mean, dtype, device)
