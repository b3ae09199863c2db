"""main.py, the README's commands and .ci/run."""
import os
import re

from conftest import ROOT
from main import DIGITS_DEFAULTS, main, train_digits

# The bar for the reference on the digits set (scikit-learn's MLP reaches ~96%).
DIGITS_TEST_ACCURACY = 0.95


def test_reference_reaches_95_percent_on_digits(tmp_path):
    loss, test_acc, figure_path = train_digits(out_dir=tmp_path, **DIGITS_DEFAULTS)
    assert test_acc >= DIGITS_TEST_ACCURACY, test_acc
    assert loss < 0.5
    with open(figure_path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_main_prints_loss_and_accuracy_and_writes_the_figure(tmp_path, capsys):
    assert main(["--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert re.search(r"final training loss \d+\.\d+, test accuracy \d+\.\d%", out)
    assert os.path.getsize(tmp_path / "digits_training.png") > 10_000


def test_ci_runs_the_readme_test_command_exactly():
    ci = open(os.path.join(ROOT, ".ci", "run")).read().strip().splitlines()[-1]
    readme = open(os.path.join(ROOT, "README.md")).read()
    assert ci in readme.splitlines(), f"README lacks .ci/run's command: {ci}"
