"""The files an LMS imports (canvas.csv, gradescope.csv), kept in step with grades.csv.

The instructor asks for them once (`--format canvas|gradescope`, `--canvas-assignment`); the
request is kept in DIR/.gradebook.json, so `grade.py merge DIR` and every later run into DIR
write the same files without the options repeated. Each is made from DIR/grades.csv after the
merged written scores are back in it (grader.answers.reapply_merge), and written atomically: an
uploaded file never holds a total that grades.csv has since replaced.
"""
import csv
import json
import os
import sys

from grader import gradebook, report

SETTINGS_FILE = ".gradebook.json"  # in DIR: the formats asked for and the Canvas column
_warned = set()  # each warning once a process: settings() is read several times a run


def settings(out_dir):
    """{"formats": [...], "canvas_assignment": header or None} kept for out_dir. A format whose
    file is in out_dir counts as asked for even when nothing was kept (a folder graded before
    the settings were kept), so a file an instructor may upload is never left stale."""
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
        report.write_atomically(os.path.join(out_dir, SETTINGS_FILE), json.dumps(new, indent=1))
    return new


def write(out_dir):
    """Write every kept format from DIR/grades.csv; returns the paths written."""
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
    return written


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
