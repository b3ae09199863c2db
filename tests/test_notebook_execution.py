"""--execute: submitted notebooks run in the sandbox behind the test children's walls, and their
reports (tests/test_report_html.py checks the sanitiser itself)."""
import os
import re
import secrets
import shutil
import time

import pytest

import grade
import grading_corpus
from conftest import ROOT
from test_corpus import load_results

pytestmark = [pytest.mark.slow, pytest.mark.notebook]


@pytest.fixture(scope="module")
def host_objects():
    """What a child must not reach on the host (grading_corpus.host_objects)."""
    with grading_corpus.host_objects():
        yield


def small_notebook(*cells):
    import nbformat
    return nbformat.writes(nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell(c) if not c.startswith("#md ") else
               nbformat.v4.new_markdown_cell(c[4:]) for c in cells]))


@pytest.fixture(scope="module")
def executed(tmp_path_factory, host_objects):
    """Notebooks graded with --execute: one that works, one that raises, one that hangs, one
    whose kernel dies, and one that tries every wall."""
    folder = tmp_path_factory.mktemp("notebooks")
    out = tmp_path_factory.mktemp("notebook-results")
    reference = open(os.path.join(ROOT, "two_layer_net.py")).read()
    notebooks = {
        "works": small_notebook(
            "#md ## Answers\nThe loss <b>falls</b> because <script>alert('x')</script> ...",
            "import helpers\nfrom two_layer_net import nn_forward_pass\n"
            "ref = helpers.load_toy_reference()['small_weights']\n"
            "print('difference', helpers.rel_error(nn_forward_pass(ref['params'], ref['X'])[0], ref['scores']))",
            "import matplotlib.pyplot as plt\nplt.plot([3, 2, 1])\nplt.show()",
            f"open({os.path.join(ROOT, 'two_layer_net.py')!r}).read()",
            "from IPython.display import HTML\nHTML('<img src=x onerror=alert(1)>')"),
        "raises": small_notebook("x = 1", "raise ValueError('the student broke it')", "print('after')"),
        "hangs": small_notebook("while True:\n    pass"),
        "dies": small_notebook("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)", "print('never')"),
        "walls": small_notebook(*HOSTILE_NOTEBOOK_CELLS),
        # the kit's notebook catches a module that does not load (helpers.follow_module): no cell raises
        "syntax": small_notebook("try:\n    import two_layer_net\nexcept SyntaxError as e:\n"
                                 "    print('two_layer_net.py does not load:', e)",
                                 "import sys\nprint('python', sys.executable, sys.prefix)"),
    }
    paths = []
    for name, text in notebooks.items():
        (folder / name).mkdir()
        (folder / name / "two_layer_net.py").write_text(
            reference + ("\ndef broken(:\n" if name == "syntax" else ""))
        (folder / name / "two_layer_net.ipynb").write_text(text)
        paths.append(str(folder / name))
    uid_base = 100_000 + secrets.randbelow(800_000)
    os.environ["GRADER_SANDBOX_UID"] = str(uid_base)
    try:
        code = grade.main([*paths, "--out", str(out), "--execute", "--notebook-timeout", "20"])
    finally:
        del os.environ["GRADER_SANDBOX_UID"]
    return {"code": code, "out": out, "paths": paths, "uid_base": uid_base}


HOSTILE_NOTEBOOK_CELLS = [  # what a notebook reached on main: host IPC, host sockets, processes
    "import ctypes, os, socket, time\nlibc = ctypes.CDLL(None, use_errno=True)\n"
    "libc.shmat.restype = ctypes.c_void_p\n"
    f"shmid = libc.shmget({grading_corpus.HOST_SHM_KEY}, 0, 0)\n"
    "print('SHM', shmid >= 0 and libc.shmat(shmid, None, 0) not in (None, ctypes.c_void_p(-1).value))",
    "reached = []\n"
    f"for path in {list(grading_corpus.HOST_SOCKETS)!r}:\n"
    "    try:\n        socket.socket(socket.AF_UNIX).connect(path)\n        reached.append(path)\n"
    "    except OSError:\n        pass\nprint('SOCKETS', len(reached))",
    "forked = 0\nfor _ in range(100):\n    try:\n        pid = os.fork()\n    except OSError:\n        break\n"
    "    if pid == 0:\n        time.sleep(5)\n        os._exit(0)\n    forked += 1\nprint('FORKED', forked)",
    "if os.fork() == 0:\n    for _ in range(61):\n        if os.fork() != 0:\n            os._exit(0)\n"
    "        os.setsid()\n    time.sleep(300)\n    os._exit(0)\nprint('CHAIN started')",
]




def test_execute_runs_the_notebook_against_the_submissions_module(executed):
    assert executed["code"] == 0
    result = load_results(executed["out"], "works")
    assert result["score"] == 100
    # the reference is not in the sandbox's file system at all (Landlock would refuse it too)
    assert re.search(r"ran to the end, but 1 cell\(s\) raised: cell 3 \((FileNotFoundError|PermissionError)",
                     result["output"])
    html = (executed["out"] / "works" / "report.html").read_text()
    assert "difference 0.0" in html, "the notebook's own output is in the report"
    assert html.count("data:image/png;base64") >= 1, "its plot is in the report"
    assert re.search("No such file or directory|Permission denied", html), \
        "the sandbox kept the notebook from the reference"


def test_report_html_runs_nothing_a_student_wrote(executed):
    html = (executed["out"] / "works" / "report.html").read_text()
    assert "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in html or \
        "&lt;script&gt;alert('x')&lt;/script&gt;" in html
    assert "<h2" in html, "markdown answers keep their structure"


def test_execution_errors_are_reported_and_do_not_stop_the_batch(executed):
    raises = load_results(executed["out"], "raises")
    assert "cell 1 (ValueError: the student broke it)" in raises["output"]
    html = (executed["out"] / "raises" / "report.html").read_text()
    assert "the student broke it" in html and "after" in html, "later cells still ran"
    hangs = load_results(executed["out"], "hangs")
    assert hangs["score"] == 100
    assert re.search(r"Notebook: .*(timed out|Timeout|did not finish)", hangs["output"], re.I)
    assert (executed["out"] / "hangs" / "report.html").exists()


@pytest.mark.root
@pytest.mark.skipif(os.geteuid() != 0, reason="the walls of notebooks as root")
def test_notebooks_run_behind_the_same_walls_as_test_children(executed, host_objects):
    html = (executed["out"] / "walls" / "report.html").read_text()
    assert "SHM False" in html, "the notebook attached a root-only System V segment"
    assert "SOCKETS 0" in html, "the notebook reached a Unix socket of the host"
    forked = int(re.search(r"FORKED (\d+)", html).group(1))
    assert forked < 100, "the notebook's processes are not limited"
    time.sleep(1)
    assert grading_corpus.processes_of(range(executed["uid_base"], executed["uid_base"] + 100)) == []


def test_a_dead_kernel_is_noticed_at_once(executed):
    dies = load_results(executed["out"], "dies")
    assert re.search(r"kernel died|DeadKernel", dies["output"], re.I), dies["output"]
    assert dies["execution_time"] < 15, "the dead kernel held its slot"


def test_the_kits_own_notebook_runs_clean_under_the_default_limits(tmp_path):
    """A correct student's notebook (the kit's notebook with the reference module), executed
    with grade.py's default --memory and timeouts: no cell may fail."""
    sub = tmp_path / "student"
    sub.mkdir()
    shutil.copy(os.path.join(ROOT, "two_layer_net.py"), sub)
    shutil.copy(os.path.join(ROOT, "two_layer_net.ipynb"), sub)
    out = tmp_path / "out"
    assert grade.main([str(sub), "--out", str(out), "--execute"]) == 0
    result = load_results(out, "student")
    assert "ran from top to bottom without errors" in result["output"], result["output"]


def test_a_module_that_does_not_load_is_said_not_ran_without_errors(executed):
    syntax = load_results(executed["out"], "syntax")
    assert "without errors" not in syntax["output"], syntax["output"]
    assert "two_layer_net.py did not load" in syntax["output"] and "SyntaxError" in syntax["output"]
    html = (executed["out"] / "syntax" / "report.html").read_text()
    assert "did not load" in html


def test_no_report_shows_a_path_of_the_graders_machine(executed):
    import sys

    for name in ("works", "syntax", "raises"):
        html = (executed["out"] / name / "report.html").read_text()
        for path in (ROOT, sys.prefix, os.path.dirname(sys.executable), "two-layer-net-grade-"):
            assert path not in html, (name, path)
    assert "python &lt;python&gt;/python" in (executed["out"] / "syntax" / "report.html").read_text()
