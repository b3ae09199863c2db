"""grader/rubric.py and the groups' judges: hidden inputs per submission, and verdicts that
charge each bug once, to its own part. The judges are exercised in this process through the
self-check path (grader.selfcheck), with the same inputs and judges as the sandboxed grader."""
import os
import re

import pytest
import torch

import grading_corpus
from conftest import ROOT
from grader import calls, groups, rubric, selfcheck
from grader.groups import backward

SEED = "test-secret"
HONEST = ["student_solution.py", "honest_modular.py", "honest_numpy.py"]


def build(seed=SEED):
    return {group.name: group for group in groups.build(seed)}


def grade(tmp_path, source, name="two_layer_net.py"):
    """{test: (passed, feedback)} for `source` graded in this process."""
    folder = tmp_path / f"sub{len(list(tmp_path.iterdir()))}"
    folder.mkdir()
    (folder / name).write_text(source)
    result = selfcheck.grade_in_process(str(folder / name), seed=SEED, public=False)
    return {t.name: (t.status == "passed", t.output) for t in result.tests}


def failed(verdicts):
    return sorted(name for name, (passed, _) in verdicts.items() if not passed)


def test_public_and_secret_seeds_draw_different_inputs():
    public = build(rubric.PUBLIC_SEED)["forward"].arrays["case0/X"]
    secret = build("another seed")["forward"].arrays["case0/X"]
    again = build(rubric.PUBLIC_SEED)["forward"].arrays["case0/X"]
    assert torch.equal(public, again) and not torch.equal(public, secret)


def test_each_submission_gets_its_own_inputs_from_the_secret_and_its_content():
    one = build(rubric.submission_seed(SEED, "content-a"))["backward"].arrays["case2/X"]
    other = build(rubric.submission_seed(SEED, "content-b"))["backward"].arrays["case2/X"]
    again = build(rubric.submission_seed(SEED, "content-a"))["backward"].arrays["case2/X"]
    assert torch.equal(one, again) and not torch.equal(one, other)


def test_inputs_come_from_a_generator_seeded_with_more_than_128_bits():
    draw = rubric.Draw(SEED, "forward")
    entropy = draw.rng.bit_generator.seed_seq.entropy
    assert entropy.bit_length() > 128  # torch.Generator keeps 32 bits of its seed


def test_shapes_include_a_single_example_and_two_classes():
    forward = build("any")["forward"]
    shapes = [(forward.arrays[f"case{i}/X"].shape[0], forward.arrays[f"case{i}/W2"].shape[1])
              for i in range(forward.meta["cases"])]
    assert shapes[0][0] == 1 and shapes[1][1] == 2


def scores_of(group, case):
    params = {k: group.arrays[f"case{case}/{k}"] for k in rubric.PARAM_NAMES}
    return rubric.oracle_forward(params, group.arrays[f"case{case}/X"])[0]


def test_stability_inputs_have_huge_scores():
    group = build("any")["loss_stability"]
    magnitudes = [scores_of(group, case).abs().max() for case, _ in group.meta["calls"]]
    assert all(1e3 <= m <= 1e5 for m in magnitudes[:-1])
    assert magnitudes[-1] < 1e2, "the last call is the control at ordinary scores"


def test_loss_cases_reach_ordinary_training_magnitudes():
    group = build()["backward"]
    magnitudes = [scores_of(group, case).abs().max().item() for case, _ in group.meta["calls"]]
    assert any(30 <= m <= 100 for m in magnitudes), magnitudes


def test_kink_cases_put_pre_activations_a_hair_from_zero():
    group = build()["backward"]
    nearest = []
    for case, _ in group.meta["calls"]:
        params = {k: group.arrays[f"case{case}/{k}"] for k in rubric.PARAM_NAMES}
        z = group.arrays[f"case{case}/X"] @ params["W1"] + params["b1"]
        nearest.append(z.abs().min().item())
    assert min(nearest) <= 2 * backward.KINK and min(nearest) > 0


@pytest.mark.parametrize("name", HONEST)
def test_honest_solutions_in_several_styles_score_full_marks(tmp_path, name):
    source = open(os.path.join(ROOT, "tests", "submissions", name)).read()
    assert failed(grade(tmp_path, source)) == []


def test_rebound_updates_pass_train_update(tmp_path):
    source = grading_corpus.edit("params[k] -= learning_rate * grads[k]",
                                 "params[k] = params[k] - learning_rate * grads[k]")
    assert failed(grade(tmp_path, source)) == []


@pytest.mark.parametrize("old, new, said", [
    ("        for k in params:\n", "        for k in ('W1', 'W2'):\n",
     r"params\['b1'\] did not change"),
    ("params[k] -= learning_rate * grads[k]", "params[k] -= grads[k]",
     r"without the learning rate"),
    ("params[k] -= learning_rate * grads[k]", "params[k] += learning_rate * grads[k]",
     r"moved up the gradient; subtract"),
], ids=["bias_not_updated", "no_learning_rate", "wrong_sign"])
def test_an_update_bug_costs_train_update_alone(tmp_path, old, new, said):
    verdicts = grade(tmp_path, grading_corpus.edit(old, new))
    assert failed(verdicts) == ["train_update"]
    assert re.search(said, verdicts["train_update"][1])


def test_a_missing_relu_mask_costs_the_gradient_tests_only(tmp_path):
    verdicts = grade(tmp_path, grading_corpus.edit("    dh1[h1 <= 0] = 0\n", ""))
    assert failed(verdicts) == ["grad_W1", "grad_b1"]


def test_a_correct_loss_without_gradients_keeps_loss_and_loss_stability(tmp_path):
    source = grading_corpus.edit("    return loss, grads\n", "    return loss, {}\n")
    verdicts = grade(tmp_path, source)
    assert failed(verdicts) == ["grad_W1", "grad_W2", "grad_b1", "grad_b2"]
    assert "returned no grads['W1']" in verdicts["grad_W1"][1]


def test_log_of_probabilities_plus_epsilon_fails_the_loss_test(tmp_path):
    source = grading_corpus.edit(
        "    log_probs = shifted - torch.log(exp_scores.sum(dim=1, keepdim=True))\n",
        "    log_probs = torch.log(probs + 1e-12)\n")
    verdicts = grade(tmp_path, source)
    assert "loss" in failed(verdicts) and "grad_W1" not in failed(verdicts)
    assert "ordinary training magnitude" in verdicts["loss"][1]


def test_softmax_over_the_wrong_axis_is_not_told_about_overflow(tmp_path):
    source = grading_corpus.edit(
        "    probs = exp_scores / exp_scores.sum(dim=1, keepdim=True)\n"
        "    log_probs = shifted - torch.log(exp_scores.sum(dim=1, keepdim=True))\n",
        "    probs = exp_scores / exp_scores.sum(dim=0, keepdim=True)\n"
        "    log_probs = shifted - torch.log(exp_scores.sum(dim=0, keepdim=True))\n")
    verdicts = grade(tmp_path, source)
    assert "loss_stability" in failed(verdicts) and "loss" in failed(verdicts)
    assert "overflow" not in verdicts["loss_stability"][1]
    assert "wrong at ordinary scores as well" in verdicts["loss_stability"][1]


def test_an_unshifted_softmax_is_told_about_overflow(tmp_path):
    source = grading_corpus.edit("shifted = scores - scores.max(dim=1, keepdim=True).values",
                                 "shifted = scores")
    verdicts = grade(tmp_path, source)
    assert failed(verdicts) == ["loss_stability"]
    assert "right at ordinary scores" in verdicts["loss_stability"][1]


def batched_loss(params, X, y, reg):
    """The loss for a batch of parameter sets (each tensor with a leading batch dimension)."""
    hidden = (X @ params["W1"] + params["b1"][:, None, :]).clamp(min=0)
    scores = hidden @ params["W2"] + params["b2"][:, None, :]
    log_probs = scores - torch.logsumexp(scores, dim=2, keepdim=True)
    data = -log_probs[:, torch.arange(len(y)), y].mean(dim=1)
    return data + reg * ((params["W1"] ** 2).sum((1, 2)) + (params["W2"] ** 2).sum((1, 2)))


def central_differences(params, X, y, reg, h):
    """Every parameter's gradient by central differences, all entries of one at once."""
    grads = {}
    for k, value in params.items():
        steps = h * torch.eye(value.numel(), dtype=value.dtype).view(-1, *value.shape)
        moved = {j: v.expand(len(steps), *v.shape) for j, v in params.items()}
        plus = batched_loss({**moved, k: value + steps}, X, y, reg)
        minus = batched_loss({**moved, k: value - steps}, X, y, reg)
        grads[k] = ((plus - minus) / (2 * h)).view(value.shape)
    return grads


def judged_backward(gradients_of, seed=SEED):
    """The backward group's verdicts for gradients computed by gradients_of(params, X, y, reg)."""
    group = build(seed)["backward"]
    out = {}
    for j, (case, reg) in enumerate(group.meta["calls"]):
        params = {k: group.arrays[f"case{case}/{k}"] for k in rubric.PARAM_NAMES}
        X, y = group.arrays[f"case{case}/X"], group.arrays[f"case{case}/y"]
        loss, _ = rubric.oracle_loss_and_grads(params, X, y, reg)
        out[f"call{j}/loss"] = loss
        for k, grad in gradients_of(params, X, y, reg).items():
            out[f"call{j}/grad/{k}"] = grad
    return group.judge({"errors": {}}, out)


@pytest.mark.parametrize("h", [1e-2, 1e-4, 1e-6, 1e-8])
def test_gradients_by_finite_differences_score_zero_on_the_gradient_tests(h):
    verdicts = judged_backward(lambda *case: central_differences(*case, h=h))
    assert verdicts["loss"].passed
    for name in rubric.GRADIENT_TESTS:
        assert not verdicts[name].passed, (h, verdicts[name].message)
        # a step as coarse as 1e-2 is wrong everywhere: an ordinary failure says so
        assert verdicts[name].message.startswith(rubric.FINITE_DIFFERENCES) or h >= 1e-2


def test_finite_differences_are_named_whatever_the_secret():
    """Ordinary cases keep off the kinks, so a chance kink there never hides finite differences
    (with the secret of one run in about a hundred it did)."""
    for i in range(20):
        group = build(f"secret-{i}")["backward"]
        for case, kind in enumerate(backward.KINDS):
            X = group.arrays[f"case{case}/X"]
            z1 = X @ group.arrays[f"case{case}/W1"] + group.arrays[f"case{case}/b1"]
            assert (kind == backward.KINKED) == (z1.abs().min() < backward.KINK_MARGIN), (i, case)
        verdicts = judged_backward(lambda *case: central_differences(*case, h=1e-5),
                                   seed=f"secret-{i}")
        for name in rubric.GRADIENT_TESTS:
            assert verdicts[name].message.startswith(rubric.FINITE_DIFFERENCES), (i, verdicts[name])


def backprop_in_another_order(params, X, y, reg):
    """Exact gradients summed in another order than the oracle's (float64 rounding differs)."""
    z1 = torch.einsum("nd,dh->nh", X, params["W1"]) + params["b1"]
    hidden = z1.clamp(min=0)
    scores = torch.einsum("nh,hc->nc", hidden, params["W2"]) + params["b2"]
    dscores = torch.softmax(scores, dim=1)
    dscores[torch.arange(len(y)), y] -= 1
    dscores = dscores / len(y)
    dz1 = (dscores @ params["W2"].T) * (z1 > 0)
    return {"W1": sum(X[n, :, None] * dz1[n] for n in range(len(y))) + 2 * reg * params["W1"],
            "b1": dz1.flip(0).sum(0), "W2": hidden.T @ dscores + 2 * reg * params["W2"],
            "b2": sum(dscores[n] for n in reversed(range(len(y))))}


def test_exact_gradients_in_any_summation_order_are_not_taken_for_finite_differences():
    verdicts = judged_backward(backprop_in_another_order)
    assert all(verdicts[name].passed for name in rubric.GRADIENT_TESTS), verdicts


def test_finite_differences_are_flagged():
    verdicts = {name: rubric.Verdict(False, rubric.FINITE_DIFFERENCES + ": ...")
                for name in rubric.GRADIENT_TESTS}
    flags = []
    rubric.apply_audit(verdicts, [], flags)
    assert flags == ["finite differences in the backward pass (seen in its values)"]


def test_exception_messages_show_no_hidden_value_at_full_precision():
    message = calls.trim_values("expected 0.123456789012 but got -1.5e-07 and 3.14159265e+02 at 2")
    assert message == "expected 0.123 but got -1.5e-07 and 314 at 2"


def test_a_missing_module_is_named_with_what_may_be_imported():
    try:
        import no_such_module_here  # noqa: F401
    except ModuleNotFoundError as error:
        text = calls.describe_exception(error, "/nowhere")
    assert "no module 'no_such_module_here'" in text and "eecs598" in text
    assert "standard library only" not in text


def grader_imports():
    """{module: grader modules it imports anywhere in its source}, read with ast."""
    import ast

    graph = {}
    folder = os.path.join(ROOT, "grader")
    for root, _, names in os.walk(folder):
        for name in names:
            if not name.endswith(".py"):
                continue
            path = os.path.join(root, name)
            module = os.path.relpath(path[:-3], ROOT).replace(os.sep, ".").removesuffix(".__init__")
            targets = set()
            for node in ast.walk(ast.parse(open(path).read())):
                if isinstance(node, ast.Import):
                    targets.update(alias.name for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.module:
                    targets.add(node.module)
                    targets.update(f"{node.module}.{alias.name}" for alias in node.names)
            graph[module] = targets
    return {m: {t for t in targets if t in graph and t != m} for m, targets in graph.items()}


def test_the_test_group_unit_imports_in_one_direction():
    graph = grader_imports()
    unit = {"grader.child", "grader.calls", "grader.rubric", "grader.audit", "grader.audit_rules",
            "grader.standins", "grader.groups"} | {m for m in graph if m.startswith("grader.groups.")}
    for start in unit:
        seen, frontier = set(), [start]
        while frontier:
            for target in graph[frontier.pop()] - {"grader"}:
                assert target != start, f"{start} imports itself back through {target}"
                if target not in seen:
                    seen.add(target)
                    frontier.append(target)


def test_the_grader_supplies_the_course_package_eecs598(tmp_path):
    import subprocess
    import sys

    from grader import standins

    standins.write(str(tmp_path))
    code = ("import torch, eecs598\nfrom eecs598.grad import rel_error, compute_numeric_gradient\n"
            "eecs598.reset_seed(3); a = torch.rand(2)\neecs598.reset_seed(3); b = torch.rand(2)\n"
            "x = torch.tensor([1.0, 2.0], dtype=torch.float64)\n"
            "g = compute_numeric_gradient(lambda v: (v ** 2).sum(), x)\n"
            "image = eecs598.tensor_to_image(torch.ones(3, 2, 2))\n"
            "print(torch.equal(a, b), rel_error(g, 2 * x) < 1e-6, image.shape, image.dtype)")
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": str(tmp_path)})
    assert done.stdout.split() == ["True", "True", "(2,", "2,", "3)", "uint8"], done.stderr


def test_predict_children_answer_from_the_graders_scores_for_any_rows_of_x():
    """The predict child holds no forward pass (the release ships grader/): its loss_func returns
    the scores the grader sent, for X, slices of it or rows in any order, and refuses anything
    else with a message."""
    from grader.groups import predict

    group = predict.build(rubric.PUBLIC_SEED)
    arrays = dict(group.arrays)
    for case in range(group.meta["cases"]):
        # Scores that no forward pass of these params gives: the child must answer these.
        arrays[f"case{case}/scores"] = -arrays[f"case{case}/scores"]

    class Module:
        @staticmethod
        def nn_predict(params, loss_func, X):
            order = torch.randperm(X.shape[0])
            shuffled = torch.cat([loss_func(params, X[chunk]) for chunk in order.split(64)])
            scores = torch.empty_like(shuffled)
            scores[order] = shuffled
            return scores.argmin(dim=1)

    runner = calls.Runner(Module, "/nonexistent")
    predict.run(runner, group.meta, arrays)
    assert runner.meta["errors"] == {}
    verdict = group.judge(runner.meta, runner.arrays)["predict"]
    assert verdict.passed, verdict

    class Stranger:
        @staticmethod
        def nn_predict(params, loss_func, X):
            return loss_func(params, X + 1).argmax(dim=1)

    runner = calls.Runner(Stranger, "/nonexistent")
    predict.run(runner, group.meta, arrays)
    assert "not rows of its X" in runner.meta["errors"]["case0"]
