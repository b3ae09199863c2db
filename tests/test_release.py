"""Kit-only: `grade.py release` (the student release) and `grade.py submit` (the student's zip).

Not part of the release itself: a student's finished module has no solution markers.
"""
import ast
import hashlib
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import textwrap
import zipfile

import nbformat
import pytest

from conftest import ROOT
from grader import SECRET_ENV, cells, release, submission, submit
from grader.release import ReleaseError, find_regions, strip_solutions

REFERENCE = os.path.join(ROOT, "two_layer_net.py")
MARKER = re.compile(r"^\s*#\s*(BEGIN|END) SOLUTION")
INSTRUCTOR_TOOLS = {"grader/release.py", "grader/gradescope.py", "grader/similar.py",
                    "grader/similar_html.py"}
RELEASED = {
    "README.md", "grade.py", "helpers.py", "pytest.ini", "requirements.txt",
    "two_layer_net.py", "two_layer_net.ipynb", "tests/conftest.py", "tests/test_two_layer_net.py",
    "tests/fixtures/toy_reference.json", "helpers_lib/expected.pt",
    *(f"grader/{name}" for name in os.listdir(os.path.join(ROOT, "grader")) if name.endswith(".py")),
    *(f"grader/groups/{name}" for name in os.listdir(os.path.join(ROOT, "grader", "groups"))
      if name.endswith(".py")),
    *(f"helpers_lib/{name}" for name in os.listdir(os.path.join(ROOT, "helpers_lib"))
      if name.endswith(".py")),
} - INSTRUCTOR_TOOLS
# The release's own pytest run and self-check each start a fresh interpreter that imports torch.
SUBPROCESS_TIMEOUT = 300
# On the untouched stubs the release's pytest printed over 2,000 lines before its pytest.ini and
# the one-failure-per-unwritten-part rule of test_two_layer_net.py; now about 75.
STUB_RUN_LINES = 150

# The reference's solution regions: forward, loss, backward, the SGD update and predict, the
# parts the rubric grades (CONTRACT §1-2); everything else in the release is given code.
SOLUTION_REGIONS = 5

# A solution written against the original course's scaffold, as a student of EECS 498-007 A2
# writes it (see tests/submissions/student_solution.py), for each `# YOUR CODE HERE` of the
# release, keyed by the start of its hint. Nothing in it follows the reference's own wording.
COURSE_PARTS = {
    "the forward pass": """
        hidden = (X.mm(W1) + b1).clamp(min=0)
        scores = hidden.mm(W2) + b2
        """,
    "the loss": """
        N, D = X.shape
        shifted = scores - scores.max(dim=1, keepdim=True).values
        exp_scores = torch.exp(shifted)
        probs = exp_scores / exp_scores.sum(dim=1, keepdim=True)
        log_probs = shifted - torch.log(exp_scores.sum(dim=1, keepdim=True))
        loss = -log_probs[torch.arange(N), y].sum()
        loss /= N
        loss += reg * torch.sum(W1 * W1) + reg * torch.sum(W2 * W2)
        """,
    "backpropagate": """
        dscores = probs.clone()
        dscores[torch.arange(N), y] -= 1
        dscores /= N
        grads['W2'] = hidden.t().mm(dscores) + 2 * reg * W2
        grads['b2'] = dscores.sum(dim=0)
        dh1 = dscores.mm(W2.t())
        dh1[hidden <= 0] = 0
        grads['W1'] = X.t().mm(dh1) + 2 * reg * W1
        grads['b1'] = dh1.sum(dim=0)
        """,
    "the SGD update": """
        for k in params:
            params[k] -= learning_rate * grads[k]
        """,
    "the predicted labels": """
        scores = loss_func(params, X)
        y_pred = torch.argmax(scores, dim=1)
        """,
}
_YOUR_CODE = re.compile(r"^(?P<indent>\s*)# YOUR CODE HERE: (?P<hint>.*)$")


def fill_stubs(stub, parts):
    """The student module `stub` with the `parts` whose key starts a stub's hint written in: each
    goes below its `# YOUR CODE HERE` line, in place of the raise after it (if any)."""
    lines, out, i = stub.splitlines(keepends=True), [], 0
    filled = set()
    while i < len(lines):
        out.append(lines[i])
        match = _YOUR_CODE.match(lines[i])
        key = match and next((k for k in parts if match.group("hint").startswith(k)), None)
        if key:
            code = textwrap.dedent(parts[key]).strip("\n") + "\n"
            out.append(textwrap.indent(code, match.group("indent")))
            filled.add(key)
            if i + 1 < len(lines) and lines[i + 1].strip().startswith("raise NotImplementedError("):
                i += 1
        i += 1
    assert filled == set(parts), f"no stub for {set(parts) - filled}"
    return "".join(out)


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
    files = release_files(released["out"])
    assert files == RELEASED
    assert not files & INSTRUCTOR_TOOLS
    assert not [n for n in os.listdir(released["base"]) if ".building-" in n]


def test_release_contains_no_solution_code(released):
    with open(REFERENCE) as f:
        reference = f.read()
    with open(os.path.join(released["out"], "two_layer_net.py")) as f:
        student = f.read()
    reference_lines = reference.splitlines()
    student_lines = {line.strip() for line in student.splitlines()}
    regions = find_regions(reference)
    assert len(regions) == SOLUTION_REGIONS
    solution = [reference_lines[i].strip() for r in regions for i in range(r.begin, r.end - 1)]
    solution = [line for line in solution if line and not line.startswith("#")]
    assert solution, "the reference's regions hold no code; the test would prove nothing"
    assert [line for line in solution if line in student_lines] == []
    assert not [line for line in student.splitlines() if MARKER.match(line)]
    raising = [r for r in regions if r.raises]
    stubs = re.findall(r"^\s*raise NotImplementedError\(", student, re.M)
    assert len(stubs) == len(raising) == len(regions) - 1
    assert len(re.findall(r"^\s*# YOUR CODE HERE: ", student, re.M)) == len(regions)
    for r in regions:
        stub = re.search(rf"# YOUR CODE HERE: {re.escape(r.hint)}\n(.*)\n", student)
        assert stub, r.hint
        raises = f"raise NotImplementedError({json.dumps(r.hint)})"
        assert (stub.group(1).strip() == raises) == r.raises, (r.hint, stub.group(1))
    (backward,) = [r for r in regions if not r.raises]
    assert backward.hint.startswith("backpropagate")


def test_released_notebook_has_no_outputs(released):
    notebook = nbformat.read(os.path.join(released["out"], "two_layer_net.ipynb"), as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code, "no code cells: the test would prove nothing"
    assert all(cell.outputs == [] and cell.execution_count is None for cell in code)
    assert not [cell for cell in notebook.cells if "execution" in cell.metadata]


def test_released_notebook_has_no_instructor_cells_and_keeps_the_question_tags(released, tmp_path):
    kit = nbformat.read(os.path.join(ROOT, "two_layer_net.ipynb"), as_version=4)
    notebook = nbformat.read(os.path.join(released["out"], "two_layer_net.ipynb"), as_version=4)
    solutions = [cell for cell in kit.cells if "solution" in cell.metadata.get("tags", [])]
    assert len(solutions) == 3, "the kit's model answers: the test would prove nothing without"
    assert not [cell for cell in notebook.cells if "solution" in cell.metadata.get("tags", [])]
    assert [cell.id for cell in notebook.cells] == [cell.id for cell in kit.cells
                                                    if cell not in solutions]
    text = "\n".join(cell.source for cell in notebook.cells)
    for cell in solutions:
        paragraphs = [p for p in cell.source.split("\n\n")[1:] if len(p) > 40]
        assert paragraphs and not [p for p in paragraphs if p in text]
    for qid in ("q1", "q2", "q3"):
        (question,) = [c for c in notebook.cells if f"question:{qid}" in c.metadata.get("tags", [])]
        (answer,) = [c for c in notebook.cells if f"answer:{qid}" in c.metadata.get("tags", [])]
        assert answer.source == cells.ANSWER_PLACEHOLDER and answer.id == f"answer-{qid}"
        assert notebook.cells.index(answer) == notebook.cells.index(question) + 1


@pytest.mark.slow  # builds a release of its own: the public tests run to record their values
def test_release_resets_answer_cells_and_removes_any_solution_cell(tmp_path):
    kit = copy_kit(tmp_path / "kit")
    path = os.path.join(kit, "two_layer_net.ipynb")
    notebook = nbformat.read(path, as_version=4)
    (answer,) = [c for c in notebook.cells if "answer:q2" in c.metadata.get("tags", [])]
    answer.source = "*Your answer:* the instructor's answer, typed in while testing"
    extra = nbformat.v4.new_code_cell("print('the instructor only')")
    extra.metadata["tags"] = ["figure", "solution"]
    notebook.cells.insert(3, extra)
    nbformat.write(notebook, path)
    assert release.write_release(out=str(tmp_path / "student"), kit=kit) == 0
    text = (tmp_path / "student" / "two_layer_net.ipynb").read_text()
    assert "the instructor" not in text


def test_release_holds_no_secret(released):
    assert not os.path.exists(os.path.join(released["out"], "grader_secret.txt"))
    for rel in release_files(released["out"]):
        with open(os.path.join(released["out"], rel), "rb") as f:
            data = f.read()
        for secret in released["secrets"].values():
            assert secret.encode() not in data, rel


@pytest.mark.slow
def test_release_tests_fail_on_the_stubs_briefly_and_pass_with_the_reference(released, tmp_path):
    stubs = run_in(released["out"], "-m", "pytest", "-p", "no:cacheprovider")
    assert stubs.returncode == 1, stubs.stdout[-3000:]  # failures, not a collection error (2)
    assert re.search(r"\d+ failed", stubs.stdout) and "NotImplementedError" in stubs.stdout
    assert len(stubs.stdout.splitlines()) < STUB_RUN_LINES, stubs.stdout
    # Each unwritten part fails once; the tests it blocks are folded into one line.
    assert re.search(r"^SKIPPED \[\d{2}\] .*blocked by a part not written yet: the forward pass",
                     stubs.stdout, re.M)
    failed = re.findall(r"^FAILED (\S+)", stubs.stdout, re.M)
    assert len(failed) <= 8, failed

    finished = tmp_path / "finished"
    shutil.copytree(released["out"], finished)
    shutil.copyfile(REFERENCE, finished / "two_layer_net.py")
    solved = run_in(finished, "-m", "pytest", "-q", "-p", "no:cacheprovider")
    assert solved.returncode == 0, solved.stdout[-3000:]
    assert re.search(r"\d+ passed", solved.stdout)


@pytest.mark.slow
def test_release_self_check_prints_the_table_with_0_of_100(released):
    check = run_in(released["out"], "grade.py")
    assert check.returncode == 0, check.stderr[-2000:]
    assert re.search(r"^forward\s+0/15\s+failed\s", check.stdout, re.M)
    assert "NotImplementedError: the forward pass" in " ".join(check.stdout.split())
    assert re.search(r"^total\s+0/100$", check.stdout, re.M)
    assert "public self-check inputs" in check.stdout


@pytest.fixture(scope="module")
def course_solution(released, tmp_path_factory):
    """The release with every stub written the way the original course's students write it."""
    folder = tmp_path_factory.mktemp("course") / "student"
    shutil.copytree(released["out"], folder)
    module = folder / "two_layer_net.py"
    module.write_text(fill_stubs(module.read_text(), COURSE_PARTS))
    return folder


@pytest.mark.slow
def test_a_solution_written_against_the_course_scaffold_passes_the_public_tests(course_solution):
    tests = run_in(course_solution, "-m", "pytest", "-q", "-p", "no:cacheprovider")
    assert tests.returncode == 0, tests.stdout[-3000:]
    assert re.search(r"\d+ passed", tests.stdout) and "failed" not in tests.stdout


@pytest.mark.slow
def test_an_update_that_stores_new_tensors_passes_the_public_tests(course_solution, tmp_path):
    """`params[k] = params[k] - learning_rate * grads[k]`, as real solutions write it, is right
    by the contract; the release's pytest must not ask for an in-place update."""
    folder = tmp_path / "student"
    shutil.copytree(course_solution, folder)
    module = folder / "two_layer_net.py"
    in_place = "params[k] -= learning_rate * grads[k]"
    assert in_place in module.read_text()
    module.write_text(module.read_text().replace(
        in_place, "params[k] = params[k] - learning_rate * grads[k]"))
    tests = run_in(folder, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", "train")
    assert tests.returncode == 0, tests.stdout[-3000:]


@pytest.mark.slow
def test_a_solution_written_against_the_course_scaffold_gets_100_on_the_self_check(course_solution):
    check = run_in(course_solution, "grade.py")
    assert check.returncode == 0, check.stderr[-2000:]
    assert re.search(r"^total\s+100/100$", check.stdout, re.M), check.stdout


@pytest.mark.slow
def test_self_check_and_submit_work_in_the_release_folder(course_solution):
    shutil.copyfile(course_solution / "two_layer_net.ipynb", course_solution / "run.ipynb")
    run_notebook_in_place(str(course_solution / "two_layer_net.ipynb"))
    made = run_in(course_solution, "grade.py", "submit")
    assert made.returncode == 0, made.stderr[-2000:]
    assert "wrote " in made.stdout and "submission.zip" in made.stdout
    assert re.search(r"3 questions have no answer yet", made.stdout)
    with zipfile.ZipFile(course_solution / "submission.zip") as archive:
        assert archive.namelist() == ["two_layer_net.py", "two_layer_net.ipynb"]
    for tool in ("release", "gradescope"):
        refused = run_in(course_solution, "grade.py", tool, str(course_solution / "out.zip"))
        assert refused.returncode == 2, (tool, refused.stderr)
        assert "Traceback" not in refused.stderr and "instructor" in refused.stderr
        assert not (course_solution / "out.zip").exists()


@pytest.mark.slow
def test_the_loss_passes_before_the_backward_pass_is_written(released, tmp_path):
    folder = tmp_path / "student"
    shutil.copytree(released["out"], folder)
    module = folder / "two_layer_net.py"
    parts = {k: COURSE_PARTS[k] for k in ("the forward pass", "the loss")}
    module.write_text(fill_stubs(module.read_text(), parts))

    tests = run_in(folder, "-m", "pytest", "-p", "no:cacheprovider", "-rA", "--tb=line")
    assert tests.returncode == 1, tests.stdout[-3000:]
    passed = set(re.findall(r"^PASSED \S+::(test_\w+)", tests.stdout, re.M))
    assert {"test_loss_matches_autograd", "test_loss_matches_cross_entropy_plus_l2",
            "test_regulariser_is_reg_times_sum_of_squares_without_half",
            "test_loss_is_finite_and_right_for_huge_scores"} <= passed, tests.stdout[-3000:]
    assert re.search(r"NotImplementedError: nn_forward_backward returned grads without W1, b1, W2, "
                     r"b2: write its Part 2, backpropagate", tests.stdout)

    check = run_in(folder, "grade.py")
    assert check.returncode == 0, check.stderr[-2000:]
    assert re.search(r"^loss\s+10/10\s+passed", check.stdout, re.M), check.stdout
    # A correct loss keeps loss_stability too (contract §2: one bug is charged once, and missing
    # gradients are the gradient tests' business).
    assert re.search(r"^loss_stability\s+5/5\s+passed", check.stdout, re.M), check.stdout
    assert re.search(r"^grad_W1\s+0/10\s+failed", check.stdout, re.M), check.stdout


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
                    '    # YOUR CODE HERE: return "twice" x\n'
                    '    raise NotImplementedError("return \\"twice\\" x")\n'
                    '\n'
                    'class A:\n'
                    '    def g(self):\n'
                    '        if True:\n'
                    '            # YOUR CODE HERE: implement this part of g\n'
                    '            raise NotImplementedError("implement this part of g")\n')
    namespace = {}
    exec(compile(stub, "stub.py", "exec"), namespace)
    with pytest.raises(NotImplementedError, match='^return "twice" x$'):
        namespace["f"](1)


def test_a_no_raise_region_leaves_only_its_comment_so_the_code_after_it_runs():
    source = ('def f(x):\n'
              '    y = x + 1\n'
              '    grads = {}\n'
              '    # BEGIN SOLUTION NO RAISE: fill grads["x"]\n'
              '    grads["x"] = 1\n'
              '    # END SOLUTION\n'
              '    return y, grads\n')
    (region,) = find_regions(source)
    assert (region.begin, region.end, region.hint) == (4, 6, 'fill grads["x"]')
    assert not region.raises
    stub, regions = strip_solutions(source)
    assert stub == ('def f(x):\n'
                    '    y = x + 1\n'
                    '    grads = {}\n'
                    '    # YOUR CODE HERE: fill grads["x"]\n'
                    '    return y, grads\n')
    namespace = {}
    exec(compile(stub, "stub.py", "exec"), namespace)
    assert namespace["f"](1) == (2, {})


def test_markers_in_strings_are_text_not_markers():
    source = '"""Write between `# BEGIN SOLUTION` and\n# END SOLUTION lines."""\nx = 1\n'
    assert strip_solutions(source) == (source, 0)


@pytest.mark.parametrize("source, says", [
    ("def f():\n    # BEGIN SOLUTION\n    return 1\n", "line 2: BEGIN SOLUTION is never closed"),
    ("def f():\n    # BEGIN SOLUTION\n    # BEGIN SOLUTION\n    return 1\n    # END SOLUTION\n",
     "line 3: BEGIN SOLUTION inside the region opened at line 2"),
    ("x = 1\n# END SOLUTION\n", "line 2: END SOLUTION without a BEGIN"),
    ("def f():\n    return 1  # BEGIN SOLUTION\n", "line 2: the marker .* follows code"),
    ("# BEGIN SOLUTION\nif x:\n# END SOLUTION\n    y = 1\n",
     "line 4: with its solutions stubbed, this line is not valid Python"),
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
    assert depth == 0 and regions == SOLUTION_REGIONS


def write_notebook(path, counts, module=None):
    """A small notebook: a markdown cell, then one code cell per count (None: never run); the
    first prints the digest of the file `module`, as the set-up cell does when it loads it."""
    cells = [nbformat.v4.new_markdown_cell("# Answers")]
    for i, count in enumerate(counts):
        cell = nbformat.v4.new_code_cell(f"value_{i} = {i}\nprint(value_{i})")
        cell.execution_count = count
        if count is not None:
            loaded = ""
            if module is not None and i == 0:
                digest = hashlib.sha256(open(module, "rb").read()).hexdigest()[:16]
                loaded = f"(two_layer_net.py loaded, sha256 {digest})\n"
            cell.outputs = [nbformat.v4.new_output("stream", text=f"{loaded}{i}\n")]
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
    write_notebook(tmp_path / "two_layer_net.ipynb", [1, 2, 3], module=tmp_path / "two_layer_net.py")
    return tmp_path


@pytest.mark.slow
def test_submit_zips_the_module_and_the_executed_notebook(student, capsys):
    (student / "linear_classifier.py").write_text("def sample_batch(X, y, num_train, batch_size):\n"
                                                  "    return X, y\n")
    (student / "scratch.txt").write_text("not submitted")
    assert submit.write_submission(folder=str(student), out="submission.zip") == 0
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
    assert submit.write_submission(folder=str(student), out="submission.zip") == 1
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
    assert submit.write_submission(folder=str(student), out="submission.zip") == 1
    assert "no two_layer_net.ipynb in" in capsys.readouterr().err
    assert not (student / "submission.zip").exists()


@pytest.mark.slow
def test_import_check_stops_a_module_that_hangs(tmp_path):
    (tmp_path / "two_layer_net.py").write_text("import time\ntime.sleep(60)\n")
    problem = submit.import_problem(str(tmp_path), timeout=1.0)
    assert re.search(r"did not finish in 1 s; move any training", problem)


@pytest.mark.slow
def test_submit_lists_failing_checks_and_unanswered_questions_but_still_writes_the_zip(student,
                                                                                    capsys):
    def check_cell(count, text=None, error=None):
        cell = nbformat.v4.new_code_cell(f"print(check_{count}())")
        cell.metadata["tags"] = ["check"]
        cell.execution_count = count
        if text is not None:
            cell.outputs = [nbformat.v4.new_output("stream", text=text)]
        if error is not None:
            cell.outputs = [nbformat.v4.new_output("error", ename=error[0], evalue=error[1],
                                                   traceback=[])]
        return cell

    def tagged_md(source, tag):
        cell = nbformat.v4.new_markdown_cell(source)
        cell.metadata["tags"] = [tag]
        return cell

    cells = [
        nbformat.v4.new_markdown_cell("## 2. Forward pass"),
        check_cell(1, "Difference in scores: 0 (should be < 1e-10): PASS\n"),
        nbformat.v4.new_markdown_cell("## 3. Loss"),
        check_cell(2, "Difference in loss: 0.5 (should be < 1e-10): FAIL\n"
                      "Same with large weights: FAIL: NotImplementedError: compute loss\n"),
        check_cell(3, error=("KeyError", "'W1'")),
        tagged_md("**Question 1. What do the curves show?** Describe them.", "question:q1"),
        tagged_md("*Your answer:*", "answer:q1"),
        tagged_md("**Question 2. Why can the loss function produce scores?**", "question:q2"),
        tagged_md("*Your answer:* Because the scores come first.", "answer:q2"),
        tagged_md("**Question 3. What did the learning rate do?**", "question:q3"),
        tagged_md("", "answer:q3"),
    ]
    nbformat.write(nbformat.v4.new_notebook(cells=cells), str(student / "two_layer_net.ipynb"))
    assert submit.write_submission(folder=str(student), out="submission.zip") == 0
    out = capsys.readouterr().out
    assert (student / "submission.zip").exists()
    assert "you may upload it as it is" in out
    assert re.search(r"- 2 check cells do not print PASS:\n"
                     r"    cell 4 \(3\. Loss\): Difference in loss: 0\.5 \(should be < 1e-10\): "
                     r"FAIL \(and 1 more FAIL lines\)\n"
                     r"    cell 5 \(3\. Loss\): KeyError: 'W1': FAIL\n", out), out
    assert re.search(r"- 2 questions have no answer yet:\n"
                     r"    Question 1\. What do the curves show\? \(cell 7, still empty\)\n"
                     r"    Question 3\. What did the learning rate do\? \(cell 11, still empty\)\n",
                     out), out
    assert "Question 2" not in out


@pytest.mark.slow
def test_submit_says_nothing_more_when_every_check_passes_and_every_question_is_answered(student,
                                                                                       capsys):
    assert submit.write_submission(folder=str(student), out="submission.zip") == 0
    out = capsys.readouterr().out
    assert "upload this file" in out and "Still missing" not in out and "Warning" not in out


# What the release must not hand out: the solutions' own lines (issue 18.1).
ONE_LINERS = ["params[k] -= learning_rate * grads[k]", "-= learning_rate * grads",
              "shifted - log(sum(exp(shifted)))", "scores - max", "log_probs = shifted",
              "X @ W1 + b1) and scores"]
# Graded by the rubric: the functions whose stubs the self-check scores. Nothing else in the
# release is a student task (CONTRACT §1): the course's tuning functions are given code.
GRADED = {"nn_forward_pass", "nn_forward_backward", "nn_train", "nn_predict"}


def student_text(folder):
    """{relative path: text} of what a student reads in the release: the README, the module,
    the notebook's cells, the helpers, the tests and pytest.ini (not the grader's source)."""
    texts = {}
    for rel in sorted(release_files(folder)):
        if rel.startswith("grader/") or rel.endswith((".json", ".pt")) or rel == "grade.py":
            continue
        data = open(os.path.join(folder, rel), encoding="utf-8").read()
        if rel.endswith(".ipynb"):
            data = "\n".join(cell.source for cell in nbformat.reads(data, as_version=4).cells)
        texts[rel] = data
    return texts


def test_the_divergence_stop_is_given_and_every_stub_is_a_graded_or_course_part(released):
    source = open(os.path.join(released["out"], "two_layer_net.py")).read()
    tree = ast.parse(source)
    functions = {node.name: node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)}
    train = ast.get_source_segment(source, functions["nn_train"])
    assert "diverged_at = it" in train and "RuntimeWarning" in train and "break" in train
    owners = set()
    for number, line in enumerate(source.splitlines(), 1):
        if "# YOUR CODE HERE" in line:
            owners |= {name for name, node in functions.items()
                       if node.lineno <= number <= node.end_lineno}
    assert owners == GRADED, owners
    notebook = student_text(released["out"])["two_layer_net.ipynb"]
    assert "warnings.warn(" not in notebook and "set\n  `diverged_at`" not in notebook
    readme = open(os.path.join(released["out"], "README.md")).read()
    assert "stop on a diverging loss are there" in " ".join(readme.split())


def test_release_hands_out_no_one_line_solutions(released):
    texts = student_text(released["out"])
    for rel, text in texts.items():
        flat = " ".join(text.split())
        assert not [line for line in ONE_LINERS if line in flat], rel
    hints = re.findall(r'raise NotImplementedError\((".*")\)', texts["two_layer_net.py"])
    assert len(hints) == SOLUTION_REGIONS - 1, "every region raises but the backward pass's"
    for hint in map(json.loads, hints):
        assert not re.search(r"[=@]|\*\*|argmax|\.max\(", hint), hint


# A name a student reads: a file (with its folder) or a `python ...` command.
_NAMED_FILE = re.compile(r"(?<![\w/.-])((?:[\w-]+/)*[\w-]+\.(?:py|md|txt|ini|json|ipynb))\b")
_COMMAND = re.compile(r"(?<![\w.])(?:git|python3?(?:\.\d+)?|py -3\.\d+)\s+[^\n`]*")
# Names a student reads that the release does not hold, each for its reason.
NOT_HELD = {
    "submission.zip": "written by grade.py submit",
    "results.json": "a grader's output, named by helpers",
    "name.py": "follow_module's placeholder for a module's file",
}


def test_every_file_and_command_the_release_names_exists(released):
    """Issue 18.2: no main.py, CONTRACT.md, tests/make_fixtures.py, git, README sections or
    linear_classifier.py that the release does not hold."""
    out = released["out"]
    held = release_files(out)
    basenames = {rel.rsplit("/", 1)[-1] for rel in held}
    missing = []
    for rel, text in student_text(out).items():
        for name in set(_NAMED_FILE.findall(text)):
            if name in NOT_HELD or name in held or ("/" not in name and name in basenames):
                continue
            missing.append(f"{rel}: {name}")
        for command in _COMMAND.findall(text):
            words = command.split()
            assert words[0] != "git", f"{rel}: {command} (the release is no git repository)"
            script = next((w for w in words[1:] if w.endswith(".py")), None)
            if script and script not in held:
                missing.append(f"{rel}: {command}")
        assert not re.search(r'README[^\n]{0,20}"Threads"|CONTRACT\.md', text), rel
    assert missing == []


def test_release_requirements_are_the_students_and_pinned_as_the_kits(released):
    wanted = {"torch", "numpy", "matplotlib", "scikit-learn", "tqdm", "nbformat", "ipykernel",
              "pytest"}

    def pins(path):
        lines = [line.split("#")[0].strip() for line in open(path)]
        return dict(line.split("==") for line in lines if line)

    released_pins = pins(os.path.join(released["out"], "requirements.txt"))
    assert set(released_pins) == wanted
    kit = pins(os.path.join(ROOT, "requirements.txt"))
    assert {k: kit[k] for k in wanted} == released_pins


def test_release_readme_commands_run_in_windows_powershell(released):
    """PowerShell 5.1 (the one Windows ships) has no `&&`, and runs no POSIX paths: every
    command block of the README works there or is marked for Linux and macOS."""
    readme = open(os.path.join(released["out"], "README.md")).read()
    blocks = re.findall(r"^([ \t]*)```\n(.*?)^\1```$", readme, re.M | re.S)
    assert len(blocks) >= 5
    for _, block in blocks:
        assert "&&" not in block and "||" not in block, block
    inline = re.findall(r"`([^`\n]+)`", readme)
    assert not [c for c in inline if "&&" in c]
    windows = readme[readme.index("**Windows**"):readme.index("**Google Colab**")]
    (block,) = re.findall(r"```\n(.*?)```", windows, re.S)
    assert "/" not in block and "py -3.11 -m venv .venv" in block
    assert "Intel Macs" in readme and "macOS 14" in readme
    assert "Which verdict counts" in readme


def test_release_builds_the_notebook_facts_from_one_module():
    """grader/cells.py says how cells are marked; the release and submit read it (the release
    no longer imports the student's submit tool)."""
    for name in ("release.py", "submit.py"):
        tree = ast.parse(open(os.path.join(ROOT, "grader", name)).read())
        imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        assert "grader.cells" in imported, name
        assert "grader.submit" not in imported, name
        assigned = {t.id for node in tree.body if isinstance(node, ast.Assign)
                    for t in node.targets if isinstance(t, ast.Name)}
        assert not assigned & {"ANSWER_PLACEHOLDER", "SOLUTION_TAG", "CHECK_TAG", "ANSWER_TAG",
                               "QUESTION_TAG"}, name


def test_submit_warns_of_autograd_and_of_a_module_changed_after_the_run(student, capsys):
    source = (student / "two_layer_net.py").read_text()
    start = source.index("    # Part 2 of 2")
    end = source.index("    return loss, grads", start)
    autograd = ("    leaves = {k: v.detach().requires_grad_() for k, v in params.items()}\n"
                "    again = nn_forward_backward(leaves, X, y, reg)[0]\n"
                "    again.backward()\n"
                "    grads = {k: v.grad for k, v in leaves.items()}\n")
    (student / "two_layer_net.py").write_text(source[:start] + autograd + source[end:])
    write_notebook(student / "two_layer_net.ipynb", [1, 2, 3], module=student / "two_layer_net.py")
    assert submit.write_submission(folder=str(student), out="submission.zip") == 0
    out = capsys.readouterr().out
    assert re.search(r"Warning: the grader will say: nn_forward_backward used torch\.autograd "
                     r"\(.*\); the gradients must be computed by hand", out), out
    assert "changed after the notebook" not in out
    with open(student / "two_layer_net.py", "a") as f:
        f.write("\n# edited after the run\n")
    assert submit.write_submission(folder=str(student), out="submission.zip") == 0
    out = capsys.readouterr().out
    assert "Warning: two_layer_net.py changed after the notebook last ran with it" in out, out


# Issue 18.1: the release computes no forward pass, loss or gradient of the two-layer net; its
# checks replay values recorded when it was built (grader.release.record_expected).
AUTOGRAD_METHODS = {"backward", "requires_grad_"}
AUTOGRAD_FUNCTIONS = {"torch.autograd.grad", "torch.autograd.backward", "torch.func.grad",
                      "torch.func.vjp", "torch.func.jacrev"}
LOSS_FUNCTIONS = {"cross_entropy", "log_softmax", "logsumexp", "softmax", "nll_loss", "relu"}
WEIGHT_KEYS = {"W1", "W2"}
# Release files that may use autograd, each for its reason (neither touches the two-layer net).
AUTOGRAD_ALLOWED = {
    "helpers_lib/deepnets.py": "section 8's deep-net demonstrations (depth 8, given code)",
    "grader/zygote.py": "warms torch.func up on x * x before forking",
}
# Findings allowed in one release file, each for its reason: not a forward pass.
FINDINGS_ALLOWED = {
    ("grader/groups/backward.py", "@ ['W1']"): "the draw keeps pre-activations off ReLU's kink: "
    "the first layer's linear map alone, as the module's docstring states it",
}
# The live oracle and the replay agree to rounding: the same code on the same machine, perhaps
# with another thread count (another summation order) in the build's pytest subprocess.
RECORDED_TOL = 1e-14


def _dotted(node):
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    return ".".join(reversed(parts))


def working_oracle(source):
    """[(line, what)] where `source` computes a gradient with autograd, a softmax loss or the
    net's forward pass in working form (`@ params['W1']`, relu, clamp(min=0))."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            name = _dotted(node.func)
            last = name.rsplit(".", 1)[-1]
            off = bool(node.args) and isinstance(node.args[0], ast.Constant) \
                and node.args[0].value is False
            if isinstance(node.func, ast.Attribute) and last in AUTOGRAD_METHODS and not off:
                found.append((node.lineno, f".{last}()"))
            if name in AUTOGRAD_FUNCTIONS or last in LOSS_FUNCTIONS:
                found.append((node.lineno, name))
            for keyword in node.keywords:
                value = getattr(keyword.value, "value", None)
                if (keyword.arg, value) == ("min", 0) and last == "clamp":
                    found.append((node.lineno, "clamp(min=0)"))
                if keyword.arg == "requires_grad" and value is not False:
                    found.append((node.lineno, "requires_grad="))
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.MatMult):
            for side in (node.left, node.right):
                key = getattr(getattr(side, "slice", None), "value", None)
                if isinstance(side, ast.Subscript) and key in WEIGHT_KEYS:
                    found.append((node.lineno, f"@ [{key!r}]"))
    return sorted(found)


def test_the_scan_finds_the_kits_live_oracle():
    """The scan below can fail: it finds the kit's oracle and the rubric's old one."""
    with open(os.path.join(ROOT, "helpers_lib", "oracle.py")) as f:
        found = {what for _, what in working_oracle(f.read())}
    assert {".backward()", ".requires_grad_()", "torch.logsumexp", "clamp(min=0)",
            "@ ['W1']", "@ ['W2']"} <= found, found
    old_rubric = ("def oracle_forward(params, X):\n"
                  "    hidden = torch.relu(X @ params['W1'] + params['b1'])\n"
                  "    return hidden @ params['W2'] + params['b2'], hidden\n")
    assert working_oracle(old_rubric)


@pytest.mark.slow
def test_release_holds_no_working_forward_pass_loss_or_gradient(released):
    out = released["out"]
    found = {}
    for rel in sorted(release_files(out)):
        if rel.endswith(".py") and rel not in AUTOGRAD_ALLOWED:
            with open(os.path.join(out, rel), encoding="utf-8") as f:
                where = [(line, what) for line, what in working_oracle(f.read())
                         if (rel, what) not in FINDINGS_ALLOWED]
            if where:
                found[rel] = where
    assert found == {}
    with open(os.path.join(out, "helpers_lib", "oracle.py")) as f:
        assert f.read() == open(os.path.join(ROOT, "release", "oracle.py")).read()


def load_replay(release_folder):
    """The release's helpers_lib/oracle.py as a module of its own (it reads expected.pt)."""
    import importlib.util

    path = os.path.join(release_folder, "helpers_lib", "oracle.py")
    spec = importlib.util.spec_from_file_location("released_oracle", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_the_replay_refuses_inputs_that_were_not_recorded(released):
    import torch
    from conftest import make_problem

    replay = load_replay(released["out"])
    params, X, y = make_problem(5, 4, 10, 3)  # recorded: the public tests use it
    loss, grads = replay.loss_and_grads(params, X, y, 0.37)
    assert loss.dim() == 0 and set(grads) == set(params)
    nudged = {**params, "W1": params["W1"] * (1 + 1e-9)}
    with pytest.raises(replay.NotRecorded, match=r"recorded when the release was built"):
        replay.loss_and_grads(nudged, X, y, 0.37)
    with pytest.raises(replay.NotRecorded, match=r"reg=0\.5"):
        replay.loss_and_grads(params, X, y, 0.5)
    with pytest.raises(replay.NotRecorded, match=r"X \(5, 4\) torch.float32"):
        replay.forward(params, X.float())
    within = {**params, "W1": params["W1"] * (1 + replay.INPUT_RTOL / 10)}
    assert torch.equal(replay.loss_and_grads(within, X, y, 0.37)[0], loss)


@pytest.mark.slow
def test_recorded_values_agree_with_the_live_oracle(released):
    import torch

    from grader import PUBLIC_SEED
    from grader.groups import build
    from helpers import rel_error
    from helpers_lib import oracle

    path = os.path.join(released["out"], "helpers_lib", "expected.pt")
    records = torch.load(path, weights_only=True)
    calls = {oracle.FORWARD: 0, oracle.LOSS_AND_GRADS: 0}
    for entry in records:
        calls[entry["call"]] += 1
        if entry["call"] == oracle.FORWARD:
            live = dict(zip(("scores", "hidden"), oracle.forward(entry["params"], entry["X"])))
        else:
            loss, grads = oracle.loss_and_grads(entry["params"], entry["X"], entry["y"],
                                                entry["reg"])
            live = {"loss": loss, **{f"grad {k}": v for k, v in grads.items()}}
            entry["outputs"] = {"loss": entry["outputs"]["loss"],
                                **{f"grad {k}": v for k, v in entry["outputs"]["grads"].items()}}
        for name, value in live.items():
            assert rel_error(entry["outputs"][name], value) <= RECORDED_TOL, name
    assert min(calls.values()) >= 20, calls
    # Every call of the self-check's build is there (its public inputs, drawn afresh here).
    replay = load_replay(released["out"])
    with oracle.recording() as made:
        build(PUBLIC_SEED)
    for entry in made:
        if entry["call"] == oracle.FORWARD:
            replay.forward(entry["params"], entry["X"])
        else:
            replay.loss_and_grads(entry["params"], entry["X"], entry["y"], entry["reg"])


@pytest.mark.slow
def test_the_notebooks_stability_cases_are_recorded(released):
    """The notebook's STABILITY_CASES cell, run in the release (the rest of its checks compare
    with the toy fixtures)."""
    notebook = nbformat.read(os.path.join(released["out"], "two_layer_net.ipynb"), as_version=4)
    lines = [line for cell in notebook.cells if cell.cell_type == "code"
             for line in cell.source.splitlines() if "huge_scores_case(" in line]
    assert lines and all(line.startswith("STABILITY_CASES = ") for line in lines), lines
    code = "from helpers import huge_scores_case\n" + "\n".join(lines) + \
        "\nprint(sorted(STABILITY_CASES))"
    run = run_in(released["out"], "-c", code)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip() == "[1000.0, 10000.0]"


@pytest.mark.slow
def test_the_release_self_check_in_process_scores_the_reference_100_and_the_stubs_0(released,
                                                                                  tmp_path):
    """In-process, as on Windows, macOS and Colab (the sandboxed path is tested above)."""
    folder = tmp_path / "student"
    shutil.copytree(released["out"], folder)
    code = ("from grader import PUBLIC_SEED, selfcheck\n"
            "result = selfcheck.grade_in_process('two_layer_net.py', seed=PUBLIC_SEED, "
            "public=True)\nprint(result.score)")
    stubs = run_in(folder, "-c", code)
    assert stubs.returncode == 0 and float(stubs.stdout.split()[-1]) == 0, stubs.stderr[-2000:]
    shutil.copyfile(REFERENCE, folder / "two_layer_net.py")
    solved = run_in(folder, "-c", code)
    assert solved.returncode == 0, solved.stderr[-2000:]
    assert float(solved.stdout.split()[-1]) == 100, solved.stdout
