"""`grade.py gradescope OUT.zip`: a Gradescope autograder built from the kit.

Gradescope unpacks the zip into /autograder/source, runs `setup.sh` once as root when it builds
the image, and runs `run_autograder` (copied to /autograder) for every submission; see
release/gradescope/ for both scripts. The zip holds them, the files the grader needs (grade.py,
grader/, helpers.py and helpers_lib/, tests/fixtures/, requirements.txt: grader.kitfiles) and
grader_secret.txt with the secret seed. It never holds the reference solution.
"""
import io
import os
import secrets
import sys
import zipfile
from dataclasses import dataclass, field

from grader import KIT_ROOT
from grader.kitfiles import GRADER, NOTEBOOK_SUPPORT, kit_files
from grader.report import write_atomically

SECRET_NAME = "grader_secret.txt"
OPTIONS_NAME = "grade_options.txt"  # run_autograder passes its words to grade.py
VISIBILITIES = ("visible", "after_due_date", "hidden")
SCRIPTS = "release/gradescope"
SCRIPT_NAMES = ["setup.sh", "run_autograder"]
# Never in the autograder: the reference solution (and the student's notebook, which the
# grader does not need).
FORBIDDEN = {"two_layer_net.py", "two_layer_net.ipynb"}
# A fixed time for every member, so that the same kit and seed give the same archive.
ZIP_TIME = (2020, 1, 1, 0, 0, 0)


class GradescopeError(ValueError):
    """The autograder cannot be built; the message says why and what to do."""


@dataclass
class Autograder:
    """A written autograder zip."""
    out: str
    files: list = field(default_factory=list)  # member names, in the archive's order
    secret_file: str = None  # where a newly generated secret was saved, else None


def _members(kit):
    """[(name in the zip, path in the kit, mode)] of everything but the secret."""
    members = [(name, os.path.join(kit, SCRIPTS, name), 0o755) for name in SCRIPT_NAMES]
    try:
        shared = kit_files(NOTEBOOK_SUPPORT + GRADER, kit)
    except FileNotFoundError as e:
        raise GradescopeError(f"{e}; restore it from git before building the autograder") from None
    members += [(rel, os.path.join(kit, rel), 0o644) for rel in shared]
    for name, path, _ in members:
        if not os.path.isfile(path):
            raise GradescopeError(f"the kit has no '{os.path.relpath(path, kit)}' (looked in "
                                  f"{kit}); restore it from git before building the autograder")
        assert os.path.basename(name) not in FORBIDDEN, f"{name} must never be in the autograder"
    return members


def _save_new_secret(path):
    """Generate a secret seed and write it to `path` (mode 0600); returns the seed."""
    if os.path.isfile(path):
        with open(path) as f:
            existing = f.read().strip()
        if existing:
            raise GradescopeError(f"'{path}' already holds a secret seed; build with it (grade.py "
                                  "reads it unless $GRADER_SECRET_SEED is set), not a new one")
    seed = secrets.token_hex(16)
    write_atomically(path, seed + "\n", mode=0o600)
    return seed


def make_autograder(*, out, seed, kit=KIT_ROOT, visibility="visible"):
    """Write the autograder zip to `out` (atomically); returns an Autograder.

    `seed` is the instructor's secret; None generates one and saves it as grader_secret.txt in
    the kit (ignored by git) so that a local regrade draws the same hidden inputs.
    `visibility`: when students see each test's result (Gradescope's visible, after_due_date
    or hidden).
    """
    if visibility not in VISIBILITIES:
        raise GradescopeError(f"visibility '{visibility}' is not one of {', '.join(VISIBILITIES)}")
    out = os.path.abspath(out)
    if not out.endswith(".zip"):
        raise GradescopeError(f"'{out}' does not end in .zip; Gradescope takes a zip, so pass "
                              "a name like autograder.zip")
    if os.path.isdir(out):
        raise GradescopeError(f"'{out}' is a folder; pass the name of the zip to write")
    members = _members(kit)
    secret_file = None
    if seed is None:
        secret_file = os.path.join(kit, SECRET_NAME)
        seed = _save_new_secret(secret_file)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, path, mode in members:
            with open(path, "rb") as source:
                _add(archive, name, source.read(), mode)
        _add(archive, SECRET_NAME, (str(seed) + "\n").encode(), 0o600)
        _add(archive, OPTIONS_NAME, f"--visibility {visibility}\n".encode(), 0o644)
    write_atomically(out, buffer.getvalue(), mode=0o600)  # it holds the secret
    return Autograder(out=out, files=[m[0] for m in members] + [SECRET_NAME, OPTIONS_NAME],
                      secret_file=secret_file)


def _add(archive, name, data, mode):
    info = zipfile.ZipInfo(name, date_time=ZIP_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = (0o100000 | mode) << 16  # a regular file with these permissions
    archive.writestr(info, data)


def build_autograder(*, out, seed, kit=KIT_ROOT, visibility="visible"):
    """`grade.py gradescope OUT.zip`: build the autograder and say what was written; the exit
    code."""
    try:
        made = make_autograder(out=out, seed=seed, kit=kit, visibility=visibility)
    except GradescopeError as e:
        print(f"grade.py gradescope: {e}", file=sys.stderr)
        return 2
    if made.secret_file:
        print(f"no secret seed was configured, so one was generated: it is in the zip and in "
              f"{made.secret_file} (keep it private; `python grade.py SUB --out DIR` now grades "
              "with the same hidden inputs as Gradescope)")
    print(f"wrote {made.out} ({len(made.files)} files, with the secret seed, without the "
          f"reference solution; tests {visibility}): upload it as the assignment's autograder "
          "on Gradescope (Ubuntu 22.04 base image)")
    return 0
