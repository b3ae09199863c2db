"""grader/calls.py: what the test groups use on the child's side."""
import torch
import torch.func
from torch.autograd.variable import Variable

from grader.calls import AutogradWatch


def test_the_autograd_watch_sees_backward_and_puts_torch_back_when_closed():
    """The in-process self-check grades in the same process again and again: a watch that
    stayed would wrap the last one, until the engine's calls ran out of stack."""
    engine, grad = Variable._execution_engine, torch.func.grad
    for _ in range(3):
        with AutogradWatch() as watch:
            x = torch.ones(2, requires_grad=True)
            (x * x).sum().backward()
        assert watch.used == ["loss.backward() / torch.autograd"]
        assert Variable._execution_engine is engine and torch.func.grad is grad


def test_the_in_process_self_check_puts_back_what_a_submission_switched_off(tmp_path):
    """A correct solution may switch autograd off at import (tests/submissions/honest_modular.py
    does); in the self-check's own process that must not outlive the grading."""
    import os

    from conftest import ROOT
    from grader import PUBLIC_SEED, selfcheck

    source = open(os.path.join(ROOT, "tests", "submissions", "honest_modular.py")).read()
    assert "torch.set_grad_enabled(False)" in source
    (tmp_path / "two_layer_net.py").write_text(source)
    result = selfcheck.grade_in_process(str(tmp_path / "two_layer_net.py"), seed=PUBLIC_SEED,
                                        public=True)
    assert result.score == 100, [t.output for t in result.tests if t.status != "passed"]
    assert torch.is_grad_enabled()
