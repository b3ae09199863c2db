"""Grade two_layer_net.py submissions safely: the command line of the kit's autograder.

    python grade.py                          # self-check: grade ./two_layer_net.py, print the table
    python grade.py SUB [SUB ...] --out DIR  # grade a class (see `python grade.py grade --help`)
    python grade.py release OUT              # the student release, without the solution
    python grade.py submit                   # for students: zip the module and the executed notebook
    python grade.py gradescope OUT.zip       # a Gradescope autograder with the secret seed inside
    python grade.py merge DIR                # add the TA's written-answer scores (DIR/manual.csv)
    python grade.py similar SUB ... --out DIR [--archive DIR ...]  # ranked similar pairs

Exit status: 0 when every submission was graded (whatever its score); 1 when one or more
could not be graded (each flagged in grades.csv and named in the summary; every other result
written); 2 on a usage error (before anything is graded); 130 after Ctrl-C and 143 after
SIGTERM (every finished result written, the run folder removed). The Linux sandbox is for
instructors; on a student's own machine (Windows, macOS) the self-check runs the student's own
code in this process and says so.
"""
import argparse
import difflib
import os
import sys
import tempfile

from grader import gradebook, lms, report, resolve_seed

DEFAULT_TIMEOUT = 30.0
DEFAULT_MEMORY_MB = 1024
# The kit's own notebook needs ~50 s of CPU (measured: nbclient on the reference notebook, 49.8 s
# user) and took 82-226 s of wall time on a 2-core machine at load 5-14; 300 s is 6x its CPU
# and still passes it on that overloaded machine, while an endless loop holds a slot half as
# long as the former 600 s.
DEFAULT_NOTEBOOK_TIMEOUT = 300.0
COMMANDS = {  # name: one line for `grade.py --help`
    "submit": "for students: check and zip two_layer_net.py and the executed notebook",
    "grade": "for instructors: grade submissions into a results folder (also: grade.py SUB ... "
             "--out DIR)",
    "release": "for instructors: write the student release (no solution, no secret, no "
               "instructor tools)",
    "gradescope": "for instructors: build a Gradescope autograder zip with the secret seed inside",
    "merge": "for instructors: merge the TA's written-answer scores (DIR/manual.csv) into "
             "DIR/grades.csv",
    "similar": "for instructors: rank pairs of submissions that share code or written "
               "answers, for a person to judge",
}
INSTRUCTOR_TOOLS = ("release", "gradescope", "similar")
VISIBILITIES = ("visible", "after_due_date", "hidden")  # Gradescope's, for students


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
        description="The two-layer-net kit's autograder and tools.",
        epilog="for students:\n"
               "  python grade.py           self-check ./two_layer_net.py on the public inputs "
               "and print the table\n"
               "  python grade.py submit    check and zip two_layer_net.py and the executed "
               "notebook into submission.zip\n\n"
               "commands:\n" + "\n".join(f"  {n:<11} {h}" for n, h in COMMANDS.items())
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
    parser.add_argument("--export", action="append", default=[], metavar="PATH",
                        help="a SUB that is a Gradescope export (read as one whatever its "
                             "layout); without it only an export laid out exactly as "
                             "Gradescope's is read as one")
    parser.add_argument("--single", action="store_true",
                        help="every SUB is exactly one submission, never an export of many "
                             "(the Gradescope autograder's mode)")
    parser.add_argument("--add", action="store_true",
                        help="grade these SUBs into a DIR that already holds rows of others "
                             "(one grades.csv for both)")
    parser.add_argument("--format", action="append", choices=gradebook.FORMATS, default=[],
                        help="also write the gradebook as this LMS imports it: canvas "
                             "(DIR/canvas.csv) or gradescope (DIR/gradescope.csv); grades.csv "
                             "(plain) is always written; repeat for several. Kept in DIR: "
                             "`grade.py merge DIR` and later runs write them again")
    parser.add_argument("--canvas-assignment", metavar="'TITLE (ID)'",
                        help="canvas.csv's assignment column, as Canvas's gradebook export heads "
                             "it: the assignment's title and Canvas id, e.g. 'Two-layer net "
                             "(12345)' (implies --format canvas; kept in DIR). Without it the "
                             f"column is '{gradebook.DEFAULT_CANVAS_ASSIGNMENT}', which Canvas "
                             "matches by exact title or else adds as a new assignment")
    parser.add_argument("--due", metavar="TIME",
                        help="the due time (ISO 8601, e.g. 2024-02-10T23:59-08:00; UTC without "
                             "a zone): rows submitted later are marked late")
    parser.add_argument("--late-penalty", type=float, metavar="PERCENT",
                        help="with --due: percent of the points taken per day (or part of one) "
                             "late, in its own column (default: 0). The late options are kept "
                             "in DIR: a rerun without any reuses them; --late-penalty 0 drops "
                             "a kept penalty")
    parser.add_argument("--late-cap", type=float, metavar="PERCENT",
                        help="the most percent a late penalty takes (default: 100)")
    parser.add_argument("--extensions", metavar="CSV",
                        help="per-student due times: a CSV with columns student (sid, email, "
                             "name, Canvas user id or row name) and due (a time) or days (added "
                             "to --due); a student who matches no row is a warning")
    parser.add_argument("--visibility", choices=VISIBILITIES,
                        help="the visibility of every test in results.json (Gradescope's)")
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
        parser.add_argument("--visibility", choices=VISIBILITIES, default="visible",
                            help="when students see each test's result on Gradescope "
                                 "(default: visible)")
    elif command == "merge":
        parser.add_argument("out", metavar="DIR", help="a results folder graded with --execute")
    elif command == "similar":
        similar_arguments(parser)
    return parser


def similar_arguments(parser):
    parser.description = ("Rank pairs of submissions by the code and written answers they share "
                           "(the kit's starter code and passages common in the class left out): "
                           "DIR/similar.csv and DIR/similar.html, for a person to judge.")
    parser.add_argument("subs", nargs="+", metavar="SUB",
                        help="the class: .py files, folders holding two_layer_net.py, .zips, or "
                             "folders of many as downloaded from Gradescope or an LMS")
    parser.add_argument("--out", metavar="DIR", required=True,
                        help="folder for DIR/similar.csv and DIR/similar.html")
    parser.add_argument("--archive", metavar="DIR", action="append", default=[],
                        help="a folder of past terms' submissions or public solutions, compared "
                             "with the class but not with each other (repeat for several)")
    parser.add_argument("--base", metavar="FILE", action="append", default=[],
                        help="more starter code not to count, beside the kit's own stubs "
                             "(repeat for several)")
    parser.add_argument("--common", type=positive_int, metavar="N",
                        help="count a passage only when at most N submissions of the class "
                             "share it (default: 3, or 5%% of the class when that is more)")
    parser.add_argument("--jobs", type=positive_int, default=os.cpu_count() or 1,
                        help="processes that read and fingerprint (default: the number of cores)")


def usage_error(message, parser=None):
    if parser is not None:
        parser.print_usage(sys.stderr)
    print(f"grade.py: error: {message}", file=sys.stderr)
    return 2


def interrupted(what="nothing was graded; run the same command again"):
    """Ctrl-C's one line, wherever it came (start-up, grading, a tool): exit status 130."""
    print(f"\ngrade.py: interrupted: {what}", file=sys.stderr)
    return 130


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
        policy = late_policy(args)
        canvas_assignment = (gradebook.canvas_assignment(args.canvas_assignment)
                             if args.canvas_assignment is not None else None)
    except gradebook.PolicyError as e:
        return usage_error(str(e))
    try:
        rows = batch.grade_batch(args.subs, out_dir=args.out, seed=seed, public=public,
                                 limits=limits, jobs=jobs, force=args.force,
                                 execute=args.execute, export_paths=args.export,
                                 single=args.single, add=args.add, policy=policy,
                                 formats=args.format, canvas_assignment=canvas_assignment,
                                 visibility=args.visibility, cluster=cluster)
        notes = cluster.notes() if cluster else []
    except submission.UsageError as e:
        return usage_error(str(e))
    except batch.Interrupted as e:
        uploads = " and ".join(os.path.basename(p) for p in e.uploads)
        what = (f"{e.finished} of {e.total} submissions finished and written to {args.out} "
                "(grades.csv holds them"
                + (f"; {uploads} hold only the finished rows: upload them after the rerun"
                   if uploads else "")
                + "); run the same command again to grade the rest")
        if e.signal:
            print(f"\ngrade.py: terminated (SIGTERM): {what}", file=sys.stderr)
            return 143
        return interrupted(what)
    except KeyboardInterrupt:  # before grading began (reading the SUBs, building the rubric)
        return interrupted()
    finally:
        if cluster is not None:
            cluster.close()
    print(report.summary(rows))
    for line in [*notes, *rows.notes, *gradebook.needs_a_person(gradebook.rows(rows, rows.policy)),
                 *gradebook.unmatched_extensions(rows, rows.policy)]:
        print(line)
    if public:
        print("note: graded with the public self-check inputs; set $GRADER_SECRET_SEED or "
              "write grader_secret.txt for real grading")
    print(f"{rows.batch_size} submissions in, {rows.batch_size} rows out"
          + (f" (grades.csv also keeps {len(rows) - rows.batch_size} rows of earlier runs "
             "in this folder)" if len(rows) > rows.batch_size else ""))
    if 1 < len(args.subs) < rows.batch_size:  # several SUBs, some of them a class's download
        print(f"({len(args.subs)} SUBs on the command line gave {rows.batch_size} rows: an "
              "export or a folder of student folders gives one row a student)")
    written = [os.path.join(args.out, gradebook.FORMAT_FILES[f])
               for f in ("plain", *lms.settings(args.out)["formats"])]
    print(f"wrote {', '.join(dict.fromkeys(written))}, {os.path.join(args.out, 'scores.png')} and "
          "a feedback.html for each submission")
    for line in [lms.canvas_note(args.out), *lms.left_out(args.out)]:
        if line:
            print(line)
    return 1 if gradebook.not_graded(rows) else 0


def late_policy(args):
    """The gradebook.LatePolicy of the command line's --due, --late-penalty, --late-cap and
    --extensions; None when none of them is given (the batch then reuses the policy kept in
    DIR, grader.lms.resolve_policy)."""
    if args.due is None and args.late_penalty is None and args.late_cap is None \
            and args.extensions is None:
        return None
    penalty = 0.0 if args.late_penalty is None else args.late_penalty
    cap = 100.0 if args.late_cap is None else args.late_cap
    due = gradebook.parse_time(args.due, "--due") if args.due else None
    if penalty and due is None and not args.extensions:
        raise gradebook.PolicyError("--late-penalty needs --due (the time it counts from)")
    if not (0 <= penalty <= 100 and 0 <= cap <= 100):
        raise gradebook.PolicyError("--late-penalty and --late-cap are percents from 0 to 100")
    lines = {}
    extensions = gradebook.read_extensions(args.extensions, due, lines) if args.extensions else {}
    return gradebook.LatePolicy(due=due, per_day=penalty, cap=cap, extensions=extensions,
                                extensions_file=args.extensions or "", extension_lines=lines)


def self_check():
    path = os.path.abspath("two_layer_net.py")
    if not os.path.isfile(path):
        print(f"grade.py: no two_layer_net.py in {os.getcwd()}; run the self-check from the folder "
              "that holds it, or pass the file: python grade.py FILE --out DIR", file=sys.stderr)
        return 2
    seed, public = resolve_seed()
    batch = None
    if sandbox_available():
        try:
            from grader import batch
        except ImportError:  # the student release installs none of the sandbox's tools
            batch = None
    if batch is not None:
        limits = batch.Limits(timeout=DEFAULT_TIMEOUT, memory_mb=DEFAULT_MEMORY_MB)
        with tempfile.TemporaryDirectory() as out:
            rows = batch.grade_batch([path], out_dir=out, seed=seed, public=public,
                                     limits=limits, jobs=1, force=True, progress=False)
        (result,) = rows.values()
    else:
        from grader import selfcheck
        print("note: your own code runs in this process, without the grader's sandbox "
              "(instructors grade in it, on Linux)")
        result = selfcheck.grade_in_process(path, seed=seed, public=public)
    print(report.table(result))
    print(result.output)
    return 0


def sandbox_available():
    """The grader's sandbox is Linux's (namespaces, Landlock, prctl); elsewhere, none. Google
    Colab is Linux in a container that allows none of it: there the self-check runs in-process
    too (Colab is recognised by its own package, google.colab)."""
    import importlib.util

    if not sys.platform.startswith("linux"):
        return False
    try:
        return importlib.util.find_spec("google.colab") is None
    except (ImportError, ValueError):  # a 'google' that is no package
        return True


def cmd_release(args):
    from grader import release
    return release.write_release(out=args.out)


def cmd_submit(args):
    from grader import submit
    return submit.write_submission(folder=os.getcwd(), out=args.out)


def cmd_gradescope(args):
    from grader import gradescope
    seed, public = resolve_seed()
    return gradescope.build_autograder(out=args.out, seed=None if public else seed,
                                       visibility=args.visibility)


def cmd_similar(args):
    from grader import similar
    return similar.find_similar(args.subs, out=args.out, archives=args.archive, base=args.base,
                                common=args.common, jobs=args.jobs)


def cmd_merge(args):
    from grader import answers
    return answers.merge(out_dir=args.out)


def main(argv=None):
    """The command line; returns the exit status. Ctrl-C at any point, start-up included (the
    imports, the rubric being built), ends with interrupted()'s one line and 130."""
    try:
        return _main(argv)
    except KeyboardInterrupt:
        return interrupted()


def _main(argv):
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
    try:
        code = main()
    except KeyboardInterrupt:  # between main's own handler and here
        code = 130
    if code == 130:  # everything is written: skip the seconds torch's teardown takes
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)
