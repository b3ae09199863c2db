"""The kit's autograder; `grade.py` is its command line.

The path a submission takes, and the module for each step:

- `exports` then `submission`, one way: `exports.collect` turns each command-line SUB into
  Submissions (an instructor's export, recognised by its exact layout or named by --export,
  into one a student, with who they are); `submission` reads one and gives unique, safe names.
- `outdir`: the results folder is checked and locked; `cache` skips results that are current.
- `salvage`: a top-level function or class the rubric never calls that this Python cannot
  parse (Python 3.12 syntax, mostly in tuning code) is stubbed, not the whole module.
- `audit`: the grader's own process reads the source (autograd, finite differences, tampering,
  unverifiable code) and explains it; its rules are one table, `audit_rules`. `locate` reads
  it there too, to name in a failed test's feedback the line that computes what it checks.
- `rubric` and `groups/`: the inputs drawn per submission from the seed, the expected values
  from an independent autograd oracle, and each group's judge; a group module also holds what
  its child calls (`groups/forward.py`, `backward.py`, `train.py`, `predict.py`), with the
  child-side helpers of `calls`. Imports run groups -> rubric, calls; child -> groups.
- `standins`: the course's modules the grader supplies (`linear_classifier`, `eecs598`,
  `a2_helpers`).
- `batch`: the job slots; each drives a `worker` process (python -m grader.worker) that
  relays and supervises; replies travel in the `wire` format and are checked before judging.

The process model (one module a process role; docs/process-model.md has it in full):

- the grader's process (`batch`, and the modules above it) holds the seed, the expected values
  and every submission's files; it never runs submission code. It starts one `worker` a slot.
- the `worker` (the slot's supervisor) enters the walls every child shares (`namespaces`: a
  file system view, no network), then forks the `zygote` before it reads any request. It then
  relays: a request from the grader goes to the child through the child's own pipe, the
  child's output and result come back to the worker and on to the grader. It holds
  submissions' data, so it never forks a child. Without namespaces it also forks the `reaper`.
- the `zygote` imports torch (one thread) and what students import, and forks every child on
  the worker's word; it never receives any submission's data, so no child starts with another
  submission's data in its memory.
- the `child` reads its request, puts up its walls (`namespaces`: PID, IPC, mount with a tmpfs
  scratch; `cgroup`: memory; `sandbox`: rlimits, Landlock, the uid; `seccomp`: no keyring, and
  for a test child no new program or process), imports the submission and runs one group.
- `notebook` (with `html_report`): with --execute, the notebook runs in a child too (through
  `notebook.client`, as main.py's does) and becomes a sanitised report.html, cut to size and
  rendered in a `render` process (python -m grader.render) capped in CPU time, memory and wall
  clock; `answers` gathers the written answers into answers.html (rendered there too) and
  manual.csv, merges the TA's scores (kept in manual-merged.json across reruns) and writes
  the index.html of the results folder.
- `report`: results.json (Gradescope's schema), the table, the summary and the histogram;
  `gradebook`: grades.csv and the Canvas and Gradescope imports (one row a student, safe
  cells, late penalties in their own column); `feedback`: each student's feedback.html.
- `selfcheck`: the self-check without a sandbox, where there is none (Windows, macOS).
- `similar` (with `similar_html`): `grade.py similar`, pairs of submissions that share code or
  written answers (starter code and common passages left out), ranked for a person to judge.
- The tools: `release` (the student release), `submit` (the student's zip), `gradescope` (the
  autograder zip); `cells` says how the notebook marks its cells (tags, ids, the answer
  placeholder) for release, submit and answers; `kitfiles` lists the kit's files that travel
  (into a notebook's work folder, the release and the autograder).
"""
import hashlib
import os

KIT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


NOT_GRADING = {"release.py", "gradescope.py", "submit.py", "answers.py",  # tools whose edits
               "gradebook.py", "feedback.py", "similar.py", "similar_html.py"}  # change no verdict


def _source_hash():
    """A digest of the grader's code, so that results from other code are never reused."""
    digest = hashlib.sha256()
    folder = os.path.dirname(os.path.abspath(__file__))
    # The grader's package, and the kit code its rubric uses (rel_error, the training schedule).
    walked = [*os.walk(folder), *os.walk(os.path.join(KIT_ROOT, "helpers_lib"))]
    for root, _, names in sorted(walked):
        for name in sorted(names):
            if name.endswith(".py") and name not in NOT_GRADING:
                path = os.path.join(root, name)
                with open(path, "rb") as f:
                    digest.update(os.path.relpath(path, KIT_ROOT).encode() + b"\0" + f.read())
    return digest.hexdigest()[:12]


GRADER_VERSION = "1.0+" + _source_hash()
SECRET_ENV = "GRADER_SECRET_SEED"
PUBLIC_SEED = "public-self-check"  # the self-check's inputs, the same on every machine
SECRET_FILE = os.path.join(KIT_ROOT, "grader_secret.txt")


def resolve_seed():
    """(seed, public): the instructor's secret from $GRADER_SECRET_SEED or grader_secret.txt,
    else the public self-check seed."""
    secret = os.environ.get(SECRET_ENV, "").strip()
    if not secret and os.path.isfile(SECRET_FILE):
        with open(SECRET_FILE) as f:
            secret = f.read().strip()
    return (secret, False) if secret else (PUBLIC_SEED, True)
