"""grader/rubric.py: the hidden inputs drawn from the seed."""
import torch

from grader import rubric


def test_public_and_secret_seeds_draw_different_inputs():
    public = rubric.build(rubric.PUBLIC_SEED)[0].arrays["case0/X"]
    secret = rubric.build("another seed")[0].arrays["case0/X"]
    again = rubric.build(rubric.PUBLIC_SEED)[0].arrays["case0/X"]
    assert torch.equal(public, again) and not torch.equal(public, secret)


def test_shapes_include_a_single_example_and_two_classes():
    forward = rubric.build("any")[0]
    shapes = [(forward.arrays[f"case{i}/X"].shape[0], forward.arrays[f"case{i}/W2"].shape[1])
              for i in range(forward.meta["cases"])]
    assert shapes[0][0] == 1 and shapes[1][1] == 2


def test_stability_inputs_have_huge_scores():
    group = next(g for g in rubric.build("any") if g.name == "loss_stability")
    for case in range(len(group.meta["calls"])):
        params = {k: group.arrays[f"case{case}/{k}"] for k in rubric.PARAM_NAMES}
        scores, _ = rubric.oracle_forward(params, group.arrays[f"case{case}/X"])
        assert 1e3 <= scores.abs().max() <= 1e5
