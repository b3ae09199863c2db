"""Grading throughput: grade.py's forking worker against a fresh interpreter per submission.

    python bench/bench_grader.py [--n 100] [--jobs CORES] [--repeats 1]

Both sides grade the same N copies of a correct submission (tests/submissions/
student_solution.py) with the same rubric, the same judge and the same number of parallel jobs;
they alternate, and the table reports the median wall time of each and their ratio. The
baseline starts `python` for every submission and runs all test groups in it, without any
sandbox, which is what a simple grader does and favours the baseline.
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from grader import batch, rubric, standins, wire  # noqa: E402
from grader import groups as groups_module  # noqa: E402

SOLUTION = os.path.join(ROOT, "tests", "submissions", "student_solution.py")
NAIVE_CHILD = """
import sys
sys.path.insert(0, {root!r})
from grader import child, wire
requests = wire.decode(open(sys.argv[1], 'rb').read(), 1 << 30)[1]
replies = {{}}
for name in {groups!r}:
    meta = {metas!r}[name]
    arrays = {{k.split('/', 1)[1]: v for k, v in requests.items() if k.startswith(name + '/')}}
    out_meta, out_arrays = child.run(name, sys.argv[2], meta, arrays)
    sys.stdout.buffer.write(len(wire.encode(out_meta, out_arrays)).to_bytes(8, 'big'))
    sys.stdout.buffer.write(wire.encode(out_meta, out_arrays))
"""


def make_submissions(folder, n):
    paths = []
    for i in range(n):
        path = os.path.join(folder, f"student{i:03d}.py")
        shutil.copy(SOLUTION, path)
        paths.append(path)
    return paths


def ours(paths, out, jobs):
    started = time.perf_counter()
    results = batch.grade_batch(paths, out_dir=out, seed="bench", public=True,
                                limits=batch.Limits(timeout=30, memory_mb=1024), jobs=jobs,
                                force=True, progress=False)
    elapsed = time.perf_counter() - started
    assert all(r.score == 100 for r in results.values()), "the bench's submissions must pass"
    return elapsed


def naive(paths, jobs, groups, scratch):
    """A fresh interpreter per submission, running every group, judged by the same rubric."""
    request_file = os.path.join(scratch, "requests.bin")
    arrays = {f"{g.name}/{k}": v for g in groups for k, v in g.arrays.items()}
    with open(request_file, "wb") as f:
        f.write(wire.encode({}, arrays))
    code = NAIVE_CHILD.format(root=ROOT, groups=[g.name for g in groups],
                              metas={g.name: g.meta for g in groups})
    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    def grade_one(path):
        folder = tempfile.mkdtemp(dir=scratch)
        module = os.path.join(folder, "two_layer_net.py")
        shutil.copy(path, module)
        standins.write(folder)
        output = subprocess.run([sys.executable, "-c", code, request_file, module],
                                capture_output=True, check=True, env=env).stdout
        score = 0
        for group in groups:
            size = int.from_bytes(output[:8], "big")
            meta, out = wire.decode(output[8:8 + size], 1 << 30)
            output = output[8 + size:]
            score += sum(rubric.RUBRIC[t] for t, v in group.judge(meta, out).items() if v.passed)
        assert score == 100, f"the baseline must grade the bench's submissions right ({score})"

    started = time.perf_counter()
    with ThreadPoolExecutor(jobs) as pool:
        list(pool.map(grade_one, paths))
    return time.perf_counter() - started


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100, help="submissions per run (default 100)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count(),
                        help="parallel jobs for both sides (default: grade.py's, the cores)")
    parser.add_argument("--repeats", type=int, default=1, help="alternating runs of each side")
    args = parser.parse_args(argv)
    groups = groups_module.build("bench")
    times = {"grade.py (fork server)": [], "fresh interpreter per submission": []}
    with tempfile.TemporaryDirectory() as scratch:
        paths = make_submissions(scratch, args.n)
        for _ in range(args.repeats):
            times["grade.py (fork server)"].append(ours(paths, os.path.join(scratch, "out"), args.jobs))
            times["fresh interpreter per submission"].append(naive(paths, args.jobs, groups, scratch))
    ours_s = statistics.median(times["grade.py (fork server)"])
    naive_s = statistics.median(times["fresh interpreter per submission"])
    print(f"Grading {args.n} correct submissions, --jobs {args.jobs}, {os.cpu_count()} cores, "
          f"median of {args.repeats}:\n")
    print("| grader | wall time | per submission | ratio to grade.py |")
    print("|---|---|---|---|")
    for name, seconds in (("grade.py (fork server)", ours_s),
                          ("fresh interpreter per submission", naive_s)):
        print(f"| {name} | {seconds:.1f} s | {1000 * seconds / args.n:.0f} ms | "
              f"{seconds / ours_s:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
