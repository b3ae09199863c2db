"""Turning command-line SUBs (.py files, folders, .zips, instructors' exports) into submissions.

`load(path)` reads one submission; `assign_names(subs)` gives every Submission of a batch a
unique, safe name that no other submission would have had and that is none of the batch's own
files. The command line's SUBs reach this module through grader.exports (which knows what an
instructor's export is); this module never imports it back.

Only regular files are read: links are refused, archives are checked member by member (no
absolute paths, no `..`, no links, bounded sizes) before anything is read, and the staged
copy is readable by the sandbox user but writable by nobody but the grader.
"""
import hashlib
import os
import re
import stat
import unicodedata
import zipfile
from dataclasses import dataclass, field

MODULE = "two_layer_net.py"
NOTEBOOK = "two_layer_net.ipynb"
ASSIGNMENT_FILES = {MODULE, NOTEBOOK, "submission.zip", "two_layer_net.zip"}  # named by folder
RESERVED = {"grades.csv", "scores.png", "answers.html", "manual.csv",  # the batch's files in --out
            "canvas.csv", "gradescope.csv", "index.html", "manual-merged.json", "similar.csv",
            "similar.html"}
MAX_NAME = 100
MAX_ARCHIVE_BYTES = 50 << 20
MAX_UNPACKED_BYTES = 50 << 20
MAX_FILE_BYTES = 20 << 20
MAX_MEMBERS = 500
MAX_DEPTH = 3
KEPT_SUFFIXES = (".py", ".ipynb")
IGNORED_DIRS = {"__MACOSX", "__pycache__", ".ipynb_checkpoints", ".git"}
_WINDOWS_DEVICES = re.compile(r"(con|prn|aux|nul|com\d|lpt\d)(\..*)?")


class SubmissionError(ValueError):
    """A submission that cannot be graded; the message says what was expected."""


class UsageError(ValueError):
    """A command-line SUB the grader cannot use at all (does not exist, cannot be read): exit 2
    before grading; the message names the path and the fix."""


@dataclass
class Submission:
    name: str
    source: str
    files: dict = field(default_factory=dict)  # relative path -> bytes, from the module's folder
    error: str = None
    identity: dict = field(default_factory=dict)  # student, email, sid, submitted_at, late, members
    notes: list = field(default_factory=list)  # for the instructor, not the student's doing
    named_by: str = "path"  # "sid" when the name is a student id from an export: such names win
    origin: str = None  # the command-line SUB it came from, as origin_id

    @property
    def content_hash(self):
        digest = hashlib.sha256()
        for path in sorted(self.files):
            digest.update(path.encode() + b"\0" + hashlib.sha256(self.files[path]).digest())
        return digest.hexdigest()

    @property
    def has_notebook(self):
        return NOTEBOOK in self.files


def origin_id(path):
    """A stand-in for a command-line SUB that reveals nothing of the instructor's paths
    (results.json may be shown to students)."""
    return hashlib.sha256(os.path.abspath(path).encode()).hexdigest()[:16]


def natural_name(path):
    """The name a SUB would have alone: a folder's name; for a file with the assignment's own
    name, its folder's; otherwise the file's stem (a file the grader cannot read keeps its
    suffix, so its row says what it was)."""
    path = os.path.abspath(path)
    base = os.path.basename(path)
    if os.path.isdir(path) and not os.path.islink(path):
        return base
    parent = os.path.basename(os.path.dirname(path))
    if base.lower() in ASSIGNMENT_FILES and parent:
        return parent
    if base.lower().endswith((".py", ".zip")):
        return base.rsplit(".", 1)[0]
    return base


def safe_name(text, fallback="submission"):
    """`text` as a folder name on any filesystem: ASCII letters, digits, `.`, `_` and `-`, not
    starting or ending with `.`, `_` or `-`, at most MAX_NAME characters, never empty."""
    text = unicodedata.normalize("NFKD", str(text)).encode("ascii", "ignore").decode()
    text = re.sub(r"[^A-Za-z0-9._-]+", "_", text)[:MAX_NAME].strip("._-")
    if _WINDOWS_DEVICES.fullmatch(text.lower()):
        text = "_" + text
    return text or fallback


def _unreserved(name):
    """`name`, changed when it is one of the batch's own files in the results folder."""
    if name.lower() in RESERVED or name.startswith("."):
        name = name.replace(".", "_").strip("_") or "submission"
    return name


def assign_names(subs):
    """Make every name safe and unique (case-insensitively) in place, keeping the order.

    A name that is a student id from an export (`named_by == "sid"`) is claimed first, then the
    others in order; the first holder of a name keeps it, the others get `-2`, `-3`, ...,
    skipping every name some submission has naturally, so a suffix never takes another
    submission's name. A renamed row says so in its notes (a flag in grades.csv).
    """
    natural = [_unreserved(safe_name(sub.name)) for sub in subs]
    taken = {name.lower() for name in natural}
    claimed, repeats = {}, []
    order = sorted(range(len(subs)), key=lambda i: subs[i].named_by != "sid")
    for i in order:
        sub, name = subs[i], natural[i]
        if name.lower() in claimed:
            repeats.append((sub, name))
        else:
            claimed[name.lower()] = sub
            sub.name = name
    for sub, name in repeats:
        number = 2
        while True:
            suffix = f"-{number}"
            candidate = name[:MAX_NAME - len(suffix)].rstrip("._-") + suffix
            if candidate.lower() not in taken:
                break
            number += 1
        taken.add(candidate.lower())
        sub.name = candidate
        holder = claimed[name.lower()]
        whose = " (a student id)" if holder.named_by == "sid" else ""
        sub.notes.append(f"renamed: row '{candidate}' would have been '{name}', which is another "
                         f"submission's name{whose}; check who this is before uploading grades")
    assert len({sub.name.lower() for sub in subs}) == len(subs), "assign_names left a duplicate"
    return subs


def load(path, name=None):
    """A Submission for `path`; `error` is set (and files empty) when it cannot be graded.

    Messages name the submission by its own name (the folder's or file's, as the instructor's
    command line or export gave it) and its files by their path inside it, never by a path of
    the instructor's machine: results.json and feedback.html go to students."""
    submission = Submission(safe_name(natural_name(path) if name is None else name),
                            os.path.abspath(path))
    label = os.path.basename(os.path.abspath(path))
    try:
        submission.files = _read(path, label)
    except SubmissionError as e:
        submission.error = str(e)
    except OSError as e:
        submission.error = f"'{label}' cannot be read ({why(e)})"
    return submission


def why(error):
    """An OSError in words without the path it names (str() of one holds the full path)."""
    return error.strerror or type(error).__name__


def _read(path, label):
    if os.path.islink(path):
        raise SubmissionError(f"submission '{label}' is a link; pass the file or folder itself")
    if os.path.isdir(path):
        return _from_folder(path, label)
    if not os.path.isfile(path):
        raise SubmissionError(f"submission '{label}' does not exist; pass a .py file, a .zip or a "
                              f"folder holding {MODULE}")
    lower = path.lower()
    if lower.endswith(".py"):
        return {MODULE: read_file(path, label)}
    if lower.endswith(".zip"):
        return from_zip(path)
    raise SubmissionError(f"submission '{label}' is not a .py, .zip or folder; "
                          f"pass the folder that holds {MODULE}")


def read_file(path, shown=None):
    """The bytes of the regular file at `path`, refusing links and files over the limit;
    messages call it `shown` (its name inside the submission; by default the file's name)."""
    shown = os.path.basename(path) if shown is None else shown
    info = os.lstat(path)
    if not stat.S_ISREG(info.st_mode):
        raise SubmissionError(f"'{shown}' is not a regular file")
    if info.st_size > MAX_FILE_BYTES:
        raise SubmissionError(f"'{shown}' has {info.st_size} bytes, more than the "
                              f"{MAX_FILE_BYTES >> 20} MB a submitted file may have")
    with open(path, "rb") as f:
        return f.read(MAX_FILE_BYTES + 1)


def _module_folders(relpaths):
    return sorted({os.path.dirname(p) for p in relpaths if os.path.basename(p) == MODULE})


def _pick_module_folder(relpaths, where):
    """The one folder (relative, '' for the top) that holds two_layer_net.py."""
    folders = _module_folders(relpaths)
    if not folders:
        raise SubmissionError(f"{where} holds no {MODULE}; submit the file with exactly that name")
    if len(folders) > 1:
        listed = ", ".join(f or "." for f in folders)
        raise SubmissionError(f"{where} holds {MODULE} in several folders ({listed}), so it is "
                              f"not one submission; submit exactly one {MODULE} (with its "
                              "notebook), at the top or in one folder")
    return folders[0]


def walk(path):
    """Relative paths of the files under `path`, MAX_DEPTH folders deep, ignored folders skipped."""
    relpaths = []
    for root, dirs, names in os.walk(path):
        depth = os.path.relpath(root, path).count(os.sep) + (root != path)
        dirs[:] = sorted(d for d in dirs if d not in IGNORED_DIRS and depth < MAX_DEPTH)
        relpaths += [os.path.relpath(os.path.join(root, n), path) for n in sorted(names)]
    return relpaths


def _from_folder(path, label=None):
    """The kept files of the folder `path`; messages call it `label` (its name) and its files
    `label/relative path`."""
    label = os.path.basename(os.path.abspath(path)) if label is None else label
    relpaths = walk(path)
    if not _module_folders(relpaths):
        zips = [rel for rel in relpaths if os.sep not in rel and rel.lower().endswith(".zip")]
        if len(zips) == 1:  # a student's folder holding only their submission.zip
            full = os.path.join(path, zips[0])
            if os.path.islink(full):
                raise SubmissionError(f"'{label}/{zips[0]}' is a link; submit the file itself")
            return from_zip(full)
    folder = _pick_module_folder(relpaths, f"folder '{label}'")
    files = {}
    for rel in relpaths:
        if os.path.dirname(rel) == folder and rel.endswith(KEPT_SUFFIXES):
            full = os.path.join(path, rel)
            shown = f"{label}/{rel.replace(os.sep, '/')}"
            if os.path.islink(full):
                raise SubmissionError(f"'{shown}' is a link; submit the file itself")
            files[os.path.basename(rel)] = read_file(full, shown)
    return files


def from_zip(path):
    size = os.path.getsize(path)
    if size > MAX_ARCHIVE_BYTES:
        raise SubmissionError(f"archive '{os.path.basename(path)}' has {size} bytes, more than "
                              f"the {MAX_ARCHIVE_BYTES >> 20} MB allowed")
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile as e:
        raise SubmissionError(f"'{os.path.basename(path)}' is not a readable zip archive ({e})")
    except OSError as e:
        raise SubmissionError(f"'{os.path.basename(path)}' is not a readable zip archive "
                              f"({why(e)})") from None
    with archive:
        members = archive.infolist()
        if len(members) > MAX_MEMBERS:
            raise SubmissionError(f"archive '{os.path.basename(path)}' has {len(members)} members, "
                                  f"more than {MAX_MEMBERS}")
        return files_from_members(archive, members, f"archive '{os.path.basename(path)}'")


def files_from_members(archive, members, where, prefix=""):
    """The kept files of the submission made of `members` (names under `prefix`), after every
    member passed the checks; `where` names it in messages ("archive 'x.zip'")."""
    for info in members:
        check_member(info, where)
    names = [i.filename[len(prefix):] for i in members if not i.is_dir()
             and not set(i.filename.split("/")) & IGNORED_DIRS]
    folder = _pick_module_folder(names, where)
    files, total = {}, 0
    for info in members:
        name = info.filename[len(prefix):]
        if info.is_dir() or os.path.dirname(name) != folder or not name.endswith(KEPT_SUFFIXES):
            continue
        data = read_member(archive, info, where)
        total += len(data)
        if total > MAX_UNPACKED_BYTES:
            raise SubmissionError(f"{where} unpacks to more than {MAX_UNPACKED_BYTES >> 20} MB")
        files[os.path.basename(name)] = data
    return files


def check_member(info, where):
    """Raise SubmissionError for a member with an absolute or escaping path, a link, or a
    declared size over the limit."""
    name = info.filename
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        raise SubmissionError(f"{where} has a member with an absolute path ('{name}'); "
                              "zip the folder's contents with relative paths")
    if ".." in re.split(r"[/\\]", name) or "\\" in name:
        raise SubmissionError(f"{where} has a member '{name}' that would land outside "
                              "its folder; zip the folder's contents with relative paths")
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        raise SubmissionError(f"{where} has a link '{name}'; submit regular files only")
    if info.file_size > MAX_FILE_BYTES:
        raise SubmissionError(f"{where} member '{name}' unpacks to {info.file_size} "
                              f"bytes, more than {MAX_FILE_BYTES >> 20} MB")


def read_member(archive, info, where):
    """The member's bytes, reading no more than the limit whatever its header claims."""
    try:
        with archive.open(info) as f:
            data = f.read(MAX_FILE_BYTES + 1)
    except OSError as e:
        raise SubmissionError(f"{where} member '{info.filename}' cannot be read ({why(e)})")
    except (zipfile.BadZipFile, RuntimeError, NotImplementedError, EOFError) as e:
        raise SubmissionError(f"{where} member '{info.filename}' cannot be read ({e})")
    if len(data) > MAX_FILE_BYTES:
        raise SubmissionError(f"{where} member '{info.filename}' "
                              f"unpacks to more than {MAX_FILE_BYTES >> 20} MB")
    return data


def stage(submission, folder):
    """Write the submission's files into `folder` (created 0755, files 0644); returns the
    module's path."""
    os.makedirs(folder, mode=0o755)
    os.chmod(folder, 0o755)
    for name, data in submission.files.items():
        target = os.path.join(folder, name)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(target, 0o644)
    return os.path.join(folder, MODULE)
