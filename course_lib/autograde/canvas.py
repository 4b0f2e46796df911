"""`course export --format canvas --roster ROSTER.csv GRADES.csv`: the gradebook as the CSV
Canvas's gradebook import accepts.

The roster is Canvas's own gradebook export (Grades > Export), or any CSV with its
identity columns: Student, ID, SIS User ID, SIS Login ID, Section. A student's nbgrader id
(their JupyterHub / Unix user name) is matched with the roster's `nbgrader_id` column when
it has one, else with `SIS Login ID`.

The file written has those five columns, one column per assignment (named after it, its
points possible in the "Points Possible" row under the header), and one row per roster
student, with the score after the late penalty (blank where nothing was graded, which
Canvas leaves unchanged). Nothing is dropped silently: a graded student the roster does
not know gets a row with empty Canvas ids (Canvas rejects it; add them to the roster), and
both they and the roster's students without any grade are reported.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

from nbgrader.api import Gradebook

from course_lib.autograde.gradebook import COURSE_ID, read_scores

IDENTITY = ("Student", "ID", "SIS User ID", "SIS Login ID", "Section")
POINTS_POSSIBLE = "Points Possible"


class RosterError(ValueError):
    """A roster that cannot be used, with what to do about it."""


@dataclass
class CanvasExport:
    rows: int = 0
    not_in_roster: list[str] = field(default_factory=list)  # graded nbgrader ids the roster lacks
    without_grades: list[str] = field(default_factory=list)  # roster students with no graded submission


def read_roster(path: Path) -> dict[str, dict[str, str]]:
    """{nbgrader id: the roster row's identity columns}, in the roster's order."""
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in IDENTITY if c not in (reader.fieldnames or [])]
        if missing:
            raise RosterError(f"{path} lacks the columns {', '.join(missing)}; use Canvas's gradebook export "
                              f"(Grades > Export) or a CSV with {', '.join(IDENTITY)}")
        key = "nbgrader_id" if "nbgrader_id" in reader.fieldnames else "SIS Login ID"
        roster = {}
        for row in reader:
            if row["Student"].strip() == POINTS_POSSIBLE or not row[key].strip():
                continue  # Canvas's points row and its test student
            roster[row[key].strip()] = {column: row[column] for column in IDENTITY}
    return roster


def _assignments(url: str) -> dict[str, float]:
    """{assignment: points possible}, in the gradebook's order."""
    with Gradebook(url, COURSE_ID) as gradebook:
        return {hw.name: float(hw.max_score) for hw in gradebook.assignments}


def export_canvas(url: str, roster_path: Path, path: Path) -> CanvasExport:
    """Write the Canvas import CSV to `path`; return what was written and what to look at."""
    roster = read_roster(roster_path)
    points = _assignments(url)
    scores: dict[str, dict[str, float]] = {}
    for s in read_scores(url):
        scores.setdefault(s.student, {})[s.assignment] = s.final_score
    report = CanvasExport(not_in_roster=sorted(set(scores) - set(roster)),
                          without_grades=[student for student in roster if student not in scores])
    identities = {**roster, **{student: {"Student": student} for student in report.not_in_roster}}
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow([*IDENTITY, *points])
        writer.writerow([POINTS_POSSIBLE, "", "", "", "", *(f"{p:g}" for p in points.values())])
        for student, identity in identities.items():
            graded = scores.get(student, {})
            writer.writerow([*(identity.get(c, "") for c in IDENTITY),
                             *(f"{graded[hw]:g}" if hw in graded else "" for hw in points)])
            report.rows += 1
    return report
