"""How long the grader's process takes to turn hostile notebooks into report.html and answers.html.

    python bench/bench_render.py [NAME ...]

Three inputs (grader issue 16.7): a 128 KB markdown cell of "![" * 64000 (also given as a written
answer, for answers.html), a 1 MB code cell (a list literal of 9,532 lines), and 10 MB of cell
output. Prints, per input, the wall-clock seconds, the grader process's peak memory growth, the size of
the page written, and the CPU seconds of the grader's own process and of the render processes
it started. Each input runs in a fresh interpreter, so one's memory does not hide another's.
"""
import json
import os
import resource
import subprocess
import sys
import time

ROOT = os.environ.get("KIT_ROOT") or os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
TIMEOUT_S = int(os.environ.get("BENCH_TIMEOUT_S", "900"))
BEFORE = bool(os.environ.get("BENCH_BEFORE"))  # answers_html as it was before issue 16.7


def inputs():
    import nbformat
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

    brackets = "![" * 64000
    literal = "x = [\n" + "".join(f"    {i * 1.000001!r}, {i}, 'abcdefghijklmnopqrstuvwxyz{i}',\n"
                                  for i in range(9532)) + "]\n"
    flood = "".join(f"debug {i}: loss=0.123456789 grad=0.987654321\n" for i in range(230_000))
    return {
        "markdown_brackets": new_notebook(cells=[new_markdown_cell(brackets)]),
        "code_1mb": new_notebook(cells=[new_code_cell(literal, execution_count=1)]),
        "output_10mb": new_notebook(cells=[new_code_cell("train()", execution_count=1, outputs=[
            new_output("stream", name="stdout", text=flood)])]),
        "answer_brackets": {"q1": brackets},
    }, nbformat


def run_one(name):
    from grader import answers, notebook

    given, nbformat = inputs()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    own, children = (resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    started = time.monotonic()
    if name == "answer_brackets":
        page = (answers.answers_html({"amy": given[name], "bob": {}}) if BEFORE else answers.answers_html(
            {"amy": {"answers": given[name]}, "bob": {"answers": {}}}))
    else:
        page = notebook.to_html(notebook.read_notebook(nbformat.writes(given[name]).encode()), "bench")
    took = time.monotonic() - started
    own_after, children_after = (resource.getrusage(who)
                                 for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    grown = (own_after.ru_maxrss - before) / 1024

    def cpu(a, b):
        return round(b.ru_utime + b.ru_stime - a.ru_utime - a.ru_stime, 2)

    print(json.dumps({"input": name, "seconds": round(took, 2), "grader_cpu_s": cpu(own, own_after),
                      "render_process_cpu_s": cpu(children, children_after),
                      "grader_peak_mb_grown": round(grown), "page_bytes": len(page)}))


def main(names):
    for name in names or ["markdown_brackets", "code_1mb", "output_10mb", "answer_brackets"]:
        try:
            done = subprocess.run([sys.executable, __file__, "--one", name], cwd=ROOT,
                                  capture_output=True, text=True, timeout=TIMEOUT_S)
            print(done.stdout.strip() or f"{name}: failed: {done.stderr.strip()[-300:]}")
        except subprocess.TimeoutExpired:
            print(json.dumps({"input": name, "seconds": f"> {TIMEOUT_S} (stopped)"}))


if __name__ == "__main__":
    if sys.argv[1:2] == ["--one"]:
        run_one(sys.argv[2])
    else:
        main(sys.argv[1:])
