"""The kit's autograder; `grade.py` is its command line.

Modules: rubric (inputs, expected values, verdicts), child (what runs in a submission's
process), worker (the forking worker), sandbox (the walls), wire (the data format between
processes), submission (loading .py, folders and zips), batch (the pool and the batch), report
(results.json, grades.csv, tables).
"""
import hashlib
import os

KIT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


NOT_GRADING = {"release.py", "gradescope.py"}  # tools whose edits change no verdict


def _source_hash():
    """A digest of the grader's code, so that results from other code are never reused."""
    digest = hashlib.sha256()
    folder = os.path.dirname(os.path.abspath(__file__))
    for name in sorted(os.listdir(folder)):
        if name.endswith(".py") and name not in NOT_GRADING:
            with open(os.path.join(folder, name), "rb") as f:
                digest.update(name.encode() + b"\0" + f.read())
    return digest.hexdigest()[:12]


GRADER_VERSION = "1.0+" + _source_hash()
SECRET_ENV = "GRADER_SECRET_SEED"
SECRET_FILE = os.path.join(KIT_ROOT, "grader_secret.txt")


def resolve_seed():
    """(seed, public): the instructor's secret from $GRADER_SECRET_SEED or grader_secret.txt,
    else the public self-check seed."""
    from grader.rubric import PUBLIC_SEED

    secret = os.environ.get(SECRET_ENV, "").strip()
    if not secret and os.path.isfile(SECRET_FILE):
        with open(SECRET_FILE) as f:
            secret = f.read().strip()
    return (secret, False) if secret else (PUBLIC_SEED, True)
