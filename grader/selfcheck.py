"""The self-check without the sandbox, for a student's own machine (Windows, macOS).

The Linux sandbox protects an instructor from 300 strangers' code; a student running the
self-check runs only their own. Here the rubric's groups run in this process, one after the
other, with the same inputs and judges as the sandboxed grader, and the same source audit.
"""
import os
import sys
import tempfile
import time

from grader import audit, child, report, standins
from grader.groups import build
from grader.rubric import RUBRIC, Verdict, apply_audit


def grade_in_process(module_path, *, seed, public):
    """A SubmissionResult for the module at `module_path`, its code run in this process."""
    started = time.monotonic()
    folder = os.path.dirname(os.path.abspath(module_path))
    files = {n: open(os.path.join(folder, n), "rb").read() for n in os.listdir(folder)
             if n.endswith(".py") and os.path.isfile(os.path.join(folder, n))}
    findings = audit.audit(files)
    verdicts = {}
    with tempfile.TemporaryDirectory() as standin:
        standins.write(standin)
        sys.path.append(standin)
        try:
            for group in build(seed):
                meta, arrays = child.run(group.name, module_path, group.meta, group.arrays)
                why = meta["errors"].get("import")
                if why:
                    verdicts = {n: Verdict(False, f"importing two_layer_net.py raised {why}")
                                for n in RUBRIC}
                    break
                verdicts.update(group.judge(meta, arrays))
        finally:
            sys.path.remove(standin)
    flags = audit.flags(findings)
    apply_audit(verdicts, findings, flags)
    return report.graded_result(verdicts, "", time.monotonic() - started, {"flags": flags}, public)
