"""The walls where namespaces or cgroups are unavailable (Docker's default profile, a normal user):
the grader says why, falls back to the uid, rlimits and Landlock, and still grades right."""
import json
import os
import subprocess
import sys

import pytest

import grading_corpus
from conftest import ROOT

pytestmark = [pytest.mark.slow, pytest.mark.root,
              pytest.mark.skipif(os.geteuid() != 0, reason="the fallbacks of a root grader")]


def grade_in_subprocess(tmp_path, entries, env):
    folder = tmp_path / "subs"
    folder.mkdir()
    paths = [grading_corpus.write(e, str(folder)) for e in entries]
    out = tmp_path / "out"
    result = subprocess.run([sys.executable, "grade.py", *paths, "--out", str(out), "--timeout", "10",
                             "--memory", "400", "--jobs", "2"], cwd=ROOT, capture_output=True,
                            text=True, timeout=600, env={**os.environ, **env})
    assert result.returncode == 0, result.stderr
    results = {}
    for entry in entries:
        with open(out / entry.name / "results.json") as f:
            results[entry.name] = {t["name"]: t for t in json.load(f)["tests"]}
    return results, result.stderr


def pick(*names):
    return [e for e in grading_corpus.entries([], "/nonexistent") if e.name in names]


def test_without_namespaces_a_correct_submission_still_scores_100(tmp_path):
    results, stderr = grade_in_subprocess(tmp_path, pick("correct", "lingering_process"),
                                          {"GRADER_NO_NAMESPACES": "1"})
    assert all(t["status"] == "passed" for t in results["correct"].values())
    assert "Operation not permitted" in results["lingering_process"]["predict"]["output"], \
        "a test child may not fork, with or without namespaces"


def test_without_a_cgroup_memory_is_capped_by_address_space(tmp_path):
    results, _ = grade_in_subprocess(tmp_path, pick("memory_hog_python", "correct"),
                                     {"GRADER_NO_CGROUP": "1"})
    assert results["memory_hog_python"]["predict"]["status"] == "failed"
    assert "memory limit" in results["memory_hog_python"]["predict"]["output"]
    assert all(t["status"] == "passed" for t in results["correct"].values())


def test_only_a_child_that_died_before_its_walls_were_up_is_the_graders_fault():
    """A child that cannot even enter its scratch folder never ran submission code: that, and
    only that, is reported as the grader's fault (the corpus's fake_grader_fault shows that a
    submission printing the same words is not)."""
    from grader import batch, submission

    sub = submission.load(os.path.join(ROOT, "tests", "submissions", "student_solution.py"))
    with batch.Grader("any", batch.Limits(timeout=10, memory_mb=400), 1, True) as grader:
        slot = grader._slot()
        request = {"group": "predict", "module_path": "/nonexistent/two_layer_net.py",
                   "meta": {"cases": 0}, "scratch": "/nonexistent-scratch", "timeout": 10,
                   "memory_mb": 400, "uid": slot.uid, "gid": slot.uid, "read_paths": [],
                   "standin": grader.standin}
        outcome = grader._supervise(slot, request, {}, 10)
        assert "fault of the grader, not of the submission" in outcome.failure
        result, _ = grader.grade(sub)
        assert result.score == 100, "the slot still grades after a failed start"
