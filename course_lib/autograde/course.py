"""The course directory and nbgrader's steps, run as subprocesses of this Python.

The course root holds `nbgrader_config.py`, `solutions/<hw>/` (source) and, once generated,
`assignments/<hw>/` (release) and `gradebook.db`. nbgrader is run with
`python -m nbgrader ...` from the course root, with this interpreter's `bin/` first on
PATH (nbgrader calls `alembic` when it creates a gradebook).
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

from course_lib.autograde.gradebook import SubmissionScore, read_scores

CONFIG = "nbgrader_config.py"


class CourseError(RuntimeError):
    """A problem with the course directory or an nbgrader step, with what to do about it."""


def find_root(path=".") -> Path:
    """The course root: `path` or the nearest parent holding nbgrader_config.py."""
    start = Path(path).resolve()
    for candidate in (start, *start.parents):
        if (candidate / CONFIG).is_file():
            return candidate
    raise CourseError(f"no {CONFIG} in {start} or its parents; run `course` from the course root (the repository)")


def nbgrader_env() -> dict:
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env.setdefault("COURSE_QUIET", "1")
    env.setdefault("MPLBACKEND", "Agg")
    env.setdefault("PYTHONWARNINGS", "ignore")
    return env


def run_nbgrader(root: Path, *args: str, timeout: float | None = None) -> subprocess.CompletedProcess:
    """Run one nbgrader command in `root`; the output is captured and returned."""
    return subprocess.run(
        [sys.executable, "-m", "nbgrader", *args], cwd=root, env=nbgrader_env(),
        capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
    )


def db_url(root: Path) -> str:
    return f"sqlite:///{Path(root) / 'gradebook.db'}"


def assignment_ids(root: Path) -> list[str]:
    """The homework folders under solutions/, in order."""
    source = Path(root) / "solutions"
    if not source.is_dir():
        raise CourseError(f"{source} does not exist: the course's source notebooks live in solutions/<hw>/")
    return sorted(p.name for p in source.iterdir() if p.is_dir() and list(p.glob("*.ipynb")))


def select(root: Path, wanted) -> list[str]:
    known = assignment_ids(root)
    if not wanted:
        return known
    unknown = [hw for hw in wanted if hw not in known]
    if unknown:
        raise CourseError(f"unknown assignment(s) {unknown}; the course has {known}")
    return list(wanted)


def generate(root: Path, wanted=None) -> list[str]:
    """Write assignments/<hw>/ (student versions) from solutions/<hw>/ and record each
    assignment in the gradebook. Returns the assignment ids generated."""
    generated = []
    for hw in select(root, wanted):
        result = run_nbgrader(root, "generate_assignment", hw, "--force", "--CourseDirectory.db_url=" + db_url(root))
        if result.returncode != 0 or not (Path(root) / "assignments" / hw).is_dir():
            raise CourseError(f"nbgrader could not generate {hw}:\n{output_tail(result)}")
        generated.append(hw)
    return generated


def output_tail(result: subprocess.CompletedProcess, lines: int = 30) -> str:
    return "\n".join((result.stdout + result.stderr).splitlines()[-lines:])


# the raw score split: the automatic part, the part graded by hand, and the points still waiting for a grader
SPLIT_COLUMNS = ("auto_score", "auto_max_score", "manual_score", "manual_max_score", "needs_manual_grading")


def export_csv(root: Path, path: Path) -> int:
    """One row per student and assignment: the score after the late penalty, max, percent,
    the raw score, the penalty, how late, the raw score split into its automatic part and the
    part graded by hand (SPLIT_COLUMNS), and each graded cell's score (empty while it waits for
    a grader)."""
    scores = read_scores(db_url(root))
    cell_columns = sorted({f"{s.assignment}:{name}" for s in scores for name in s.cell_scores()})
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["student", "assignment", "score", "max_score", "percent", "raw_score", "late_penalty",
                         "seconds_late", *SPLIT_COLUMNS, *cell_columns])
        for s in scores:
            cells = {f"{s.assignment}:{c.notebook}/{c.cell}": "" if c.pending else f"{c.score:g}" for c in s.cells}
            percent = 100 * s.final_score / s.max_score if s.max_score else 0.0
            writer.writerow([s.student, s.assignment, f"{s.final_score:g}", f"{s.max_score:g}", f"{percent:.1f}",
                             f"{s.score:g}", f"{s.late_penalty:g}", f"{s.seconds_late:.0f}",
                             *(f"{getattr(s, name):g}" for name in SPLIT_COLUMNS),
                             *(cells.get(c, "") for c in cell_columns)])
    return len(scores)


def generate_feedback(root: Path, wanted=None) -> list[SubmissionScore]:
    """HTML feedback for every autograded submission: feedback/<student>/<hw>/<nb>.html.
    Returns the submissions whose written answers still wait for a grader: their feedback
    shows those answers at 0 until a grader scores them and the feedback is written again."""
    chosen = select(root, wanted)
    for hw in chosen:
        if not (Path(root) / "autograded").is_dir():
            raise CourseError("nothing has been graded yet: run `course grade SUBMISSIONS_DIR` first")
        result = run_nbgrader(root, "generate_feedback", hw, "--force", "--CourseDirectory.db_url=" + db_url(root))
        if result.returncode != 0:
            raise CourseError(f"nbgrader could not write feedback for {hw}:\n{output_tail(result)}")
    return [s for s in read_scores(db_url(root)) if s.assignment in chosen and s.needs_manual_grading]
