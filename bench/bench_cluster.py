"""Grading with --execute on a Dask cluster: one worker against two, and what 1,000 would cost.

    python bench/bench_cluster.py [--n 4] [--workers 1 2] [--notebook kit|small]

Starts a `dask scheduler` and `dask worker --nthreads 1` processes on 127.0.0.1 (as
docs/cluster.md does on real machines), grades the same N submissions (the kit's
two_layer_net.py and a notebook) with `grade.py --execute --cluster` on each worker count, and
prints the wall time, the ratio against the first count, the CPU the grader's own process spent
per notebook (it renders every report: the one part that does not spread), and a projection for
1,000 notebooks on N workers from the measured cost per notebook of the first count. The
notebook is the kit's own two_layer_net.ipynb (`kit`, the real cost) or a two-cell one
(`small`, a quick check of the machinery). Before the timed batch, a warm-up batch (one small
notebook per worker) starts each worker's sandboxed worker process and a first kernel, so the
timing is the steady cost per notebook. On one machine the workers share its cores: the ratio
says how well the grading spreads, not how fast more machines would be.
"""
import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DASK = os.path.join(os.path.dirname(sys.executable), "dask")
START_S = 120
PROJECTED = (1, 2, 8, 32, 128)
SMALL_NOTEBOOK = {"cells": [
    {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
     "source": "from two_layer_net import nn_forward_pass\nprint('imported')"},
    {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
     "source": "import torch\ntorch.ones(3).sum()"}],
    "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                "language": "python"}},
    "nbformat": 4, "nbformat_minor": 5}


def make_submissions(folder, n, notebook):
    paths = []
    for i in range(n):
        path = os.path.join(folder, f"student{i:03d}")
        os.makedirs(path)
        shutil.copy(os.path.join(ROOT, "two_layer_net.py"), path)
        target = os.path.join(path, "two_layer_net.ipynb")
        if notebook == "kit":
            shutil.copy(os.path.join(ROOT, "two_layer_net.ipynb"), target)
        else:
            with open(target, "w") as f:
                json.dump(SMALL_NOTEBOOK, f)
        paths.append(path)
    return paths


def start(command, log):
    return subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                            env={**os.environ, "PYTHONPATH": ROOT})


def grade(paths, out, address):
    """Run grade.py --execute on the cluster; (wall seconds, CPU seconds of its own process)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "grade.py", *paths, "--out", out, "--execute",
                           "--force", "--cluster", address], cwd=ROOT, capture_output=True,
                          text=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"grade.py exited {done.returncode}: {done.stderr[-2000:]}")
    return wall, (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)


def run_on(workers, paths, warm_up, folder):
    """(wall seconds, CPU seconds of grade.py's own process) for one batch on `workers`."""
    from distributed import Client

    logs = open(os.path.join(folder, f"dask-{workers}.log"), "w")
    scheduler_file = os.path.join(folder, f"scheduler-{workers}.json")
    processes = [start([DASK, "scheduler", "--host", "127.0.0.1", "--port", "0",
                        "--dashboard-address", "127.0.0.1:0", "--scheduler-file",
                        scheduler_file], logs)]
    try:
        deadline = time.monotonic() + START_S
        while not os.path.exists(scheduler_file):
            if time.monotonic() > deadline:
                raise RuntimeError(f"no scheduler after {START_S} s; see {logs.name}")
            time.sleep(0.2)
        with open(scheduler_file) as f:
            address = json.load(f)["address"]
        for i in range(workers):
            processes.append(start([DASK, "worker", address, "--nthreads", "1", "--host",
                                    "127.0.0.1", "--dashboard-address", "127.0.0.1:0",
                                    "--name", f"w{i}"], logs))
        with Client(address, timeout=30, set_as_default=False) as client:
            client.wait_for_workers(workers, timeout=START_S)
        grade(warm_up[:workers], os.path.join(folder, f"warm-up-{workers}"), address)
        return grade(paths, os.path.join(folder, f"out-{workers}"), address)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        logs.close()


def projection(per_notebook_s, workers):
    """Hours for 1,000 notebooks on `workers` workers at the measured cost of one, spread
    perfectly: a lower bound."""
    return 1000 * per_notebook_s / workers / 3600


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=4, help="submissions per batch (default: 4)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2],
                        help="worker counts to compare, the first is the base (default: 1 2)")
    parser.add_argument("--notebook", choices=["kit", "small"], default="kit",
                        help="the kit's notebook (the real cost) or a two-cell one")
    args = parser.parse_args(argv)
    folder = tempfile.mkdtemp(prefix="bench-cluster-")
    try:
        paths = make_submissions(os.path.join(folder, "batch"), args.n, args.notebook)
        warm_up = make_submissions(os.path.join(folder, "warm-up"), max(args.workers), "small")
        rows = [(w, *run_on(w, paths, warm_up, folder)) for w in args.workers]
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    base_workers, base_wall, _ = rows[0]
    print(f"{args.n} submissions with --execute ({args.notebook} notebook), "
          f"{os.cpu_count()} cores on this machine")
    print(f"{'workers':>7}  {'wall s':>7}  {'speed-up':>8}  {'s/notebook':>10}  "
          f"{'grader CPU s/notebook':>21}")
    for workers, wall, cpu in rows:
        print(f"{workers:>7}  {wall:>7.1f}  {base_wall / wall:>7.2f}x  {wall / args.n:>10.1f}  "
              f"{cpu / args.n:>21.2f}")
    per_notebook = base_wall * base_workers / args.n  # worker-seconds per notebook
    print(f"\n1,000 notebooks at {per_notebook:.1f} worker-seconds each (measured on "
          f"{base_workers} worker), spread perfectly:")
    for workers in PROJECTED:
        print(f"  {workers:>4} workers: {projection(per_notebook, workers):6.2f} h")
    grader_cpu = rows[0][2] / args.n
    print(f"the grader's own process used {grader_cpu:.2f} CPU-s per notebook (its start "
          f"included, so an overestimate): judging and rendering on one core, 1,000 notebooks "
          f"take at least {1000 * grader_cpu / 3600:.2f} h however many workers")
    return 0


if __name__ == "__main__":
    sys.exit(main())
