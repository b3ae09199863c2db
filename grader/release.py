"""The student release (`grade.py release OUT`) and the student's submission (`grade.py submit`).

The release is the kit without the solution: `two_layer_net.py` with every region between
`# BEGIN SOLUTION` and `# END SOLUTION` replaced by one `raise NotImplementedError("<hint>")` at
the marker's indentation (the hint is the marker's text after `# BEGIN SOLUTION:`), the
notebook with its outputs cleared, the helpers, the toy fixtures, the public tests, the grader
(so that `python grade.py` self-checks and `python grade.py submit` works), the requirements
and a student README. The instructor's secret seed never goes in. It is built in a temporary
folder beside OUT and renamed into place, so OUT either holds the whole release or nothing.

A submission is a zip of `two_layer_net.py`, the executed `two_layer_net.ipynb` and, when the
student has one, `linear_classifier.py` (code written for the original course imports from it;
the grader prefers a submission's own copy to its stand-in).
"""
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tokenize
import zipfile
from dataclasses import dataclass, field

from grader import KIT_ROOT, SECRET_ENV
from grader.report import write_atomically

MODULE = "two_layer_net.py"
NOTEBOOK = "two_layer_net.ipynb"
OWN_HELPER = "linear_classifier.py"
README_TEMPLATE = os.path.join("release", "README.md")
# Copied as they are: (source in the kit, target in the release).
RELEASE_COPIES = [
    ("helpers.py", "helpers.py"),
    ("requirements.txt", "requirements.txt"),
    ("pytest.ini", "pytest.ini"),
    ("grade.py", "grade.py"),
    (os.path.join("tests", "conftest.py"), os.path.join("tests", "conftest.py")),
    (os.path.join("tests", "test_two_layer_net.py"), os.path.join("tests", "test_two_layer_net.py")),
    (README_TEMPLATE, "README.md"),
]
RELEASE_FOLDERS = [  # (folder in the kit, file suffixes copied from it, not recursively)
    (os.path.join("tests", "fixtures"), (".json",)),
    ("grader", (".py",)),
]
# A secret shorter than this could turn up in any file by chance; longer ones must not.
MIN_CHECKED_SECRET = 8
# Importing torch alone takes seconds on a cold laptop; a module that needs minutes does work
# at import time (training at the top level) that the grader's timeouts will not allow either.
IMPORT_TIMEOUT = 120.0

_MARKER = re.compile(r"#\s*(BEGIN|END) SOLUTION\b")
_DEF = re.compile(r"^(\s*)(?:async\s+)?def\s+(\w+)")


class ReleaseError(ValueError):
    """The release cannot be written; the message says why and what to do."""


class OutputExists(ReleaseError):
    """OUT already exists: a usage error (exit status 2); nothing is overwritten."""


class SubmitError(ValueError):
    """The submission cannot be zipped; the message says why and what to do."""


@dataclass
class Release:
    """A written student release."""
    out: str
    files: list = field(default_factory=list)  # relative paths, sorted
    regions: int = 0


@dataclass
class SubmissionZip:
    """A written submission archive."""
    out: str
    files: list = field(default_factory=list)  # member names
    size: int = 0


def find_regions(source, filename=MODULE):
    """[(begin line, end line, hint)] of the solution regions, 1-based; ReleaseError on a
    malformed marker (unclosed, nested, END without BEGIN, or a marker after code on a line).

    Markers are comments, found with the tokenizer, so text about them in a docstring is not
    one; a marker must be a comment on a line of its own.
    """
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except SyntaxError as e:  # IndentationError
        raise ReleaseError(f"{filename}, line {e.lineno}: cannot be read as Python ({e.msg}); "
                           "fix the syntax before releasing") from None
    except tokenize.TokenError as e:  # args: (message, (line, column))
        raise ReleaseError(f"{filename}, line {e.args[1][0]}: cannot be read as Python "
                           f"({e.args[0]}); fix the syntax before releasing") from None
    regions, begin = [], None
    for token in tokens:
        if token.type != tokenize.COMMENT:
            continue
        match = _MARKER.match(token.string)
        if not match:
            continue
        number = token.start[0]
        if token.line.strip() != token.string.strip():
            raise ReleaseError(f"{filename}, line {number}: the marker '{token.string.strip()}' "
                               "follows code on its line; put each marker on a line of its own")
        if match.group(1) == "BEGIN":
            if begin is not None:
                raise ReleaseError(f"{filename}, line {number}: BEGIN SOLUTION inside the region "
                                   f"opened at line {begin[0]} (regions cannot nest); close that "
                                   "region with # END SOLUTION first")
            hint = token.string[match.end():].strip().lstrip(":").strip()
            begin = (number, hint)
        else:
            if begin is None:
                raise ReleaseError(f"{filename}, line {number}: END SOLUTION without a BEGIN "
                                   "SOLUTION before it; add the BEGIN marker or remove this one")
            regions.append((begin[0], number, begin[1]))
            begin = None
    if begin is not None:
        raise ReleaseError(f"{filename}, line {begin[0]}: BEGIN SOLUTION is never closed; add "
                           "# END SOLUTION where the region ends")
    return regions


def _default_hint(lines, index):
    """'implement this part of <function>' for a marker at lines[index] without a hint."""
    indent = len(lines[index]) - len(lines[index].lstrip())
    for line in reversed(lines[:index]):
        match = _DEF.match(line)
        if match and len(match.group(1)) < indent:
            return f"implement this part of {match.group(2)}"
    return "implement this part"


def strip_solutions(source, filename=MODULE):
    """(student source, number of regions): every solution region, markers included, becomes
    `raise NotImplementedError("<hint>")` at the BEGIN marker's indentation.

    ReleaseError on malformed markers, or when the result is not valid Python (a marker pair
    must enclose whole statements).
    """
    regions = find_regions(source, filename)
    lines = source.splitlines(keepends=True)
    out, previous_end = [], 0
    for begin, end, hint in regions:
        out += lines[previous_end:begin - 1]
        marker = lines[begin - 1]
        indent = marker[:len(marker) - len(marker.lstrip())]
        text = hint or _default_hint(lines, begin - 1)
        out.append(f"{indent}raise NotImplementedError({json.dumps(text, ensure_ascii=False)})\n")
        previous_end = end
    out += lines[previous_end:]
    student = "".join(out)
    try:
        compile(student, filename, "exec")
    except SyntaxError as e:
        raise ReleaseError(f"{filename}: with its solutions stubbed, line {e.lineno} is not "
                           f"valid Python ({e.msg}); each marker pair must enclose whole "
                           "statements of one block") from None
    return student, len(regions)


def clear_notebook(data):
    """The notebook's JSON text with every output, execution count and run's metadata removed."""
    import nbformat

    notebook = nbformat.reads(data, as_version=4)
    for cell in notebook.cells:
        cell.metadata.pop("execution", None)
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    notebook.metadata.pop("widgets", None)
    nbformat.validate(notebook)
    return nbformat.writes(notebook) + "\n"


def _secrets(kit):
    """The instructor's secret values that a release must not contain."""
    values = [os.environ.get(SECRET_ENV, "").strip()]
    secret_file = os.path.join(kit, "grader_secret.txt")
    if os.path.isfile(secret_file):
        with open(secret_file) as f:
            values.append(f.read().strip())
    return [v for v in values if len(v) >= MIN_CHECKED_SECRET]


def _release_contents(kit):
    """{relative path in the release: bytes}, checked; ReleaseError when the kit is not fit."""
    module_path = os.path.join(kit, MODULE)
    try:
        with open(module_path, encoding="utf-8") as f:
            source = f.read()
    except OSError as e:
        raise ReleaseError(f"cannot read the reference '{module_path}' ({e.strerror}); run the "
                           "release from the instructor's kit") from None
    student, regions = strip_solutions(source)
    if regions == 0:
        raise ReleaseError(f"'{module_path}' has no # BEGIN SOLUTION regions, so the release "
                           "would ship it whole; mark the student's parts (this is the "
                           "instructor's kit, not a release)")
    files = {MODULE: student.encode()}
    with open(os.path.join(kit, NOTEBOOK), encoding="utf-8") as f:
        files[NOTEBOOK] = clear_notebook(f.read()).encode()
    for source_rel, target_rel in RELEASE_COPIES:
        path = os.path.join(kit, source_rel)
        if not os.path.isfile(path):
            raise ReleaseError(f"the kit has no '{source_rel}' (looked in {kit}); restore it "
                               "from git before releasing")
        with open(path, "rb") as f:
            files[target_rel] = f.read()
    for folder, suffixes in RELEASE_FOLDERS:
        for name in sorted(os.listdir(os.path.join(kit, folder))):
            path = os.path.join(kit, folder, name)
            if name.endswith(suffixes) and os.path.isfile(path):
                with open(path, "rb") as f:
                    files[os.path.join(folder, name)] = f.read()
    for secret in _secrets(kit):
        leaks = sorted(rel for rel, data in files.items() if secret.encode() in data)
        if leaks:
            raise ReleaseError(f"the instructor's secret seed appears in {', '.join(leaks)}; "
                               "remove it from those files before releasing")
    return files, regions


def build_release(*, out, kit=KIT_ROOT):
    """Write the student release into the new folder `out`; returns a Release.

    Nothing is written when the kit's markers are malformed or `out` exists.
    """
    out = os.path.abspath(out)
    if os.path.lexists(out):
        raise OutputExists(f"'{out}' already exists; the release goes into a new folder, so "
                           "pass one that does not exist yet (nothing was overwritten)")
    files, regions = _release_contents(kit)
    parent = os.path.dirname(out)
    os.makedirs(parent, exist_ok=True)
    building = tempfile.mkdtemp(dir=parent, prefix=f".{os.path.basename(out)}.building-")
    try:
        for rel, data in files.items():
            path = os.path.join(building, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as f:
                f.write(data)
            os.chmod(path, 0o755 if rel == "grade.py" else 0o644)
        for root, _, _ in os.walk(building):
            os.chmod(root, 0o755)
        if os.path.lexists(out):
            raise OutputExists(f"'{out}' appeared while the release was being built; nothing "
                               "was overwritten, pass a new folder")
        os.rename(building, out)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    return Release(out=out, files=sorted(files), regions=regions)


def write_release(*, out, kit=KIT_ROOT):
    """`grade.py release OUT`: build the release and say what was written; the exit code."""
    try:
        release = build_release(out=out, kit=kit)
    except ReleaseError as e:
        print(f"grade.py release: {e}", file=sys.stderr)
        return 2 if isinstance(e, OutputExists) else 1
    print(f"wrote the student release to {release.out}: {len(release.files)} files, "
          f"{release.regions} solution regions replaced by NotImplementedError stubs, no secret "
          "seed.")
    print(f"Check it: cd {release.out} && python -m pytest -q   (fails until the stubs are "
          "written; python grade.py self-checks)")
    return 0


def notebook_problems(path):
    """Why the notebook at `path` cannot be submitted yet, as a list of sentences (empty: fine)."""
    import nbformat

    try:
        with open(path, encoding="utf-8") as f:
            notebook = nbformat.read(f, as_version=4)
    except Exception as e:  # nbformat raises many kinds on malformed files
        return [f"{NOTEBOOK} is not a readable notebook ({type(e).__name__}: {str(e)[:150]}); "
                "open it in Jupyter, run it top to bottom and save it"]
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


_IMPORT_CHECK = "import two_layer_net"
_FRAME = re.compile(r'^\s*File "(?P<file>[^"]*)", line (?P<line>\d+)')


def import_problem(folder, timeout=IMPORT_TIMEOUT):
    """Why two_layer_net.py in `folder` does not import, in a sentence; None when it does.

    The import runs in a fresh interpreter in `folder` (like the notebook), with the grader's
    stand-in for linear_classifier after the folder's own modules.
    """
    from grader.batch import STANDIN

    with tempfile.TemporaryDirectory() as standin:
        with open(os.path.join(standin, OWN_HELPER), "w") as f:
            f.write(STANDIN)
        env = dict(os.environ, PYTHONPATH=standin, PYTHONDONTWRITEBYTECODE="1")
        try:
            done = subprocess.run([sys.executable, "-c", _IMPORT_CHECK], cwd=folder, env=env,
                                  stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                  timeout=timeout)
        except subprocess.TimeoutExpired:
            return (f"importing {MODULE} did not finish in {timeout:g} s; move any training or "
                    "long loop at the top level under `if __name__ == \"__main__\":`")
    if done.returncode == 0:
        return None
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    last = lines[-1].strip() if lines else f"exit status {done.returncode}"
    where = [m for m in map(_FRAME.match, lines)
             if m and os.path.basename(m.group("file")) == MODULE]
    at = f" ({MODULE}, line {where[-1].group('line')})" if where else ""
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
    problems = notebook_problems(os.path.join(folder, NOTEBOOK))
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
    return SubmissionZip(out=out, files=names, size=os.path.getsize(out))


def write_submission(*, folder, out):
    """`grade.py submit`: zip the submission or say why not; the exit code."""
    try:
        made = make_submission(folder=folder, out=out)
    except SubmitError as e:
        print(f"grade.py submit: {e}", file=sys.stderr)
        return 1
    print(f"wrote {made.out} ({', '.join(made.files)}; {made.size / 1024:.0f} KB): upload this "
          "file. Run `python grade.py` first to see your points on the self-check.")
    return 0
