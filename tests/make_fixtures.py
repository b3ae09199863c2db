"""Write tests/fixtures/toy_reference.json: the toy problem's inputs and the reference outputs.

Run `python tests/make_fixtures.py` after changing the toy problem or the reference solution.
Each case is drawn on the CPU in float64 from a seeded generator (helpers.get_toy_data), so the
numbers hold on every machine. The script refuses to write values that `torch.autograd`
disagrees with. Two cases: the classic tiny weights (std 1e-4, where the L2 term is ~1e-8 and
cannot tell reg*sum(W**2) from 0.5*reg*sum(W**2)) and large weights (std 0.5), where it can.
"""
import json
import os
import sys

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)  # run as a script from anywhere: the kit's modules sit in ROOT

from helpers import (  # noqa: E402
    TOY_REFERENCE_PATH,
    autograd_loss_and_grads,
    get_toy_data,
    rel_error,
)
from two_layer_net import nn_forward_backward, nn_forward_pass  # noqa: E402

CASES = {
    "small_weights": {"std": 1e-4, "seed": 0, "reg": 0.05},
    "large_weights": {"std": 0.5, "seed": 1, "reg": 0.05},
}
# The reference and autograd sum in different orders; in float64 they agree to ~1e-16.
AUTOGRAD_AGREEMENT = 1e-12


def build_case(std, seed, reg):
    """Inputs and reference outputs of one toy case, as tensors."""
    X, y, params = get_toy_data(std=std, seed=seed)
    scores, hidden = nn_forward_pass(params, X)
    loss, grads = nn_forward_backward(params, X, y, reg=reg)
    loss_no_reg, _ = nn_forward_backward(params, X, y, reg=0.0)
    return {"std": std, "seed": seed, "reg": reg, "X": X, "y": y, "params": params,
            "scores": scores, "hidden": hidden, "loss": loss, "loss_no_reg": loss_no_reg,
            "grads": grads}


def check_against_autograd(name, case):
    """Raise when the reference's loss or gradients disagree with torch.autograd."""
    loss, grads = autograd_loss_and_grads(case["params"], case["X"], case["y"], case["reg"])
    errors = {"loss": rel_error(case["loss"], loss)}
    errors.update({k: rel_error(case["grads"][k], grads[k]) for k in grads})
    bad = {k: e for k, e in errors.items() if not e <= AUTOGRAD_AGREEMENT}
    if bad:
        raise AssertionError(f"case {name}: the reference disagrees with autograd: {bad}")


def to_json(value):
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    if isinstance(value, torch.Tensor):
        return value.tolist()
    return value


def build_fixtures():
    cases = {name: build_case(**spec) for name, spec in CASES.items()}
    for name, case in cases.items():
        check_against_autograd(name, case)
    return cases


def main():
    fixture = {"generated_by": "python tests/make_fixtures.py",
               "torch_version": torch.__version__.split("+")[0],
               "cases": to_json(build_fixtures())}
    with open(TOY_REFERENCE_PATH, "w") as f:
        json.dump(fixture, f, indent=1)
        f.write("\n")
    print(f"wrote {TOY_REFERENCE_PATH}")


if __name__ == "__main__":
    main()
