"""grade.py against its corpus of broken and hostile submissions (tests/grading_corpus.py):
the whole corpus graded in one batch, each entry's verdict, and what the batch leaves behind."""
import csv
import json
import os
import re
import secrets
import tempfile

import pytest

import corpus_honest
import grade
import grading_corpus
from conftest import ROOT
from grader import rubric

pytestmark = pytest.mark.slow

# Short limits keep the corpus fast: the endless loops cost one timeout each. 8 s, not less:
# torch.func's first use alone takes seconds on a loaded machine.
CORPUS_TIMEOUT = "8"
CORPUS_MEMORY_MB = "400"


def selected(entries):
    """The entries to grade: all of them, or those named in $CORPUS_ONLY (comma-separated), so
    that a change to a few entries can be checked without grading the whole corpus."""
    only = set(filter(None, os.environ.get("CORPUS_ONLY", "").split(",")))
    return [e for e in entries if not only or e.name in only or e.name in ALWAYS]


ALWAYS = ("correct", "half_regulariser", "predict_argmin", "train_decays_every_iteration", "stubs",
          "empty_folder")


def all_entries(instructor_files, results_dir):
    return selected(grading_corpus.entries(instructor_files, results_dir) + corpus_honest.entries())


@pytest.fixture(scope="module")
def host_objects():
    """What a child must not reach on the host (grading_corpus.host_objects)."""
    with grading_corpus.host_objects():
        yield


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
    entries = all_entries(instructor_files, str(out))
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


def test_batch_exits_one_and_writes_every_result(corpus):
    assert corpus["code"] == 1  # the corpus holds submissions that cannot be graded (contract §3)
    names = {grading_corpus.result_name(e) for e in corpus["entries"]}
    on_disk = {p.name for p in corpus["out"].iterdir() if p.name != ".grade.lock"}
    assert on_disk == names | {"grades.csv", "scores.png", "index.html"}, \
        "a submission wrote into the results folder"


@pytest.mark.parametrize("index", range(len(all_entries([], "/nonexistent"))))
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
        elif entry.name in ("correct", "half_regulariser", "predict_argmin") or entry.name in {
                e.name for e in corpus_honest.entries()}:
            assert got == "", (entry.name, got)


@pytest.mark.root
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
    assert list(rows[0]) == ["name", *rubric.RUBRIC, "total", "max_points", "percent", "flags"]
    by_name = {r["name"]: r for r in rows}
    assert by_name["correct"]["total"] == "100"
    assert by_name["predict_argmin"]["predict"] == "0" and by_name["predict_argmin"]["total"] == "90"


@pytest.mark.root
@pytest.mark.skipif(os.geteuid() != 0, reason="children get their own uid only under root")
def test_no_process_of_a_submission_survives_the_batch(corpus):
    assert grading_corpus.processes_of(range(corpus["uid_base"], corpus["uid_base"] + 100)) == []


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
