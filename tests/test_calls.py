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
