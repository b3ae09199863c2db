"""grader/worker.py and grader/zygote.py: the supervisor of a slot, and the clean process that
forks its children."""
import os

import pytest

from conftest import ROOT

pytestmark = pytest.mark.slow


def children_of(pid):
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(p) for p in f.read().split()]


def test_neither_worker_nor_zygote_keeps_a_descriptor_from_one_child_to_the_next():
    from grader import batch, submission
    sub = submission.load(os.path.join(ROOT, "tests", "submissions", "student_solution.py"))
    with batch.Grader("any", batch.Limits(timeout=30, memory_mb=1024), 1, True) as grader:
        grader.grade(sub)
        worker = grader._slots[0].worker.process.pid
        pids = [worker, *children_of(worker)]  # the zygote (and, without namespaces, the reaper)
        before = {pid: sorted(os.listdir(f"/proc/{pid}/fd")) for pid in pids}
        for _ in range(3):
            grader.grade(sub)
        assert {pid: sorted(os.listdir(f"/proc/{pid}/fd")) for pid in pids} == before


def test_children_are_forked_by_the_zygote_not_by_the_worker():
    """The worker holds every request and reply of its slot; a child forked from it would
    start with them in its memory. Between two children its only children are the zygote,
    which outlives every child, and the reaper (without namespaces)."""
    from grader import batch, submission
    sub = submission.load(os.path.join(ROOT, "tests", "submissions", "student_solution.py"))
    with batch.Grader("any", batch.Limits(timeout=30, memory_mb=1024), 1, True) as grader:
        grader.grade(sub)
        worker = grader._slots[0].worker.process.pid
        kids = children_of(worker)
        assert 1 <= len(kids) <= 2, kids
        commands = []
        for pid in kids:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                commands.append(f.read())
        assert all(b"grader.worker" in c for c in commands), "forks of the worker, not programs"
