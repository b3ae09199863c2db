"""Grade two_layer_net.py submissions safely: the command line of the kit's autograder.

    python grade.py                         # self-check: grade ./two_layer_net.py, print the table
    python grade.py SUB [SUB ...] --out DIR [--jobs N] [--timeout SECONDS] [--memory MB] [--force]
    python grade.py release OUT             # the student release, without the solution
    python grade.py submit                  # for students: zip the module and the executed notebook
    python grade.py gradescope OUT.zip      # a Gradescope autograder with the secret seed inside

SUB is a .py file, a folder holding two_layer_net.py, or a .zip of such a folder. Each gets
DIR/<name>/results.json (Gradescope's schema); DIR/grades.csv holds one row per submission.
Hidden inputs come from $GRADER_SECRET_SEED or grader_secret.txt beside this file; without
either, the public self-check inputs are used. Exit status: 0 when every submission was graded
(whatever its score), 2 on a usage error, 1 when the grader itself could not run.
"""
import argparse
import os
import sys
import tempfile

from grader import batch, report, resolve_seed

DEFAULT_TIMEOUT = 30.0
DEFAULT_MEMORY_MB = 1024
DEFAULT_NOTEBOOK_TIMEOUT = 600.0


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


def grade_parser():
    parser = argparse.ArgumentParser(
        prog="grade.py", description="Grade two_layer_net.py submissions in sandboxed processes.",
        epilog="With no SUB, grade ./two_layer_net.py with the public inputs and print the table.")
    parser.add_argument("subs", nargs="*", metavar="SUB",
                        help="a .py file, a folder holding two_layer_net.py, or a .zip of one")
    parser.add_argument("--out", metavar="DIR",
                        help="folder for DIR/<name>/results.json and DIR/grades.csv")
    parser.add_argument("--jobs", type=positive_int, default=os.cpu_count() or 1,
                        help="submissions graded at once (default: the number of cores)")
    parser.add_argument("--timeout", type=positive_float, default=DEFAULT_TIMEOUT,
                        help=f"seconds per test group (default: {DEFAULT_TIMEOUT:g})")
    parser.add_argument("--memory", type=positive_int, default=DEFAULT_MEMORY_MB, metavar="MB",
                        help=f"memory a submission may allocate, in MB (default: {DEFAULT_MEMORY_MB})")
    parser.add_argument("--force", action="store_true",
                        help="regrade submissions whose results are already up to date in DIR")
    parser.add_argument("--execute", action="store_true",
                        help="also run each submitted two_layer_net.ipynb in the sandbox and "
                             "write DIR/<name>/report.html for a person to grade")
    parser.add_argument("--notebook-timeout", type=positive_float, default=DEFAULT_NOTEBOOK_TIMEOUT,
                        metavar="SECONDS", help="seconds per notebook with --execute "
                                                f"(default: {DEFAULT_NOTEBOOK_TIMEOUT:g})")
    return parser


def usage_error(parser, message):
    parser.print_usage(sys.stderr)
    print(f"{parser.prog}: error: {message}", file=sys.stderr)
    return 2


def cmd_grade(args, parser):
    limits = batch.Limits(timeout=args.timeout, memory_mb=args.memory,
                          notebook_timeout=args.notebook_timeout)
    seed, public = resolve_seed()
    if not args.subs:
        return self_check(limits=limits, seed=seed, public=public)
    if not args.out:
        return usage_error(parser, "--out DIR is required when grading submissions")
    results = batch.grade_batch(args.subs, out_dir=args.out, seed=seed, public=public,
                                limits=limits, jobs=args.jobs, force=args.force,
                                execute=args.execute)
    print(report.summary(results))
    if public:
        print("note: graded with the public self-check inputs; set $GRADER_SECRET_SEED or "
              "write grader_secret.txt for real grading")
    print(f"wrote {os.path.join(args.out, 'grades.csv')}, {os.path.join(args.out, 'scores.png')} "
          f"and {len(results)} results.json files")
    return 0


def self_check(*, limits, seed, public):
    path = os.path.abspath("two_layer_net.py")
    if not os.path.isfile(path):
        print(f"grade.py: no two_layer_net.py in {os.getcwd()}; run the self-check from the folder "
              "that holds it, or pass the file: python grade.py FILE --out DIR", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as out:
        results = batch.grade_batch([path], out_dir=out, seed=seed, public=public, limits=limits,
                                    jobs=1, force=True, progress=False)
    (result,) = results.values()
    print(report.table(result))
    print(result.output)
    return 0


def tool_parser():
    """The instructor's and student's subcommands (everything but grading itself)."""
    parser = argparse.ArgumentParser(prog="grade.py", description="The kit's release, submit "
                                     "and Gradescope tools; grading itself is `grade.py SUB ...`.")
    commands = parser.add_subparsers(dest="command", required=True)
    release = commands.add_parser("release", help="write the student release into OUT")
    release.add_argument("out", metavar="OUT", help="a folder that does not exist yet")
    release.set_defaults(run=cmd_release)
    submit = commands.add_parser("submit", help="zip ./two_layer_net.py and the executed notebook")
    submit.add_argument("--out", default="submission.zip", metavar="ZIP",
                        help="the archive to write (default: submission.zip)")
    submit.set_defaults(run=cmd_submit)
    gradescope = commands.add_parser("gradescope", help="build a Gradescope autograder zip")
    gradescope.add_argument("out", metavar="OUT.zip", help="the autograder archive to write")
    gradescope.set_defaults(run=cmd_gradescope)
    return parser


def cmd_release(args):
    from grader import release
    return release.write_release(out=args.out)


def cmd_submit(args):
    from grader import release
    return release.write_submission(folder=os.getcwd(), out=args.out)


def cmd_gradescope(args):
    from grader import gradescope
    seed, public = resolve_seed()
    return gradescope.build_autograder(out=args.out, seed=None if public else seed)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    tools = argv[:1] and argv[0] in ("release", "submit", "gradescope")
    parser = tool_parser() if tools else grade_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:
        return int(e.code or 0)
    return args.run(args) if tools else cmd_grade(args, parser)


if __name__ == "__main__":
    sys.exit(main())
