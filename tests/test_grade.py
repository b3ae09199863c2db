"""grade.py against its corpus of broken and hostile submissions (tests/grading_corpus.py)."""
import csv
import json
import os
import pathlib
import re
import secrets
import shutil
import tempfile
import time

import pytest
import torch

import grade
import grading_corpus
from conftest import ROOT
from grader import rubric, wire
from grader.sandbox import world_readable

# Short limits keep the corpus fast: the endless loops cost one timeout each.
CORPUS_TIMEOUT = "4"
CORPUS_MEMORY_MB = "400"


@pytest.fixture(scope="module")
def host_objects():
    """What a child must not reach on the host: a root-only System V segment holding a marker,
    a world-writable Unix socket and one in a root-only folder (grading_corpus.HOST_*)."""
    import ctypes
    import socket

    libc = ctypes.CDLL(None, use_errno=True)
    shmid = libc.shmget(grading_corpus.HOST_SHM_KEY, 4096, 0o1600)  # IPC_CREAT, mode 0600
    assert shmid >= 0, f"shmget: errno {ctypes.get_errno()}"
    servers = []
    open_path, private_path = grading_corpus.HOST_SOCKETS
    os.makedirs(os.path.dirname(private_path), mode=0o700, exist_ok=True)
    for path, mode in ((open_path, 0o777), (private_path, 0o700)):
        if os.path.exists(path):
            os.unlink(path)
        server = socket.socket(socket.AF_UNIX)
        server.bind(path)
        server.listen(100)
        os.chmod(path, mode)
        servers.append(server)
    yield
    libc.shmctl(shmid, 0, None)  # IPC_RMID
    for server, path in zip(servers, grading_corpus.HOST_SOCKETS):
        server.close()
        os.unlink(path)
    os.rmdir(os.path.dirname(private_path))


def sysv_segments_of(uids):
    """(id, creator uid) of every System V shared-memory segment the host sees made by `uids`."""
    with open("/proc/sysvipc/shm") as f:
        rows = [line.split() for line in f.readlines()[1:]]
    return [(r[1], int(r[9])) for r in rows if int(r[9]) in uids]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, host_objects):
    """The whole corpus graded in one batch, as an instructor would run it."""
    folder = tmp_path_factory.mktemp("corpus")
    out = tmp_path_factory.mktemp("results")
    secret = "secret-" + secrets.token_hex(8)
    secret_file = folder / "instructor_secret.txt"
    secret_file.write_text(secret)
    instructor_files = [os.path.join(ROOT, "two_layer_net.py"), str(secret_file),
                        str(folder / "correct.py")]
    entries = grading_corpus.entries(instructor_files, str(out))
    paths = [grading_corpus.write(entry, str(folder)) for entry in entries]
    uid_base = 100_000 + secrets.randbelow(800_000)  # a range of our own, to find leftovers by
    env = {"GRADER_SECRET_SEED": secret, "GRADER_SANDBOX_UID": str(uid_base)}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    own_tmp = tempfile.mkdtemp(prefix="corpus-tmp-", dir="/tmp")  # to see what the batch leaves
    os.chmod(own_tmp, 0o711)
    saved_tmp, tempfile.tempdir = tempfile.tempdir, own_tmp
    try:
        code = grade.main([*paths, "--out", str(out), "--timeout", CORPUS_TIMEOUT,
                           "--memory", CORPUS_MEMORY_MB, "--jobs", "2"])
    finally:
        tempfile.tempdir = saved_tmp
        for k, v in saved.items():
            if v is None:
                del os.environ[k]
            else:
                os.environ[k] = v
    return {"code": code, "out": out, "entries": entries, "secret": secret, "paths": paths,
            "uid_base": uid_base,
            "temp_left": {p for p in os.listdir(own_tmp) if not p.endswith(".lock")}}


def load_results(out, name):
    with open(out / name / "results.json") as f:
        return json.load(f)


def test_batch_exits_zero_and_writes_every_result(corpus):
    assert corpus["code"] == 0
    names = {grading_corpus.result_name(e) for e in corpus["entries"]}
    on_disk = {p.name for p in corpus["out"].iterdir() if p.name != ".grade.lock"}
    assert on_disk == names | {"grades.csv", "scores.png"}, "a submission wrote into the results folder"


@pytest.mark.parametrize("index", range(len(grading_corpus.entries([], "/nonexistent"))))
def test_corpus_verdict(corpus, index):
    entry = corpus["entries"][index]
    result = load_results(corpus["out"], grading_corpus.result_name(entry))
    tests = {t["name"]: t for t in result["tests"]}
    assert list(tests) == list(rubric.RUBRIC)
    for name, points in rubric.RUBRIC.items():
        pattern = entry.expect.get(name, entry.expect.get(grading_corpus.ALL))
        test = tests[name]
        if pattern is None:
            assert test["status"] == "passed", (entry.name, name, test["output"])
            assert test["score"] == points
        else:
            assert test["status"] == "failed", (entry.name, name, test["output"])
            assert test["score"] == 0
            assert re.search(pattern, test["output"], re.S), (entry.name, name, test["output"])
    assert result["score"] == sum(t["score"] for t in result["tests"])


def test_flags_name_what_the_grader_detected(corpus):
    with open(corpus["out"] / "grades.csv") as f:
        flags = {r["name"]: r["flags"] for r in csv.DictReader(f)}
    for entry in corpus["entries"]:
        got = flags[grading_corpus.result_name(entry)]
        if entry.flags:
            assert re.search(entry.flags, got), (entry.name, got)
        elif entry.name in ("correct", "half_regulariser", "predict_argmin"):
            assert got == "", (entry.name, got)


@pytest.mark.skipif(os.geteuid() != 0, reason="sandbox uids exist only under root")
def test_no_system_v_segment_or_temp_folder_outlives_the_batch(corpus):
    uids = set(range(corpus["uid_base"], corpus["uid_base"] + 100))
    assert sysv_segments_of(uids) == [], "a submission's shared memory outlived it"
    assert corpus["temp_left"] == set(), "the grader left its run folder behind"


def test_results_follow_gradescopes_schema(corpus):
    result = load_results(corpus["out"], "correct")
    assert result["score"] == 100
    assert isinstance(result["execution_time"], float) and isinstance(result["output"], str)
    for test in result["tests"]:
        assert set(test) >= {"name", "score", "max_score", "status", "output", "visibility"}
        assert test["status"] in ("passed", "failed") and test["visibility"] == "visible"


def test_secret_and_expected_values_never_reach_the_feedback(corpus):
    for entry in corpus["entries"]:
        text = (corpus["out"] / grading_corpus.result_name(entry) / "results.json").read_text()
        assert corpus["secret"] not in text, entry.name


def test_grades_csv_has_a_row_per_submission(corpus):
    with open(corpus["out"] / "grades.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(corpus["entries"])
    assert list(rows[0]) == ["name", *rubric.RUBRIC, "total", "flags"]
    by_name = {r["name"]: r for r in rows}
    assert by_name["correct"]["total"] == "100"
    assert by_name["predict_argmin"]["predict"] == "0" and by_name["predict_argmin"]["total"] == "90"


@pytest.mark.skipif(os.geteuid() != 0, reason="children get their own uid only under root")
def test_no_process_of_a_submission_survives_the_batch(corpus):
    uids = range(corpus["uid_base"], corpus["uid_base"] + 100)
    survivors = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/status") as f:
                uid = next(int(line.split()[1]) for line in f if line.startswith("Uid:"))
        except (OSError, StopIteration):
            continue
        if uid in uids:
            survivors.append(pid)
    assert not survivors


def test_grading_twice_gives_identical_results(corpus, tmp_path):
    picks = [p for p in corpus["paths"] if os.path.basename(p).split(".")[0] in
             ("correct", "half_regulariser", "train_decays_every_iteration", "stubs")]
    os.environ["GRADER_SECRET_SEED"] = corpus["secret"]
    try:
        assert grade.main([*picks, "--out", str(tmp_path), "--force"]) == 0
    finally:
        del os.environ["GRADER_SECRET_SEED"]
    for path in picks:
        name = os.path.basename(path).split(".")[0]
        first, second = load_results(corpus["out"], name), load_results(tmp_path, name)
        strip = lambda r: [(t["name"], t["score"], t["output"]) for t in r["tests"]]  # noqa: E731
        assert strip(first) == strip(second), name


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


def test_public_and_secret_seeds_draw_different_inputs():
    public = rubric.build(rubric.PUBLIC_SEED)[0].arrays["case0/X"]
    secret = rubric.build("another seed")[0].arrays["case0/X"]
    again = rubric.build(rubric.PUBLIC_SEED)[0].arrays["case0/X"]
    assert torch.equal(public, again) and not torch.equal(public, secret)


def test_shapes_include_a_single_example_and_two_classes():
    forward = rubric.build("any")[0]
    shapes = [(forward.arrays[f"case{i}/X"].shape[0], forward.arrays[f"case{i}/W2"].shape[1])
              for i in range(forward.meta["cases"])]
    assert shapes[0][0] == 1 and shapes[1][1] == 2


def test_stability_inputs_have_huge_scores():
    group = next(g for g in rubric.build("any") if g.name == "loss_stability")
    for case in range(len(group.meta["calls"])):
        params = {k: group.arrays[f"case{case}/{k}"] for k in rubric.PARAM_NAMES}
        scores, _ = rubric.oracle_forward(params, group.arrays[f"case{case}/X"])
        assert 1e3 <= scores.abs().max() <= 1e5


def test_wire_round_trip_and_rejections():
    arrays = {"a": torch.arange(6, dtype=torch.float64).reshape(2, 3), "b": torch.tensor([True]),
              "empty": torch.empty(0, 4)}
    meta, back = wire.decode(wire.encode({"k": [1, "x"]}, arrays), 1 << 20)
    assert meta == {"k": [1, "x"]}
    assert all(torch.equal(arrays[k], back[k]) and arrays[k].dtype == back[k].dtype for k in arrays)
    good = wire.encode({}, {"a": torch.zeros(3)})
    header_len = int.from_bytes(good[:4], "big")
    header = json.loads(good[4:4 + header_len])
    for bad_spec in ({"dtype": "object"}, {"shape": [4]}, {"offset": 100}, {"shape": [-3]},
                     {"nbytes": 8}):
        spec = {**header["arrays"][0], **bad_spec}
        forged = json.dumps({"meta": {}, "arrays": [spec]}).encode()
        with pytest.raises(wire.WireError):
            wire.decode(len(forged).to_bytes(4, "big") + forged + good[4 + header_len:], 1 << 20)
    for junk in (b"", b"\x00\x00\x00\x05{}", b"\xff\xff\xff\xff", good[:-1] + b"" if False else b"\x00"):
        with pytest.raises(wire.WireError):
            wire.decode(junk, 1 << 20)
    with pytest.raises(wire.WireError):
        wire.decode(good, 10)


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
    }
    paths = []
    for name, text in notebooks.items():
        (folder / name).mkdir()
        (folder / name / "two_layer_net.py").write_text(reference)
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


def processes_of(uids):
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/status") as f:
                uid = next(int(line.split()[1]) for line in f if line.startswith("Uid:"))
        except (OSError, StopIteration):
            continue
        if uid in uids:
            found.append(pid)
    return found


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


@pytest.mark.skipif(os.geteuid() != 0, reason="the walls of notebooks as root")
def test_notebooks_run_behind_the_same_walls_as_test_children(executed, host_objects):
    html = (executed["out"] / "walls" / "report.html").read_text()
    assert "SHM False" in html, "the notebook attached a root-only System V segment"
    assert "SOCKETS 0" in html, "the notebook reached a Unix socket of the host"
    forked = int(re.search(r"FORKED (\d+)", html).group(1))
    assert forked < 100, "the notebook's processes are not limited"
    time.sleep(1)
    assert processes_of(range(executed["uid_base"], executed["uid_base"] + 100)) == []


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


def test_a_rerun_skips_unchanged_submissions_and_regrades_changed_ones(tmp_path):
    folder = tmp_path / "subs"
    folder.mkdir()
    source = open(os.path.join(ROOT, "tests", "submissions", "student_solution.py")).read()
    for name in ("amy", "bob"):
        (folder / f"{name}.py").write_text(source)
    out = tmp_path / "out"
    subs = [str(folder / "amy.py"), str(folder / "bob.py")]
    assert grade.main([*subs, "--out", str(out)]) == 0
    stamps = {n: (out / n / "results.json").stat().st_mtime_ns for n in ("amy", "bob")}
    (folder / "bob.py").write_text(source.replace("torch.argmax(scores", "torch.argmin(scores"))
    assert grade.main([*subs, "--out", str(out)]) == 0
    assert (out / "amy" / "results.json").stat().st_mtime_ns == stamps["amy"], "amy was regraded"
    assert load_results(out, "bob")["score"] == 90, "bob's new code was not graded"
    assert grade.main([*subs, "--out", str(out), "--force"]) == 0
    assert (out / "amy" / "results.json").stat().st_mtime_ns != stamps["amy"], "--force skipped amy"
    with open(out / "grades.csv") as f:
        assert {r["name"]: r["total"] for r in csv.DictReader(f)} == {"amy": "100", "bob": "90"}
    assert (out / "scores.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_an_interrupted_batch_resumes(tmp_path):
    source = open(os.path.join(ROOT, "tests", "submissions", "student_solution.py")).read()
    (tmp_path / "cat.py").write_text(source)
    out = tmp_path / "out"
    assert grade.main([str(tmp_path / "cat.py"), "--out", str(out)]) == 0
    (out / "cat" / "results.json").write_text('{"score": 10')  # a write cut short
    assert grade.main([str(tmp_path / "cat.py"), "--out", str(out)]) == 0
    assert load_results(out, "cat")["score"] == 100


def test_the_worker_keeps_no_descriptor_from_one_child_to_the_next():
    from grader import batch, submission
    sub = submission.load(os.path.join(ROOT, "tests", "submissions", "student_solution.py"))
    with batch.Grader("any", batch.Limits(timeout=30, memory_mb=1024), 1, True) as grader:
        grader.grade(sub)
        pid = grader._slots[0].worker.process.pid
        before = sorted(os.listdir(f"/proc/{pid}/fd"))
        for _ in range(3):
            grader.grade(sub)
        assert sorted(os.listdir(f"/proc/{pid}/fd")) == before


def test_world_readable_needs_every_folder_above_to_be_searchable():
    base = pathlib.Path(tempfile.mkdtemp(dir="/tmp"))  # pytest's tmp_path sits in a private folder
    private, public = base / "private", base / "public"
    for folder, mode in ((private, 0o700), (public, 0o755)):
        folder.mkdir()
        (folder / "f").write_text("x")
        os.chmod(folder / "f", 0o644)
        os.chmod(folder, mode)
    os.chmod(base, 0o755)
    assert world_readable(public) and world_readable(public / "f")
    assert not world_readable(private) and not world_readable(private / "f")
    os.chmod(public / "f", 0o600)
    assert not world_readable(public / "f")
    shutil.rmtree(base)
