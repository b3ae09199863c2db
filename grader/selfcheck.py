"""The self-check without the sandbox, for a student's own machine (Windows, macOS).

The Linux sandbox protects an instructor from 300 strangers' code; a student running the
self-check runs only their own. Here the rubric's groups run in this process, one after the
other, with the same inputs and judges as the sandboxed grader, and the same source audit.
"""
import os
import sys
import tempfile
import time

import torch

from grader import audit, child, report, standins
from grader.groups import build
from grader.rubric import RUBRIC, Verdict, apply_audit, locate_failures


# The .py files a student's submission.zip holds (grade.py submit): the module, and the helper
# module that code written for the original course imports, when the student has one.
SUBMITTED = ("two_layer_net.py", "linear_classifier.py")


def gradient_audit(folder="."):
    """What the grader's source audit (grader/audit.py: `audit`, then `gradient_verdict`) says
    of the gradient tests for the submitted files in `folder`: a sentence, or None when it has
    nothing to say. The notebook's gradient checks and `grade.py submit` print it."""
    files = {}
    for name in SUBMITTED:
        path = os.path.join(folder, name)
        if os.path.isfile(path):
            with open(path, "rb") as f:
                files[name] = f.read()
    return audit.gradient_verdict(audit.audit(files))


def grade_in_process(module_path, *, seed, public):
    """A SubmissionResult for the module at `module_path`, its code run in this process."""
    started = time.monotonic()
    folder = os.path.dirname(os.path.abspath(module_path))
    files = {n: open(os.path.join(folder, n), "rb").read() for n in os.listdir(folder)
             if n.endswith(".py") and os.path.isfile(os.path.join(folder, n))}
    findings = audit.audit(files)
    verdicts = {}
    # The student's code runs in this process: what it switches globally (autograd off at
    # import, a default dtype) is put back afterwards, for the caller (a notebook, a test run).
    grad_enabled, default_dtype = torch.is_grad_enabled(), torch.get_default_dtype()
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
            torch.set_grad_enabled(grad_enabled)
            torch.set_default_dtype(default_dtype)
    flags = audit.flags(findings)
    apply_audit(verdicts, findings, flags)
    locate_failures(verdicts, files)
    return report.graded_result(verdicts, "", time.monotonic() - started, {"flags": flags}, public)
