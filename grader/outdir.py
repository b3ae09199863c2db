"""The results folder (`--out DIR`): checked before anything is graded, locked while a batch runs.

One grader at a time writes a folder: a second one on the same DIR stops at once with a usage
error that says which process holds it (a lock file through `filelock`, released by the kernel
even when its holder is killed). grades.csv lists every submission graded into DIR, this batch's
and earlier ones', so grading a class in several runs loses no row; but a batch of other SUBs
(a second export) into a folder that holds rows is refused unless asked for (`--add`): each
results.json remembers which SUB it came from (`origin`, a digest of its path).
"""
import contextlib
import datetime
import json
import os
import socket

import filelock

from grader import report
from grader.submission import RESERVED, UsageError, origin_id

LOCK_FILE = ".grade.lock"
OWNER_FILE = ".grade.lock.owner"


def check(out_dir):
    """Raise UsageError unless out_dir is a folder this grader can create or write."""
    path = os.path.abspath(out_dir)
    if os.path.exists(path) and not os.path.isdir(path):
        raise UsageError(f"--out '{out_dir}' is a file, not a folder; pass a folder for the "
                         "results (it is created if it does not exist)")
    existing = path
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise UsageError(f"--out '{out_dir}' lies under '{existing}', which is a file; pass a "
                         "folder for the results")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(f"--out '{out_dir}': '{existing}' is not writable; pass a folder you "
                         "can write")


@contextlib.contextmanager
def locked(out_dir):
    """Check, create and lock out_dir for the duration of the block."""
    check(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    lock = filelock.FileLock(os.path.join(out_dir, LOCK_FILE))
    try:
        lock.acquire(timeout=0)
    except filelock.Timeout:
        raise UsageError(f"--out '{out_dir}' is busy: {_owner(out_dir)} is grading into it; wait "
                         "for it to finish or pass another folder") from None
    owner = os.path.join(out_dir, OWNER_FILE)
    try:
        report.write_atomically(owner, json.dumps({
            "pid": os.getpid(), "host": socket.gethostname(),
            "since": datetime.datetime.now().isoformat(timespec="seconds")}))
        yield
    finally:
        with contextlib.suppress(OSError):
            os.unlink(owner)
        lock.release()


def _owner(out_dir):
    try:
        with open(os.path.join(out_dir, OWNER_FILE)) as f:
            owner = json.load(f)
        return f"grade.py (process {owner['pid']} on {owner['host']}, since {owner['since']})"
    except (OSError, ValueError, KeyError, TypeError):
        return "another grade.py"


def earlier_results(out_dir, exclude):
    """{name: SubmissionResult} of every complete results folder in out_dir not in `exclude`."""
    found = {}
    for name in sorted(os.listdir(out_dir)):
        path = os.path.join(out_dir, name, "results.json")
        if name in exclude or name.startswith(".") or name.lower() in RESERVED or not os.path.isfile(path):
            continue
        try:
            with open(path) as f:
                found[name] = report.result_from_json(json.load(f))
        except (OSError, ValueError, TypeError):
            continue
    return found



def check_sources(out_dir, paths, names, *, add):
    """Raise UsageError when out_dir holds rows that are not this batch's and that came from
    other SUBs (a second export mixed into the first's grades.csv), unless `add`."""
    if add:
        return
    ours = {origin_id(p) for p in paths}
    others = {name: r for name, r in earlier_results(out_dir, exclude=names).items()
              if (r.extra_data or {}).get("origin") not in ours}
    if others:
        shown = ", ".join(sorted(others)[:3]) + (", ..." if len(others) > 3 else "")
        raise UsageError(f"--out '{out_dir}' already holds {len(others)} rows graded from other "
                         f"submissions ({shown}); pass --add to put these in the same "
                         "grades.csv, or choose another --out")
