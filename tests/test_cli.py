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
    assert f"no sandbox on {sys.platform}" in out
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
