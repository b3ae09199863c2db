"""Ctrl-C while grade.py starts (the imports, a submission's rubric being built) ends as Ctrl-C
later does: one line on stderr, exit status 130, no traceback."""
import os
import subprocess
import sys

import pytest

from conftest import ROOT

SOLUTION = open(os.path.join(ROOT, "tests", "submissions", "student_solution.py")).read()
# grade.py run as __main__, with a real SIGINT delivered while the rubric is built.
SIGINT_DURING_RUBRIC = """
import os, runpy, signal, sys, time
import grader.batch as batch
build = batch.build
def interrupted_build(seed):
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(5)  # the signal arrives meanwhile, while the rubric is being built
    return build(seed)
batch.build = interrupted_build
sys.argv = ["grade.py", *sys.argv[1:]]
runpy.run_path("grade.py", run_name="__main__")
"""


@pytest.mark.slow
def test_ctrl_c_while_the_rubric_is_built_prints_one_line_and_exits_130(tmp_path):
    (tmp_path / "amy.py").write_text(SOLUTION)
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-c", SIGINT_DURING_RUBRIC, str(tmp_path / "amy.py"),
                           "--out", str(out)], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 130, done.stderr
    assert "Traceback" not in done.stderr and "KeyboardInterrupt" not in done.stderr, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    # the line Ctrl-C prints during grading (tests/test_batch.py), with nothing finished
    assert lines[0] == (f"grade.py: interrupted: 0 of 1 submissions finished and written to {out} "
                        "(grades.csv holds them); run the same command again to grade the rest")


def test_ctrl_c_before_grading_began_is_one_line_too(monkeypatch, capsys):
    import grade

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(grade, "cmd_merge", interrupt)
    assert grade.main(["merge", "somewhere"]) == 130
    err = capsys.readouterr().err
    assert err.strip().startswith("grade.py: interrupted:") and err.strip().count("\n") == 0
