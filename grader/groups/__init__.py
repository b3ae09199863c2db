"""The rubric's test groups: one child process each, one unit each.

A group's module holds all of it: `build(seed)` draws the inputs and computes the expected values
in the grader's process (a `rubric.Group` with its judge), and `run(runner, meta, arrays)` is
what the child calls in the sandbox. Adding a test: a spec here, its points in `rubric.RUBRIC`,
its row in README's rubric table, and entries in tests/grading_corpus.py.

Imports run one way: the group modules import `rubric` (the grader's side: table, inputs, oracle)
and `calls` (the child's side); `child` and the grader's process import this package, never the
other way round.
"""
from dataclasses import dataclass
from typing import Callable

from grader.groups import backward, forward, predict, train
from grader.rubric import RUBRIC


@dataclass(frozen=True)
class Spec:
    name: str
    build: Callable  # seed -> rubric.Group (grader side)
    run: Callable  # (calls.Runner, meta, arrays) -> None (child side)


GROUPS = [
    Spec("forward", forward.build, forward.run),
    Spec("backward", backward.build, backward.run),
    Spec("loss_stability", backward.build_stability, backward.run),
    Spec("train_update", train.build_update, train.run_update),
    Spec("train_schedule", train.build_schedule, train.run_schedule),
    Spec("predict", predict.build, predict.run),
]
BY_NAME = {spec.name: spec for spec in GROUPS}


def build(seed):
    """Every test group of the rubric, with inputs and expected values drawn from `seed`."""
    groups = [spec.build(seed) for spec in GROUPS]
    covered = [t for group in groups for t in group.tests]
    assert sorted(covered) == sorted(RUBRIC), f"groups cover {covered}, not the rubric"
    return groups
