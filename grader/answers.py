"""Written answers, graded question by question: answers.html, manual.csv and `grade.py merge`.

A TA grades fastest one question across all students. With `--execute` the batch keeps each
student's answer cells (DIR/<name>/answers.json) and writes DIR/answers.html: for each written
question, its text, then every student's answer, as safe as report.html (the same renderer,
sanitiser and Content-Security-Policy). It also writes DIR/manual.csv with an empty column per
question for the TA, keeping every score already entered. `grade.py merge DIR` adds those
columns to grades.csv with new totals, refusing a manual.csv whose names or columns do not
match grades.csv's.

Cells are found by what survives a student's editing: the tag `question:<id>` / `answer:<id>`
in the cell's metadata, or else the cell id `question-<id>` / `answer-<id>`; never by position.
"""
import csv
import html
import io
import json
import os
import re

from grader import KIT_ROOT, html_report, notebook, report
from grader.rubric import RUBRIC

# Points of each written question: the one place they are set (their ids are the notebook's tags).
WRITTEN_POINTS = {"q1": 5, "q2": 5, "q3": 5}
PLACEHOLDER = "*Your answer:*"
ANSWERS_FILE = "answers.json"
KIT_NOTEBOOK = os.path.join(KIT_ROOT, "two_layer_net.ipynb")
_TAGGED = re.compile(r"(question|answer):(\w+)$")


class MergeError(ValueError):
    """manual.csv cannot be merged; the message says which names or columns are wrong."""


def tagged_cells(nb, kind):
    """{question id: cell source} of the notebook's `kind` ("question" or "answer") cells."""
    found = {}
    for cell in nb.get("cells", []):
        tags = (cell.get("metadata") or {}).get("tags") or []
        ids = [m.group(2) for m in map(_TAGGED.match, tags) if m and m.group(1) == kind]
        cell_id = str(cell.get("id") or "")
        if not ids and cell_id.startswith(kind + "-"):
            ids = [cell_id[len(kind) + 1:]]
        for qid in ids:
            source = cell.get("source", "")
            found[qid] = "".join(source) if isinstance(source, list) else str(source)
    return found


def answers_of(nb):
    """The student's answers as {question id: markdown}; a placeholder left as it is is ''."""
    return {qid: ("" if text.strip() in ("", PLACEHOLDER) else text)
            for qid, text in tagged_cells(nb, "answer").items() if qid in WRITTEN_POINTS}


def questions():
    """{question id: text} from the kit's notebook, in WRITTEN_POINTS' order."""
    try:
        with open(KIT_NOTEBOOK, "rb") as f:
            texts = tagged_cells(notebook.read_notebook(f.read()), "question")
    except (OSError, ValueError):
        texts = {}
    return {qid: texts.get(qid, f"Question {qid}") for qid in WRITTEN_POINTS}


def write_reports(out_dir, names):
    """DIR/answers.html and DIR/manual.csv for the submissions `names` (results folders in DIR)."""
    answers = {}
    for name in sorted(names):
        try:
            with open(os.path.join(out_dir, name, ANSWERS_FILE)) as f:
                answers[name] = {k: str(v) for k, v in json.load(f).items()}
        except (OSError, ValueError, AttributeError):
            answers[name] = None
    report.write_atomically(os.path.join(out_dir, "answers.html"), answers_html(answers))
    update_manual_csv(os.path.join(out_dir, "manual.csv"), sorted(names))


def answers_html(answers):
    """One page: each question's text, then every student's answer to it."""
    import nbformat

    sections = []
    for qid, text in questions().items():
        cells = [nbformat.v4.new_markdown_cell(text)]
        for name, given in answers.items():
            shown = "*(no notebook)*" if given is None else (given.get(qid) or "*(no answer)*")
            cells += [nbformat.v4.new_markdown_cell(f"#### {html.escape(name)}"),
                      nbformat.v4.new_markdown_cell(shown)]
        body = notebook.cells_html(nbformat.v4.new_notebook(cells=cells))
        sections.append(f"<h2>{html.escape(qid)} ({WRITTEN_POINTS[qid]} points)</h2>{body}<hr>")
    return html_report.page("Written answers", "".join(sections))


def update_manual_csv(path, names):
    """manual.csv with a row per name and a column per question; scores already entered stay."""
    kept = {}
    if os.path.exists(path):
        with open(path, newline="") as f:
            kept = {r["name"]: r for r in csv.DictReader(f) if r.get("name")}
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["name", *WRITTEN_POINTS])
    for name in sorted(set(names) | set(kept)):
        writer.writerow([name, *((kept.get(name) or {}).get(q, "") for q in WRITTEN_POINTS)])
    report.write_atomically(path, buffer.getvalue())


def merge(*, out_dir):
    """`grade.py merge DIR`: written scores from DIR/manual.csv into DIR/grades.csv. Exit code."""
    import sys

    try:
        merged = merged_grades(os.path.join(out_dir, "grades.csv"), os.path.join(out_dir, "manual.csv"))
    except MergeError as e:
        print(f"grade.py merge: {e}", file=sys.stderr)
        return 2
    report.write_atomically(os.path.join(out_dir, "grades.csv"), merged)
    print(f"merged the written scores into {os.path.join(out_dir, 'grades.csv')}")
    return 0


def merged_grades(grades_path, manual_path):
    """grades.csv's text with the written columns (replaced if merged before) and new totals."""
    grades, grade_columns = _read(grades_path, "grades.csv", "run grade.py with --out first")
    manual, manual_columns = _read(manual_path, "manual.csv", "run grade.py with --execute first")
    if manual_columns != ["name", *WRITTEN_POINTS]:
        raise MergeError(f"manual.csv has the columns {', '.join(manual_columns)}; expected "
                         f"name, {', '.join(WRITTEN_POINTS)} (the questions' ids)")
    names, manual_names = [r["name"] for r in grades], [r["name"] for r in manual]
    missing, extra = sorted(set(names) - set(manual_names)), sorted(set(manual_names) - set(names))
    if missing or extra:
        raise MergeError("manual.csv and grades.csv name different submissions: "
                         + "; ".join(filter(None, [
                             missing and f"not in manual.csv: {', '.join(missing)}",
                             extra and f"not in grades.csv: {', '.join(extra)}"])))
    scores = {r["name"]: {q: _score(r, q) for q in WRITTEN_POINTS} for r in manual}
    base = [c for c in grade_columns if c not in WRITTEN_POINTS]
    columns = base[:base.index("total")] + list(WRITTEN_POINTS) + base[base.index("total"):]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, columns, lineterminator="\n")
    writer.writeheader()
    for row in grades:
        auto = sum(float(row[t]) for t in RUBRIC)
        written = scores[row["name"]]
        total = auto + sum(written.values())
        writer.writerow({**{c: row[c] for c in base}, **{q: _plain(v) for q, v in written.items()},
                         "total": _plain(total)})
    return buffer.getvalue()


def _read(path, what, fix):
    try:
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            rows = list(reader)
            return rows, list(reader.fieldnames or [])
    except FileNotFoundError:
        raise MergeError(f"there is no {what} in {os.path.dirname(path) or '.'}; {fix}") from None


def _score(row, qid):
    text = (row.get(qid) or "").strip()
    try:
        value = float(text)
    except ValueError:
        raise MergeError(f"manual.csv: '{row['name']}' has '{text}' for {qid}; every cell needs "
                         f"a score from 0 to {WRITTEN_POINTS[qid]}") from None
    if not 0 <= value <= WRITTEN_POINTS[qid]:
        raise MergeError(f"manual.csv: '{row['name']}' has {text} for {qid}, outside 0 to "
                         f"{WRITTEN_POINTS[qid]}")
    return value


def _plain(value):
    return int(value) if float(value).is_integer() else value
