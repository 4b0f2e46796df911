"""`course build`, the main job (`make course`): the lectures as HTML, the homework
generated, the shipped sample submissions graded, grades as CSV and HTML feedback.

Everything is written under `build/`:

    build/index.html                              the course home page (home.py), linking all below
    build/homework/<hw>.ipynb, build/data/        the released notebooks, the data's terms
    build/lectures/index.html, <notebook>.html   the executed lecture notebooks
    build/course/                                 a scratch nbgrader course (gradebook, autograded/)
    build/grades.csv                              one row per sample student and assignment
    build/feedback/<student>/<hw>/<hw>.html       what each student would receive
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from course_lib.autograde.course import CONFIG, export_csv, generate, generate_feedback
from course_lib.autograde.pipeline import grade
from course_lib.autograde.submission import MANUAL_NOTE, Outcome
from course_lib.home import Homework, Lecture, home_page
from course_lib.lectures import LectureResult, build_lectures


@dataclass
class BuildReport:
    lectures: list[LectureResult]
    outcomes: list[Outcome]
    grades_csv: Path
    feedback: Path


def _scratch_course(root: Path, course: Path) -> Path:
    if course.exists():
        shutil.rmtree(course)
    course.mkdir(parents=True)
    shutil.copy(root / CONFIG, course / CONFIG)
    shutil.copytree(root / "solutions", course / "solutions")
    return course


def build_course(root: Path, out: Path, fast: bool | None = None, jobs: int | None = None, say=print) -> BuildReport:
    """Run the whole main job; `say` receives one line per step as it finishes."""
    root, out = Path(root).resolve(), Path(out).resolve()
    fast = os.environ.get("COURSE_FAST") == "1" if fast is None else fast
    jobs = jobs or min(2, os.cpu_count() or 1)
    say(f"lectures: executing notebooks/ into {out / 'lectures'}{' (COURSE_FAST=1)' if fast else ''}")

    def progress(result):
        say(f"  {result.name:28s} {result.seconds:6.1f}s  {'ok' if result.ok else result.errors[0]}")

    lectures = build_lectures(root / "notebooks", out / "lectures", fast=fast, check=False, progress=progress)
    course = _scratch_course(root, out / "course")
    say(f"homework: generating {', '.join(generate(course))}")
    say(f"grading examples/submissions with {jobs} workers")
    outcomes, _ = grade(course, root / "examples" / "submissions", jobs=jobs,
                        progress=lambda o: say(f"  {o.assignment:24s} {o.student:18s} {o.score_text()}"))
    generate_feedback(course)
    feedback = out / "feedback"
    if feedback.exists():
        shutil.rmtree(feedback)
    shutil.copytree(course / "feedback", feedback)
    grades_csv = out / "grades.csv"
    export_csv(course, grades_csv)
    report = BuildReport(lectures, outcomes, grades_csv, feedback)
    say(f"home page: {write_home(root, out, course, report)}")
    return report


def _released(root: Path, course: Path, out: Path) -> list[Homework]:
    """Each generated homework's notebook copied to out/homework/, with its points and due
    date from the course's gradebook."""
    from nbgrader.api import Gradebook

    from course_lib.autograde.course import db_url
    from course_lib.autograde.gradebook import COURSE_ID

    (out / "homework").mkdir(parents=True, exist_ok=True)
    homework = []
    with Gradebook(db_url(course), COURSE_ID) as gradebook:
        for hw in gradebook.assignments:
            for notebook in sorted((course / "assignments" / hw.name).glob("*.ipynb")):
                shutil.copy(notebook, out / "homework" / notebook.name)
                due = hw.duedate.strftime("%Y-%m-%d %H:%M UTC") if hw.duedate else None
                homework.append(Homework(hw.name, float(hw.max_score), due, f"homework/{notebook.name}"))
    return homework


def write_home(root: Path, out: Path, course: Path, report: BuildReport) -> Path:
    """build/index.html: lectures, homework, data and the sample grades (home.py)."""
    lectures = [Lecture(r.title or r.name, r.description, f"lectures/{r.html.name}", r.seconds, r.figures, r.ok)
                for r in report.lectures if r.html]
    (out / "data").mkdir(parents=True, exist_ok=True)
    shutil.copy(root / "course_lib" / "assets" / "mnist" / "README.md", out / "data" / "mnist-README.md")
    assignments = sorted({o.assignment for o in report.outcomes})
    grades: dict[str, dict[str, str]] = {}
    for o in report.outcomes:
        grades.setdefault(o.student, {})[o.assignment] = _score_cell(o) if o.graded else "not graded"
    links = {"grades.csv": "grades.csv", "lecture index": "lectures/index.html"}
    links.update({f"feedback {page.parent.parent.name} {page.parent.name}": page.relative_to(out).as_posix()
                  for page in sorted((out / "feedback").glob("*/*/*.html"))})
    page = home_page("Deep learning: CNNs", lectures, _released(root, course, out), assignments,
                     dict(sorted(grades.items())), links, "Built by make course: every lecture executed, "
                     "the homework generated, the sample submissions graded.")
    (out / "index.html").write_text(page, encoding="utf-8")
    return out / "index.html"


def _score_cell(outcome: Outcome) -> str:
    """"16/20", or "16/16+4?" while 4 points of written answers need manual grading."""
    pending = outcome.needs_manual_grading
    text = f"{outcome.score:g}/{outcome.max_score - pending:g}"
    return f"{text}+{pending:g}?" if pending else text


def summary_table(report: BuildReport) -> str:
    """The closing table: lectures with their run time, then grades per student and assignment."""
    lines = ["", "lecture                       seconds  status"]
    lines += [f"{r.name:28s} {r.seconds:8.1f}  {'ok' if r.ok else 'FAILED'}" for r in report.lectures]
    students = sorted({o.student for o in report.outcomes})
    assignments = sorted({o.assignment for o in report.outcomes})
    scores = {(o.student, o.assignment): o for o in report.outcomes}
    lines += ["", "student".ljust(18) + "".join(a.split("_")[0].rjust(14) for a in assignments)]
    for student in students:
        cells = [scores.get((student, a)) for a in assignments]
        lines.append(student.ljust(18) + "".join((_score_cell(o) if o and o.graded else "-").rjust(14) for o in cells))
    if any(o.graded and o.needs_manual_grading for o in report.outcomes):
        lines += ["", "+N?: N points of written answers need manual grading (not counted as zero). " + MANUAL_NOTE]
    lines += ["", f"lectures: {report.lectures[0].html.parent / 'index.html' if report.lectures else '-'}",
              f"grades:   {report.grades_csv}", f"feedback: {report.feedback}/<student>/<assignment>/"]
    return "\n".join(lines)
