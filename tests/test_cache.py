"""Rerunning a batch (grader/cache.py, grader/outdir.py): unchanged submissions are skipped,
changed ones regraded, --force regrades all, and a result cut short is graded again."""
import csv
import os

import pytest

import grade
from conftest import ROOT
from test_corpus import load_results

pytestmark = pytest.mark.slow


def test_a_rerun_skips_unchanged_submissions_and_regrades_changed_ones(tmp_path):
    folder = tmp_path / "subs"
    folder.mkdir()
    source = open(os.path.join(ROOT, "tests", "submissions", "student_solution.py")).read()
    for name in ("amy", "bob"):
        (folder / f"{name}.py").write_text(source)
    out = tmp_path / "out"
    subs = [str(folder / "amy.py"), str(folder / "bob.py")]
    assert grade.main([*subs, "--out", str(out)]) == 0
    stamps = {n: (out / n / "results.json").stat().st_mtime_ns for n in ("amy", "bob")}
    (folder / "bob.py").write_text(source.replace("torch.argmax(scores", "torch.argmin(scores"))
    assert grade.main([*subs, "--out", str(out)]) == 0
    assert (out / "amy" / "results.json").stat().st_mtime_ns == stamps["amy"], "amy was regraded"
    assert load_results(out, "bob")["score"] == 90, "bob's new code was not graded"
    assert grade.main([*subs, "--out", str(out), "--force"]) == 0
    assert (out / "amy" / "results.json").stat().st_mtime_ns != stamps["amy"], "--force skipped amy"
    with open(out / "grades.csv") as f:
        assert {r["name"]: r["total"] for r in csv.DictReader(f)} == {"amy": "100", "bob": "90"}
    assert (out / "scores.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_an_interrupted_batch_resumes(tmp_path):
    source = open(os.path.join(ROOT, "tests", "submissions", "student_solution.py")).read()
    (tmp_path / "cat.py").write_text(source)
    out = tmp_path / "out"
    assert grade.main([str(tmp_path / "cat.py"), "--out", str(out)]) == 0
    (out / "cat" / "results.json").write_text('{"score": 10')  # a write cut short
    assert grade.main([str(tmp_path / "cat.py"), "--out", str(out)]) == 0
    assert load_results(out, "cat")["score"] == 100


def test_a_rerun_with_other_limits_grades_again(tmp_path):
    """A result cut short by --timeout or --memory must not survive a rerun with larger limits."""
    source = open(os.path.join(ROOT, "tests", "submissions", "student_solution.py")).read()
    (tmp_path / "dan.py").write_text(source)
    out = tmp_path / "out"
    sub = str(tmp_path / "dan.py")
    assert grade.main([sub, "--out", str(out), "--timeout", "20"]) == 0
    stamp = (out / "dan" / "results.json").stat().st_mtime_ns
    assert grade.main([sub, "--out", str(out), "--timeout", "20"]) == 0
    assert (out / "dan" / "results.json").stat().st_mtime_ns == stamp, "same limits: cached"
    assert grade.main([sub, "--out", str(out), "--timeout", "40"]) == 0
    stamp2 = (out / "dan" / "results.json").stat().st_mtime_ns
    assert stamp2 != stamp, "a larger --timeout kept the old result"
    assert grade.main([sub, "--out", str(out), "--timeout", "40", "--memory", "1500"]) == 0
    assert (out / "dan" / "results.json").stat().st_mtime_ns != stamp2, "a larger --memory kept it"
    assert 'href="dan/report.html"' not in (out / "index.html").read_text(), "no report without --execute"
    assert ">dan<" in (out / "index.html").read_text()
