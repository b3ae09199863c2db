"""two_layer_net.ipynb, executed headless against the reference and against an unfinished module,
and the helpers that keep its cells from crashing (helpers_lib/notebook.py, training.py)."""
import functools
import os
import pickle
import re
import shutil
import sys
import tempfile

import nbformat
import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from conftest import ROOT
from grader.kitfiles import NOTEBOOK_SUPPORT, kit_files
from grader.release import find_regions, strip_solutions
from helpers import (CheckResult, ModuleNotLoaded, advance_on_call, check, describe_error,
                     final_loss, follow_module, learning_rate_schedule, loss_func_with_progress,
                     plot_acc_curves, plot_loss_and_learning_rate, plot_search_heatmap,
                     report_errors, seeded, to_device)
from main import run_notebook

NOTEBOOK = os.path.join(ROOT, "two_layer_net.ipynb")
# Cells tagged "check" and the PASS/FAIL lines they print: forward 2, loss 2, loss at huge scores
# 2, numeric gradient check 4 and the grader's reading of the backward pass 1, fixture gradients
# 8, gradients at huge scores 2, toy training 1, prediction 1, digits 1, search 1. The grader's
# reading needs grader/ beside the notebook (the kit, the release): a folder with only the
# notebook's support prints one line fewer.
CHECK_CELLS = 10
CHECK_LINES = 25
CHECK_LINES_WITHOUT_GRADER = CHECK_LINES - 1
# Figures of a run against the reference with CIFAR-10 configured: toy training 1, digits 2,
# CIFAR-10 2, iterations 1, learning rates 2, sweeps 3, heat map 1, gradient flow 3.
FIGURES = 15
# The figures of section 8 need nothing from two_layer_net.py: activations, gradient norms,
# clipping.
INDEPENDENT_FIGURES = 3
# A fake CIFAR-10 folder: 5 training batches and a test batch of this many images, and the sizes
# the notebook is told to use (the real ones need the real data set and minutes of training).
FAKE_CIFAR_BATCH = 12
FAKE_CIFAR_OVERRIDE = """CIFAR10_DIR = {folder!r}
CIFAR10_SIZES = dict(num_train=40, num_val=10, num_test=10)
CIFAR10_TRAINING = dict(CIFAR10_TRAINING, hidden_size=16, num_iters=20, batch_size=20)"""


def write_fake_cifar(folder):
    """CIFAR-10 python batches in the real format (pickled dicts with bytes keys), random pixels."""
    os.makedirs(folder)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"labels": [int(v) for v in rng.integers(0, 10, FAKE_CIFAR_BATCH)],
                 b"data": rng.integers(0, 256, (FAKE_CIFAR_BATCH, 3072), dtype=np.uint8)}
        with open(os.path.join(folder, name), "wb") as f:
            pickle.dump(batch, f, protocol=2)


def copy_notebook_support(folder):
    """Copy the kit's files that a notebook imports (the helpers and the fixtures) into `folder`,
    as the release and the grader's notebook work folder have them."""
    for rel in kit_files(NOTEBOOK_SUPPORT):
        os.makedirs(os.path.dirname(os.path.join(folder, rel)), exist_ok=True)
        shutil.copy(os.path.join(ROOT, rel), os.path.join(folder, rel))


def tagged(notebook, tag):
    return [cell for cell in notebook.cells if tag in cell.metadata.get("tags", [])]


def stdout(cell):
    return "".join(o.text for o in cell.get("outputs", [])
                   if o.output_type == "stream" and o.name == "stdout")


def images(cell):
    return [o for o in cell.get("outputs", []) if "image/png" in o.get("data", {})]


@functools.cache
def executed_reference():
    """Run the notebook once per session against the reference, CIFAR-10 faked: (notebook,
    executed .ipynb path, .html path, seconds). Shared with test_main.py."""
    folder = tempfile.TemporaryDirectory(prefix="notebook-")
    executed_reference.folder = folder  # kept alive for the session, removed at exit
    cifar = os.path.join(folder.name, "cifar-10-batches-py")
    write_fake_cifar(cifar)
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    (parameters,) = tagged(notebook, "parameters")
    at = notebook.cells.index(parameters) + 1
    notebook.cells.insert(at, nbformat.v4.new_code_cell(FAKE_CIFAR_OVERRIDE.format(folder=cifar)))
    path = os.path.join(folder.name, "two_layer_net.ipynb")
    nbformat.write(notebook, path)
    ipynb_path, html_path, seconds = run_notebook(notebook_path=path, cwd=ROOT,
                                                  out_dir=os.path.join(folder.name, "out"))
    return nbformat.read(ipynb_path, as_version=4), ipynb_path, html_path, seconds


@pytest.fixture(scope="module")
def reference_run():
    return executed_reference()[0]


def test_committed_notebook_has_no_outputs_and_no_execution_counts():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code
    assert all(cell.outputs == [] for cell in code), "clear the outputs before committing"
    assert all(cell.execution_count is None for cell in code), "clear the execution counts"
    extra = {key for cell in notebook.cells for key in cell.metadata} - {"tags"}
    assert not extra, f"cell metadata {extra} would put run details into the diff"
    assert notebook.metadata.kernelspec.name == "python3"


@pytest.mark.slow
@pytest.mark.notebook
def test_reference_run_has_no_errors(reference_run):
    errors = [(i, o.ename, o.evalue) for i, cell in enumerate(reference_run.cells)
              for o in cell.get("outputs", []) if o.output_type == "error"]
    assert errors == []
    printed = "".join(stdout(cell) for cell in reference_run.cells)
    assert "ERROR:" not in printed and "Skipped" not in printed


@pytest.mark.slow
@pytest.mark.notebook
def test_every_check_cell_prints_pass(reference_run):
    cells = tagged(reference_run, "check")
    assert len(cells) == CHECK_CELLS
    lines = [line for cell in cells for line in stdout(cell).splitlines() if line.strip()]
    assert len(lines) == CHECK_LINES
    assert all(line.endswith(": PASS") for line in lines), [
        line for line in lines if "PASS" not in line]
    assert re.search(r"Difference between your scores and correct scores: \S+ "
                     r"\(should be < 1e-10\): PASS", lines[0])


@pytest.mark.slow
@pytest.mark.notebook
def test_every_figure_shows_once_as_an_image(reference_run):
    figure_cells = tagged(reference_run, "figure")
    assert all(images(cell) for cell in figure_cells), "a figure cell drew nothing"
    assert sum(len(images(cell)) for cell in reference_run.cells) == FIGURES
    assert sum(len(images(cell)) for cell in figure_cells) == FIGURES
    text = [o for cell in reference_run.cells for o in cell.get("outputs", [])
            if "text/plain" in o.get("data", {}) and "image/png" not in o.get("data", {})]
    assert not any("Figure" in o.data["text/plain"] for o in text), "a figure shown as text"


@pytest.mark.slow
@pytest.mark.notebook
def test_html_copy_holds_every_figure():
    _, _, html_path, _ = executed_reference()
    page = open(html_path, encoding="utf-8").read()
    assert len(re.findall(r'<img[^>]*src="data:image/png;base64,', page)) == FIGURES


@pytest.mark.slow
@pytest.mark.notebook
def test_kernel_runs_the_python_that_runs_the_tests(reference_run):
    (setup,) = tagged(reference_run, "setup")
    assert f" at {sys.executable}\n" in stdout(setup)


@pytest.mark.slow
@pytest.mark.notebook
def test_progress_bars_leave_one_clean_line_each(reference_run):
    errors = "".join(o.text for cell in reference_run.cells for o in cell.get("outputs", [])
                     if o.output_type == "stream" and o.name == "stderr")
    assert "\r" not in errors
    for bar in ("10,000 iterations", "search", "CIFAR-10 training"):
        assert re.search(rf"^{bar}: 100%", errors, re.MULTILINE), bar
    assert "IProgress" not in errors and "Warning" not in errors


def parse_lr_table(text):
    """{rate: row} from the learning-rate table: first, highest and final loss or divergence."""
    rows = {}
    for line in text.splitlines()[1:]:
        fields = line.split()
        rows[float(fields[0])] = {"first": float(fields[1]), "highest": float(fields[2]),
                                  "diverged": "diverged" in line,
                                  "rest": [float(v) for v in fields[3:]] if "diverged" not in line
                                  else []}
    return rows


@pytest.mark.slow
@pytest.mark.notebook
def test_learning_rate_experiment_shows_what_the_text_says(reference_run):
    (table,) = tagged(reference_run, "lr-table")
    rows = parse_lr_table(stdout(table))
    assert sorted(rows) == [1e-3, 1e-1, 1.0, 1.8, 3.0]
    final = {rate: row["rest"][0] for rate, row in rows.items() if not row["diverged"]}
    dead = {rate: row["rest"][4] for rate, row in rows.items() if not row["diverged"]}
    assert 0.5 * rows[1e-3]["first"] < final[1e-3] < rows[1e-3]["first"], "under-fitting"
    assert final[1e-1] < 0.01 and dead[1e-1] == 0, "convergence"
    assert rows[1.0]["highest"] > 100 * rows[1.0]["first"] and final[1.0] < 1.0, "jump and return"
    assert dead[1.0] >= 1, "the jump kills hidden units for some inputs"
    l2_term, data_loss = rows[1.8]["rest"][1], rows[1.8]["rest"][2]
    assert final[1.8] > 1e10 and l2_term > 0.9 * final[1.8] and data_loss < 1.0, "stuck blow-up"
    assert rows[3.0]["diverged"], "divergence"


@pytest.mark.slow
@pytest.mark.notebook
def test_cifar_section_runs_when_configured(reference_run):
    printed = "".join(stdout(cell) for cell in reference_run.cells)
    assert "CIFAR-10 is not configured" not in printed
    assert re.search(r"validation accuracy \d\.\d+, test accuracy \d\.\d+", printed)


@pytest.mark.parametrize("best_stat, says", [
    ({"loss_history": [1.0]}, "No heat map: best_stat['search'] is empty"),
    ({"loss_history": [1.0], "search": []}, "No heat map: best_stat['search'] is empty"),
    (None, "Skipped: the search above did not finish."),
])
def test_heatmap_cell_explains_a_missing_search_instead_of_failing(best_stat, says, capsys):
    (cell,) = tagged(nbformat.read(NOTEBOOK, as_version=4), "heatmap")
    shown = []
    exec(cell.source, {"best_stat": best_stat, "display": shown.append,
                       "plot_search_heatmap": plot_search_heatmap})
    assert capsys.readouterr().out.startswith(says) and shown == []


def stub_solutions(source):
    """The release's student module (grade.py release): each solution region becomes a raise."""
    return strip_solutions(source)[0]


def test_stub_replaces_every_solution_region():
    source = open(os.path.join(ROOT, "two_layer_net.py")).read()
    stub = stub_solutions(source)
    compile(stub, "two_layer_net.py", "exec")
    regions = sum(line.strip().startswith("# BEGIN SOLUTION") for line in source.splitlines())
    assert regions == 5 and stub.count("raise NotImplementedError(") == regions
    assert "    # BEGIN SOLUTION" not in stub and "# END SOLUTION\n" not in stub


def syntax_error(source):
    return source + "\n\ndef half_written(:\n"


@pytest.mark.slow
@pytest.mark.notebook
@pytest.mark.parametrize("make_module", [stub_solutions, syntax_error])
def test_unfinished_module_prints_fail_lines_and_independent_sections_still_run(make_module,
                                                                              tmp_path,
                                                                              monkeypatch):
    with open(os.path.join(ROOT, "two_layer_net.py")) as f:
        (tmp_path / "two_layer_net.py").write_text(make_module(f.read()))
    copy_notebook_support(tmp_path)
    shutil.copy(NOTEBOOK, tmp_path)
    monkeypatch.delenv("CIFAR10_DIR", raising=False)

    ipynb_path, _, _ = run_notebook(notebook_path=str(tmp_path / "two_layer_net.ipynb"),
                                    out_dir=str(tmp_path / "out"))
    notebook = nbformat.read(ipynb_path, as_version=4)

    assert not [o for cell in notebook.cells for o in cell.get("outputs", [])
                if o.output_type == "error"], "a cell raised instead of reporting"
    checks = tagged(notebook, "check")
    lines = [line for cell in checks for line in stdout(cell).splitlines() if line.strip()]
    assert len(checks) == CHECK_CELLS and len(lines) == CHECK_LINES_WITHOUT_GRADER
    assert all(": FAIL: " in line for line in lines), lines
    printed = "".join(stdout(cell) for cell in notebook.cells)
    assert "Traceback" not in printed
    assert "CIFAR-10 is not configured" in printed
    independent = tagged(notebook, "independent")
    assert len(independent) == INDEPENDENT_FIGURES
    assert all(len(images(cell)) == 1 for cell in independent)
    assert sum(len(images(cell)) for cell in notebook.cells) == INDEPENDENT_FIGURES
    if make_module is stub_solutions:
        assert re.search(r"^Difference between your scores and correct scores: FAIL: "
                         r"NotImplementedError: the forward pass.*\(two_layer_net\.py, line \d+, in "
                         r"nn_forward_pass\)$", lines[0])
        assert "ERROR: NotImplementedError" in printed
    else:
        (setup,) = tagged(notebook, "setup")
        assert re.search(r"^ERROR: two_layer_net\.py could not be loaded: SyntaxError: .* "
                         r"\(two_layer_net\.py, line \d+\); fix it and save it",
                         stdout(setup), re.MULTILINE)
        module_checks = lines[:20]  # sections 2 to 4 call the module directly
        assert all("could not be loaded: SyntaxError" in line for line in module_checks), lines
        assert "NameError" not in printed


def reference_source():
    with open(os.path.join(ROOT, "two_layer_net.py")) as f:
        return f.read()


def without_backward(source):
    """The reference with Part 2 of nn_forward_backward (the NO RAISE region) as the release
    has it: the marker comment alone, so the function returns the loss and an empty grads."""
    (region,) = [r for r in find_regions(source) if not r.raises]
    lines = source.splitlines(keepends=True)
    marker = lines[region.begin - 1]
    indent = marker[:len(marker) - len(marker.lstrip())]
    return "".join(lines[:region.begin - 1] + [f"{indent}# YOUR CODE HERE\n"] + lines[region.end:])


def run_cells(folder, module_source, cells):
    """Execute `cells` (notebook cells or source strings) in a kernel whose working folder holds
    `module_source` as two_layer_net.py, the helpers and the fixtures; the executed cells."""
    (folder / "two_layer_net.py").write_text(module_source)
    copy_notebook_support(folder)
    notebook = nbformat.v4.new_notebook(cells=[
        cell if not isinstance(cell, str) else nbformat.v4.new_code_cell(cell) for cell in cells])
    notebook.metadata.kernelspec = {"name": "python3", "display_name": "Python 3",
                                    "language": "python"}
    nbformat.write(notebook, str(folder / "cells.ipynb"))
    ipynb_path, _, _ = run_notebook(notebook_path=str(folder / "cells.ipynb"),
                                    out_dir=str(folder / "out"))
    return nbformat.read(ipynb_path, as_version=4).cells


def cells_through(cell_id):
    """The committed notebook's cells from the top through the cell with id `cell_id`."""
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    ids = [cell.id for cell in notebook.cells]
    return notebook.cells[:ids.index(cell_id) + 1]


@pytest.mark.slow
@pytest.mark.notebook
def test_loss_checks_pass_before_the_backward_pass_exists(tmp_path):
    cells = run_cells(tmp_path, without_backward(reference_source()),
                      cells_through("check-gradient-stability"))
    by_id = {cell.id: stdout(cell).splitlines() for cell in cells}
    section_3 = by_id["c465417e"] + by_id["check-loss-stability"]
    section_4 = by_id["39517630"] + by_id["ece5d691"] + by_id["check-gradient-stability"]
    assert len(section_3) == 4 and all(line.endswith(": PASS") for line in section_3), section_3
    assert len(section_4) == 14, section_4
    assert all(re.search(r": FAIL: nn_forward_backward returned no grads\['\w+'\].*: "
                         r"backpropagate \(Part 2 of nn_forward_backward", line)
               for line in section_4), section_4
    printed = "".join(stdout(cell) for cell in cells)
    assert "Your loss:" in printed and "NameError" not in printed and "Traceback" not in printed


@pytest.mark.slow
@pytest.mark.notebook
def test_every_cell_uses_the_module_as_saved(tmp_path):
    """A syntax error saved mid-session makes the next cells say so (no NameError, no PASS from
    the old code, also through objects built before); the next save is picked up by itself."""
    source = reference_source()
    buggy = source.replace("scores = torch.addmm(b2, hidden, W2)",
                           "scores = torch.addmm(b2, hidden, W2) + 1")
    assert buggy != source
    setup, load, forward_check = (cells_through(cell_id)[-1].source
                                  for cell_id in ("a5a0c45d", "d1bda4dd", "f88dec8e"))

    def save(text):
        return f"open('two_layer_net.py', 'w').write({text!r})"

    cells = run_cells(tmp_path, source, [
        setup, load, "net = TwoLayerNet(4, 10, 3, dtype=torch.float64, seed=0)", forward_check,
        save(source + "\n\ndef half_written(:\n"),
        forward_check,
        "with report_errors():\n    print(net.predict(X))",
        "nn_forward_pass",
        save(buggy),
        forward_check,
        save(source),
        forward_check,
    ])
    out = [stdout(cell) for cell in cells]
    assert all(o.output_type != "error" for cell in cells for o in cell.outputs), out
    assert out[3].count(": PASS") == 2
    assert out[5].startswith("ERROR: two_layer_net.py could not be loaded: SyntaxError: ")
    assert out[5].count(": FAIL: two_layer_net.py could not be loaded: SyntaxError: ") == 2
    assert out[6].startswith("ERROR: two_layer_net.py could not be loaded: SyntaxError")
    assert "unavailable" in "".join(o.get("data", {}).get("text/plain", "")
                                    for o in cells[7].outputs)
    assert out[9].startswith("(two_layer_net.py changed on disk: reloaded, sha256 ")
    assert re.search(r"scores and correct scores: \S+ \(should be < 1e-10\): FAIL", out[9])
    assert "hidden layer and the correct one: 0 (should be < 1e-10): PASS" in out[9]
    assert out[11].count(": PASS") == 2


def test_followed_module_reloads_changes_and_stands_in_while_broken(tmp_path, capsys):
    path = tmp_path / "student_mod.py"
    box_class = "\n\n\nclass Box:\n    def get(self):\n        return f()\n"
    path.write_text("def f():\n    return 1" + box_class)
    namespace = {}
    followed = follow_module("student_mod", ["f", "Box", "g"], namespace, path=str(path))
    box = namespace["Box"]()
    assert namespace["f"]() == 1 and box.get() == 1
    with pytest.raises(ModuleNotLoaded, match="defines no g; restore it"):
        namespace["g"]()
    assert followed.refresh() is False, "an unchanged file is not reloaded"
    path.write_text("def f(:\n")
    assert followed.refresh() is True
    assert re.search(r"ERROR: student_mod\.py could not be loaded: SyntaxError: .*"
                     r"\(student_mod\.py, line 1\)", capsys.readouterr().out)
    for call in (namespace["f"], box.get, namespace["Box"]):
        with pytest.raises(ModuleNotLoaded, match="could not be loaded: SyntaxError"):
            call()
    assert describe_error(ModuleNotLoaded("x could not be loaded")) == "x could not be loaded"
    path.write_text("def f():\n    return 2" + box_class)
    assert followed.refresh() is True and followed.error is None
    assert "changed on disk: reloaded" in capsys.readouterr().out
    assert namespace["f"]() == 2 and box.get() == 2, "objects built before see the new code"
    path.write_text("raise RuntimeError('boom')\n")
    followed.refresh()
    assert "could not be loaded: RuntimeError: boom (student_mod.py, line 1" in followed.error


def test_questions_have_answer_cells_and_instructor_answers_are_tagged():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    tags = [cell.metadata.get("tags", []) for cell in notebook.cells]
    questions = [t[len("question:"):] for ts in tags for t in ts if t.startswith("question:")]
    answers = [t[len("answer:"):] for ts in tags for t in ts if t.startswith("answer:")]
    assert questions == answers == ["q1", "q2", "q3"]
    ids = {cell.id: cell for cell in notebook.cells}
    for qid in questions:
        assert "question:" + qid in ids[f"question-{qid}"].metadata.tags
        assert ids[f"answer-{qid}"].source == "*Your answer:*"
        assert ids[f"answer-{qid}"].cell_type == "markdown"
        assert "solution" in ids[f"solution-{qid}"].metadata.tags
    student_text = "\n".join(cell.source for cell in notebook.cells
                             if "solution" not in cell.metadata.get("tags", []))
    solution_text = "\n".join(cell.source for cell in notebook.cells
                              if "solution" in cell.metadata.get("tags", []))
    # What Questions 1-3 ask, answered: it may stand in the instructor's cells only.
    for answer in ("every iteration is an epoch", "3.5e-6", "computed *from* the scores",
                   '"dead" ReLUs', "under-fits", "cannot represent"):
        assert answer in solution_text, answer
        assert answer not in student_text, answer
    for aside in ("over 50 seeds", "over ten seeds", "Write-ups", "set_num_threads",
                  "hidden random inputs"):
        assert aside not in student_text, aside


def test_check_passes_fails_and_reports_errors_in_one_line():
    passed = check("difference", lambda: 2.2e-11, below=1e-10)
    assert passed.passed and str(passed) == "difference: 2.2e-11 (should be < 1e-10): PASS"
    failed = check("accuracy", lambda: 0.5, at_least=0.9, fmt=".3f")
    assert not failed.passed and str(failed) == "accuracy: 0.500 (should be at least 0.9): FAIL"
    assert not check("loss", lambda: float("nan"), below=1.0).passed

    def broken():
        raise NotImplementedError("compute the scores")

    error = check("scores", broken, below=1.0)
    assert isinstance(error, CheckResult) and not error.passed
    assert re.fullmatch(r"scores: FAIL: NotImplementedError: compute the scores "
                        r"\(test_notebook\.py, line \d+, in broken\)", str(error))
    with pytest.raises(ValueError, match="exactly one"):
        check("x", lambda: 1.0)


def test_describe_error_names_the_innermost_frame_outside_torch():
    try:
        torch.zeros(2, 3) @ torch.zeros(2, 3)
    except RuntimeError as e:
        text = describe_error(e)
    assert text.startswith("RuntimeError: ") and "test_notebook.py, line" in text
    try:
        compile("def f(:\n", "two_layer_net.py", "exec")
    except SyntaxError as e:
        assert describe_error(e).endswith("(two_layer_net.py, line 1)")


def test_report_errors_prints_one_line_and_goes_on(capsys):
    done = []
    with report_errors():
        done.append(1)
        raise KeyError("W3")
    done.append(2)
    out = capsys.readouterr().out
    assert done == [1, 2]
    assert out.startswith("ERROR: KeyError: 'W3' (test_notebook.py, line ") and out.count("\n") == 1
    with pytest.raises(KeyboardInterrupt), report_errors():
        raise KeyboardInterrupt


def test_final_loss_says_when_training_did_not_finish():
    assert final_loss({"loss_history": [2.0, 1.0]}) == 1.0
    for stats in (None, {"loss_history": []}):
        with pytest.raises(ValueError, match="did not finish"):
            final_loss(stats)


def test_learning_rate_schedule_decays_once_per_epoch():
    # 100 // 30 = 3 iterations per epoch, as in test_train_decays_learning_rate_once_per_epoch.
    assert learning_rate_schedule(1.0, 0.5, 10, num_train=100, batch_size=30) == \
        [1.0, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.125, 0.125, 0.125]
    toy = learning_rate_schedule(0.1, 0.95, 201, num_train=5, batch_size=200)
    assert toy[200] == pytest.approx(0.1 * 0.95 ** 200) and toy[200] == pytest.approx(3.5e-6,
                                                                                       rel=0.02)


def test_seeded_repeats_draws_and_restores_the_generator():
    before = torch.get_rng_state()
    with seeded(3):
        a = torch.rand(4)
    assert torch.equal(torch.get_rng_state(), before)
    with seeded(3):
        b = torch.rand(4)
    assert torch.equal(a, b)


class Bar:
    def __init__(self):
        self.n = 0

    def update(self, k):
        self.n += k


def test_progress_counts_training_steps_and_calls():
    bar = Bar()

    def loss_func(params, X, y=None, reg=0.0):
        return ("loss", reg) if y is not None else "scores"

    counted = loss_func_with_progress(loss_func, bar)
    assert counted(None, None, y=1, reg=0.5) == ("loss", 0.5)
    assert counted(None, None) == "scores"
    assert bar.n == 1

    class Net:
        def train(self, k):
            return 2 * k

    calls = Bar()
    with advance_on_call(Net, "train", calls):
        assert Net().train(4) == 8 and Net().train(1) == 2
    assert calls.n == 2
    Net().train(1)
    assert calls.n == 2, "the method is restored after the block"


def test_to_device_moves_nested_tensors():
    moved = to_device({"a": torch.ones(1), "b": {"c": torch.zeros(2)}, "d": 3}, "cpu")
    assert moved["d"] == 3 and moved["b"]["c"].device.type == "cpu"


def stats(train, val, losses=(1.0, 0.5)):
    return {"loss_history": list(losses), "train_acc_history": train, "val_acc_history": val}


def test_plot_acc_curves_pairs_train_and_val_in_one_colour():
    fig = plot_acc_curves({"H=2": stats([0.1, 0.5], [0.1, 0.4]),
                           "H=8": stats([0.2, 0.9], [0.2, 0.8])}, "capacity")
    assert isinstance(fig, Figure)
    (ax,) = fig.axes
    assert len(ax.lines) == 4
    assert ax.lines[0].get_color() == ax.lines[1].get_color() != ax.lines[2].get_color()
    assert list(ax.lines[3].get_ydata()) == [0.2, 0.8] and ax.lines[3].get_linestyle() == "--"


def test_plot_loss_and_learning_rate_shows_both_on_log_scales():
    rates = learning_rate_schedule(0.1, 0.95, 1000, num_train=5, batch_size=200)
    fig = plot_loss_and_learning_rate({"run": stats([], [], losses=[1.0] * 1000)}, {"run": rates})
    ax_loss, ax_rate = fig.axes
    assert ax_loss.get_xscale() == "log" and ax_rate.get_yscale() == "log"
    assert list(ax_rate.lines[0].get_ydata()) == rates
    assert ax_rate.get_ylim()[0] > 0 and "not shown" in ax_rate.get_title()


def test_plot_search_heatmap_places_every_accuracy():
    search = [{"learning_rate": lr, "hidden_size": h, "reg": r, "learning_rate_decay": 0.99,
               "val_acc": round(0.1 * i, 1)}
              for i, (lr, h, r) in enumerate([(0.1, 32, 1e-3), (1.0, 32, 1e-3), (0.1, 32, 1e-2),
                                              (1.0, 128, 1e-2)])]
    fig = plot_search_heatmap(search)
    panels = [ax for ax in fig.axes if ax.images]
    assert [ax.get_title() for ax in panels] == ["hidden size 32", "hidden size 128"]
    grid = panels[0].images[0].get_array()
    assert grid[0, 0] == 0.0 and grid[1, 0] == 0.1 and grid[0, 1] == 0.2
    assert np.isnan(panels[0].images[0].get_array().filled(np.nan)[1, 1])
    assert sorted(t.get_text() for t in panels[1].texts) == ["0.300"]
    with pytest.raises(ValueError, match="empty"):
        plot_search_heatmap([])


def test_colab_cell_finds_the_assignment_on_drive_and_installs_only_what_colab_lacks(tmp_path,
                                                                                      monkeypatch):
    """Colab simulated: a fake google.colab whose drive.mount records its mount point, a Drive
    folder in tmp_path holding the assignment two levels down, and pip replaced by a recorder.
    The cell must find the folder itself, work there, put it on sys.path, keep Colab's torch
    and install only the pins whose package is missing."""
    import subprocess
    import types

    notebook = nbformat.read(NOTEBOOK, as_version=4)
    (cell,) = tagged(notebook, "colab")
    assert notebook.cells.index(cell) < notebook.cells.index(tagged(notebook, "setup")[0])
    drive_root = tmp_path / "drive"
    folder = drive_root / "MyDrive" / "courses" / "a2"
    folder.mkdir(parents=True)
    for name in ("two_layer_net.ipynb", "grade.py"):
        (folder / name).write_text("")
    (drive_root / "MyDrive" / "old").mkdir()
    (drive_root / "MyDrive" / "old" / "two_layer_net.ipynb").write_text("")  # no grade.py beside it
    (folder / "requirements.txt").write_text("# pins\ntorch==0.0.1\nnumpy==2.4.6  # kept\n"
                                             "kit-package-colab-lacks==1.0\n")
    mounted, installed = [], []
    colab = types.ModuleType("google.colab")
    colab.drive = types.SimpleNamespace(mount=mounted.append)
    monkeypatch.setitem(sys.modules, "google", types.ModuleType("google"))
    monkeypatch.setitem(sys.modules, "google.colab", colab)
    monkeypatch.setattr(subprocess, "run", lambda args, check: installed.append(args[4:]))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    source = cell.source.replace('COLAB_DRIVE = "/content/drive"', f"COLAB_DRIVE = {str(drive_root)!r}")
    assert source != cell.source, "the cell names its mount point in COLAB_DRIVE"
    exec(compile(source, "colab-cell", "exec"), {})
    assert mounted == [str(drive_root)]
    assert os.getcwd() == str(folder) and sys.path[0] == str(folder)
    assert installed == [["-q", "kit-package-colab-lacks==1.0"]]


def test_colab_cell_does_nothing_outside_colab(tmp_path, monkeypatch):
    import subprocess

    (cell,) = tagged(nbformat.read(NOTEBOOK, as_version=4), "colab")
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: pytest.fail("installed outside Colab"))
    monkeypatch.chdir(tmp_path)
    exec(compile(cell.source, "colab-cell", "exec"), {})
    assert os.getcwd() == str(tmp_path)


def test_the_set_up_prints_the_digest_of_the_module_it_loaded(tmp_path, capsys):
    """grade.py submit compares the last digest the notebook printed with the file it zips."""
    import hashlib

    from helpers_lib.notebook import DIGEST_LINE

    path = tmp_path / "student_mod.py"
    path.write_text("def f():\n    return 1\n")
    followed = follow_module("student_mod", ["f"], {}, path=str(path))
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    printed = capsys.readouterr().out
    assert printed == f"(student_mod.py loaded, sha256 {digest})\n"
    assert DIGEST_LINE.search(printed).group("digest") == digest
    path.write_text("def f():\n    return 2\n")
    followed.refresh()
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    assert capsys.readouterr().out == f"(student_mod.py changed on disk: reloaded, sha256 {digest})\n"


@pytest.mark.slow
@pytest.mark.notebook
def test_toy_scores_show_where_a_forward_pass_without_relu_differs(tmp_path):
    """Without ReLU the toy scores agree with the correct ones to four decimals (the biases
    dominate the tiny weights): the cell shows the entries that differ most, with every digit."""
    source = reference_source()
    no_relu = source.replace(".clamp_(min=0)", "")
    assert no_relu != source
    cells = run_cells(tmp_path, no_relu, cells_through("d1bda4dd"))
    printed = stdout(cells[-1])
    yours, correct = printed.split("Your scores:")[1].split("Correct scores:")
    assert yours.split("scores[")[0].strip() == correct.split("scores[")[0].strip(), \
        "the test needs scores that agree to the digits torch prints"
    differences = re.findall(r"^scores\[(\d), (\d)\]: yours (\S+), correct (\S+), difference (\S+)$",
                             printed, re.M)
    assert len(differences) == 3, printed
    sizes = [abs(float(d[4])) for d in differences]
    assert sizes == sorted(sizes, reverse=True) and sizes[0] > 1e-6
    assert all(float(d[2]) - float(d[3]) == pytest.approx(float(d[4]), rel=1e-3) for d in differences)
