"""How the kit's notebook marks its cells: the one place these facts are said.

The release, `grade.py submit`, the written answers (grader/answers.py) and the notebook's
tests find cells by what survives a student's editing, never by position:

- a tag in the cell's metadata: `setup` (the set-up cell), `colab` (the cell that finds the
  assignment on Google Drive), `check` (a check cell that prints PASS or FAIL),
  `question:<id>` (a written question), `answer:<id>` (the cell that holds its answer),
  `solution` (an instructor's cell, left out of the release; a model answer also carries
  `solution:<id>`);
- else the cell id `<kind>-<id>` (`question-q1`, `answer-q1`, `solution-q1`), which Jupyter
  keeps when a student clears a cell's tags.

An answer cell that still holds ANSWER_PLACEHOLDER, or nothing, is unanswered. This module
imports nothing of the kit.
"""
import re

MODULE = "two_layer_net.py"
NOTEBOOK = "two_layer_net.ipynb"
ANSWER_PLACEHOLDER = "*Your answer:*"
SETUP_TAG = "setup"
COLAB_TAG = "colab"
CHECK_TAG = "check"
# A check cell's printed line that failed: helpers_lib.notebook's CheckResult prints
# "label: value (should be < threshold): FAIL", or "label: FAIL: why" when nothing was computed.
CHECK_FAIL = re.compile(r": FAIL\b")
SOLUTION_TAG = "solution"
QUESTION = "question"
ANSWER = "answer"


def tags(cell):
    """The cell's tags, [] when it has none (a cell as a dict or an nbformat node)."""
    return (cell.get("metadata") or {}).get("tags") or []


def source(cell):
    """The cell's text (nbformat allows a list of lines on disk)."""
    text = cell.get("source", "")
    return "".join(text) if isinstance(text, list) else str(text)


def cell_ids(cell, kind):
    """The ids that the cell holds for `kind` ("question", "answer" or "solution"): from its
    `<kind>:<id>` tags, else from its cell id `<kind>-<id>`; [] when it is not such a cell."""
    ids = [t[len(kind) + 1:] for t in tags(cell) if t.startswith(kind + ":") and len(t) > len(kind) + 1]
    cell_id = str(cell.get("id") or "")
    if not ids and cell_id.startswith(kind + "-") and len(cell_id) > len(kind) + 1:
        ids = [cell_id[len(kind) + 1:]]
    return ids


def cell_id(cell, kind):
    """The first of `cell_ids(cell, kind)`, or None."""
    ids = cell_ids(cell, kind)
    return ids[0] if ids else None


def is_solution(cell):
    """True for an instructor's cell: tagged `solution`, or a model answer by its tag or id."""
    return SOLUTION_TAG in tags(cell) or bool(cell_ids(cell, SOLUTION_TAG))


def is_unanswered(text):
    """True for an answer cell's text that is empty or still the placeholder alone."""
    text = text.strip()
    if text.startswith(ANSWER_PLACEHOLDER):
        text = text[len(ANSWER_PLACEHOLDER):].strip()
    return not text

