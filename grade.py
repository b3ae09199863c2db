"""Grade two_layer_net.py submissions safely: the command line of the kit's autograder.

    python grade.py                          # self-check: grade ./two_layer_net.py, print the table
    python grade.py SUB [SUB ...] --out DIR  # grade a class (see `python grade.py grade --help`)
    python grade.py release OUT              # the student release, without the solution
    python grade.py submit                   # for students: zip the module and the executed notebook
    python grade.py gradescope OUT.zip       # a Gradescope autograder with the secret seed inside
    python grade.py merge DIR                # add the TA's written-answer scores (DIR/manual.csv)

Exit status: 0 when every submission was graded (whatever its score), 2 on a usage error
(before anything is graded), 130 after Ctrl-C (every finished result written), 1 when the
grader itself could not run. The Linux sandbox is for instructors; on a student's own machine
(Windows, macOS) the self-check runs the student's own code in this process and says so.
"""
import argparse
import difflib
import os
import sys
import tempfile

from grader import report, resolve_seed

DEFAULT_TIMEOUT = 30.0
DEFAULT_MEMORY_MB = 1024
DEFAULT_NOTEBOOK_TIMEOUT = 600.0
COMMANDS = {  # name: one line for `grade.py --help`
    "grade": "grade submissions into a results folder (also: grade.py SUB ... --out DIR)",
    "release": "write the student release (no solution, no secret, no instructor tools)",
    "submit": "for students: check and zip two_layer_net.py and the executed notebook",
    "gradescope": "build a Gradescope autograder zip with the secret seed inside",
    "merge": "merge the TA's written-answer scores (DIR/manual.csv) into DIR/grades.csv",
}
INSTRUCTOR_TOOLS = ("release", "gradescope")


def positive_float(text):
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text} is not a positive number")
    return value


def positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a positive integer")
    return value


def top_parser():
    parser = argparse.ArgumentParser(
        prog="grade.py", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="The two-layer-net kit's autograder and tools. With no arguments, "
                    "self-check ./two_layer_net.py on the public inputs and print the table.",
        epilog="commands:\n" + "\n".join(f"  {n:<11} {h}" for n, h in COMMANDS.items())
               + "\n\n`grade.py COMMAND --help` describes each.")
    parser.add_argument("command", nargs="?", help="one of the commands below")
    return parser


def grade_parser():
    parser = argparse.ArgumentParser(
        prog="grade.py [grade]", description="Grade two_layer_net.py submissions in sandboxed "
        "processes: DIR/<name>/results.json (Gradescope's schema) and DIR/grades.csv.")
    parser.add_argument("subs", nargs="+", metavar="SUB",
                        help="a .py file, a folder holding two_layer_net.py, a .zip of one, or a "
                             "folder of many as downloaded from Gradescope or an LMS")
    parser.add_argument("--out", metavar="DIR", required=True,
                        help="folder for DIR/<name>/results.json and DIR/grades.csv")
    parser.add_argument("--jobs", type=positive_int, default=os.cpu_count() or 1,
                        help="submissions graded at once (default: the number of cores)")
    parser.add_argument("--timeout", type=positive_float, default=DEFAULT_TIMEOUT,
                        help=f"seconds per test group (default: {DEFAULT_TIMEOUT:g})")
    parser.add_argument("--memory", type=positive_int, default=DEFAULT_MEMORY_MB, metavar="MB",
                        help="memory a submission (or its notebook) may use, in MB (default: "
                             f"{DEFAULT_MEMORY_MB})")
    parser.add_argument("--force", action="store_true",
                        help="regrade submissions whose results are already up to date in DIR")
    parser.add_argument("--execute", action="store_true",
                        help="also run each submitted two_layer_net.ipynb in the sandbox and "
                             "write DIR/<name>/report.html and DIR/answers.html")
    parser.add_argument("--notebook-timeout", type=positive_float, default=DEFAULT_NOTEBOOK_TIMEOUT,
                        metavar="SECONDS", help="seconds per notebook with --execute "
                                                f"(default: {DEFAULT_NOTEBOOK_TIMEOUT:g})")
    parser.add_argument("--cluster", metavar="ADDRESS",
                        help="run the sandboxed children on the Dask workers of the scheduler at "
                             "ADDRESS (tcp://HOST:8786); this process keeps the seed, judges and "
                             "writes DIR; --jobs is then the workers' threads (docs/cluster.md)")
    return parser


def tool_parser(command):
    parser = argparse.ArgumentParser(prog=f"grade.py {command}", description=COMMANDS[command])
    if command == "release":
        parser.add_argument("out", metavar="OUT", help="a folder that does not exist yet")
    elif command == "submit":
        parser.add_argument("--out", default="submission.zip", metavar="ZIP",
                            help="the archive to write (default: submission.zip)")
    elif command == "gradescope":
        parser.add_argument("out", metavar="OUT.zip", help="the autograder archive to write")
    elif command == "merge":
        parser.add_argument("out", metavar="DIR", help="a results folder graded with --execute")
    return parser


def usage_error(message, parser=None):
    if parser is not None:
        parser.print_usage(sys.stderr)
    print(f"grade.py: error: {message}", file=sys.stderr)
    return 2


def cmd_grade(args):
    from grader import batch, submission

    limits = batch.Limits(timeout=args.timeout, memory_mb=args.memory,
                          notebook_timeout=args.notebook_timeout)
    seed, public = resolve_seed()
    cluster, jobs = None, args.jobs
    if args.cluster:
        from grader import cluster as dask_cluster
        try:
            cluster = dask_cluster.connect(args.cluster)
        except dask_cluster.UsageError as e:
            return usage_error(str(e))
        jobs = cluster.threads()
        print(f"grading on the Dask cluster at {args.cluster}, {jobs} worker threads; dashboard: "
              f"{cluster.dashboard or 'none'}", file=sys.stderr)
    try:
        rows = batch.grade_batch(args.subs, out_dir=args.out, seed=seed, public=public,
                                 limits=limits, jobs=jobs, force=args.force,
                                 execute=args.execute, cluster=cluster)
        notes = cluster.notes() if cluster else []
    except submission.UsageError as e:
        return usage_error(str(e))
    except batch.Interrupted as e:
        print(f"\ngrade.py: interrupted: {e.finished} of {e.total} submissions finished and "
              f"written to {args.out} (grades.csv holds them); run the same command again to "
              "grade the rest", file=sys.stderr)
        return 130
    finally:
        if cluster is not None:
            cluster.close()
    print(report.summary(rows))
    for line in notes:
        print(line)
    if public:
        print("note: graded with the public self-check inputs; set $GRADER_SECRET_SEED or "
              "write grader_secret.txt for real grading")
    print(f"{rows.batch_size} submissions in, {rows.batch_size} rows out"
          + (f" (grades.csv also keeps {len(rows) - rows.batch_size} rows of earlier runs "
             "in this folder)" if len(rows) > rows.batch_size else ""))
    print(f"wrote {os.path.join(args.out, 'grades.csv')} and {os.path.join(args.out, 'scores.png')}")
    return 0


def self_check():
    path = os.path.abspath("two_layer_net.py")
    if not os.path.isfile(path):
        print(f"grade.py: no two_layer_net.py in {os.getcwd()}; run the self-check from the folder "
              "that holds it, or pass the file: python grade.py FILE --out DIR", file=sys.stderr)
        return 2
    seed, public = resolve_seed()
    if sandbox_available():
        from grader import batch
        limits = batch.Limits(timeout=DEFAULT_TIMEOUT, memory_mb=DEFAULT_MEMORY_MB)
        with tempfile.TemporaryDirectory() as out:
            rows = batch.grade_batch([path], out_dir=out, seed=seed, public=public,
                                     limits=limits, jobs=1, force=True, progress=False)
        (result,) = rows.values()
    else:
        from grader import selfcheck
        print(f"note: no sandbox on {sys.platform}: your own code runs in this process "
              "(instructors grade on Linux, in the sandbox)")
        result = selfcheck.grade_in_process(path, seed=seed, public=public)
    print(report.table(result))
    print(result.output)
    return 0


def sandbox_available():
    """The grader's sandbox is Linux's (namespaces, Landlock, prctl); elsewhere, none."""
    return sys.platform.startswith("linux")


def cmd_release(args):
    from grader import release
    return release.write_release(out=args.out)


def cmd_submit(args):
    from grader import submit
    return submit.write_submission(folder=os.getcwd(), out=args.out)


def cmd_gradescope(args):
    from grader import gradescope
    seed, public = resolve_seed()
    return gradescope.build_autograder(out=args.out, seed=None if public else seed)


def cmd_merge(args):
    from grader import answers
    return answers.merge(out_dir=args.out)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv:
        return self_check()
    first = argv[0]
    if first in ("-h", "--help"):
        top_parser().print_help()
        return 0
    if first in COMMANDS:
        command, rest = first, argv[1:]
    elif first.startswith("-") or os.path.exists(first) or os.sep in first or "." in first:
        command, rest = "grade", argv
    else:
        close = difflib.get_close_matches(first, COMMANDS, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else (
            f"; the commands are {', '.join(COMMANDS)}, or pass submission files or folders")
        return usage_error(f"unknown command '{first}'{hint}")
    parser = grade_parser() if command == "grade" else tool_parser(command)
    try:
        args = parser.parse_args(rest)
    except SystemExit as e:
        return int(e.code or 0)
    if command in INSTRUCTOR_TOOLS and not _has_module(command):
        return usage_error(f"'{command}' is an instructor tool and is not part of the student "
                           "release; students need only `python grade.py` and `python grade.py submit`")
    return globals()[f"cmd_{command}"](args)


def _has_module(command):
    return os.path.isfile(os.path.join(os.path.dirname(os.path.abspath(__file__)), "grader",
                                       f"{command}.py"))


if __name__ == "__main__":
    code = main()
    if code == 130:  # everything is written: skip the seconds torch's teardown takes
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)
