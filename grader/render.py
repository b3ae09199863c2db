"""The render process: notebooks and written answers to sanitised HTML, behind a time and memory wall.

`python -m grader.render --cpu SECONDS --memory MB [--uid UID]` reads one JSON request on stdin
and writes the result on stdout. Before it reads a byte of the request it caps its own CPU time
and address space (RLIMIT_CPU, RLIMIT_AS) and, started as root, becomes UID (nobody); the
grader's process (grader.notebook.render_in_wall) kills it
after a wall-clock limit. What a submission controls (markdown that makes mistune quadratic, a
huge code cell for pygments, LaTeX for latex2mathml) costs this process, never the grader's:
a render that runs out of time or memory ends here, and the grader shows the plain-text page.

Requests (every string in them already cut to size by grader.notebook.make_inert):
- {"kind": "notebook", "notebook": <nbformat JSON>, "banner": str, "title": str}: the page.
- {"kind": "markdown", "texts": [str, ...]}: a sanitised HTML fragment per markdown text.

This process runs no submission code and holds one submission's notebook (or one batch's
answers) at a time; it exits after one request.
"""
import argparse
import json
import os
import resource
import sys


def limit_self(cpu_s, memory_mb):
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s + 1))
    limit = memory_mb << 20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def handle(request):
    from grader import html_report, notebook

    if request["kind"] == "notebook":
        import nbformat

        node = nbformat.from_dict(request["notebook"])
        return notebook.page_html(node, request["banner"], request["title"])
    if request["kind"] == "markdown":
        return json.dumps([html_report.sanitise(notebook.markdown_html(text))
                           for text in request["texts"]])
    raise ValueError(f"unknown request kind {request['kind']!r}")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m grader.render", description=__doc__.split("\n")[0])
    parser.add_argument("--cpu", type=int, required=True, help="seconds of CPU time")
    parser.add_argument("--memory", type=int, required=True, help="address space, in MB")
    parser.add_argument("--uid", type=int, help="run as this uid and gid (started as root)")
    args = parser.parse_args(argv)
    limit_self(args.cpu, args.memory)
    if args.uid is not None:
        os.setgroups([])
        os.setgid(args.uid)
        os.setuid(args.uid)
    try:
        result = handle(json.load(sys.stdin.buffer))
    except MemoryError:
        print("the render ran out of memory", file=sys.stderr)
        return 3
    sys.stdout.buffer.write(result.encode("utf-8"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
