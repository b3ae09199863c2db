"""Kit-only: `grade.py release` (the student release) and `grade.py submit` (the student's zip).

Not part of the release itself: a student's finished module has no solution markers.
"""
import os
import re
import secrets
import shutil
import subprocess
import sys
import zipfile

import nbformat
import pytest

from conftest import ROOT
from grader import SECRET_ENV, release, submission
from grader.release import ReleaseError, find_regions, strip_solutions

REFERENCE = os.path.join(ROOT, "two_layer_net.py")
MARKER = re.compile(r"^\s*#\s*(BEGIN|END) SOLUTION")
RELEASED = {
    "README.md", "grade.py", "helpers.py", "pytest.ini", "requirements.txt",
    "two_layer_net.py", "two_layer_net.ipynb", "tests/conftest.py", "tests/test_two_layer_net.py",
    "tests/fixtures/toy_reference.json",
    *(f"grader/{name}" for name in os.listdir(os.path.join(ROOT, "grader")) if name.endswith(".py")),
}
# The release's own pytest run and self-check each start a fresh interpreter that imports torch.
SUBPROCESS_TIMEOUT = 300


def copy_kit(dest):
    """A copy of the instructor's kit (what git tracks, roughly) that a test may change."""
    def ignore(folder, names):
        skip = {".git", ".venv", "out", "__pycache__", ".pytest_cache", "grader_secret.txt"}
        return [n for n in names if n in skip or n.endswith(".pyc")]

    shutil.copytree(ROOT, dest, ignore=ignore)
    return str(dest)


def student_env():
    """The environment of a student's shell: no instructor secret, no stray bytecode."""
    env = {k: v for k, v in os.environ.items() if k != SECRET_ENV}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def run_in(folder, *args):
    return subprocess.run([sys.executable, *args], cwd=folder, env=student_env(),
                          capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT)


def release_files(folder):
    return {os.path.relpath(os.path.join(root, n), folder).replace(os.sep, "/")
            for root, _, names in os.walk(folder) for n in names}


def run_notebook_in_place(path):
    """Give every code cell an execution count, an output and timing metadata, as if run."""
    notebook = nbformat.read(path, as_version=4)
    for count, cell in enumerate((c for c in notebook.cells if c.cell_type == "code"), 1):
        cell.execution_count = count
        cell.outputs = [nbformat.v4.new_output("stream", text=f"output of cell {count}\n")]
        cell.metadata["execution"] = {"iopub.status.idle": "2024-01-01T00:00:00Z"}
    nbformat.write(notebook, path)


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    """A release built from a kit that holds a secret file, with $GRADER_SECRET_SEED set too."""
    base = tmp_path_factory.mktemp("release")
    kit = copy_kit(base / "kit")
    secrets_used = {"file": "file-secret-" + secrets.token_hex(8),
                    "env": "env-secret-" + secrets.token_hex(8)}
    with open(os.path.join(kit, "grader_secret.txt"), "w") as f:
        f.write(secrets_used["file"] + "\n")
    run_notebook_in_place(os.path.join(kit, "two_layer_net.ipynb"))
    out = base / "student"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(SECRET_ENV, secrets_used["env"])
        code = release.write_release(out=str(out), kit=kit)
    assert code == 0, "the release of the kit failed"
    return {"out": str(out), "base": base, "secrets": secrets_used}


def test_release_holds_the_student_files_and_nothing_else(released):
    assert release_files(released["out"]) == RELEASED
    assert not [n for n in os.listdir(released["base"]) if ".building-" in n]


def test_release_contains_no_solution_code(released):
    with open(REFERENCE) as f:
        reference = f.read()
    with open(os.path.join(released["out"], "two_layer_net.py")) as f:
        student = f.read()
    reference_lines = reference.splitlines()
    student_lines = {line.strip() for line in student.splitlines()}
    regions = find_regions(reference)
    assert len(regions) >= 7
    solution = [reference_lines[i].strip() for begin, end, _ in regions for i in range(begin, end - 1)]
    solution = [line for line in solution if line and not line.startswith("#")]
    assert solution, "the reference's regions hold no code; the test would prove nothing"
    assert [line for line in solution if line in student_lines] == []
    assert not [line for line in student.splitlines() if MARKER.match(line)]
    assert student.count("raise NotImplementedError(") == len(regions)
    for _, _, hint in regions:
        assert f'raise NotImplementedError("{hint}")' in student


def test_released_notebook_has_no_outputs(released):
    notebook = nbformat.read(os.path.join(released["out"], "two_layer_net.ipynb"), as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code, "no code cells: the test would prove nothing"
    assert all(cell.outputs == [] and cell.execution_count is None for cell in code)
    assert not [cell for cell in notebook.cells if "execution" in cell.metadata]


def test_release_holds_no_secret(released):
    assert not os.path.exists(os.path.join(released["out"], "grader_secret.txt"))
    for rel in release_files(released["out"]):
        with open(os.path.join(released["out"], rel), "rb") as f:
            data = f.read()
        for secret in released["secrets"].values():
            assert secret.encode() not in data, rel


def test_release_tests_fail_on_the_stubs_and_pass_with_the_reference(released, tmp_path):
    stubs = run_in(released["out"], "-m", "pytest", "-q", "-p", "no:cacheprovider")
    assert stubs.returncode == 1, stubs.stdout[-3000:]  # failures, not a collection error (2)
    assert re.search(r"\d+ failed", stubs.stdout) and "NotImplementedError" in stubs.stdout

    finished = tmp_path / "finished"
    shutil.copytree(released["out"], finished)
    shutil.copyfile(REFERENCE, finished / "two_layer_net.py")
    solved = run_in(finished, "-m", "pytest", "-q", "-p", "no:cacheprovider")
    assert solved.returncode == 0, solved.stdout[-3000:]
    assert re.search(r"\d+ passed", solved.stdout)


def test_release_self_check_prints_the_table_with_0_of_100(released):
    check = run_in(released["out"], "grade.py")
    assert check.returncode == 0, check.stderr[-2000:]
    assert re.search(r"^forward\s+0/15\s+failed\s+.*NotImplementedError", check.stdout, re.M)
    assert re.search(r"^total\s+0/100$", check.stdout, re.M)
    assert "public self-check inputs" in check.stdout


def test_release_refuses_an_existing_folder_and_overwrites_nothing(tmp_path, capsys):
    out = tmp_path / "student"
    out.mkdir()
    (out / "notes.txt").write_text("the instructor's")
    assert release.write_release(out=str(out)) == 2
    assert "already exists" in capsys.readouterr().err
    assert os.listdir(out) == ["notes.txt"] and (out / "notes.txt").read_text() == "the instructor's"


@pytest.mark.parametrize("edit, says", [
    (lambda s: "".join(s.rsplit("    # END SOLUTION\n", 1)), r"line \d+: BEGIN SOLUTION is never closed"),
    (lambda s: s.replace("    # END SOLUTION\n", "", 1), r"line \d+: BEGIN SOLUTION inside the region"),
    (lambda s: s + "\n# END SOLUTION\n", r"line \d+: END SOLUTION without a BEGIN"),
    (lambda s: re.sub(r"# BEGIN SOLUTION.*|# END SOLUTION", "# note", s), "no # BEGIN SOLUTION regions"),
])
def test_a_malformed_kit_stops_the_release_and_writes_nothing(tmp_path, capsys, edit, says):
    kit = copy_kit(tmp_path / "kit")
    module = os.path.join(kit, "two_layer_net.py")
    with open(module) as f:
        source = f.read()
    with open(module, "w") as f:
        f.write(edit(source))
    assert release.write_release(out=str(tmp_path / "out" / "student"), kit=kit) == 1
    assert re.search(says, capsys.readouterr().err)
    assert not (tmp_path / "out").exists()


def test_stub_keeps_the_indentation_and_the_hint():
    source = ('def f(x):\n'
              '    y = 1\n'
              '    # BEGIN SOLUTION: return "twice" x\n'
              '    return 2 * x\n'
              '    # END SOLUTION\n'
              '\n'
              'class A:\n'
              '    def g(self):\n'
              '        if True:\n'
              '            # BEGIN SOLUTION\n'
              '            pass\n'
              '            # END SOLUTION\n')
    stub, regions = strip_solutions(source)
    assert regions == 2
    assert stub == ('def f(x):\n'
                    '    y = 1\n'
                    '    raise NotImplementedError("return \\"twice\\" x")\n'
                    '\n'
                    'class A:\n'
                    '    def g(self):\n'
                    '        if True:\n'
                    '            raise NotImplementedError("implement this part of g")\n')
    namespace = {}
    exec(compile(stub, "stub.py", "exec"), namespace)
    with pytest.raises(NotImplementedError, match='^return "twice" x$'):
        namespace["f"](1)


def test_markers_in_strings_are_text_not_markers():
    source = '"""Write between `# BEGIN SOLUTION` and\n# END SOLUTION lines."""\nx = 1\n'
    assert strip_solutions(source) == (source, 0)


@pytest.mark.parametrize("source, says", [
    ("def f():\n    # BEGIN SOLUTION\n    return 1\n", "line 2: BEGIN SOLUTION is never closed"),
    ("def f():\n    # BEGIN SOLUTION\n    # BEGIN SOLUTION\n    return 1\n    # END SOLUTION\n",
     "line 3: BEGIN SOLUTION inside the region opened at line 2"),
    ("x = 1\n# END SOLUTION\n", "line 2: END SOLUTION without a BEGIN"),
    ("def f():\n    return 1  # BEGIN SOLUTION\n", "line 2: the marker .* follows code"),
    ("# BEGIN SOLUTION\nif x:\n# END SOLUTION\n    y = 1\n", "line 2 is not valid Python"),
    ("s = '''\n", "line 1: cannot be read as Python"),
])
def test_malformed_markers_name_the_line(source, says):
    with pytest.raises(ReleaseError, match=says):
        strip_solutions(source)


def test_reference_markers_are_paired_and_not_nested():
    depth = 0
    regions = 0
    for number, line in enumerate(open(os.path.join(ROOT, "two_layer_net.py")), 1):
        if line.strip().startswith("# BEGIN SOLUTION"):
            assert depth == 0, f"nested BEGIN SOLUTION at line {number}"
            depth, regions = 1, regions + 1
        elif line.strip().startswith("# END SOLUTION"):
            assert depth == 1, f"END SOLUTION without BEGIN at line {number}"
            depth = 0
    assert depth == 0 and regions >= 7


def write_notebook(path, counts):
    """A small notebook: a markdown cell, then one code cell per count (None: never run)."""
    cells = [nbformat.v4.new_markdown_cell("# Answers")]
    for i, count in enumerate(counts):
        cell = nbformat.v4.new_code_cell(f"value_{i} = {i}\nprint(value_{i})")
        cell.execution_count = count
        if count is not None:
            cell.outputs = [nbformat.v4.new_output("stream", text=f"{i}\n")]
        cells.append(cell)
    cells.append(nbformat.v4.new_code_cell(""))  # an empty cell needs no run
    nbformat.write(nbformat.v4.new_notebook(cells=cells), str(path))


@pytest.fixture
def student(tmp_path):
    """A student's folder: the reference as their module (importing the course's
    linear_classifier, which the grader's stand-in supplies) and an executed notebook."""
    with open(REFERENCE) as f:
        source = f.read()
    (tmp_path / "two_layer_net.py").write_text("from linear_classifier import sample_batch  # noqa\n"
                                               + source)
    write_notebook(tmp_path / "two_layer_net.ipynb", [1, 2, 3])
    return tmp_path


def test_submit_zips_the_module_and_the_executed_notebook(student, capsys):
    (student / "linear_classifier.py").write_text("def sample_batch(X, y, num_train, batch_size):\n"
                                                  "    return X, y\n")
    (student / "scratch.txt").write_text("not submitted")
    assert release.write_submission(folder=str(student), out="submission.zip") == 0
    assert "submission.zip" in capsys.readouterr().out
    with zipfile.ZipFile(student / "submission.zip") as archive:
        assert archive.namelist() == ["two_layer_net.py", "two_layer_net.ipynb",
                                      "linear_classifier.py"]
        assert archive.read("two_layer_net.py") == (student / "two_layer_net.py").read_bytes()
    loaded = submission.load(str(student / "submission.zip"))
    assert loaded.error is None and loaded.has_notebook
    assert sorted(os.listdir(student)) == ["linear_classifier.py", "scratch.txt",
                                           "submission.zip", "two_layer_net.ipynb",
                                           "two_layer_net.py"]


def test_submit_refuses_an_unrun_notebook_and_a_module_that_does_not_import(student, capsys):
    (student / "submission.zip").write_bytes(b"an earlier submission")
    write_notebook(student / "two_layer_net.ipynb", [1, None, 3, None])
    with open(student / "two_layer_net.py", "a") as f:
        f.write("\n\ndef half_written(:\n")
    lines = (student / "two_layer_net.py").read_text().count("\n")
    assert release.write_submission(folder=str(student), out="submission.zip") == 1
    err = capsys.readouterr().err
    assert re.search(r"2 of its 4 code cells were never executed \(cell 3 .*, cell 5 .*\); "
                     r"run it top to bottom .* and save it", err)
    assert re.search(rf"two_layer_net.py does not import: SyntaxError: .* \(two_layer_net.py, "
                     rf"line {lines}\)", err)
    assert (student / "submission.zip").read_bytes() == b"an earlier submission"
    assert sorted(os.listdir(student)) == ["submission.zip", "two_layer_net.ipynb",
                                           "two_layer_net.py"]


def test_submit_refuses_without_a_notebook(student, capsys):
    os.remove(student / "two_layer_net.ipynb")
    assert release.write_submission(folder=str(student), out="submission.zip") == 1
    assert "no two_layer_net.ipynb in" in capsys.readouterr().err
    assert not (student / "submission.zip").exists()


def test_import_check_stops_a_module_that_hangs(tmp_path):
    (tmp_path / "two_layer_net.py").write_text("import time\ntime.sleep(60)\n")
    problem = release.import_problem(str(tmp_path), timeout=1.0)
    assert re.search(r"did not finish in 1 s; move any training", problem)
