"""Notebook grading: the working folder a submission's notebook runs in, and its HTML report.

The notebook runs in a sandboxed child like every test group (see grader.worker and
child.run_notebook). The grader's process only reads back the executed notebook as JSON,
validates it, and converts it to HTML after `make_inert`: outputs keep only text and raster
images, and raw HTML in markdown is shown as text, so nothing a student wrote runs when a person
opens the report. (nbconvert's own sanitize_html option also strips the paragraphs and headings
of markdown cells, jupyter/nbconvert#2016, which would garble the written answers.)
"""
import html
import os
import shutil

from grader import KIT_ROOT

KIT_FILES = ["helpers.py", os.path.join("tests", "fixtures")]
MAX_NOTEBOOK_BYTES = 60 << 20
SAFE_MIMETYPES = {"text/plain", "image/png", "image/jpeg"}
EMPTY_NOTEBOOK = b'{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}'


def prepare_workdir(files, workdir, uid):
    """Fill `workdir` with the submission's files and the kit files its notebook imports.

    The submission's own helpers.py, if any, is replaced by the kit's: the notebook is graded
    against the helpers every student had. The folder and its files belong to `uid` (the
    notebook may write there); returns the notebook's path.
    """
    for name, data in files.items():
        with open(os.path.join(workdir, name), "wb") as f:
            f.write(data)
    for rel in KIT_FILES:
        source, target = os.path.join(KIT_ROOT, rel), os.path.join(workdir, rel)
        if os.path.isdir(source):
            shutil.copytree(source, target)
        else:
            shutil.copyfile(source, target)
    for root, dirs, names in os.walk(workdir):
        os.chmod(root, 0o755)
        for name in names:
            os.chmod(os.path.join(root, name), 0o644)
        if uid is not None:
            os.chown(root, uid, uid)
            for name in names:
                os.chown(os.path.join(root, name), uid, uid)
    return os.path.join(workdir, "two_layer_net.ipynb")


def read_notebook(data):
    """A notebook node from bytes a child returned; ValueError when it is not a valid notebook."""
    import nbformat

    if len(data) > MAX_NOTEBOOK_BYTES:
        raise ValueError(f"the executed notebook has more than {MAX_NOTEBOOK_BYTES >> 20} MB")
    try:
        notebook = nbformat.reads(data.decode("utf-8"), as_version=4)
        nbformat.validate(notebook)
    except Exception as e:  # nbformat raises many kinds on malformed input
        raise ValueError(f"not a valid notebook ({type(e).__name__}: {str(e)[:200]})") from None
    return notebook


def make_inert(notebook):
    """Strip what could run in a browser: rich outputs other than text and raster images, raw
    HTML in markdown and raw cells, attachments other than raster images, widget state."""
    notebook.metadata.pop("widgets", None)
    for cell in notebook.cells:
        if cell.cell_type in ("markdown", "raw"):
            cell.source = html.escape(cell.source, quote=False)
            cell.cell_type = "markdown"
            attachments = cell.get("attachments") or {}
            for name in list(attachments):
                attachments[name] = {k: v for k, v in attachments[name].items()
                                     if k in SAFE_MIMETYPES}
        for output in cell.get("outputs", []):
            if "data" in output:
                output["data"] = {k: v for k, v in output["data"].items() if k in SAFE_MIMETYPES}
    return notebook


def to_html(notebook, banner):
    """HTML of `notebook` made inert, with `banner` (plain text) at the top."""
    import nbformat
    from nbconvert import HTMLExporter

    notebook = make_inert(notebook)
    notebook.cells.insert(0, nbformat.v4.new_markdown_cell(
        "**Grader:** " + html.escape(banner, quote=False).replace("\n", "  \n")))
    body, _ = HTMLExporter().from_notebook_node(notebook)
    return body


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
