"""grader/worker.py: the long-lived worker that forks one sandboxed child per test group."""
import os

import pytest

from conftest import ROOT

pytestmark = pytest.mark.slow


def test_the_worker_keeps_no_descriptor_from_one_child_to_the_next():
    from grader import batch, submission
    sub = submission.load(os.path.join(ROOT, "tests", "submissions", "student_solution.py"))
    with batch.Grader("any", batch.Limits(timeout=30, memory_mb=1024), 1, True) as grader:
        grader.grade(sub)
        pid = grader._slots[0].worker.process.pid
        before = sorted(os.listdir(f"/proc/{pid}/fd"))
        for _ in range(3):
            grader.grade(sub)
        assert sorted(os.listdir(f"/proc/{pid}/fd")) == before
