"""Shared test fixtures: seeded random problems and the tolerances they are checked to.

The expected values come from helpers_lib/oracle.py, the kit's one oracle, shared with the
notebook and the grader (torch.autograd, float64 on the CPU; in the student release, the values it
gave for these tests' fixed inputs, recorded when the release was built).
pytest finds the kit's modules through `pythonpath` (pyproject.toml, or the release's pytest.ini).
"""
import os

import pytest
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# A correct float64 implementation agrees with autograd to ~1e-16; 1e-10 is the bar the kit
# promises, far above rounding and far below any real bug.
FLOAT64_TOL = 1e-10
# float32 rounding (~6e-8 per operation) accumulated over sums of up to a few hundred terms.
FLOAT32_TOL = 1e-4

SHAPES = [  # (N, D, H, C), including a single example and two classes
    (1, 4, 3, 2),
    (5, 4, 10, 3),
    (2, 7, 5, 2),
    (37, 13, 21, 10),
]


def make_problem(N, D, H, C, dtype=torch.float64, seed=0, weight_scale=1.0, device="cpu"):
    """Random params, X and y of the given shape from a private generator."""
    g = torch.Generator().manual_seed(seed)

    def randn(*shape, scale=1.0):
        return (scale * torch.randn(*shape, generator=g, dtype=torch.float64)).to(dtype=dtype,
                                                                                 device=device)

    params = {"W1": randn(D, H, scale=weight_scale / D ** 0.5), "b1": randn(H, scale=0.1),
              "W2": randn(H, C, scale=weight_scale / H ** 0.5), "b2": randn(C, scale=0.1)}
    X = randn(N, D)
    y = torch.randint(C, (N,), generator=g).to(device)
    return params, X, y


@pytest.fixture(autouse=True)
def _seed_torch():
    """Every test starts from the same global seed (sample_batch draws from it)."""
    torch.manual_seed(0)
