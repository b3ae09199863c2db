"""A batch as an instructor runs it: usage errors, one grader per folder, Ctrl-C, concurrency."""
import csv
import glob
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

import pytest

import grade
import grading_corpus
from conftest import ROOT

SOLUTION = open(os.path.join(ROOT, "tests", "submissions", "student_solution.py")).read()
LOOPING = grading_corpus.in_predict("while True:\n    pass")
# Ctrl-C must end a batch this fast, whatever its children are doing.
STOP_WITHIN_S = 2.0


def write_subs(folder, sources):
    """{name: source} as folder/<name>.py; returns the paths."""
    folder.mkdir(exist_ok=True)
    for name, source in sources.items():
        (folder / f"{name}.py").write_text(source)
    return [str(folder / f"{name}.py") for name in sources]


def rows_of(out):
    with open(out / "grades.csv") as f:
        return {r["name"]: r for r in csv.DictReader(f)}


def test_a_sub_that_does_not_exist_is_a_usage_error_before_any_grading(tmp_path, capsys):
    good = write_subs(tmp_path / "subs", {"amy": SOLUTION})
    out = tmp_path / "out"
    assert grade.main([*good, str(tmp_path / "nope.py"), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "nope.py" in err and "does not exist" in err
    assert not out.exists(), "something was graded or written before the usage error"


@pytest.mark.parametrize("layout", ["file", "under_a_file"])
def test_an_out_that_is_a_file_is_a_usage_error(tmp_path, capsys, layout):
    subs = write_subs(tmp_path / "subs", {"amy": SOLUTION})
    (tmp_path / "taken").write_text("not a folder")
    out = tmp_path / "taken" if layout == "file" else tmp_path / "taken" / "results"
    assert grade.main([*subs, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "is a file" in err and "Traceback" not in err
    assert (tmp_path / "taken").read_text() == "not a folder"


@pytest.mark.slow
def test_results_never_collide_with_the_batchs_own_files(tmp_path):
    subs = write_subs(tmp_path / "subs", {"grades.csv": SOLUTION, "scores.png": SOLUTION,
                                          "GRADES.CSV": SOLUTION})
    out = tmp_path / "out"
    assert grade.main([*subs, "--out", str(out)]) == 0
    assert (out / "grades.csv").is_file() and (out / "scores.png").is_file()
    rows = rows_of(out)
    assert len(rows) == 3 and all(r["total"] == "100" for r in rows.values())


@pytest.mark.slow
def test_one_folder_per_student_names_the_rows(tmp_path, capsys):
    for student in ("bob", "carol"):
        (tmp_path / student).mkdir()
        (tmp_path / student / "two_layer_net.py").write_text(SOLUTION)
    for folder, name in (("a", "alice"), ("b", "alice"), ("c", "alice-2")):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / f"{name}.py").write_text(SOLUTION)
    subs = [str(tmp_path / "bob" / "two_layer_net.py"), str(tmp_path / "carol" / "two_layer_net.py"),
            str(tmp_path / "a" / "alice.py"), str(tmp_path / "b" / "alice.py"),
            str(tmp_path / "c" / "alice-2.py")]
    out = tmp_path / "out"
    assert grade.main([*subs, "--out", str(out)]) == 0
    rows = rows_of(out)
    assert len(rows) == 5 and {"bob", "carol", "alice", "alice-2"} <= set(rows)
    assert "5 submissions in, 5 rows out" in capsys.readouterr().out


@pytest.mark.slow
def test_a_second_grader_on_the_same_folder_is_refused_and_told_who_holds_it(tmp_path):
    subs = write_subs(tmp_path / "subs", {"slow": LOOPING})
    out = tmp_path / "out"
    first = subprocess.Popen([sys.executable, "grade.py", *subs, "--out", str(out),
                              "--timeout", "20"], cwd=ROOT, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(200):
            if (out / ".grade.lock.owner").exists():
                break
            time.sleep(0.05)
        second = subprocess.run([sys.executable, "grade.py", *subs, "--out", str(out)], cwd=ROOT,
                                capture_output=True, text=True, timeout=120)
    finally:
        first.send_signal(signal.SIGINT)
        first.communicate(timeout=30)
    assert second.returncode == 2, second.stderr
    assert "is busy" in second.stderr and f"process {first.pid}" in second.stderr


@pytest.mark.slow
def test_ctrl_c_stops_fast_keeps_what_finished_and_the_rerun_resumes(tmp_path):
    subs = write_subs(tmp_path / "subs", {"amy": SOLUTION, "bob": SOLUTION, **{
        f"loops{i}": LOOPING for i in range(6)}})
    out = tmp_path / "out"
    temp_before = set(glob.glob(os.path.join(tempfile.gettempdir(), "two-layer-net-grade-*")))
    grader = subprocess.Popen([sys.executable, "grade.py", *subs, "--out", str(out), "--jobs", "2",
                               "--timeout", "30"], cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    for _ in range(600):  # until amy and bob are done and the looping ones are running
        if len(glob.glob(str(out / "*" / ".grade-meta.json"))) >= 2:
            break
        time.sleep(0.05)
    time.sleep(0.5)
    sent = time.monotonic()
    grader.send_signal(signal.SIGINT)
    _, err = grader.communicate(timeout=30)
    took = time.monotonic() - sent
    assert grader.returncode == 130, err
    assert took <= STOP_WITHIN_S, f"Ctrl-C took {took:.1f} s"
    assert "Traceback" not in err and err.strip().count("\n") == 0, err
    assert "interrupted" in err
    finished = {p.split(os.sep)[-2] for p in glob.glob(str(out / "*" / ".grade-meta.json"))}
    assert {"amy", "bob"} <= finished
    assert set(rows_of(out)) == finished, "grades.csv must hold exactly the finished results"
    after = set(glob.glob(os.path.join(tempfile.gettempdir(), "two-layer-net-grade-*")))
    assert after <= temp_before, "the run folder was left in the temp directory"
    stamp = (out / "amy" / "results.json").stat().st_mtime_ns
    fixed = write_subs(tmp_path / "subs", {f"loops{i}": SOLUTION for i in range(6)})
    assert grade.main([*subs, "--out", str(out), "--timeout", "30"]) == 0
    assert (out / "amy" / "results.json").stat().st_mtime_ns == stamp, "amy was graded again"
    assert len(fixed) == 6 and all(r["total"] == "100" for r in rows_of(out).values())


@pytest.mark.slow
@pytest.mark.skipif(os.cpu_count() < 2, reason="needs two cores to overlap the graders")
def test_graders_at_once_on_the_hostile_corpus_make_no_internal_error(tmp_path):
    """Three graders at the same time on the corpus's hostile entries, each into its own
    folder (a scratch-folder race once showed up only under such load)."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    entries = [e for e in grading_corpus.entries([], str(tmp_path / "none")) if e.name in {
        "infinite_loop", "lingering_process", "fork_bomb", "kills_the_grader", "forged_result_pipe",
        "sysv_shm_left_behind", "deep_fork_chain", "memory_hog_python", "os_exit", "correct"}]
    paths = [grading_corpus.write(e, str(corpus)) for e in entries]
    graders = [subprocess.Popen([sys.executable, "grade.py", *paths, "--out", str(tmp_path / f"out{i}"),
                                 "--timeout", "3", "--memory", "400", "--jobs", "2"], cwd=ROOT,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
               for i in range(3)]
    errors = [g.communicate(timeout=600)[1] for g in graders]
    assert [g.returncode for g in graders] == [0, 0, 0], errors
    for i, err in enumerate(errors):
        assert "internal error" not in err, err
        for entry in entries:
            with open(tmp_path / f"out{i}" / entry.name / "results.json") as f:
                text = json.dumps(json.load(f))
            assert "regrade it" not in text and "fault of the grader" not in text, (entry.name, text)


def ungradable(folder):
    """Two submissions that cannot be graded: an archive format the grader does not read and a
    zip holding two different two_layer_net.py; no sandbox is needed to find that out."""
    import io
    import zipfile

    folder.mkdir(exist_ok=True)
    (folder / "dan.rar").write_bytes(b"Rar!\x1a\x07\x00")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("a/two_layer_net.py", "x = 1\n")
        archive.writestr("b/two_layer_net.py", "x = 2\n")
    (folder / "eve.zip").write_bytes(buffer.getvalue())
    return [str(folder / "dan.rar"), str(folder / "eve.zip")]


def test_submissions_that_could_not_be_graded_are_flagged_listed_and_exit_1(tmp_path, capsys):
    out = tmp_path / "out"
    assert grade.main([*ungradable(tmp_path / "subs"), "--out", str(out)]) == 1
    printed = capsys.readouterr().out
    assert "2 submissions could not be graded" in printed and ": dan.rar, eve" in printed
    rows = rows_of(out)
    assert rows["dan.rar"]["flags"].startswith("could not be graded: submission 'dan.rar' is not")
    assert rows["eve"]["flags"].startswith("could not be graded: archive 'eve.zip' holds")
    assert (out / "eve" / "feedback.html").is_file()
    assert "several folders" in (out / "eve" / "feedback.html").read_text()


def test_a_second_batch_of_other_subs_into_the_same_out_is_refused_unless_add(tmp_path, capsys):
    first, second = ungradable(tmp_path / "subs")
    out = tmp_path / "out"
    assert grade.main([first, "--out", str(out)]) == 1
    assert grade.main([first, "--out", str(out)]) == 1, "the same SUB again is a rerun"
    capsys.readouterr()
    assert grade.main([second, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "already holds 1 rows graded from other submissions (dan.rar)" in err and "--add" in err
    assert set(rows_of(out)) == {"dan.rar"}, "the refused batch wrote nothing"
    assert grade.main([second, "--out", str(out), "--add"]) == 1
    assert set(rows_of(out)) == {"dan.rar", "eve"}


@pytest.mark.slow
def test_sigterm_stops_like_ctrl_c_and_removes_the_run_folder(tmp_path):
    subs = write_subs(tmp_path / "subs", {"amy": SOLUTION, "loops": LOOPING})
    out = tmp_path / "out"
    temp_before = set(glob.glob(os.path.join(tempfile.gettempdir(), "two-layer-net-grade-*")))
    grader = subprocess.Popen([sys.executable, "grade.py", *subs, "--out", str(out), "--jobs", "1",
                               "--timeout", "30"], cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    for _ in range(600):  # until amy is done and the looping one runs
        if glob.glob(str(out / "amy" / ".grade-meta.json")):
            break
        time.sleep(0.05)
    time.sleep(0.5)
    grader.send_signal(signal.SIGTERM)
    _, err = grader.communicate(timeout=30)
    assert grader.returncode == 143, err
    assert "Traceback" not in err and "terminated (SIGTERM)" in err, err
    after = set(glob.glob(os.path.join(tempfile.gettempdir(), "two-layer-net-grade-*")))
    assert after <= temp_before, "SIGTERM left the run folder in the temp directory"
    assert set(rows_of(out)) == {"amy"}


@pytest.mark.slow
@pytest.mark.notebook
def test_notebook_status_and_time_reach_grades_csv_and_the_summary(tmp_path, capsys):
    import nbformat

    from grader import cells as cell_facts

    check = nbformat.v4.new_code_cell("print('loss: 0.5 (should be < 1e-06): FAIL')")
    check.metadata["tags"] = [cell_facts.CHECK_TAG]
    for name, cells in (("runs", ["x = 1"]), ("hangs", ["while True:\n    pass"]),
                        ("fails", [check])):
        (tmp_path / name).mkdir()
        (tmp_path / name / "two_layer_net.py").write_text(SOLUTION)
        (tmp_path / name / "two_layer_net.ipynb").write_text(nbformat.writes(nbformat.v4.new_notebook(
            cells=[c if isinstance(c, dict) else nbformat.v4.new_code_cell(c) for c in cells])))
    (tmp_path / "none").mkdir()
    (tmp_path / "none" / "two_layer_net.py").write_text(SOLUTION)
    out = tmp_path / "out"
    subs = [str(tmp_path / n) for n in ("runs", "hangs", "fails", "none")]
    assert grade.main([*subs, "--out", str(out), "--execute", "--notebook-timeout", "8"]) == 0
    rows = rows_of(out)
    assert {n: rows[n]["notebook"] for n in rows} == {
        "runs": "ran", "hangs": "timed out", "fails": "ran, 1 check printed FAIL", "none": "missing"}
    assert 8 <= float(rows["hangs"]["notebook_seconds"]) < 60
    printed = capsys.readouterr().out
    assert "1 notebook timed out: hangs" in printed and "notebooks: 3 executed" in printed


def test_a_canvas_download_gives_canvas_import_rows_that_keep_namesakes_and_lateness(tmp_path,
                                                                                     capsys):
    """Two students named John Smith, one late, as Canvas's bulk download names their files
    (unreadable zips, so no sandbox is needed): Canvas's own ids keep them apart, in canvas_id
    (a Canvas user id is not a student id: sid stays empty), and neither ungradable row reaches
    canvas.csv, whose 0 would replace the grade the student has in Canvas."""
    folder = tmp_path / "canvas"
    folder.mkdir()
    (folder / "smithjohn_123456_7890123_submission.zip").write_bytes(b"PK\x03\x04 not a zip")
    (folder / "smithjohn_LATE_456789_9123456_submission.zip").write_bytes(b"PK\x03\x04 broken")
    out = tmp_path / "out"
    assert grade.main([str(folder), "--out", str(out), "--format", "canvas",
                       "--format", "gradescope"]) == 1
    rows = rows_of(out)
    assert {n: (r["canvas_id"], r.get("sid"), r["late"]) for n, r in rows.items()} == {
        "smithjohn": ("123456", None, "no"), "smithjohn-2": ("456789", None, "yes")}
    with open(out / "canvas.csv") as f:
        lines = list(csv.reader(f))
    assert lines[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "Two-layer net"]
    assert lines[1][0] == "Points Possible" and lines[1][5] == "100"
    assert lines[2:] == []  # left out: an absent row changes nothing in Canvas's import
    with open(out / "gradescope.csv") as f:
        assert len(list(csv.reader(f))) == 1
    printed = capsys.readouterr().out
    assert ("left out of canvas.csv and gradescope.csv: smithjohn, smithjohn-2 (could not be "
            "graded: a person must look)") in printed


def unreadable_canvas_download(folder, names):
    """A Canvas "Download Submissions" folder (`<name>_[LATE_]<user id>_<file id>_<file>`) of
    zips that are not zips: every row is flagged could-not-be-graded without a sandbox, while
    the download's identity (Canvas id, LATE marker, namesakes) is read as from real files."""
    folder.mkdir()
    for name in names:
        (folder / name).write_bytes(b"PK\x03\x04 not a zip")
    return folder


def test_the_summary_names_every_row_that_needs_a_person_by_reason(tmp_path, capsys):
    """Two namesakes (one renamed) and a Canvas LATE marker under a penalty: the summary names
    the renamed row and the late row whose penalty must be set by hand, not only the rows that
    could not be graded; one download on the command line gives no 'SUB' line."""
    folder = unreadable_canvas_download(tmp_path / "canvas", [
        "smithjohn_123456_7890123_submission.zip",
        "smithjohn_LATE_456789_9123456_submission.zip"])
    out = tmp_path / "out"
    assert grade.main([str(folder), "--out", str(out), "--due", "2024-02-09T23:59-08:00",
                       "--late-penalty", "10"]) == 1
    printed = capsys.readouterr().out
    assert "1 row needs a person (grades.csv's flags say why):" in printed
    assert "\n  renamed (another row would have had the same name" in printed
    assert "before you upload): smithjohn-2\n" in printed
    assert ("\n  late by Canvas's marker, by how much is unknown (no penalty applied: set it by "
            "hand in your gradebook): smithjohn-2\n") in printed
    assert "on the command line" not in printed  # 1 SUB, 2 rows: nothing to explain


def test_an_extensions_row_that_matches_nobody_is_a_warning_naming_file_line_and_value(
        tmp_path, capsys):
    folder = unreadable_canvas_download(tmp_path / "canvas", [
        "smithjohn_123456_7890123_submission.zip", "doejane_234567_8901234_submission.zip"])
    extensions = tmp_path / "extensions.csv"
    # Excel's "CSV UTF-8"; a Canvas id, a typo of the other one, and a name that matches
    extensions.write_bytes(b"\xef\xbb\xbfstudent,days\r\n123456,2\r\n23456,1\r\ndoejane,1\r\n")
    out = tmp_path / "out"
    assert grade.main([str(folder), "--out", str(out), "--due", "2024-02-09T23:59-08:00",
                       "--extensions", str(extensions)]) == 1, "a warning, not an error"
    printed = capsys.readouterr().out
    assert (f"warning: --extensions '{extensions}' line 3: student '23456' matches no row"
            in printed)
    assert printed.count("warning: --extensions") == 1


def gradescope_export(folder, submitted):
    """A Gradescope "Export Submissions" folder, one submission a {sid: submitted_at} entry;
    each holds only a PDF, so each is flagged could-not-be-graded without a sandbox."""
    folder.mkdir()
    metadata = ""
    for i, (sid, when) in enumerate(submitted.items()):
        key = f"submission_{9000 + i}"
        (folder / key).mkdir()
        (folder / key / "writeup.pdf").write_bytes(b"%PDF-1.4")
        metadata += (f"{key}:\n  :submitters:\n  - :name: Student {sid}\n    :sid: '{sid}'\n"
                     f"    :email: s{sid}@school.edu\n  :created_at: {when}\n  :score: 0.0\n")
    (folder / "submission_metadata.yml").write_text(metadata)
    return folder


def test_a_rerun_keeps_the_late_policy_and_a_changed_one_says_what_changed(tmp_path, capsys):
    folder = gradescope_export(tmp_path / "export", {
        "3032001": "2024-02-10 07:59:00.000000000 Z",  # 8 hours late: one day started
        "3032002": "2024-02-09 20:00:00.000000000 Z"})  # on time
    out = tmp_path / "out"
    command = [str(folder), "--out", str(out)]
    assert grade.main([*command, "--due", "2024-02-09T23:59Z", "--late-penalty", "10"]) == 1
    capsys.readouterr()
    penalties = {n: r["late_penalty"] for n, r in rows_of(out).items()}
    assert penalties == {"3032001": "10", "3032002": "0"}

    assert grade.main(command) == 1  # a rerun with no late option
    printed = capsys.readouterr().out
    assert {n: r["late_penalty"] for n, r in rows_of(out).items()} == penalties
    assert (f"late policy: --due 2024-02-09T23:59:00+00:00 --late-penalty 10, as kept in "
            f"{out / '.gradebook.json'} by the run before") in printed

    assert grade.main([*command, "--due", "2024-02-09T23:59Z", "--late-penalty", "5"]) == 1
    printed = capsys.readouterr().out
    assert "late policy changed from the run before (--late-penalty: 10 -> 5)" in printed
    assert rows_of(out)["3032001"]["late_penalty"] == "5"


def test_regrading_one_canvas_file_with_add_is_refused_before_grading(tmp_path, capsys):
    """A TA passed one file of the Canvas download with --add to regrade its student: it would
    become a second row without the Canvas id. Refused, saying how to regrade one student."""
    folder = unreadable_canvas_download(tmp_path / "canvas", [
        "smithjohn_123456_7890123_submission.zip", "doejane_234567_8901234_submission.zip"])
    out = tmp_path / "out"
    assert grade.main([str(folder), "--out", str(out), "--format", "canvas"]) == 1
    before = (out / "canvas.csv").read_bytes()
    capsys.readouterr()
    lone = folder / "doejane_234567_8901234_submission.zip"
    assert grade.main([str(lone), "--out", str(out), "--add", "--format", "canvas"]) == 2
    err = capsys.readouterr().err
    assert ("'doejane_234567_8901234_submission.zip' is a file of the Canvas download graded "
            f"into {out}: Canvas user 234567, row 'doejane'") in err
    assert "put the file in the download folder" in err and "rerun the command" in err
    assert sorted(rows_of(out)) == ["doejane", "smithjohn"]
    assert (out / "canvas.csv").read_bytes() == before


def test_ctrl_c_says_the_lms_files_hold_only_the_finished_rows(tmp_path, capsys, monkeypatch):
    from grader import batch

    def stopped(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(batch, "_grade_all", stopped)
    folder = unreadable_canvas_download(tmp_path / "canvas", [
        "smithjohn_123456_7890123_submission.zip"])
    out = tmp_path / "out"
    assert grade.main([str(folder), "--out", str(out), "--format", "canvas",
                       "--format", "gradescope"]) == 130
    err = capsys.readouterr().err
    assert ("0 of 1 submissions finished and written to " f"{out} (grades.csv holds them; "
            "canvas.csv and gradescope.csv hold only the finished rows: upload them after the "
            "rerun)") in err
