"""The notebook report (grader.notebook.to_html, grader.html_report) against its hostile corpus.

Every check reads the HTML through html.parser, the way a browser tokenises it, instead of
searching the text: escaped markup that a person reads as text is fine, markup that a browser
would act on is not. test_browser.py opens the same reports in Chromium.
"""
import base64
import copy
import functools
import hashlib
import os
import re
from html.parser import HTMLParser

import nbformat
import pytest

import hostile_notebooks
from grader import html_report, notebook

BANNER = "The notebook ran from top to bottom without errors.\n<b>not bold</b>"
REPORT_TITLE = "Notebook report"
ENTRIES = hostile_notebooks.entries()
# Elements that run, load, navigate, submit or restyle the page: none may reach a report.
FORBIDDEN_TAGS = {
    "script", "iframe", "frame", "frameset", "object", "embed", "applet", "base", "form",
    "input", "button", "select", "textarea", "link", "svg", "video", "audio", "source",
    "track", "picture", "portal", "noscript", "template", "image", "foreignobject",
    "maction", "semantics", "annotation-xml", "annotation",
}
SAFE_META = [{"charset": "utf-8"}, {"http-equiv": "content-security-policy"},
             {"name": "referrer"}, {"http-equiv": "x-dns-prefetch-control"}, {"name": "viewport"}]
IMAGE_SRC = re.compile(r"data:image/(png|jpeg|svg\+xml);base64,[A-Za-z0-9+/=\s]*")
LINK_HREF = re.compile(r"(https?://|mailto:|#)\S*", re.IGNORECASE)


class Scan(HTMLParser):
    """Every element of a page with its attributes, whether it sits in <head>, the text of each
    <style>, and the text a reader sees."""

    def __init__(self, page):
        super().__init__(convert_charrefs=True)
        self.elements, self.styles, self.text = [], [], []
        self._in_head = self._in_style = False
        self.feed(page)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, {k.lower(): v or "" for k, v in attrs}, self._in_head))
        self._in_head = self._in_head or tag == "head"
        self._in_style = tag == "style"

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        self._in_style = False

    def handle_endtag(self, tag):
        self._in_head = self._in_head and tag != "head"
        self._in_style = self._in_style and tag != "style"

    def handle_data(self, data):
        (self.styles if self._in_style else self.text).append(data)


def problems(page, *, fragment=False):
    """What in `page` could run, load or navigate, one line each; [] when nothing.

    `fragment`: `page` is a piece of a page, so the document's own <head> (its meta tags,
    stylesheet and policy) is not required.
    """
    scan = Scan(page)
    found = []
    for tag, attrs, in_head in scan.elements:
        if tag in FORBIDDEN_TAGS:
            found.append(f"<{tag}> element")
        if tag == "meta" and not (in_head and any(
                all(attrs.get(k, "").lower().startswith(v) for k, v in safe.items())
                for safe in SAFE_META)):
            found.append(f"<meta {attrs}>")
        if tag == "style" and not in_head:
            found.append("<style> outside <head>")
        for name, value in attrs.items():
            squeezed = re.sub(r"[\s\x00-\x1f]", "", value).lower()
            if name.startswith("on"):
                found.append(f"event handler {name} on <{tag}>")
            elif name in ("style", "srcset", "srcdoc", "action", "formaction", "data", "poster",
                          "background", "ping", "xlink:href"):
                found.append(f"attribute {name} on <{tag}>")
            elif name == "src" and not IMAGE_SRC.fullmatch(value):
                found.append(f"<{tag} src={value[:60]!r}> loads something")
            elif name == "href" and not (tag == "a" and LINK_HREF.fullmatch(value.strip())):
                found.append(f"<{tag} href={value[:60]!r}>")
            elif re.search(r"(java|vb)script:|data:text", squeezed):
                found.append(f"script URL in {name} of <{tag}>")
    for css in scan.styles:
        if re.search(r"url\(|@import|expression\(", css, re.IGNORECASE):
            found.append(f"the stylesheet loads something: {css[:60]!r}")
    if not fragment:
        policy = csp(scan)
        if policy is None:
            found.append("no Content-Security-Policy meta tag in <head>")
        else:
            for directive in ("default-src 'none'", "img-src data:", "base-uri 'none'",
                              "form-action 'none'"):
                if directive not in policy:
                    found.append(f"the policy lacks {directive}")
            if "script-src" in policy or "unsafe" in policy:
                found.append(f"the policy allows scripts or inline code: {policy}")
    return found


def csp(scan):
    """The Content-Security-Policy of a scanned page's <head>, or None."""
    for tag, attrs, in_head in scan.elements:
        if tag == "meta" and in_head and \
                attrs.get("http-equiv", "").lower() == "content-security-policy":
            return attrs.get("content", "")
    return None


def report(entry_notebook, banner=BANNER):
    """The report of a notebook as the grader builds it: read back and validated, then to_html."""
    data = nbformat.writes(entry_notebook).encode()
    return notebook.to_html(notebook.read_notebook(data), banner)


@functools.lru_cache(maxsize=1)
def stock_exporter():
    """nbconvert's own exporter, with the report's template of the cells alone."""
    from jinja2 import DictLoader
    from nbconvert import HTMLExporter

    return HTMLExporter(template_name="lab", template_file="cells.html.j2",
                        extra_loaders=[DictLoader({"cells.html.j2": notebook.CELLS_TEMPLATE})])


def unsafe_cells(entry_notebook):
    """nbconvert's HTML of the notebook's cells alone: no make_inert, no sanitiser."""
    return stock_exporter().from_notebook_node(copy.deepcopy(entry_notebook))[0]


@pytest.fixture(scope="module")
def reports():
    return {entry.name: report(entry.notebook) for entry in ENTRIES}


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.name)
def test_hostile_notebook_report_runs_and_loads_nothing(reports, entry):
    page = reports[entry.name]
    assert problems(page) == [], entry.attack
    scan = Scan(page)
    text = "".join(scan.text)
    for kept in entry.keep:
        assert kept in text or kept in page, f"{entry.name}: the report lost {kept!r}"
    assert hostile_notebooks.REMOTE not in "".join(
        v for tag, attrs, _ in scan.elements for k, v in attrs.items()
        if not (tag == "a" and k == "href")), "a remote URL outside a link"


@pytest.mark.parametrize("entry", [e for e in ENTRIES if e.nbconvert_lets_through],
                         ids=lambda e: e.name)
def test_the_checks_catch_the_attack_in_nbconvert_alone(entry):
    assert problems(unsafe_cells(entry.notebook), fragment=True), \
        f"{entry.name}: nbconvert's own HTML passes the checks, so they test nothing"


def test_the_lab_template_page_fails_the_checks():
    from nbconvert import HTMLExporter

    page, _ = HTMLExporter().from_notebook_node(hostile_notebooks.benign())
    found = problems(page)
    assert "<script> element" in found and "no Content-Security-Policy meta tag in <head>" in found


def test_benign_report_keeps_heading_table_code_figure_and_banner():
    page = report(hostile_notebooks.benign())
    assert problems(page) == []
    scan = Scan(page)
    tags = [tag for tag, _, _ in scan.elements]
    body = tags[tags.index("main") + 1:]
    assert body[:2] == ["div", "p"] and scan.elements[tags.index("main") + 1][1]["class"] == \
        "grader-banner", "the banner comes first"
    text = "".join(scan.text)
    assert "Grader: The notebook ran from top to bottom without errors.<b>not bold</b>" in text, \
        "the banner is shown as text"
    assert ("h1", {"id": "Results"}) in [(t, a) for t, a, _ in scan.elements]
    assert "The loss falls as training goes on." in text
    assert {"table", "thead", "th", "td"} <= set(tags)
    assert re.search(r"iterations\s+loss\s+100\s+2.30\s+1000\s+0.41", text)
    classes = [a.get("class", "") for _, a, _ in scan.elements]
    assert any("highlight" in c for c in classes), "code cells keep pygments' wrapper"
    assert {"k", "kn", "nn", "nb", "mi"} <= set(classes), "and its token classes"
    assert "3.141592653589793" in text
    images = [a["src"] for t, a, _ in scan.elements if t == "img"]
    assert images == ["data:image/png;base64," + hostile_notebooks.FIGURE]
    links = [a for t, a, _ in scan.elements if t == "a"]
    assert {"href": "https://example.edu/course", "rel": "noopener noreferrer nofollow"} in links
    assert any(a.get("href") == "#Results" for a in links), "in-page anchors stay"


def test_report_css_is_allowed_by_the_policy_and_styles_code():
    page = report(hostile_notebooks.benign())
    scan = Scan(page)
    (css,) = scan.styles
    digest = base64.b64encode(hashlib.sha256(css.encode()).digest()).decode()
    assert f"style-src 'sha256-{digest}'" in csp(scan), "the policy would block the stylesheet"
    assert ".highlight .k" in css and ".grader-banner" in css
    assert scan.elements[:3] == [("html", {"lang": "en"}, False), ("head", {}, False),
                                 ("meta", {"charset": "utf-8"}, True)]
    assert scan.elements[3][1]["http-equiv"] == "Content-Security-Policy", \
        "the policy comes before anything it governs"
    assert re.search(r"<title>Notebook report</title>", page)


def test_make_inert_drops_metadata_and_unsafe_mimetypes():
    entry = {e.name: e for e in ENTRIES}
    inert = notebook.make_inert(copy.deepcopy(entry["image_metadata_width_height"].notebook))
    assert [o.metadata for o in inert.cells[0].outputs] == [{}, {}]
    inert = notebook.make_inert(copy.deepcopy(entry["widget_state"].notebook))
    assert inert.metadata == {}
    assert [set(o.data) for o in inert.cells[0].outputs] == [{"text/plain"}]
    inert = notebook.make_inert(copy.deepcopy(entry["notebook_metadata_html"].notebook))
    assert inert.metadata == {}
    inert = notebook.make_inert(copy.deepcopy(entry["markdown_attachments"].notebook))
    assert set(inert.cells[0].attachments) == {"fig.png", "broken.png"}
    inert = notebook.make_inert(copy.deepcopy(entry["svg_output_with_script"].notebook))
    assert set(inert.cells[0].outputs[0].data) == {"image/svg+xml", "text/plain"}


def test_svg_output_is_shown_as_an_image_never_inline():
    entry = {e.name: e for e in ENTRIES}["svg_output_with_script"]
    scan = Scan(report(entry.notebook))
    (src,) = [a["src"] for t, a, _ in scan.elements if t == "img"]
    prefix = "data:image/svg+xml;base64,"
    assert src.startswith(prefix)
    assert base64.b64decode(src[len(prefix):]).decode() == hostile_notebooks.SVG_WITH_SCRIPT


@pytest.mark.parametrize("fragment, expected", [
    ('<a href="javascript:alert(1)">x</a>', '<a rel="noopener noreferrer nofollow">x</a>'),
    ('<a href="https://example.edu/a?b=1">x</a>',
     '<a href="https://example.edu/a?b=1" rel="noopener noreferrer nofollow">x</a>'),
    ('<a href="data:text/html,hi">x</a>', '<a rel="noopener noreferrer nofollow">x</a>'),
    ('<a href="relative.html" target="_blank">x</a>',
     '<a rel="noopener noreferrer nofollow">x</a>'),
    ('<img src="https://attacker.invalid/x.png" alt="a">', '<img alt="a">'),
    ('<img src="data:image/png;base64,iVBORw0KGgo=">',
     '<img src="data:image/png;base64,iVBORw0KGgo=">'),
    ('<img src="data:image/png;base64,x&quot; onerror=&quot;alert(1)">', '<img>'),
    ('<img src="data:text/html;base64,PHNjcmlwdD4=">', '<img>'),
    ('<svg onload="alert(1)"><circle r="1"/></svg>after', 'after'),
    ('<p style="background:url(https://attacker.invalid/)" onclick="x()">p</p>', '<p>p</p>'),
    ('<span class="k good-1 bad!">k</span>', '<span class="k good-1">k</span>'),
    ('<table><tr><td colspan="2" rowspan="x">c</td></tr></table>',
     '<table><tbody><tr><td colspan="2">c</td></tr></tbody></table>'),
    ('<h2 id="Part-1">t</h2><p id="p">p</p>', '<h2 id="Part-1">t</h2><p>p</p>'),
    ('<style>@import url(https://attacker.invalid/x.css);</style><!-- c -->t', 't'),
    ("&lt;script&gt;alert('x')&lt;/script&gt;", "&lt;script&gt;alert('x')&lt;/script&gt;"),
])
def test_sanitise(fragment, expected):
    assert html_report.sanitise(fragment) == expected


def test_page_sanitises_its_body_and_escapes_its_title():
    page = html_report.page("<script>t</script>", '<p onclick="x()">hi</p><script>x()</script>')
    assert problems(page) == []
    assert "<title>&lt;script&gt;t&lt;/script&gt;</title>" in page
    assert "<main>\n<p>hi</p>\n</main>" in page


def test_an_attachment_link_the_renaming_misses_still_gives_a_report():
    cell = nbformat.v4.new_markdown_cell("![odd](<attachment:fig.png x>) and text")
    cell.attachments = {"fig.png": {"image/png": hostile_notebooks.FIGURE}}
    page = report(nbformat.v4.new_notebook(cells=[cell]))
    assert problems(page) == [] and "and text" in page


# Sizes, the render wall, paths, math and the summary (grader issues 16.7, 17.6).

def flood(lines):
    return "".join(f"debug {i}: loss=0.123456789 grad=0.987654321\n" for i in range(lines))


def test_an_output_flood_is_cut_and_the_report_says_so():
    print_loop = [nbformat.v4.new_output("stream", name="stdout", text=f"step {i}\n")
                  for i in range(5000)]  # a print per iteration: one output each
    cells = [nbformat.v4.new_code_cell("train()", execution_count=1, outputs=[
                 nbformat.v4.new_output("stream", name="stdout", text=flood(230_000))]),
             nbformat.v4.new_code_cell("loop()", execution_count=2, outputs=print_loop)]
    page = report(nbformat.v4.new_notebook(cells=cells))
    assert len(page) < 200_000, f"a 10 MB output made a {len(page):,}-byte report"
    assert "debug 0:" in page and "debug 229999:" in page, "the first and the last lines stay"
    assert "debug 100000:" not in page
    assert "the grader cut" in page and "Cut from this report" in page
    assert "step 0" in page and "step 4999" in page and "step 2500\n" not in page
    assert problems(page) == []


def test_a_huge_code_cell_is_cut_and_the_report_says_so():
    literal = "x = [\n" + "".join(f"    {i}, 'abcdefghijklmnopqrstuvwxyz{i}',\n" for i in range(30_000)) + "]\n"
    page = report(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(literal)]))
    assert len(page) < 400_000, f"{len(literal):,} characters of code made a {len(page):,}-byte report"
    assert "abcdefghijklmnopqrstuvwxyz0" in page and "the grader cut" in page


def test_unclosed_brackets_in_markdown_render_in_bounded_time():
    """"![" * 64000 took nbconvert's strip_files_prefix minutes (quadratic); cut to size and
    without that filter, the report is formatted, not the plain-text fallback."""
    page = report(nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("![" * 64000),
                                                  nbformat.v4.new_markdown_cell("# After")]))
    assert "could not be built" not in page
    assert "the grader cut the remaining" in page.lower() and ">After<" in page


def test_a_render_past_its_wall_gives_the_plain_text_report(monkeypatch):
    monkeypatch.setattr(notebook, "RENDER_WALL_S", 0.05)
    page = report(hostile_notebooks.benign())
    assert "could not be built (it took more than 0.05 s)" in page
    assert "The loss falls as training goes on." in page and problems(page) == []
    monkeypatch.setattr(notebook, "RENDER_WALL_S", 90)
    monkeypatch.setattr(notebook, "RENDER_MEMORY_MB", 40)
    page = report(hostile_notebooks.benign())
    assert "could not be built" in page and problems(page) == []


def test_no_path_of_the_graders_machine_reaches_a_report():
    import sys
    import sysconfig

    from grader import KIT_ROOT

    site = sysconfig.get_paths()["purelib"]
    scratch = "/tmp/two-layer-net-grade-abc123/tmpq9/scratch-notebook-xyz"
    text = (f"{site}/joblib/_multiprocessing_helpers.py:44: UserWarning: [Errno 13] Permission "
            f"denied.  joblib will operate in serial mode\nPython 3.11 at {sys.executable}\n"
            f"{KIT_ROOT}/helpers.py\n{scratch}/two_layer_net.py line 3\n")
    cells = [nbformat.v4.new_code_cell("x", execution_count=1, outputs=[
        nbformat.v4.new_output("stream", name="stderr", text=text),
        nbformat.v4.new_output("error", ename="E", evalue=f"in {KIT_ROOT}", traceback=[text])])]
    page = report(nbformat.v4.new_notebook(cells=cells), banner=f"stopped in {scratch}/x.py")
    for path in (site, sys.prefix, KIT_ROOT, "two-layer-net-grade-", os.path.dirname(sys.executable)):
        assert path not in page, path
    assert "joblib/_multiprocessing_helpers.py:44" in page and "./two_layer_net.py line 3" in page


def test_latex_in_markdown_is_mathml_without_scripts():
    page = report(nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(
        r"The gradient $\nabla_{W_2} L$ and $$L = \frac{1}{N}\sum_i \ell_i$$")]))
    scan = Scan(page)
    tags = [t for t, _, _ in scan.elements]
    assert tags.count("math") == 2 and "mfrac" in tags and "msub" in tags
    assert "$\\nabla" not in page and problems(page) == []


@pytest.mark.parametrize("meta, problem, says, never", [
    ({"failed_cells": []}, "importing two_layer_net.py raised SyntaxError in two_layer_net.py, line 3",
     "two_layer_net.py did not load (importing two_layer_net.py raised SyntaxError", "without errors"),
    ({"failed_cells": [{"cell": 4, "error": "NameError: x"}]}, "importing raised X",
     "1 cell(s) raised", "without errors"),
    ({"failed_cells": []}, "", "ran from top to bottom without errors", "did not load"),
])
def test_the_summary_says_when_the_module_did_not_load(meta, problem, says, never):
    said = notebook.summarise(meta, problem)
    assert says in said and never not in said


@pytest.mark.root
@pytest.mark.skipif(os.geteuid() != 0, reason="the render process drops root")
def test_the_render_process_as_nobody_gives_a_formatted_report(monkeypatch):
    """As root the render process runs as nobody; where nobody cannot read this Python (a
    private home folder), it runs again as the grader's user: a report either way."""
    monkeypatch.setattr(notebook, "_render_uid", lambda: notebook.RENDER_UID)
    monkeypatch.setattr(notebook, "_AS_NOBODY_FAILED", [])
    page = report(hostile_notebooks.benign())
    assert "could not be built" not in page and "<table>" in page


@pytest.mark.parametrize("minor", [4, 5])
def test_a_notebook_of_many_parts_is_cut_before_nbformat_reads_it(minor):
    """nbformat takes seconds per 10,000 cells or outputs, in the grader's process: the parts
    beyond what a report shows are cut from the JSON first, saying so."""
    import json

    def cell(i, outputs):
        c = {"cell_type": "code", "execution_count": 1, "metadata": {}, "source": f"x = {i}",
             "outputs": outputs}
        return {**c, "id": f"c{i}"} if minor == 5 else c

    prints = [{"output_type": "stream", "name": "stdout", "text": f"step {i}\n"} for i in range(50_000)]
    images = [{"output_type": "display_data", "metadata": {},
               "data": {"image/png": hostile_notebooks.FIGURE}} for _ in range(100)]
    raw = {"cells": [cell(0, prints), cell(1, images)] + [cell(i, []) for i in range(2, 3000)],
           "metadata": {}, "nbformat": 4, "nbformat_minor": minor}
    node = notebook.read_notebook(json.dumps(raw).encode())
    assert len(node.cells) == notebook.MAX_CELLS + 1 and "cut the remaining 2,500 cells" in node.cells[-1].source
    (joined,) = node.cells[0].outputs
    assert joined.text.startswith("step 0\n") and joined.text.endswith("step 49999\n")
    assert len(node.cells[1].outputs) == notebook.MAX_OUTPUTS + 1
    assert "cut the remaining 60 outputs" in node.cells[1].outputs[-1].text
