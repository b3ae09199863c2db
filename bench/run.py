"""Print the performance table of the reference solution as markdown.

    python bench/run.py [--parts forward_backward digits cifar suite] [--threads 1 [2 ...]]
                        [--rounds N] [--quick]

Every ratio is ours / baseline: the median of per-round ratios from runs interleaved in this
one process (A, B, then B, A, ...), with the interquartile range of those ratios as the noise.
Absolute times are a side column and hold only for the machine named in the header.
"""
import argparse
import datetime
import os
import sys
import time

BENCH = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH)
for path in (ROOT, BENCH):
    if path not in sys.path:
        sys.path.insert(0, path)

import cifar_throughput  # noqa: E402
import digits_vs_sklearn  # noqa: E402
import forward_backward  # noqa: E402
import suite_time  # noqa: E402
from timing import load_average, machine, threads  # noqa: E402

PARTS = ["forward_backward", "digits", "cifar", "suite"]
ROUNDS = {"forward_backward": 15, "digits": 7, "cifar": 5, "suite": 3}
QUICK_ROUNDS = {"forward_backward": 5, "digits": 3, "cifar": 3, "suite": 1}


def run_benchmarks(*, parts, thread_counts, rounds, progress=None):
    """Run the chosen parts, parts 1-3 once per thread count; return the table's rows."""
    rows = []
    cifar_data = None
    for part in parts:
        if progress:
            progress(f"running {part} ...")
        if part == "suite":
            rows += suite_time.run(rounds=rounds[part])
            continue
        for n in thread_counts:
            with threads(n):
                if part == "forward_backward":
                    rows += forward_backward.run(threads=n, rounds=rounds[part])
                elif part == "digits":
                    rows += digits_vs_sklearn.run(threads=n, rounds=rounds[part])
                else:
                    if cifar_data is None:
                        cifar_data = cifar_throughput.make_data()
                    rows += cifar_throughput.run(threads=n, rounds=rounds[part], data=cifar_data)
    return rows


def format_ratio(spread):
    if spread is None:
        return ""
    return f"{spread.median:.3f} ({spread.q1:.3f}-{spread.q3:.3f})"


def format_table(rows):
    """The rows as a markdown table."""
    header = ["part", "measurement", "threads", "ratio, median (IQR)", "target", "met", "ours",
              "baseline", "note"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        target = f"<= {row.target:.2f}" if row.target is not None else ""
        cells = [row.part, row.measurement, row.threads, format_ratio(row.ratio), target, row.met,
                 row.ours, row.baseline, row.note]
        lines.append("| " + " | ".join(str(c).replace("|", "/") for c in cells) + " |")
    return "\n".join(lines)


def report(*, parts, thread_counts, rounds, command, progress=None):
    """Run the benchmarks; return markdown: a header naming the run and the machine, the table."""
    started, load_before = time.time(), load_average()
    rows = run_benchmarks(parts=parts, thread_counts=thread_counts, rounds=rounds,
                          progress=progress)
    load_after = load_average()
    load = ("" if load_before is None else
            f"1-minute load average {load_before:.1f} before, {load_after:.1f} after "
            "(a quiet machine reads about 0).\n")
    return "\n".join([
        f"Command: `{command}`, {datetime.datetime.now():%Y-%m-%d %H:%M}, "
        f"{time.time() - started:.0f} s.  ",
        f"Machine: {machine()}.  ",
        f"Threads: parts 1-3 at {', '.join(map(str, thread_counts))} thread(s), set on both sides "
        "of every ratio (torch.set_num_threads and threadpoolctl's limits for numpy's and "
        "scikit-learn's OpenBLAS and OpenMP); part 4 runs in fresh processes with their "
        "defaults.  ",
        load,
        format_table(rows)])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=PARTS,
                        help="which parts to run (default: all): forward_backward (part 1), digits "
                             "(part 2), cifar (part 3), suite (part 4: tests and notebook)")
    parser.add_argument("--threads", nargs="+", type=int, default=[1], metavar="N",
                        help="thread counts for torch and every BLAS/OpenMP pool, the same on both "
                             "sides of every ratio; parts 1-3 run once per count (default: 1, the "
                             "setting that gives repeatable numbers on a shared machine; with 2 "
                             "OpenMP threads a busy core stalls every small op)")
    parser.add_argument("--rounds", type=int, default=None, metavar="N",
                        help="rounds per part (default: "
                             + ", ".join(f"{k} {v}" for k, v in ROUNDS.items()) + ")")
    parser.add_argument("--quick", action="store_true",
                        help="few rounds, for a smoke test: "
                             + ", ".join(f"{k} {v}" for k, v in QUICK_ROUNDS.items()))
    args = parser.parse_args(argv)
    if args.rounds is not None and args.rounds < 1:
        parser.error(f"--rounds is {args.rounds}; give at least 1")
    if any(n < 1 for n in args.threads):
        parser.error(f"--threads {args.threads} holds a count below 1; give counts of 1 or more")
    rounds = QUICK_ROUNDS if args.quick else ROUNDS
    if args.rounds is not None:
        rounds = {k: args.rounds for k in rounds}

    command = " ".join(["python bench/run.py"] + (sys.argv[1:] if argv is None else list(argv)))
    print(report(parts=args.parts, thread_counts=args.threads, rounds=rounds, command=command,
                 progress=lambda message: print(message, file=sys.stderr, flush=True)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
