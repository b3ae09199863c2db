"""The walls and the process model, against the submissions of tests/corpus_walls.py, with
namespaces and without (GRADER_NO_NAMESPACES, the fallback of Docker's default profile).

Every entry is graded in one slot, one after the other, so that each attack meets what the
entries before it left: their data in memory, their keys in the keyring, their files."""
import ctypes
import json
import os
import re
import secrets
import subprocess
import sys

import pytest

import corpus_walls
import grading_corpus
from conftest import ROOT

pytestmark = [pytest.mark.slow, pytest.mark.root,
              pytest.mark.skipif(os.geteuid() != 0, reason="sandbox uids and namespaces need root")]

MUST_PASS_ALL = {"w09_shadows_stdlib", "w10_own_linear_classifier", "w13_correct_after"}
PLANTED = "two-layer-net-planted"  # a key an earlier grader could have left in the uid's keyring


def grade(tmp_path, entries, env):
    """Grade `entries` in order in one slot; {entry: {test: result}}."""
    folder = tmp_path / "subs"
    folder.mkdir(exist_ok=True)
    paths = [grading_corpus.write(e, str(folder)) for e in entries]
    out = tmp_path / "out"
    result = subprocess.run([sys.executable, "grade.py", *paths, "--out", str(out), "--jobs", "1",
                             "--timeout", "60", "--memory", "600", "--force"], cwd=ROOT,
                            capture_output=True, text=True, timeout=900, env={**os.environ, **env})
    assert result.returncode == 0, result.stderr[-2000:]
    results = {}
    for entry in entries:
        with open(out / entry.name / "results.json") as f:
            results[entry.name] = {t["name"]: t for t in json.load(f)["tests"]}
    return results


def as_uid(uid, call):
    """call(libc) -> int, run as `uid` in a throw-away process; returns what it returned."""
    pid = os.fork()
    if pid == 0:
        try:
            os.setresgid(uid, uid, uid)
            os.setresuid(uid, uid, uid)
            os._exit(call(ctypes.CDLL(None, use_errno=True)))
        finally:
            os._exit(99)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def plant_key(uid, description, value):
    """Store a key in `uid`'s user keyring, as an earlier grader's child could have."""
    added = as_uid(uid, lambda libc: int(libc.syscall(248, b"user", description.encode(), value,
                                                      len(value), -4) <= 0))
    assert added == 0, "could not plant the key"


def key_present(uid, description):
    """True when `uid`'s user keyring holds a key called `description` (KEYCTL_SEARCH)."""
    return as_uid(uid, lambda libc: int(libc.syscall(250, 10, -4, b"user", description.encode(),
                                                     0) > 0)) == 1


@pytest.fixture(scope="module", params=["namespaces", "fallback"])
def walls(request, tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp(request.param)
    uid = 300_000 + secrets.randbelow(100_000) * 4
    env = {"GRADER_SANDBOX_UID": str(uid)}
    if request.param == "fallback":
        env["GRADER_NO_NAMESPACES"] = "1"
    plant_key(uid, PLANTED, b"from an earlier batch")
    head, tail = "marker-" + secrets.token_hex(8), secrets.token_hex(8)
    entries = corpus_walls.entries(head, tail, namespaces=request.param == "namespaces")
    results = grade(tmp_path, entries, env)
    later = grade(tmp_path_factory.mktemp(request.param + "-later"),
                  [grading_corpus.Entry("later_reader", "reads the slot's keyring in a later batch",
                                      source=corpus_walls.key_reader(["two-layer-net-leak",
                                                                      PLANTED]))], env)
    return {"entries": entries, "results": {**results, **later}, "mode": request.param,
            "planted_left": key_present(uid, PLANTED)}


def test_each_attack_fails_on_its_own_test_with_the_systems_refusal(walls):
    for entry in walls["entries"]:
        tests = walls["results"][entry.name]
        for name, pattern in entry.expect.items():
            assert tests[name]["status"] == "failed", (entry.name, name, tests[name]["output"])
            assert re.search(pattern, tests[name]["output"]), \
                (entry.name, name, tests[name]["output"])
        assert tests["forward"]["status"] == "passed", (entry.name, tests["forward"]["output"])


def test_a_test_child_can_start_no_program(walls):
    for name in ("w03_posix_spawn", "w04_posix_system", "w05_fork_exec", "w06_multiprocessing"):
        output = walls["results"][name]["predict"]["output"]
        assert "Operation not permitted" in output or "could not start" in output, (name, output)


def test_no_child_finds_an_earlier_submissions_data_in_its_memory(walls):
    output = walls["results"]["w02_scan"]["predict"]["output"]
    assert "marker copies found: 0;" in output, output
    assert "control copies: 0" not in output, f"the scan must see the child's own memory: {output}"


def test_nothing_in_the_keyring_outlives_a_child(walls):
    for name in ("w08_keyring_reader", "later_reader"):
        predict = walls["results"][name]["predict"]
        assert predict["status"] == "passed", (name, predict["output"])
    assert not walls["planted_left"], "a key left in the sandbox uid's keyring before the batch"


def test_submission_files_never_shadow_the_standard_library_and_its_own_modules_still_load(walls):
    for name in MUST_PASS_ALL:
        failed = {t: r["output"] for t, r in walls["results"][name].items() if r["status"] != "passed"}
        assert not failed, (name, failed)


def test_writing_is_bounded_and_the_next_submission_is_graded_normally(walls):
    names = ["w11_fills_one_file"] + (["w12_fills_many_files"] if walls["mode"] == "namespaces" else [])
    for name in names:
        predict = walls["results"][name]["predict"]
        assert "timed out" not in predict["output"], (name, predict["output"])
    assert all(r["status"] == "passed" for r in walls["results"]["w13_correct_after"].values())
