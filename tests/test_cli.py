"""grade.py as a command line: help for every command, misspelt commands, no sandbox off Linux."""
import os
import re
import shutil
import subprocess
import sys

import pytest

import grade
from conftest import ROOT
from grader.kitfiles import GRADER, NOTEBOOK_SUPPORT, kit_files


def test_help_lists_every_command(capsys):
    assert grade.main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("grade", "release", "submit", "gradescope", "merge"):
        assert f"\n  {command} " in out, command


@pytest.mark.parametrize("command", ["grade", "release", "submit", "gradescope", "merge"])
def test_each_command_has_its_own_help(capsys, command):
    assert grade.main([command, "--help"]) == 0
    assert f"usage: grade.py {command}" in capsys.readouterr().out.replace("[grade]", "grade")


def test_a_misspelt_command_is_named_with_a_suggestion(capsys):
    assert grade.main(["releas", "out"]) == 2
    err = capsys.readouterr().err
    assert "unknown command 'releas'; did you mean 'release'?" in err
    assert "--out" not in err


@pytest.mark.slow
def test_instructor_tools_say_so_in_a_student_copy(tmp_path, capsys):
    for rel in kit_files(NOTEBOOK_SUPPORT + GRADER):
        if rel not in ("grader/release.py", "grader/gradescope.py"):
            (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(os.path.join(ROOT, rel), tmp_path / rel)
    result = subprocess.run([sys.executable, "grade.py", "release", "x"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "instructor tool" in result.stderr and "not part of the student release" in result.stderr


def test_the_self_check_runs_without_the_sandbox_where_there_is_none(tmp_path, monkeypatch, capsys):
    """On Windows and macOS the self-check runs the student's own code in-process; simulated
    here through grade.py's platform check (faking sys.platform itself breaks sysconfig)."""
    shutil.copy(os.path.join(ROOT, "two_layer_net.py"), tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GRADER_SECRET_SEED", raising=False)
    monkeypatch.setattr(grade, "sandbox_available", lambda: False)
    assert grade.main([]) == 0
    out = capsys.readouterr().out
    assert "runs in this process, without the grader's sandbox" in out
    assert re.search(r"^total\s+100/100", out, re.M), out


@pytest.mark.slow
def test_grade_py_imports_nothing_linux_only_at_start():
    """`grade.py submit` and the self-check must start on Windows, which has no fcntl or resource."""
    code = ("import sys\nfor name in ('fcntl', 'resource', 'grader.sandbox', 'grader.batch'):\n"
            "    sys.modules[name] = None\nimport grade\nprint('ok')")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.stdout.strip() == "ok", result.stderr


@pytest.mark.slow
def test_self_check_prints_the_table(tmp_path, monkeypatch, capsys):
    (tmp_path / "two_layer_net.py").write_text(open(os.path.join(ROOT, "two_layer_net.py")).read())
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GRADER_SECRET_SEED", raising=False)
    assert grade.main([]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^forward\s+15/15\s+passed\s+max relative error", out, re.M)
    assert re.search(r"^total\s+100/100", out, re.M)
    assert "public self-check inputs" in out
    assert not list(tmp_path.glob("*.json")), "the self-check writes no files"


def test_self_check_without_a_module_says_where_it_looked(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert grade.main([]) == 2
    assert "no two_layer_net.py in" in capsys.readouterr().err


def test_usage_errors_exit_2(tmp_path, capsys):
    assert grade.main([str(tmp_path / "x.py")]) == 2  # no --out
    assert grade.main(["x.py", "--out", str(tmp_path), "--jobs", "0"]) == 2
    err = capsys.readouterr().err
    assert "the following arguments are required: --out" in err and "0 is not a positive" in err


def test_a_late_penalty_without_a_due_time_is_a_usage_error(tmp_path, capsys):
    sub = tmp_path / "amy.py"
    sub.write_text("x = 1\n")
    out = tmp_path / "out"
    assert grade.main([str(sub), "--out", str(out), "--late-penalty", "10"]) == 2
    assert grade.main([str(sub), "--out", str(out), "--due", "friday"]) == 2
    err = capsys.readouterr().err
    assert "--late-penalty needs --due" in err and "ISO 8601" in err
    assert not out.exists()


def test_grade_help_names_the_gradebook_options(capsys):
    assert grade.main(["grade", "--help"]) == 0
    out = capsys.readouterr().out
    for option in ("--format", "--due", "--late-penalty", "--late-cap", "--extensions", "--add",
                   "--export", "--single", "{plain,canvas,gradescope}"):
        assert option in out, option
    assert grade.main(["gradescope", "--help"]) == 0
    assert "{visible,after_due_date,hidden}" in capsys.readouterr().out


def test_the_default_notebook_timeout_is_a_few_times_what_the_kits_notebook_needs():
    """The kit's notebook needs ~50 s of CPU (docs/gradebook.md); an endless loop must not hold
    a slot for 10 minutes."""
    args = grade.grade_parser().parse_args(["x.py", "--out", "d"])
    assert 3 * 50 <= args.notebook_timeout <= 6 * 50


def test_help_lists_the_students_commands_first_and_marks_the_instructors(capsys):
    assert grade.main(["--help"]) == 0
    out = capsys.readouterr().out
    students = out[out.index("for students:"):out.index("commands:")]
    assert "python grade.py " in students and "python grade.py submit" in students
    listed = dict(re.findall(r"^  (\w+)\s+(.*)$", out[out.index("commands:"):], re.M))
    assert set(listed) == set(grade.COMMANDS)
    for command, text in listed.items():
        assert text.startswith("for students:" if command == "submit" else "for instructors:"), text


def test_colab_is_recognised_by_its_package_and_gets_no_sandbox(tmp_path, monkeypatch):
    """Colab is Linux without namespaces: a google.colab package on the path means Colab."""
    assert grade.sandbox_available() is sys.platform.startswith("linux")
    package = tmp_path / "google" / "colab"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in [n for n in sys.modules if n == "google" or n.startswith("google.")]:
        monkeypatch.delitem(sys.modules, name)
    assert grade.sandbox_available() is False


def test_self_check_says_each_error_once_then_the_table(tmp_path, monkeypatch, capsys):
    """The stubs raise in 7 of the rubric's rows: one line per cause (the innermost place it
    was raised), and the rows refer to it; a syntax error is said once for all 10 rows."""
    from grader.release import strip_solutions

    stub, _ = strip_solutions(open(os.path.join(ROOT, "two_layer_net.py")).read())
    (tmp_path / "two_layer_net.py").write_text(stub)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GRADER_SECRET_SEED", raising=False)
    monkeypatch.setattr(grade, "sandbox_available", lambda: False)
    assert grade.main([]) == 0
    out = capsys.readouterr().out
    assert out.count("NotImplementedError") == 3, out  # forward pass, update, prediction
    assert "Traceback" not in out and 'File "' not in out
    assert re.search(r"^\[1\] NotImplementedError: .*\n.*in nn_forward_pass\); fails forward, loss,",
                     out, re.M), out
    assert re.search(r"^grad_b2\s+0/10\s+failed\s+.*nn_forward_backward raised \[1\]$", out, re.M)
    assert len(out.splitlines()) < 35, out
    (tmp_path / "two_layer_net.py").write_text(stub.replace("def nn_predict(params, loss_func, X):",
                                                            "def nn_predict(params, loss_func, X)"))
    assert grade.main([]) == 0
    out = capsys.readouterr().out
    assert out.count("SyntaxError") == 1 and "1 error in your code" in out, out
    assert "fails forward, loss, loss_stability, grad_W1, grad_b1, grad_W2, grad_b2, train_update, " \
           "train_schedule, predict" in " ".join(out.split())
    assert "points. Graded with" in out


def test_self_check_feedback_reads_as_english(tmp_path, monkeypatch, capsys):
    """nn_predict returning the scores: 'y_pred has shape', not 'the labels has shape'."""
    source = open(os.path.join(ROOT, "two_layer_net.py")).read()
    source = source.replace("    y_pred = loss_func(params, X).argmax(dim=1)\n",
                            "    y_pred = loss_func(params, X)\n")
    (tmp_path / "two_layer_net.py").write_text(source)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GRADER_SECRET_SEED", raising=False)
    monkeypatch.setattr(grade, "sandbox_available", lambda: False)
    assert grade.main([]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "y_pred has shape (1, 2), expected (1,)" in out, out
    assert " has shape" in out and "the labels has" not in out
    assert "90/100 points. Graded with" in out
