"""What one submission carries through the pipeline (`pipeline.py`): found (`Task`), prepared
(`Prepared`: sanitized against the gradebook), run by an executor (`Ran`: its executed
notebooks) and finally scored and recorded (`Outcome`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import nbformat

from course_lib.autograde.sanitize import Sanitized


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
