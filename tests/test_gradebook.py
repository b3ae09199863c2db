"""grader.gradebook and grader.feedback: rows a gradebook takes as they are, cells safe in a
spreadsheet and a terminal, lateness kept and priced in its own column, feedback per student."""
import csv
import datetime
import io
import json
import os
import re

import pytest

import grade
from conftest import ROOT
from grader import feedback, gradebook, lms, report
from grader.report import SubmissionResult
from grader.rubric import RUBRIC

UTC = datetime.timezone.utc


def result(score_of=None, identity=None, **extra):
    """A SubmissionResult passing every test except those given 0 in score_of."""
    score_of = score_of or {}
    tests = [report.TestResult(name, float(score_of.get(name, points)), float(points),
                        "passed" if score_of.get(name, points) == points else "failed",
                        f"message of {name}") for name, points in RUBRIC.items()]
    return SubmissionResult(score=sum(t.score for t in tests), execution_time=1.0,
                            output="graded", tests=tests,
                            extra_data={"identity": identity or {}, "flags": [], **extra})


def parse(text):
    return list(csv.DictReader(io.StringIO(text)))


def test_a_formula_after_a_bare_carriage_return_never_starts_a_row_or_a_cell():
    hostile = "X\r=cmd|' /C calc'!A0"
    text = report.grades_csv({"x": result(identity={"student": hostile, "sid": "1"}),
                              "y": result(identity={"student": "\n@SUM(A1)\t", "sid": "-2+3"})})
    # A reader that splits on any line break (as some spreadsheet importers do) sees no line
    # that starts with a formula, and the CSV reader sees exactly two rows.
    for line in re.split(r"\r\n|\r|\n", text):
        assert not line.lstrip().startswith(("=", "+", "-", "@")), line
    rows = parse(text)
    assert len(rows) == 2
    for row in rows:
        for cell in row.values():
            assert "\r" not in cell and "\n" not in cell
            assert not cell.lstrip().startswith(("=", "+", "-", "@")), cell
    assert rows[0]["student"] == "X =cmd|' /C calc'!A0"
    assert rows[1]["sid"] == "'-2+3"


def test_terminal_escapes_never_reach_a_cell_or_the_summary():
    name = "ann\x1b]0;pwned\x07\x1b[31mred\x1b[0m\x9b2J"
    text = report.grades_csv({"ann": result(identity={"student": name},
                                            graded=False, flags=[f"could not be graded: {name}"])})
    assert "\x1b" not in text and "\x07" not in text and "\x9b" not in text
    assert parse(text)[0]["student"] == "annred"  # \x9b2J is a one-byte CSI sequence
    summary = report.summary({name: result(graded=False)})
    assert "\x1b" not in summary and "\x9b" not in summary


def test_numbers_stay_numbers():
    row, = parse(report.grades_csv({"amy": result({"forward": 0})}))
    assert (row["forward"], row["total"], row["max_points"], row["percent"]) == ("0", "85", "100", "85")


def gradescope_identity(submitted_at, **more):
    return {"student": "Ann Lee", "email": "ann@school.edu", "sid": "3032001",
            "submitted_at": submitted_at, **more}


def test_late_penalty_is_its_own_column_per_day_started_with_a_cap():
    due = datetime.datetime(2024, 2, 9, 23, 59, tzinfo=UTC)
    results = {  # 8 hours late, 2.5 days late, on time, 30 days late
        "a": result(identity=gradescope_identity("2024-02-10T07:59:00+00:00")),
        "b": result(identity=gradescope_identity("2024-02-12T11:59:00+00:00", sid="2")),
        "c": result(identity=gradescope_identity("2024-02-09T23:00:00+00:00", sid="3")),
        "d": result(identity=gradescope_identity("2024-03-10T23:59:00+00:00", sid="4")),
    }
    policy = gradebook.LatePolicy(due=due, per_day=10, cap=50)
    rows = {r["name"]: r for r in parse(gradebook.plain(results, policy))}
    assert [rows[n]["late"] for n in "abcd"] == ["yes", "yes", "no", "yes"]
    assert [rows[n]["late_penalty"] for n in "abcd"] == ["10", "30", "0", "50"]
    assert [rows[n]["total"] for n in "abcd"] == ["100"] * 4  # never folded into the total
    assert [rows[n]["final"] for n in "abcd"] == ["90", "70", "100", "50"]
    assert rows["b"]["late_days"] == "2.5"
    assert rows["a"]["submitted_at"] == "2024-02-10T07:59:00+00:00"


def test_lateness_is_kept_without_a_policy():
    rows = parse(gradebook.plain({
        "a": result(identity=gradescope_identity("2024-02-10T07:59:00+00:00")),
        "smithjohn": result(identity={"student": "smithjohn", "sid": "1", "canvas_id": "1",
                                      "late": True})}))
    assert rows[0]["submitted_at"] == "2024-02-10T07:59:00+00:00"
    assert rows[1]["late"] == "yes" and rows[1].get("late_penalty", "") == ""


def test_canvas_late_marker_with_a_penalty_is_flagged_not_guessed():
    policy = gradebook.LatePolicy(due=datetime.datetime(2024, 2, 9, tzinfo=UTC), per_day=10)
    row, = parse(gradebook.plain({"jane": result(identity={"student": "doejane", "sid": "7",
                                                           "canvas_id": "7", "late": True})},
                                 policy))
    assert row["percent"] == "100" and "set it by hand" in row["flags"]


def test_extensions_from_a_csv_saved_by_excel(tmp_path):
    path = tmp_path / "extensions.csv"
    # Excel's "CSV UTF-8": a byte-order mark, CRLF line ends.
    path.write_bytes("\ufeffstudent,due,days\r\n3032001,,3\r\nbo@school.edu,2024-02-20T12:00,\r\n"
                     .encode("utf-8"))
    due = datetime.datetime(2024, 2, 9, 23, 59, tzinfo=UTC)
    extensions = gradebook.read_extensions(str(path), due)
    assert extensions == {"3032001": due + datetime.timedelta(days=3),
                          "bo@school.edu": datetime.datetime(2024, 2, 20, 12, tzinfo=UTC)}
    policy = gradebook.LatePolicy(due=due, per_day=10, extensions=extensions)
    rows = parse(gradebook.plain({
        "ann": result(identity=gradescope_identity("2024-02-11T00:00:00+00:00")),
        "bo": result(identity=gradescope_identity("2024-02-11T00:00:00+00:00", sid="9",
                                                  email="bo@school.edu"))}, policy))
    assert [r["late"] for r in rows] == ["no", "no"] and [r["final"] for r in rows] == ["100", "100"]


def test_a_due_time_that_does_not_parse_says_how_to_write_it():
    with pytest.raises(gradebook.PolicyError, match="ISO 8601"):
        gradebook.parse_time("next friday", "--due")


def group_identity():
    members = [{"student": "Bo Chen", "email": "bo@school.edu", "sid": "2"},
               {"student": "Cy Diaz", "email": "cy@school.edu", "sid": "3"}]
    return {"student": "Bo Chen; Cy Diaz", "email": "bo@school.edu; cy@school.edu",
            "sid": "2; 3", "members": members}


def test_each_member_of_a_group_gets_their_own_row_with_the_groups_score():
    rows = parse(gradebook.plain({"2": result({"predict": 0}, identity=group_identity())}))
    assert [(r["student"], r["sid"], r["email"], r["total"]) for r in rows] == [
        ("Bo Chen", "2", "bo@school.edu", "90"), ("Cy Diaz", "3", "cy@school.edu", "90")]
    assert all("group of 2" in r["flags"] for r in rows)


def test_canvas_format_is_canvas_gradebook_import_and_keeps_namesakes_apart():
    results = {"smithjohn": result(identity={"student": "smithjohn", "sid": "123456",
                                             "canvas_id": "123456", "late": False}),
               "smithjohn-2": result({"loss": 0}, identity={"student": "smithjohn",
                                                            "sid": "456789",
                                                            "canvas_id": "456789"})}
    lines = list(csv.reader(io.StringIO(gradebook.canvas(gradebook.plain(results),
                                                         assignment="HW2"))))
    assert lines[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "HW2"]
    assert lines[1] == ["Points Possible", "", "", "", "", "100"]
    assert sorted((row[1], row[5]) for row in lines[2:]) == [("123456", "100"), ("456789", "90")]


def test_gradescope_format_names_gradescopes_columns_and_matches_on_email():
    lines = list(csv.reader(io.StringIO(gradebook.gradescope(gradebook.plain(
        {"2": result(identity=group_identity())})))))
    assert lines[0][:5] == ["Name", "SID", "Email", "Total Score", "Max Points"]
    assert [row[:5] for row in lines[1:]] == [["Bo Chen", "2", "bo@school.edu", "100", "100"],
                                              ["Cy Diaz", "3", "cy@school.edu", "100", "100"]]


def test_notebook_status_and_time_are_columns():
    rows = parse(gradebook.plain({
        "a": result(notebook_status="ran", notebook_seconds=21.5),
        "b": result(notebook_status="timed out", notebook_seconds=120.0),
        "c": result(notebook_status="missing")}))
    assert [(r["notebook"], r["notebook_seconds"]) for r in rows] == [
        ("ran", "21.5"), ("timed out", "120.0"), ("missing", "")]


def test_the_summary_names_what_could_not_be_graded_and_what_timed_out():
    text = report.summary({"amy": result(), "ben": result(graded=False),
                           "cat": result(graded=False), "dan": result(notebook_status="timed out",
                                                                      notebook_seconds=120.0)})
    assert "2 submissions could not be graded (flagged in grades.csv; each results.json says " \
           "why): ben, cat" in text
    assert "1 notebook timed out: dan" in text
    assert "notebooks: 1 executed" in text


def test_feedback_page_is_sanitised_and_holds_tests_written_scores_and_comments():
    res = result({"loss": 0}, identity={"student": "<script>alert(1)</script>"})
    res.tests[1].output = "loss off by 0.5 <img src=x onerror=alert(1)>"
    page = feedback.page("amy", res, {"scores": {"q1": 4.5, "q2": 5}, "max": {"q1": 5, "q2": 5},
                                      "comments": {"q1": "Say why <b>ReLU</b> helps."}})
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    assert "<script" not in page and "onerror" not in page.replace("onerror=alert", "")
    assert "<img" not in page
    for text in ("forward", "15/15", "loss", "0/10", "loss off by 0.5", "q1", "4.5/5",
                 "Say why &lt;b&gt;ReLU&lt;/b&gt; helps.", "90/100"):
        assert text in page, text
    assert "script" not in page.split("<body>")[1].replace("&lt;script&gt;", "")


def test_an_extension_is_one_students_even_in_a_group():
    due = datetime.datetime(2024, 2, 9, 23, 59, tzinfo=UTC)
    identity = {**group_identity(), "submitted_at": "2024-02-11T07:59:00+00:00"}
    policy = gradebook.LatePolicy(due=due, per_day=10,
                                  extensions={"2": due + datetime.timedelta(days=2)})
    rows = parse(gradebook.plain({"2": result(identity=identity)}, policy))
    assert [(r["student"], r["late"], r["late_penalty"], r["final"]) for r in rows] == [
        ("Bo Chen", "no", "0", "100"), ("Cy Diaz", "yes", "20", "80")]


def test_test_messages_lose_terminal_escapes_but_keep_their_lines():
    from grader.rubric import Verdict

    message = "raised ValueError: \x1b]52;c;cGF5bG9hZA==\x07boom\x1b[2J\nsecond line"
    made = report.make_result({name: Verdict(False, message) for name in RUBRIC},
                              "out \x1b[31mred", 0.0)
    assert made.tests[0].output == "raised ValueError: boom\nsecond line"
    assert made.output == "out red"
    table = report.table(made)
    assert "\x1b" not in table and "\x07" not in table and "second line" in table


# --- canvas.csv and gradescope.csv: made from grades.csv as merged, kept in step by every run ---

SOLUTION = open(os.path.join(ROOT, "tests", "submissions", "student_solution.py")).read()
WRITTEN_MAX = 15  # q1-q3, 5 points each (the kit notebook's questions; answers.WRITTEN_POINTS)
CANVAS_HEADER = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]  # Canvas's export
GRADESCOPE_HEADER = ["Name", "SID", "Email", "Total Score", "Max Points", "Submission Time",
                     "Lateness (H:M:S)"]  # Gradescope's assignment grade export names these


def csv_lines(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


def excel_manual(out, rows):
    """DIR/manual.csv as Excel saves "CSV UTF-8": a byte-order mark and CRLF line ends."""
    lines = ["name,q1,q1 comment,q2,q2 comment,q3,q3 comment"]
    lines += [f"{name},{q1},,{q2},,{q3}," for name, q1, q2, q3 in rows]
    (out / "manual.csv").write_bytes(b"\xef\xbb\xbf" + "\r\n".join(lines + [""]).encode())


def canvas_download(folder, files):
    """A Canvas "Download Submissions" folder: `<name>_[LATE_]<user id>_<file id>_<file>`."""
    folder.mkdir()
    for name, data in files.items():
        (folder / name).write_text(data) if isinstance(data, str) else (folder / name).write_bytes(data)
    return folder


@pytest.mark.slow
def test_canvas_csv_holds_the_merged_total_and_a_rerun_keeps_it(tmp_path, capsys):
    folder = canvas_download(tmp_path / "canvas", {
        "smithjohn_123456_7890123_two_layer_net.py": SOLUTION,
        "doejane_LATE_234567_8901234_two_layer_net-1.py": SOLUTION,
        "smithjohn_456789_9123456_two_layer_net.py": SOLUTION})  # another John Smith
    out = tmp_path / "out"
    assert grade.main([str(folder), "--out", str(out), "--format", "gradescope",
                       "--canvas-assignment", "Two-layer net (12345)"]) == 0
    excel_manual(out, [("smithjohn", 4.5, 5, 5), ("doejane", 5, 5, 5), ("smithjohn-2", "", "", "")])
    assert grade.main(["merge", str(out)]) == 0, capsys.readouterr().err
    assert "canvas.csv" in capsys.readouterr().out

    def check(lines):
        assert lines[0] == [*CANVAS_HEADER, "Two-layer net (12345)"]
        assert lines[1] == ["Points Possible", "", "", "", "", str(100 + WRITTEN_MAX)]
        # The code's 100 points (every test passes) plus the written points merged after the batch.
        assert sorted((line[1], line[5]) for line in lines[2:]) == [
            ("123456", "114.5"), ("234567", "115"), ("456789", "100")]

    check(csv_lines(out / "canvas.csv"))
    # A Canvas user id is not a student id: gradescope.csv's SID stays empty.
    assert sorted((r[0], r[1], r[3]) for r in csv_lines(out / "gradescope.csv")[1:]) == [
        ("doejane", "", "115"), ("smithjohn", "", "100"), ("smithjohn", "", "114.5")]
    before = {f: (out / f).read_bytes() for f in ("canvas.csv", "gradescope.csv")}

    assert grade.main([str(folder), "--out", str(out)]) == 0  # a rerun, no options repeated
    check(csv_lines(out / "canvas.csv"))
    assert {f: (out / f).read_bytes() for f in before} == before
    with open(out / "grades.csv") as f:
        assert sorted(r["name"] for r in csv.DictReader(f)) == ["doejane", "smithjohn",
                                                                "smithjohn-2"]


def test_a_merge_rewrites_the_lms_files_with_the_written_scores_and_the_penalty(tmp_path, capsys):
    """A results folder as a Gradescope-export batch with --due and --late-penalty leaves it;
    the merge alone (no batch after it) brings canvas.csv and gradescope.csv up to date."""
    due = datetime.datetime(2024, 2, 9, 23, 59, tzinfo=UTC)
    results = {"ann": result(identity=gradescope_identity("2024-02-10T07:59:00+00:00")),  # 8 h
               "bo": result({"loss": 0}, identity=gradescope_identity(
                   "2024-02-12T11:59:00+00:00", student="Bo Chen", sid="2",  # 2.5 days
                   email="bo@school.edu"))}
    out = tmp_path / "out"
    out.mkdir()
    (out / "grades.csv").write_text(gradebook.plain(results, gradebook.LatePolicy(due=due,
                                                                                 per_day=10)))
    lms.remember(str(out), ["canvas", "gradescope"])
    lms.write(str(out))
    excel_manual(out, [("ann", 5, 5, 5), ("bo", 2, "", 3)])
    assert grade.main(["merge", str(out)]) == 0, capsys.readouterr().err
    # ann: 100 + 15 written - 10 (one day started); bo: 90 + 5 written - 30 (three days started)
    gradescope_lines = csv_lines(out / "gradescope.csv")
    assert gradescope_lines[0] == GRADESCOPE_HEADER
    assert gradescope_lines[1:] == [
        ["Ann Lee", "3032001", "ann@school.edu", "105", "115", "2024-02-10T07:59:00+00:00",
         "08:00:00"],
        ["Bo Chen", "2", "bo@school.edu", "65", "115", "2024-02-12T11:59:00+00:00", "60:00:00"]]
    canvas_lines = csv_lines(out / "canvas.csv")
    assert canvas_lines[0] == [*CANVAS_HEADER, gradebook.DEFAULT_CANVAS_ASSIGNMENT]
    assert canvas_lines[2:] == [["Ann Lee", "", "3032001", "", "", "105"],
                                ["Bo Chen", "", "2", "", "", "65"]]


def test_without_an_assignment_id_the_batch_says_what_canvas_will_do_and_the_id_is_kept(
        tmp_path, capsys):
    """Unreadable zips, as in a real Canvas download: nothing reaches the sandbox."""
    folder = canvas_download(tmp_path / "canvas", {
        "smithjohn_123456_7890123_submission.zip": b"PK\x03\x04 not a zip"})
    out = tmp_path / "out"
    assert grade.main([str(folder), "--out", str(out), "--format", "canvas"]) == 1
    said = capsys.readouterr().out
    assert "without a Canvas assignment id" in said and "creates a new assignment" in said
    assert csv_lines(out / "canvas.csv")[0][5] == gradebook.DEFAULT_CANVAS_ASSIGNMENT

    assert grade.main([str(folder), "--out", str(out), "--canvas-assignment", "HW 2 (777)"]) == 1
    assert "without a Canvas assignment id" not in capsys.readouterr().out
    assert grade.main([str(folder), "--out", str(out)]) == 1
    assert csv_lines(out / "canvas.csv")[0] == [*CANVAS_HEADER, "HW 2 (777)"]
    with open(out / "grades.csv") as f:
        assert [r["name"] for r in csv.DictReader(f)] == ["smithjohn"], "the kept settings are no row"


@pytest.mark.parametrize("given, message", [
    ("Two-layer net(12345)", "write it as 'Two-layer net (12345)'"),
    ("Final Score (12345)", "reads a column named with 'Final Score' as one of its own"),
    ("Section", "reads a column named with 'Section'"),
    ("=HYPERLINK(1) (12345)", "leading = + - @"),
    ("  ", "empty"),
])
def test_a_canvas_column_canvas_would_misread_is_a_usage_error_before_grading(
        tmp_path, capsys, given, message):
    (tmp_path / "amy.py").write_text(SOLUTION)
    out = tmp_path / "out"
    assert grade.main([str(tmp_path / "amy.py"), "--out", str(out),
                       "--canvas-assignment", given]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists(), "something was graded or written before the usage error"


def test_a_canvas_csv_written_before_settings_were_kept_is_refreshed_with_its_own_header(tmp_path):
    """A folder graded by an earlier kit, whose canvas.csv column the instructor renamed."""
    out = tmp_path / "out"
    out.mkdir()
    results = {"smithjohn": result(identity={"student": "smithjohn", "sid": "123456",
                                             "canvas_id": "123456"})}
    (out / "grades.csv").write_text(gradebook.plain(results))
    (out / "canvas.csv").write_text(",".join(CANVAS_HEADER) + ",HW2 (42)\nPoints Possible,,,,,100\n"
                                    "smithjohn,123456,,,,99\n")
    excel_manual(out, [("smithjohn", 1, 1, 1)])
    assert grade.main(["merge", str(out)]) == 0
    assert csv_lines(out / "canvas.csv") == [[*CANVAS_HEADER, "HW2 (42)"],
                                             ["Points Possible", "", "", "", "", "115"],
                                             ["smithjohn", "123456", "", "", "", "103"]]


def test_unreadable_kept_settings_are_said_once_and_the_files_already_there_still_follow(
        tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "grades.csv").write_text(gradebook.plain({"amy": result(identity={"sid": "7"})}))
    lms.remember(str(out), ["gradescope"])
    lms.write(str(out))
    (out / lms.SETTINGS_FILE).write_text('{"formats": ["gradescope"')  # cut short
    excel_manual(out, [("amy", 5, 5, 5)])
    assert grade.main(["merge", str(out)]) == 0
    err = capsys.readouterr().err
    assert err.count("is unreadable") == 1, err
    assert [r[3] for r in csv_lines(out / "gradescope.csv")[1:]] == ["115"]


def test_rows_that_could_not_be_graded_are_left_out_of_the_lms_files_and_a_merge_says_so(
        tmp_path, capsys):
    """A 0 for a submission the grader could not read would replace the grade the student has
    in the LMS; such a row is left out (Canvas's import changes nothing for a student without a
    row), and the merge that rewrites the files names it."""
    results = {"ann": result(identity={"student": "Ann Lee", "sid": "3032001"}),
               "bo": result(identity={"student": "Bo Chen", "sid": "3032002"}, graded=False,
                            flags=["could not be graded: archive 'bo.zip' holds two modules"])}
    results["bo"].score = 0.0
    out = tmp_path / "out"
    out.mkdir()
    (out / "grades.csv").write_text(gradebook.plain(results))
    lms.remember(str(out), ["canvas", "gradescope"])
    excel_manual(out, [("ann", 5, 5, 5), ("bo", "", "", "")])
    assert grade.main(["merge", str(out)]) == 0, capsys.readouterr().err
    assert ("left out of canvas.csv and gradescope.csv: bo (could not be graded: a person must "
            "look)") in capsys.readouterr().out
    assert [line[0] for line in csv_lines(out / "canvas.csv")[1:]] == ["Points Possible",
                                                                        "Ann Lee"]
    assert [line[0] for line in csv_lines(out / "gradescope.csv")[1:]] == ["Ann Lee"]
    assert [r["name"] for r in parse((out / "grades.csv").read_text())] == ["ann", "bo"]


def test_a_canvas_user_id_is_never_a_sid_in_gradescope_csv():
    """Results written before Canvas ids were kept out of `sid` (sid == canvas_id) too."""
    results = {"amy": result(identity={"student": "amy", "canvas_id": "104201"}),
               "old": result(identity={"student": "old", "sid": "104202", "canvas_id": "104202"})}
    text = gradebook.plain(results)
    assert "sid" not in parse(text)[0]
    assert [(r["Name"], r["SID"]) for r in parse(gradebook.gradescope(text))] == [
        ("amy", ""), ("old", "")]
    assert [line[1:3] for line in list(csv.reader(io.StringIO(gradebook.canvas(text))))[2:]] == [
        ["104201", ""], ["104202", ""]]


def test_gradescope_rows_without_sid_or_email_are_named_as_unmatchable(tmp_path, capsys):
    """Gradescope matches a student by SID or email; a Canvas download carries neither, so a
    gradescope.csv written from one would match nobody: the merge says so."""
    results = {"amy": result(identity={"student": "amy", "canvas_id": "104201"}),
               "bo": result(identity={"student": "Bo Chen", "sid": "3032002"})}
    out = tmp_path / "out"
    out.mkdir()
    (out / "grades.csv").write_text(gradebook.plain(results))
    lms.remember(str(out), ["gradescope"])
    excel_manual(out, [("amy", 5, 5, 5), ("bo", 5, 5, 5)])
    assert grade.main(["merge", str(out)]) == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    assert "gradescope.csv: 1 row with neither SID nor email" in printed, printed


def test_needs_a_person_groups_every_flagged_row_by_reason():
    policy = gradebook.LatePolicy(due=datetime.datetime(2024, 2, 9, tzinfo=UTC), per_day=10)
    results = {
        "chenwei-2": result(identity={"student": "chenwei", "canvas_id": "2"},
                            flags=["renamed: row 'chenwei-2' would have been 'chenwei', which is "
                                   "another student's"]),
        "garciamaria": result(identity={"student": "garciamaria", "canvas_id": "3",
                                        "late": True}),
        "2": result(identity=group_identity()),
        "zoe": result(identity={"student": "zoe", "canvas_id": "4"},
                      flags=["possible autograd in backward pass (two_layer_net.py:98 x)",
                             "autograd in backward pass (two_layer_net.py:103 "
                             "torch.autograd.grad)"]),
        "dan": result(identity={"student": "dan"}, graded=False,
                      flags=["could not be graded: nothing to grade"]),
        "amy": result(identity={"student": "amy", "canvas_id": "5"}),
    }
    lines = gradebook.needs_a_person(gradebook.rows(results, policy))
    assert lines[0] == "4 rows need a person (grades.csv's flags say why):"
    assert lines[1:] == [
        "  renamed (another row would have had the same name: check who it is before you "
        "upload): chenwei-2",
        "  late by Canvas's marker, by how much is unknown (no penalty applied: set it by hand "
        "in your gradebook): garciamaria",
        "  group members (one submission, each member given the group's score): 2",
        "  flagged by the code audit or the export (read the row's flags): zoe (autograd in "
        "backward pass (two_layer_net.py:103 torch.autograd.grad); 1 more)"]


def test_a_kept_late_policy_reads_back_the_same_and_says_what_changed(tmp_path):
    path = tmp_path / "extensions.csv"
    path.write_text("student,days\nann@school.edu,2\n")
    due = datetime.datetime(2024, 2, 9, 23, 59, tzinfo=UTC)
    lines = {}
    extensions = gradebook.read_extensions(str(path), due, lines)
    assert lines == {"ann@school.edu": (2, "ann@school.edu")}
    policy = gradebook.LatePolicy(due=due, per_day=10, cap=50, extensions=extensions,
                                  extensions_file=str(path), extension_lines=lines)
    back = gradebook.LatePolicy.from_kept(json.loads(json.dumps(policy.kept())))
    assert back == policy
    assert gradebook.LatePolicy(due=due, per_day=5, cap=50).changes(policy) == (
        "--late-penalty: 10 -> 5; --extensions: 1 student -> 0 students")
