"""DIR/<name>/feedback.html: what a student gets back, ready to upload or mail.

Their score, each test with its points and the grader's message, their written-answer scores
and the TA's comments (where merged; grader.answers exposes them), and the notebook's status.
The page goes through grader.html_report's sanitiser and Content-Security-Policy like
report.html: every text in it is escaped here first, so nothing a student or TA wrote runs.
Nothing the instructor alone should see (flags, identities of others) is on it.
"""
import html

from grader import html_report
from grader.gradebook import MAX_POINTS, number, plain_text, terminal_text

FEEDBACK_FILE = "feedback.html"
CSS = """
.passed { color: #1a7f37; } .failed { color: #cf222e; }
td.message { white-space: pre-wrap; font-family: ui-monospace, monospace; font-size: 90%; }
"""


def _text(value):
    """Escaped text, without terminal escapes or control characters but keeping line breaks."""
    return html.escape(plain_text(value))


def page(name, result, written=None, grades=None):
    """The feedback page (text) for the submission `name` with SubmissionResult `result`;
    `written`: {"scores": {question: points, or None when not yet graded}, "max": {question:
    points}, "comments": {question: text}} from the TA's merge, or None before it; `grades`:
    the submission's rows of grades.csv (one a student; a group has one a member), whose
    total, late penalty and final are shown as grades.csv has them."""
    rows = "".join(
        f"<tr><td>{_text(t.name)}</td><td>{number(t.score)}/{number(t.max_score)}</td>"
        f"<td class=\"{'passed' if t.status == 'passed' else 'failed'}\">{_text(t.status)}</td>"
        f"<td class=\"message\">{_text(t.output or '')}</td></tr>" for t in result.tests)
    body = [f"<h1>Feedback: {_text(name)}</h1>",
            f"<p><strong>Code: {number(result.score)}/{MAX_POINTS} points.</strong> "
            f"{_text(result.output)}</p>"]
    body += _grade(result, written, grades or [])
    body.append("<h2>Tests</h2><table><thead><tr><th>test</th><th>points</th><th>status</th>"
                f"<th>what the grader saw</th></tr></thead><tbody>{rows}</tbody></table>")
    notebook = (result.extra_data or {}).get("notebook")
    if notebook:
        body.append(f"<h2>Notebook</h2><p>{_text(notebook)}</p>")
    written = written or {}
    scores, comments = written.get("scores") or {}, written.get("comments") or {}
    maxima = written.get("max") or {}
    questions = list(maxima) + sorted((set(scores) | set(comments)) - set(maxima))
    if questions:
        cells = "".join(
            f"<tr><td>{_text(q)}</td><td>{_score(scores.get(q), maxima.get(q))}</td>"
            f"<td class=\"message\">{_text(comments.get(q, ''))}</td></tr>" for q in questions)
        graded = [scores[q] for q in questions if scores.get(q) not in (None, "")]
        pending = [q for q in questions if scores.get(q) in (None, "")]
        total = f"{number(sum(graded))}" + (
            f"/{number(sum(maxima.values()))}" if maxima else "")
        if pending and not graded:
            total = "not graded yet"
        elif pending:
            total += f" so far ({', '.join(pending)} not graded yet)"
        cells += (f"<tr><td><strong>total</strong></td><td><strong>{_text(total)}</strong></td>"
                  "<td></td></tr>")
        body.append("<h2>Written answers</h2><table><thead><tr><th>question</th><th>points</th>"
                    f"<th>comment</th></tr></thead><tbody>{cells}</tbody></table>")
    else:
        body.append("<h2>Written answers</h2><p>Not graded yet.</p>")
    return html_report.page(f"Feedback: {terminal_text(name)}", "\n".join(body), css=CSS)


def _grade(result, written, grades):
    """The grade as grades.csv has it, where it says more than the code's points: the written
    points, the late penalty and the final (each member's, when a group's rows differ)."""
    shown = []
    for row in grades:
        late = (row.get("late") or "").strip() == "yes"
        penalty = (row.get("late_penalty") or "").strip()
        penalty = penalty if _number(penalty) else ""  # no penalty, or an extension's 0
        if not (late or penalty or any((row.get(q) or "").strip() for q in (written or {}).get(
                "max", {}))):
            continue
        lines = [("code (the tests)", f"{number(result.score)}/{MAX_POINTS}")]
        maxima = (written or {}).get("max") or {}
        if maxima:
            given = {q: (row.get(q) or "").strip() for q in maxima}
            points = sum(float(g) for g in given.values() if g)
            pending = [q for q, g in given.items() if not g]
            said = f"{number(points)}/{number(sum(maxima.values()))}"
            if pending:
                said += f" so far ({', '.join(pending)} not graded yet)"
            lines.append(("written answers", said if len(pending) < len(given)
                          else "not graded yet"))
        total = (row.get("total") or "").strip()
        if total:
            top = (row.get("max_points") or "").strip()
            lines.append(("total", total + (f"/{top}" if top else "")))
        if late:
            days = (row.get("late_days") or "").strip()
            when = (row.get("submitted_at") or "").strip()
            said = "yes" + (f", {days} days after the due time" if days else "") + (
                f" (submitted {when})" if when else "")
            lines.append(("late", said))
        if penalty:
            lines.append(("late penalty", f"-{penalty}"))
        final = (row.get("final") or "").strip()
        if final and penalty:
            top = (row.get("max_points") or "").strip()
            lines.append(("final", final + (f"/{top}" if top else "")))
        shown.append(((row.get("student") or "").strip(), lines))
    if not shown:
        return []
    distinct = {tuple(lines) for _, lines in shown}
    parts = ["<h2>Your grade</h2>"]
    for who, lines in (shown if len(distinct) > 1 else shown[:1]):
        if len(distinct) > 1 and who:
            parts.append(f"<h3>{_text(who)}</h3>")
        cells = "".join(f"<tr><td>{_text(k)}</td><td>{_text(v)}</td></tr>" for k, v in lines)
        parts.append(f"<table><tbody>{cells}</tbody></table>")
    return parts


def _score(points, maximum):
    if points in (None, ""):
        return "not graded yet" + (f" (out of {number(maximum)})"
                                   if maximum not in (None, "") else "")
    shown = f"{number(points)}"
    return shown + (f"/{number(maximum)}" if maximum not in (None, "") else "")


def _number(text):
    try:
        return float(text)
    except (TypeError, ValueError):
        return 0.0
