"""Grading submissions: a pool of workers, one sandboxed child per test group, one result each.

The grader's process draws the inputs, computes the expected values and judges; it never runs
submission code. Each of `jobs` threads drives its own worker (a fresh interpreter with a clean
environment, see grader.worker) through one submission at a time, one child per test group;
a submission that fails at import (an exception, or a hang) fails every test at once. Whatever a child does, its tests score 0 with the reason and the rest
goes on; results.json is written for every submission, atomically.
"""
import fcntl
import hashlib
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass

from grader import GRADER_VERSION, KIT_ROOT, notebook, report, rubric, sandbox, submission, wire
from grader.rubric import RUBRIC, Verdict

STANDIN = '''"""Stand-in for the course's linear_classifier module (supplied by the grader)."""
import torch


def sample_batch(X, y, num_train, batch_size):
    """batch_size examples drawn uniformly with replacement, on the inputs' device."""
    idx = torch.randint(num_train, (batch_size,), device=X.device)
    return X[idx], y[idx]
'''
DEFAULT_SANDBOX_UID = 61000
UID_SEARCH = 4000
REPLY_CAP = (64 << 20) + (1 << 20)
META_FILE = ".grade-meta.json"


@dataclass
class Limits:
    timeout: float
    memory_mb: int
    notebook_timeout: float = 600.0


class WorkerCrash(RuntimeError):
    """The worker process itself died or broke the protocol."""


class Worker:
    """One `python -m grader.worker` process and the pipe to it."""

    def __init__(self):
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8",
               "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
               "PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1", "PYTHONPATH": KIT_ROOT}
        self.process = subprocess.Popen([sys.executable, "-m", "grader.worker"], cwd=KIT_ROOT,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)

    def run(self, request, arrays):
        message = wire.encode(request, arrays)
        try:
            self.process.stdin.write(struct.pack(">Q", len(message)) + message)
            self.process.stdin.flush()
            header = self.process.stdout.read(8)
            if len(header) < 8:
                raise WorkerCrash("the grader's worker process stopped")
            (size,) = struct.unpack(">Q", header)
            if size > REPLY_CAP:
                raise WorkerCrash("the grader's worker sent an oversized reply")
            return wire.decode(self.process.stdout.read(size), REPLY_CAP)
        except (OSError, wire.WireError) as e:
            raise WorkerCrash(f"the grader's worker process failed ({e})") from e

    def close(self):
        try:
            self.process.stdin.close()
            self.process.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            self.process.kill()
            self.process.wait()


def claim_sandbox_uid(start):
    """(uid, lock file) for a uid at or above `start` that no other running grader holds.

    Each job slot's children run as their own uid, and the worker kills every process of that
    uid after each child; two graders at once (two batches, parallel CI jobs) must therefore
    never share one. The claim is an exclusive lock, released when the file is closed.
    """
    for uid in range(start, start + UID_SEARCH):
        lock = open(os.path.join(tempfile.gettempdir(), f"two-layer-net-sandbox-uid-{uid}.lock"), "a")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            lock.close()
            continue
        return uid, lock
    raise RuntimeError(f"no free sandbox uid in {start}..{start + UID_SEARCH - 1}; set "
                       "GRADER_SANDBOX_UID to another range")


def failure_reason(report_meta, limits):
    """Why a child returned no usable result, in a sentence a student can act on."""
    if report_meta.get("status") == "timeout":
        return f"timed out after {limits.timeout:g} s (an endless loop, or far too slow)"
    if report_meta.get("result_overflow"):
        return "returned more data than the grader accepts"
    sig = report_meta.get("signal")
    if sig == "SIGXCPU":
        return f"used more than {limits.timeout:g} s of CPU time"
    if sig:
        return f"the process was killed by {sig} (a crash, or memory beyond the {limits.memory_mb} MB limit)"
    code = report_meta.get("exit_code")
    output = report_meta.get("output", "")
    if code == 70 and "grader child:" in output:
        return ("the grader's child process failed (sandbox or grader fault, not yours): "
                + output.split("grader child:")[-1].strip())
    return (f"the process exited (status {code}) before returning its results "
            "(sys.exit, os._exit or a crash at the C level)")


def annotate_memory(meta, limits):
    """Say so when an exception in the child came from the memory limit."""
    for key, text in (meta or {}).get("errors", {}).items():
        if "can't allocate memory" in text or text.startswith("MemoryError"):
            meta["errors"][key] = f"{text}\n(over the {limits.memory_mb} MB memory limit)"


class Grader:
    """Grades submissions against one seed's rubric with a pool of workers."""

    def __init__(self, seed, limits, jobs, public, execute=False):
        self.groups = rubric.build(seed)
        self.limits = limits
        self.jobs = max(1, jobs)
        self.public = public
        self.execute = execute
        # Where no other uid may run this Python (a private home folder), notebooks run as root
        # stripped of every capability instead; the tests' children never need to exec Python.
        self.notebook_as_root = os.geteuid() == 0 and not all(
            sandbox.world_readable(p) for p in
            (os.path.dirname(os.path.realpath(sys.executable)), *sandbox.python_paths()))
        self.seed_id = hashlib.sha256(f"seed:{seed}".encode()).hexdigest()[:16]
        self.run_root = tempfile.mkdtemp(prefix="two-layer-net-grade-")
        os.chmod(self.run_root, 0o711)
        self.standin = os.path.join(self.run_root, "standin")
        os.makedirs(self.standin, mode=0o755)
        with open(os.path.join(self.standin, "linear_classifier.py"), "w") as f:
            f.write(STANDIN)
        os.chmod(os.path.join(self.standin, "linear_classifier.py"), 0o644)
        self._local = threading.local()
        self._workers = []
        self._lock = threading.Lock()
        self._locks = []
        self._next_uid = 0

    def close(self):
        for worker in self._workers:
            worker.close()
        for lock in self._locks:
            lock.close()
        shutil.rmtree(self.run_root, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _worker(self):
        """This thread's worker and the (uid, gid) its children run as (None when not root)."""
        if getattr(self._local, "worker", None) is None:
            with self._lock:
                ids = (None, None)
                if os.geteuid() == 0:
                    start = int(os.environ.get("GRADER_SANDBOX_UID", DEFAULT_SANDBOX_UID))
                    uid, lock = claim_sandbox_uid(max(start, self._next_uid))
                    self._next_uid = uid + 1
                    self._locks.append(lock)
                    ids = (uid, uid)
                self._local.ids = ids
                self._local.worker = Worker()
                self._workers.append(self._local.worker)
        return self._local.worker, self._local.ids

    def _replace_worker(self):
        with self._lock:
            old = self._local.worker
            self._workers.remove(old)
            old.close()
            self._local.worker = Worker()
            self._workers.append(self._local.worker)

    def grade(self, sub):
        """(SubmissionResult, {file name: bytes}) for one loaded Submission; the files (the
        notebook's report.html) go beside its results.json."""
        started = time.monotonic()
        if sub.error:
            verdicts = {name: Verdict(False, f"not graded: {sub.error}") for name in RUBRIC}
            return report.make_result(verdicts, f"Could not grade this submission: {sub.error}",
                                      time.monotonic() - started, self._extra(sub)), {}
        folder = tempfile.mkdtemp(dir=self.run_root)
        os.chmod(folder, 0o711)
        files, extra = {}, self._extra(sub)
        try:
            module_path = submission.stage(sub, os.path.join(folder, "submission"))
            verdicts, note = self._run_groups(module_path, folder)
            if self.execute and sub.has_notebook:
                extra["notebook"], files["report.html"] = self._run_notebook(sub, folder)
                note += " Notebook: " + extra["notebook"]
            elif self.execute:
                note += " Notebook: none submitted (two_layer_net.ipynb)."
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        score = sum(RUBRIC[n] for n, v in verdicts.items() if v.passed)
        output = f"two_layer_net.py: {score}/{sum(RUBRIC.values())} points." + note
        if self.public:
            output += " Graded with the public self-check inputs, not the instructor's."
        return report.make_result(verdicts, output, time.monotonic() - started, extra), files

    def _run_notebook(self, sub, folder):
        """Execute the submission's notebook in a sandboxed child: (summary, report.html bytes)."""
        worker, (uid, gid) = self._worker()
        if self.notebook_as_root:
            uid = gid = None
        workdir = tempfile.mkdtemp(prefix="scratch-notebook-", dir=folder)
        notebook_path = notebook.prepare_workdir(sub.files, workdir, uid)
        request = {"group": "notebook", "notebook_path": notebook_path, "scratch": workdir,
                   "timeout": self.limits.notebook_timeout, "memory_mb": self.limits.memory_mb,
                   "uid": uid, "gid": gid, "read_paths": [self.standin], "standin": self.standin}
        outcome = self._supervise(worker, request, {})
        executed = None
        if outcome.failure:
            summary = f"could not be executed: {outcome.failure}"
        else:
            try:
                executed = notebook.read_notebook(outcome.arrays["notebook"].numpy().tobytes())
                summary = notebook.summarise(outcome.meta)
            except (KeyError, ValueError) as e:
                summary = f"the execution returned no valid notebook ({e})"
        if executed is None:  # show what the student submitted, with their own outputs
            try:
                executed = notebook.read_notebook(sub.files[submission.NOTEBOOK])
            except ValueError as e:
                summary += f" The submitted file is not a valid notebook either: {e}"
                executed = notebook.read_notebook(notebook.EMPTY_NOTEBOOK)
            summary += " The report shows the notebook as submitted."
        return summary, notebook.to_html(executed, summary).encode()

    def _extra(self, sub):
        return {"grader_version": GRADER_VERSION, "content_hash": sub.content_hash}

    def _run_groups(self, module_path, folder):
        verdicts = {}
        for group in self.groups:
            outcome = self._run_child(group, module_path, folder)
            import_error = outcome.meta.get("errors", {}).get("import") if outcome.meta else None
            if import_error or (outcome.failure and not outcome.imported):
                why = (f"importing two_layer_net.py raised {import_error}" if import_error else
                       f"while importing two_layer_net.py: {outcome.failure}")
                return {name: Verdict(False, why) for name in RUBRIC}, " " + why.splitlines()[0]
            if outcome.failure:
                verdicts.update({t: Verdict(False, outcome.failure) for t in group.tests})
                continue
            annotate_memory(outcome.meta, self.limits)
            try:
                verdicts.update(group.judge(outcome.meta, outcome.arrays))
            except (KeyError, TypeError, ValueError, IndexError, AttributeError, RuntimeError) as e:
                verdicts.update({t: Verdict(False, f"returned malformed results ({e})")
                                 for t in group.tests})
        return verdicts, ""

    def _run_child(self, group, module_path, folder):
        """Run one group in a sandboxed child; an Outcome with its results or why it has none."""
        worker, (uid, gid) = self._worker()
        scratch = tempfile.mkdtemp(prefix=f"scratch-{group.name}-", dir=folder)
        if uid is not None:
            os.chown(scratch, uid, gid)
        request = {"group": group.name, "module_path": module_path, "meta": group.meta,
                   "scratch": scratch, "timeout": self.limits.timeout,
                   "memory_mb": self.limits.memory_mb, "uid": uid, "gid": gid,
                   "read_paths": [os.path.dirname(module_path), self.standin],
                   "standin": self.standin}
        return self._supervise(worker, request, group.arrays)

    def _supervise(self, worker, request, arrays):
        """Send one request to the worker; an Outcome from the child's validated reply."""
        try:
            report_meta, reply = worker.run(request, arrays)
        except WorkerCrash as e:
            self._replace_worker()
            return Outcome(failure=str(e), imported=True)
        imported = bool(report_meta.get("imported"))
        result = reply.get("result")
        if result is None or result.numel() == 0 or report_meta.get("status") != "exited":
            return Outcome(failure=failure_reason(report_meta, self.limits), imported=imported)
        try:
            child_meta, child_arrays = wire.decode(result.numpy().tobytes(), REPLY_CAP)
        except wire.WireError as e:
            return Outcome(failure=f"returned malformed results ({e})", imported=imported)
        if not isinstance(child_meta, dict):
            return Outcome(failure="returned malformed results (no report)", imported=imported)
        return Outcome(meta=child_meta, arrays=child_arrays, imported=imported)


@dataclass
class Outcome:
    """What one child gave back: its meta and arrays, or the reason it gave nothing usable."""
    meta: dict = None
    arrays: dict = None
    failure: str = None
    imported: bool = False


def fingerprint(sub, grader):
    """What a submission's results depend on: its content, the grader, the seed, --execute."""
    return {"content_hash": sub.content_hash, "grader_version": GRADER_VERSION,
            "seed": grader.seed_id, "execute": grader.execute and sub.has_notebook}


def unchanged(result_dir, sub, grader):
    """True when result_dir holds complete results for the submission's current fingerprint."""
    try:
        with open(os.path.join(result_dir, META_FILE)) as f:
            meta = json.load(f)
        with open(os.path.join(result_dir, "results.json")) as f:
            json.load(f)
    except (OSError, ValueError):
        return False
    return meta == fingerprint(sub, grader)


def unique_names(subs):
    """Give submissions that share a name a numbered suffix (alice, alice-2, ...)."""
    seen = {}
    for sub in subs:
        count = seen.get(sub.name, 0) + 1
        seen[sub.name] = count
        if count > 1:
            sub.name = f"{sub.name}-{count}"
    return subs


def grade_batch(paths, *, out_dir, seed, public, limits, jobs, force=False, progress=True,
                execute=False):
    """Grade every path into out_dir; returns {name: SubmissionResult} for all of them.

    A submission whose results in out_dir match its fingerprint is not graded again unless
    `force`; every file is written atomically, results.json last, so an interrupted batch
    resumes where it stopped.
    """
    subs = unique_names([submission.load(p) for p in paths])
    os.makedirs(out_dir, exist_ok=True)
    results = {}
    with Grader(seed, limits, min(jobs, max(1, len(subs))), public, execute) as grader:
        todo = []
        for sub in subs:
            result_dir = os.path.join(out_dir, sub.name)
            if not force and unchanged(result_dir, sub, grader):
                with open(os.path.join(result_dir, "results.json")) as f:
                    results[sub.name] = report.result_from_json(json.load(f))
            else:
                todo.append(sub)
        with ThreadPoolExecutor(grader.jobs) as pool:
            futures = {pool.submit(_grade_or_report, grader, sub): sub for sub in todo}
            for future in _progress(as_completed(futures), len(futures), progress):
                sub = futures[future]
                result, files = future.result()
                result_dir = os.path.join(out_dir, sub.name)
                for name, data in files.items():
                    report.write_atomically(os.path.join(result_dir, name), data)
                report.write_results_json(os.path.join(result_dir, "results.json"), result)
                report.write_atomically(os.path.join(result_dir, META_FILE),
                                        json.dumps(fingerprint(sub, grader)))
                results[sub.name] = result
    report.write_atomically(os.path.join(out_dir, "grades.csv"), report.grades_csv(results))
    report.write_atomically(os.path.join(out_dir, "scores.png"), report.histogram_png(results))
    return results


def _grade_or_report(grader, sub):
    """grader.grade, turning a fault of the grader itself into a results file that says so."""
    try:
        return grader.grade(sub)
    except Exception as e:  # a grader bug must not cost the other submissions their results
        print(f"grade.py: internal error on '{sub.name}': {type(e).__name__}: {e}",
              file=sys.stderr)
        why = f"the grader failed on this submission ({type(e).__name__}: {e}); regrade it"
        return report.make_result({name: Verdict(False, why) for name in RUBRIC}, why, 0.0,
                                  grader._extra(sub)), {}


def _progress(iterable, total, enabled):
    if not enabled:
        return iterable
    from tqdm import tqdm
    return tqdm(iterable, total=total, desc="grading", unit="submission", disable=None)
