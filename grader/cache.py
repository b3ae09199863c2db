"""The result cache: a submission is not graded again while nothing its results depend on changed.

Each results folder holds `.grade-meta.json`, the fingerprint of what produced its results.json:
the submission's content, the grader's code, the seed, whether its notebook was executed, and
the limits it ran under (a rerun with a larger --timeout or --memory grades again what the old
limits may have cut short).
A rerun of the same batch (after Ctrl-C, a crash, or with more submissions) reuses every result
whose fingerprint still matches and regrades the rest.
"""
import hashlib
import json
import os

from grader import GRADER_VERSION, report

META_FILE = ".grade-meta.json"


def seed_id(seed):
    """A stand-in for the seed that reveals nothing about it."""
    return hashlib.sha256(f"seed:{seed}".encode()).hexdigest()[:16]


def fingerprint(sub, seed, execute, limits=None):
    """What a submission's results depend on: its content, the grader, the seed, --execute,
    and `limits` (a batch.Limits: seconds per group, memory, seconds per notebook)."""
    executed = bool(execute and sub.has_notebook)
    found = {"content_hash": sub.content_hash, "grader_version": GRADER_VERSION,
             "seed": seed_id(seed), "execute": executed}
    if limits is not None:
        found["limits"] = {"timeout": float(limits.timeout), "memory_mb": int(limits.memory_mb),
                           "notebook_timeout": float(limits.notebook_timeout) if executed else None}
    return found


def cached_result(result_dir, fingerprint_now):
    """The SubmissionResult in result_dir when it is complete and its fingerprint matches, else None."""
    try:
        with open(os.path.join(result_dir, META_FILE)) as f:
            meta = json.load(f)
        with open(os.path.join(result_dir, "results.json")) as f:
            data = json.load(f)
        if meta != fingerprint_now:
            return None
        return report.result_from_json(data)
    except (OSError, ValueError, TypeError, KeyError):
        return None


def store(result_dir, result, fingerprint_now, files=None):
    """Write the result's files, results.json, then the fingerprint (last: it marks completion)."""
    for name, data in (files or {}).items():
        report.write_atomically(os.path.join(result_dir, name), data)
    report.write_results_json(os.path.join(result_dir, "results.json"), result)
    report.write_atomically(os.path.join(result_dir, META_FILE), json.dumps(fingerprint_now))
