"""Turning a command-line SUB (a .py file, a folder or a .zip) into a staged copy to grade.

Only regular files are read: links are refused, archives are checked member by member (no
absolute paths, no `..`, no links, bounded sizes) before anything is written, and the staged
copy is readable by the sandbox user but writable by nobody but the grader.
"""
import hashlib
import os
import re
import stat
import zipfile
from dataclasses import dataclass, field

MODULE = "two_layer_net.py"
NOTEBOOK = "two_layer_net.ipynb"
MAX_ARCHIVE_BYTES = 50 << 20
MAX_UNPACKED_BYTES = 50 << 20
MAX_FILE_BYTES = 20 << 20
MAX_MEMBERS = 500
MAX_DEPTH = 3
KEPT_SUFFIXES = (".py", ".ipynb")
IGNORED_DIRS = {"__MACOSX", "__pycache__", ".ipynb_checkpoints", ".git"}


class SubmissionError(ValueError):
    """A submission that cannot be graded; the message says what was expected."""


@dataclass
class Submission:
    name: str
    source: str
    files: dict = field(default_factory=dict)  # relative path -> bytes, from the module's folder
    error: str = None

    @property
    def content_hash(self):
        digest = hashlib.sha256()
        for path in sorted(self.files):
            digest.update(path.encode() + b"\0" + hashlib.sha256(self.files[path]).digest())
        return digest.hexdigest()

    @property
    def has_notebook(self):
        return NOTEBOOK in self.files


def submission_name(path):
    """The folder's name, or the file's stem for a .py or .zip, made safe for a folder name."""
    path = os.path.abspath(path)
    base = os.path.basename(path.rstrip(os.sep))
    if os.path.isfile(path) and base.lower().endswith((".py", ".zip")):
        base = base.rsplit(".", 1)[0]
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", base).strip(".") or "submission"
    return safe[:100]


def load(path):
    """A Submission for `path`; `error` is set (and files empty) when it cannot be graded."""
    submission = Submission(submission_name(path), os.path.abspath(path))
    try:
        submission.files = _read(path)
    except SubmissionError as e:
        submission.error = str(e)
    return submission


def _read(path):
    if os.path.islink(path):
        raise SubmissionError(f"submission '{path}' is a link; pass the file or folder itself")
    if os.path.isdir(path):
        return _from_folder(path)
    if not os.path.isfile(path):
        raise SubmissionError(f"submission '{path}' does not exist; pass a .py file, a .zip or a "
                              f"folder holding {MODULE}")
    lower = path.lower()
    if lower.endswith(".py"):
        return {MODULE: _read_file(path)}
    if lower.endswith(".zip"):
        return _from_zip(path)
    raise SubmissionError(f"submission '{os.path.basename(path)}' is not a .py, .zip or folder; "
                          f"pass the folder that holds {MODULE}")


def _read_file(path):
    info = os.lstat(path)
    if not stat.S_ISREG(info.st_mode):
        raise SubmissionError(f"'{path}' is not a regular file")
    if info.st_size > MAX_FILE_BYTES:
        raise SubmissionError(f"'{path}' has {info.st_size} bytes, more than the "
                              f"{MAX_FILE_BYTES >> 20} MB a submitted file may have")
    with open(path, "rb") as f:
        return f.read(MAX_FILE_BYTES + 1)


def _pick_module_folder(relpaths, where):
    """The one folder (relative, '' for the top) that holds two_layer_net.py."""
    folders = sorted({os.path.dirname(p) for p in relpaths if os.path.basename(p) == MODULE})
    if not folders:
        raise SubmissionError(f"{where} holds no {MODULE}; submit the file with exactly that name")
    if len(folders) > 1:
        raise SubmissionError(f"{where} holds {MODULE} in several folders ({', '.join(f or '.' for f in folders)}); "
                              "submit only one")
    return folders[0]


def _from_folder(path):
    relpaths = []
    for root, dirs, names in os.walk(path):
        depth = os.path.relpath(root, path).count(os.sep) + (root != path)
        dirs[:] = [d for d in dirs if d not in IGNORED_DIRS and depth < MAX_DEPTH]
        relpaths += [os.path.relpath(os.path.join(root, n), path) for n in names]
    folder = _pick_module_folder(relpaths, f"folder '{path}'")
    files = {}
    for rel in relpaths:
        if os.path.dirname(rel) == folder and rel.endswith(KEPT_SUFFIXES):
            full = os.path.join(path, rel)
            if os.path.islink(full):
                raise SubmissionError(f"'{full}' is a link; submit the file itself")
            files[os.path.basename(rel)] = _read_file(full)
    return files


def _from_zip(path):
    size = os.path.getsize(path)
    if size > MAX_ARCHIVE_BYTES:
        raise SubmissionError(f"archive '{os.path.basename(path)}' has {size} bytes, more than "
                              f"the {MAX_ARCHIVE_BYTES >> 20} MB allowed")
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as e:
        raise SubmissionError(f"'{os.path.basename(path)}' is not a readable zip archive ({e})")
    with archive:
        members = archive.infolist()
        if len(members) > MAX_MEMBERS:
            raise SubmissionError(f"archive '{os.path.basename(path)}' has {len(members)} members, "
                                  f"more than {MAX_MEMBERS}")
        for info in members:
            _check_member(info, path)
        names = [i.filename for i in members if not i.is_dir()
                 and not set(i.filename.split("/")) & IGNORED_DIRS]
        folder = _pick_module_folder(names, f"archive '{os.path.basename(path)}'")
        files, total = {}, 0
        for info in members:
            name = info.filename
            if info.is_dir() or os.path.dirname(name) != folder or not name.endswith(KEPT_SUFFIXES):
                continue
            data = _read_member(archive, info, path)
            total += len(data)
            if total > MAX_UNPACKED_BYTES:
                raise SubmissionError(f"archive '{os.path.basename(path)}' unpacks to more than "
                                      f"{MAX_UNPACKED_BYTES >> 20} MB")
            files[os.path.basename(name)] = data
    return files


def _check_member(info, path):
    name = info.filename
    archive = os.path.basename(path)
    if name.startswith("/") or name.startswith("\\") or re.match(r"^[A-Za-z]:", name):
        raise SubmissionError(f"archive '{archive}' has a member with an absolute path ('{name}'); "
                              "zip the folder's contents with relative paths")
    if ".." in re.split(r"[/\\]", name) or "\\" in name:
        raise SubmissionError(f"archive '{archive}' has a member '{name}' that would land outside "
                              "its folder; zip the folder's contents with relative paths")
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        raise SubmissionError(f"archive '{archive}' has a link '{name}'; submit regular files only")
    if info.file_size > MAX_FILE_BYTES:
        raise SubmissionError(f"archive '{archive}' member '{name}' unpacks to {info.file_size} "
                              f"bytes, more than {MAX_FILE_BYTES >> 20} MB")


def _read_member(archive, info, path):
    """The member's bytes, reading no more than the limit whatever its header claims."""
    try:
        with archive.open(info) as f:
            data = f.read(MAX_FILE_BYTES + 1)
    except (zipfile.BadZipFile, OSError, RuntimeError, NotImplementedError, EOFError) as e:
        raise SubmissionError(f"archive '{os.path.basename(path)}' member '{info.filename}' "
                              f"cannot be read ({e})")
    if len(data) > MAX_FILE_BYTES:
        raise SubmissionError(f"archive '{os.path.basename(path)}' member '{info.filename}' "
                              f"unpacks to more than {MAX_FILE_BYTES >> 20} MB")
    return data


def stage(submission, folder):
    """Write the submission's files into `folder` (created 0755, files 0644); returns the module path."""
    os.makedirs(folder, mode=0o755)
    os.chmod(folder, 0o755)
    for name, data in submission.files.items():
        target = os.path.join(folder, name)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(target, 0o644)
    return os.path.join(folder, MODULE)
