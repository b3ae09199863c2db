"""similar.html (for grader.similar): the ranked pairs, the groups, and a side-by-side view of each pair.

Built from escaped text only, then through grader.html_report's sanitiser and under its
Content-Security-Policy, as report.html is: no script, nothing loaded. Navigation is by in-page
anchors on headings (the only ids the sanitiser keeps).
"""
import html

from grader import html_report

TITLE = "Similar submissions"
CSS = """
.similar-note { background: #eef6ff; border: 1px solid #8cb8e8; border-radius: 6px;
                padding: .25rem 1rem; margin: .5rem 0 1rem; }
table.ranked td, table.ranked th { font-size: 13px; }
.look { font-weight: 600; }
.sbs { display: grid; grid-template-columns: 1fr 1fr; gap: .6rem; }
.sbs > div { min-width: 0; }
.sbs pre { border: 1px solid #d0d7de; border-radius: 4px; font-size: 12px; line-height: 1.35; }
.ln { color: #8c959f; display: inline-block; width: 3.2em; }
.shared { background: #ffe58f; display: block; }
.given { color: #8c959f; display: block; }
.plain { display: block; }
.gap { display: block; color: #8c959f; font-style: italic; background: #f6f8fa; }
.word-shared { background: #ffe58f; }
.from { color: #57606a; font-size: 13px; }
"""
MAX_LINES = 2000  # of one file in a side-by-side view
CONTEXT = 2  # lines shown around the student's and the shared lines


def page(comparison, shown=None):
    """The whole page for a grader.similar.Comparison."""
    pairs = comparison.pairs
    flagged = [p for p in pairs if p.flagged]
    shown = shown if shown is not None else max(len(flagged), min(len(pairs), 60))
    n_class = sum(d.archive is None for d in comparison.documents)
    parts = [
        f"<h1>{TITLE}</h1>",
        "<div class=\"similar-note\"><p>This page <strong>ranks pairs of submissions for a person "
        "to judge</strong>. A high rank says that two submissions share more code or wording "
        "than the others do; it is not a finding of misconduct. Independent solutions of this "
        "assignment often look alike, and shared code can have innocent reasons (working "
        "together as allowed, a common source the course permits). Read each pair before "
        "drawing any conclusion.</p></div>",
        f"<p>{n_class} submissions of the class and {len(comparison.documents) - n_class} from "
        f"archives. The kit's starter code is not counted; a passage shared by more than "
        f"{comparison.common} submissions of the class is treated as conventional and not "
        "counted either. Archived submissions are compared with the class only.</p>",
        f"<p>Worth a look (marked ●): {html.escape(comparison.flag_rule)}.</p>",
    ]
    if comparison.unreadable:
        items = "".join(f"<li>{html.escape(d.name)}: {html.escape(d.error or '')}</li>"
                        for d in comparison.unreadable)
        parts.append(f"<h2 id=\"unreadable\">Could not be read</h2><ul>{items}</ul>")
    parts.append("<h2 id=\"ranked\">Pairs, ranked</h2>")
    parts.append(_table(pairs[:max(shown, 1)]))
    if len(pairs) > shown:
        parts.append(f"<p>{len(pairs) - shown} more pairs that share less are in similar.csv.</p>")
    parts.append("<h2 id=\"groups\">Groups of three or more</h2>")
    if comparison.clusters:
        items = "".join("<li>" + ", ".join(html.escape(d.name) for d in group) + "</li>"
                        for group in comparison.clusters)
        parts.append(f"<p>Submissions joined by pairs worth a look.</p><ul>{items}</ul>")
    else:
        parts.append("<p>None.</p>")
    for rank, pair in enumerate(pairs[:shown], 1):
        parts.append(_side_by_side(rank, pair))
    return html_report.page(TITLE, "\n".join(parts), css=CSS)


def _table(pairs):
    rows = ["<table class=\"ranked\"><thead><tr><th>#</th><th></th><th>A</th><th>B</th>"
            "<th>B from</th><th>code</th><th>answers</th><th>longest run (lines)</th></tr>"
            "</thead><tbody>"]
    for rank, p in enumerate(pairs, 1):
        rows.append(
            f"<tr><td><a href=\"#pair-{rank}\">{rank}</a></td>"
            f"<td class=\"look\">{'●' if p.flagged else ''}</td>"
            f"<td>{_who(p.a)}</td><td>{_who(p.b)}</td><td>{html.escape(p.b.origin)}</td>"
            f"<td>{p.code:.0%}</td><td>{p.answers:.0%}</td><td>{p.run_lines}</td></tr>")
    rows.append("</tbody></table>")
    return "".join(rows)


def _who(doc):
    student = doc.identity.get("student")
    return html.escape(doc.name) + (f" ({html.escape(student)})" if student else "")


def _side_by_side(rank, pair):
    head = (f"<h3 id=\"pair-{rank}\">{rank}. {html.escape(pair.a.name)} and "
            f"{html.escape(pair.b.name)}</h3>"
            f"<p class=\"from\">code {pair.code:.0%}, answers {pair.answers:.0%}, longest shared "
            f"run {pair.run_lines} lines ({pair.run_tokens} tokens); B: "
            f"{html.escape(pair.b.origin)}. Highlighted: passages found in both; grey: the "
            "kit's starter code. <a href=\"#ranked\">back to the ranking</a></p>")
    body = ""
    if pair.slices_a:
        body += ("<div class=\"sbs\">" + _code_column(pair.a, pair.slices_a)
                 + _code_column(pair.b, pair.slices_b) + "</div>")
    for qid in sorted(pair.shared_words):
        words_a, words_b = pair.shared_words[qid]
        body += (f"<h4>Answer {html.escape(qid)}</h4><div class=\"sbs\">"
                 f"<div>{_answer(pair.a, qid, words_a)}</div>"
                 f"<div>{_answer(pair.b, qid, words_b)}</div></div>")
    if not body:
        body = "<p>Nothing long enough to show side by side.</p>"
    return head + body


def _code_column(doc, slices):
    """One side: the student's lines and the shared ones, with CONTEXT lines around them;
    the rest (the kit's code, docstrings) folded into a line that says how many."""
    shared, student, given = set(), set(), set()
    for start, end in slices:
        for t in range(start, end):
            shared.add((int(doc.token_file[t]), int(doc.token_line[t])))
    for t in range(len(doc.starter)):
        key = (int(doc.token_file[t]), int(doc.token_line[t]))
        (given if doc.starter[t] else student).add(key)
    out = [f"<div><p><strong>{html.escape(doc.name)}</strong></p>"]
    for index, (name, text) in enumerate(doc.files):
        lines = text.splitlines()[:MAX_LINES]
        near = {n + d for (i, n) in shared | student if i == index
                for d in range(-CONTEXT, CONTEXT + 1)}
        out.append(f"<p class=\"from\">{html.escape(name)}</p><pre>")
        folded = 0
        for number, line in enumerate(lines + [None], 1):
            if line is not None and number not in near:
                folded += 1
                continue
            if folded:
                out.append(f"<span class=\"gap\">⋯ {folded} lines of the kit's code, "
                           "docstrings or blank lines</span>")
                folded = 0
            if line is None:
                break
            key = (index, number)
            kind = ("shared" if key in shared else "plain" if key in student
                    else "given" if key in given else "plain")
            out.append(f"<span class=\"{kind}\"><span class=\"ln\">{number}</span>"
                       f"{html.escape(line) or ' '}</span>")
        out.append("</pre>")
    out.append("</div>")
    return "".join(out)


def _answer(doc, qid, shared):
    text = doc.answers.get(qid, "")
    marked = {}
    for i, (_, start, end) in enumerate(doc.answer_words.get(qid, [])):
        if i in shared:
            marked[start] = end
    out, position = [], 0
    for start in sorted(marked):
        out.append(html.escape(text[position:start]))
        out.append(f"<span class=\"word-shared\">{html.escape(text[start:marked[start]])}</span>")
        position = marked[start]
    out.append(html.escape(text[position:]))
    return f"<p><strong>{html.escape(doc.name)}</strong></p><p>{''.join(out)}</p>"
