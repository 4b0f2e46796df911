"""`course grade`: autograde every submission, in parallel sandboxed workers, into one
gradebook.

Two executors share this module:

* `executor="sandbox"` (the default): the grading process sanitizes each notebook against
  the gradebook (`sanitize.py`), warm workers (`worker.py`, inside bubblewrap when it is
  installed, see `sandbox.py`) fork a fresh, unprivileged, resource-limited child per
  submission that runs the cells (`execute.py`), and the grading process scores the
  outputs with nbgrader's own rules (IgnorePattern, SaveAutoGrades) into the gradebook.
  See docs/grading.md.
* `executor="nbgrader"`: stock `nbgrader autograde`, one subprocess per submission, as
  described below. Kept as the reference the sandbox is checked against.

Layout of a submissions directory (nbgrader's own): SUBMISSIONS/<student>/<hw>/<nb>.ipynb.

Each submission is autograded by `nbgrader autograde` in its own scratch course (a copy of
the config and of the gradebook, and that one submission), so workers never share a
database. The parent process alone writes the course gradebook: it copies each worker's
scores in, one submission at a time, and copies the autograded notebook to
autograded/<student>/<hw>/. A submission that nbgrader cannot grade (a notebook that is not
JSON, a worker that ran out of time) still gets a zero and a reason, and the batch goes on.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from nbgrader.api import Gradebook, MissingEntry

from course_lib.autograde.course import (
    CONFIG,
    COURSE_ID,
    CourseError,
    _tail,
    assignment_ids,
    db_url,
    generate,
    run_nbgrader,
    zero_unscored,
)

SUBMISSION_TIMEOUT = 900  # seconds for one whole submission; cells have their own limit


@dataclass
class Task:
    student: str
    assignment: str
    folder: Path


@dataclass
class Outcome:
    """What happened to one submission."""

    student: str
    assignment: str
    score: float = 0.0
    max_score: float = 0.0
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)   # test cells that lost points, with the message
    notes: list[str] = field(default_factory=list)    # what the grader repaired or converted
    graded: bool = True  # False: the grading machinery failed; the gradebook was not touched

    @property
    def ok(self) -> bool:
        return not self.problems


def find_submissions(submissions: Path, known: list[str]) -> tuple[list[Task], list[str]]:
    """The (student, assignment) folders to grade, and what was skipped and why."""
    submissions = Path(submissions)
    if not submissions.is_dir():
        raise CourseError(f"{submissions} is not a directory; expected SUBMISSIONS/<student>/<hw>/<notebook>.ipynb")
    tasks, skipped = [], []
    for student in sorted(p for p in submissions.iterdir() if p.is_dir()):
        for folder in sorted(p for p in student.iterdir() if p.is_dir()):
            if folder.name in known:
                tasks.append(Task(student.name, folder.name, folder))
            else:
                skipped.append(f"{student.name}/{folder.name}: not an assignment of this course ({', '.join(known)})")
    return tasks, skipped


def ensure_generated(root: Path, assignments: list[str]) -> None:
    """Every assignment must be in the gradebook before grading (nbgrader reads its source cells there)."""
    missing = []
    with Gradebook(db_url(root), COURSE_ID) as gradebook:
        for hw in assignments:
            try:
                gradebook.find_assignment(hw)
            except MissingEntry:
                missing.append(hw)
    if missing:
        generate(root, missing)


def _scratch_course(task: Task, root: Path, snapshot: Path, scratch: Path) -> Path:
    course = scratch / f"{task.student}__{task.assignment}"
    (course / "submitted" / task.student).mkdir(parents=True)
    shutil.copy(root / CONFIG, course / CONFIG)
    shutil.copy(snapshot, course / "gradebook.db")
    shutil.copytree(task.folder, course / "submitted" / task.student / task.assignment, symlinks=False)
    return course


def autograde_one(task: Task, root: Path, snapshot: Path, scratch: Path) -> tuple[Task, Path | None, list[str], float]:
    """Run nbgrader autograde for one submission in its own scratch course."""
    start = time.perf_counter()
    course = _scratch_course(task, root, snapshot, scratch)
    problems = []
    try:
        result = run_nbgrader(course, "autograde", task.assignment, "--student", task.student, "--force",
                              "--CourseDirectory.db_url=" + db_url(course), timeout=SUBMISSION_TIMEOUT)
        log = result.stdout + result.stderr
        if result.returncode != 0:
            problems.append(_first_error(log) or f"nbgrader autograde failed:\n{_tail(result, 10)}")
    except subprocess.TimeoutExpired:
        log = ""
        problems.append(f"grading took longer than {SUBMISSION_TIMEOUT} s and was stopped")
    (course / "autograde.log").write_text(log)
    return task, course, problems, time.perf_counter() - start


def _first_error(log: str) -> str | None:
    for line in log.splitlines():
        if "| ERROR]" in line and "Traceback" not in line and "see the the above" not in line:
            return line.split("| ERROR]", 1)[1].strip()
    return None


def merge(root: Path, task: Task, course: Path, problems: list[str]) -> Outcome:
    """Copy one worker's scores and notebooks into the course gradebook and folders."""
    outcome = Outcome(task.student, task.assignment, problems=list(problems))
    graded = course / "autograded" / task.student / task.assignment
    destination = root / "autograded" / task.student / task.assignment
    if destination.exists():
        shutil.rmtree(destination)
    if graded.is_dir():
        shutil.copytree(graded, destination)
    with Gradebook(db_url(root), COURSE_ID) as gradebook, Gradebook(db_url(course), COURSE_ID) as worker:
        gradebook.update_or_create_student(task.student)
        try:
            gradebook.remove_submission(task.assignment, task.student)
        except MissingEntry:
            pass
        try:
            theirs = worker.find_submission(task.assignment, task.student)
        except MissingEntry:
            theirs = None
            outcome.problems.append("nbgrader recorded no submission")
        gradebook.add_submission(task.assignment, task.student,
                                 **({"timestamp": theirs.timestamp} if theirs and theirs.timestamp else {}))
        if theirs is not None and graded.is_dir():
            _copy_grades(gradebook, theirs, task)
        outcome.score, outcome.max_score = zero_unscored(gradebook, task.assignment, task.student)
    missing = _missing_notebooks(root, task)
    outcome.problems.extend(f"no notebook named {name}.ipynb was submitted (scored 0)" for name in missing)
    return outcome


def _copy_grades(gradebook: Gradebook, theirs, task: Task) -> None:
    for notebook in theirs.notebooks:
        for grade in notebook.grades:
            ours = gradebook.find_grade(grade.name, notebook.name, task.assignment, task.student)
            ours.auto_score, ours.manual_score = grade.auto_score, grade.manual_score
            ours.needs_manual_grade = grade.needs_manual_grade
        for comment in notebook.comments:
            ours = gradebook.find_comment(comment.name, notebook.name, task.assignment, task.student)
            ours.auto_comment = comment.auto_comment


def _missing_notebooks(root: Path, task: Task) -> list[str]:
    with Gradebook(db_url(root), COURSE_ID) as gradebook:
        expected = [nb.name for nb in gradebook.find_assignment(task.assignment).notebooks]
    return [name for name in expected if not (task.folder / f"{name}.ipynb").is_file()]


def grade(root: Path, submissions: Path, jobs: int = 1, progress=None, *, executor: str = "sandbox",
          limits=None, bar: bool | None = None, scheduler: str | None = None) -> tuple[list[Outcome], list[str]]:
    """Autograde every submission under `submissions` with `jobs` workers.

    Returns the outcomes (one per student and assignment, in order) and the folders that
    were skipped with the reason. `progress(outcome)` is called as each one finishes.
    `executor` is "sandbox" (warm sandboxed workers, the default), "dask" (the same
    workers on the Dask cluster whose scheduler is at `scheduler`; the cluster's threads
    replace `jobs`) or "nbgrader" (stock autograde per submission); `limits` is a
    `sandbox.Limits` (cell_timeout defaults to the config's Execute.timeout); `bar` shows a
    tqdm progress bar (default: when stderr is a terminal and COURSE_QUIET is unset).
    """
    root = Path(root).resolve()
    if jobs < 1:
        raise CourseError(f"--jobs must be at least 1, got {jobs}")
    _check_executor(executor, scheduler)
    known = assignment_ids(root)
    tasks, skipped = find_submissions(submissions, known)
    ensure_generated(root, sorted({t.assignment for t in tasks}))
    if executor in ("sandbox", "dask"):
        from course_lib.autograde.executors.sandboxed import grade_sandboxed
        outcomes = grade_sandboxed(root, tasks, jobs, progress=progress, limits=limits, bar=bar, scheduler=scheduler)
        return sorted(outcomes, key=lambda o: (o.assignment, o.student)), skipped
    outcomes = []
    with tempfile.TemporaryDirectory(prefix="course-grade-") as tmp:
        scratch = Path(tmp)
        snapshot = scratch / "gradebook-snapshot.db"
        shutil.copy(root / "gradebook.db", snapshot)
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            futures = [pool.submit(autograde_one, task, root, snapshot, scratch) for task in tasks]
            for future in as_completed(futures):
                task, course, problems, seconds = future.result()
                outcome = merge(root, task, course, problems)
                outcome.seconds = seconds
                _keep_log(root, task, course)
                outcomes.append(outcome)
                if progress:
                    progress(outcome)
    return sorted(outcomes, key=lambda o: (o.assignment, o.student)), skipped


def _check_executor(executor: str, scheduler: str | None) -> None:
    if executor not in ("sandbox", "dask", "nbgrader"):
        raise CourseError(f"unknown executor {executor!r}; use 'sandbox' (default), 'dask' or 'nbgrader'")
    if executor == "dask" and not scheduler:
        raise CourseError("--executor dask needs --scheduler ADDRESS, e.g. tcp://10.0.0.5:8786 (see `dask scheduler`)")
    if scheduler and executor != "dask":
        raise CourseError(f"--scheduler is for --executor dask, not {executor!r}")


def _keep_log(root: Path, task: Task, course: Path) -> None:
    logs = root / "logs" / task.assignment
    logs.mkdir(parents=True, exist_ok=True)
    shutil.copy(course / "autograde.log", logs / f"{task.student}.log")


def summary_table(outcomes: list[Outcome], skipped: list[str] = ()) -> str:
    """The final table `course grade` prints: one row per submission, then failures and reasons."""
    rows = [f"{'student':<20} {'assignment':<22} {'score':>11} {'seconds':>8}  status"]
    for o in outcomes:
        status = "ok" if o.ok else "PROBLEM" if o.graded else "NOT GRADED"
        score = f"{o.score:>5g}/{o.max_score:<5g}" if o.graded else f"{'-':>5} {'':<5}"
        rows.append(f"{o.student:<20} {o.assignment:<22} {score} {o.seconds:>8.1f}  {status}")
    reasons = [(o, p) for o in outcomes for p in o.problems]
    if reasons:
        rows += ["", "Problems (the submission was still graded):"]
        rows += [f"  {o.student}/{o.assignment}: {p}" for o, p in reasons]
    failures = [(o, f) for o in outcomes for f in o.failed]
    if failures:
        rows += ["", "Failed tests:"]
        rows += [f"  {o.student}/{o.assignment}: {f}" for o, f in failures]
    if skipped:
        rows += ["", "Skipped:"] + [f"  {s}" for s in skipped]
    return "\n".join(rows)
