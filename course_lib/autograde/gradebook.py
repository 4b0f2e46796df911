"""The course gradebook (nbgrader's `gradebook.db`): every write `course grade` makes goes
through `record`, and the reads the other commands need.

`record` replaces a submission's entry (keeping what graders gave by hand: manual scores,
extra credit, comments): the old one is removed, the new one added, each
executed notebook scored with nbgrader's own `SaveAutoGrades`, any test cell still
without a score (a notebook that was missing or could not run) gets 0, and a submission
whose timestamp is after the assignment's due date gets the late penalty of the
`AssignLatePenalties.plugin_class` nbgrader_config.py names (kept apart from the score, as
nbgrader does).

Answers graded by hand (nbgrader's "manually graded answer": a cell that is both a
solution and graded, such as a written answer in markdown) are left as nbgrader leaves
them: an answer the student did not change scores 0, an answered one has no score and
needs manual grading (formgrader) until a grader gives it one. `SubmissionScore` keeps
their points apart from the automatic part.
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
    """One graded cell: `score` is nbgrader's (the manual score if any, else the automatic
    one, else 0); `manual` marks an answer graded by hand, `pending` one still to grade."""

    notebook: str
    cell: str
    score: float
    max_score: float
    manual: bool = False
    pending: bool = False


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

    @property
    def auto_score(self) -> float:
        return sum(c.score for c in self.cells if not c.manual)

    @property
    def auto_max_score(self) -> float:
        return sum(c.max_score for c in self.cells if not c.manual)

    @property
    def manual_score(self) -> float:
        """Points given so far to the answers graded by hand."""
        return sum(c.score for c in self.cells if c.manual and not c.pending)

    @property
    def manual_max_score(self) -> float:
        return sum(c.max_score for c in self.cells if c.manual)

    @property
    def needs_manual_grading(self) -> float:
        """The points of the answers still waiting for a grader (0 in `score` meanwhile)."""
        return sum(c.max_score for c in self.cells if c.pending)


def read_scores(url: str, assignment: str | None = None) -> list[SubmissionScore]:
    """Every submission in a gradebook, with its per-cell auto scores."""
    out = []
    with Gradebook(url, COURSE_ID) as gradebook:
        assignments = [gradebook.find_assignment(assignment)] if assignment else gradebook.assignments
        for hw in assignments:
            out += [_submission_score(submission) for submission in gradebook.assignment_submissions(hw.name)]
    return sorted(out, key=lambda s: (s.assignment, s.student))


def _submission_score(submission) -> SubmissionScore:
    cells = tuple(_cell_score(nb, grade, manual_cells(nb.notebook))
                  for nb in submission.notebooks for grade in sorted(nb.grades, key=lambda g: g.name))
    return SubmissionScore(submission.student.id, submission.assignment.name, float(submission.score),
                           float(submission.max_score), cells, float(submission.late_submission_penalty),
                           float(submission.total_seconds_late))


def _cell_score(notebook, grade, manual: set[str]) -> CellScore:
    by_hand = grade.name in manual
    pending = by_hand and grade.auto_score is None and grade.manual_score is None
    return CellScore(notebook.name, grade.name, float(grade.score), float(grade.max_score), by_hand, pending)


def manual_cells(notebook) -> set[str]:
    """The grade_ids of a source notebook's answers graded by hand: cells that are both
    graded and a solution (nbgrader's "manually graded answer", e.g. a written answer)."""
    return {cell.name for cell in notebook.grade_cells} & {cell.name for cell in notebook.solution_cells}


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
           notebooks: dict[str, nbformat.NotebookNode]) -> SubmissionScore:
    """Replace the student's submission of `assignment` with these executed notebooks,
    scored by nbgrader's rules; returns the submission's scores."""
    with Gradebook(url, COURSE_ID) as gradebook:
        gradebook.update_or_create_student(student)
        given = _given_by_hand(gradebook, assignment, student)
        try:
            gradebook.remove_submission(assignment, student)
        except MissingEntry:
            pass
        gradebook.add_submission(assignment, student, **({"timestamp": timestamp} if timestamp else {}))
        _give_back(gradebook, assignment, student, *given)
    resources = {name: {"nbgrader": {"db_url": url, "assignment": assignment, "notebook": name, "student": student}}
                 for name in notebooks}
    for name, notebook in notebooks.items():
        SaveAutoGrades(config=config).preprocess(notebook, resources[name])
    with Gradebook(url, COURSE_ID) as gradebook:
        _zero_unscored(gradebook, assignment, student, set(notebooks))
    for name, notebook in notebooks.items():  # the configured LateSubmissionPlugin, on the final scores
        AssignLatePenalties(config=config).preprocess(notebook, resources[name])
    with Gradebook(url, COURSE_ID) as gradebook:
        return _submission_score(gradebook.find_submission(assignment, student))


def _given_by_hand(gradebook: Gradebook, assignment: str, student: str) -> tuple[dict, dict]:
    """What graders gave the submission so far: {(notebook, cell): (manual_score, extra_credit)}
    and {(notebook, cell): manual_comment}; empty when there is no submission yet."""
    try:
        submission = gradebook.find_submission(assignment, student)
    except MissingEntry:
        return {}, {}
    grades = {(nb.name, g.name): (g.manual_score, g.extra_credit) for nb in submission.notebooks for g in nb.grades
              if g.manual_score is not None or g.extra_credit is not None}
    comments = {(nb.name, c.name): c.manual_comment for nb in submission.notebooks for c in nb.comments
                if c.manual_comment}
    return grades, comments


def _give_back(gradebook: Gradebook, assignment: str, student: str, grades: dict, comments: dict) -> None:
    """Put what graders gave back on the new entry, before it is scored: nbgrader's SaveAutoGrades
    keeps a manual score and flags its cell for review, as `nbgrader autograde` does on a regrade.
    A cell the assignment no longer has is dropped."""
    for (notebook, cell), (score, extra) in grades.items():
        try:
            grade = gradebook.find_grade(cell, notebook, assignment, student)
        except MissingEntry:
            continue
        grade.manual_score, grade.extra_credit = score, extra
    for (notebook, cell), text in comments.items():
        try:
            gradebook.find_comment(cell, notebook, assignment, student).manual_comment = text
        except MissingEntry:
            continue
    gradebook.db.commit()


def _zero_unscored(gradebook: Gradebook, assignment: str, student: str, scored: set[str]) -> None:
    """Score 0 for every cell of a submission that has no score yet (its notebook was missing
    or could not run), except the answers graded by hand in the `scored` notebooks: nbgrader
    left an answered one to the grader (no score, needs_manual_grade); commit."""
    submission = gradebook.find_submission(assignment, student)
    for notebook in submission.notebooks:
        manual = manual_cells(notebook.notebook) if notebook.name in scored else set()
        for grade in notebook.grades:
            if grade.auto_score is None and grade.manual_score is None and grade.name not in manual:
                grade.auto_score, grade.needs_manual_grade = 0.0, False
    gradebook.db.commit()
