"""The README and the guides under docs/: every link lands, every file and command they name exists.

The README holds what the kit is, the two commands, the map of files and links; each guide is a
page of its own. A page that names a file the kit does not hold, a link to a missing page or
heading, or a `grade.py` command that does not exist is what a newcomer trips over first.
"""
import os
import re

import pytest

import grade
from conftest import ROOT

DOCS = os.path.join(ROOT, "docs")
PAGES = ["README.md"] + sorted(os.path.join("docs", name) for name in os.listdir(DOCS)
                               if name.endswith(".md"))
LINK = re.compile(r"\]\(([^)\s]+)\)")
# A path the kit holds, as pages write it in backquotes: `grader/audit.py`, `bench/run.py`.
KIT_PATH = re.compile(r"`((?:grader|helpers_lib|tests|bench|docs|release|\.ci)/[\w./-]*\w)`")
GRADE_COMMAND = re.compile(r"python grade\.py ([a-z]+)(?=[\s`]|$)", re.M)


def read(page):
    with open(os.path.join(ROOT, page), encoding="utf-8") as f:
        return f.read()


def anchors(text):
    """GitHub's anchors of a page's headings: lower case, punctuation dropped, spaces to '-'."""
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-")
            for h in re.findall(r"^#+ (.+)$", text, re.M)}


def test_the_readme_links_every_guide():
    readme = read("README.md")
    for page in PAGES[1:]:
        assert f"]({page})" in readme, f"README.md does not link {page}"


@pytest.mark.parametrize("page", PAGES)
def test_every_link_lands(page):
    text = read(page)
    folder = os.path.dirname(os.path.join(ROOT, page))
    for target in LINK.findall(text):
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        path, _, anchor = target.partition("#")
        landing = os.path.normpath(os.path.join(folder, path)) if path else os.path.join(ROOT, page)
        assert os.path.exists(landing), f"{page} links {target}: no such file"
        if anchor and landing.endswith(".md"):
            assert anchor in anchors(read(os.path.relpath(landing, ROOT))), \
                f"{page} links {target}: no such heading"


@pytest.mark.parametrize("page", PAGES)
def test_every_kit_path_named_exists(page):
    missing = [p for p in KIT_PATH.findall(read(page)) if not os.path.exists(os.path.join(ROOT, p))]
    assert not missing, f"{page} names files the kit does not hold: {missing}"


@pytest.mark.parametrize("page", PAGES)
def test_every_grade_command_shown_exists(page, capsys):
    for command in set(GRADE_COMMAND.findall(read(page))):
        if command in grade.COMMANDS:
            try:
                code = grade.main([command, "--help"])
            except SystemExit as stop:
                code = stop.code
            assert code == 0, f"{page}: grade.py {command} --help failed"
        else:
            assert False, f"{page} shows `grade.py {command}`: no such command"
    capsys.readouterr()
