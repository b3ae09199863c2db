"""grader/sandbox.py: the checks and walls it puts up for a child (world_readable here; the
walls themselves are proved by the corpus, tests/test_corpus.py)."""
import json
import os
import pathlib
import shutil
import tempfile

import pytest

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
