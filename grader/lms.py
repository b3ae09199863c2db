"""The files an LMS imports (canvas.csv, gradescope.csv), kept in step with grades.csv.

The instructor asks for them once (`--format canvas|gradescope`, `--canvas-assignment`); the
request is kept in DIR/.gradebook.json, so `grade.py merge DIR` and every later run into DIR
write the same files without the options repeated. Each is made from DIR/grades.csv after the
merged written scores are back in it (grader.answers.reapply_merge), and written atomically: an
uploaded file never holds a total that grades.csv has since replaced. A row that could not be
graded is left out of both (its 0 would replace the student's grade) and each write says so.

The late policy (--due, --late-penalty, --late-cap, --extensions) is kept beside them: a rerun
that gives none reuses it, and one that gives another says what changed (resolve_policy).
"""
import csv
import json
import os
import sys

from grader import gradebook, report

SETTINGS_FILE = ".gradebook.json"  # in DIR: the formats asked for and the Canvas column
_warned = set()  # each warning once a process: settings() is read several times a run


def _kept(out_dir):
    """DIR/.gradebook.json as read ({} when absent or unreadable, said once)."""
    kept, path = {}, os.path.join(out_dir, SETTINGS_FILE)
    try:
        with open(path) as f:
            kept = json.load(f)
        if not isinstance(kept, dict):
            raise ValueError("not a JSON object")
    except FileNotFoundError:
        kept = {}
    except (OSError, ValueError) as e:
        _warn(f"{path} is unreadable ({e}); the LMS files already in {out_dir} are still "
              "rewritten; pass --format (and --canvas-assignment) again to keep them anew")
        kept = {}
    return kept


def settings(out_dir):
    """{"formats": [...], "canvas_assignment": header or None} kept for out_dir. A format whose
    file is in out_dir counts as asked for even when nothing was kept (a folder graded before
    the settings were kept), so a file an instructor may upload is never left stale."""
    kept, path = _kept(out_dir), os.path.join(out_dir, SETTINGS_FILE)
    formats = [f for f in kept.get("formats") or [] if f in gradebook.FROM_GRADES]
    formats += [f for f in gradebook.FROM_GRADES if f not in formats
                and os.path.isfile(os.path.join(out_dir, gradebook.FORMAT_FILES[f]))]
    column = kept.get("canvas_assignment")
    try:
        column = gradebook.canvas_assignment(column) if column else None
    except gradebook.PolicyError as e:
        _warn(f"{path}: {e}")
        column = None
    return {"formats": formats, "canvas_assignment": column or _canvas_header(out_dir)}


def remember(out_dir, formats=(), canvas_assignment=None):
    """Add `formats` (and the Canvas assignment column, which replaces a kept one) to what is
    kept for out_dir; `canvas_assignment` implies the canvas format. Returns settings()."""
    kept = settings(out_dir)
    asked = [f for f in formats if f in gradebook.FROM_GRADES]
    if canvas_assignment:
        asked.append("canvas")
    new = {"formats": list(dict.fromkeys([*kept["formats"], *asked])),
           "canvas_assignment": canvas_assignment or kept["canvas_assignment"]}
    if asked:
        _keep(out_dir, new)
    return new


def _keep(out_dir, values):
    """Write `values` over their keys in DIR/.gradebook.json, keeping the other keys."""
    kept = _kept(out_dir)
    kept.update(values)
    report.write_atomically(os.path.join(out_dir, SETTINGS_FILE), json.dumps(kept, indent=1))


def resolve_policy(out_dir, policy):
    """(the late policy to grade with, a line to say or ''). `policy` None (the command line gave
    no late option): the one kept in out_dir, said in one line. A given policy is kept; when it
    differs from the kept one the line says what changed. Call it under out_dir's lock."""
    data = _kept(out_dir).get("late_policy")
    before = None
    if data is not None:
        try:
            before = gradebook.LatePolicy.from_kept(data)
        except gradebook.PolicyError as e:
            _warn(f"{os.path.join(out_dir, SETTINGS_FILE)}: {e}; give the late options again")
    if policy is None:
        if before is None or before.describe() == "none":
            return before or gradebook.LatePolicy(), ""
        return before, (f"late policy: {before.describe()}, as kept in "
                        f"{os.path.join(out_dir, SETTINGS_FILE)} by the run before (no late "
                        "option given; pass --late-penalty 0 to drop it)")
    if before is not None and before.kept() == policy.kept():
        return policy, ""
    _keep(out_dir, {"late_policy": policy.kept()})
    if before is None:
        return policy, ""
    return policy, (f"late policy changed from the run before ({policy.changes(before)}): "
                    f"every row's penalty follows the new one: {policy.describe()}")


def write(out_dir, say=True):
    """Write every kept format from DIR/grades.csv; returns the paths written. With `say`, print
    left_out()'s line (the batch prints it in its summary instead)."""
    kept = settings(out_dir)
    grades_path = os.path.join(out_dir, gradebook.FORMAT_FILES["plain"])
    if not kept["formats"] or not os.path.isfile(grades_path):
        return []
    with open(grades_path, newline="", encoding="utf-8-sig") as f:
        text = f.read()
    written = []
    for kind in kept["formats"]:
        path = os.path.join(out_dir, gradebook.FORMAT_FILES[kind])
        made = (gradebook.canvas(text, kept["canvas_assignment"] or
                                 gradebook.DEFAULT_CANVAS_ASSIGNMENT)
                if kind == "canvas" else gradebook.FROM_GRADES[kind](text))
        report.write_atomically(path, made)
        written.append(path)
    for line in left_out(out_dir) if say else ():
        print(line)
    return written


def left_out(out_dir):
    """Lines for the LMS files: the rows they leave out (could not be graded), and the rows of
    gradescope.csv that Gradescope could match to no student; [] when there is nothing to say."""
    kept = settings(out_dir)
    try:
        with open(os.path.join(out_dir, gradebook.FORMAT_FILES["plain"]), newline="",
                  encoding="utf-8-sig") as f:
            names = gradebook.left_out(f.read())
    except OSError:
        return []
    files = [gradebook.FORMAT_FILES[k] for k in kept["formats"]]
    lines = []
    if names and files:
        lines.append(f"left out of {' and '.join(files)}: "
                     f"{', '.join(map(gradebook.terminal_text, names))} "
                     "(could not be graded: a person must look)")
    unmatched = _without_identity(out_dir) if "gradescope" in kept["formats"] else 0
    if unmatched:
        lines.append(f"gradescope.csv: {unmatched} row{'s' * (unmatched > 1)} with neither SID "
                     "nor email, which Gradescope matches students by (a Canvas download carries "
                     "neither; a Canvas user id is not a student id): fill them in before "
                     "uploading, or grade Gradescope's own export")
    return lines


def _without_identity(out_dir):
    """How many rows of DIR/gradescope.csv have neither an SID nor an email."""
    try:
        with open(os.path.join(out_dir, gradebook.FORMAT_FILES["gradescope"]), newline="",
                  encoding="utf-8-sig") as f:
            rows = list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error):
        return 0
    return sum(1 for row in rows if not (row.get("SID") or "").strip()
               and not (row.get("Email") or "").strip())


def canvas_note(out_dir):
    """One line when canvas.csv's assignment column names no Canvas assignment id, else ''."""
    kept = settings(out_dir)
    header = kept["canvas_assignment"] or gradebook.DEFAULT_CANVAS_ASSIGNMENT
    if "canvas" not in kept["formats"] or gradebook.canvas_has_id(header):
        return ""
    return (f"note: canvas.csv's assignment column is '{header}', without a Canvas assignment "
            "id: Canvas's import matches it to the assignment of exactly that title, or creates "
            "a new assignment of that name; pass --canvas-assignment 'Title (id)' (the id is the "
            "number after /assignments/ in the assignment's address)")


def _canvas_header(out_dir):
    """The assignment column of a canvas.csv already in out_dir (perhaps renamed by hand, as
    the kit once told instructors to do), else None."""
    try:
        with open(os.path.join(out_dir, gradebook.FORMAT_FILES["canvas"]), newline="",
                  encoding="utf-8-sig") as f:
            header = next(csv.reader(f), [])
    except (OSError, UnicodeDecodeError, csv.Error):
        return None
    if len(header) == len(gradebook.CANVAS_COLUMNS) + 1 and \
            tuple(header[:-1]) == gradebook.CANVAS_COLUMNS and header[-1].strip():
        return header[-1]
    return None


def _warn(message):
    if message not in _warned:
        _warned.add(message)
        print(f"grade.py: {message}", file=sys.stderr)
