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
    assert list(rows[0]) == ["name", *answers.WRITTEN_POINTS]
    assert all(r[q] == "" for r in rows for q in answers.WRITTEN_POINTS)
    manual.write_text("name,q1,q2,q3\namy,5,4,3\nbob,1,0,0\ncat,0,0,2.5\n")
    assert grade.main([*graded["subs"], "--out", str(graded["out"]), "--execute"]) == 0
    assert manual.read_text() == "name,q1,q2,q3\namy,5,4,3\nbob,1,0,0\ncat,0,0,2.5\n"


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
    ("name,q1,q2,q3\namy,1,1,1\nbob,,1,1\ncat,1,1,1\n", "'bob' has '' for q1"),
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
    assert amy["q1"].startswith("The loss") and amy["q3"] == ""
