"""What one submission carries through the pipeline (`pipeline.py`): found (`Task`), prepared
(`Prepared`: sanitized against the gradebook), run by an executor (`Ran`: its executed
notebooks) and finally scored and recorded (`Outcome`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import nbformat

from course_lib.autograde.sanitize import Sanitized

MANUAL_NOTE = ("Written answers are graded by hand: the score leaves them out until a grader gives them points "
               "in nbgrader's formgrader (from the course root: `jupyter lab`, then Nbgrader > Formgrader, or "
               "`nbgrader formgrade`; see docs/grading.md).")


@dataclass
class Task:
    """SUBMISSIONS/<student>/<assignment>/: one student's folder for one assignment."""

    student: str
    assignment: str
    folder: Path

    @property
    def name(self) -> str:
        return f"{self.student}/{self.assignment}"


@dataclass
class Prepared:
    """A submission read and sanitized in the grading process, before any of it runs."""

    task: Task
    notebooks: list[Sanitized] = field(default_factory=list)  # one per notebook the assignment expects
    problems: list[str] = field(default_factory=list)
    timestamp: datetime | None = None


@dataclass
class Ran:
    """What an executor returns for one submission: its executed notebooks, by name (a
    notebook that never ran is absent), or `not_graded` with the reason when the grading
    machinery, not the student's code, failed (its gradebook entry is then left alone)."""

    submission: Prepared
    notebooks: dict[str, nbformat.NotebookNode] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)  # what went wrong while running
    log: list[str] = field(default_factory=list)       # lines for logs/<hw>/<student>.log
    seconds: float = 0.0
    not_graded: str | None = None


@dataclass
class Outcome:
    """What happened to one submission. `score` and `max_score` are nbgrader's totals, which
    include the answers graded by hand (`manual_max_score` points, of which
    `needs_manual_grading` still wait for a grader and count 0 in `score`)."""

    student: str
    assignment: str
    score: float = 0.0
    max_score: float = 0.0
    manual_max_score: float = 0.0
    needs_manual_grading: float = 0.0
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)   # test cells that lost points, with the message
    notes: list[str] = field(default_factory=list)    # what the grader repaired or converted
    graded: bool = True  # False: the grading machinery failed; the gradebook was not touched

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def auto_max_score(self) -> float:
        """The automatic part of `max_score` (without the answers graded by hand)."""
        return self.max_score - self.manual_max_score

    def score_text(self) -> str:
        """"16/20" or, while 4 points of answers wait for a grader, "16/16 + 4 need manual grading"."""
        pending = self.needs_manual_grading
        if not pending:
            return f"{self.score:g}/{self.max_score:g}"
        return f"{self.score:g}/{self.max_score - pending:g} + {pending:g} need manual grading"
