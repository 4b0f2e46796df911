"""`course grade`: autograde every submission into one gradebook, in five steps.

    find      SUBMISSIONS/<student>/<hw>/ folders of this course's assignments   (`find`)
    prepare   read and sanitize each notebook against the gradebook, in the     (`prepare`, sanitize.py)
              grading process, before any of it runs
    run       an executor runs the notebooks and returns them executed          (executors/)
    score     nbgrader's IgnorePattern, and the test cells that lost points     (`score`)
    record    the gradebook entry replaced (gradebook.record), autograded/ and   (`record`)
              logs/ written

The executors share one interface (`executors.base.Executor`): "sandbox" (the default)
runs warm sandboxed workers on this machine (`--jobs N`), "dask" the same workers on a Dask
cluster, "nbgrader" stock `nbgrader autograde` per submission, kept as the reference.
Only this process touches the gradebook, the course root and the submissions; a submission
the machinery could not run is reported NOT GRADED and its gradebook entry left alone.
See docs/grading.md.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Iterator

import nbformat
from nbgrader import utils
from nbgrader.preprocessors import IgnorePattern
from traitlets.config import Config

from course_lib.autograde import gradebook
from course_lib.autograde.carry import carry_files
from course_lib.autograde.course import CourseError, assignment_ids, db_url, generate
from course_lib.autograde.executors.base import Executor
from course_lib.autograde.protocol import Limits
from course_lib.autograde.sanitize import Sanitized, load_config, sanitize
from course_lib.autograde.submission import MANUAL_NOTE, Outcome, Prepared, Ran, Task

EXECUTORS = ("sandbox", "dask", "nbgrader")


def find(submissions: Path, known: list[str]) -> tuple[list[Task], list[str]]:
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


def prepare(task: Task, root: Path, url: str, expected: list[str], config: Config) -> Prepared:
    """Read and sanitize each notebook the assignment expects; a missing one is a zero with a reason."""
    prepared = Prepared(task)
    stamp = task.folder / "timestamp.txt"
    if stamp.is_file():
        try:
            prepared.timestamp = utils.parse_utc(stamp.read_text().strip())
        except Exception:  # noqa: BLE001 - a bad timestamp is not a reason to fail grading
            prepared.problems.append("timestamp.txt could not be read; graded without a timestamp")
    present = sorted(p.name for p in task.folder.glob("*.ipynb"))
    for name in expected:
        path = task.folder / f"{name}.ipynb"
        if not path.is_file() or path.is_symlink():
            others = [p for p in present if p != f"{name}.ipynb"]
            hint = f"; found {', '.join(others)} (rename it to {name}.ipynb)" if others else ""
            prepared.problems.append(f"no notebook named {name}.ipynb was submitted (scored 0){hint}")
            prepared.notebooks.append(Sanitized(name))
            continue
        result = sanitize(path, name, root, task.assignment, task.student, url, config)
        prepared.problems += result.problems
        prepared.notebooks.append(result)
    return prepared


def score(ran: Ran, config: Config) -> Outcome:
    """Apply nbgrader's IgnorePattern to each executed notebook and list the test cells that failed."""
    task = ran.submission.task
    outcome = Outcome(task.student, task.assignment, seconds=ran.seconds,
                      problems=ran.submission.problems + ran.problems)
    for sanitized in ran.submission.notebooks:
        outcome.notes += sanitized.notes
    for name, notebook in ran.notebooks.items():
        resources = {"nbgrader": {"assignment": task.assignment, "notebook": name, "student": task.student}}
        ran.notebooks[name], _ = IgnorePattern(config=config).preprocess(notebook, resources)
        outcome.failed += _failures(ran.notebooks[name])
    return outcome


def _failures(notebook: nbformat.NotebookNode) -> list[str]:
    failed = []
    for cell in notebook.cells:
        if cell.cell_type == "code" and utils.is_grade(cell) and not utils.is_solution(cell):
            for output in cell.outputs:
                if output.output_type == "error":
                    error = f"{output.ename}: {output.evalue[:300]}" if output.evalue else output.ename
                    failed.append(f"{cell.metadata.nbgrader['grade_id']}: {error}")
                    break
                if output.output_type == "stream" and output.name == "stderr":
                    failed.append(f"{cell.metadata.nbgrader['grade_id']}: wrote to stderr: {output.text[:200]!r}")
                    break
    return failed


def record(root: Path, url: str, config: Config, ran: Ran, outcome: Outcome) -> None:
    """Replace the submission in the gradebook and write autograded/<student>/<hw>/: the
    executed notebooks and the other files stock autograde keeps (carry.py)."""
    task = ran.submission.task
    scores = gradebook.record(url, config, task.student, task.assignment, ran.submission.timestamp, ran.notebooks)
    outcome.score, outcome.max_score = scores.score, scores.max_score
    outcome.manual_max_score, outcome.needs_manual_grading = scores.manual_max_score, scores.needs_manual_grading
    destination = root / "autograded" / task.student / task.assignment
    if destination.exists():
        shutil.rmtree(destination)
    if not ran.notebooks:  # nothing ran: no folder, as before (nbgrader's feedback would fail on it)
        return
    destination.mkdir(parents=True)
    source = root / config.CourseDirectory.get("source_directory", "source") / task.assignment
    outcome.notes += carry_files(task.folder, source, destination, task.assignment, config)
    for name, notebook in ran.notebooks.items():
        nbformat.write(notebook, destination / f"{name}.ipynb")


def not_graded(prepared: Prepared, reason: str) -> Outcome:
    task = prepared.task
    return Outcome(task.student, task.assignment, graded=False,
                   problems=[f"NOT GRADED: {reason}; its gradebook entry is unchanged; run course grade again"])


def write_log(root: Path, outcome: Outcome, mode: str, ran: Ran) -> None:
    logs = root / "logs" / outcome.assignment
    logs.mkdir(parents=True, exist_ok=True)
    result = f"score {outcome.score_text()}" if outcome.graded else "NOT GRADED"
    lines = [f"student {outcome.student}, assignment {outcome.assignment}", mode,
             f"{result} in {outcome.seconds:.2f} s", *ran.log]
    lines += [f"repaired: {n}" for n in outcome.notes]
    lines += [f"problem: {p}" for p in outcome.problems]
    lines += [f"failed: {f}" for f in outcome.failed]
    (logs / f"{outcome.student}.log").write_text("\n".join(lines) + "\n")


def open_executor(kind: str, root: Path, jobs: int, limits: Limits, scheduler: str | None) -> Executor:
    """The executor named `kind`; each is imported only when chosen (Dask's `distributed` is heavy)."""
    if kind == "sandbox":
        from course_lib.autograde.executors.sandboxed import LocalExecutor
        return LocalExecutor(jobs, limits)
    if kind == "dask":
        from course_lib.autograde.executors.dask_cluster import connect
        return connect(scheduler, limits)
    from course_lib.autograde.executors.stock_nbgrader import StockExecutor
    return StockExecutor(root, jobs)


def grade(root: Path, submissions: Path, jobs: int = 1, progress=None, *, executor: str = "sandbox",
          limits: Limits | None = None, bar: bool | None = None,
          scheduler: str | None = None) -> tuple[list[Outcome], list[str]]:
    """Autograde every submission under `submissions`: find -> prepare -> run -> score -> record.

    Returns the outcomes (one per student and assignment, in order) and the folders that
    were skipped with the reason. `progress(outcome)` is called as each one finishes.
    `executor` is "sandbox" (warm sandboxed workers, the default, `jobs` of them), "dask"
    (the same workers on the Dask cluster whose scheduler is at `scheduler`; the cluster's
    threads replace `jobs`) or "nbgrader" (stock autograde per submission, `jobs` at a
    time); `limits` is a `protocol.Limits` (cell_timeout defaults to the config's
    Execute.timeout); `bar` shows a tqdm progress bar (default: when stderr is a terminal
    and COURSE_QUIET is unset).
    """
    root = Path(root).resolve()
    if jobs < 1:
        raise CourseError(f"--jobs must be at least 1, got {jobs}")
    _check_executor(executor, scheduler)
    tasks, skipped = find(submissions, assignment_ids(root))
    url, config = db_url(root), load_config(root)
    assignments = sorted({t.assignment for t in tasks})
    missing = gradebook.missing_assignments(url, assignments)
    if missing:
        generate(root, missing)
    expected = gradebook.expected_notebooks(url, assignments)
    with open_executor(executor, root, jobs, limits or default_limits(config), scheduler) as running:
        mode = running.describe()
        print(f"course grade: {mode}", file=sys.stderr)
        prepared = (prepare(task, root, url, expected[task.assignment], config) for task in tasks)
        runs = running.run(prepared, len(tasks))
        try:
            outcomes = _score_and_record_all(root, url, config, runs, mode, len(tasks), progress, bar)
        finally:
            runs.close()
    return sorted(outcomes, key=lambda o: (o.assignment, o.student)), skipped


def default_limits(config: Config) -> Limits:
    timeout = config.Execute.get("timeout", 120) if "Execute" in config else 120
    return Limits(cell_timeout=float(timeout or 120))


def _check_executor(executor: str, scheduler: str | None) -> None:
    if executor not in EXECUTORS:
        raise CourseError(f"unknown executor {executor!r}; use 'sandbox' (default), 'dask' or 'nbgrader'")
    if executor == "dask" and not scheduler:
        raise CourseError("--executor dask needs --scheduler ADDRESS, e.g. tcp://10.0.0.5:8786 (see `dask scheduler`)")
    if scheduler and executor != "dask":
        raise CourseError(f"--scheduler is for --executor dask, not {executor!r}")


def _score_and_record_all(root: Path, url: str, config: Config, runs: Iterator[Ran], mode: str, count: int,
                          progress, bar) -> list[Outcome]:
    """Score and record each submission as its run finishes, with a progress bar."""
    outcomes = []
    ticker = None
    if _show_bar(bar):
        from tqdm.auto import tqdm
        ticker = tqdm(total=count, unit="notebook", desc="grading")
    try:
        for ran in runs:
            if ran.not_graded:
                outcome = not_graded(ran.submission, ran.not_graded)
            else:
                outcome = score(ran, config)
                record(root, url, config, ran, outcome)
            write_log(root, outcome, mode, ran)
            outcomes.append(outcome)
            if ticker is not None:
                ticker.update(1)
            if progress:
                progress(outcome)
    finally:
        if ticker is not None:
            ticker.close()
    return outcomes


def _show_bar(bar: bool | None) -> bool:
    if bar is not None:
        return bar
    return sys.stderr.isatty() and not os.environ.get("COURSE_QUIET")


def summary_table(outcomes: list[Outcome], skipped: list[str] = ()) -> str:
    """The final table `course grade` prints: one row per submission, then failures and reasons."""
    rows = [f"{'student':<20} {'assignment':<22} {'score':>11} {'seconds':>8}  status"]
    for o in outcomes:
        status = "ok" if o.ok else "PROBLEM" if o.graded else "NOT GRADED"
        if o.graded and o.needs_manual_grading:
            status += f", {o.needs_manual_grading:g} points need manual grading"
        shown = o.max_score - o.needs_manual_grading  # the points graded so far
        score_text = f"{o.score:>5g}/{shown:<5g}" if o.graded else f"{'-':>5} {'':<5}"
        rows.append(f"{o.student:<20} {o.assignment:<22} {score_text} {o.seconds:>8.1f}  {status}")
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
    if any(o.graded and o.needs_manual_grading for o in outcomes):
        rows += ["", MANUAL_NOTE]
    return "\n".join(rows)
