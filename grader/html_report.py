"""HTML pages built from what students wrote, safe to open in an instructor's browser.

Two walls. `sanitise` keeps an allow-list of tags and attributes (text, headings, lists, tables,
code with pygments classes, links to http/https/mailto and in-page anchors, images only as inline
data: PNG, JPEG or SVG in an <img>, MathML's presentation elements for rendered LaTeX); nothing
that runs, nothing that loads, no style attributes.
`page` puts a sanitised body in a document whose Content-Security-Policy forbids scripts, frames,
forms and every load except data: images, and allows only the page's own stylesheet (by its
hash), so that a hole in the first wall still runs and loads nothing.
"""
import base64
import functools
import hashlib
import html
import re

import nh3

TAGS = {
    "a", "abbr", "b", "blockquote", "br", "caption", "code", "col", "colgroup", "dd", "del",
    "div", "dl", "dt", "em", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "kbd", "li",
    "ol", "p", "pre", "s", "samp", "span", "strong", "sub", "sup", "table", "tbody", "td",
    "tfoot", "th", "thead", "tr", "u", "ul", "var",
}
# MathML, as grader.notebook renders LaTeX (latex2mathml): presentation elements only, none that
# links (href), switches (maction) or embeds other markup (semantics, annotation-xml).
MATH_TAGS = {
    "math", "mrow", "mi", "mn", "mo", "ms", "mspace", "mtext", "msub", "msup", "msubsup",
    "munder", "mover", "munderover", "mfrac", "msqrt", "mroot", "mstyle", "merror", "mpadded",
    "mphantom", "menclose", "mtable", "mtr", "mtd", "mmultiscripts", "mprescripts", "none",
}
MATH_ATTRIBUTES = {
    "display", "mathvariant", "stretchy", "fence", "separator", "accent", "accentunder",
    "lspace", "rspace", "linethickness", "columnalign", "rowalign", "rowspacing",
    "columnspacing", "columnlines", "rowlines", "frame", "notation", "width", "height", "depth",
    "minsize", "maxsize", "movablelimits", "symmetric", "form", "scriptlevel", "displaystyle",
    "largeop", "columnspan", "rowspan",
}
MATH_VALUE = re.compile(r"[A-Za-z0-9 .%+-]{0,64}")
# Removed with everything inside them (other tags outside TAGS lose the tag and keep the text).
DROP_WITH_CONTENT = {
    "script", "style", "title", "textarea", "noscript", "template", "iframe", "frameset",
    "object", "embed", "applet", "svg", "xmp", "noembed", "noframes", "plaintext",
    "select", "button", "video", "audio", "canvas",
}
ATTRIBUTES = {
    "*": {"class"},
    "a": {"href"},
    "img": {"src", "alt"},
    **{f"h{level}": {"id"} for level in range(1, 7)},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan"},
    "ol": {"start"},
    **{tag: MATH_ATTRIBUTES for tag in MATH_TAGS},
}
LINK_REL = "noopener noreferrer nofollow"
CLASS_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")
LINK = re.compile(r"(https?://|mailto:|#)\S*", re.IGNORECASE)
IMAGE_DATA_URL = re.compile(r"data:image/(png|jpeg|svg\+xml);base64,[A-Za-z0-9+/=\s]*")
SMALL_NUMBER = re.compile(r"[0-9]{1,4}")
RELATIVE_PAGE = re.compile(r"[A-Za-z0-9%._-]{1,200}/(report|feedback)\.html")

CSP = ("default-src 'none'; img-src data:; style-src {style}; base-uri 'none'; "
       "form-action 'none'")
CSS = """
body { margin: 0; background: #fff; color: #1f2328;
       font: 15px/1.55 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
main { max-width: 62rem; margin: 0 auto; padding: 1rem 1.5rem 3rem; }
h1, h2, h3, h4 { line-height: 1.25; margin: 1.2em 0 .5em; }
a.anchor-link, .jp-Collapser { display: none; }
.grader-banner { background: #fff8c5; border: 1px solid #d4a72c; border-radius: 6px;
                 padding: .25rem 1rem; margin: .5rem 0 1.5rem; }
.jp-Cell { margin: .6rem 0; }
.jp-InputArea, .jp-OutputArea-child { display: flex; align-items: flex-start; }
.jp-InputPrompt, .jp-OutputPrompt { flex: 0 0 5.5rem; padding: .45rem .6rem 0 0; color: #6e7781;
                                    font: 12px/1.5 ui-monospace, monospace; text-align: right; }
.jp-InputArea-editor, .jp-OutputArea-output, .jp-RenderedMarkdown { flex: 1; min-width: 0; }
.jp-InputArea-editor { border: 1px solid #d0d7de; border-radius: 4px; }
pre { margin: 0; padding: .4rem .6rem; overflow-x: auto;
      font: 13px/1.45 ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; }
.jp-RenderedText pre { white-space: pre-wrap; overflow-wrap: anywhere; }
code { font-family: ui-monospace, monospace; font-size: 90%; }
img { max-width: 100%; height: auto; }
table { border-collapse: collapse; margin: .6rem 0; }
th, td { border: 1px solid #d0d7de; padding: .25rem .7rem; }
th { background: #f6f8fa; }
blockquote { margin: .5rem 0; padding: 0 1rem; color: #57606a; border-left: 4px solid #d0d7de; }
.ansi-bold { font-weight: bold; } .ansi-underline { text-decoration: underline; }
.ansi-black-fg { color: #3e424d; } .ansi-red-fg { color: #c4271d; }
.ansi-green-fg { color: #007427; } .ansi-yellow-fg { color: #966a00; }
.ansi-blue-fg { color: #1a5fb4; } .ansi-magenta-fg { color: #a02995; }
.ansi-cyan-fg { color: #00777c; } .ansi-white-fg { color: #6e7781; }
.ansi-red-intense-fg { color: #e0513f; } .ansi-green-intense-fg { color: #1b8a3a; }
.ansi-yellow-intense-fg { color: #b27d12; } .ansi-blue-intense-fg { color: #2a72d0; }
.ansi-cyan-intense-fg { color: #1a8d8d; } .ansi-magenta-intense-fg { color: #b53caa; }
.ansi-red-bg { background: #fbe3e1; } .ansi-green-bg { background: #e0f5e5; }
.ansi-yellow-bg { background: #fff3cd; }
"""


def _keep_attribute(tag, name, value, pages=False):
    """nh3's attribute filter: the value to keep, or None to drop the attribute."""
    if tag in MATH_TAGS:
        return value if name in MATH_ATTRIBUTES and MATH_VALUE.fullmatch(value) else None
    if name == "class":
        return " ".join(c for c in value.split() if CLASS_NAME.fullmatch(c)) or None
    if name == "href":
        return value if LINK.fullmatch(value.strip()) or (
            pages and RELATIVE_PAGE.fullmatch(value)) else None
    if name == "src":
        return value if IMAGE_DATA_URL.fullmatch(value) else None
    if name in ("colspan", "rowspan", "start"):
        return value if SMALL_NUMBER.fullmatch(value.strip()) else None
    if name in ("alt", "id", "rel"):
        return value
    return None


@functools.lru_cache(maxsize=2)
def _cleaner(pages=False):
    """nh3's cleaner; `pages`: also keep links to a student's page in the results folder."""
    def relative(url):
        return url if url.startswith("#") or (pages and RELATIVE_PAGE.fullmatch(url)) else None

    return nh3.Cleaner(
        tags=TAGS | MATH_TAGS, clean_content_tags=DROP_WITH_CONTENT, attributes=ATTRIBUTES,
        attribute_filter=lambda tag, name, value: _keep_attribute(tag, name, value, pages),
        strip_comments=True, link_rel=LINK_REL, url_schemes={"http", "https", "mailto", "data"},
        url_relative=relative)


def sanitise(fragment_html, pages=False):
    """`fragment_html` reduced to what a report needs and nothing that runs or loads.

    Kept: the tags in TAGS; class names (letters, digits, - and _); ids on headings; links to
    http, https, mailto and #anchors (with rel="noopener noreferrer nofollow"); image sources
    that are base64 data: URLs of PNG, JPEG or SVG (an SVG in an <img> cannot run or load
    anything); MathML's presentation elements with their layout attributes (plain values).
    Dropped: every other tag, attribute and URL, comments, and the content of scripts, styles,
    frames, objects and inline <svg>. `pages` (the grader's own index page only): links to
    `<folder>/report.html` and `<folder>/feedback.html` stay too.
    """
    return _cleaner(pages).clean(fragment_html)


@functools.lru_cache(maxsize=1)
def stylesheet():
    """The report's CSS: the layout above and pygments' classes for highlighted code."""
    from pygments.formatters import HtmlFormatter

    return CSS + HtmlFormatter(style="default").get_style_defs(".highlight") + "\n"


def page(title, body_html, *, css="", pages=False):
    """A complete HTML document: `title` (plain text), `body_html` after `sanitise`, the
    report's stylesheet plus `css` (trusted: the caller's own, never a student's), under a
    Content-Security-Policy that allows that stylesheet and data: images and nothing else."""
    style = stylesheet() + css
    digest = base64.b64encode(hashlib.sha256(style.encode("utf-8")).digest()).decode()
    policy = CSP.format(style=f"'sha256-{digest}'")
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f"<meta http-equiv=\"Content-Security-Policy\" content=\"{policy}\">\n"
        "<meta name=\"referrer\" content=\"no-referrer\">\n"
        "<meta http-equiv=\"x-dns-prefetch-control\" content=\"off\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        f"<title>{html.escape(title)}</title>\n<style>{style}</style>\n</head>\n"
        f"<body>\n<main>\n{sanitise(body_html, pages)}\n</main>\n</body>\n</html>\n")


INDEX_CSS = """
.index td.score { text-align: right; font-variant-numeric: tabular-nums; }
.index td.flags { color: #9a6700; }
"""


def index_html(entries):
    """DIR/index.html: a row per student with score, flags, how the notebook went, and links to
    the student's report.html and feedback.html (where they exist).

    `entries`: [{"name", "who" (display name or ""), "score", "max_score", "written" (the
    merged written points, or None when none is graded), "written_pending" (how many written questions the merge
    left blank: not yet graded), "late" [(student or "", late penalty, final) as grades.csv
    has them, where a penalty applies], "flags" [str], "notebook" (str or ""), "report"
    (bool), "feedback" (bool)}], in the order shown.
    """
    from urllib.parse import quote

    rows = []
    for e in entries:
        folder = quote(e["name"], safe="")
        links = " ".join(f"<a href=\"{folder}/{page}.html\">{page}</a>"
                         for page in ("report", "feedback") if e.get(page))
        score = f"{_points(e['score'])} / {_points(e['max_score'])}"
        pending = e.get("written_pending") or 0
        if e.get("written") is None and pending:
            score += " + written not yet graded"
        elif e.get("written") is not None:
            score += f" + {_points(e['written'])} written"
            score += f" ({pending} question{'s' if pending > 1 else ''} not yet graded)" \
                if pending else ""
        for who, penalty, final in e.get("late") or []:
            score += f"; {who + ': ' if who else ''}late penalty -{penalty}, final {final}"
        rows.append(
            f"<tr><td>{html.escape(e['name'])}</td><td>{html.escape(e.get('who') or '')}</td>"
            f"<td class=\"score\">{html.escape(score)}</td>"
            f"<td class=\"flags\">{html.escape('; '.join(e.get('flags') or []))}</td>"
            f"<td>{html.escape(e.get('notebook') or '')}</td><td>{links}</td></tr>")
    body = ("<h1>Grades</h1><p>" + f"{len(entries)} submissions. grades.csv holds the same "
            "scores; answers.html has the written answers, question by question.</p>"
            "<table class=\"index\"><thead><tr><th>name</th><th>student</th><th>score</th>"
            "<th>flags</th><th>notebook</th><th>pages</th></tr></thead><tbody>"
            + "".join(rows) + "</tbody></table>")
    return page("Grades", body, css=INDEX_CSS, pages=True)


def _points(value):
    return str(int(value)) if float(value).is_integer() else f"{float(value):g}"
