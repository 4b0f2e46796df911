"""`course validate`: every solution must get full marks for the automatic part and every
released notebook zero. Answers graded by hand (written answers) have no automatic score:
a solution's are left for manual grading, a released notebook's unanswered ones score 0.

Unlike `nbgrader validate`, which exits 0 even when tests fail, this grades both versions
of every assignment in a scratch copy of the course and reports each mismatch.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from course_lib.autograde.course import CONFIG, generate, select
from course_lib.autograde.pipeline import grade

SOLUTION, RELEASED = "solution", "released"


@dataclass(frozen=True)
class Verdict:
    assignment: str
    version: str
    score: float
    max_score: float
    expected: float
    manual_max_score: float = 0.0  # points of the answers graded by hand, not expected from the solution

    @property
    def ok(self) -> bool:
        return abs(self.score - self.expected) < 1e-9 and self.max_score > 0


def validate(root: Path, wanted=None, jobs: int = 1, extra: dict | None = None) -> list[Verdict]:
    """Grade the solution (expects the full automatic part) and the released notebook (expects zero) of
    each assignment; `extra` maps a version name to {hw: folder} of other notebooks that
    should get full marks (for example alternative correct solutions)."""
    root = Path(root).resolve()
    assignments = select(root, wanted)
    with tempfile.TemporaryDirectory(prefix="course-validate-") as tmp:
        course, submissions = Path(tmp) / "course", Path(tmp) / "submissions"
        course.mkdir()
        shutil.copy(root / CONFIG, course / CONFIG)
        for hw in assignments:
            shutil.copytree(root / "solutions" / hw, course / "solutions" / hw)
        generate(course, assignments)
        versions = {SOLUTION: {hw: course / "solutions" / hw for hw in assignments},
                    RELEASED: {hw: course / "assignments" / hw for hw in assignments}, **(extra or {})}
        for version, folders in versions.items():
            for hw, folder in folders.items():
                shutil.copytree(folder, submissions / version / hw,
                                ignore=shutil.ignore_patterns("*.pyc", "__pycache__"))
        outcomes, _ = grade(course, submissions, jobs=jobs)
    return [Verdict(o.assignment, o.student, o.score, o.max_score,
                    0.0 if o.student == RELEASED else o.auto_max_score, o.manual_max_score) for o in outcomes]
