"""Part 4: wall time of the whole test suite and of the notebook run headless.

The test suite runs as CI runs it, `python -m pytest -q` in a fresh interpreter from the
repository root (its own thread settings, not this process's). The notebook
`two_layer_net.ipynb` is executed top to bottom by nbclient in a fresh kernel, in memory: the
file on disk is not rewritten. Both are absolute figures: nothing to divide them by.
"""
import os
import subprocess
import sys
import time

from timing import Row, Spread, seconds

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOK = os.path.join(ROOT, "two_layer_net.ipynb")
NOTEBOOK_TIMEOUT = 1800  # seconds per cell


def time_test_suite():
    """Seconds for `python -m pytest -q`, and pytest's summary line (which says whether it
    passed: a failing suite's time is reported, but the row says so)."""
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
                            cwd=ROOT, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    lines = result.stdout.strip().splitlines() or ["(no output)"]
    return elapsed, lines[-1].strip("= ")


def time_notebook(path=NOTEBOOK):
    """Seconds to execute the notebook in a fresh kernel, from its own folder."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=NOTEBOOK_TIMEOUT, kernel_name="python3",
                            resources={"metadata": {"path": os.path.dirname(path)}})
    start = time.perf_counter()
    client.execute()
    return time.perf_counter() - start


def run(*, rounds):
    """Two rows: the test suite's and the notebook's median wall time."""
    suite = [time_test_suite() for _ in range(rounds)]
    rows = [Row(part="4", measurement="test suite, `python -m pytest -q`", threads="default",
                ratio=None, target=None, ours=seconds(Spread.of([s for s, _ in suite]).median),
                baseline="", note=f"median of {rounds}; last run: {suite[-1][1]}")]
    row = dict(part="4", measurement="notebook `two_layer_net.ipynb`, headless", threads="default",
               ratio=None, target=None, baseline="")
    if not os.path.exists(NOTEBOOK):
        return rows + [Row(**row, ours="n/a (no notebook)")]
    try:
        notebook = Spread.of([time_notebook() for _ in range(rounds)])
    except Exception as e:  # a failing notebook is a finding for the table, not a crash
        name = getattr(e, "ename", type(e).__name__)  # nbclient names the cell's exception
        value = getattr(e, "evalue", str(e)).strip().splitlines() or [""]
        return rows + [Row(**row, ours="n/a (notebook failed)", note=f"{name}: {value[0][:120]}")]
    return rows + [Row(**row, ours=seconds(notebook.median),
                       note=f"median of {rounds}, nbclient, a fresh kernel each run")]
