"""The course gradebook (nbgrader's `gradebook.db`): every write `course grade` makes goes
through `record`, and the reads the other commands need.

`record` replaces a submission's entry: the old one is removed, the new one added, each
executed notebook scored with nbgrader's own `SaveAutoGrades`, any test cell still
without a score (a notebook that was missing or could not run) gets 0, and a submission
whose timestamp is after the assignment's due date gets the late penalty of the
`AssignLatePenalties.plugin_class` nbgrader_config.py names (kept apart from the score, as
nbgrader does).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import nbformat
from nbgrader.api import Gradebook, MissingEntry
from nbgrader.preprocessors import AssignLatePenalties, SaveAutoGrades
from traitlets.config import Config

COURSE_ID = "dl-course"


@dataclass(frozen=True)
class CellScore:
    notebook: str
    cell: str
    score: float
    max_score: float


@dataclass(frozen=True)
class SubmissionScore:
    student: str
    assignment: str
    score: float
    max_score: float
    cells: tuple[CellScore, ...]
    late_penalty: float = 0.0  # points off the score (the configured LateSubmissionPlugin)
    seconds_late: float = 0.0

    @property
    def final_score(self) -> float:
        return self.score - self.late_penalty

    def cell_scores(self) -> dict[str, float]:
        return {f"{c.notebook}/{c.cell}": c.score for c in self.cells}


def read_scores(url: str, assignment: str | None = None) -> list[SubmissionScore]:
    """Every submission in a gradebook, with its per-cell auto scores."""
    out = []
    with Gradebook(url, COURSE_ID) as gradebook:
        assignments = [gradebook.find_assignment(assignment)] if assignment else gradebook.assignments
        for hw in assignments:
            for submission in gradebook.assignment_submissions(hw.name):
                cells = tuple(
                    CellScore(nb.name, grade.name, float(grade.score), float(grade.max_score))
                    for nb in submission.notebooks for grade in sorted(nb.grades, key=lambda g: g.name)
                )
                out.append(SubmissionScore(submission.student.id, hw.name, float(submission.score),
                                           float(submission.max_score), cells,
                                           float(submission.late_submission_penalty),
                                           float(submission.total_seconds_late)))
    return sorted(out, key=lambda s: (s.assignment, s.student))


def missing_assignments(url: str, assignments: list[str]) -> list[str]:
    """The assignments not yet in the gradebook (nbgrader reads their source cells there)."""
    missing = []
    with Gradebook(url, COURSE_ID) as gradebook:
        for hw in assignments:
            try:
                gradebook.find_assignment(hw)
            except MissingEntry:
                missing.append(hw)
    return missing


def expected_notebooks(url: str, assignments: list[str]) -> dict[str, list[str]]:
    """{assignment: the names of its notebooks}, as recorded by `course generate`."""
    with Gradebook(url, COURSE_ID) as gradebook:
        return {hw: sorted(nb.name for nb in gradebook.find_assignment(hw).notebooks) for hw in assignments}


def record(url: str, config: Config, student: str, assignment: str, timestamp: datetime | None,
           notebooks: dict[str, nbformat.NotebookNode]) -> tuple[float, float]:
    """Replace the student's submission of `assignment` with these executed notebooks,
    scored by nbgrader's rules; returns the submission's (score, max_score)."""
    with Gradebook(url, COURSE_ID) as gradebook:
        gradebook.update_or_create_student(student)
        try:
            gradebook.remove_submission(assignment, student)
        except MissingEntry:
            pass
        gradebook.add_submission(assignment, student, **({"timestamp": timestamp} if timestamp else {}))
    resources = {name: {"nbgrader": {"db_url": url, "assignment": assignment, "notebook": name, "student": student}}
                 for name in notebooks}
    for name, notebook in notebooks.items():
        SaveAutoGrades(config=config).preprocess(notebook, resources[name])
    with Gradebook(url, COURSE_ID) as gradebook:
        score = _zero_unscored(gradebook, assignment, student)
    for name, notebook in notebooks.items():  # the configured LateSubmissionPlugin, on the final scores
        AssignLatePenalties(config=config).preprocess(notebook, resources[name])
    return score


def _zero_unscored(gradebook: Gradebook, assignment: str, student: str) -> tuple[float, float]:
    """Score 0 for every test cell of a submission that has no score yet; commit; return
    the submission's (score, max_score)."""
    submission = gradebook.find_submission(assignment, student)
    for notebook in submission.notebooks:
        for grade in notebook.grades:
            if grade.auto_score is None and grade.manual_score is None:
                grade.auto_score, grade.needs_manual_grade = 0.0, False
    gradebook.db.commit()
    submission = gradebook.find_submission(assignment, student)
    return float(submission.score), float(submission.max_score)
