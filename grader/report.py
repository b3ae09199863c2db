"""Results as dataclasses, and the files they become: results.json, grades.csv, the table."""
import io
import json
import os
import re
import statistics
import tempfile
import textwrap
from dataclasses import asdict, dataclass, field

from grader import gradebook
from grader.rubric import RUBRIC


@dataclass
class TestResult:
    """One rubric test in Gradescope's schema."""
    name: str
    score: float
    max_score: float
    status: str  # "passed" or "failed"
    output: str
    number: str = ""
    visibility: str = "visible"


@dataclass
class SubmissionResult:
    """A whole submission in Gradescope's results.json schema."""
    score: float
    execution_time: float
    output: str
    tests: list = field(default_factory=list)
    visibility: str = "visible"
    stdout_visibility: str = "hidden"
    extra_data: dict = field(default_factory=dict)


def make_result(verdicts, output, execution_time, extra_data=None):
    """A SubmissionResult from {test name: Verdict}, in the rubric's order. Messages (which
    may quote what a submission printed or raised) lose terminal escapes and control
    characters, keeping line breaks: the table, results.json and feedback.html print them."""
    tests = []
    for number, (name, points) in enumerate(RUBRIC.items(), 1):
        verdict = verdicts[name]
        tests.append(TestResult(name=name, score=float(points if verdict.passed else 0),
                                max_score=float(points),
                                status="passed" if verdict.passed else "failed",
                                output=gradebook.plain_text(verdict.message),
                                number=str(number)))
    return SubmissionResult(score=sum(t.score for t in tests),
                            execution_time=round(execution_time, 3),
                            output=gradebook.plain_text(output),
                            tests=tests, extra_data=extra_data or {})


def graded_result(verdicts, note, execution_time, extra_data, public):
    """The SubmissionResult of a graded module: its score line, `note`, and whether the public
    self-check inputs were used."""
    score = sum(RUBRIC[n] for n, v in verdicts.items() if v.passed)
    output = f"two_layer_net.py: {score}/{sum(RUBRIC.values())} points." + note
    if public:
        output = output.rstrip() + ("" if output.rstrip().endswith(".") else ".")
        output += " Graded with the public self-check inputs, not the instructor's."
    return make_result(verdicts, output, execution_time, extra_data)


def result_from_json(data):
    """A SubmissionResult read back from results.json (for resumed batches and summaries)."""
    tests = [TestResult(**{k: t[k] for k in TestResult.__dataclass_fields__ if k in t})
             for t in data.get("tests", [])]
    fields = {k: data[k] for k in SubmissionResult.__dataclass_fields__ if k in data and k != "tests"}
    return SubmissionResult(tests=tests, **fields)


def write_atomically(path, data, mode=0o644):
    """Write bytes or text to `path` through a temporary file in the same folder and a rename;
    the file gets `mode` before it appears (0o600 for a secret)."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix="-" + os.path.basename(path))
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_results_json(path, result):
    write_atomically(path, json.dumps(asdict(result), indent=2) + "\n")


def grades_csv(results, policy=None):
    """The gradebook, grades.csv (see grader.gradebook.plain)."""
    return gradebook.plain(results, policy)


def _number(value):
    return int(value) if float(value).is_integer() else value


# "<who> raised <Type: message>" and the traceback lines after it, as the groups and the
# import check write a failure of the student's code.
_RAISED = re.compile(r"(?P<who>\S+) raised (?P<error>[^\n]*)(?P<frames>(?:\n[ \t]*File [^\n]*)*)")
_FRAME = re.compile(r'File "(?P<file>[^"]+)", line (?P<line>\d+)(?:, in (?P<function>\w+))?')


def causes(result):
    """([(cause, [test names])], {test name: reason}): each error the student's code raised,
    said once with the innermost place it was raised (in order of first appearance), and the
    tests' reasons with each such error replaced by its number, `[1]`."""
    found, reasons = {}, {}
    for t in result.tests:
        reason = t.output or ""
        match = _RAISED.search(reason) if t.status != "passed" else None
        if match:
            frames = [m for m in map(_FRAME.search, match.group("frames").splitlines()) if m]
            where = ""
            if frames:
                last = frames[-1]
                where = f" ({os.path.basename(last.group('file'))}, line {last.group('line')}"
                where += f", in {last.group('function')})" if last.group("function") else ")"
            cause = match.group("error").strip() + where
            found.setdefault(cause, []).append(t.name)
            number = list(found).index(cause) + 1
            reason = reason[:match.start("error")] + f"[{number}]" + reason[match.end():]
        reasons[t.name] = reason
    return list(found.items()), reasons


def table(result, width=100):
    """The self-check's report: each error the code raised, once (`causes`), then the table of
    test, points, status and reason, wrapped to `width`."""
    found, reasons = causes(result)
    head_lines = []
    if found:
        head_lines.append("1 error in your code (the table refers to it as [1]):" if len(found) == 1
                          else f"{len(found)} errors in your code, each said once (the table "
                               "refers to them by number):")
        for number, (cause, names) in enumerate(found, 1):
            wrapped = textwrap.wrap(f"[{number}] {cause}; fails {', '.join(names)}", width,
                                    subsequent_indent="    ")
            head_lines += wrapped + [""] * (number == len(found))
    rows = [("test", "points", "status", "reason")]
    for t in result.tests:
        rows.append((t.name, f"{_number(t.score)}/{_number(t.max_score)}", t.status,
                     reasons[t.name]))
    rows.append(("total", f"{_number(result.score)}/{sum(RUBRIC.values())}", "", ""))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    indent = sum(widths) + 6
    lines = []
    for r in rows:
        head = f"{r[0]:<{widths[0]}}  {r[1]:>{widths[1]}}  {r[2]:<{widths[2]}}  "
        reason = [w for line in r[3].splitlines() for w in
                  (textwrap.wrap(line, max(30, width - indent), subsequent_indent="  ") or [""])]
        lines.append((head + (reason[0] if reason else "")).rstrip())
        lines += [" " * indent + more for more in reason[1:]]
    return "\n".join(head_lines + lines)


def summary(results):
    """Mean, median and per-test pass rates over a batch, then what a person must look at: the
    submissions that could not be graded and the notebooks that timed out, as text."""
    if not results:
        return "no submissions graded"
    scores = [r.score for r in results.values()]
    lines = [f"{len(scores)} submissions: mean {statistics.mean(scores):.1f}, "
             f"median {statistics.median(scores):.1f}, min {min(scores):g}, max {max(scores):g} "
             f"(out of {sum(RUBRIC.values())})", "pass rate per test:"]
    for name in RUBRIC:
        passed = sum(1 for r in results.values() for t in r.tests
                     if t.name == name and t.status == "passed")
        lines.append(f"  {name:<15} {passed / len(results):6.1%}  ({passed}/{len(results)})")
    return "\n".join(lines + attention(results))


def attention(results):
    """Lines naming what a person must look at: submissions not graded, notebooks timed out,
    and the notebooks' times."""
    lines = []
    failed = gradebook.not_graded(results)
    if failed:
        lines.append(f"{len(failed)} submission{'s' if len(failed) > 1 else ''} could not be "
                     f"graded (flagged in grades.csv; each results.json says why): "
                     + ", ".join(gradebook.terminal_text(n) for n in failed))
    extras = {n: r.extra_data or {} for n, r in sorted(results.items())}
    timed_out = [n for n, e in extras.items() if e.get("notebook_status") == "timed out"]
    if timed_out:
        lines.append(f"{len(timed_out)} notebook{'s' if len(timed_out) > 1 else ''} timed out: "
                     + ", ".join(gradebook.terminal_text(n) for n in timed_out))
    timed = {n: e["notebook_seconds"] for n, e in extras.items()
             if isinstance(e.get("notebook_seconds"), (int, float))}
    if timed:
        times = list(timed.values())
        spread = (f"{statistics.median(times):.0f} s median, {max(times):.0f} s longest, "
                  f"{sum(times):.0f} s in all")
        now = getattr(results, "graded_now", None)  # a batch's Gradebook knows what ran now
        reused = len(timed) if now is None else sum(n not in now for n in timed)
        if now is None or not reused:
            lines.append(f"notebooks: {len(timed)} executed, {spread}")
        else:
            lines.append(f"notebooks: {len(timed) - reused} executed now, {reused} reused from "
                         f"an earlier run (their results were still current); as each took "
                         f"when it ran: {spread}")
    return lines


def histogram_png(results):
    """PNG bytes of the score histogram with the per-test pass rates beside it."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4), layout="constrained")
    ax_scores, ax_tests = fig.subplots(1, 2)
    scores = [r.score for r in results.values()]
    ax_scores.hist(scores, bins=range(0, sum(RUBRIC.values()) + 6, 5), color="tab:blue")
    ax_scores.set(title=f"Scores of {len(scores)} submissions", xlabel="Score", ylabel="Submissions")
    rates = [sum(1 for r in results.values() for t in r.tests if t.name == name and
                 t.status == "passed") / max(len(results), 1) for name in RUBRIC]
    ax_tests.barh(list(RUBRIC)[::-1], rates[::-1], color="tab:green")
    ax_tests.set(title="Pass rate per test", xlim=(0, 1), xlabel="Fraction passed")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()
