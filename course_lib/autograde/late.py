"""The late-submission penalty: an nbgrader `LateSubmissionPlugin`.

nbgrader_config.py names it (`c.AssignLatePenalties.plugin_class`); `course grade` and stock
`nbgrader autograde` then call it for every notebook of a submission whose timestamp
(`timestamp.txt`, written by `nbgrader submit`) is after the assignment's due date in the
gradebook. nbgrader keeps the penalty apart from the score and caps it at the notebook's
score.
"""

from __future__ import annotations

import math

from nbgrader.plugins import LateSubmissionPlugin
from traitlets import Float


class SubMarks(LateSubmissionPlugin):
    """`points_per_hour` off for every hour or part of an hour late."""

    points_per_hour = Float(1.0, help="Points subtracted per started hour late.").tag(config=True)

    def late_submission_penalty(self, student_id: str, score: float, total_seconds_late: float) -> float:
        hours = math.ceil(total_seconds_late / 3600)
        return min(score, hours * self.points_per_hour)
