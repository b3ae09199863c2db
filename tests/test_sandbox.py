"""grader/sandbox.py and grader/seccomp.py: the checks and walls they put up for a child
(world_readable and the seccomp filter here; the walls at work are proved by the corpora,
tests/test_corpus.py and tests/test_walls.py)."""
import json
import os
import pathlib
import shutil
import tempfile

import pytest

from grader import seccomp
from grader.sandbox import world_readable


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


@pytest.mark.slow
@pytest.mark.root
@pytest.mark.skipif(os.geteuid() != 0, reason="memory cgroups need root")
def test_shared_memory_a_child_left_never_counts_against_the_next_child(tmp_path):
    """The kernel frees a finished child's IPC namespace (and the shared memory pinned in it) a
    little later; each child has a memory cgroup of its own, so the next child, here an honest
    submission graded right after in the same slot, starts with its whole --memory."""
    import grade
    import grading_corpus

    hog = next(e for e in grading_corpus.entries([], "/nonexistent") if e.name == "sysv_shm_over_the_limit")
    paths = []
    for i in range(3):
        paths.append(str(tmp_path / f"hog{i}.py"))
        pathlib.Path(paths[-1]).write_text(hog.source)
        paths.append(str(tmp_path / f"honest{i}.py"))
        pathlib.Path(paths[-1]).write_text(grading_corpus.BASE)
    out = tmp_path / "out"
    assert grade.main([*paths, "--out", str(out), "--jobs", "1", "--memory", "400"]) == 0
    for i in range(3):
        result = json.loads((out / f"honest{i}" / "results.json").read_text())
        assert result["score"] == 100, [t["output"] for t in result["tests"] if t["status"] != "passed"]


def _in_filtered_child(no_new_processes, probe):
    """probe() -> str, run in a forked process behind the seccomp filter; its answer."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read)
            seccomp.install(no_new_processes)
            os.write(write, probe().encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as f:
        answer = f.read().decode()
    os.waitpid(pid, 0)
    return answer


def _try(call):
    try:
        call()
        return "ok"
    except OSError as error:
        return os.strerror(error.errno)


def _add_key():
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.syscall(248 if os.uname().machine == "x86_64" else 217, b"user", b"seccomp-test",
                    b"v", 1, -4) < 0:
        raise OSError(ctypes.get_errno(), "add_key")


def _fork():
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)


def _spawn():
    import sys

    pid = os.posix_spawn(sys.executable, [sys.executable, "-c", "pass"], {})
    os.waitpid(pid, 0)


def _thread():
    import threading

    box = []
    thread = threading.Thread(target=box.append, args=(1,))
    thread.start()
    thread.join()
    assert box == [1]


@pytest.mark.skipif(not seccomp.available(), reason="no seccomp filter for this machine")
@pytest.mark.parametrize("no_new_processes", [True, False])
def test_seccomp_refuses_the_keyring_always_and_new_programs_to_a_test_child(no_new_processes):
    answer = _in_filtered_child(no_new_processes, lambda: "|".join(
        _try(call) for call in (_add_key, _fork, _spawn, _thread)))
    refused = os.strerror(1)  # EPERM
    keyring, fork, spawn, thread = answer.split("|")
    assert keyring == refused
    assert thread == "ok", "threads stay allowed"
    if no_new_processes:
        assert fork == spawn == refused
    else:
        assert fork == spawn == "ok", "a notebook's child must still start its kernel"
