"""`grade.py release OUT`: the student release (an instructor's tool; not part of the release).

The release is the kit without the solution and without the instructor's tools:

- `two_layer_net.py` with every region between `# BEGIN SOLUTION: <hint>` and `# END SOLUTION`
  replaced, at the marker's indentation, by a line `# YOUR CODE HERE: <hint>` (a student can
  search for it) and `raise NotImplementedError("<hint>")`. A region opened with
  `# BEGIN SOLUTION NO RAISE: <hint>` keeps only the `# YOUR CODE HERE` line, so that the code
  after it runs without the student's part (the loss of nn_forward_backward is returned before
  its gradients exist).
- the notebook with its outputs cleared and the instructor's cells (tagged `solution`) removed;
  its `question:<id>` and `answer:<id>` tags stay, and every answer cell is reset to the
  placeholder.
- the helpers (helpers.py and helpers_lib/), the toy fixtures, the public tests with a pytest
  configuration whose first run on the stubs is short, the grader for the self-check
  (`python grade.py`) and `grade.py submit`, the requirements and a student README; not this
  module nor grader/gradescope.py (the lists shared with them are in grader.kitfiles).
- in place of the kit's autograd oracle (helpers_lib/oracle.py), release/oracle.py, which
  replays helpers_lib/expected.pt: what the oracle gave, when the release was built, for every
  call the release's checks make (the self-check's public inputs, the notebook's huge-scores
  cases, the public tests run on the reference). So the release holds no working forward pass,
  loss or gradient; the instructor's hidden inputs stay with the kit's live oracle.

The instructor's secret seed never goes in. It is built in a temporary folder beside OUT and
renamed into place, so OUT either holds the whole release or nothing.
"""
import io
import json
import os
import re
import shutil
import sys
import tempfile
import subprocess
import tokenize
from dataclasses import dataclass, field

from grader import KIT_ROOT, PUBLIC_SEED, SECRET_ENV
from grader import cells
from grader.cells import ANSWER_PLACEHOLDER, MODULE, NOTEBOOK
from grader.kitfiles import GRADER, NOTEBOOK_SUPPORT, RELEASE_SUBSTITUTES, kit_files

README_TEMPLATE = os.path.join("release", "README.md")
# Copied as they are, beside the notebook's support and the grader (grader.kitfiles): (source
# in the kit, target in the release).
RELEASE_COPIES = [
    ("tests/conftest.py", "tests/conftest.py"),
    ("tests/test_two_layer_net.py", "tests/test_two_layer_net.py"),
    (README_TEMPLATE, "README.md"),
    # The student's requirements, not the kit's: no sandbox, browser or export tooling.
    (os.path.join("release", "requirements.txt"), "requirements.txt"),
    # The replay of recorded values, in place of the kit's autograd oracle.
    *((source, target) for target, source in RELEASE_SUBSTITUTES.items()),
]
# What the replay reads: the oracle's outputs for every input the release's checks use.
EXPECTED = "helpers_lib/expected.pt"
# The public tests whose oracle calls are recorded, run on the reference in a subprocess.
PUBLIC_TESTS = "tests/test_two_layer_net.py"
# The notebook's stability checks (its STABILITY_CASES cell): huge_scores_case(magnitude).
NOTEBOOK_MAGNITUDES = (1e3, 1e4)
# The public tests take ~4 s on the reference; a fresh interpreter imports torch in ~1.5 s.
RECORD_TIMEOUT = 300
# The instructor's tools: they build releases and autograders, and hold nothing a student runs.
INSTRUCTOR_ONLY = {"grader/release.py", "grader/gradescope.py", "grader/similar.py",
                   "grader/similar_html.py"}
# The release's pytest.ini (the kit's pyproject.toml has the instructor's settings). --tb=short
# keeps each failure to a few lines; test_two_layer_net.py reports each unwritten part once and
# skips the other tests it blocks, so the first run on the stubs fits on a screen. pythonpath:
# the tests import two_layer_net and helpers from the release's folder, and conftest from tests/.
RELEASE_PYTEST_INI = """[pytest]
testpaths = tests
pythonpath = . tests
addopts = -ra --tb=short
"""
# A secret shorter than this could turn up in any file by chance; longer ones must not.
MIN_CHECKED_SECRET = 8

_MARKER = re.compile(r"#\s*(BEGIN|END) SOLUTION\b(?P<no_raise>\s+NO RAISE\b)?")
_DEF = re.compile(r"^(\s*)(?:async\s+)?def\s+(\w+)")


class ReleaseError(ValueError):
    """The release cannot be written; the message says why and what to do."""


class OutputExists(ReleaseError):
    """OUT already exists: a usage error (exit status 2); nothing is overwritten."""


@dataclass
class Region:
    """A solution region of the reference: its marker lines (1-based), hint and kind of stub."""
    begin: int
    end: int
    hint: str
    raises: bool = True  # False for `# BEGIN SOLUTION NO RAISE`: the stub is the comment alone


@dataclass
class Release:
    """A written student release."""
    out: str
    files: list = field(default_factory=list)  # relative paths, sorted
    regions: int = 0


def find_regions(source, filename=MODULE):
    """[Region] of the solution regions, in order; ReleaseError on a malformed marker
    (unclosed, nested, END without BEGIN, or a marker after code on a line).

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
                                   f"opened at line {begin.begin} (regions cannot nest); close "
                                   "that region with # END SOLUTION first")
            hint = token.string[match.end():].strip().lstrip(":").strip()
            begin = Region(number, 0, hint, raises=not match.group("no_raise"))
        else:
            if begin is None:
                raise ReleaseError(f"{filename}, line {number}: END SOLUTION without a BEGIN "
                                   "SOLUTION before it; add the BEGIN marker or remove this one")
            begin.end = number
            regions.append(begin)
            begin = None
    if begin is not None:
        raise ReleaseError(f"{filename}, line {begin.begin}: BEGIN SOLUTION is never closed; add "
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
    `# YOUR CODE HERE: <hint>` and `raise NotImplementedError("<hint>")` at the BEGIN marker's
    indentation (the comment alone for a NO RAISE region).

    ReleaseError on malformed markers, or when the result is not valid Python (a marker pair
    must enclose whole statements).
    """
    regions = find_regions(source, filename)
    lines = source.splitlines(keepends=True)
    out, origin, previous_end = [], [], 0  # origin: the source line of each line of out
    for region in regions:
        out += lines[previous_end:region.begin - 1]
        origin += range(previous_end + 1, region.begin)
        marker = lines[region.begin - 1]
        indent = marker[:len(marker) - len(marker.lstrip())]
        text = region.hint or _default_hint(lines, region.begin - 1)
        out.append(f"{indent}# YOUR CODE HERE: {text}\n")
        if region.raises:
            message = json.dumps(text, ensure_ascii=False)
            out.append(f"{indent}raise NotImplementedError({message})\n")
        origin += [region.begin] * (len(out) - len(origin))
        previous_end = region.end
    out += lines[previous_end:]
    origin += range(previous_end + 1, len(lines) + 1)
    student = "".join(out)
    try:
        compile(student, filename, "exec")
    except SyntaxError as e:
        line = origin[min(e.lineno or 1, len(origin)) - 1] if origin else e.lineno
        raise ReleaseError(f"{filename}, line {line}: with its solutions stubbed, this line is "
                           f"not valid Python ({e.msg}); each marker pair must enclose whole "
                           "statements of one block") from None
    return student, len(regions)


def student_notebook(data):
    """The notebook's JSON text as students get it: every output, execution count and run's
    metadata removed, the cells tagged `solution` left out and every `answer:<id>` cell reset
    to the placeholder. Cell ids and the other tags stay."""
    import nbformat

    notebook = nbformat.reads(data, as_version=4)
    notebook.cells = [cell for cell in notebook.cells if not cells.is_solution(cell)]
    for cell in notebook.cells:
        cell.metadata.pop("execution", None)
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        if cells.cell_id(cell, cells.ANSWER) is not None:
            cell.source = ANSWER_PLACEHOLDER
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


def record_expected(kit):
    """The bytes of helpers_lib/expected.pt: the oracle's inputs and outputs (helpers_lib/oracle.py)
    for every call that the release's checks make, each once. The self-check's groups and the
    notebook's cases are built here, in this process, as the release builds them; the public
    tests run on the kit's reference in a subprocess that records its calls. ReleaseError when
    those tests fail on the reference (the release would hand out wrong expected values)."""
    import torch

    from grader.groups import build
    from helpers_lib import data, oracle

    with oracle.recording() as records:
        build(PUBLIC_SEED)
        for magnitude in NOTEBOOK_MAGNITUDES:
            data.huge_scores_case(magnitude)
    with tempfile.TemporaryDirectory() as scratch:
        path = os.path.join(scratch, "recorded.pt")
        env = {k: v for k, v in os.environ.items() if k != SECRET_ENV}
        env.update({oracle.RECORD_ENV: path, "PYTHONDONTWRITEBYTECODE": "1"})
        run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                              PUBLIC_TESTS], cwd=kit, env=env, capture_output=True, text=True,
                             timeout=RECORD_TIMEOUT)
        if run.returncode != 0 or not os.path.isfile(path):
            tail = "\n".join((run.stdout + run.stderr).splitlines()[-15:])
            raise ReleaseError(f"the public tests ({PUBLIC_TESTS}) do not pass on the kit's "
                               f"reference (exit status {run.returncode}), so their expected "
                               f"values cannot be recorded; fix the kit first:\n{tail}")
        records += torch.load(path, weights_only=True)
    buffer = io.BytesIO()
    torch.save(oracle.distinct(records), buffer)
    return buffer.getvalue()


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
        files[NOTEBOOK] = student_notebook(f.read()).encode()
    files["pytest.ini"] = RELEASE_PYTEST_INI.encode()
    try:
        shared = kit_files(NOTEBOOK_SUPPORT + GRADER, kit)
    except FileNotFoundError as e:
        raise ReleaseError(f"{e}; restore it from git before releasing") from None
    targets = {target for _, target in RELEASE_COPIES}
    copies = [(rel, rel) for rel in shared
              if rel not in INSTRUCTOR_ONLY and rel not in targets] + RELEASE_COPIES
    for source_rel, target_rel in copies:
        path = os.path.join(kit, source_rel)
        if not os.path.isfile(path):
            raise ReleaseError(f"the kit has no '{source_rel}' (looked in {kit}); restore it "
                               "from git before releasing")
        with open(path, "rb") as f:
            files[target_rel] = f.read()
    files[EXPECTED] = record_expected(kit)
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
          f"{release.regions} solution regions replaced by `# YOUR CODE HERE` stubs, no "
          "solution cells, no instructor tools, no secret seed.")
    print(f"Check it: cd {release.out} && python -m pytest -q   (fails until the stubs are "
          "written; python grade.py self-checks)")
    return 0
