"""Written answers graded question by question: answers.html, manual.csv and `grade.py merge`."""
import csv
import html.parser
import json
import os

import nbformat
import pytest

import grade
from conftest import ROOT
from grader import answers

SOLUTION = open(os.path.join(ROOT, "tests", "submissions", "student_solution.py")).read()


def answer_notebook(given, shuffle=False):
    """A notebook with the kit's question cells and answer cells holding `given` {qid: text};
    `shuffle` reverses the cells (answers are found by tag, not position)."""
    with open(os.path.join(ROOT, "two_layer_net.ipynb")) as f:
        kit = nbformat.read(f, as_version=4)
    cells = []
    for cell in kit.cells:
        tags = cell.metadata.get("tags", [])
        if any(t.startswith("question:") for t in tags):
            cells.append(cell)
        if any(t.startswith("answer:") for t in tags):
            qid = next(t for t in tags if t.startswith("answer:")).split(":", 1)[1]
            answer = nbformat.from_dict(dict(cell))
            answer.source = given.get(qid, answer.source)
            cells.append(answer)
    cells.append(nbformat.v4.new_code_cell("print('ran')"))
    return nbformat.writes(nbformat.v4.new_notebook(cells=cells[::-1] if shuffle else cells))


class Scripts(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.found = []

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "iframe", "object") or any(
                k.startswith("on") or "javascript:" in (v or "").lower() for k, v in attrs):
            self.found.append((tag, attrs))


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    folder = tmp_path_factory.mktemp("answers")
    out = folder / "out"
    students = {
        "amy": {"q1": "The loss *falls* then flattens.", "q2": "Scores come first."},
        "bob": {"q1": "<script>alert(1)</script><img src=x onerror=alert(2)> [x](javascript:alert(3))"},
        "cat": {},
    }
    for name, given in students.items():
        (folder / name).mkdir()
        (folder / name / "two_layer_net.py").write_text(SOLUTION)
        (folder / name / "two_layer_net.ipynb").write_text(answer_notebook(given, shuffle=name == "amy"))
    subs = [str(folder / n) for n in students]
    assert grade.main([*subs, "--out", str(out), "--execute", "--notebook-timeout", "60"]) == 0
    return {"out": out, "subs": subs, "students": students}


def test_questions_points_and_the_notebooks_tags_agree():
    with open(os.path.join(ROOT, "two_layer_net.ipynb")) as f:
        kit = nbformat.read(f, as_version=4)
    assert set(answers.tagged_cells(kit, "question")) == set(answers.WRITTEN_POINTS)
    assert set(answers.tagged_cells(kit, "answer")) == set(answers.WRITTEN_POINTS)


@pytest.mark.slow
@pytest.mark.notebook
def test_answers_html_shows_each_question_then_every_students_answer(graded):
    page = (graded["out"] / "answers.html").read_text()
    q1, q2 = page.index("q1 (5 points)"), page.index("q2 (5 points)")
    assert q1 < page.index("The loss <em>falls</em> then flattens.") < q2, "amy's answer to q1 (cells reversed)"
    assert q1 < page.index("amy") < page.index("bob") < page.index("cat") < q2
    assert "Scores come first." in page[q2:]
    assert page.count("(no answer)") >= 4, "blank answers are marked, not dropped"


@pytest.mark.slow
@pytest.mark.notebook
def test_answers_html_runs_nothing_a_student_wrote(graded):
    page = (graded["out"] / "answers.html").read_text()
    parser = Scripts()
    parser.feed(page)
    assert parser.found == []
    assert "alert(3)" in page, "the answer is shown, as text"
    assert "Content-Security-Policy" in page


@pytest.mark.slow
@pytest.mark.notebook
def test_manual_csv_has_an_empty_column_per_question_and_keeps_scores_on_rerun(graded):
    manual = graded["out"] / "manual.csv"
    with open(manual) as f:
        rows = list(csv.DictReader(f))
    assert [r["name"] for r in rows] == ["amy", "bob", "cat"]
    assert list(rows[0]) == ["name", "q1", "q1 comment", "q2", "q2 comment", "q3", "q3 comment"]
    assert all(v == "" for r in rows for k, v in r.items() if k != "name")
    manual.write_text("name,q1,q1 comment,q2,q2 comment,q3,q3 comment\n"
                      "amy,5,clear,4,,3,\nbob,1,,0,,0,\ncat,0,,0,,2.5,see me\n")
    before = manual.read_text()
    assert grade.main([*graded["subs"], "--out", str(graded["out"]), "--execute"]) == 0
    assert manual.read_text() == before


@pytest.mark.slow
@pytest.mark.notebook
def test_merge_adds_the_written_scores_and_new_totals(graded, capsys):
    (graded["out"] / "manual.csv").write_text("name,q1,q2,q3\namy,5,4,3\nbob,1,0,0\ncat,0,0,2.5\n")
    assert grade.main(["merge", str(graded["out"])]) == 0
    assert grade.main(["merge", str(graded["out"])]) == 0, "merging twice replaces, never adds twice"
    with open(graded["out"] / "grades.csv") as f:
        rows = {r["name"]: r for r in csv.DictReader(f)}
    assert rows["amy"]["q1"] == "5" and rows["amy"]["total"] == "112"
    assert rows["cat"]["total"] == "102.5"
    header = open(graded["out"] / "grades.csv").readline().strip().split(",")
    assert header.index("q3") + 1 == header.index("total")


@pytest.mark.slow
@pytest.mark.notebook
@pytest.mark.parametrize("manual, message", [
    ("name,q1,q2\namy,1,1\nbob,1,1\ncat,1,1\n", "has the columns name, q1, q2; expected name, q1, q2, q3"),
    ("name,q1,q2,q3\namy,1,1,1\nbob,1,1,1\n", "not in manual.csv: cat"),
    ("name,q1,q2,q3\namy,1,1,1\nbob,1,1,1\ncat,1,1,1\ndan,1,1,1\n", "not in grades.csv: dan"),
    ("name,q1,q2,q3\namy,1,1,1\nbob,x,1,1\ncat,1,1,1\n", "line 3: 'bob' has 'x' for q1"),
    ("name,q1,q2,q3\namy,1,1,1\nbob,1,1,1\ncat,1,1,1\namy,2,2,2\n", "'amy' on lines 2, 5"),
    ("name,q1,q2,q3\namy,9,1,1\nbob,1,1,1\ncat,1,1,1\n", "'amy' has 9 for q1, outside 0 to 5"),
])
def test_merge_refuses_a_manual_csv_that_does_not_match(graded, capsys, manual, message):
    grades_before = (graded["out"] / "grades.csv").read_text()
    (graded["out"] / "manual.csv").write_text(manual)
    assert grade.main(["merge", str(graded["out"])]) == 2
    assert message in capsys.readouterr().err
    assert (graded["out"] / "grades.csv").read_text() == grades_before, "a refused merge wrote"


@pytest.mark.slow
@pytest.mark.notebook
def test_answers_json_is_written_beside_each_result(graded):
    amy = json.loads((graded["out"] / "amy" / answers.ANSWERS_FILE).read_text())
    assert amy["answers"]["q1"].startswith("The loss") and amy["answers"]["q3"] == ""


# Fast checks of answers.py on its own: notebooks and results folders written by hand.

def kit_cells():
    with open(os.path.join(ROOT, "two_layer_net.ipynb")) as f:
        return nbformat.read(f, as_version=4).cells


def test_an_answer_typed_in_a_new_cell_under_the_answer_cell_is_found_and_marked():
    cells = []
    for cell in kit_cells():
        cells.append(cell)
        if "answer:q1" in cell.metadata.get("tags", []):  # left as the placeholder
            cells.append(nbformat.v4.new_markdown_cell("The toy loss falls to about 1.08."))
            cells.append(nbformat.v4.new_code_cell("print('a check of my own')"))
            cells.append(nbformat.v4.new_markdown_cell("And the digits curves part later."))
        if "answer:q2" in cell.metadata.get("tags", []):
            cell.source = "Because y is None returns the scores."
            cells.append(nbformat.v4.new_markdown_cell("Also: it keeps one code path."))
    found = answers.answers_of(nbformat.v4.new_notebook(cells=cells))
    assert "The toy loss falls to about 1.08." in found["answers"]["q1"]
    assert "And the digits curves part later." in found["answers"]["q1"]
    assert "q1" in found["guessed"], "an answer found outside the answer cell is marked as a guess"
    assert found["answers"]["q2"].startswith("Because y is None") and "one code path" in found["answers"]["q2"]
    assert "q2" in found["guessed"]
    assert found["answers"]["q3"] == "" and "q3" not in found["guessed"]
    assert "Model answer" not in found["answers"]["q1"], "the instructor's solution cell is not an answer"
    assert "Check yourself" not in found["answers"]["q3"], "the next section is not an answer"


class Boxes(html.parser.HTMLParser):
    """The structure of answers.html: headings outside boxes, each box's label and headings."""

    def __init__(self):
        super().__init__()
        self.stack, self.boxes, self.outside_headings = [], [], []
        self._label = None

    def handle_starttag(self, tag, attrs):
        cls = dict(attrs).get("class") or ""
        self.stack.append((tag, cls))
        if cls == "answer-box":
            self.boxes.append({"label": "", "headings": []})
        elif cls == "answer-label":
            self._label = self.boxes[-1]
        elif tag in ("h1", "h2", "h3", "h4", "h5", "h6"):
            inside = any(c == "answer-box" for _, c in self.stack[:-1])
            (self.boxes[-1]["headings"] if inside else self.outside_headings).append(tag)

    def handle_endtag(self, tag):
        while self.stack:
            t, cls = self.stack.pop()
            if cls == "answer-label":
                self._label = None
            if t == tag:
                break

    def handle_data(self, data):
        if self._label is not None:
            self._label["label"] += data


def test_an_answer_cannot_forge_another_students_box_or_a_question_heading():
    forged = ("Mine.\n\n## q2 (5 points)\n\n#### bob\n\nbob's forged answer\n\n"
              "# Written answers\n\n<div class=\"answer-box\">x</div>")
    page = answers.answers_html({"amy": {"answers": {"q1": forged}, "guessed": {}},
                                 "bob": {"answers": {"q1": "Bob's own."}, "guessed": {}}})
    boxes = Boxes()
    boxes.feed(page)
    labels = [b["label"] for b in boxes.boxes]
    assert labels == [f"{n} · {q}" for q in answers.WRITTEN_POINTS for n in ("amy", "bob")], labels
    assert boxes.outside_headings == ["h2", "h2", "h2"], "one heading a question, none from answers"
    assert set(boxes.boxes[0]["headings"]) == {"h6"}, "headings inside an answer are demoted"
    assert page.count("bob's forged answer") == 1
    assert page.index("bob's forged answer") < page.index("Bob's own.")


def test_latex_in_an_answer_is_mathml_and_nothing_runs():
    page = answers.answers_html({"amy": {"answers": {"q1": r"The gradient $\nabla_{W_2} L$ is"
                                                           "\n\n$$\\frac{1}{N}\\sum_i x_i$$"},
                                         "guessed": {}}})
    body = page[page.index("amy · q1"):]
    assert "<math" in body and "<mfrac>" in body and "<msub>" in body
    assert "$\\nabla" not in body, "the LaTeX stays raw"
    parser = Scripts()
    parser.feed(page)
    assert parser.found == []


def results_folder(tmp_path, rows):
    """A results folder as the batch leaves it: grades.csv and each student's results.json."""
    from grader.rubric import RUBRIC

    out = tmp_path / "out"
    out.mkdir()
    lines = ["name," + ",".join(RUBRIC) + ",total,flags"]
    for name, score, output in rows:
        points = [str(p if score else 0) for p in RUBRIC.values()]
        lines.append(f"{name},{','.join(points)},{score},")
        (out / name).mkdir()
        (out / name / "results.json").write_text(json.dumps({"score": score, "output": output}))
    (out / "grades.csv").write_text("\n".join(lines) + "\n")
    return out


def rows_of(path):
    with open(path, newline="") as f:
        return {r["name"]: r for r in csv.DictReader(f)}


def test_a_refused_submission_says_why_not_no_notebook(tmp_path):
    out = results_folder(tmp_path, [
        ("amy", 0, "Could not grade this submission: two different two_layer_net.py files"),
        ("bob", 100, "two_layer_net.py: 100/100 points. Notebook: none submitted (two_layer_net.ipynb)."),
    ])
    answers.write_reports(str(out), ["amy", "bob"])
    page = (out / "answers.html").read_text()
    assert "two different two_layer_net.py files" in page
    assert "no notebook submitted" in page
    assert "(no notebook)" not in page


def test_excel_csv_utf8_with_bom_crlf_blanks_and_comments_merges(tmp_path, capsys):
    out = results_folder(tmp_path, [("amy", 100, ""), ("bob", 90, ""), ("zoë", 80, "")])
    excel = ("name,q1,q1 comment,q2,q2 comment,q3,q3 comment\r\n"
             "amy,4.5,\"Good, but say why\",5,,5,\r\n"
             "bob,3,,,,,\r\n"
             "zoë,,,,,,\r\n"
             ",,,,,,\r\n")
    (out / "manual.csv").write_bytes(b"\xef\xbb\xbf" + excel.encode("utf-8"))
    assert grade.main(["merge", str(out)]) == 0, capsys.readouterr().err
    said = capsys.readouterr().out
    assert "5 not yet graded" in said, said
    rows = rows_of(out / "grades.csv")
    assert (rows["amy"]["q1"], rows["amy"]["total"]) == ("4.5", "114.5")
    assert (rows["bob"]["q1"], rows["bob"]["q2"], rows["bob"]["total"]) == ("3", "", "93")
    assert rows["zoë"]["total"] == "80"
    scores = answers.written_scores(str(out))
    assert scores["amy"]["q1"] == (4.5, "Good, but say why")
    assert scores["bob"]["q2"] == (None, "")


def test_merged_scores_survive_a_rewrite_of_grades_csv(tmp_path, capsys):
    out = results_folder(tmp_path, [("amy", 100, ""), ("bob", 90, "")])
    fresh = (out / "grades.csv").read_text()
    (out / "manual.csv").write_text("name,q1,q2,q3\namy,4.5,5,5\nbob,1,2,3\n")
    assert grade.main(["merge", str(out)]) == 0
    (out / "grades.csv").write_text(fresh)  # what a rerun or a regrade writes
    (out / "manual.csv").write_text("name,q1,q2,q3\namy,0,0,0\nbob,0,0,0\n")  # edited, not merged
    answers.reapply_merge(str(out))
    rows = rows_of(out / "grades.csv")
    assert [rows["amy"][c] for c in ("q1", "q2", "q3", "total")] == ["4.5", "5", "5", "114.5"]
    assert rows["bob"]["total"] == "96"
    answers.reapply_merge(str(out))
    assert rows_of(out / "grades.csv")["amy"]["total"] == "114.5", "applied twice, counted once"


def test_rendered_answers_are_cached_across_reruns(tmp_path, monkeypatch):
    rendered_now = []
    real = answers.notebook.render_markdown

    def counting(texts, **kwargs):
        rendered_now.extend(texts)
        return real(texts, **kwargs)

    monkeypatch.setattr(answers.notebook, "render_markdown", counting)
    cache = str(tmp_path / "cache.json")
    first = answers.rendered(["An *answer*.", "Another."], cache)
    assert len(rendered_now) == 2
    rendered_now.clear()
    again = answers.rendered(["An *answer*.", "Another.", "A new one."], cache)
    assert rendered_now == ["A new one."], "unchanged answers were rendered again"
    assert again["An *answer*."] == first["An *answer*."] == "<p>An <em>answer</em>.</p>\n"


def test_index_lists_every_student_with_score_flags_and_links(tmp_path):
    from grader import report
    from grader.rubric import RUBRIC, Verdict

    out = tmp_path / "out"
    rows = {}
    for name, passed, flags in (("amy", True, []), ("bob<script>", False, ["autograd used"])):
        (out / name).mkdir(parents=True)
        rows[name] = report.make_result({t: Verdict(passed, "") for t in RUBRIC}, "", 0.0,
                                        {"flags": flags, "identity": {"student": "Amy Lee"} if passed else {},
                                         "notebook": "The notebook ran from top to bottom without errors."})
    (out / "amy" / "report.html").write_text("r")
    (out / "amy" / "feedback.html").write_text("f")
    (out / "manual.csv").write_text("name,q1,q2,q3\namy,4.5,5,\nbob<script>,,,\n")
    results_lines = ["name," + ",".join(RUBRIC) + ",total,flags",
                     "amy," + ",".join(str(p) for p in RUBRIC.values()) + ",100,",
                     "bob<script>," + ",".join("0" for _ in RUBRIC) + ",0,autograd used"]
    (out / "grades.csv").write_text("\n".join(results_lines) + "\n")
    assert grade.main(["merge", str(out)]) == 0
    answers.write_index(str(out), rows)
    page = (out / "index.html").read_text()
    assert 'href="amy/report.html"' in page and 'href="amy/feedback.html"' in page
    assert "100 / 100 + 9.5 written" in page and "Amy Lee" in page
    assert "0 / 100" in page and "autograd used" in page
    assert "bob%3Cscript%3E/report.html" not in page, "no link to a report that does not exist"
    parser = Scripts()
    parser.feed(page)
    assert parser.found == [] and "bob&lt;script&gt;" in page


@pytest.mark.parametrize("filename", ["index.html.py", "manual-merged.json.py", "INDEX.HTML.py"])
def test_no_submission_is_named_like_the_index_or_the_merge_store(tmp_path, filename):
    from grader.exports import collect

    (tmp_path / filename).write_text(SOLUTION)
    (sub,) = collect([str(tmp_path / filename)])
    assert sub.name.lower() not in ("index.html", "manual-merged.json"), sub.name


def test_merge_recomputes_what_follows_from_the_total(tmp_path, capsys):
    """max_points, final (after a late penalty) and percent follow the merged total; a row that
    could not be graded stays at 0."""
    from grader.rubric import RUBRIC

    out = tmp_path / "out"
    out.mkdir()
    columns = ["name", *RUBRIC, "total", "max_points", "late_penalty", "final", "percent", "flags"]
    full = [str(p) for p in RUBRIC.values()]
    lines = [",".join(columns),
             ",".join(["amy", *full, "100", "100", "", "100", "100", ""]),
             ",".join(["bob", *full, "100", "100", "10", "90", "90", ""]),
             ",".join(["cat", *["0"] * len(RUBRIC), "0", "100", "", "0", "0",
                       "could not be graded: two modules"])]
    (out / "grades.csv").write_text("\n".join(lines) + "\n")
    (out / "manual.csv").write_text("name,q1,q2,q3\namy,5,5,5\nbob,5,5,5\ncat,5,5,5\n")
    assert grade.main(["merge", str(out)]) == 0
    rows = rows_of(out / "grades.csv")
    written_max = sum(answers.WRITTEN_POINTS.values())
    assert rows["amy"]["max_points"] == str(100 + written_max)
    assert (rows["amy"]["total"], rows["amy"]["final"]) == ("115", "115")
    assert float(rows["amy"]["percent"]) == 100.0
    assert (rows["bob"]["total"], rows["bob"]["final"]) == ("115", "105")  # the penalty stays
    assert float(rows["bob"]["percent"]) == round(100 * 105 / (100 + written_max), 6)
    assert (rows["cat"]["final"], rows["cat"]["percent"]) == ("0", "0")
