"""main.py, the README's commands and .ci/run."""
import os
import re

import nbformat
import pytest
from nbclient.exceptions import CellExecutionError

import main as main_module
from conftest import ROOT
from main import DIGITS_DEFAULTS, main, train_digits
from test_notebook import FIGURES, executed_reference

# The bar for the reference on the digits set (scikit-learn's MLP reaches ~96%).
DIGITS_TEST_ACCURACY = 0.95


def test_reference_reaches_95_percent_on_digits(tmp_path):
    loss, test_acc, figure_path = train_digits(out_dir=tmp_path, **DIGITS_DEFAULTS)
    assert test_acc >= DIGITS_TEST_ACCURACY, test_acc
    assert loss < 0.5
    with open(figure_path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


class FakeRunNotebook:
    """Stands in for run_notebook (whose real run test_notebook.py shares): records the call."""

    def __init__(self, error=None):
        self.calls, self.error = [], error

    def __call__(self, *, out_dir):
        self.calls.append(out_dir)
        if self.error:
            raise self.error
        return (os.path.join(out_dir, "two_layer_net.ipynb"),
                os.path.join(out_dir, "two_layer_net.html"), 12.3)


@pytest.mark.slow
def test_main_prints_loss_and_accuracy_writes_the_figure_and_runs_the_notebook(tmp_path, capsys,
                                                                              monkeypatch):
    monkeypatch.delenv("KIT_THREADS", raising=False)
    monkeypatch.setattr(main_module, "use_threads", lambda: 1)  # the real one: test_helpers.py
    fake = FakeRunNotebook()
    monkeypatch.setattr(main_module, "run_notebook", fake)
    assert main(["--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert re.search(r"final training loss \d+\.\d+, test accuracy \d+\.\d% \(\d+\.\d s at 1 "
                     r"thread\)", out)
    assert os.path.getsize(tmp_path / "digits_training.png") > 10_000
    assert fake.calls == [str(tmp_path)]
    assert f"notebook: executed in 12 s; wrote {tmp_path}" in out
    assert re.search(r"^forward\s+15/15\s+passed", out, re.M)
    assert re.search(r"^total\s+100/100$", out, re.M)
    (results,) = re.findall(r"^wrote (\S+results\.json)$", out, re.M)
    assert os.path.isfile(results) and results.startswith(str(tmp_path / "grading"))


def test_main_fails_with_a_message_when_a_notebook_cell_fails(tmp_path, capsys, monkeypatch):
    error = CellExecutionError("Traceback ...", "ValueError", "boom")
    monkeypatch.setattr(main_module, "run_notebook", FakeRunNotebook(error))
    assert main(["--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "stopped at a cell error" in err and "two_layer_net.html" in err


@pytest.mark.slow
@pytest.mark.notebook
def test_run_notebook_writes_the_executed_notebook_and_an_html_page_with_every_figure():
    notebook, ipynb_path, html_path, seconds = executed_reference()
    assert os.path.basename(ipynb_path) == "two_layer_net.ipynb"
    written = nbformat.read(ipynb_path, as_version=4)
    nbformat.validate(written)
    assert all(cell.execution_count is not None for cell in written.cells
               if cell.cell_type == "code")
    page = open(html_path, encoding="utf-8").read()
    assert page.startswith("<!DOCTYPE html>")
    assert len(re.findall(r'<img[^>]*src="data:image/png;base64,', page)) == FIGURES
    assert "Difference between your scores and correct scores" in page
    assert seconds > 0


def test_ci_runs_the_readme_test_command_exactly():
    ci = open(os.path.join(ROOT, ".ci", "run")).read().strip().splitlines()[-1]
    readme = open(os.path.join(ROOT, "README.md")).read()
    assert ci in readme.splitlines(), f"README lacks .ci/run's command: {ci}"
