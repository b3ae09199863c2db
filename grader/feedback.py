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


def page(name, result, written=None):
    """The feedback page (text) for the submission `name` with SubmissionResult `result`;
    `written`: {"scores": {question: points}, "max": {question: points}, "comments":
    {question: text}} from the TA's merge, or None before it."""
    rows = "".join(
        f"<tr><td>{_text(t.name)}</td><td>{number(t.score)}/{number(t.max_score)}</td>"
        f"<td class=\"{'passed' if t.status == 'passed' else 'failed'}\">{_text(t.status)}</td>"
        f"<td class=\"message\">{_text(t.output or '')}</td></tr>" for t in result.tests)
    body = [f"<h1>Feedback: {_text(name)}</h1>",
            f"<p><strong>Code: {number(result.score)}/{MAX_POINTS} points.</strong> "
            f"{_text(result.output)}</p>",
            "<h2>Tests</h2><table><thead><tr><th>test</th><th>points</th><th>status</th>"
            f"<th>what the grader saw</th></tr></thead><tbody>{rows}</tbody></table>"]
    notebook = (result.extra_data or {}).get("notebook")
    if notebook:
        body.append(f"<h2>Notebook</h2><p>{_text(notebook)}</p>")
    written = written or {}
    scores, comments = written.get("scores") or {}, written.get("comments") or {}
    questions = sorted(set(scores) | set(comments))
    if questions:
        maxima = written.get("max") or {}
        cells = "".join(
            f"<tr><td>{_text(q)}</td><td>{_score(scores.get(q), maxima.get(q))}</td>"
            f"<td class=\"message\">{_text(comments.get(q, ''))}</td></tr>" for q in questions)
        body.append("<h2>Written answers</h2><table><thead><tr><th>question</th><th>points</th>"
                    f"<th>comment</th></tr></thead><tbody>{cells}</tbody></table>")
    else:
        body.append("<h2>Written answers</h2><p>Not graded yet.</p>")
    return html_report.page(f"Feedback: {terminal_text(name)}", "\n".join(body), css=CSS)


def _score(points, maximum):
    if points in (None, ""):
        return "not graded yet"
    shown = f"{number(points)}"
    return shown + (f"/{number(maximum)}" if maximum not in (None, "") else "")
