"""`grade.py similar` at scale: an inverted index of fingerprints against all-pairs comparison.

    python bench/bench_similar.py [--class 300] [--archive 1000] [--baseline 100 200] [--jobs N]

Builds a class and an archive of two_layer_net.py files from the test corpus's solutions
(tests/similar_corpus.py): each file takes every student region from one of seven styles at
random and gets a few lines of its own, so that files share whole regions with many others, as
a real class and the public solutions do. Then it times, in the same run:

- ours: the whole command (`grade.py similar CLASS --archive ARCHIVE --out DIR`: read, starter
  removal, fingerprints, index, ranking, similar.csv and similar.html) at a quarter, half and
  all of the class and archive, to show how the cost grows;
- the naive baseline: copydetect's own CopyDetector (pygments tokens, every class file compared
  with every other file, MOSS-like defaults) on the first files of the class and archive.

The table gives seconds and seconds per 100 files; a linear method keeps the second column flat.
"""
import argparse
import contextlib
import io
import os
import random
import shutil
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, "tests")]

import grade  # noqa: E402
import similar_corpus as corpus  # noqa: E402


def make_file(rng, number):
    styles = list(corpus.STYLES)
    base = rng.choice(styles)
    regions = {r: corpus.STYLES[rng.choice(styles) if rng.random() < 0.5 else base][r]
               for r in corpus.REGIONS}
    # loss and backward go together: the backward pass uses the loss's names
    regions["backward"] = corpus.STYLES[base]["backward"]
    regions["loss"] = corpus.STYLES[base]["loss"]
    own = "".join(f"\n\nSETTING_{number}_{i} = {rng.randint(0, 10 ** 6)} * {i + 1}\n"
                  for i in range(3))
    return corpus.module(base, regions) + own


def build(folder, n, prefix, seed):
    rng = random.Random(seed)
    os.makedirs(folder)
    for i in range(n):
        with open(os.path.join(folder, f"{prefix}{i:04d}.py"), "w", encoding="utf-8") as f:
            f.write(make_file(rng, i))


def subset(src, dst, n):
    os.makedirs(dst)
    for name in sorted(os.listdir(src))[:n]:
        shutil.copy(os.path.join(src, name), dst)


def ours(klass, archive, out, jobs):
    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        files = [os.path.join(klass, name) for name in sorted(os.listdir(klass))]
        code = grade.main(["similar", *files, "--archive", archive, "--out", out,
                           "--jobs", str(jobs)])
    assert code == 0, f"grade.py similar exited {code}"
    return time.perf_counter() - started


def copydetect_all_pairs(klass, archive, boilerplate):
    from copydetect import CopyDetector

    started = time.perf_counter()
    detector = CopyDetector(test_dirs=[klass], ref_dirs=[klass, archive],
                            boilerplate_dirs=[boilerplate], extensions=["py"], silent=True,
                            autoopen=False)
    detector.run()
    return time.perf_counter() - started


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--class", dest="n_class", type=int, default=300,
                        help="submissions in the class (default: 300)")
    parser.add_argument("--archive", dest="n_archive", type=int, default=1000,
                        help="files in the archive (default: 1000)")
    parser.add_argument("--baseline", type=int, nargs="+", default=[50, 100],
                        help="class sizes for the all-pairs baseline, each with as many archive "
                             "files (default: 50 100)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                        help="processes for ours (default: the number of cores)")
    args = parser.parse_args(argv)
    work = tempfile.mkdtemp(prefix="bench-similar-")
    try:
        build(os.path.join(work, "class"), args.n_class, "student", 1)
        build(os.path.join(work, "archive"), args.n_archive, "past", 2)
        boilerplate = os.path.join(work, "starter")
        os.makedirs(boilerplate)
        with open(os.path.join(boilerplate, "stubs.py"), "w", encoding="utf-8") as f:
            f.write(corpus.stubs())
        rows = []
        sizes = sorted({(max(1, args.n_class * k // 4), max(1, args.n_archive * k // 4))
                        for k in (1, 2, 4)} | {(n, n) for n in args.baseline})
        for n_class, n_archive in sizes:
            klass = os.path.join(work, f"class-{n_class}")
            archive = os.path.join(work, f"archive-{n_archive}")
            for src, dst, n in ((os.path.join(work, "class"), klass, n_class),
                                (os.path.join(work, "archive"), archive, n_archive)):
                if not os.path.exists(dst):
                    subset(src, dst, n)
            files = n_class + n_archive
            seconds = ours(klass, archive, os.path.join(work, f"out-{n_class}-{n_archive}"),
                           args.jobs)
            rows.append(("ours (index)", n_class, n_archive, seconds, 100 * seconds / files))
            if (n_class, n_archive) in {(n, n) for n in args.baseline}:
                seconds = copydetect_all_pairs(klass, archive, boilerplate)
                rows.append(("copydetect all-pairs", n_class, n_archive, seconds,
                             100 * seconds / files))
        print(f"{'method':<22} {'class':>6} {'archive':>8} {'seconds':>9} {'s/100 files':>12}")
        for method, n_class, n_archive, seconds, per in rows:
            print(f"{method:<22} {n_class:>6} {n_archive:>8} {seconds:>9.2f} {per:>12.3f}")
        ours_rows = {(c, a): s for m, c, a, s, _ in rows if m.startswith("ours")}
        for method, n_class, n_archive, seconds, _ in rows:
            if method.startswith("copydetect"):
                print(f"at {n_class}+{n_archive} files the all-pairs baseline took "
                      f"{seconds / ours_rows[n_class, n_archive]:.1f}x our time")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
