"""What students and TAs read back: feedback.html, index.html, results.json, manual.csv.

On folders laid out as the real downloads are (Gradescope's export, a folder per student, one
student's upload) and a manual.csv saved as Excel saves it ("CSV UTF-8": a byte-order mark and
CRLF line ends).
"""
import csv
import json
import os
import re

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
