"""The kit's main job: train the reference on the digits set, run the notebook, grade the reference.

    python main.py [--out DIR]

Runs on its embedded defaults against the reference solution in two_layer_net.py, at the CPU
thread count of helpers.use_threads (one thread: fastest for these small nets; $KIT_THREADS
overrides it, for this process and the notebook's kernel alike).

Prints the final training loss and the test accuracy and writes DIR/digits_training.png; then
executes two_layer_net.ipynb and writes the executed copy DIR/two_layer_net.ipynb and
DIR/two_layer_net.html, a page with every figure that opens in any browser; then grades
two_layer_net.py with grade.py's sandboxed grader, prints its table and writes
DIR/grading/<name>/results.json (the name is the kit folder's, as grade.py names a submission).
"""
import argparse
import os
import sys
import time

import torch

from helpers import load_digits_data, plot_stats, use_threads
from two_layer_net import TwoLayerNet

ROOT = os.path.dirname(os.path.abspath(__file__))
NOTEBOOK = os.path.join(ROOT, "two_layer_net.ipynb")
# Seconds one notebook cell may run. The slowest cell takes a few seconds on a 2-core CPU; the
# optional CIFAR-10 training, when configured, a few minutes.
NOTEBOOK_CELL_TIMEOUT = 1200

DIGITS_DEFAULTS = dict(hidden_size=100, std=1e-2, learning_rate=0.5, learning_rate_decay=0.99,
                       reg=1e-4, num_iters=1200, batch_size=200, seed=0)


def train_digits(*, out_dir, hidden_size, std, learning_rate, learning_rate_decay, reg, num_iters,
                 batch_size, seed):
    """Train the reference net on the digits set; return (final loss, test accuracy, figure path)."""
    torch.manual_seed(seed)
    data = load_digits_data(seed=seed)
    net = TwoLayerNet(data["X_train"].shape[1], hidden_size, 10, std=std, seed=seed)
    stats = net.train(data["X_train"], data["y_train"], data["X_val"], data["y_val"],
                      learning_rate=learning_rate, learning_rate_decay=learning_rate_decay,
                      reg=reg, num_iters=num_iters, batch_size=batch_size)
    test_acc = (net.predict(data["X_test"]) == data["y_test"]).float().mean().item()
    os.makedirs(out_dir, exist_ok=True)
    figure_path = os.path.join(out_dir, "digits_training.png")
    plot_stats(stats).savefig(figure_path, dpi=100)
    return stats["loss_history"][-1], test_acc, figure_path


def run_notebook(*, notebook_path=NOTEBOOK, out_dir, cwd=None, timeout=NOTEBOOK_CELL_TIMEOUT):
    """Execute a notebook headless and write the executed copy and an HTML page with its figures.

    The kernel is "python3", which Jupyter resolves to the Python running this function (the
    virtual environment's, where ipykernel is installed). The executed copy is written even when
    a cell fails, so the HTML shows where.

    Args:
        notebook_path: the notebook to run; its outputs on disk are not changed.
        out_dir: where <name>.ipynb and <name>.html go (created if missing).
        cwd: the kernel's working folder, where the notebook imports from (default: the
            notebook's folder).
        timeout: seconds a single cell may run.
    Returns:
        (path of the executed notebook, path of the HTML page, seconds the execution took).
    Raises:
        nbclient.exceptions.CellExecutionError when a cell raises.
    """
    import nbformat
    from nbconvert import HTMLExporter

    from grader import notebook as grader_notebook

    notebook = nbformat.read(notebook_path, as_version=4)
    cwd = cwd or os.path.dirname(os.path.abspath(notebook_path))
    client = grader_notebook.client(notebook, cwd=cwd, timeout=timeout, coalesce_streams=True)
    name = os.path.splitext(os.path.basename(notebook_path))[0]
    os.makedirs(out_dir, exist_ok=True)
    ipynb_path = os.path.join(out_dir, f"{name}.ipynb")
    html_path = os.path.join(out_dir, f"{name}.html")
    start = time.perf_counter()
    try:
        client.execute()
    finally:
        seconds = time.perf_counter() - start
        nbformat.write(notebook, ipynb_path)
        page, _ = HTMLExporter().from_notebook_node(notebook)
        with open(html_path, "w", encoding="utf-8") as f:
            f.write(page)
    return ipynb_path, html_path, seconds


def grade_reference(*, out_dir, module_path=os.path.join(ROOT, "two_layer_net.py")):
    """Grade the module as grade.py does (hidden inputs from the configured seed, else the
    public ones); returns (the table, path of results.json)."""
    from grader import batch, report, resolve_seed

    seed, public = resolve_seed()
    grading_dir = os.path.join(out_dir, "grading")
    results = batch.grade_batch([module_path], out_dir=grading_dir, seed=seed, public=public,
                                limits=batch.Limits(timeout=60, memory_mb=1024), jobs=1,
                                force=True, progress=False)
    (name, result), = results.items()
    return report.table(result), os.path.join(grading_dir, name, "results.json")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="out",
                        help="folder for the figure, the executed notebook and its HTML "
                             "(default: out)")
    args = parser.parse_args(argv)
    threads = use_threads()
    start = time.perf_counter()
    loss, test_acc, figure_path = train_digits(out_dir=args.out, **DIGITS_DEFAULTS)
    print(f"digits: final training loss {loss:.4f}, test accuracy {test_acc:.1%} "
          f"({time.perf_counter() - start:.1f} s at {threads} thread{'s' if threads > 1 else ''})")
    print(f"wrote {figure_path}")
    from jupyter_client.kernelspec import NoSuchKernel
    from nbclient.exceptions import CellExecutionError

    try:
        ipynb_path, html_path, seconds = run_notebook(out_dir=args.out)
    except NoSuchKernel:
        print("no Jupyter kernel 'python3' for this Python: install the requirements into the "
              "environment that runs main.py (pip install -r requirements.txt brings ipykernel)",
              file=sys.stderr)
        return 1
    except CellExecutionError as e:
        print(f"the notebook {NOTEBOOK} stopped at a cell error (see "
              f"{os.path.join(args.out, 'two_layer_net.html')}):\n{e}", file=sys.stderr)
        return 1
    print(f"notebook: executed in {seconds:.0f} s; wrote {ipynb_path} and {html_path}")
    table, results_path = grade_reference(out_dir=args.out)
    print(f"grade.py on two_layer_net.py:\n{table}\nwrote {results_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
