"""`grade.py gradescope OUT.zip`: the autograder zip, run end to end in a folder laid out like
Gradescope's /autograder (source/, submission/, results/)."""
import json
import os
import secrets
import shutil
import stat
import subprocess
import sys
import zipfile

import pytest

from conftest import ROOT
from grader import SECRET_ENV, gradescope
from grader.rubric import RUBRIC

REFERENCE = os.path.join(ROOT, "two_layer_net.py")
RUN_TIMEOUT = 300
TEST_FIELDS = {"score", "max_score", "status", "name", "number", "output", "output_format",
               "tags", "visibility", "extra_data"}
TOP_FIELDS = {"score", "execution_time", "output", "output_format", "visibility",
              "stdout_visibility", "extra_data", "tests", "leaderboard"}
VISIBILITIES = {"hidden", "after_due_date", "after_published", "visible"}


@pytest.fixture(scope="module")
def autograder(tmp_path_factory):
    """The autograder zip built from the kit with a given secret."""
    seed = "gradescope-secret-" + secrets.token_hex(8)
    out = tmp_path_factory.mktemp("autograder") / "autograder.zip"
    assert gradescope.build_autograder(out=str(out), seed=seed) == 0
    return {"zip": str(out), "seed": seed}


def check_gradescope_schema(result):
    """Gradescope's results.json: the fields it knows, with the types it takes."""
    assert set(result) <= TOP_FIELDS, set(result) - TOP_FIELDS
    assert isinstance(result["score"], (int, float))
    assert isinstance(result["execution_time"], (int, float))
    assert isinstance(result["output"], str) and result["output"]
    assert result.get("visibility", "visible") in VISIBILITIES
    assert result.get("stdout_visibility", "hidden") in VISIBILITIES
    for test in result["tests"]:
        assert set(test) <= TEST_FIELDS, set(test) - TEST_FIELDS
        assert test["status"] in ("passed", "failed")
        assert isinstance(test["score"], (int, float)) and isinstance(test["max_score"], (int, float))
        assert test["visibility"] in VISIBILITIES and isinstance(test["output"], str)


def run_autograder(root, autograder_zip, files, python=sys.executable):
    """Lay out `root` as Gradescope does, put `files` ({name: text}) in submission/, run
    run_autograder from root with the paths overridden; (process, results.json text)."""
    with zipfile.ZipFile(autograder_zip) as archive:
        archive.extractall(root / "source")
        for info in archive.infolist():
            os.chmod(root / "source" / info.filename, (info.external_attr >> 16) & 0o777)
    shutil.copy2(root / "source" / "run_autograder", root / "run_autograder")
    (root / "submission").mkdir()
    (root / "results").mkdir()
    for name, text in files.items():
        (root / "submission" / name).parent.mkdir(parents=True, exist_ok=True)
        (root / "submission" / name).write_text(text)
    env = {k: v for k, v in os.environ.items() if k != SECRET_ENV}
    env.update(AUTOGRADER_ROOT=str(root), AUTOGRADER_PYTHON=python, PYTHONDONTWRITEBYTECODE="1")
    process = subprocess.run([str(root / "run_autograder")], cwd=root, env=env,
                             capture_output=True, text=True, timeout=RUN_TIMEOUT)
    return process, (root / "results" / "results.json").read_text()


def reference_source():
    with open(REFERENCE) as f:
        return f.read()


def test_zip_holds_the_scripts_the_grader_and_the_secret_but_no_solution(autograder):
    with zipfile.ZipFile(autograder["zip"]) as archive:
        names = archive.namelist()
        modes = {i.filename: (i.external_attr >> 16) for i in archive.infolist()}
        assert archive.read("grader_secret.txt").decode().strip() == autograder["seed"]
    assert {"setup.sh", "run_autograder", "grade.py", "helpers.py", "requirements.txt",
            "grader/__init__.py", "grader/batch.py", "grader/rubric.py",
            "tests/fixtures/toy_reference.json", "grader_secret.txt"} <= set(names)
    assert not [n for n in names if os.path.basename(n) in ("two_layer_net.py", "two_layer_net.ipynb")]
    assert not [n for n in names if n.endswith(".pyc") or "__pycache__" in n]
    for script in ("setup.sh", "run_autograder"):
        assert stat.S_ISREG(modes[script]) and modes[script] & 0o111 == 0o111, script
    assert modes["grader_secret.txt"] & 0o077 == 0, "the secret must be readable by its owner only"


def test_setup_installs_the_pinned_requirements_with_cpu_torch(autograder):
    with zipfile.ZipFile(autograder["zip"]) as archive:
        setup = archive.read("setup.sh").decode()
        pinned = archive.read("requirements.txt").decode()
    assert "torch==" in pinned
    assert "apt-get install" in setup and "python3.11 python3.11-venv" in setup
    assert "--index-url https://download.pytorch.org/whl/cpu" in setup
    assert '-r "$SOURCE/requirements.txt"' in setup
    assert "torch.version.cuda is None" in setup, "setup.sh must fail if a CUDA build slipped in"
    for script in ("setup.sh", "run_autograder"):
        syntax = subprocess.run(["bash", "-n", os.path.join(ROOT, "release", "gradescope", script)],
                                capture_output=True, text=True)
        assert syntax.returncode == 0, syntax.stderr


@pytest.mark.slow
def test_run_autograder_gives_the_reference_100_with_the_secret_inputs(autograder, tmp_path):
    process, text = run_autograder(tmp_path, autograder["zip"], {"two_layer_net.py": reference_source()})
    assert process.returncode == 0, process.stderr[-2000:]
    result = json.loads(text)
    check_gradescope_schema(result)
    assert result["score"] == 100
    assert [t["name"] for t in result["tests"]] == list(RUBRIC)
    assert all(t["status"] == "passed" for t in result["tests"])
    assert "public self-check inputs" not in result["output"], "the zip's secret was not used"
    assert autograder["seed"] not in text
    assert not [n for n in os.listdir(tmp_path / "results") if n != "results.json"]


@pytest.mark.slow
def test_run_autograder_scores_a_broken_submission_lower(autograder, tmp_path):
    source = reference_source()
    right = "loss_func(params, X).argmax(dim=1)"
    assert source.count(right) == 1, "the reference changed; pick another line to break"
    broken = source.replace(right, "loss_func(params, X).argmin(dim=1)")
    process, text = run_autograder(tmp_path, autograder["zip"], {"two_layer_net.py": broken})
    assert process.returncode == 0, process.stderr[-2000:]
    result = json.loads(text)
    check_gradescope_schema(result)
    tests = {t["name"]: t for t in result["tests"]}
    assert tests["predict"]["status"] == "failed" and tests["predict"]["score"] == 0
    assert result["score"] == 100 - RUBRIC["predict"]


@pytest.mark.slow
def test_run_autograder_leaves_a_valid_fallback_when_the_grader_cannot_run(autograder, tmp_path):
    process, text = run_autograder(tmp_path, autograder["zip"],
                                   {"two_layer_net.py": reference_source()}, python="/bin/false")
    assert process.returncode == 0
    result = json.loads(text)
    check_gradescope_schema(result)
    assert result["score"] == 0 and result["tests"] == []
    assert "could not run" in result["output"]
    assert "grade.py exited with status 1" in process.stderr


def copy_grader_kit(dest):
    """The kit files the autograder is built from, without the reference or any secret."""
    for name in ("grade.py", "helpers.py", "requirements.txt"):
        os.makedirs(dest, exist_ok=True)
        shutil.copy(os.path.join(ROOT, name), dest)
    for folder in ("grader", "helpers_lib", os.path.join("tests", "fixtures"),
                   os.path.join("release", "gradescope")):
        shutil.copytree(os.path.join(ROOT, folder), os.path.join(dest, folder),
                        ignore=shutil.ignore_patterns("__pycache__"))
    return str(dest)


def test_without_a_secret_one_is_generated_into_the_zip_and_beside_grade_py(tmp_path, capsys):
    kit = copy_grader_kit(tmp_path / "kit")
    out = tmp_path / "autograder.zip"
    assert gradescope.build_autograder(out=str(out), seed=None, kit=kit) == 0
    saved = os.path.join(kit, "grader_secret.txt")
    assert f"generated: it is in the zip and in {saved}" in capsys.readouterr().out
    with open(saved) as f:
        seed = f.read().strip()
    assert len(seed) >= 32 and stat.S_IMODE(os.stat(saved).st_mode) == 0o600
    with zipfile.ZipFile(out) as archive:
        assert archive.read("grader_secret.txt").decode().strip() == seed
    with pytest.raises(gradescope.GradescopeError, match="already holds a secret seed"):
        gradescope.make_autograder(out=str(out), seed=None, kit=kit)


def test_out_must_be_a_zip(tmp_path, capsys):
    assert gradescope.build_autograder(out=str(tmp_path / "autograder"), seed="s" * 16) == 2
    assert "does not end in .zip" in capsys.readouterr().err
    assert os.listdir(tmp_path) == []


def test_visibility_is_a_choice_when_the_autograder_is_built(tmp_path):
    out = tmp_path / "autograder.zip"
    assert gradescope.build_autograder(out=str(out), seed="s" * 32,
                                       visibility="after_due_date") == 0
    with zipfile.ZipFile(out) as archive:
        assert archive.read("grade_options.txt").decode().split() == ["--visibility",
                                                                      "after_due_date"]
    with pytest.raises(gradescope.GradescopeError, match="visibility 'later' is not one of"):
        gradescope.make_autograder(out=str(tmp_path / "x.zip"), seed="s", visibility="later")


@pytest.mark.slow
def test_an_ambiguous_upload_fails_that_submission_saying_what_to_upload(tmp_path):
    """Two folders each with two_layer_net.py: one submission that cannot be graded, told what
    to upload; never the fallback that blames the grader. Tests keep the built visibility."""
    built = tmp_path / "autograder.zip"
    assert gradescope.build_autograder(out=str(built), seed="s" * 32,
                                       visibility="after_due_date") == 0
    source = reference_source()
    process, text = run_autograder(tmp_path / "root", str(built),
                                   {"v1/two_layer_net.py": source,
                                    "v2/two_layer_net.py": source + "# v2\n"})
    assert process.returncode == 0, process.stderr[-2000:]
    result = json.loads(text)
    check_gradescope_schema(result)
    assert "grader itself failed" not in result["output"]
    assert "several folders (v1, v2)" in result["output"]
    assert "submit exactly one two_layer_net.py" in result["output"]
    assert result["score"] == 0 and len(result["tests"]) == len(RUBRIC)
    assert {t["visibility"] for t in result["tests"]} == {"after_due_date"}
