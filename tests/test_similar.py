"""grade.py similar on a class the tests build (tests/similar_corpus.py): independent solutions
in six styles, copies of them under each disguise, a partial copy, the stubs alone, and answers
copied with light rewording. Which pair is a copy is known from how the corpus was built,
never from the code under test."""
import csv
import os

import pytest

import grade
import similar_corpus as corpus
from conftest import ROOT
import test_browser
from grader import exports, similar, similar_html
from test_report_html import problems


def compare_folder(folder, archives=(), **options):
    docs = similar.documents_of(exports.collect([str(folder)]))
    for label, path in zip(similar.archive_labels(archives), archives):
        docs += similar.documents_of(similar.archive_submissions(str(path)), archive=label)
    similar.fingerprint_all(docs, jobs=1)
    return similar.compare(docs, **options)


def copied(a, b, kinds):
    """Whether the corpus made one of the two from the other, or both from one original's
    code (an answers-only copy shares nothing with the code copies of its original)."""
    ka, kb = kinds[a], kinds[b]
    return (ka.endswith(":" + b) or kb.endswith(":" + a)
            or ka.startswith("copy:") and ka == kb)


def is_copy(pair, kinds):
    return copied(pair.a.name, pair.b.name, kinds)


@pytest.fixture(scope="module")
def class_corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("class")
    kinds = corpus.build_class(str(folder))
    return folder, kinds, compare_folder(folder)


def test_every_copy_pair_ranks_above_every_independent_pair(class_corpus):
    _, kinds, comparison = class_corpus
    expected = {frozenset((a, b)) for a in kinds for b in kinds if a < b and copied(a, b, kinds)}
    assert len(expected) == len(corpus.DISGUISES) + 1 + 1 + 1, "each copy, the partial copy, " \
        "the answers, and the two copies of one original (vectorised) with each other"
    ranked = [(p, is_copy(p, kinds)) for p in comparison.pairs]
    found = {frozenset((p.a.name, p.b.name)) for p, copy in ranked if copy}
    assert found == expected, "every copy pair is among the ranked pairs"
    last_copy = max(i for i, (_, copy) in enumerate(ranked) if copy)
    first_independent = min((i for i, (_, copy) in enumerate(ranked) if not copy), default=None)
    assert first_independent is None or last_copy < first_independent, [
        (p.a.name, p.b.name, round(p.score, 2)) for p, _ in ranked[:last_copy + 1]]


def test_every_copy_is_worth_a_look_and_no_independent_pair_is(class_corpus):
    _, kinds, comparison = class_corpus
    assert {(p.a.name, p.b.name) for p in comparison.pairs if p.flagged} == \
        {(p.a.name, p.b.name) for p in comparison.pairs if is_copy(p, kinds)}


@pytest.mark.parametrize("disguise", [*corpus.DISGUISES, "partial"])
def test_each_disguise_keeps_most_of_its_original(class_corpus, disguise):
    _, kinds, comparison = class_corpus
    (name,) = [n for n in kinds if n.startswith(disguise + "_of_")]
    pair = next(p for p in comparison.pairs if {p.a.name, p.b.name} == {name, kinds[name][5:]})
    # One function of four is about a quarter; inserted dead code brings fingerprints of its
    # own, so a copy that carries it keeps about half (0.55, and 0.44 with every disguise at
    # once, measured once the given divergence stop joined the starter code); every other
    # disguise keeps more. Whatever the share, the copy must be flagged (and ranks above every
    # independent pair: test_every_copy_pair_ranks_above_every_independent_pair).
    floor = {"partial": 0.25, "dead_code": 0.5, "everything": 0.4}.get(disguise, 0.6)
    assert pair.flagged and pair.code >= floor, (pair.code, pair.run_tokens)


def test_copies_of_one_solution_form_a_group(class_corpus):
    _, kinds, comparison = class_corpus
    expected = {"vectorised"} | {n for n, k in kinds.items() if k == "copy:vectorised"}
    assert len(expected) >= 3, "the corpus copies vectorised twice"
    assert [{d.name for d in group} for group in comparison.clusters
            if "vectorised" in {d.name for d in group}] == [expected]


def test_the_stubs_alone_score_zero(class_corpus):
    _, _, comparison = class_corpus
    stubs = next(d for d in comparison.documents if d.name == "stubs_alone")
    assert stubs.fingerprints == {} and stubs.starter.all()
    assert [p for p in comparison.pairs if p.code > 0 and "stubs_alone" in (p.a.name, p.b.name)] == []


def test_answers_copied_with_rewording_rank_on_answers_not_code(class_corpus):
    _, kinds, comparison = class_corpus
    name = next(n for n, k in kinds.items() if k.startswith("answers:"))
    pair = next(p for p in comparison.pairs if {p.a.name, p.b.name} == {name, kinds[name][8:]})
    assert pair.flagged and pair.answers >= 0.6 and pair.code == 0
    assert pair.shared_words, "the shared words are known for the side-by-side view"


def test_a_class_of_independent_solutions_has_no_pair_worth_a_look(tmp_path):
    corpus.build_class(str(tmp_path), copies=False)
    comparison = compare_folder(tmp_path)
    assert comparison.pairs, "independent solutions still share a little"
    assert [(p.a.name, p.b.name) for p in comparison.pairs if p.flagged] == []
    assert comparison.clusters == []


def test_a_passage_many_share_is_not_evidence_but_one_two_share_is(tmp_path):
    helper = ("\n\ndef odd_helper(values, scale):\n    total = 0\n    for v in values:\n"
              "        total = total + v * scale - (v // 3) ** 2\n    return total % 97\n")

    def code_of(sharing):
        folder = tmp_path / "-".join(sharing or ["none"])
        for style in corpus.CLASS_STYLES:
            corpus.write_student(str(folder), style,
                                 corpus.module(style) + (helper if style in sharing else ""))
        return {frozenset((p.a.name, p.b.name)): p.code for p in compare_folder(folder).pairs}

    alone, everyone = code_of([]), code_of(corpus.CLASS_STYLES)
    assert max(abs(everyone.get(k, 0) - alone.get(k, 0)) for k in alone | everyone) < 0.01, \
        "six of six share it: conventional, no evidence"
    two = code_of(["loops", "einsum"])
    pair = frozenset(("loops", "einsum"))
    assert two[pair] - alone.get(pair, 0) > 0.05, "two share it: evidence"


def test_the_kits_oracle_is_not_starter_code():
    """helpers_lib/oracle.py computes the forward pass and the loss as students write them; the
    release does not hold it, so code like it is evidence, not starter code."""
    import numpy as np

    with open(os.path.join(ROOT, "helpers_lib", "oracle.py")) as f:
        tokens = [symbol for symbol, _ in similar.code_tokens(f.read())]
    runs = similar.run_hashes(similar._ids(tokens), similar.STARTER_K)
    assert len(runs) > 100 and np.isin(runs, similar.starter_runs()).mean() < 0.5


def test_base_files_are_starter_code_too(tmp_path):
    helper = ("\n\ndef odd_helper(values, scale):\n    total = 0\n    for v in values:\n"
              "        total = total + v * scale - (v // 3) ** 2\n    return total % 97\n")
    for style in ("loops", "einsum"):
        corpus.write_student(str(tmp_path / "class"), style, corpus.module(style) + helper)
    (tmp_path / "scaffold.py").write_text(helper)

    def code(base):
        docs = similar.documents_of(exports.collect([str(tmp_path / "class")]))
        similar.fingerprint_all(docs, base=base, jobs=1)
        return max((p.code for p in similar.compare(docs).pairs), default=0.0)

    assert code([]) > 0.05 and code([str(tmp_path / "scaffold.py")]) < 0.01


def test_the_archive_meets_the_class_not_itself(tmp_path):
    klass, archive = tmp_path / "class", tmp_path / "fall2025"
    for style in corpus.CLASS_STYLES[:3]:
        corpus.write_student(str(klass), style, corpus.module(style))
    archive.mkdir()
    public = corpus.rename(corpus.module("einsum"))
    for name in ("repo_a.py", "repo_b.py"):  # two forks of one public solution
        (archive / name).write_text(public)
    corpus.write_student(str(klass), "student_x", corpus.reorder(corpus.module("einsum")))
    comparison = compare_folder(klass, archives=[str(archive)])
    names = [{p.a.name, p.b.name} for p in comparison.pairs]
    assert {"fall2025/repo_a", "fall2025/repo_b"} not in names
    top = comparison.pairs[:2]
    assert {p.b.name for p in top} == {"fall2025/repo_a", "fall2025/repo_b"}
    assert all(p.a.name == "student_x" and p.flagged for p in top)
    assert top[0].b.origin == "archive fall2025: " + top[0].b.name.split("/")[1] + ".py"


def test_code_tokens_ignore_names_layout_comments_and_docstrings():
    one = 'def f(a, b):\n    """Doc."""\n    c = a @ b  # note\n    return torch.exp(c["W1"])\n'
    two = "def g(x,\n      y):\n    z = x@y\n    return torch.exp(z['W1'])\n"
    assert [s for s, _ in similar.code_tokens(one)] == [s for s, _ in similar.code_tokens(two)]
    assert [s for s, _ in similar.code_tokens("y = torch.log(x)")] != \
        [s for s, _ in similar.code_tokens("y = torch.exp(x)")], "the API is not a name to hide"


def tokens_by_python(text):
    """The symbols code_tokens promises, from Python's own tokenizer (the oracle)."""
    import builtins
    import io
    import keyword
    import tokenize

    skipped = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT,
               tokenize.DEDENT, tokenize.ENDMARKER, tokenize.ENCODING}
    out, previous, last = [], None, None
    for token in tokenize.generate_tokens(io.StringIO(text).readline):
        kind, string = token.type, token.string
        if kind in skipped:
            last = kind if kind not in (tokenize.COMMENT, tokenize.NL) else last
            continue
        if string == ";":
            last = tokenize.NEWLINE
            continue
        if kind == tokenize.STRING and last in (tokenize.NEWLINE, tokenize.INDENT,
                                                tokenize.DEDENT, None):
            last = kind
            continue
        if kind == tokenize.STRING:
            body = string.lstrip("rbuRBU")
            quote = body[:1]
            inner = body[1:-1]
            plain = quote in ("'", '"') and not body.startswith(quote * 3)
            symbol = (f"'{inner}'" if plain and inner.isidentifier() and inner.isascii()
                      and len(inner) <= 16 else "S")
        elif kind == tokenize.NAME:
            keep = keyword.iskeyword(string) or string in vars(builtins) or previous == "."
            symbol = string if keep else "V"
        elif kind == tokenize.NUMBER:
            symbol = similar._number(string)
        else:
            symbol = string
        out.append((symbol, token.start[0]))
        previous, last = string, kind
    return out


@pytest.mark.parametrize("style", corpus.STYLES)
def test_code_tokens_are_pythons_tokens(style):
    for source in [corpus.module(style), corpus.stubs(),
                   *(rewrite(corpus.module(style)) for rewrite in corpus.DISGUISES.values())]:
        assert similar.code_tokens(source) == tokens_by_python(source)


def test_the_csv_cells_never_start_a_formula(tmp_path):
    for style in ("loops", "einsum"):
        corpus.write_student(str(tmp_path), style, corpus.module(style))
    corpus.write_student(str(tmp_path), "copy", corpus.module("loops"))
    comparison = compare_folder(tmp_path)
    comparison.pairs[0].a.identity = {"student": "=HYPERLINK(\"http://x\")", "email": "+1@x",
                                      "sid": "-5"}
    rows = list(csv.DictReader(similar.similar_csv(comparison).splitlines()))
    assert rows[0]["a_student"] == "'=HYPERLINK(\"http://x\")"
    assert rows[0]["a_email"] == "'+1@x" and rows[0]["a_sid"] == "'-5"
    for row in rows:
        assert all(v[:1] not in ("=", "+", "-", "@") for v in row.values())


def test_the_command_writes_both_files_and_the_page_runs_nothing(tmp_path, capsys):
    for style in ("loops", "einsum"):
        corpus.write_student(str(tmp_path / "class"), style, corpus.module(style))
    hostile = corpus.module("loops").replace(
        "import torch\n", "import torch\n# </pre><script>alert(1)</script><img src=x onerror=alert(2)>\n"
        "GREETING = '<script>alert(3)</script>'\n", 1)
    corpus.write_student(str(tmp_path / "class"), "mallory", hostile)
    out = tmp_path / "out"
    assert grade.main(["similar", str(tmp_path / "class"), "--out", str(out)]) == 0
    page = (out / "similar.html").read_text(encoding="utf-8")
    assert problems(page) == []
    assert "Content-Security-Policy" in page and "for a person" in page
    assert "&lt;script&gt;alert(1)" in page, "the student's text is shown, escaped"
    with open(out / "similar.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert {rows[0]["a"], rows[0]["b"]} == {"loops", "mallory"}
    assert "a ranking for a person to judge" in capsys.readouterr().out


def test_an_unreadable_submission_is_named_and_the_rest_compared(tmp_path, capsys):
    for style in ("loops", "einsum"):
        corpus.write_student(str(tmp_path / "class"), style, corpus.module(style))
    (tmp_path / "class" / "broken.zip").write_bytes(b"not a zip")
    out = tmp_path / "out"
    assert grade.main(["similar", str(tmp_path / "class" / "loops"),
                       str(tmp_path / "class" / "einsum"), str(tmp_path / "class" / "broken.zip"),
                       "--out", str(out)]) == 1
    assert "could not read broken" in capsys.readouterr().err
    page = (out / "similar.html").read_text(encoding="utf-8")
    assert "Could not be read" in page and "broken" in page


def test_the_command_refuses_what_it_cannot_use(tmp_path, capsys):
    assert grade.main(["similar", "--help"]) == 0
    assert "--archive" in capsys.readouterr().out
    assert grade.main(["similar", str(tmp_path / "missing"), "--out", str(tmp_path / "o")]) == 2
    folder = tmp_path / "class"
    corpus.write_student(str(folder), "loops", corpus.module("loops"))
    assert grade.main(["similar", str(folder), "--out", str(tmp_path / "o"),
                       "--archive", str(tmp_path / "nope")]) == 2
    assert not os.path.exists(tmp_path / "o" / "similar.csv")


@pytest.mark.slow
@pytest.mark.browser
def test_the_page_in_a_browser_runs_and_loads_nothing_and_shows_the_shared_lines(
        class_corpus, browser, tmp_path):
    """Set SIMILAR_SCREENSHOTS=folder to keep what the browser showed (docs/similar.png)."""
    from selenium.webdriver.common.by import By

    _, kinds, comparison = class_corpus
    path = tmp_path / "similar.html"
    path.write_text(similar_html.page(comparison), encoding="utf-8")
    browser.set_window_size(1280, 1000)
    seen = test_browser.visit(browser, path)
    assert seen.ran(title=similar_html.TITLE) == [], "a script ran"
    assert seen.requests == [] and seen.url.startswith("file:"), (seen.requests, seen.url)
    assert seen.refusals == [], "the page's own stylesheet is allowed by its policy"
    note = browser.find_element(By.CSS_SELECTOR, ".similar-note")
    assert note.is_displayed() and "for a person to judge" in note.text
    rows = browser.find_elements(By.CSS_SELECTOR, "table.ranked tbody tr")
    assert len(rows) == min(len(comparison.pairs), similar.SHOWN) or len(rows) >= sum(
        p.flagged for p in comparison.pairs)
    shared = browser.find_elements(By.CSS_SELECTOR, "#pair-1 ~ .sbs .shared")
    plain = browser.find_element(By.CSS_SELECTOR, ".sbs .plain")
    assert shared and shared[0].value_of_css_property("background-color") != \
        plain.value_of_css_property("background-color"), "shared lines are highlighted"
    folder = os.environ.get("SIMILAR_SCREENSHOTS")
    if folder:
        browser.save_screenshot(os.path.join(folder, "similar.png"))
        browser.get(path.as_uri() + "#pair-2")
        browser.save_screenshot(os.path.join(folder, "similar-pair.png"))


browser = test_browser.browser  # the headless Chromium of the notebook reports' test


@pytest.mark.slow
def test_fingerprints_are_the_same_in_every_process(tmp_path):
    """copydetect hashes k-grams with Python's hash(), salted per process: its fingerprints
    (and the spots winnowing picks) change from run to run. Ours must not."""
    import subprocess
    import sys

    (tmp_path / "m.py").write_text(corpus.module("loops"))
    script = ("import sys, numpy; from grader import similar; "
              "print(sorted(similar.fingerprint_code([('m.py', open(sys.argv[1]).read())], "
              "numpy.zeros(0, dtype=numpy.int64))[3])[:50])")
    outputs = {subprocess.run([sys.executable, "-c", script, str(tmp_path / "m.py")],
                              capture_output=True, text=True, check=True,
                              env={**os.environ, "PYTHONHASHSEED": seed,
                                   "PYTHONPATH": os.pathsep.join(sys.path)}).stdout
               for seed in ("1", "2")}
    assert len(outputs) == 1 and len(next(iter(outputs))) > 100
