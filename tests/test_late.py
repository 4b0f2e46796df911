"""Late work: the SubMarks plugin (course_lib/autograde/late.py) and the penalty `course
grade`'s record step writes to the gradebook and `course export` shows, for a submission
with a fake timestamp against a due date in the gradebook. Fast: a one-cell assignment
built with nbgrader's API, no notebook executed (tests/test_semester_exchange.py runs the
real flow: a student submits after the due date)."""

import csv
import datetime
import os
import sys

import nbformat
import pytest
from nbgrader.api import Gradebook
from traitlets.config import Config

from course_lib.autograde import gradebook
from course_lib.autograde.course import export_csv
from course_lib.autograde.late import SubMarks

HW, NB = "hw9", "hw9"
DUE = datetime.datetime(2026, 12, 1, 23, 59)


@pytest.mark.parametrize(("seconds", "score", "penalty"),
                         [(1, 10, 1), (3600, 10, 1), (3601, 10, 2), (30 * 3600, 10, 10), (7200, 1.5, 1.5)])
def test_a_point_per_started_hour_at_most_the_score(seconds, score, penalty):
    assert SubMarks().late_submission_penalty("s", score, seconds) == penalty


def _passing_notebook():
    cell = nbformat.v4.new_code_cell("assert True", outputs=[])
    cell.metadata.nbgrader = {"grade": True, "solution": False, "locked": True, "grade_id": "test", "points": 10,
                              "schema_version": 3}
    cell.execution_count = 1
    return nbformat.v4.new_notebook(cells=[cell])


@pytest.fixture
def course(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}")  # alembic for the gradebook
    (tmp_path / "nbgrader_config.py").write_text("c = get_config()\n")
    url = f"sqlite:///{tmp_path / 'gradebook.db'}"
    with Gradebook(url, gradebook.COURSE_ID) as book:
        book.add_assignment(HW, duedate=DUE)
        book.add_notebook(NB, HW)
        book.add_grade_cell("test", NB, HW, max_score=10, cell_type="code")
    return tmp_path, url


def _config(plugin: bool) -> Config:
    config = Config()
    if plugin:
        config.AssignLatePenalties.plugin_class = SubMarks
        config.SubMarks.points_per_hour = 2.0
    return config


@pytest.mark.parametrize(("late", "plugin", "penalty"),
                         [(datetime.timedelta(hours=2, seconds=1), True, 6.0),
                          (datetime.timedelta(hours=-1), True, 0.0),
                          (datetime.timedelta(hours=5), False, 0.0)])  # nbgrader's default plugin: no penalty
def test_record_applies_the_penalty_and_export_shows_it(course, tmp_path, late, plugin, penalty):
    root, url = course
    gradebook.record(url, _config(plugin), "ada", HW, DUE + late, {NB: _passing_notebook()})
    with Gradebook(url, gradebook.COURSE_ID) as book:
        submission = book.find_submission(HW, "ada")
        assert (submission.score, submission.late_submission_penalty) == (10.0, penalty)
    export_csv(root, tmp_path / "grades.csv")
    [row] = list(csv.DictReader(open(tmp_path / "grades.csv")))
    assert (row["raw_score"], row["late_penalty"], row["score"]) == ("10", f"{penalty:g}", f"{10 - penalty:g}")
    assert row["seconds_late"] == f"{max(0, late.total_seconds()):.0f}"
