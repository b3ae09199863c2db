"""Notebook grading: the working folder a submission's notebook runs in, and its HTML report.

The notebook runs in a sandboxed child like every test group (see grader.worker and
child.run_notebook). The grader's process only reads back the executed notebook as JSON,
validates it, and builds the report in three steps: `make_inert` reduces the notebook to text,
raster images and SVG (shown in an <img>); nbconvert turns the cells into HTML, showing raw HTML
in markdown as text; grader.html_report sanitises that HTML and wraps it in a page whose
Content-Security-Policy forbids scripts and remote loads. Nothing a student wrote runs or loads
anything when a person opens the report. (nbconvert's own sanitize_html option also strips the
paragraphs and headings of markdown cells, jupyter/nbconvert#2016, which would garble the
written answers.)
"""
import functools
import html
import os
import re
import shutil
import threading

from grader import KIT_ROOT
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
        notebook = nbformat.reads(data.decode("utf-8"), as_version=4)
        nbformat.validate(notebook)
    except Exception as e:  # noqa: BLE001 -- nbformat raises many kinds on malformed input
        raise ValueError(f"not a valid notebook ({headline(e, str(e)[:200])})") from None
    return notebook


def make_inert(notebook):
    """Reduce `notebook`, in place, to what its report shows; returns it.

    Kept: cell sources (raw cells become markdown; to_html shows HTML in markdown as text),
    stream text, errors, and display outputs as text/plain, PNG, JPEG and SVG (which nbconvert
    shows as an <img>, where it cannot run). Dropped: the notebook's metadata (kernelspec, title,
    widget state), every cell's and output's metadata (image width and height, filenames, tags),
    attachments other than PNG and JPEG, and every other output type and mimetype.
    """
    import nbformat

    new_output = nbformat.v4.new_output
    notebook.metadata = nbformat.NotebookNode()
    for cell in notebook.cells:
        cell.metadata = nbformat.NotebookNode()
        if cell.cell_type in ("markdown", "raw"):
            cell.cell_type = "markdown"
            attachments = cell.get("attachments") or {}
            for name in list(attachments):
                bundle = {k: v for k, v in attachments[name].items()
                          if k in RASTER_MIMETYPES and isinstance(v, str)}
                if bundle:
                    attachments[name] = bundle
                else:
                    del attachments[name]
            cell.source = _unlink_missing_attachments(cell.source, attachments)
        outputs = []
        for output in cell.get("outputs", []):
            kind = output.get("output_type")
            if kind == "stream":
                name = "stderr" if output.get("name") == "stderr" else "stdout"
                outputs.append(new_output("stream", name=name, text=str(output.get("text", ""))))
            elif kind == "error":
                outputs.append(new_output(
                    "error", ename=str(output.get("ename", "")),
                    evalue=str(output.get("evalue", "")),
                    traceback=[str(line) for line in output.get("traceback", [])]))
            elif kind in ("display_data", "execute_result"):
                data = {k: v for k, v in (output.get("data") or {}).items()
                        if k in SAFE_MIMETYPES and isinstance(v, str)}
                extra = {"execution_count": output.get("execution_count")} \
                    if kind == "execute_result" else {}
                if data:
                    outputs.append(new_output(kind, data=data, **extra))
        if cell.cell_type == "code":
            cell.outputs = outputs
    return notebook


def _unlink_missing_attachments(source, attachments):
    """`source` with its `attachment:` links to names not in `attachments` renamed: nbconvert
    refuses to convert a cell with such a link."""
    def rename(match):
        return match.group() if match.group(1) in attachments else "missing-attachment:"

    return ATTACHMENT_LINK.sub(rename, source)


@functools.lru_cache(maxsize=1)
def _exporter():
    """The HTML exporter of every report, built once (it compiles its templates, a fifth of a
    second): the lab template's cells, with markdown whose raw HTML shows as text and whose
    javascript: and similar links go nowhere."""
    from jinja2 import DictLoader, pass_context
    from nbconvert import HTMLExporter
    from nbconvert.filters.markdown_mistune import IPythonRenderer, MarkdownWithMath

    class ReportExporter(HTMLExporter):
        @pass_context
        def markdown2html(self, context, source):
            renderer = IPythonRenderer(
                escape=True, allow_harmful_protocols=False,
                attachments=context.get("cell", {}).get("attachments", {}),
                anchor_link_text=self.anchor_link_text, **self.lexer_options)
            return MarkdownWithMath(renderer=renderer).render(source)

    loader = DictLoader({"report_cells.html.j2": CELLS_TEMPLATE})
    return ReportExporter(template_name="lab", extra_loaders=[loader],
                          template_file="report_cells.html.j2")


def cells_html(notebook):
    """nbconvert's HTML of `notebook`'s cells alone: no <head>, no scripts of the template's own
    (require.js, MathJax, widgets), nothing sanitised yet.

    nbconvert refuses a markdown image that names an attachment its cell lacks. make_inert
    renames such links; should one it missed remain, every markdown cell's `attachment:` links
    are renamed so that they stay links, to nothing.
    """
    from nbconvert.filters.markdown_mistune import InvalidNotebook

    with _EXPORTER_LOCK:  # batch threads share the exporter
        try:
            body, _ = _exporter().from_notebook_node(notebook)
        except InvalidNotebook:
            for cell in notebook.cells:
                if cell.cell_type == "markdown":
                    cell.source = cell.source.replace("attachment:", "missing-attachment:")
            body, _ = _exporter().from_notebook_node(notebook)
    return body


def to_html(notebook, banner, title="Notebook report"):
    """The report page: `banner` (plain text) at the top, then `notebook` made inert, converted
    by nbconvert and sanitised (see grader.html_report)."""
    from grader import html_report

    banner_html = ("<div class=\"grader-banner\"><p><strong>Grader:</strong> "
                   + html.escape(banner).replace("\n", "<br>") + "</p></div>\n")
    return html_report.page(title, banner_html + cells_html(make_inert(notebook)))


def summarise(meta):
    """One paragraph on how the execution went, from the child's meta."""
    failed = meta.get("failed_cells") or []
    problem = (meta.get("errors") or {}).get("notebook")
    if problem:
        return f"The notebook's execution stopped: {problem}"
    if failed:
        cells = ", ".join(f"cell {f['cell']} ({f['error']})" for f in failed[:5])
        more = f" and {len(failed) - 5} more" if len(failed) > 5 else ""
        return f"The notebook ran to the end, but {len(failed)} cell(s) raised: {cells}{more}."
    return "The notebook ran from top to bottom without errors."
