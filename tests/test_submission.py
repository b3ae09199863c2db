"""grader.exports.collect and grader.submission: every SUB, alone or in an instructor's export,
becomes submissions with unique, safe names and, where the export says, who they are.

The exports are laid out as the real ones are: Gradescope's submission_metadata.yml as Ruby
writes it, Canvas's `<name>_[LATE_]<user id>_<file id>_<file>` with its `-1` for re-uploads.
"""
import io
import os
import zipfile

import pytest

from grader import exports, submission
from grader.exports import collect
from grader.submission import MODULE, NOTEBOOK, RESERVED, UsageError

SOURCE = b"def nn_forward_pass(params, X):\n    raise NotImplementedError\n"
NOTEBOOK_TEXT = b'{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}\n'

GRADESCOPE_METADATA = """\
submission_212716539:
  :submitters:
  - :name: Ann Lee
    :sid: '3032001'
    :email: ann@berkeley.edu
  :created_at: 2024-02-09 21:14:03.371842000 Z
  :score: 100.0
  :results:
    score: 100.0
    execution_time: 4.2
    output: |-
      All tests passed.
    tests:
    - name: forward
      score: 15.0
      max_score: 15.0
  :history:
  - :created_at: 2024-02-08 18:02:11.002113000 Z
    :score: 80.0
submission_212716540:
  :submitters:
  - :name: Bo Chen
    :sid: 3032002
    :email: bo@berkeley.edu
  - :name: Cy Diaz
    :sid: '3032003'
    :email: cy@berkeley.edu
  :created_at: 2024-02-10 07:59:58.000000000 Z
  :score: 90.0
submission_212716541:
  :submitters:
  - :name: Dee Evans
    :email: dee@berkeley.edu
  :created_at: 2024-02-10 08:00:00.000000000 Z
  :score: 0.0
"""


def write(path, data=SOURCE):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return str(path)


def zip_bytes(members):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def names(subs):
    return [sub.name for sub in subs]


def by_name(subs):
    return {sub.name: sub for sub in subs}



def test_a_sub_that_does_not_exist_is_a_usage_error_naming_it(tmp_path):
    good = write(tmp_path / "alice.py")
    missing = str(tmp_path / "nope.py")
    with pytest.raises(UsageError, match=r"'.*nope\.py' does not exist; pass a \.py file"):
        collect([good, missing])
    with pytest.raises(UsageError, match="''"):
        collect([""])


def test_every_plain_input_gives_exactly_one_submission(tmp_path):
    paths = [write(tmp_path / "amy.py"),
             write(tmp_path / "ben" / MODULE),
             write(tmp_path / "cal.zip", zip_bytes({MODULE: SOURCE, NOTEBOOK: NOTEBOOK_TEXT})),
             write(tmp_path / "dan.rar", b"Rar!\x1a\x07\x00"),
             os.path.dirname(write(tmp_path / "eve" / "notes.txt")),
             write(tmp_path / "fay.zip", b"PK\x03\x04 this is not a zip")]
    subs = collect(paths)
    assert names(subs) == ["amy", "ben", "cal", "dan.rar", "eve", "fay"]
    assert [sub.error is None for sub in subs] == [True, True, True, False, False, False]
    assert subs[2].has_notebook and sorted(subs[2].files) == sorted([MODULE, NOTEBOOK])
    assert "is not a .py, .zip or folder" in subs[3].error
    assert "holds no two_layer_net.py" in subs[4].error
    assert "is not a readable zip archive" in subs[5].error
    assert all(sub.identity == {} for sub in subs)


def test_files_with_the_assignments_own_name_are_named_after_their_folder(tmp_path):
    paths = [write(tmp_path / "bob" / MODULE), write(tmp_path / "carol" / MODULE),
             write(tmp_path / "dora" / "submission.zip", zip_bytes({MODULE: SOURCE}))]
    assert names(collect(paths)) == ["bob", "carol", "dora"]


def test_a_suffix_never_takes_another_submissions_natural_name(tmp_path):
    paths = [write(tmp_path / "a" / "alice.py"), write(tmp_path / "b" / "alice.py"),
             write(tmp_path / "c" / "alice-2.py")]
    subs = collect(paths)
    assert names(subs) == ["alice", "alice-3", "alice-2"]
    assert [sub.source for sub in subs] == [os.path.abspath(p) for p in paths]


def test_names_that_differ_only_in_case_are_the_same_name(tmp_path):
    lower, upper = write(tmp_path / "alice.py"), write(tmp_path / "x" / "ALICE.py")
    assert names(collect([lower, upper])) == ["alice", "ALICE-2"]
    assert names(collect([upper, lower])) == ["ALICE", "alice-2"]


@pytest.mark.parametrize("filename", ["grades.csv.py", "scores.png.py", "answers.html.py",
                                      "manual.csv.py", "GRADES.CSV.py", ".hidden.py", "..py",
                                      ".grades.csv.py"])
def test_no_submission_gets_a_reserved_or_hidden_name(tmp_path, filename):
    subs = collect([write(tmp_path / filename), write(tmp_path / "grades.csv" / MODULE)])
    for sub in subs:
        assert sub.name.lower() not in RESERVED and not sub.name.startswith("."), sub.name
        assert sub.error is None
    assert len({sub.name.lower() for sub in subs}) == 2


def test_a_renamed_reserved_name_does_not_collide_with_a_real_one(tmp_path):
    subs = collect([write(tmp_path / "grades.csv.py"), write(tmp_path / "grades_csv.py")])
    assert names(subs) == ["grades_csv", "grades_csv-2"]


def test_names_are_safe_folder_names(tmp_path):
    long = "x" * 150
    paths = [write(tmp_path / "Zoë Ann & co.py"), write(tmp_path / (long + ".py")),
             write(tmp_path / "y" / (long + ".py")), write(tmp_path / "nul.py"),
             write(tmp_path / "-rf.py")]
    subs = collect(paths)
    assert names(subs)[0] == "Zoe_Ann_co"
    assert names(subs)[1:3] == ["x" * submission.MAX_NAME, "x" * (submission.MAX_NAME - 2) + "-2"]
    assert names(subs)[3:] == ["_nul", "rf"]
    for sub in subs:
        assert len(sub.name) <= submission.MAX_NAME
        assert os.sep not in sub.name and sub.name[0] not in ".-"


def test_collect_gives_the_same_names_for_the_same_arguments(tmp_path):
    paths = [write(tmp_path / d / "alice.py") for d in "abcde"]
    paths.append(write(tmp_path / "f" / "alice-3.py"))
    first = names(collect(paths))
    assert first == names(collect(paths))
    assert first == ["alice", "alice-2", "alice-4", "alice-5", "alice-6", "alice-3"]


def test_load_still_reads_one_submission(tmp_path):
    sub = submission.load(write(tmp_path / "ivy" / MODULE))
    assert (sub.name, sub.files, sub.error, sub.identity) == ("ivy", {MODULE: SOURCE}, None, {})


@pytest.mark.parametrize("members, message", [
    ({MODULE: SOURCE, "../../evil.py": b"x"}, "would land outside its folder"),
    ({MODULE: SOURCE, "/tmp/evil.py": b"x"}, "absolute path"),
])
def test_archive_checks_still_apply(tmp_path, members, message):
    sub, = collect([write(tmp_path / "mal.zip", zip_bytes(members))])
    assert message in sub.error and sub.files == {}


def test_a_link_is_refused(tmp_path):
    target = write(tmp_path / "real" / MODULE)
    os.makedirs(tmp_path / "lnk")
    os.symlink(target, tmp_path / "lnk" / MODULE)
    sub, = collect([str(tmp_path / "lnk")])
    assert "is a link" in sub.error



def gradescope_export(folder, metadata=GRADESCOPE_METADATA):
    """An export as unzipped from Gradescope: the metadata and one folder a submission."""
    (folder).mkdir(parents=True)
    (folder / "submission_metadata.yml").write_text(metadata)
    write(folder / "submission_212716539" / MODULE)
    write(folder / "submission_212716539" / NOTEBOOK, NOTEBOOK_TEXT)
    write(folder / "submission_212716540" / "hw2" / MODULE)
    write(folder / "submission_212716541" / "notes.txt")
    return folder


def test_gradescope_rows_are_named_after_their_submitters(tmp_path):
    subs = collect([str(gradescope_export(tmp_path / "assignment_4201_export"))])
    assert names(subs) == ["3032001", "3032002", "Dee_Evans"]
    ann, group, dee = subs
    assert ann.identity == {"student": "Ann Lee", "email": "ann@berkeley.edu", "sid": "3032001",
                            "submitted_at": "2024-02-09T21:14:03.371842+00:00"}
    assert sorted(ann.files) == sorted([MODULE, NOTEBOOK]) and ann.error is None
    assert group.identity["student"] == "Bo Chen; Cy Diaz"
    assert group.identity["sid"] == "3032002; 3032003"
    assert group.identity["email"] == "bo@berkeley.edu; cy@berkeley.edu"
    assert group.files == {MODULE: SOURCE}
    assert "holds no two_layer_net.py" in dee.error and dee.identity["student"] == "Dee Evans"
    assert "sid" not in dee.identity
    assert all(sub.notes == [] for sub in subs)


def test_gradescope_export_unzipped_into_a_folder_of_its_own(tmp_path):
    gradescope_export(tmp_path / "download" / "assignment_4201_export")
    assert names(collect([str(tmp_path / "download")])) == ["3032001", "3032002", "Dee_Evans"]


def test_gradescope_export_zip_is_read_as_it_is(tmp_path):
    folder = gradescope_export(tmp_path / "assignment_4201_export")
    members = {}
    for root, _, files in os.walk(folder):
        for name in files:
            full = os.path.join(root, name)
            with open(full, "rb") as f:
                members[os.path.relpath(full, tmp_path)] = f.read()
    members["assignment_4201_export/submission_212716541/../../evil.py"] = b"x"
    path = write(tmp_path / "assignment_4201_export.zip", zip_bytes(members))
    subs = collect([path])
    assert names(subs) == ["3032001", "3032002", "Dee_Evans"]
    assert sorted(subs[0].files) == sorted([MODULE, NOTEBOOK]) and subs[1].files == {MODULE: SOURCE}
    assert subs[0].identity["sid"] == "3032001"
    assert "would land outside its folder" in subs[2].error  # only the one submission


def test_gradescope_folder_without_metadata_and_metadata_without_folder(tmp_path):
    folder = gradescope_export(tmp_path / "export")
    write(folder / "submission_999" / MODULE)
    (folder / "submission_212716540" / "hw2" / MODULE).unlink()
    (folder / "submission_212716540" / "hw2").rmdir()
    (folder / "submission_212716540").rmdir()
    subs = by_name(collect([str(folder)]))
    assert sorted(subs) == ["3032001", "3032002", "Dee_Evans", "submission_999"]
    missing = subs["3032002"]
    assert "lists 'submission_212716540' (Bo Chen; Cy Diaz), but the export holds no such folder" \
        in missing.error
    assert missing.identity["sid"] == "3032002; 3032003"
    unknown = subs["submission_999"]
    assert unknown.error is None and unknown.identity == {}
    assert unknown.notes == [("'submission_999' is in the Gradescope export but not in its "
                              "submission_metadata.yml; its submitters are unknown")]


@pytest.mark.parametrize("metadata, problem", [
    ("submission_1: [unclosed\n", "cannot be parsed"),
    ("- just\n- a list\n", "is not a mapping"),
    ("submission_1: !!python/object/apply:os.system ['touch PWNED']\n", "cannot be parsed"),
])
def test_gradescope_metadata_that_cannot_be_used_is_a_note_not_a_crash(tmp_path, monkeypatch,
                                                                       metadata, problem):
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "submission_metadata.yml").write_text(metadata)
    write(folder / "submission_1" / MODULE)
    sub, = collect([str(folder)])
    assert sub.name == "submission_1" and sub.error is None and sub.identity == {}
    assert problem in sub.notes[0] and "submitters are unknown" in sub.notes[0]
    assert not (tmp_path / "PWNED").exists()


def test_gradescope_submitter_names_become_the_row_names_without_sids(tmp_path):
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "submission_metadata.yml").write_text(
        "submission_1:\n  :submitters:\n  - :name: Ann Lee\n"
        "submission_2:\n  :submitters:\n  - :email: grades.csv@school.edu\n"
        "submission_3:\n  :submitters: []\n")
    for key in ("submission_1", "submission_2", "submission_3"):
        write(folder / key / MODULE)
    subs = collect([str(folder)])
    assert names(subs) == ["Ann_Lee", "grades_csv", "submission_3"]
    assert subs[2].notes == [
        "Gradescope's submission_metadata.yml names no submitter for 'submission_3'"]



def canvas_download(folder):
    """A Canvas "Download Submissions" folder, named as Canvas names the files."""
    write(folder / "smithjohn_123456_7890123_two_layer_net.py")
    write(folder / "smithjohn_123456_7890124_two_layer_net.ipynb", NOTEBOOK_TEXT)
    write(folder / "doejane_LATE_234567_8901234_two_layer_net-1.py", SOURCE + b"# late\n")
    write(folder / "doejane_LATE_234567_8901235_two_layer_net-2.ipynb", NOTEBOOK_TEXT)
    write(folder / "leeann_late_345678_9012345_submission.zip",
          zip_bytes({"hw/" + MODULE: SOURCE, "hw/helpers.py": b"x = 1\n"}))
    write(folder / "smithjohn_456789_9123456_two_layer_net.py")  # another John Smith
    write(folder / "kimbo_567890_text.html", b"<html>my code is below</html>")
    write(folder / "wupat_678901_9234567_writeup.pdf", b"%PDF-1.4")
    return folder


def test_canvas_rows_are_named_after_students_with_files_renamed_back(tmp_path):
    subs = collect([str(canvas_download(tmp_path / "canvas"))])
    assert names(subs) == ["smithjohn", "doejane", "leeann", "smithjohn-2", "kimbo", "wupat"]
    john, jane, ann, other_john, kim, pat = subs
    assert john.files == {MODULE: SOURCE, NOTEBOOK: NOTEBOOK_TEXT} and john.error is None
    # A Canvas user id is not the school's student id: canvas_id only, never sid.
    assert john.identity == {"student": "smithjohn", "canvas_id": "123456", "late": False}
    assert jane.files == {MODULE: SOURCE + b"# late\n", NOTEBOOK: NOTEBOOK_TEXT}
    assert jane.identity == {"student": "doejane", "canvas_id": "234567", "late": True}
    assert ann.files == {MODULE: SOURCE, "helpers.py": b"x = 1\n"}
    assert ann.identity["late"] is True
    assert other_john.identity["canvas_id"] == "456789" and other_john.error is None
    assert "is a text entry, not files" in kim.error
    assert "holds no two_layer_net.py of 'wupat' (uploaded: writeup.pdf)" in pat.error


def test_canvas_download_still_zipped_is_a_usage_error(tmp_path):
    folder = canvas_download(tmp_path / "canvas")
    members = {name: (folder / name).read_bytes() for name in os.listdir(folder)}
    path = write(tmp_path / "submissions.zip", zip_bytes(members))
    with pytest.raises(UsageError, match=r"submissions\.zip' is a Canvas bulk download; unzip it"):
        collect([path])


def test_canvas_two_different_files_of_one_name_are_refused(tmp_path):
    folder = tmp_path / "canvas"
    write(folder / "doejane_234567_8901234_two_layer_net.py")
    write(folder / "doejane_234567_8901299_two_layer_net-1.py", b"other = 1\n")
    sub, = collect([str(folder)])
    assert "two different two_layer_net.py of 'doejane'" in sub.error and sub.files == {}


def test_a_folder_holding_the_module_is_not_an_export(tmp_path):
    folder = tmp_path / "zed"
    write(folder / MODULE)
    write(folder / "smithjohn_123456_7890123_two_layer_net.py")
    assert exports.expand(str(folder)) is None
    sub, = collect([str(folder)])
    assert sub.name == "zed" and sub.error is None and sub.files[MODULE] == SOURCE



def test_a_folder_of_student_folders_gives_one_row_a_student(tmp_path):
    folder = tmp_path / "section1"
    write(folder / "amy" / MODULE)
    write(folder / "ben" / "hw2" / MODULE)
    write(folder / "cat" / "submission.zip", zip_bytes({MODULE: SOURCE}))
    write(folder / "dan" / "notes.txt")
    subs = collect([str(folder)])
    assert names(subs) == ["amy", "ben", "cat", "dan"]
    assert [sub.files for sub in subs[:3]] == [{MODULE: SOURCE}] * 3
    assert "holds no two_layer_net.py" in subs[3].error


def test_one_student_folder_with_the_module_below_it_stays_one_submission(tmp_path):
    folder = tmp_path / "amy"
    write(folder / "hw2" / MODULE)
    write(folder / "data" / "notes.txt")
    sub, = collect([str(folder)])
    assert sub.name == "amy" and sub.files == {MODULE: SOURCE}


def test_a_students_zip_holding_metadata_and_folders_is_one_submission(tmp_path):
    """A zip handed in as one student's SUB speaks for nobody else: its metadata names a
    classmate and a student who never submitted, its folders are not Gradescope's."""
    metadata = ("alice:\n  :submitters:\n  - :name: Ann Lee\n    :sid: '3032001'\n"
                "ghost:\n  :submitters:\n  - :name: Never Submitted\n    :sid: '3039999'\n")
    members = {"submission_metadata.yml": metadata, f"alice/{MODULE}": SOURCE,
               f"ghost/{MODULE}": SOURCE, f"mine/{MODULE}": SOURCE}
    path = write(tmp_path / "mallory" / "submission.zip", zip_bytes(members))
    sub, = collect([path])
    assert sub.name == "mallory" and sub.identity == {}
    assert "several folders" in sub.error and "submit exactly one" in sub.error


def test_a_metadata_file_in_a_student_folder_beside_other_folders_is_not_an_export(tmp_path):
    folder = tmp_path / "mallory"
    (folder / "submission_metadata.yml").parent.mkdir(parents=True)
    (folder / "submission_metadata.yml").write_text(
        "submission_1:\n  :submitters:\n  - :name: Ann Lee\n    :sid: '3032001'\n")
    write(folder / "submission_1" / MODULE)
    write(folder / "notes" / "readme.txt")  # not an export's entry
    sub, = collect([str(folder)])
    assert sub.name == "mallory" and sub.identity == {}


def test_an_export_named_with_the_option_is_read_whatever_its_layout(tmp_path):
    folder = tmp_path / "export"
    gradescope_export(folder)
    write(folder / "README.txt", b"downloaded 2024-02-11")
    unnamed = collect([str(folder)])  # not the exact layout: a folder of folders, nobody named
    assert names(unnamed) == ["submission_212716539", "submission_212716540",
                              "submission_212716541"]
    assert all(sub.identity == {} for sub in unnamed)
    assert names(collect([str(folder)], exports=[str(folder)])) == ["3032001", "3032002",
                                                                    "Dee_Evans"]
    plain = write(tmp_path / "amy.py")
    with pytest.raises(UsageError, match="--export .*amy.py' holds no submission_metadata.yml"):
        collect([plain], exports=[plain])


def test_single_mode_never_expands_an_upload_into_several(tmp_path):
    """Gradescope's autograder: two folders each with the module is one unusable upload whose
    message says what to upload, not two rows."""
    write(tmp_path / "submission" / "v1" / MODULE)
    write(tmp_path / "submission" / "v2" / MODULE, SOURCE + b"# v2\n")
    assert len(collect([str(tmp_path / "submission")])) == 2
    sub, = collect([str(tmp_path / "submission")], single=True)
    assert "holds two_layer_net.py in several folders (v1, v2)" in sub.error
    assert f"submit exactly one {MODULE}" in sub.error


def test_a_row_named_after_a_sid_wins_over_a_display_name_and_renames_are_flagged(tmp_path):
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "submission_metadata.yml").write_text(
        "submission_1:\n  :submitters:\n  - :name: '3032002'\n"  # a display name that is a sid
        "submission_2:\n  :submitters:\n  - :name: Bo Chen\n    :sid: '3032002'\n")
    for key in ("submission_1", "submission_2"):
        write(folder / key / MODULE)
    subs = by_name(collect([str(folder)]))
    assert subs["3032002"].identity["student"] == "Bo Chen"
    renamed = subs["3032002-2"]
    assert renamed.identity == {"student": "3032002"}
    assert renamed.notes and "renamed" in renamed.notes[0] and "'3032002'" in renamed.notes[0]
    assert subs["3032002"].notes == []


def test_a_row_renamed_for_a_clash_between_plain_subs_is_flagged(tmp_path):
    first, second = collect([write(tmp_path / "a" / "alice.py"), write(tmp_path / "b" / "alice.py")])
    assert first.notes == [] and second.name == "alice-2"
    assert "renamed" in second.notes[0] and "'alice'" in second.notes[0]


def test_a_yaml_alias_bomb_is_refused_with_a_message_and_the_batch_goes_on(tmp_path):
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for level in range(1, 12):  # 10**12 strings once expanded
        previous = chr(ord("a") + level - 1)
        name = chr(ord("a") + level)
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{previous}"] * 10) + "]")
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "submission_metadata.yml").write_text("\n".join(lines) + "\n")
    write(folder / "submission_1" / MODULE)
    sub, = collect([str(folder)])
    assert sub.error is None and sub.identity == {} and sub.name == "submission_1"
    assert "cannot be parsed" in sub.notes[0] and "alias" in sub.notes[0]


def test_overlong_submitter_fields_are_left_out(tmp_path):
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "submission_metadata.yml").write_text(
        "submission_1:\n  :submitters:\n  - :name: " + "A" * 5000 + "\n    :sid: '42'\n")
    write(folder / "submission_1" / MODULE)
    sub, = collect([str(folder)])
    assert sub.identity == {"sid": "42"} and sub.name == "42"


def test_submission_never_imports_exports():
    """The arrow runs SUB -> exports -> submission, one way (no import back, not even lazily)."""
    import ast

    tree = ast.parse(open(submission.__file__).read())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported |= {f"{node.module}.{alias.name}" for alias in node.names} | {node.module}
    assert not any(name and "exports" in name for name in imported), imported


def test_a_metadata_file_over_the_size_cap_is_a_note_not_a_crash(tmp_path):
    folder = tmp_path / "export"
    folder.mkdir()
    with open(folder / "submission_metadata.yml", "w") as f:
        f.write("# padding\n" * ((submission.MAX_FILE_BYTES // 10) + 1))
    write(folder / "submission_1" / MODULE)
    sub, = collect([str(folder)])
    assert sub.name == "submission_1" and sub.error is None and sub.identity == {}
    assert "cannot be read" in sub.notes[0] and "more than the 20 MB" in sub.notes[0]
