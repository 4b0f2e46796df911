"""The `course` command for instructors and students.

    course build                 the main job (`make course`)
    course generate [HW ...]     write assignments/ (student versions) from solutions/
    course validate [HW ...]     solutions get full marks, released notebooks zero (exit 1 otherwise)
    course grade DIR [--jobs N]  autograde DIR/<student>/<hw>/*.ipynb into gradebook.db
         [--executor dask --scheduler ADDRESS]   ... on a Dask cluster
         [--similarity]                          ... then the similarity report of each assignment
    course similarity HW [DIR]   answers that share code with another student's or the reference
    course release [--due HW ..] the student edition (release/): a wheel without the homework answers
    course feedback [HW ...]     HTML feedback for graded submissions, in feedback/
    course export FILE.csv       one row per student and assignment (score after the late penalty)
         --format canvas --roster ROSTER.csv    ... as Canvas's gradebook import
    course check NOTEBOOK        a student runs the visible tests of their notebook
    course summary MODEL         per-layer table of a torchvision model
    course example               the slides' worked example: conv layer vs fully connected
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

# Imports of torch, nbgrader and the grading machinery happen inside the commands that need
# them: `course --help`, generate, export and feedback never import torch
# (tests/test_architecture.py, benchmarks/bench_cli_startup.py).


def worked_example() -> str:
    """The slide: 90x90x10 input, 5 filters of 3x3x10, stride 1, padding 1."""
    from course_lib import arithmetic

    height, width, channels, filters = 90, 90, 10, 5
    out_h, out_w = arithmetic.conv_output_size((height, width), 3, stride=1, padding=1)
    conv = arithmetic.conv_params(channels, filters, 3)
    inputs, hidden = height * width * channels, out_h * out_w * filters
    dense = arithmetic.linear_params(inputs, hidden)
    return "\n".join([
        f"input {height}x{width}x{channels}, {filters} filters of 3x3x{channels}, stride 1, padding 1",
        f"  conv output: {out_h}x{out_w}x{filters}",
        f"  conv parameters: {conv:,} ({filters} x (3*3*{channels}) weights + {filters} biases)",
        f"  fully connected {inputs:,} -> {hidden:,} units: {dense:,} parameters",
        f"  the conv layer has {dense // conv:,}x fewer parameters",
    ])


def model_summary(name: str, input_size=(3, 224, 224)) -> str:
    import torchvision.models

    from course_lib import arithmetic

    builder = getattr(torchvision.models, name, None)
    if builder is None or not callable(builder):
        raise SystemExit(f"course: unknown torchvision model {name!r}; try vgg16, resnet18, alexnet")
    return str(arithmetic.summarize(builder(weights=None), input_size))


def _build(args) -> int:
    from course_lib.autograde.course import find_root
    from course_lib.build import build_course, summary_table

    print("The slides' worked example\n")
    print(worked_example())
    report = build_course(find_root(args.root), Path(args.out), fast=args.fast or None, jobs=args.jobs,
                          say=lambda line: print(line, flush=True))
    print(summary_table(report))
    return 0 if all(r.ok for r in report.lectures) and all(o.graded for o in report.outcomes) else 1


def _summary(args) -> int:
    size = tuple(int(v) for v in args.input.split(","))
    print(model_summary(args.model, size))
    return 0


def _example(args) -> int:
    print(worked_example())
    return 0


def _root(args):
    from course_lib.autograde.course import find_root

    return find_root(args.root)


def _generate(args) -> int:
    from course_lib.autograde.course import generate

    for hw in generate(_root(args), args.assignments):
        print(f"generated assignments/{hw}/")
    return 0


def _validate(args) -> int:
    from course_lib.autograde.validate import validate

    verdicts = validate(_root(args), args.assignments, jobs=args.jobs)
    for v in verdicts:
        mark = "ok  " if v.ok else "FAIL"
        by_hand = f"; {v.manual_max_score:g} more graded by hand" if v.manual_max_score else ""
        score = f"{v.score:g}/{v.max_score:g}"
        print(f"{mark} {v.assignment:24s} {v.version:10s} {score} (expected {v.expected:g}{by_hand})")
    failed = [v for v in verdicts if not v.ok]
    print(f"{len(verdicts) - len(failed)}/{len(verdicts)} as expected")
    return 1 if failed else 0


def _grade(args) -> int:
    from course_lib.autograde.pipeline import grade, summary_table

    if args.executor == "dask" and args.jobs != 1:
        print("course grade: --jobs is ignored with --executor dask (the cluster's threads set the parallelism)",
              file=sys.stderr)
    outcomes, skipped = grade(_root(args), Path(args.submissions), jobs=args.jobs, executor=args.executor,
                              scheduler=args.scheduler)
    print(summary_table(outcomes, skipped))
    if args.similarity:
        for assignment in sorted({o.assignment for o in outcomes}):
            _report_similarity(_root(args), assignment, Path(args.submissions))
    return 0 if all(o.graded for o in outcomes) else 1


def _report_similarity(root: Path, assignment: str, submissions: Path) -> None:
    from course_lib.autograde.similarity import format_lines, similarity_report

    pairs = similarity_report(assignment, submissions, root)
    print(f"similarity, {assignment}: {len(pairs)} flagged pairs "
          f"(reports/similarity/{assignment}.html){':' if pairs else ''}")
    for line in format_lines(pairs):
        print(f"  {line}")


def _similarity(args) -> int:
    root = _root(args)
    submissions = Path(args.submissions) if args.submissions else root / "submitted"
    if not submissions.is_dir():
        raise ValueError(f"no submissions folder {submissions}; pass SUBMISSIONS/<student>/<assignment>/")
    _report_similarity(root, args.assignment, submissions)
    return 0


def _release(args) -> int:
    from course_lib.autograde.release import release

    root = _root(args)
    release(root, Path(args.out) if args.out else root / "release", tuple(args.due), lectures=not args.no_lectures)
    return 0


def _feedback(args) -> int:
    from course_lib.autograde.course import generate_feedback

    waiting = generate_feedback(_root(args), args.assignments)
    print("feedback written to feedback/<student>/<assignment>/")
    if waiting:
        names = ", ".join(f"{s.student}/{s.assignment}" for s in waiting[:5]) + (", ..." if len(waiting) > 5 else "")
        print(f"note: {len(waiting)} submission(s) have written answers no grader has scored yet ({names}); "
              "their feedback shows those answers at 0. Score them in nbgrader's formgrader, then run "
              "`course feedback` again before you release it.")
    return 0


def _export(args) -> int:
    if args.format == "canvas":
        return _export_canvas(args)
    if args.roster:
        raise SystemExit("course export: --roster is for --format canvas")
    from course_lib.autograde.course import export_csv

    rows = export_csv(_root(args), Path(args.path))
    print(f"wrote {rows} rows to {args.path}")
    return 0


def _export_canvas(args) -> int:
    """Exit 1 when a graded student is not in the roster (their row cannot be imported)."""
    from course_lib.autograde.canvas import export_canvas
    from course_lib.autograde.course import db_url

    if not args.roster:
        raise SystemExit("course export --format canvas needs --roster ROSTER.csv (Canvas: Grades > Export)")
    report = export_canvas(db_url(_root(args)), Path(args.roster), Path(args.path))
    print(f"wrote {report.rows} students to {args.path} (Canvas: Grades > Import)")
    if report.without_grades:
        print(f"no grade yet for {len(report.without_grades)} roster students: {', '.join(report.without_grades)}")
    if report.not_in_roster:
        print(f"NOT IN THE ROSTER (rows with empty Canvas ids; add them to {args.roster} or its nbgrader_id "
              f"column): {', '.join(report.not_in_roster)}", file=sys.stderr)
        return 1
    return 0


def _check(args) -> int:
    from course_lib.autograde.selfcheck import check_notebook, format_report

    results = check_notebook(Path(args.notebook))
    print(format_report(results))
    return 0 if all(r.passed for r in results) else 1


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="course",
                                  description="dl-course: the CNN lecture's library, notebooks and homework")
    commands = top.add_subparsers(dest="command", required=True)
    build = commands.add_parser("build", help="the main job: lectures as HTML, homework generated, samples graded")
    build.add_argument("--out", default="build", help="output folder (default build/)")
    build.add_argument("--fast", action="store_true", help="shrink epochs and data, like COURSE_FAST=1")
    build.add_argument("--jobs", type=int, default=None, help="grading workers (default: up to 2)")
    build.set_defaults(run=_build)
    summary = commands.add_parser("summary", help="per-layer table of a torchvision model")
    summary.add_argument("model", help="a torchvision model name, e.g. vgg16")
    summary.add_argument("--input", default="3,224,224", help="C,H,W (default 3,224,224)")
    summary.set_defaults(run=_summary)
    commands.add_parser("example", help="the slides' conv vs fully connected example").set_defaults(run=_example)
    for name, run, text in (("generate", _generate, "write assignments/ from solutions/"),
                            ("validate", _validate, "check solutions get full marks and releases zero"),
                            ("feedback", _feedback, "HTML feedback for graded submissions")):
        command = commands.add_parser(name, help=text)
        command.add_argument("assignments", nargs="*", help="assignment ids (default: all)")
        command.set_defaults(run=run)
        if name == "validate":
            command.add_argument("--jobs", type=int, default=1, help="parallel workers")
    grade = commands.add_parser("grade", help="autograde a folder of submissions")
    grade.add_argument("submissions", help="SUBMISSIONS/<student>/<assignment>/<notebook>.ipynb")
    grade.add_argument("--jobs", type=int, default=1, help="parallel workers (default 1)")
    grade.add_argument("--executor", choices=("sandbox", "dask", "nbgrader"), default="sandbox",
                       help="sandbox: warm, sandboxed workers here (default); dask: the same on a Dask cluster; "
                            "nbgrader: stock autograde per submission")
    grade.add_argument("--scheduler", help="the Dask scheduler's address for --executor dask, e.g. tcp://host:8786")
    grade.add_argument("--similarity", action="store_true",
                       help="after grading, write reports/similarity/<assignment>.html and list the flagged pairs")
    grade.set_defaults(run=_grade)
    similarity = commands.add_parser("similarity", help="flag answers that share code with another's or the reference")
    similarity.add_argument("assignment", help="the assignment id, e.g. hw2_bn_dropout_init")
    similarity.add_argument("submissions", nargs="?", help="SUBMISSIONS/<student>/<assignment>/ (default: submitted/)")
    similarity.set_defaults(run=_similarity)
    publish = commands.add_parser("release", help="the student edition: a wheel without the homework answers")
    publish.add_argument("--out", help="the folder to write (default: release/)")
    publish.add_argument("--due", nargs="*", default=[], metavar="HW",
                         help="homework whose deadline has passed (hw1 ...): the student edition keeps their answers")
    publish.add_argument("--no-lectures", action="store_true",
                         help="skip running the lectures on the student edition (release/lectures/, a few minutes)")
    publish.set_defaults(run=_release)
    export = commands.add_parser("export", help="write grades as CSV")
    export.add_argument("path", help="the CSV file to write, e.g. grades.csv")
    export.add_argument("--format", choices=("csv", "canvas"), default="csv",
                        help="csv: one row per student and assignment (default); canvas: Canvas's gradebook import")
    export.add_argument("--roster", help="for --format canvas: Canvas's gradebook export (Student, ID, "
                                         "SIS User ID, SIS Login ID, Section; nbgrader ids matched with "
                                         "SIS Login ID or nbgrader_id)")
    export.set_defaults(run=_export)
    check = commands.add_parser("check", help="run the visible tests of your notebook")
    check.add_argument("notebook")
    check.set_defaults(run=_check)
    for command in commands.choices.values():
        command.add_argument("--root", default=".", help="the course root (default: here or a parent)")
    return top


def main(argv=None) -> int:
    # nbgrader's gradebook API trips a harmless SQLAlchemy autoflush warning on every submission
    warnings.filterwarnings("ignore", message=r"Object of type <\w+> not in session")
    args = parser().parse_args(argv)
    from course_lib.autograde.course import CourseError

    try:
        return args.run(args)
    except (CourseError, ValueError) as error:
        print(f"course: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
