"""Grading submissions: a pool of job slots, one sandboxed child per test group, one result each.

The grader's process reads each submission's source (grader.audit), draws the inputs, computes
the expected values and judges; it never runs submission code. Each of `jobs` threads drives its
own slot: a worker process (a fresh interpreter with a clean environment, see grader.worker),
its sandbox uid (as root) and its memory cgroup (where one can be made), through one submission
at a time, one child per test group. A submission that fails at import (an exception, or a hang)
fails every test at once. Whatever a child does, its tests score 0 with the reason and the rest
goes on. Results are written as each submission finishes (grader.cache), so Ctrl-C loses
nothing finished and a rerun resumes.
"""
import contextlib
import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass

from grader import (
    KIT_ROOT,
    answers,
    audit,
    cache,
    cgroup,
    exports,
    gradebook,
    lms,
    namespaces,
    notebook,
    outdir,
    report,
    rubric,
    salvage,
    sandbox,
    standins,
    submission,
    wire,
)
from grader.groups import build
from grader.rubric import RUBRIC, Verdict, apply_audit, locate_failures

DEFAULT_SANDBOX_UID = 61000
REPLY_CAP = (64 << 20) + (1 << 20)
CGROUP_GRACE_S = 1.0  # how long a finished batch waits for the kernel to empty its cgroups


def _list_of(kind):
    return lambda v: isinstance(v, list) and len(v) <= 10_000 and all(kind(x) for x in v)


def _dict_of_str(v):
    return isinstance(v, dict) and all(isinstance(k, str) and isinstance(x, str) for k, x in v.items())


def _train_call(v):
    return (isinstance(v, dict) and set(v) == {"batch", "reg"} and type(v["batch"]) is int
            and isinstance(v["reg"], (int, float, str)) and not isinstance(v["reg"], bool))


def _failed_cell(v):
    return (isinstance(v, dict) and set(v) == {"cell", "error"} and type(v["cell"]) is int
            and isinstance(v["error"], str))


# What a child's meta may hold: {key: checker}. Anything else is a forged or broken reply.
META_FIELDS = {"errors": _dict_of_str, "autograd": _list_of(lambda x: isinstance(x, str)),
               "train_calls": _list_of(_train_call),
               "failed_cells": _list_of(_failed_cell)}


@dataclass
class Limits:
    timeout: float
    memory_mb: int
    notebook_timeout: float = 300.0


class WorkerCrash(RuntimeError):
    """The worker process itself died or broke the protocol."""


class WorkerLost(RuntimeError):
    """Every worker that ran this request went down with it (a Dask worker, see grader.cluster):
    the submission's doing; `str(e)` says so."""


class Gradebook(dict):
    """{name: SubmissionResult} for every row of grades.csv; `batch_size` of them came from this
    batch's command line, the rest from earlier runs into the same folder; `graded_now`: the
    names graded by this run (the others' results were reused). `policy`: the late policy
    grades.csv was written with; `notes`: lines for the summary (the late policy reused from
    out_dir, or what changed in it)."""

    def __init__(self, rows, batch_size, policy=None, notes=(), graded_now=()):
        super().__init__(rows)
        self.batch_size = batch_size
        self.policy = policy
        self.notes = list(notes)
        self.graded_now = set(graded_now)


class Interrupted(Exception):
    """The batch stopped on Ctrl-C (or SIGTERM: `signal`); every finished result was written,
    and the LMS files (`uploads`, paths) hold only the finished rows (and earlier runs')."""

    def __init__(self, finished, total, signal=None, uploads=()):
        super().__init__(f"{finished} of {total} submissions finished")
        self.finished, self.total, self.signal = finished, total, signal
        self.uploads = list(uploads)


class WorkerProcess:
    """One `python -m grader.worker` process and the pipes to it."""

    PASSED_ON = ("PATH", "GRADER_NO_NAMESPACES", "GRADER_NO_CGROUP")

    def __init__(self, run_root, memory_cgroup=None):  # memory_cgroup: the slot's folder
        env = {"LANG": "C.UTF-8", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
               "OPENBLAS_NUM_THREADS": "1", "PYTHONHASHSEED": "0",
               "PYTHONDONTWRITEBYTECODE": "1", "PYTHONPATH": KIT_ROOT, "PATH": "/usr/bin:/bin"}
        env.update({k: os.environ[k] for k in self.PASSED_ON if k in os.environ})
        command = [sys.executable, "-m", "grader.worker", "--run-root", run_root]
        if memory_cgroup is not None:
            command += ["--cgroup", memory_cgroup]
        # Its own session: Ctrl-C at the terminal reaches the grader, which ends the workers.
        self.process = subprocess.Popen(command, cwd=KIT_ROOT, stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, env=env, start_new_session=True)

    def run(self, request, arrays):
        try:
            wire.send(self.process.stdin, wire.encode(request, arrays))
            message = wire.receive(self.process.stdout, REPLY_CAP)
            if message is None:
                raise WorkerCrash("the grader's worker process stopped")
            return wire.decode(message, REPLY_CAP)
        except (OSError, ValueError) as e:
            raise WorkerCrash(f"the grader's worker process failed ({e})") from e

    def kill(self):
        try:
            self.process.kill()
        except OSError:
            pass

    def close(self):
        try:
            self.process.stdin.close()
            self.process.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            self.process.kill()
            self.process.wait()


@dataclass
class Slot:
    """What one job thread grades with: its worker, sandbox uid and memory cgroup."""
    worker: WorkerProcess
    uid: int = None
    memory_cgroup: str = None  # the slot's cgroup folder, where one could be made


@dataclass
class Outcome:
    """What one child gave back: its meta and arrays, or the reason it gave nothing usable."""
    meta: dict = None
    arrays: dict = None
    failure: str = None
    imported: bool = False


def failure_reason(report_meta, limits, oom_killed):
    """Why a child returned no usable result, in a sentence a student can act on.

    Only a child that died before its walls were up (before any submission code ran) is the
    grader's fault; everything after that is the submission's, whatever it printed.
    """
    if not report_meta.get("walls_up"):
        return ("the grader could not start this test's sandbox (a fault of the grader, not of "
                "the submission; regrade it): " + report_meta.get("output", "")[-300:].strip())
    if report_meta.get("status") == "timeout":
        return f"timed out after {limits.timeout:g} s (an endless loop, or far too slow)"
    if oom_killed:
        return (f"went over the {limits.memory_mb} MB memory limit and was stopped (a tensor or "
                "list far larger than the problem needs)")
    if report_meta.get("result_overflow"):
        return "returned more data than the grader accepts"
    sig = report_meta.get("signal")
    if sig == "SIGXCPU":
        return f"used more than {limits.timeout:g} s of CPU time"
    if sig:
        return f"the process was killed by {sig} (a crash, or memory beyond the {limits.memory_mb} MB limit)"
    return (f"the process exited (status {report_meta.get('exit_code')}) before returning its "
            "results (sys.exit, os._exit or a crash at the C level)")


def annotate_memory(meta, limits):
    """Say so when an exception in the child came from the memory limit."""
    for key, text in meta.get("errors", {}).items():
        if "can't allocate memory" in text or text.startswith("MemoryError"):
            meta["errors"][key] = f"{text}\n(over the {limits.memory_mb} MB memory limit)"


def check_child_meta(meta):
    """Raise wire.WireError unless `meta` is what a child honestly sends (see META_FIELDS)."""
    if not isinstance(meta, dict):
        raise wire.WireError("no report")
    for key, value in meta.items():
        if key not in META_FIELDS or not META_FIELDS[key](value):
            raise wire.WireError(f"unexpected field '{str(key)[:40]}'")


class Grader:
    """Grades submissions against one seed's rubric with a pool of job slots."""

    def __init__(self, seed, limits, jobs, public, execute=False, cluster=None):
        self.cluster = cluster  # a grader.cluster.Cluster: the slots run on its Dask workers
        self.seed, self.limits, self.public, self.execute = seed, limits, public, execute
        self.jobs = max(1, jobs)
        self.namespaces, self.no_namespaces_why = namespaces.available()
        # Without namespaces, where no other uid may run this Python (a private home folder),
        # notebooks run as root stripped of every capability instead.
        self.notebook_as_root = (os.geteuid() == 0 and not self.namespaces and not all(
            sandbox.world_readable(p) for p in
            (os.path.dirname(os.path.realpath(sys.executable)), *sandbox.python_paths())))
        self.run_root = tempfile.mkdtemp(prefix="two-layer-net-grade-")
        os.chmod(self.run_root, 0o711)
        self.standin = os.path.join(self.run_root, "standin")
        standins.write(self.standin)
        if self.namespaces:  # children of a killed worker then come to us, to be reaped
            sandbox.prctl(sandbox.PR_SET_CHILD_SUBREAPER, 1)
        self.aborted = False
        self._local = threading.local()
        self._slots, self._locks = [], []
        self._lock = threading.Lock()
        self._next_uid = 0

    def close(self):
        for slot in self._slots:
            slot.worker.close()
        self._release()

    def abort(self):
        """Stop now (Ctrl-C): end every worker, and with it every child and notebook."""
        self.aborted = True
        for slot in list(self._slots):
            slot.worker.kill()

    def _release(self):
        for lock in self._locks:
            lock.close()
        deadline = time.monotonic() + CGROUP_GRACE_S
        for slot in self._slots:
            while slot.memory_cgroup is not None:
                # a killed worker's child comes to us (a subreaper) to be reaped
                _reap_orphans([s.worker for s in self._slots])
                cgroup.remove_slot(slot.memory_cgroup)
                if not os.path.exists(slot.memory_cgroup) or time.monotonic() > deadline:
                    break
                time.sleep(0.01)
        shutil.rmtree(self.run_root, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _slot(self):
        """This thread's slot, started on first use."""
        if getattr(self._local, "slot", None) is None and self.cluster is not None:
            with self._lock:  # its uid and memory cgroup are the Dask worker's
                self._local.slot = Slot(self.cluster.slot(self.run_root))
                self._slots.append(self._local.slot)
        if getattr(self._local, "slot", None) is None:
            with self._lock:
                uid = None
                if os.geteuid() == 0:
                    start = int(os.environ.get("GRADER_SANDBOX_UID", DEFAULT_SANDBOX_UID))
                    uid, lock = sandbox.claim_uid(max(start, self._next_uid))
                    self._next_uid = uid + 1
                    self._locks.append(lock)
                memory_cgroup = None
                if self.namespaces:
                    memory_cgroup = cgroup.create_slot(
                        f"two-layer-net-{os.getpid()}-{len(self._slots)}")
                slot = Slot(WorkerProcess(self.run_root, memory_cgroup), uid, memory_cgroup)
                self._local.slot = slot
                self._slots.append(slot)
        return self._local.slot

    def _replace_worker(self, slot):
        with self._lock:
            slot.worker.close()
            if not self.aborted:
                slot.worker = (self.cluster.slot(self.run_root) if self.cluster is not None
                               else WorkerProcess(self.run_root, slot.memory_cgroup))

    def grade(self, sub):
        """(SubmissionResult, {file name: bytes}) for one loaded Submission; the files (the
        notebook's report.html) go beside its results.json."""
        started = time.monotonic()
        extra = {"identity": sub.identity, "flags": list(sub.notes), "origin": sub.origin}
        if sub.error:
            extra["graded"] = False
            extra["flags"].insert(0, f"{gradebook.NOT_GRADED}: {sub.error}")
            verdicts = {name: Verdict(False, f"not graded: {sub.error}") for name in RUBRIC}
            return report.make_result(verdicts, f"Could not grade this submission: {sub.error}",
                                      time.monotonic() - started, extra), {}
        # Code the rubric never calls that this Python cannot parse is left out, not the module:
        # the salvaged text is what the audit reads and the child imports (grader/salvage.py).
        graded_files, left_out = salvage.salvage(sub.files)
        findings = audit.audit({k: v for k, v in graded_files.items() if k.endswith(".py")})
        extra["flags"] += left_out + audit.flags(findings)
        folder = tempfile.mkdtemp(dir=self.run_root)
        os.chmod(folder, 0o711)
        files = {}
        try:
            module_path = submission.stage(dataclasses.replace(sub, files=graded_files),
                                           os.path.join(folder, "submission"))
            # The public self-check's inputs are the same for every submission, as in-process
            # (grader.selfcheck): the student release holds their expected values, recorded.
            groups = build(self.seed if self.public
                           else rubric.submission_seed(self.seed, sub.content_hash))
            verdicts, note = self._run_groups(groups, module_path, folder)
            # The notebook imports the module as submitted: what salvage left out fails it there.
            module_problem = note.strip() or (salvage.as_submitted(sub.files) if left_out else "")
            note += "".join(f" {why}." for why in left_out)
            if self.execute and sub.has_notebook:
                began = time.monotonic()
                (extra["notebook"], extra["notebook_status"],
                 files["report.html"]) = self._run_notebook(sub, folder, module_problem)
                extra["notebook_seconds"] = round(time.monotonic() - began, 1)
                files[answers.ANSWERS_FILE] = self._answers(sub)
                note += " Notebook: " + extra["notebook"]
            elif self.execute:
                extra["notebook_status"] = "missing"
                note += " Notebook: none submitted (two_layer_net.ipynb)."
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        apply_audit(verdicts, findings, extra["flags"])
        locate_failures(verdicts, {k: v for k, v in sub.files.items() if k.endswith(".py")})
        return report.graded_result(verdicts, note, time.monotonic() - started, extra,
                                    self.public), files

    @staticmethod
    def _answers(sub):
        """The written answers of the submitted notebook, as JSON for answers.html."""
        try:
            given = answers.answers_of(notebook.read_notebook(sub.files[submission.NOTEBOOK]))
        except ValueError:
            given = {}
        return json.dumps(given)

    def _run_notebook(self, sub, folder, module_problem=""):
        """Execute the submission's notebook in a sandboxed child: (summary, status: "ran",
        "ran with errors", "timed out" or "failed", report.html bytes); `module_problem`: why
        the tests could not import two_layer_net.py, if they could not."""
        slot = self._slot()
        uid = None if self.notebook_as_root else slot.uid
        workdir = tempfile.mkdtemp(prefix="scratch-notebook-", dir=folder)
        notebook_path = notebook.prepare_workdir(sub.files, workdir, uid)
        request = {"group": "notebook", "notebook_path": notebook_path, "scratch": workdir,
                   "timeout": self.limits.notebook_timeout, "memory_mb": self.limits.memory_mb,
                   "uid": uid, "gid": uid, "read_paths": [self.standin], "standin": self.standin}
        outcome = self._supervise(slot, request, {}, self.limits.notebook_timeout)
        executed, status = None, "failed"
        if outcome.failure:
            summary = f"could not be executed: {outcome.failure}"
            status = "timed out" if outcome.failure.startswith("timed out") else "failed"
        else:
            try:
                executed = notebook.read_notebook(outcome.arrays["notebook"].numpy().tobytes())
                failing = notebook.failing_checks(executed)
                summary = notebook.summarise(outcome.meta, module_problem, failing)
                stopped = (outcome.meta.get("errors") or {}).get("notebook") or ""
                status = ("timed out" if "timed out" in stopped.lower() else "ran with errors"
                          if stopped or outcome.meta.get("failed_cells") else "ran")
                if status == "ran" and failing:  # to the end, but not clean: grades.csv says so
                    status += f", {len(failing)} check{'s' * (len(failing) > 1)} printed FAIL"
            except (KeyError, ValueError) as e:
                summary = f"the execution returned no valid notebook ({e})"
        if executed is None:  # show what the student submitted, with their own outputs
            try:
                executed = notebook.read_notebook(sub.files[submission.NOTEBOOK])
            except ValueError as e:
                summary += f" The submitted file is not a valid notebook either: {e}"
                executed = notebook.read_notebook(notebook.EMPTY_NOTEBOOK)
            summary += " The report shows the notebook as submitted."
        return summary, status, notebook.to_html(executed, summary).encode()

    def _run_groups(self, groups, module_path, folder):
        verdicts = {}
        for group in groups:
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
        slot = self._slot()
        scratch = tempfile.mkdtemp(prefix=f"scratch-{group.name}-", dir=folder)
        if slot.uid is not None:
            os.chown(scratch, slot.uid, slot.uid)
        request = {"group": group.name, "module_path": module_path, "meta": group.meta,
                   "scratch": scratch, "timeout": self.limits.timeout,
                   "memory_mb": self.limits.memory_mb, "uid": slot.uid, "gid": slot.uid,
                   "read_paths": [os.path.dirname(module_path), self.standin],
                   "standin": self.standin}
        return self._supervise(slot, request, group.arrays, self.limits.timeout)

    def _supervise(self, slot, request, arrays, timeout):
        """Send one request to the slot's worker; an Outcome from the child's validated reply."""
        try:
            report_meta, reply = slot.worker.run(request, arrays)
        except WorkerCrash as e:
            self._replace_worker(slot)
            return Outcome(failure=f"{e} (a fault of the grader; regrade it)", imported=True)
        except WorkerLost as e:
            return Outcome(failure=str(e), imported=True)
        oom_killed = bool(report_meta.get("oom_killed"))
        imported = bool(report_meta.get("imported"))
        result = reply.get("result")
        if (result is None or result.numel() == 0 or report_meta.get("status") != "exited"
                or oom_killed):
            limits = Limits(timeout, self.limits.memory_mb)
            return Outcome(failure=failure_reason(report_meta, limits, oom_killed), imported=imported)
        try:
            child_meta, child_arrays = wire.decode(result.numpy().tobytes(), REPLY_CAP)
            check_child_meta(child_meta)
        except wire.WireError as e:
            return Outcome(failure=f"returned malformed results ({e})", imported=imported)
        return Outcome(meta=child_meta, arrays=child_arrays, imported=imported)


def _reap_orphans(workers=()):
    """Reap zombies reparented to this subreaper, leaving the workers to their Popen objects."""
    own = {w.process.pid for w in workers}
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) in own:
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] == "Z" and int(fields[1]) == os.getpid():
            try:
                os.waitpid(int(entry), os.WNOHANG)
            except ChildProcessError:
                pass


def grade_batch(paths, *, out_dir, seed, public, limits, jobs, force=False, progress=True,
                execute=False, export_paths=(), single=False, add=False, policy=None,
                formats=("plain",), canvas_assignment=None, visibility=None, cluster=None):
    """Grade every path into out_dir; returns {name: SubmissionResult} for every row of
    grades.csv (this batch's and earlier ones' still in out_dir).

    Raises submission.UsageError (a SUB that does not exist; an out_dir that is unusable, busy,
    or holds rows graded from other SUBs, unless `add`) before anything is graded, and
    Interrupted on Ctrl-C or SIGTERM after writing every finished result and grades.csv. A
    submission whose results in out_dir match its fingerprint is not graded again unless
    `force`. `export_paths`: SUBs named as Gradescope exports; `single`: every SUB is exactly one
    submission (the Gradescope autograder); `policy`: a gradebook.LatePolicy; `formats`: the
    gradebook files to write (grades.csv always) besides those asked for in out_dir before, and
    `canvas_assignment` canvas.csv's assignment column (both kept: grader.lms); `visibility`: every test's visibility in
    results.json (Gradescope's); each feedback.html carries the last merge's written scores
    (grader.answers.write_feedback). With `cluster` (a grader.cluster.Cluster), the children run on
    its Dask workers; everything else stays in this process.
    """
    subs = exports.collect(paths, exports=export_paths, single=single)
    with outdir.locked(out_dir), _sigterm_as_interrupt() as terminated:
        outdir.check_sources(out_dir, paths, {sub.name for sub in subs}, add=add)
        if add:
            _refuse_canvas_copies(out_dir, subs)
        lms.remember(out_dir, formats, canvas_assignment)
        policy, said = lms.resolve_policy(out_dir, policy)
        notes = [said] if said else []
        results, todo = {}, []
        for sub in subs:
            cached = None if force else cache.cached_result(
                os.path.join(out_dir, sub.name), cache.fingerprint(sub, seed, execute, limits))
            if cached is not None:  # who it is may have changed with a new export's metadata
                cached.extra_data["identity"] = sub.identity
                results[sub.name] = cached
            else:
                todo.append(sub)
        try:
            _grade_all(todo, results, out_dir=out_dir, seed=seed, public=public, limits=limits,
                       jobs=jobs, progress=progress, execute=execute, visibility=visibility,
                       cluster=cluster)
        except KeyboardInterrupt:  # before the slots started (the rubric being built): as later
            pass
        finally:  # after Ctrl-C too: the gradebook of everything finished
            rows = Gradebook(outdir.earlier_results(out_dir, exclude=results), len(subs), policy,
                             notes, graded_now={sub.name for sub in todo if sub.name in results})
            rows.update(results)
            report.write_atomically(os.path.join(out_dir, gradebook.FORMAT_FILES["plain"]),
                                    gradebook.plain(rows, policy))
            answers.reapply_merge(out_dir)  # merged written scores are data: they stay
            # from grades.csv as merged: the same total, penalty and final; the summary says
            # which rows they leave out
            uploads = lms.write(out_dir, say=False)
            report.write_atomically(os.path.join(out_dir, "scores.png"), report.histogram_png(rows))
            answers.write_feedback(out_dir, rows)  # every row: its grades.csv row may have changed
            if execute:
                answers.write_reports(out_dir, list(rows))
            answers.write_index(out_dir, rows)  # last: it links the files written above
        if len(results) != len(subs):
            raise Interrupted(len(results), len(subs), terminated.signal, uploads)
    return rows


def _refuse_canvas_copies(out_dir, subs):
    """UsageError for an --add SUB that is one file of a Canvas download whose student already
    has a row in out_dir (matched by the Canvas user id in the file's name). Graded alone it
    would become a second row named after the file, without the Canvas id, beside the
    student's own: never what regrading one student means (docs/instructors.md says how)."""
    earlier = outdir.earlier_results(out_dir, exclude={sub.name for sub in subs})
    by_canvas_id = {}
    for name, result in earlier.items():
        canvas_id = ((result.extra_data or {}).get("identity") or {}).get("canvas_id")
        if canvas_id:
            by_canvas_id[str(canvas_id)] = name
    for sub in subs:
        match = (exports.CANVAS_UPLOAD.fullmatch(os.path.basename(sub.source or ""))
                 or exports.CANVAS_UPLOAD.fullmatch(sub.name))
        if sub.identity.get("canvas_id") or not match or match["user"] not in by_canvas_id:
            continue
        row = gradebook.terminal_text(by_canvas_id[match["user"]])
        raise submission.UsageError(
            f"'{gradebook.terminal_text(os.path.basename(sub.source or sub.name))}' is a file of "
            f"the Canvas download graded into {out_dir}: Canvas user {match['user']}, row "
            f"'{row}'. Graded alone with --add it would be a second row, without the Canvas id "
            "that canvas.csv needs. To regrade that student, put the file in the download folder "
            "as Canvas named it (remove the one it replaces) and rerun the command that graded "
            "the download; results still up to date are reused (--force regrades them all)")


class _Terminated:
    signal = None


@contextlib.contextmanager
def _sigterm_as_interrupt():
    """SIGTERM stops the batch as Ctrl-C does (workers ended, the run folder removed, every
    finished result written); yields an object whose `signal` is set when it came."""
    state = _Terminated()
    if threading.current_thread() is not threading.main_thread():
        yield state
        return

    def stop(signum, frame):
        state.signal = signal.SIGTERM
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield state
    finally:
        signal.signal(signal.SIGTERM, previous)


def _grade_all(todo, results, *, out_dir, seed, public, limits, jobs, progress, execute,
               visibility=None, cluster=None):
    if not todo:
        return
    with Grader(seed, limits, min(jobs, len(todo)), public, execute, cluster) as grader:
        pool = ThreadPoolExecutor(grader.jobs)
        futures = {pool.submit(_grade_or_report, grader, sub): sub for sub in todo}
        try:
            for future in _progress(as_completed(futures), len(futures), progress):
                sub = futures[future]
                result, files = future.result()
                for test in result.tests if visibility else ():
                    test.visibility = visibility
                cache.store(os.path.join(out_dir, sub.name), result,
                            cache.fingerprint(sub, seed, execute, limits), files)
                results[sub.name] = result
        except KeyboardInterrupt:
            grader.abort()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


def _grade_or_report(grader, sub):
    """grader.grade, turning a fault of the grader itself into a results file that says so."""
    try:
        return grader.grade(sub)
    except Exception as e:  # a grader bug must not cost the other submissions their results
        if grader.aborted:
            raise
        print(f"grade.py: internal error on '{sub.name}': {type(e).__name__}: {e}",
              file=sys.stderr)
        why = f"the grader failed on this submission ({type(e).__name__}: {e}); regrade it"
        return report.make_result({name: Verdict(False, why) for name in RUBRIC}, why, 0.0,
                                  {"identity": sub.identity, "graded": False, "origin": sub.origin,
                                   "flags": [f"{gradebook.NOT_GRADED}: internal error"]}), {}


def _progress(iterable, total, enabled):
    if not enabled:
        return iterable
    from tqdm import tqdm
    return tqdm(iterable, total=total, desc="grading", unit="submission", disable=None)
