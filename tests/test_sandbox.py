"""grader/sandbox.py: the checks and walls it puts up for a child (world_readable here; the
walls themselves are proved by the corpus, tests/test_corpus.py)."""
import os
import pathlib
import shutil
import tempfile

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
