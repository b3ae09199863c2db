"""`grade.py similar` at scale: an inverted index of fingerprints against all-pairs comparison.

    python bench/bench_similar.py [--class 300] [--archive 1000] [--baseline 50 100] [--jobs N]
    python bench/bench_similar.py --real DIR   # disguised copies planted among real solutions

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


def swap_function(host, donor, name="nn_forward_backward"):
    """`host`'s source with its top-level function `name` replaced by `donor`'s."""
    import ast

    def span(source):
        node = next(n for n in ast.parse(source).body
                    if isinstance(n, ast.FunctionDef) and n.name == name)
        return node.lineno - 1, node.end_lineno

    h, d = host.splitlines(keepends=True), donor.splitlines(keepends=True)
    (hs, he), (ds, de) = span(host), span(donor)
    return "".join(h[:hs] + d[ds:de] + h[he:])


def real_check(folder, out):
    """Plant disguised copies among real solutions (the .py files in `folder`, none of them
    kept in the kit) and print where the planted pairs rank: the first 3/4 are the class,
    the rest the archive; the corpus's disguises each copy one class file, `partial` takes
    nn_forward_backward from another, and one class file is a renamed archive file."""
    from grader import similar
    from grader.submission import safe_name

    names = sorted(n for n in os.listdir(folder) if n.endswith(".py"))
    texts = {n[:-3]: open(os.path.join(folder, n), encoding="utf-8", errors="replace").read()
             for n in names}
    keys = list(texts)
    split = len(keys) * 3 // 4
    klass, archive = keys[:split], keys[split:]
    work = os.path.join(out, "real")
    os.makedirs(os.path.join(work, "class"))
    os.makedirs(os.path.join(work, "archive"))
    for key in klass:
        corpus.write_student(os.path.join(work, "class"), key, texts[key])
    for key in archive:
        with open(os.path.join(work, "archive", key + ".py"), "w", encoding="utf-8") as f:
            f.write(texts[key])
    planted = {}
    for (disguise, rewrite), key in zip(corpus.DISGUISES.items(), klass):
        name = f"planted_{disguise}"
        corpus.write_student(os.path.join(work, "class"), name, rewrite(texts[key]))
        planted[name] = key
    host, donor = klass[len(corpus.DISGUISES)], klass[len(corpus.DISGUISES) + 1]
    corpus.write_student(os.path.join(work, "class"), "planted_partial",
                         swap_function(texts[host], texts[donor]))
    planted["planted_partial"] = donor
    corpus.write_student(os.path.join(work, "class"), "planted_from_archive",
                         corpus.rename(texts[archive[0]], seed=4))
    planted["planted_from_archive"] = "archive/" + archive[0]
    with contextlib.redirect_stdout(io.StringIO()):
        code = grade.main(["similar", os.path.join(work, "class"), "--archive",
                           os.path.join(work, "archive"), "--out", os.path.join(work, "out")])
    assert code == 0, f"grade.py similar exited {code}"
    with open(os.path.join(work, "out", similar.CSV_NAME)) as f:
        import csv
        rows = list(csv.DictReader(f))
    target = {frozenset((k, "/".join(map(safe_name, v.split("/")))))
              for k, v in planted.items()}
    print(f"\nreal solutions: {len(klass)} in the class, {len(archive)} in the archive, "
          f"{len(planted)} planted copies; {len(rows)} pairs share something")
    for row in rows:
        pair = frozenset((row["a"], row["b"]))
        mark = "planted" if pair in target else ""
        if mark or row["worth_a_look"] or int(row["rank"]) <= len(planted) + 3:
            print(f"  #{row['rank']:>3} {row['a'][:34]:<34} {row['b'][:40]:<40} code "
                  f"{row['code_similarity']} run {row['longest_run_tokens']:>4} "
                  f"{'look' if row['worth_a_look'] else '    '} {mark}")
    ranks = [int(r["rank"]) for r in rows if frozenset((r["a"], r["b"])) in target]
    print(f"planted pairs found: {len(ranks)} of {len(target)}, ranks {sorted(ranks)}")


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
    parser.add_argument("--real", metavar="DIR",
                        help="only plant disguised copies among the real solutions in DIR (.py "
                             "files) and print where they rank")
    args = parser.parse_args(argv)
    work = tempfile.mkdtemp(prefix="bench-similar-")
    if args.real:
        try:
            real_check(args.real, work)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return 0
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
