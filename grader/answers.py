"""Written answers, graded question by question: answers.html, manual.csv and `grade.py merge`.

A TA grades fastest one question across all students. With `--execute` the batch keeps each
student's answers (DIR/<name>/answers.json) and writes DIR/answers.html: for each written
question, its text, then every student's answer in a box the grader draws and labels with the
student's name (headings inside an answer are demoted, so no answer can pass for a question or
for another student's box), as safe as report.html (the same renderer behind the same wall,
sanitiser and Content-Security-Policy). It also writes DIR/manual.csv with a score and a
comment column per question for the TA, keeping everything already entered.

`grade.py merge DIR` checks manual.csv (as Excel saves it too: a byte-order mark, CRLF; a blank
score is "not yet graded") and stores the scores and comments in DIR/manual-merged.json, then
writes them into grades.csv with new totals. The batch calls `reapply_merge` after every rewrite
of grades.csv, so merged scores survive reruns and regrades: only a new merge changes them.
A merge also rewrites the LMS files asked for in DIR (canvas.csv, gradescope.csv: grader.lms)
from the merged grades.csv. `written_scores` gives them, with the comments, to whoever writes a student's feedback.

Cells are found by what survives a student's editing: the tag `question:<id>` / `answer:<id>`
in the cell's metadata, or else the cell id `question-<id>` / `answer-<id>`; never by position.
A student who wrote in new cells below the answer cell (up to the next question or section
heading) gets those cells too, marked in answers.html as found there, for the TA to check.
"""
import csv
import hashlib
import html
import io
import json
import os
import re
import sys
import time

from grader import GRADER_VERSION, KIT_ROOT, cells, html_report, lms, notebook, report

# Points of each written question: the one place they are set (their ids are the notebook's tags).
WRITTEN_POINTS = {"q1": 5, "q2": 5, "q3": 5}
PLACEHOLDER = cells.ANSWER_PLACEHOLDER
ANSWERS_FILE = "answers.json"
MERGED_FILE = "manual-merged.json"  # in DIR: the last merge's scores and comments
RENDER_CACHE = ".answers-render.json"  # in DIR: rendered answers, so a rerun renders only new ones
KIT_NOTEBOOK = os.path.join(KIT_ROOT, "two_layer_net.ipynb")
COMMENT = " comment"  # manual.csv's comment column of question q is "q comment"
_SECTION = re.compile(r"\s*#{1,2}\s")  # a level-1 or level-2 heading ends a question's cells
_HEADING_TAG = re.compile(r"<(/?)h[1-6]\b[^>]*>")
_CLASS = re.compile(r'\sclass="([^"]*)"')
_GRADERS_CLASS = re.compile(r"answer-.*|question")
ANSWERS_CSS = """
.question { border-left: 4px solid #1a5fb4; padding: 0 1rem; margin: 0 0 1rem; }
.answer-box { border: 1px solid #8c959f; border-radius: 6px; margin: 0 0 1rem; }
.answer-label { background: #eaeef2; border-bottom: 1px solid #8c959f; padding: .3rem .8rem;
                font-weight: 600; border-radius: 6px 6px 0 0; }
.answer-body { padding: .2rem .9rem; }
.answer-note { color: #9a6700; font-style: italic; }
.answer-missing { color: #6e7781; font-style: italic; }
"""


class MergeError(ValueError):
    """manual.csv cannot be merged; the message says which names, lines or columns are wrong."""


_ids = cells.cell_ids  # the notebook's facts (tags, ids, the placeholder) live in grader.cells
_source = cells.source


def tagged_cells(nb, kind):
    """{question id: cell source} of the notebook's `kind` ("question" or "answer") cells."""
    found = {}
    for cell in nb.get("cells", []):
        for qid in _ids(cell, kind):
            found[qid] = _source(cell)
    return found


_blank = cells.is_unanswered


def answers_of(nb):
    """The student's answers: {"answers": {question id: markdown}, "guessed": {question id: why}}.

    An answer is its tagged answer cell (a placeholder left as it is counts as blank) and the
    markdown cells the student added under the question, up to the next question, another
    question's answer cell, or a level-1/2 heading; those added cells are a guess, said in
    "guessed".
    """
    cells = nb.get("cells", [])
    tagged = {qid: ("" if _blank(t) else t) for qid, t in tagged_cells(nb, "answer").items()}
    given, guessed = {}, {}
    for qid in WRITTEN_POINTS:
        text = tagged.get(qid, "")
        starts = [i for i, c in enumerate(cells) if qid in _ids(c, "question")]
        extra = []
        for cell in cells[starts[0] + 1:] if starts else []:
            own = _ids(cell, "answer")
            if _ids(cell, "question") or (own and qid not in own):
                break
            if own or _ids(cell, "solution") or cell.get("cell_type") not in ("markdown", "raw"):
                continue
            source = _source(cell)
            if _SECTION.match(source):
                break
            if not _blank(source):
                extra.append(source)
        if extra:
            where = "in the answer cell and " if text else ""
            guessed[qid] = (f"found {where}in {len(extra)} untagged cell(s) under the question: "
                            "check that it is the answer")
            text = "\n\n".join([text, *extra] if text else extra)
        given[qid] = text
    return {"answers": given, "guessed": guessed}


def questions():
    """{question id: text} from the kit's notebook, in WRITTEN_POINTS' order."""
    try:
        with open(KIT_NOTEBOOK, "rb") as f:
            texts = tagged_cells(notebook.read_notebook(f.read()), "question")
    except (OSError, ValueError):
        texts = {}
    return {qid: texts.get(qid, f"Question {qid}") for qid in WRITTEN_POINTS}


def _load_record(out_dir, name):
    """One student's answers.json as {"answers": ..., "guessed": ...}, or
    {"missing": why} when there is none (no notebook, a refused submission)."""
    try:
        with open(os.path.join(out_dir, name, ANSWERS_FILE)) as f:
            data = json.load(f)
        if isinstance(data, dict) and isinstance(data.get("answers"), dict):
            return {"answers": {k: str(v) for k, v in data["answers"].items()},
                    "guessed": {k: str(v) for k, v in (data.get("guessed") or {}).items()}}
        if isinstance(data, dict):  # the first version: {question id: text}
            return {"answers": {k: str(v) for k, v in data.items()}, "guessed": {}}
    except (OSError, ValueError, AttributeError):
        pass
    return {"missing": _missing_reason(out_dir, name)}


def _missing_reason(out_dir, name):
    """Why a student has no answers: from their results.json (the batch's own words)."""
    try:
        with open(os.path.join(out_dir, name, "results.json")) as f:
            output = str(json.load(f).get("output", ""))
    except (OSError, ValueError, AttributeError):
        return "no results for this submission"
    refused = "Could not grade this submission:"
    if output.startswith(refused):
        return "the submission was not graded: " + output[len(refused):].strip()
    if "Notebook: none submitted" in output:
        return "no notebook submitted (two_layer_net.ipynb)"
    return "no notebook"


def write_reports(out_dir, names):
    """DIR/answers.html and DIR/manual.csv for the submissions `names` (results folders in DIR)."""
    records = {name: _load_record(out_dir, name) for name in sorted(names)}
    report.write_atomically(os.path.join(out_dir, "answers.html"),
                            answers_html(records, cache_path=os.path.join(out_dir, RENDER_CACHE)))
    update_manual_csv(os.path.join(out_dir, "manual.csv"), sorted(names))


def rendered(texts, cache_path=None):
    """{text: sanitised HTML} for markdown `texts`, rendered behind the render wall
    (grader.notebook.render_markdown); with `cache_path`, texts rendered before (by this
    grader's version) are taken from there, and only new ones are rendered."""
    keys = {text: hashlib.sha256(text.encode("utf-8")).hexdigest() for text in texts}
    cached = {}
    if cache_path:
        try:
            with open(cache_path) as f:
                data = json.load(f)
            if data.get("version") == GRADER_VERSION and isinstance(data.get("html"), dict):
                cached = data["html"]
        except (OSError, ValueError, AttributeError):
            pass
    todo = sorted({t for t, k in keys.items() if not isinstance(cached.get(k), str)})
    done = _render_split(todo)
    fresh = {keys[t]: h for t, h in zip(todo, done)}
    result = {t: fresh.get(k, cached.get(k)) for t, k in keys.items()}
    if cache_path:
        kept = {k: result[t] for t, k in keys.items()}
        report.write_atomically(cache_path, json.dumps({"version": GRADER_VERSION, "html": kept}))
    return result


def _render_split(texts):
    """render_markdown, halving the list when a render fails: one answer that exhausts the wall
    is shown as text alone, and the rest are still formatted."""
    if not texts:
        return []
    if len(texts) == 1:
        return notebook.render_markdown(texts)
    try:
        return notebook.render_markdown(texts, fallback=False)
    except notebook.RenderError:
        half = len(texts) // 2
        return _render_split(texts[:half]) + _render_split(texts[half:])


def _demote_headings(fragment):
    """A sanitised answer that cannot pass for the grader's own parts: every heading an <h6>
    without id, and no class of the grader's boxes (answer-...)."""
    fragment = _HEADING_TAG.sub(lambda m: f"<{m.group(1)}h6>", fragment)
    return _CLASS.sub(lambda m: " class=\"" + " ".join(
        c for c in m.group(1).split() if not _GRADERS_CLASS.fullmatch(c)) + "\"", fragment)


def answers_html(records, cache_path=None):
    """One page: each question's text, then every student's answer to it, each in its box.

    `records`: {name: {"answers": {question id: markdown}, "guessed": {question id: why}}, or
    {"missing": why}} (see answers_of, _load_record).
    """
    texts = questions()
    answers_given = [r.get("answers", {}).get(q) or "" for r in records.values() for q in texts]
    shown = rendered([t for t in [*texts.values(), *answers_given] if t], cache_path)
    sections = []
    for qid, text in texts.items():
        parts = [f"<h2 id=\"question-{html.escape(qid)}\">{html.escape(qid)} "
                 f"({WRITTEN_POINTS[qid]} points)</h2>",
                 f"<div class=\"question\">{_demote_headings(shown[text])}</div>"]
        for name, record in records.items():
            if "missing" in record:
                body = f"<p class=\"answer-missing\">({html.escape(record['missing'])})</p>"
            else:
                given = record["answers"].get(qid) or ""
                body = (_demote_headings(shown[given]) if given
                        else "<p class=\"answer-missing\">(no answer)</p>")
                why = record.get("guessed", {}).get(qid)
                if why:
                    body = f"<p class=\"answer-note\">Not in the answer cell: {html.escape(why)}.</p>" + body
            parts.append(f"<div class=\"answer-box\"><div class=\"answer-label\">{html.escape(name)}"
                         f" &middot; {html.escape(qid)}</div><div class=\"answer-body\">{body}</div></div>")
        sections.append("".join(parts) + "<hr>")
    return html_report.page("Written answers", "".join(sections), css=ANSWERS_CSS)


def manual_columns():
    """manual.csv's columns: name, then each question's score and comment."""
    return ["name", *(c for q in WRITTEN_POINTS for c in (q, q + COMMENT))]


def update_manual_csv(path, names):
    """manual.csv with a row per name and a score and comment column per question; every row and
    value already entered stays (a name pasted twice too: `merge` names both lines)."""
    rows, bom, newline = [], "", "\n"
    if os.path.exists(path):
        try:
            rows, _ = _read_manual(path)
            bom, newline = _manual_style(path)
        except (MergeError, OSError) as e:  # a file the TA is editing that we cannot read:
            print(f"grade.py: {path} was left as it is ({e}); new students were not added",
                  file=sys.stderr)  # never overwrite it
            return
    known = {r.get("name") for r in rows}
    rows += [{"name": n} for n in names if n not in known]
    rows.sort(key=lambda r: r.get("name") or "")
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator=newline)
    writer.writerow(manual_columns())
    for row in rows:
        writer.writerow([row.get(c) or "" for c in manual_columns()])
    report.write_atomically(path, bom + buffer.getvalue())


def _manual_style(path):
    """(byte-order mark or "", line end) of the manual.csv at `path`, so that a rewrite keeps
    what the TA's spreadsheet wrote: Excel's "CSV UTF-8" starts with a byte-order mark (without
    it Excel reads the file in the machine's legacy code page, and "Très bien" comes back
    garbled) and ends lines with CRLF."""
    with open(path, "rb") as f:
        head = f.read(1 << 16)
    bom = "\ufeff" if head.startswith(b"\xef\xbb\xbf") else ""
    return bom, "\r\n" if b"\r\n" in head else "\n"


def _read_manual(path):
    """(rows, header) of manual.csv, each row a dict with its line number under "_line"; blank
    rows (a spreadsheet's trailing ones) left out. Reads a byte-order mark and CRLF."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            header = [c.strip() for c in next(reader, [])]
            rows = []
            for cells in reader:
                if not any(c.strip() for c in cells):
                    continue
                row = {h: c.strip() for h, c in zip(header, cells) if h}
                row["_line"] = reader.line_num
                rows.append(row)
    except UnicodeDecodeError:
        raise MergeError("manual.csv is not UTF-8 text; in Excel save it as "
                         "'CSV UTF-8 (Comma delimited)'") from None
    return rows, header


def merge(*, out_dir):
    """`grade.py merge DIR`: written scores from DIR/manual.csv into DIR/grades.csv (and the
    store DIR/manual-merged.json). Exit code."""
    grades_path = os.path.join(out_dir, "grades.csv")
    try:
        scores = read_manual(os.path.join(out_dir, "manual.csv"), grades_path)
        merged = merged_grades(grades_path, scores)
    except MergeError as e:
        print(f"grade.py merge: {e}", file=sys.stderr)
        return 2
    previous, totals_before = _stored(out_dir), _totals(grade_rows(out_dir))
    store = {"merged_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
             "scores": {name: {q: list(v) for q, v in given.items()} for name, given in scores.items()}}
    report.write_atomically(os.path.join(out_dir, MERGED_FILE), json.dumps(store, indent=1))
    report.write_atomically(grades_path, merged)
    uploads = lms.write(out_dir)  # canvas.csv, gradescope.csv: the new totals, as grades.csv
    write_feedback(out_dir)  # the students' pages show the new written scores and comments
    from grader import outdir
    write_index(out_dir, outdir.earlier_results(out_dir, exclude=()))
    changes = merge_changes(previous, scores, totals_before, _totals(grade_rows(out_dir)))
    ungraded = [f"{name} {q}" for name, given in scores.items() for q, (s, _) in given.items()
                if s is None]
    print(f"merged the written scores into {grades_path}"
          + (f"; {len(ungraded)} not yet graded (blank in manual.csv): {', '.join(ungraded[:10])}"
             + (f" and {len(ungraded) - 10} more" if len(ungraded) > 10 else "")
             if ungraded else "; every written answer is graded"))
    for line in changes:
        print(line)
    if uploads:
        print(f"wrote {', '.join(uploads)} from it, for your LMS")
    return 0


def _totals(table):
    """{name: grades.csv's total} (a group's rows share one)."""
    return {r.get("name"): (r.get("total") or "").strip() for r in table}


def merge_changes(previous, scores, totals_before=None, totals_after=None):
    """Lines saying what this merge changed against the last one (`previous`, as
    written_scores gives it; None for the first merge): per student, each score changed or
    removed (blank now: not yet graded, so the total drops) with the total before and after,
    then how many scores were graded for the first time. A first merge says nothing."""
    if previous is None:
        return []
    lines, added = [], 0
    totals_before, totals_after = totals_before or {}, totals_after or {}
    for name in sorted(set(previous) | set(scores)):
        old, new = previous.get(name, {}), scores.get(name, {})
        said = []
        for q in WRITTEN_POINTS:
            before, after = (old.get(q) or (None, ""))[0], (new.get(q) or (None, ""))[0]
            if before is None and after is not None:
                added += 1
            elif before is not None and after is None:
                said.append(f"{q} {_plain(before)} removed (blank now: not yet graded)")
            elif before is not None and before != after:
                said.append(f"{q} {_plain(before)} -> {_plain(after)}")
        if name not in scores and old:
            said.append("no longer in grades.csv")
        if said:
            total = ""
            if totals_before.get(name) and totals_after.get(name) \
                    and totals_before[name] != totals_after[name]:
                total = f" (total {totals_before[name]} -> {totals_after[name]})"
            lines.append(f"  {name}: {'; '.join(said)}{total}")
    head = ([f"changed since the last merge: {len(lines)} student"
             f"{'s' if len(lines) != 1 else ''}"] if lines else
            ["no score merged before was changed or removed"])
    tail = [f"{added} score{'s' if added != 1 else ''} graded for the first time"] if added else []
    return head + lines + tail


def read_manual(manual_path, grades_path):
    """{name: {question id: (score or None when blank, comment)}} from manual.csv, checked
    against grades.csv's names; MergeError names what is wrong (with line numbers)."""
    grades, _ = _read(grades_path, "grades.csv", "run grade.py with --out first")
    if not os.path.exists(manual_path):
        raise MergeError(f"there is no manual.csv in {os.path.dirname(manual_path) or '.'}; "
                         "run grade.py with --execute first")
    manual, header = _read_manual(manual_path)
    columns = [c for c in header if c]
    known = set(manual_columns())
    if not set(["name", *WRITTEN_POINTS]) <= set(columns) or not set(columns) <= known:
        raise MergeError(f"manual.csv has the columns {', '.join(columns)}; expected "
                         f"name, {', '.join(WRITTEN_POINTS)} (the questions' ids), each "
                         f"optionally followed by its comment column ('{next(iter(WRITTEN_POINTS))}"
                         f"{COMMENT}')")
    lines = {}
    for row in manual:
        lines.setdefault(row.get("name", ""), []).append(row["_line"])
    twice = {n: ls for n, ls in lines.items() if len(ls) > 1}
    if twice:
        raise MergeError("manual.csv names a submission more than once: " + "; ".join(
            f"'{n}' on lines {', '.join(map(str, ls))}" for n, ls in sorted(twice.items()))
            + "; keep one row for each")
    names, manual_names = [r["name"] for r in grades], [r.get("name", "") for r in manual]
    missing, extra = sorted(set(names) - set(manual_names)), sorted(set(manual_names) - set(names))
    if missing or extra:
        raise MergeError("manual.csv and grades.csv name different submissions: "
                         + "; ".join(filter(None, [
                             missing and f"not in manual.csv: {', '.join(missing)}",
                             extra and f"not in grades.csv: {', '.join(extra)}"])))
    return {r["name"]: {q: (_score(r, q), r.get(q + COMMENT, "")) for q in WRITTEN_POINTS}
            for r in manual}


def merged_grades(grades_path, scores):
    """grades.csv's text with the written columns (replaced if merged before) and new totals.

    `scores`: {name: {question id: (score or None, comment)}}; a name not in it gets blank
    written columns. The total is grades.csv's own total with the written scores of an
    earlier merge taken out and these put in, so the grader's other columns keep their meaning.
    """
    from grader.gradebook import MAX_POINTS

    grades, grade_columns = _read(grades_path, "grades.csv", "run grade.py with --out first")
    if "total" not in grade_columns:
        raise MergeError(f"{grades_path} has no total column")
    base = [c for c in grade_columns if c not in WRITTEN_POINTS]
    columns = base[:base.index("total")] + list(WRITTEN_POINTS) + base[base.index("total"):]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, columns, lineterminator="\n")
    writer.writeheader()
    for row in grades:
        before = sum(_number(row.get(q)) for q in WRITTEN_POINTS)
        written = {q: s for q, (s, _) in (scores.get(row["name"]) or {}).items()}
        total = _number(row["total"]) - before + sum(s for s in written.values() if s is not None)
        # The columns computed from the total follow it: the code's points and the written ones.
        derived = {"total": total}
        if "max_points" in base:
            derived["max_points"] = MAX_POINTS + sum(WRITTEN_POINTS.values())
        ungraded = row.get("flags", "").startswith("could not be graded")
        final = 0.0 if ungraded else max(0.0, total - _number(row.get("late_penalty")))
        if "final" in base:
            derived["final"] = final
        if "percent" in base:
            derived["percent"] = 100 * final / derived.get("max_points", MAX_POINTS)
        writer.writerow({**{c: row[c] for c in base},
                         **{q: "" if written.get(q) is None else _plain(written[q])
                            for q in WRITTEN_POINTS},
                         **{c: _plain(round(v, 6)) for c, v in derived.items()}})
    return buffer.getvalue()


def reapply_merge(out_dir):
    """Put the last merge's written scores (DIR/manual-merged.json) back into DIR/grades.csv
    after the batch rewrote it; nothing when nothing was merged. The batch calls this after
    every write of grades.csv."""
    store = _stored(out_dir)
    if store is None:
        return
    grades_path = os.path.join(out_dir, "grades.csv")
    try:
        report.write_atomically(grades_path, merged_grades(grades_path, store))
    except MergeError as e:
        print(f"grade.py: the merged written scores could not be kept in grades.csv: {e}; "
              f"run grade.py merge {out_dir} again", file=sys.stderr)


def write_index(out_dir, rows):
    """DIR/index.html (grader.html_report.index_html) for `rows` {name: SubmissionResult}: score,
    merged written points (or that they are not graded yet), the late penalty and final and
    the flags as grades.csv has them, the notebook's summary, links to report.html and
    feedback.html where they exist. The batch calls it last, after every per-student file."""
    written = written_scores(out_dir)
    table = grade_rows(out_dir)
    entries = []
    for name, result in sorted(rows.items()):
        extra = result.extra_data or {}
        given = [s for s, _ in (written.get(name) or {}).values() if s is not None]
        pending = [q for q, (s, _) in (written.get(name) or {}).items() if s is None]
        identity = extra.get("identity") or {}
        own = rows_of(table, name, identity)
        flags = [str(f) for f in extra.get("flags") or []]
        if own:  # grades.csv's flags: the batch's and the gradebook's (lateness, groups)
            flags = list(dict.fromkeys(f for r in own if (f := (r.get("flags") or "").strip())))
        finals = list(dict.fromkeys(
            ((r.get("student") or "").strip() if len(own) > 1 else "",
             (r.get("late_penalty") or "").strip(), (r.get("final") or "").strip())
            for r in own if _number(r.get("late_penalty"))))
        entries.append({
            "name": name, "who": str(identity.get("student") or ""),
            "score": result.score, "max_score": sum(t.max_score for t in result.tests) or 100,
            "written": sum(given) if given else None,
            "written_pending": len(pending) if name in written else 0,
            "late": finals,
            "flags": flags,
            "notebook": str(extra.get("notebook") or "").split(". ")[0][:160],
            "report": os.path.isfile(os.path.join(out_dir, name, "report.html")),
            "feedback": os.path.isfile(os.path.join(out_dir, name, "feedback.html"))})
    report.write_atomically(os.path.join(out_dir, "index.html"), html_report.index_html(entries))


def grade_rows(out_dir):
    """DIR/grades.csv's rows (dicts), [] when there is none or it cannot be read: what the
    feedback and the index show of the total, late penalty, final and flags."""
    try:
        return _read(os.path.join(out_dir, "grades.csv"), "grades.csv", "")[0]
    except (MergeError, OSError, csv.Error, UnicodeDecodeError):
        return []


def rows_of(table, name, identity=None):
    """The rows of grades.csv (`table`) that belong to the submission `name`: those named so,
    and a group's members' rows (by their sid or email) whatever they are named."""
    members = (identity or {}).get("members") or []
    keys = {("sid", str(m.get("sid"))) for m in members if m.get("sid")} | {
        ("email", str(m.get("email"))) for m in members if m.get("email")}
    return [r for r in table if r.get("name") == name
            or any((r.get(k) or "").strip() == v for k, v in keys)]


def written_scores(out_dir):
    """{student name: {question id: (score or None when not yet graded, comment)}} of the last
    merge (DIR/manual-merged.json); {} when nothing was merged. For the students' feedback."""
    return _stored(out_dir) or {}


def feedback_written(out_dir):
    """written_scores(out_dir) as grader.feedback's pages take them: {name: {"scores":
    {question: points, None when not yet graded}, "max": {question: points}, "comments":
    {question: text}}}: every question, so a blank one shows as not yet graded."""
    return {name: {"scores": {q: given.get(q, (None, ""))[0] for q in WRITTEN_POINTS},
                   "max": dict(WRITTEN_POINTS),
                   "comments": {q: c for q, (_, c) in given.items() if c}}
            for name, given in written_scores(out_dir).items()}


def write_feedback(out_dir, results=None):
    """DIR/<name>/feedback.html for every graded row (`results`, else every results.json in
    DIR), with the written scores and comments of the last merge, and the total, late penalty
    and final of the row's grades.csv."""
    from grader import feedback, outdir

    results = outdir.earlier_results(out_dir, exclude=()) if results is None else results
    written = feedback_written(out_dir)
    table = grade_rows(out_dir)
    for name, result in results.items():
        identity = (result.extra_data or {}).get("identity") or {}
        report.write_atomically(os.path.join(out_dir, name, feedback.FEEDBACK_FILE),
                                feedback.page(name, result, written.get(name),
                                              rows_of(table, name, identity)))


def _stored(out_dir):
    try:
        with open(os.path.join(out_dir, MERGED_FILE)) as f:
            data = json.load(f)
        return {str(name): {q: (None if v[0] is None else float(v[0]), str(v[1]))
                            for q, v in given.items() if q in WRITTEN_POINTS}
                for name, given in data["scores"].items()}
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError, IndexError) as e:
        print(f"grade.py: {os.path.join(out_dir, MERGED_FILE)} is unreadable ({e}); run "
              f"grade.py merge {out_dir} again", file=sys.stderr)
        return None


def _read(path, what, fix):
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            rows = list(reader)
            return rows, list(reader.fieldnames or [])
    except FileNotFoundError:
        raise MergeError(f"there is no {what} in {os.path.dirname(path) or '.'}; {fix}") from None


def _number(text):
    try:
        return float(text)
    except (TypeError, ValueError):
        return 0.0


def _score(row, qid):
    """The score in `row` for `qid`, or None when its cell is blank (not yet graded)."""
    text = (row.get(qid) or "").strip()
    if not text:
        return None
    try:
        value = float(text.replace(",", ".")) if text.count(",") == 1 and "." not in text \
            else float(text)
    except ValueError:
        raise MergeError(f"manual.csv line {row['_line']}: '{row['name']}' has '{text}' for "
                         f"{qid}; a score is a number from 0 to {WRITTEN_POINTS[qid]}, or blank "
                         "when not yet graded") from None
    if not 0 <= value <= WRITTEN_POINTS[qid]:
        raise MergeError(f"manual.csv line {row['_line']}: '{row['name']}' has {text} for {qid}, "
                         f"outside 0 to {WRITTEN_POINTS[qid]}")
    return value


def _plain(value):
    return int(value) if float(value).is_integer() else value
