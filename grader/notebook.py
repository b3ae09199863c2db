"""Notebook grading: the working folder a submission's notebook runs in, and its HTML report.

The notebook runs in a sandboxed child like every test group (see grader.worker and
child.run_notebook). The grader's process only reads back the executed notebook as JSON,
validates it, and builds the report in three steps: `make_inert` reduces the notebook to text,
raster images and SVG (shown in an <img>), cut to size (each text, image, cell count and the
report as a whole, saying what was cut) and without the grader machine's paths; then, in the
render process behind a time and memory wall (grader.render, started by `render_in_wall`),
nbconvert turns the cells into HTML, showing raw HTML in markdown as text and LaTeX as MathML,
and grader.html_report sanitises that HTML and wraps it in a page whose
Content-Security-Policy forbids scripts and remote loads. Nothing a student wrote runs or loads
anything when a person opens the report, and nothing a student wrote costs the grader's own
process more than time and memory linear in the (capped) notebook's size. (nbconvert's own sanitize_html option also strips the
paragraphs and headings of markdown cells, jupyter/nbconvert#2016, which would garble the
written answers.)
"""
import functools
import html
import json
import os
import re
import shutil
import signal
import sys
import threading

from grader import KIT_ROOT, cells
from grader.kitfiles import NOTEBOOK_SUPPORT, kit_files
from helpers_lib.errors import headline

KERNEL = "python3"  # Jupyter resolves it to the Python that runs the client, where ipykernel is
MAX_NOTEBOOK_BYTES = 60 << 20
RASTER_MIMETYPES = {"image/png", "image/jpeg"}
SAFE_MIMETYPES = {"text/plain", "image/svg+xml"} | RASTER_MIMETYPES
# The lab template's cells without its page: header and footer (scripts, widget state) left out.
CELLS_TEMPLATE = "{%- extends 'lab/base.html.j2' -%}\n{% block footer %}{% endblock footer %}\n"
# An attachment link as nbconvert reads it (the name ends at a space or a parenthesis); only
# the name matters, to find the links whose attachment the cell lacks.
ATTACHMENT_LINK = re.compile(r"attachment:([^\s()]*)")
_EXPORTER_LOCK = threading.Lock()
# What a report shows at most (make_inert's Cutter); the kit's own notebook is far below each.
MAX_CELLS = 500
MAX_OUTPUTS = 40  # a cell's outputs, after consecutive streams are merged
MARKDOWN_CHARS = 16_000  # a markdown cell, or a written answer
CODE_CHARS, CODE_LINES = 40_000, 600  # a code cell's source
OUTPUT_CHARS, OUTPUT_LINES = 20_000, 200  # one output's text
IMAGE_CHARS = 4 << 20  # one image, base64
REPORT_CHARS = 3 << 20  # all the text of a report
REPORT_IMAGE_CHARS = 24 << 20  # all its images
# The render process's wall (grader.render): seconds of CPU, address space, seconds of wall clock.
RENDER_CPU_S, RENDER_MEMORY_MB, RENDER_WALL_S = 60, 2048, 90
EMPTY_NOTEBOOK = b'{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}'


def prepare_workdir(files, workdir, uid):
    """Fill `workdir` with the submission's files and the kit files its notebook imports.

    The submission's own helpers.py, if any, is replaced by the kit's (with helpers_lib/ and
    the fixtures, grader.kitfiles.NOTEBOOK_SUPPORT): the notebook is graded against the helpers
    every student had. The folder and its files belong to `uid` (the
    notebook may write there); returns the notebook's path.
    """
    for name, data in files.items():
        with open(os.path.join(workdir, name), "wb") as f:
            f.write(data)
    for rel in kit_files(NOTEBOOK_SUPPORT):
        target = os.path.join(workdir, rel)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copyfile(os.path.join(KIT_ROOT, rel), target)
    for root, _, names in os.walk(workdir):
        os.chmod(root, 0o755)
        for name in names:
            os.chmod(os.path.join(root, name), 0o644)
        if uid is not None:
            os.chown(root, uid, uid)
            for name in names:
                os.chown(os.path.join(root, name), uid, uid)
    return os.path.join(workdir, "two_layer_net.ipynb")


def client(notebook, *, cwd, timeout, allow_errors=False, coalesce_streams=False,
           over_ipc=False):
    """An nbclient NotebookClient whose `execute()` runs every cell of `notebook` (a node,
    filled in place) in a fresh python3 kernel with `cwd` as its working folder; `timeout`:
    seconds a cell may run. main.py and the grader's child (child.run_notebook) both run
    notebooks through here.

    allow_errors: a cell that raises keeps its error as its output and the next cells run;
    otherwise nbclient's CellExecutionError stops the run. coalesce_streams: merge consecutive
    stream outputs of a cell. over_ipc: the kernel talks over Unix sockets in `cwd`, not TCP
    (a grading child's network namespace has no interface up).
    """
    from nbclient import NotebookClient

    if over_ipc:
        from jupyter_client import AsyncKernelManager

        kernel = {"km": AsyncKernelManager(kernel_name=KERNEL, transport="ipc",
                                           ip=os.path.join(cwd, ".kernel"))}
    else:
        kernel = {"kernel_name": KERNEL}
    return NotebookClient(notebook, timeout=timeout, allow_errors=allow_errors,
                          coalesce_streams=coalesce_streams,
                          resources={"metadata": {"path": cwd}}, **kernel)


def read_notebook(data):
    """A notebook node from bytes a child returned; ValueError when it is not a valid notebook."""
    import nbformat

    if len(data) > MAX_NOTEBOOK_BYTES:
        raise ValueError(f"the executed notebook has more than {MAX_NOTEBOOK_BYTES >> 20} MB")
    try:
        raw = _fewer_parts(json.loads(data.decode("utf-8")))
        notebook = nbformat.reads(json.dumps(raw), as_version=4)
        nbformat.validate(notebook)
    except Exception as e:  # noqa: BLE001 -- nbformat raises many kinds on malformed input
        raise ValueError(f"not a valid notebook ({headline(e, str(e)[:200])})") from None
    return notebook


def _fewer_parts(raw):
    """The notebook's JSON with at most MAX_CELLS cells and MAX_OUTPUTS outputs a cell (after
    consecutive stream outputs are joined), each cut said in its place: nbformat's reading and
    validation take seconds per 10,000 parts, in the grader's process, before make_inert."""
    cells = raw.get("cells") if isinstance(raw, dict) else None
    if not isinstance(cells, list):
        return raw
    if len(cells) > MAX_CELLS:
        note = {"cell_type": "markdown", "metadata": {},
                "source": f"*[The grader cut the remaining {len(cells) - MAX_CELLS:,} cells: a "
                          f"report shows at most {MAX_CELLS}.]*"}
        if isinstance(cells[0], dict) and "id" in cells[0]:  # nbformat 4.5 and later
            note["id"] = "grader-cut-cells"
        raw["cells"] = cells = cells[:MAX_CELLS] + [note]
    for cell in cells:
        outputs = cell.get("outputs") if isinstance(cell, dict) else None
        if not isinstance(outputs, list) or len(outputs) <= MAX_OUTPUTS:
            continue
        joined = []
        for output in outputs:
            if (isinstance(output, dict) and output.get("output_type") == "stream" and joined
                    and joined[-1].get("output_type") == "stream"
                    and joined[-1].get("name") == output.get("name")):
                text = output.get("text", "")
                joined[-1]["text"].append("".join(text) if isinstance(text, list) else str(text))
                continue
            if isinstance(output, dict) and output.get("output_type") == "stream":
                text = output.get("text", "")
                output = {**output, "text": ["".join(text) if isinstance(text, list) else str(text)]}
            joined.append(output)
        for output in joined:
            if isinstance(output, dict) and output.get("output_type") == "stream":
                output["text"] = "".join(output["text"])
        if len(joined) > MAX_OUTPUTS:
            joined = joined[:MAX_OUTPUTS] + [{"output_type": "stream", "name": "stdout", "text": (
                f"[The grader cut the remaining {len(joined) - MAX_OUTPUTS:,} outputs of this "
                f"cell: a report shows at most {MAX_OUTPUTS} a cell.]")}]
        cell["outputs"] = joined
    return raw


def make_inert(notebook, cuts=None):
    """Reduce `notebook`, in place, to what its report shows; returns it.

    Kept: cell sources (raw cells become markdown; to_html shows HTML in markdown as text),
    stream text, errors, and display outputs as text/plain, PNG, JPEG and SVG (which nbconvert
    shows as an <img>, where it cannot run). Dropped: the notebook's metadata (kernelspec, title,
    widget state), every cell's and output's metadata (image width and height, filenames, tags),
    attachments other than PNG and JPEG, and every other output type and mimetype.

    Cut to size (see Cutter): each source, output and image, the number of cells and of outputs
    a cell shows (consecutive stream outputs merged first), and the report as a whole; what was
    cut is said where it was cut and, one line each, appended to `cuts`. Paths of the grader's
    machine in outputs (its Python, the kit, the run folder) are replaced by a placeholder.
    """
    import nbformat

    cutter = Cutter(cuts if cuts is not None else [])
    new_output = nbformat.v4.new_output
    notebook.metadata = nbformat.NotebookNode()
    if len(notebook.cells) > MAX_CELLS:
        cutter.note(f"cells {MAX_CELLS + 1} to {len(notebook.cells)}: the report shows the first "
                    f"{MAX_CELLS} cells")
        notebook.cells = notebook.cells[:MAX_CELLS] + [nbformat.v4.new_markdown_cell(
            f"*[The grader cut the remaining {len(notebook.cells) - MAX_CELLS:,} cells: a report "
            f"shows at most {MAX_CELLS}.]*")]
    for index, cell in enumerate(notebook.cells):
        where = f"cell {index}"
        cell.metadata = nbformat.NotebookNode()
        if cell.cell_type in ("markdown", "raw"):
            cell.cell_type = "markdown"
            attachments = cell.get("attachments") or {}
            for name in list(attachments):
                bundle = {k: cutter.image(v, f"{where}, attachment") for k, v in attachments[name].items()
                          if k in RASTER_MIMETYPES and isinstance(v, str)}
                bundle = {k: v for k, v in bundle.items() if v}
                if bundle:
                    attachments[name] = bundle
                else:
                    del attachments[name]
            source = cutter.markdown(str(cell.source), where)
            cell.source = _unlink_missing_attachments(source, attachments)
            continue
        cell.source = cutter.text(redact(str(cell.source)), f"{where}, code", CODE_CHARS,
                                  CODE_LINES, comment="# ")
        if cell.cell_type != "code":
            continue
        outputs = []
        for output in _merged_streams(cell.get("outputs", [])):
            kind = output.get("output_type")
            what = f"{where}, output {len(outputs) + 1}"
            if kind == "stream":
                name = "stderr" if output.get("name") == "stderr" else "stdout"
                text = cutter.text(redact(output["text"]), what, OUTPUT_CHARS, OUTPUT_LINES)
                outputs.append(new_output("stream", name=name, text=text))
            elif kind == "error":
                traceback = redact("\n".join(str(line) for line in output.get("traceback", [])))
                outputs.append(new_output(
                    "error", ename=cutter.text(str(output.get("ename", "")), what, 200, 1),
                    evalue=cutter.text(redact(str(output.get("evalue", ""))), what, OUTPUT_CHARS, 40),
                    traceback=cutter.text(traceback, what, OUTPUT_CHARS, OUTPUT_LINES).split("\n")))
            elif kind in ("display_data", "execute_result"):
                data = {}
                for mime, value in (output.get("data") or {}).items():
                    if mime not in SAFE_MIMETYPES or not isinstance(value, str):
                        continue
                    if mime == "text/plain":
                        data[mime] = cutter.text(redact(value), what, OUTPUT_CHARS, OUTPUT_LINES)
                    elif cutter.image(value, what):
                        data[mime] = value
                extra = {"execution_count": output.get("execution_count")} \
                    if kind == "execute_result" else {}
                if data:
                    outputs.append(new_output(kind, data=data, **extra))
        if len(outputs) > MAX_OUTPUTS:
            cutter.note(f"{where}: {len(outputs):,} outputs, the report shows the first {MAX_OUTPUTS}")
            outputs = outputs[:MAX_OUTPUTS] + [new_output("stream", name="stdout", text=(
                f"[The grader cut the remaining {len(outputs) - MAX_OUTPUTS:,} outputs of this "
                f"cell: a report shows at most {MAX_OUTPUTS} a cell.]"))]
        cell.outputs = outputs
    return notebook


def _merged_streams(outputs):
    """The outputs with consecutive stream outputs of one name joined (a print loop's lines)."""
    merged = []
    for output in outputs:
        if not isinstance(output, dict):
            continue
        if (output.get("output_type") == "stream" and merged
                and merged[-1].get("output_type") == "stream"
                and merged[-1]["name"] == output.get("name")):
            merged[-1]["parts"].append(str(output.get("text", "")))
            continue
        if output.get("output_type") == "stream":
            output = {"output_type": "stream", "name": output.get("name"),
                      "parts": [str(output.get("text", ""))]}
        merged.append(output)
    for output in merged:
        if output.get("output_type") == "stream":
            output["text"] = "".join(output.pop("parts"))
    return merged


class Cutter:
    """Cuts what a report shows to size, and keeps a line for each cut.

    Each text keeps its first lines and its last ones, with a line saying what was cut between
    them; a markdown cell keeps its beginning. All the text of a report shares REPORT_CHARS and
    all its images REPORT_IMAGE_CHARS: past them, what remains is replaced by a line saying so.
    """

    def __init__(self, cuts):
        self.cuts = cuts
        self.chars_left = REPORT_CHARS
        self.image_chars_left = REPORT_IMAGE_CHARS

    def note(self, line):
        self.cuts.append(line)

    def text(self, text, what, max_chars, max_lines, comment=""):
        budget = min(max_chars, max(self.chars_left, 0))
        lines = text.splitlines(keepends=True)
        if len(text) <= budget and len(lines) <= max_lines:
            self.chars_left -= len(text)
            return text
        if budget < 200:
            self.note(f"{what}: {len(text):,} characters (the report was full)")
            return f"{comment}[The grader cut all {len(text):,} characters here: the report is full.]\n"
        head_lines = max(max_lines * 3 // 4, 1)
        tail_lines = max(max_lines - head_lines, 0)
        head = "".join(lines[:head_lines])[:budget * 3 // 4]
        tail = "".join(lines[len(lines) - tail_lines:])[-(budget // 4):] if tail_lines else ""
        if len(lines) <= head_lines:
            tail = ""
        cut = len(text) - len(head) - len(tail)
        self.chars_left -= len(head) + len(tail)
        self.note(f"{what}: {len(text):,} characters in {len(lines):,} lines, of which "
                  f"{cut:,} characters are not shown")
        if head and not head.endswith("\n"):
            head += "\n"
        return (f"{head}{comment}[... the grader cut {cut:,} characters here: a report shows at "
                f"most {max_lines:,} lines and {max_chars:,} characters of each text ...]\n{tail}")

    def markdown(self, source, what):
        budget = min(MARKDOWN_CHARS, max(self.chars_left, 0))
        if len(source) <= budget:
            self.chars_left -= len(source)
            return source
        self.chars_left -= budget
        self.note(f"{what}, markdown: {len(source):,} characters, of which the first {budget:,} "
                  "are shown")
        return (source[:budget] + f"\n\n*[The grader cut the remaining {len(source) - budget:,} "
                f"characters of this cell: a report shows at most {MARKDOWN_CHARS:,} of a "
                "markdown cell.]*\n")

    def image(self, data, what):
        """`data` when it fits, else '' (and a line in the cuts)."""
        if len(data) > IMAGE_CHARS or len(data) > self.image_chars_left:
            self.note(f"{what}: an image of {len(data) * 3 // 4:,} bytes, not shown (at most "
                      f"{IMAGE_CHARS * 3 // 4 >> 20} MB an image, {REPORT_IMAGE_CHARS * 3 // 4 >> 20} "
                      "MB a report)")
            return ""
        self.image_chars_left -= len(data)
        return data


def machine_paths():
    """[(path, placeholder)] of the grader's machine, longest first: its Python, the kit, the
    run folders, the home folder."""
    import sysconfig

    found = {}
    for key in ("purelib", "platlib", "stdlib", "platstdlib"):
        path = sysconfig.get_paths().get(key)
        if path:
            found[path] = "<python-lib>"
    for path in (sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.dirname(sys.executable)):
        found.setdefault(path, "<python>")
    found[KIT_ROOT] = "<kit>"
    home = os.path.expanduser("~")
    if home not in ("/", "") and len(home) > 1:
        found.setdefault(home, "<home>")
    return sorted(((p, r) for p, r in found.items() if p and len(p) > 1),
                  key=lambda item: -len(item[0]))


RUN_FOLDER_MARK = "/two-layer-net-grade-"  # grader.batch.Grader.run_root's name
RUN_FOLDER_REST = re.compile(r"[A-Za-z0-9_]+")
NOTEBOOK_FOLDER_REST = re.compile(r"/[^\s'\"/]{1,64}/scratch-notebook-[A-Za-z0-9_]+")
PATH_STOP = " \t\r\n'\"(=:"


def redact(text):
    """`text` without the grader machine's paths: the notebook's own folder becomes `.`, the
    rest of the batch's run folder `<grader-run>`, the grader's Python `<python>` (its
    libraries `<python-lib>`), the kit `<kit>`, the home folder `<home>`: a student or TA
    reads no instructor's path. Time linear in the text's length."""
    parts, pos = [], 0
    while True:
        found = text.find(RUN_FOLDER_MARK, pos)
        if found < 0:
            break
        start = found
        while start > pos and text[start - 1] not in PATH_STOP:
            start -= 1
        end = found + len(RUN_FOLDER_MARK)
        name = RUN_FOLDER_REST.match(text, end)
        end = name.end() if name else end
        inner = NOTEBOOK_FOLDER_REST.match(text, end)
        parts += [text[pos:start], "." if inner else "<grader-run>"]
        pos = inner.end() if inner else end
    text = "".join(parts) + text[pos:]
    for path, placeholder in _machine_paths():
        if path in text:
            text = text.replace(path, placeholder)
    return text


@functools.lru_cache(maxsize=1)
def _machine_paths():
    return machine_paths()


def _unlink_missing_attachments(source, attachments):
    """`source` with its `attachment:` links to names not in `attachments` renamed: nbconvert
    refuses to convert a cell with such a link."""
    def rename(match):
        return match.group() if match.group(1) in attachments else "missing-attachment:"

    return ATTACHMENT_LINK.sub(rename, source)


class RenderError(RuntimeError):
    """The render process ran out of time or memory (`by_limit`), or failed; the message says
    which."""

    def __init__(self, message, by_limit=False):
        super().__init__(message)
        self.by_limit = by_limit


def markdown_html(source, attachments=None, anchor_link_text="¶", **lexer_options):
    """One markdown text as HTML (not yet sanitised): raw HTML shown as text, javascript: and
    similar links going nowhere, and LaTeX ($...$, $$...$$, \\begin{...}) as MathML, which a
    page shows without running a script (latex2mathml; what it cannot parse stays as text)."""
    from nbconvert.filters.markdown_mistune import IPythonRenderer, MarkdownWithMath

    class Renderer(IPythonRenderer):
        def block_math(self, body):
            return _mathml(body, "block") or super().block_math(body)

        def inline_math(self, body):
            return _mathml(body, "inline") or super().inline_math(body)

        def latex_environment(self, name, body):
            return (_mathml(f"\\begin{{{name}}}{body}\\end{{{name}}}", "block")
                    or super().latex_environment(name, body))

    renderer = Renderer(escape=True, allow_harmful_protocols=False, attachments=attachments or {},
                        anchor_link_text=anchor_link_text, **lexer_options)
    return MarkdownWithMath(renderer=renderer).render(source)


def _mathml(latex, display):
    """MathML of `latex`, or None when latex2mathml cannot read it (then it stays text)."""
    from latex2mathml.converter import convert

    try:
        markup = convert(latex, display=display)
    except Exception:  # noqa: BLE001 -- its parser raises many kinds on what it does not know
        return None
    # latex2mathml leaves the text of \text{...} unescaped: keep its own MathML tags and make
    # every other < and > text, so no LaTeX becomes HTML (the sanitiser is the second wall).
    return "".join(part if MATHML_TAG.fullmatch(part) else part.replace("<", "&lt;").replace(">", "&gt;")
                   for part in MATHML_PART.split(markup))


MATHML_TAG = re.compile(r"</?(math|m[a-z]{1,12}|none)(\s[^<>]*)?/?>")
MATHML_PART = re.compile(r"(</?(?:math|m[a-z]{1,12}|none)(?:\s[^<>]*)?/?>)")


@functools.lru_cache(maxsize=1)
def _exporter():
    """The HTML exporter of every report, built once (it compiles its templates, a fifth of a
    second): the lab template's cells, with markdown by markdown_html. The template's
    strip_files_prefix filter is left out: its regular expression takes quadratic time on
    unclosed brackets (`![` * 32000: half a minute), and a report loads no files anyway."""
    from jinja2 import DictLoader, pass_context
    from nbconvert import HTMLExporter

    class ReportExporter(HTMLExporter):
        @pass_context
        def markdown2html(self, context, source):
            return markdown_html(source, context.get("cell", {}).get("attachments", {}),
                                 self.anchor_link_text, **self.lexer_options)

        def default_filters(self):
            for name, function in super().default_filters():
                yield name, (_unchanged if name == "strip_files_prefix" else function)

    loader = DictLoader({"report_cells.html.j2": CELLS_TEMPLATE})
    return ReportExporter(template_name="lab", extra_loaders=[loader],
                          template_file="report_cells.html.j2")


def _unchanged(text):
    return text


def cells_html(notebook):
    """nbconvert's HTML of `notebook`'s cells alone: no <head>, no scripts of the template's own
    (require.js, MathJax, widgets), nothing sanitised yet. Runs in the render process.

    nbconvert refuses a markdown image that names an attachment its cell lacks. make_inert
    renames such links; should one it missed remain, every markdown cell's `attachment:` links
    are renamed so that they stay links, to nothing.
    """
    from nbconvert.filters.markdown_mistune import InvalidNotebook

    with _EXPORTER_LOCK:
        try:
            body, _ = _exporter().from_notebook_node(notebook)
        except InvalidNotebook:
            for cell in notebook.cells:
                if cell.cell_type == "markdown":
                    cell.source = cell.source.replace("attachment:", "missing-attachment:")
            body, _ = _exporter().from_notebook_node(notebook)
    return body


def banner_html(banner):
    return ("<div class=\"grader-banner\"><p><strong>Grader:</strong> "
            + html.escape(banner).replace("\n", "<br>") + "</p></div>\n")


def page_html(notebook, banner, title):
    """The report page of an inert notebook (see to_html). Runs in the render process."""
    from grader import html_report

    return html_report.page(title, banner_html(banner) + cells_html(notebook))


def to_html(notebook, banner, title="Notebook report"):
    """The report page: `banner` (plain text) at the top, then `notebook` made inert and cut to
    size, converted by nbconvert and sanitised (see grader.html_report) in the render process
    (grader.render). Should that run out of time or memory, the page shows the same cells as
    plain text, and the banner says why."""
    import nbformat

    cuts = []
    make_inert(notebook, cuts)
    banner = redact(banner)
    if cuts:
        banner += ("\nCut from this report (too large to show): " + "; ".join(cuts[:8])
                   + (f"; and {len(cuts) - 8} more" if len(cuts) > 8 else "") + ".")
    request = {"kind": "notebook", "notebook": nbformat.from_dict(notebook), "banner": banner,
               "title": title}
    try:
        return render_in_wall(request)
    except RenderError as e:
        banner += f"\nThe formatted report could not be built ({e}); the cells are shown as text."
        return plain_html(notebook, banner, title)


def render_markdown(texts, fallback=True):
    """Sanitised HTML for each markdown text (written answers), rendered in the render process;
    each text cut to MARKDOWN_CHARS first. Should the render fail, each text is shown as text
    (or, without `fallback`, RenderError is raised)."""
    cutter = Cutter([])
    cutter.chars_left = float("inf")
    texts = [cutter.markdown(text, "answer") for text in texts]
    if not texts:
        return []
    try:
        rendered = json.loads(render_in_wall({"kind": "markdown", "texts": texts}))
        if isinstance(rendered, list) and len(rendered) == len(texts):
            return [str(fragment) for fragment in rendered]
        raise RenderError("it returned something else")
    except (RenderError, ValueError) as e:
        if not fallback:
            raise RenderError(str(e)) from None
        return [f"<p><em>(shown as text: the formatted answer could not be built: "
                f"{html.escape(str(e))})</em></p><pre>{html.escape(text)}</pre>" for text in texts]


def render_in_wall(request):
    """Run one request (see grader.render) in a fresh process capped at RENDER_CPU_S of CPU and
    RENDER_MEMORY_MB of address space, killed after RENDER_WALL_S; its stdout as text.

    As root it runs as nobody (_render_uid); should that fail other than by a limit (a file
    nobody may read after all), it runs again, and from then on, as the grader's user."""
    uid = _render_uid()
    if uid is None or _AS_NOBODY_FAILED:
        return _render_once(request, None)
    try:
        return _render_once(request, uid)
    except RenderError as e:
        if e.by_limit:
            raise
        _AS_NOBODY_FAILED.append(str(e))
        return _render_once(request, None)


_AS_NOBODY_FAILED = []


def _render_once(request, uid):
    import subprocess

    command = [sys.executable, "-m", "grader.render", "--cpu", str(RENDER_CPU_S),
               "--memory", str(RENDER_MEMORY_MB)]
    if uid is not None:
        command += ["--uid", str(uid)]
    env = {"LANG": "C.UTF-8", "PYTHONPATH": KIT_ROOT, "PATH": "/usr/bin:/bin",
           "PYTHONDONTWRITEBYTECODE": "1", "OMP_NUM_THREADS": "1"}
    data = json.dumps(request).encode("utf-8")
    process = subprocess.Popen(command, cwd=KIT_ROOT, env=env, stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               start_new_session=True)
    try:
        out, err = process.communicate(data, timeout=RENDER_WALL_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise RenderError(f"it took more than {RENDER_WALL_S} s", by_limit=True) from None
    except BaseException:
        process.kill()
        process.wait()
        raise
    if process.returncode == 0:
        return out.decode("utf-8", "replace")
    if process.returncode in (-signal.SIGXCPU, -signal.SIGKILL):
        raise RenderError(f"it used more than {RENDER_CPU_S} s of CPU time", by_limit=True)
    if process.returncode == 3 or b"MemoryError" in err:
        raise RenderError(f"it needed more than {RENDER_MEMORY_MB} MB of memory", by_limit=True)
    last = err.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no message"]
    raise RenderError(f"the render process failed: {redact(last[0])[:200]}")


RENDER_UID = 65534  # nobody: as root, the render process runs as nobody where it can


@functools.lru_cache(maxsize=1)
def _render_uid():
    """The uid the render process runs as: RENDER_UID when the grader runs as root and nobody
    can read the kit and this Python; else None (the grader's own user)."""
    from grader import sandbox

    if os.geteuid() != 0:
        return None
    needed = [KIT_ROOT, os.path.dirname(os.path.realpath(sys.executable)), *sandbox.python_paths()]
    return RENDER_UID if all(sandbox.world_readable(p) for p in needed if os.path.exists(p)) else None


def plain_html(notebook, banner, title):
    """The report of an inert notebook as escaped text only, in time linear in its size: each
    cell's source and the text of its outputs in <pre>, no markdown, no images."""
    from grader import html_report

    parts = [banner_html(banner)]
    for index, cell in enumerate(notebook.cells):
        parts.append(f"<h4>Cell {index} ({html.escape(cell.cell_type)})</h4>"
                     f"<pre>{html.escape(str(cell.source))}</pre>")
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream":
                text = output.get("text", "")
            elif output.get("output_type") == "error":
                text = "\n".join(output.get("traceback", [])) or output.get("evalue", "")
            else:
                text = (output.get("data") or {}).get("text/plain", "[an image]")
            parts.append(f"<pre>{html.escape(ANSI_ESCAPE.sub('', str(text)))}</pre>")
    return html_report.page(title, "".join(parts))


ANSI_ESCAPE = re.compile(r"\x1b(\[[0-9;?]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)?)")


def failing_checks(notebook):
    """The check cells (tagged `check`, see grader.cells) whose printed output has a FAIL line,
    numbered as the child numbers the cells that raised (their index). The kit's check cells
    print `label: value (should be < threshold): PASS` or `... FAIL` (helpers_lib.notebook's
    CheckResult), and `label: FAIL: why` when the value could not be computed."""
    found = []
    for index, cell in enumerate(notebook.get("cells", [])):
        if cell.get("cell_type") != "code" or cells.CHECK_TAG not in cells.tags(cell):
            continue
        printed = "".join(cells.source({"source": o.get("text", "")})
                          for o in cell.get("outputs", []) if o.get("output_type") == "stream")
        if any(cells.CHECK_FAIL.search(line) for line in printed.splitlines()):
            found.append(index)
    return found



def summarise(meta, module_problem=None, failing=()):
    """One paragraph on how the execution went, from the child's meta; `module_problem`: why
    two_layer_net.py could not be imported by the tests (then no cell that uses it worked, even
    where the notebook's own checks caught the error and no cell raised); `failing`: the check
    cells that printed FAIL (failing_checks): a notebook that ran without an error is still
    not clean when its own checks failed."""
    failed = meta.get("failed_cells") or []
    problem = (meta.get("errors") or {}).get("notebook")
    checks = ""
    if failing:
        shown = ", ".join(str(c) for c in failing[:8])
        more = f" and {len(failing) - 8} more" if len(failing) > 8 else ""
        checks = (f"{len(failing)} check cell{'s' if len(failing) > 1 else ''} printed FAIL "
                  f"(cell{'s' if len(failing) > 1 else ''} {shown}{more})")
    if problem:
        said = f"The notebook's execution stopped: {redact(problem)}"
    elif failed:
        cells = ", ".join(f"cell {f['cell']} ({redact(f['error'])})" for f in failed[:5])
        more = f" and {len(failed) - 5} more" if len(failed) > 5 else ""
        said = f"The notebook ran to the end, but {len(failed)} cell(s) raised: {cells}{more}."
    elif checks and not module_problem:
        return (f"The notebook ran to the end without an error, but {checks}: see those cells "
                "in the report.")
    elif not module_problem:
        return "The notebook ran from top to bottom without errors."
    else:
        said = "The notebook ran to the end."
    if checks:
        said += f" {checks[0].upper()}{checks[1:]}."
    if module_problem:
        said += (f" two_layer_net.py did not load ({redact(module_problem)}), so no cell that "
                 "uses it could compute anything: the cells show that error, not results.")
    return said
