"""What students and TAs read back: feedback.html, index.html, results.json, manual.csv.

On folders laid out as the real downloads are (Gradescope's export, a folder per student, one
student's upload) and a manual.csv saved as Excel saves it ("CSV UTF-8": a byte-order mark and
CRLF line ends).
"""
import csv
import json
import os
import re

import pytest

import grade
from conftest import ROOT
from grader import answers, report
from grader.rubric import RUBRIC, Verdict

SOLUTION = open(os.path.join(ROOT, "tests", "submissions", "student_solution.py")).read()
EXCEL_BOM = b"\xef\xbb\xbf"
METADATA = """submission_100001:
  :submitters:
  - :name: Yuki Tanaka
    :sid: '9100313'
    :email: yuki.tanaka@uni.edu
  :created_at: 2026-11-20 21:14:03.412345000 -08:00
  :score:
  :status: processed
  :history: []
submission_100002:
  :submitters:
  - :name: Lea Dubois
    :sid: '9100314'
    :email: lea.dubois@uni.edu
  :created_at: 2026-11-20 21:14:03.412345000 -08:00
  :score:
  :status: processed
  :history: []
"""


def _two_modules(folder):
    """A student's folder holding two_layer_net.py in two subfolders: not one submission."""
    for version, text in (("v1", "# first try\n"), ("v2", "# second try\n")):
        (folder / version).mkdir(parents=True)
        (folder / version / "two_layer_net.py").write_text(text)


def _written_files(out):
    for root, _, names in os.walk(out):
        for name in names:
            yield os.path.join(root, name)


def test_no_path_of_the_instructors_machine_reaches_any_file_written(tmp_path, capsys):
    """Gradescope's export, a folder per student and --single, each holding submissions that
    cannot be graded (two modules, a link): their messages name the submission's folder and
    the file inside it, never where the instructor keeps the download."""
    downloads = tmp_path / "instructor-downloads"
    export = downloads / "assignment_4242001_export"
    export.mkdir(parents=True)
    (export / "submission_metadata.yml").write_text(METADATA)
    _two_modules(export / "submission_100001")
    (export / "submission_100002").mkdir()
    (downloads / "elsewhere.py").write_text(SOLUTION)
    os.symlink(downloads / "elsewhere.py", export / "submission_100002" / "two_layer_net.py")
    per_student = downloads / "class"
    for student in ("amy", "bob"):
        _two_modules(per_student / student)
    upload = downloads / "upload"
    _two_modules(upload)

    runs = [([str(downloads / "assignment_4242001_export")], "gs"),
            ([str(per_student)], "folders"), ([str(upload), "--single"], "single")]
    for args, label in runs:
        out = tmp_path / f"out-{label}"
        assert grade.main([*args, "--out", str(out)]) == 1, capsys.readouterr().err
        seen = [path for path in _written_files(out)
                if str(downloads) in open(path, encoding="utf-8", errors="replace").read()]
        assert seen == [], f"{label}: the instructor's path is in {seen}"
    capsys.readouterr()
    results = json.load(open(tmp_path / "out-gs" / "9100313" / "results.json"))
    assert "folder 'submission_100001' holds two_layer_net.py in several folders (v1, v2)" \
        in results["output"]
    linked = json.load(open(tmp_path / "out-gs" / "9100314" / "results.json"))
    assert "'submission_100002/two_layer_net.py' is a link" in linked["output"]
    single = json.load(open(tmp_path / "out-single" / "upload" / "results.json"))
    assert "folder 'upload' holds" in single["output"]


def test_a_rerun_keeps_excels_byte_order_mark_and_crlf_in_manual_csv(tmp_path):
    """A rerun adds new students to manual.csv; what Excel saved (BOM, CRLF, non-ASCII
    comments) comes back byte for byte, so Excel reads "Très bien —" as it was typed."""
    manual = tmp_path / "manual.csv"
    excel = ("name,q1,q1 comment,q2,q2 comment,q3,q3 comment\r\n"
             "amy,4.5,Très bien — say why,5,,,\r\n")
    manual.write_bytes(EXCEL_BOM + excel.encode("utf-8"))
    answers.update_manual_csv(str(manual), ["amy", "zoë"])
    data = manual.read_bytes()
    assert data.startswith(EXCEL_BOM) and data.count(EXCEL_BOM) == 1
    assert data == EXCEL_BOM + (excel + "zoë,,,,,,\r\n").encode("utf-8")
    plain = tmp_path / "plain.csv"  # written by the kit or a text editor: stays as it was
    plain.write_bytes(excel.replace("\r\n", "\n").encode("utf-8"))
    answers.update_manual_csv(str(plain), ["amy"])
    assert plain.read_bytes() == excel.replace("\r\n", "\n").encode("utf-8")


EXPORT_ENTRY = """submission_{id}:
  :submitters:
{people}  :created_at: {when}
  :score:
  :status: processed
  :history: []
"""
PERSON = "  - :name: {name}\n    :sid: '{sid}'\n    :email: {email}\n"
DUE = "2026-11-20T23:59-08:00"


def _export(folder, entries):
    """A Gradescope export: submission_metadata.yml (as Ruby writes it) and one folder an entry,
    each holding the solution. `entries`: [(id, [(name, sid)], created_at)]."""
    folder.mkdir(parents=True)
    text = ""
    for number, people, when in entries:
        text += EXPORT_ENTRY.format(id=number, when=when, people="".join(
            PERSON.format(name=n, sid=s, email=f"{s}@uni.edu") for n, s in people))
        (folder / f"submission_{number}").mkdir()
        (folder / f"submission_{number}" / "two_layer_net.py").write_text(SOLUTION)
    (folder / "submission_metadata.yml").write_text(text)
    return folder


def _csv(path):
    with open(path, newline="", encoding="utf-8-sig") as f:
        return {r["name"]: r for r in csv.DictReader(f)}


def _text_of(html_page):
    """The page's text, tags dropped and whitespace squeezed, for phrases across cells."""
    return " ".join(re.sub(r"<[^>]+>", " ", html_page).replace("&#x27;", "'").split())


@pytest.mark.slow
def test_late_penalty_written_scores_and_flags_reach_feedback_and_index(tmp_path, capsys):
    """A Gradescope export with a late student and a group, graded with a late policy, then
    the TA's manual.csv merged twice as Excel saves it: each student's feedback and the index
    show the code, written, penalty and final of grades.csv, every flag of grades.csv, blank
    questions as not yet graded, and the second merge says what it changed."""
    export = _export(tmp_path / "assignment_4242001_export", [
        (100001, [("Yuki Tanaka", "9100313")], "2026-11-20 21:14:03.412345000 -08:00"),
        (100002, [("Lea Dubois", "9100314")], "2026-11-21 10:15:44.000000000 -08:00"),
        (100003, [("Bo Chen", "9100320"), ("Cy Diaz", "9100321")],
         "2026-11-20 20:00:00.000000000 -08:00")])
    out = tmp_path / "out"
    assert grade.main([str(export), "--out", str(out), "--due", DUE, "--late-penalty", "10"]) \
        == 0, capsys.readouterr().err
    capsys.readouterr()
    grades = _csv(out / "grades.csv")
    late = grades["9100314"]
    assert (late["total"], late["late_penalty"], late["final"]) == ("100", "10", "90")
    feedback = _text_of((out / "9100314" / "feedback.html").read_text())
    for said in ("code (the tests) 100/100", "late penalty -10", "final 90/100"):
        assert said in feedback, said
    assert "late penalty" not in _text_of((out / "9100313" / "feedback.html").read_text())
    index = _text_of((out / "index.html").read_text())
    assert "late penalty -10, final 90" in index
    group_flag = next(f for f in grades["9100320"]["flags"].split("; ") if f.startswith("group"))
    assert group_flag in index, "the group flag of grades.csv is on the index"

    excel = ("name,q1,q1 comment,q2,q2 comment,q3,q3 comment\r\n"
             "9100313,0,Très bien — but no,0,,0,\r\n"
             "9100314,4.5,,,,5,\r\n"
             "9100320,,,,,,\r\n")
    (out / "manual.csv").write_bytes(EXCEL_BOM + excel.encode("utf-8"))
    assert grade.main(["merge", str(out)]) == 0, capsys.readouterr().err
    first = capsys.readouterr().out
    assert "changed since the last merge" not in first, "a first merge has nothing to compare"
    grades = _csv(out / "grades.csv")
    assert (grades["9100314"]["total"], grades["9100314"]["final"]) == ("109.5", "99.5")
    feedback = _text_of((out / "9100314" / "feedback.html").read_text())
    for said in ("written answers 9.5/15 so far (q2 not graded yet)", "total 109.5/115",
                 "late penalty -10", "final 99.5/115", "q1 4.5/5", "q2 not graded yet (out of 5)", "q3 5/5",
                 "total 9.5/15 so far (q2 not graded yet)"):
        assert said in feedback, said
    assert "Très bien — but no" in (out / "9100313" / "feedback.html").read_text()
    index = _text_of((out / "index.html").read_text())
    assert "100 / 100 + 0 written" in index, "a real 0"
    assert "100 / 100 + written not yet graded" in index, "nothing graded is not a 0"
    assert "9.5 written (1 question not yet graded); late penalty -10, final 99.5" in index

    (out / "manual.csv").write_bytes(EXCEL_BOM + excel.replace("9100314,4.5,,,,5,",
                                                               "9100314,4,,,,,").encode("utf-8"))
    assert grade.main(["merge", str(out)]) == 0
    said = capsys.readouterr().out
    assert said.index("merged the written scores") < said.index("changed since the last merge: "
                                                                "1 student"), said
    assert "9100314: q1 4.5 -> 4; q3 5 removed (blank now: not yet graded) (total 109.5 -> " \
           "104)" in said, said



def test_canvas_late_marker_flag_is_on_the_index(tmp_path, capsys):
    """Canvas's LATE marker with a penalty asked for: grades.csv flags "set it by hand"; the
    index shows that flag too (unreadable uploads, so no sandbox is needed)."""
    folder = tmp_path / "canvas"
    folder.mkdir()
    (folder / "garciamaria_LATE_104203_5550028_submission.zip").write_bytes(b"PK\x03\x04 broken")
    (folder / "chenwei_104201_5550014_submission.zip").write_bytes(b"PK\x03\x04 broken")
    out = tmp_path / "out"
    assert grade.main([str(folder), "--out", str(out), "--due", DUE, "--late-penalty", "10"]) == 1
    capsys.readouterr()
    flags = _csv(out / "grades.csv")["garciamaria"]["flags"]
    assert "set it by hand" in flags
    index = (out / "index.html").read_text()
    assert "set it by hand" in index and "could not be graded" in index


def _check_cell(lines):
    return {"cell_type": "code", "metadata": {"tags": ["check"]}, "source": "print(check(...))",
            "outputs": [{"output_type": "stream", "name": "stdout", "text": lines}]}


def test_a_notebook_whose_check_cells_printed_fail_is_not_called_clean():
    """The kit's check cells print helpers_lib.notebook.CheckResult lines; a notebook that ran
    without an error but whose checks printed FAIL says how many, and which cells."""
    from grader import notebook
    from helpers_lib.notebook import CheckResult

    passing = str(CheckResult("Loss difference", 1e-9, 1e-6, "<"))
    failing = str(CheckResult("Loss difference", 0.3, 1e-6, "<"))
    broken = str(CheckResult("Gradient difference", None, 1e-6, "<", error="NotImplementedError"))
    nb = {"cells": [{"cell_type": "markdown", "metadata": {}, "source": "x: FAIL"},
                    _check_cell(passing + "\n"), _check_cell(failing + "\n"),
                    {"cell_type": "code", "metadata": {}, "source": "print('a: FAIL')",
                     "outputs": [{"output_type": "stream", "name": "stdout",
                                  "text": "a: FAIL\n"}]},
                    _check_cell(["first: 1 (should be < 2): PASS\n", broken + "\n"])]}
    assert notebook.failing_checks(nb) == [2, 4]
    said = notebook.summarise({"failed_cells": []}, None, notebook.failing_checks(nb))
    assert "without errors" not in said
    assert said.split(". ")[0].rstrip(".") == ("The notebook ran to the end without an error, but 2 check "
                                   "cells printed FAIL (cells 2, 4): see those cells in the "
                                   "report"), said
    assert notebook.summarise({"failed_cells": []}, None, []) == \
        "The notebook ran from top to bottom without errors."
    unloaded = notebook.summarise({"failed_cells": []}, "SyntaxError: '(' was never closed", [2])
    assert "1 check cell printed FAIL (cell 2)" in unloaded and "did not load" in unloaded


def test_the_summary_says_how_many_notebooks_ran_now_and_how_many_were_reused():
    from grader import batch

    def result(seconds):
        return report.make_result({t: Verdict(True, "") for t in RUBRIC}, "", 0.0,
                                  {"notebook_status": "ran", "notebook_seconds": seconds})

    rows = {"amy": result(20.0), "bob": result(30.0)}
    rerun = "\n".join(report.attention(batch.Gradebook(rows, 2, graded_now=())))
    assert "notebooks: 0 executed now, 2 reused from an earlier run" in rerun, rerun
    part = "\n".join(report.attention(batch.Gradebook(rows, 2, graded_now={"bob"})))
    assert "notebooks: 1 executed now, 1 reused from an earlier run" in part, part
    fresh = "\n".join(report.attention(batch.Gradebook(rows, 2, graded_now={"amy", "bob"})))
    assert "notebooks: 2 executed, 25 s median, 30 s longest, 50 s in all" in fresh, fresh


def test_a_folder_holding_one_student_folder_is_one_submission_and_says_so(tmp_path, capsys):
    """CONTRACT §3: a folder's name says whose it is; only a folder of two or more student
    folders is read as many. A class folder holding one student's folder is therefore one
    submission named after the folder given, and the grader says so (terminal and flag)."""
    from grader.exports import collect

    (tmp_path / "ff" / "tanaka_yuki").mkdir(parents=True)
    (tmp_path / "ff" / "tanaka_yuki" / "two_layer_net.py").write_text(SOLUTION)
    (sub,) = collect([str(tmp_path / "ff")])
    assert sub.name == "ff" and sub.error is None
    said = capsys.readouterr().err
    assert "graded as one submission named 'ff'" in said
    assert "grade 'ff/tanaka_yuki' instead" in said
    assert any("subfolder 'tanaka_yuki'" in note for note in sub.notes)
    (single,) = collect([str(tmp_path / "ff" / "tanaka_yuki")])
    assert single.name == "tanaka_yuki" and single.notes == []
    assert capsys.readouterr().err == ""


def test_feedback_of_rows_from_an_earlier_run_follows_the_new_grades_csv(tmp_path, capsys):
    """A second batch with --add and a late policy changes an earlier row's penalty in
    grades.csv; that row's feedback says so too (submissions that cannot be graded: fast)."""
    export = tmp_path / "assignment_4242001_export"
    export.mkdir()
    (export / "submission_metadata.yml").write_text(METADATA)
    _two_modules(export / "submission_100001")
    _two_modules(export / "submission_100002")
    out = tmp_path / "out"
    assert grade.main([str(export), "--out", str(out)]) == 1
    assert "late penalty" not in _text_of((out / "9100313" / "feedback.html").read_text())
    (tmp_path / "late.zip").write_bytes(b"PK\x03\x04 broken")
    assert grade.main([str(tmp_path / "late.zip"), "--out", str(out), "--add", "--due",
                       "2026-11-19T23:59-08:00", "--late-penalty", "10"]) == 1
    capsys.readouterr()
    assert _csv(out / "grades.csv")["9100313"]["late_penalty"] == "10"
    assert "late penalty -10" in _text_of((out / "9100313" / "feedback.html").read_text())
