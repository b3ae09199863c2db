"""The command line's SUBs, and the folders of many submissions instructors download, expanded
into one Submission each.

`collect(paths)` is the batch's entry point: every SUB becomes one Submission (grader.submission
reads it), or, when it is an export of many, one a student. The arrow runs one way: this module
builds on grader.submission, which never imports it. Three layouts are recognised:

- Gradescope's "Export Submissions", by its exact layout: `submission_metadata.yml` at the root
  (of the folder, of the one folder it was unzipped into, or of the .zip itself), every other
  entry there a folder `submission_<digits>`, and every key of the metadata such a name (or an
  export named as one with `--export`). Anything else is one submission, whatever files it
  holds: a student's zip with a metadata file and folders in it speaks for nobody else. Ruby writes the YAML: each entry maps to `:submitters:` (a list of
  `:name:`, `:sid:`, `:email:`), `:created_at:`, `:score:`, `:results:`, `:history:`; PyYAML's
  safe_load reads a symbol key as a string with a leading colon (':submitters').
- Canvas's "Download Submissions": a flat folder of `<name>_[LATE_]<user id>_<file id>_<file>`,
  where <name> is the student's sortable name keeping only letters, digits and `_`, lowercased,
  and <file> the name the student uploaded (`-1`, `-2` before the extension when a file of that
  name was uploaded before). Text and URL entries are `<name>_[LATE_]<user id>_text.html`
  and `..._link.html`.
- A folder of student folders: no two_layer_net.py at its top, two or more subfolders holding a
  submission; each subfolder is one, named after it.

The metadata is read without aliases (a "billion laughs" file is refused, not expanded), at most
MAX_FILE_BYTES, and a name, sid or email longer than MAX_FIELD characters is left out (a row
whose submitters are all left out says so).

A row is named after its student: Gradescope's first submitter's sid (unique in a roster, stable
across re-exports and name changes, and what gradebooks join on), else their name, else their
email's user part; Canvas's <name>, else the user id. Who it is goes in `identity`, for the
gradebook: `student`, `email`, `sid` (all submitters of a group, joined with "; "), `members`
(one {student, email, sid} a submitter, so that each gets their own gradebook row),
`submitted_at` (ISO 8601) and `late` where the export says; a Canvas row's user id goes in
`canvas_id` (never in `sid`: it is not the school's student id).
"""
import os
import re
import sys
import zipfile

import yaml

from grader import submission
from grader.submission import (
    IGNORED_DIRS,
    KEPT_SUFFIXES,
    MODULE,
    NOTEBOOK,
    Submission,
    SubmissionError,
    UsageError,
    assign_names,
    load,
)

METADATA = "submission_metadata.yml"
GRADESCOPE_ENTRY = re.compile(r"submission_[0-9]+")
MAX_FIELD = 200  # characters of a submitter's name, sid or email
MAX_EXPORT_BYTES = 4 << 30
MAX_EXPORT_MEMBERS = 200_000
CANVAS_UPLOAD = re.compile(r"(?:(?P<student>.+?)_)??(?P<late>late_)?(?P<user>[0-9]+)_"
                           r"(?P<file>[0-9]+)_(?P<original>.+)", re.IGNORECASE)
CANVAS_ENTRY = re.compile(r"(?:(?P<student>.+?)_)??(?P<late>late_)?(?P<user>[0-9]+)_"
                          r"(?P<kind>text|link)\.html", re.IGNORECASE)
RESUBMITTED = re.compile(r"(?P<stem>.+)-[0-9]+(?P<ext>\.(?:py|ipynb|zip))", re.IGNORECASE)


def collect(paths, *, exports=(), single=False):
    """Every command-line SUB expanded into submissions with unique, safe, non-reserved names.

    A SUB is one submission, or an export of many; `exports` are SUBs the instructor named as
    Gradescope exports (`--export`), read as such whatever their layout; with `single` (the
    Gradescope autograder: the upload is one submission) nothing is expanded. The result keeps
    the order of `paths` and is the same for the same list. Raises UsageError, before reading
    anything, for a SUB that does not exist or cannot be read, or an `--export` that is not one.
    """
    named = {os.path.abspath(p) for p in exports}
    for path in paths:
        check_usable(path)
    subs = []
    for path in paths:
        forced = os.path.abspath(path) in named
        origin = submission.origin_id(path)
        expanded = None if single else expand(path, forced=forced)
        if forced and expanded is None:
            raise UsageError(f"--export '{path}' holds no {METADATA} at its top; pass the "
                             "folder or .zip Gradescope's \"Export Submissions\" gave you")
        found = [load(path)] if expanded is None else expanded
        if expanded is None and not single:
            _say_nested(path, found[0])
        for sub in found:
            sub.origin = origin
        subs += found
    assign_names(subs)
    return subs


def _say_nested(path, sub):
    """A folder SUB whose two_layer_net.py sits in its one subfolder is one submission named
    after the folder given (the contract: a folder's name says whose it is; only a folder of
    two or more student folders is read as many). That may be a class folder holding one
    student's folder, so say what was done, on the terminal and as the row's flag."""
    if sub.error or not _is_dir(path):
        return
    folders = sorted({os.path.dirname(rel) for rel in submission.walk(path)
                      if os.path.basename(rel) == MODULE})
    if len(folders) != 1 or not folders[0]:
        return
    inner = folders[0].replace(os.sep, "/")
    note = (f"graded as one submission named '{sub.name}' (the folder given), although its "
            f"{MODULE} is in its subfolder '{inner}'; if '{sub.name}' is a folder of student "
            f"folders, grade '{sub.name}/{inner}' instead to name the row after it")
    sub.notes.append(note)
    print(f"grade.py: note: {note}", file=sys.stderr)


def check_usable(path):
    """Raise UsageError for a SUB that does not exist or that the grader cannot read."""
    if not path or not os.path.lexists(path):
        raise UsageError(f"submission '{path}' does not exist; pass a .py file, a .zip, a folder "
                         f"holding {MODULE} or a folder of submissions (an export)")
    if os.path.islink(path):
        return  # a link is the submission's problem, reported in its row
    need = os.R_OK | (os.X_OK if os.path.isdir(path) else 0)
    if not os.access(path, need):
        raise UsageError(f"submission '{path}' cannot be read by the grader (permissions); "
                         "make it readable and run again")


def expand(path, forced=False):
    """The submissions in `path` when it is an export of many; None when it is one submission.
    `forced`: the instructor named it an export, so its layout is not checked."""
    if os.path.islink(path):
        return None
    if os.path.isdir(path):
        root = _gradescope_root(path, forced)
        if root is not None:
            return _gradescope_folder(root)
        entries = _visible(path)
        if MODULE in entries:
            return None
        return _canvas_folder(path, entries) or _student_folders(path, entries)
    if os.path.isfile(path) and path.lower().endswith(".zip"):
        return _gradescope_zip(path, forced)
    return None


def _visible(folder):
    return sorted(name for name in os.listdir(folder)
                  if not name.startswith(".") and name not in IGNORED_DIRS)


def _is_dir(path):
    return os.path.isdir(path) and not os.path.islink(path)


def _holds_submission(folder):
    """Whether `folder` holds two_layer_net.py (a few folders down) or a .zip at its top."""
    return any(os.path.basename(rel) == MODULE
               or (os.sep not in rel and rel.lower().endswith(".zip"))
               for rel in submission.walk(folder))



def _gradescope_root(folder, forced=False):
    """`folder` or the one folder inside it when it is laid out as Gradescope's export, else
    None."""
    root = None
    if os.path.lexists(os.path.join(folder, METADATA)):
        root = folder
    else:
        entries = _visible(folder)
        inner = os.path.join(folder, entries[0]) if len(entries) == 1 else None
        if inner and _is_dir(inner) and os.path.lexists(os.path.join(inner, METADATA)):
            root = inner
    if root is None or forced:
        return root
    others = [name for name in _visible(root) if name != METADATA]
    if not all(GRADESCOPE_ENTRY.fullmatch(name) and _is_dir(os.path.join(root, name))
               for name in others):
        return None
    try:
        data = submission.read_file(os.path.join(root, METADATA))
    except (SubmissionError, OSError):
        return root  # unreadable metadata in an export's layout: rows say so
    return root if _keys_are_entries(data) else None


def _keys_are_entries(data):
    """Whether the metadata's top-level keys (where it parses) are all `submission_<digits>`."""
    metadata, problem = _parse_metadata(data)
    return problem is not None or all(GRADESCOPE_ENTRY.fullmatch(key) for key in metadata)


def _gradescope_folder(root):
    """The submissions of the unzipped Gradescope export at `root`."""
    try:
        metadata, problem = _parse_metadata(submission.read_file(os.path.join(root, METADATA)))
    except SubmissionError as e:
        metadata, problem = {}, f"Gradescope's {METADATA} cannot be read ({e})"
    except OSError as e:
        metadata, problem = {}, f"Gradescope's {METADATA} cannot be read ({submission.why(e)})"
    present = {}
    for name in _visible(root):
        full = os.path.join(root, name)
        if name != METADATA and (_is_dir(full) or name in metadata
                                 or name.lower().endswith((".py", ".zip"))):
            present[name] = full
    return _gradescope(metadata, problem, present, lambda key: load(present[key], name=key), root)


def _gradescope_zip(path, forced=False):
    """The Gradescope export in the .zip at `path`, or None when it is not one."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError):
        return None  # not an export; load() says what is wrong with it
    with archive:
        infos = archive.infolist()
        root = _zip_root([info.filename for info in infos])
        if root is None:
            if _is_canvas_download([info.filename for info in infos]):
                raise submission.UsageError(
                    f"'{path}' is a Canvas bulk download; unzip it and pass the folder")
            return None
        if not forced and not _zip_is_export(archive, infos, root):
            return None
        size = os.path.getsize(path)
        if size > MAX_EXPORT_BYTES or len(infos) > MAX_EXPORT_MEMBERS:
            raise submission.UsageError(
                f"Gradescope export '{path}' has {size} bytes in {len(infos)} members, more "
                f"than the {MAX_EXPORT_BYTES >> 30} GB in {MAX_EXPORT_MEMBERS} the grader reads "
                "from a .zip; unzip it and pass the folder")
        base = os.path.basename(path)
        grouped = {}
        for info in infos:
            top = info.filename[len(root):].split("/")[0] if info.filename.startswith(root) else ""
            if top and top != METADATA and not top.startswith(".") and top not in IGNORED_DIRS:
                grouped.setdefault(top, []).append(info)
        try:
            meta_info = archive.getinfo(root + METADATA)
            submission.check_member(meta_info, f"archive '{base}'")
            metadata, problem = _parse_metadata(
                submission.read_member(archive, meta_info, f"archive '{base}'"))
        except SubmissionError as e:
            metadata, problem = {}, f"Gradescope's {METADATA} in '{base}' cannot be read ({e})"
        return _gradescope(metadata, problem, grouped,
                           lambda key: _zip_entry(archive, grouped[key], path, root, key), path)


def _zip_entry(archive, members, path, root, key):
    """The submission in the export's folder `key`, read from the archive."""
    where = f"'{key}' in archive '{os.path.basename(path)}'"
    sub = Submission(key, f"{os.path.abspath(path)}:{root}{key}")
    try:
        if len(members) > submission.MAX_MEMBERS:
            raise SubmissionError(f"{where} has {len(members)} files, more than "
                                  f"{submission.MAX_MEMBERS}")
        if len(members) == 1 and members[0].filename == root + key:
            raise SubmissionError(f"{where} is a file, not a submission's folder")
        sub.files = submission.files_from_members(archive, members, where, prefix=f"{root}{key}/")
    except SubmissionError as e:
        sub.error = str(e)
    return sub


def _zip_is_export(archive, infos, root):
    """Whether the archive's entries under `root` are laid out exactly as Gradescope's export."""
    for info in infos:
        if not info.filename.startswith(root) or info.filename.startswith("__MACOSX/"):
            continue
        top, _, rest = info.filename[len(root):].partition("/")
        if top == METADATA and not rest and not info.is_dir():
            continue
        if not top or top.startswith(".") or top in IGNORED_DIRS:
            continue
        if not GRADESCOPE_ENTRY.fullmatch(top) or not (rest or info.is_dir()):
            return False
    try:
        info = archive.getinfo(root + METADATA)
        submission.check_member(info, "the export")
        data = submission.read_member(archive, info, "the export")
    except (KeyError, SubmissionError):
        return True  # unreadable metadata in an export's layout: rows say so
    return _keys_are_entries(data)


def _zip_root(names):
    """'' or 'folder/' when the archive holds a Gradescope export there, else None."""
    if METADATA in names:
        return ""
    tops = {name.split("/")[0] for name in names if not name.startswith("__MACOSX/")}
    if len(tops) == 1 and f"{next(iter(tops))}/{METADATA}" in names:
        return next(iter(tops)) + "/"
    return None


class _NoAliasLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing anchors and aliases (safe_load expands them: a few KB of
    nested aliases is a "billion laughs" that fills memory). Gradescope's export uses none."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None, None, "it uses a YAML alias (*name), which Gradescope's export never does",
                event.start_mark)
        return super().compose_node(parent, index)


def _parse_metadata(data):
    """({entry: record}, None), or ({}, what is wrong) for metadata that cannot be used."""
    unusable = "; rows are named after the export's folders and their submitters are unknown"
    try:
        document = yaml.load(data, Loader=_NoAliasLoader)  # noqa: S506 (a safe loader)
    except (yaml.YAMLError, RecursionError, ValueError) as e:
        reason = " ".join(str(e).split())[:300]
        return {}, f"Gradescope's {METADATA} cannot be parsed ({reason}){unusable}"
    if document is None:
        document = {}
    if not isinstance(document, dict):
        return {}, f"Gradescope's {METADATA} is not a mapping of submission folders{unusable}"
    return {str(key): record for key, record in document.items()}, None


def _gradescope(metadata, problem, present, load_entry, where):
    """One Submission for every entry present in the export or listed in its metadata."""
    subs = []
    for key in sorted(set(present) | set(metadata)):
        record = metadata.get(key)
        identity, name, named_by = _submitters(record)
        if key in present:
            sub = load_entry(key)
        else:
            who = f" ({identity['student']})" if identity.get("student") else ""
            sub = Submission(key, os.path.join(str(where), key),
                             error=f"Gradescope's {METADATA} lists '{key}'{who}, but the export "
                                   "holds no such folder; download the export again")
        sub.identity = identity
        if name:
            sub.name, sub.named_by = name, named_by
        if problem:
            sub.notes.append(problem)
        elif record is None:
            sub.notes.append(f"'{key}' is in the Gradescope export but not in its {METADATA}; "
                             "its submitters are unknown")
        elif not identity.get("student") and not identity.get("sid"):
            sub.notes.append(f"Gradescope's {METADATA} names no submitter for '{key}'")
        subs.append(sub)
    return subs


def _field(record, key):
    return record.get(":" + key, record.get(key)) if isinstance(record, dict) else None


def _text(value):
    """A scalar of the metadata as text; '' for a missing value, a mapping or list, or one
    longer than MAX_FIELD (a real name, sid or email is far shorter)."""
    if value is None or isinstance(value, (dict, list)):
        return ""
    text = str(value).strip()
    return "" if len(text) > MAX_FIELD else text


def _submitters(record):
    """(identity, the row's name or None, what it was named by) from one entry of the
    metadata."""
    people = _field(record, "submitters")
    people = [p for p in people if isinstance(p, dict)] if isinstance(people, list) else []
    identity, members = {}, []
    for person in people:
        member = {key: _text(_field(person, field))
                  for key, field in (("student", "name"), ("email", "email"), ("sid", "sid"))}
        members.append({k: v for k, v in member.items() if v})
    for key in ("student", "email", "sid"):
        values = [member.get(key, "") for member in members]
        if any(values):
            identity[key] = "; ".join(values)
    if len(members) > 1:
        identity["members"] = members
    created = _field(record, "created_at")
    if created is not None:
        identity["submitted_at"] = (created.isoformat() if hasattr(created, "isoformat")
                                    else _text(created))
    if not members:
        return identity, None, "path"
    first = members[0]
    for key, kind in (("sid", "sid"), ("student", "name")):
        if first.get(key):
            return identity, first[key], kind
    email = first.get("email", "").split("@")[0]
    return identity, email or None, "email" if email else "path"



def _restore(original):
    """The name the student gave a file, without the `-1` Canvas adds to a re-uploaded one."""
    match = RESUBMITTED.fullmatch(original)
    return match["stem"] + match["ext"] if match else original


def _is_canvas_download(names):
    """Whether a flat list of file names is Canvas's: some upload of this assignment renamed
    the Canvas way, and no file with the assignment's own name."""
    if any(os.path.basename(name) == MODULE for name in names):
        return False
    originals = [_restore(match["original"]) for match in map(CANVAS_UPLOAD.fullmatch, names)
                 if match]
    return any(name in (MODULE, NOTEBOOK) or name.lower().endswith(".zip") for name in originals)


def _canvas_folder(folder, entries):
    """The students of a Canvas bulk download in `folder`, or None when it is not one."""
    if not _is_canvas_download(entries):
        return None
    students, others = {}, []
    for name in entries:
        match = None if _is_dir(os.path.join(folder, name)) else (
            CANVAS_UPLOAD.fullmatch(name) or CANVAS_ENTRY.fullmatch(name))
        if match:
            students.setdefault(match["user"], []).append((name, match))
        else:
            others.append(name)
    subs = [_canvas_student(folder, user, items)
            for user, items in sorted(students.items(), key=lambda item: int(item[0]))]
    for name in others:  # anything else that is a submission is graded on its own
        full = os.path.join(folder, name)
        if (_holds_submission(full) if _is_dir(full) else name.lower().endswith((".py", ".zip"))):
            subs.append(load(full))
    return subs


def _canvas_student(folder, user, items):
    """The submission of Canvas user `user` from their (file name, match) items."""
    items = sorted(items, key=lambda item: (item[1].re is CANVAS_ENTRY, item[0]))
    student = next((match["student"] for _, match in items if match["student"]), "")
    identity = {"student": student} if student else {}
    # A Canvas user id is not the school's student id: it goes in canvas_id only (issue 17).
    identity.update(canvas_id=user, late=any(match["late"] for _, match in items))
    who = f"'{student or user}'"
    sub = Submission(student or user, os.path.abspath(os.path.join(folder, items[0][0])),
                     identity=identity)
    uploads = [(name, match) for name, match in items if match.re is CANVAS_UPLOAD]
    try:
        if not uploads:
            kind = "a text entry" if items[0][1]["kind"].lower() == "text" else "a web address"
            raise SubmissionError(f"the Canvas submission of {who} is {kind}, not files; "
                                  f"{MODULE} must be uploaded as a file")
        files, origin = {}, {}
        for name, match in uploads:
            full = os.path.join(folder, name)
            original = _restore(match["original"])
            if original.lower().endswith(".zip"):
                found = submission.from_zip(full)
            elif original.endswith(KEPT_SUFFIXES):
                found = {original: submission.read_file(full)}
            else:
                continue
            for kept, data in found.items():
                if kept in files and files[kept] != data:
                    raise SubmissionError(f"the Canvas download holds two different {kept} of "
                                          f"{who} ('{origin[kept]}' and '{name}'); keep one")
                files[kept] = data
                origin.setdefault(kept, name)
        if MODULE not in files:
            uploaded = ", ".join(match["original"] for _, match in uploads)
            raise SubmissionError(f"the Canvas download holds no {MODULE} of {who} (uploaded: "
                                  f"{uploaded}); submit the file with exactly that name")
        sub.files = files
    except SubmissionError as e:
        sub.error = str(e)
    except OSError as e:
        sub.error = f"a file of {who} in the Canvas download cannot be read ({submission.why(e)})"
    return sub



def _student_folders(folder, entries):
    """One submission a subfolder when two or more hold one, or None."""
    dirs = [name for name in entries if _is_dir(os.path.join(folder, name))]
    if sum(_holds_submission(os.path.join(folder, name)) for name in dirs) < 2:
        return None
    loose = [name for name in entries
             if name not in dirs and name.lower().endswith((".py", ".zip"))]
    return [load(os.path.join(folder, name)) for name in dirs + loose]
