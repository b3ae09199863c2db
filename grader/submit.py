"""`grade.py submit`: the student's checked submission.zip (part of the student release).

A submission is a zip of `two_layer_net.py`, the executed `two_layer_net.ipynb` and, when the
student has one, `linear_classifier.py` (code written for the original course imports from it;
the grader prefers a submission's own copy to its stand-in). It is refused while the notebook
has cells that never ran or the module does not import. It is written, with a list of what is
still missing, when check cells print FAIL or questions are unanswered: the student decides.

The notebook's cells are found as grader/cells.py says (tags, else cell ids). Two more things
are said before the upload, because the grader will say them: a backward pass that the grader's
source audit (grader/audit.py) will score 0, and a two_layer_net.py that differs from the one
the notebook last ran with (the set-up cell prints the digest of the module it loaded).
"""
import io
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field

from grader import cells
from grader.cells import CHECK_TAG, MODULE, NOTEBOOK
from grader.report import write_atomically
from grader.selfcheck import SUBMITTED, gradient_audit
from helpers_lib.errors import headline, place
from helpers_lib.notebook import DIGEST_LINE, module_digest

OWN_HELPER = SUBMITTED[1]  # linear_classifier.py
# Importing torch alone takes seconds on a cold laptop; a module that needs minutes does work
# at import time (training at the top level) that the grader's timeouts will not allow either.
IMPORT_TIMEOUT = 120.0
# A check line quoted in the list of failing checks is cut to this many characters.
QUOTE_LIMIT = 110

_FAIL = cells.CHECK_FAIL
_HEADING = re.compile(r"^#{1,6}\s+(.*\S)")


class SubmitError(ValueError):
    """The submission cannot be zipped; the message says why and what to do."""


@dataclass
class SubmissionZip:
    """A written submission archive and what it still lacks (the student may upload it anyway)."""
    out: str
    files: list = field(default_factory=list)  # member names
    size: int = 0
    failing_checks: list = field(default_factory=list)  # sentences, one per failing check cell
    unanswered: list = field(default_factory=list)  # sentences, one per unanswered question
    warnings: list = field(default_factory=list)  # what the grader will say that checks did not


def read_notebook(path):
    """The notebook at `path`; SubmitError when it cannot be read."""
    import nbformat

    try:
        with open(path, encoding="utf-8") as f:
            return nbformat.read(f, as_version=4)
    except Exception as e:  # noqa: BLE001 -- nbformat raises many kinds on malformed files
        raise SubmitError(f"{NOTEBOOK} is not a readable notebook ({headline(e, str(e)[:150])}"
                          "); open it in Jupyter, run it top to bottom and save it") from None


def notebook_problems(notebook):
    """Why the notebook cannot be submitted yet, as a list of sentences (empty: fine)."""
    code = [(number, cell) for number, cell in enumerate(notebook.cells, 1)
            if cell.cell_type == "code" and cell.source.strip()]
    unrun = [(number, cell) for number, cell in code if cell.get("execution_count") is None]
    if not unrun:
        return []
    named = [f"cell {number} ({cell.source.strip().splitlines()[0][:40]!r})"
             for number, cell in unrun[:3]]
    more = f" and {len(unrun) - 3} more" if len(unrun) > 3 else ""
    return [f"{NOTEBOOK} has not been run: {len(unrun)} of its {len(code)} code cells were "
            f"never executed ({', '.join(named)}{more}); run it top to bottom (Kernel > Restart "
            "Kernel and Run All Cells) and save it"]


def _printed(cell):
    """What a code cell printed: its stream text and its errors, one string."""
    parts = []
    for output in cell.get("outputs", []):
        if output.get("output_type") == "stream":
            parts.append(output.get("text", ""))
        elif output.get("output_type") == "error":
            parts.append(f"{output.get('ename')}: {output.get('evalue')}: FAIL\n")
    return "".join(parts)


def _quote(text):
    text = " ".join(text.split())
    return text if len(text) <= QUOTE_LIMIT else text[:QUOTE_LIMIT - 3] + "..."


def failing_checks(notebook):
    """A sentence for every check cell whose output has a FAIL line or an error."""
    found, section = [], None
    for number, cell in enumerate(notebook.cells, 1):
        if cell.cell_type == "markdown":
            headings = [m.group(1) for m in map(_HEADING.match, cell.source.splitlines()) if m]
            section = headings[-1] if headings else section
            continue
        if cell.cell_type != "code" or CHECK_TAG not in cells.tags(cell):
            continue
        lines = [line for line in _printed(cell).splitlines() if _FAIL.search(line)]
        if lines:
            where = f"cell {number}" + (f" ({section})" if section else "")
            more = f" (and {len(lines) - 1} more FAIL lines)" if len(lines) > 1 else ""
            found.append(f"{where}: {_quote(lines[0])}{more}")
    return found


def unanswered_questions(notebook):
    """A sentence for every question whose answer cell is empty or still the placeholder."""
    questions = {}
    for cell in notebook.cells:
        qid = cells.cell_id(cell, cells.QUESTION)
        if qid:
            bold = re.search(r"\*\*(.+?)\*\*", cell.source)
            questions[qid] = bold.group(1) if bold else _quote(cell.source)
    found = []
    for number, cell in enumerate(notebook.cells, 1):
        qid = cells.cell_id(cell, cells.ANSWER)
        if qid is None or cells.is_solution(cell):
            continue
        if cells.is_unanswered(cells.source(cell)):
            title = questions.get(qid, qid)
            found.append(f"{title} (cell {number}, still empty)")
    return found


def last_run_digest(notebook):
    """The digest of two_layer_net.py that the notebook printed last (the cell run latest), or
    None when its outputs name none."""
    latest, digest = -1, None
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        count = cell.get("execution_count") or 0
        for match in DIGEST_LINE.finditer(_printed(cell)):
            if match.group("file") == MODULE and count >= latest:
                latest, digest = count, match.group("digest")
    return digest


def stale_notebook(notebook, module_bytes):
    """Why the notebook's results may not be those of the module zipped, or None."""
    recorded = last_run_digest(notebook)
    rerun = ("run the notebook again (Kernel > Restart Kernel and Run All Cells), save it and run "
             "`python grade.py submit` again")
    if recorded is None:
        return (f"{NOTEBOOK} does not say which {MODULE} it ran with (its set-up cell prints it "
                f"when it loads the module); {rerun}")
    if recorded != module_digest(module_bytes):
        return (f"{MODULE} changed after the notebook last ran with it, so the notebook's checks "
                f"and figures are not those of the file in the zip; {rerun}")
    return None


def audit_problem(folder):
    """What the grader's source audit will say of the gradient tests for the files zipped, as a
    sentence; None when it says nothing (grader.selfcheck.gradient_audit, as the notebook)."""
    why = gradient_audit(folder)
    return None if why is None else f"the grader will say: {why}"


def import_problem(folder, timeout=IMPORT_TIMEOUT):
    """Why two_layer_net.py in `folder` does not import, in a sentence; None when it does.

    The import runs in a fresh interpreter in `folder` (like the notebook), with the grader's
    stand-in for linear_classifier after the folder's own modules.
    """
    from grader import standins

    with tempfile.TemporaryDirectory() as standin:
        standins.write(standin)
        env = dict(os.environ, PYTHONPATH=standin, PYTHONDONTWRITEBYTECODE="1")
        try:
            done = subprocess.run([sys.executable, "-c", "import two_layer_net"], cwd=folder,
                                  env=env, stdin=subprocess.DEVNULL, capture_output=True,
                                  text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return (f"importing {MODULE} did not finish in {timeout:g} s; move any training or "
                    "long loop at the top level under `if __name__ == \"__main__\":`")
    if done.returncode == 0:
        return None
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    last = lines[-1].strip() if lines else f"exit status {done.returncode}"
    frame = re.compile(r'^\s*File "(?P<file>[^"]*)", line (?P<line>\d+)')
    where = [m for m in map(frame.match, lines)
             if m and os.path.basename(m.group("file")) == MODULE]
    at = f" {place(MODULE, where[-1].group('line'))}" if where else ""
    return (f"{MODULE} does not import: {last}{at}; fix it (python -c \"import two_layer_net\" "
            "shows the whole error)")


def make_submission(*, folder, out):
    """Zip the module and the executed notebook in `folder` into `out` (atomically); returns a
    SubmissionZip. SubmitError, with every reason, when they are not ready."""
    folder = os.path.abspath(folder)
    out = os.path.join(folder, out) if not os.path.isabs(out) else out
    if os.path.isdir(out):
        raise SubmitError(f"'{out}' is a folder; pass the name of the zip to write, e.g. "
                          "--out submission.zip")
    if not os.path.isdir(os.path.dirname(out)):
        raise SubmitError(f"the folder of '{out}' does not exist; create it or pass another "
                          "--out")
    missing = [name for name in (MODULE, NOTEBOOK) if not os.path.isfile(os.path.join(folder, name))]
    if missing:
        raise SubmitError(f"no {' and no '.join(missing)} in {folder}; run `python grade.py "
                          "submit` in the folder that holds your two_layer_net.py and "
                          "two_layer_net.ipynb")
    try:
        notebook = read_notebook(os.path.join(folder, NOTEBOOK))
        problems = notebook_problems(notebook)
    except SubmitError as e:
        notebook, problems = None, [str(e)]
    broken = import_problem(folder)
    if broken:
        problems.append(broken)
    if problems:
        raise SubmitError("not submitted:\n" + "\n".join(f"- {p}" for p in problems))
    names = [MODULE, NOTEBOOK] + ([OWN_HELPER] if os.path.isfile(os.path.join(folder, OWN_HELPER))
                                 else [])
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in names:
            archive.write(os.path.join(folder, name), name)
    write_atomically(out, buffer.getvalue())
    with open(os.path.join(folder, MODULE), "rb") as f:
        module_bytes = f.read()
    warnings = [w for w in (audit_problem(folder), stale_notebook(notebook, module_bytes)) if w]
    return SubmissionZip(out=out, files=names, size=os.path.getsize(out),
                         failing_checks=failing_checks(notebook),
                         unanswered=unanswered_questions(notebook), warnings=warnings)


def write_submission(*, folder, out):
    """`grade.py submit`: zip the submission or say why not; the exit code."""
    try:
        made = make_submission(folder=folder, out=out)
    except SubmitError as e:
        print(f"grade.py submit: {e}", file=sys.stderr)
        return 1
    print(f"wrote {made.out} ({', '.join(made.files)}; {made.size / 1024:.0f} KB): upload this "
          "file. Run `python grade.py` first to see your points on the self-check.")
    for warning in made.warnings:
        print(f"Warning: {warning}.")
    if made.failing_checks or made.unanswered:
        print("Still missing in the notebook as saved (you may upload it as it is, or fix these, "
              "run the notebook again, save it and run `python grade.py submit` again):")
        if made.failing_checks:
            print(f"- {_count(len(made.failing_checks), 'check cell does', 'check cells do')} "
                  "not print PASS:")
            print("".join(f"    {line}\n" for line in made.failing_checks), end="")
        if made.unanswered:
            print(f"- {_count(len(made.unanswered), 'question has', 'questions have')} no answer "
                  "yet:")
            print("".join(f"    {line}\n" for line in made.unanswered), end="")
    return 0


def _count(number, one, many):
    """'1 question has', '2 questions have': the number with its noun and verb agreeing."""
    return f"{number} {one if number == 1 else many}"
