"""`course export --format canvas --roster ROSTER.csv GRADES.csv` (course_lib/autograde/canvas.py):
Canvas's import columns, a "Points Possible" row, nbgrader ids mapped through the roster,
the late penalty applied, and nobody dropped: a graded student missing from the roster gets
a row and exit status 1, a roster student without grades a blank row. A gradebook built
with nbgrader's API (fast); `--format csv` stays the default."""

import csv
import datetime
import os
import sys

import pytest
from nbgrader.api import Gradebook

from course_lib import cli
from course_lib.autograde.gradebook import COURSE_ID

ROSTER = """Student,ID,SIS User ID,SIS Login ID,Section
    Points Possible,,,,
"Lovelace, Ada",101,S101,ada,A
"Hopper, Grace",102,S102,grace,B
"Turing, Alan",103,S103,alan,A
"""
DUE = datetime.datetime(2026, 12, 1, 12, 0)


@pytest.fixture
def course(tmp_path, monkeypatch):
    """hw1 (10 points): ada 8, grace 10 but 2 h late (SubMarks-like penalty 2 stored), zed 5
    (not in the roster); hw2 (4 points): ada 3. alan has no grade."""
    monkeypatch.setenv("PATH", f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}")  # alembic
    (tmp_path / "nbgrader_config.py").write_text("c = get_config()\n")
    (tmp_path / "roster.csv").write_text(ROSTER)
    with Gradebook(f"sqlite:///{tmp_path / 'gradebook.db'}", COURSE_ID) as book:
        for hw, points in (("hw1", 10), ("hw2", 4)):
            book.add_assignment(hw, duedate=DUE)
            book.add_notebook(hw, hw)
            book.add_grade_cell("test", hw, hw, max_score=points, cell_type="code")
        for student, hw, score, late in (("ada", "hw1", 8, 0), ("grace", "hw1", 10, 2), ("zed", "hw1", 5, 0),
                                         ("ada", "hw2", 3, 0)):
            book.update_or_create_student(student)
            book.add_submission(hw, student, timestamp=DUE + datetime.timedelta(hours=late))
            book.find_grade("test", hw, hw, student).auto_score = score
            book.find_submission_notebook(hw, hw, student).late_submission_penalty = late or None
        book.db.commit()
    return tmp_path


def _read(path):
    with open(path, newline="") as handle:
        return list(csv.reader(handle))


def test_canvas_columns_points_row_and_roster_mapping(course, capsys):
    status = cli.main(["export", "--format", "canvas", "--roster", str(course / "roster.csv"),
                       str(course / "canvas.csv"), "--root", str(course)])
    header, points, *rows = _read(course / "canvas.csv")
    assert header == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "hw1", "hw2"]
    assert points == ["Points Possible", "", "", "", "", "10", "4"]
    assert rows == [["Lovelace, Ada", "101", "S101", "ada", "A", "8", "3"],
                    ["Hopper, Grace", "102", "S102", "grace", "B", "8", ""],   # 10 less the late penalty
                    ["Turing, Alan", "103", "S103", "alan", "A", "", ""],      # no grade: blank, not 0
                    ["zed", "", "", "", "", "5", ""]]                          # not dropped
    out = capsys.readouterr()
    assert status == 1 and "NOT IN THE ROSTER" in out.err and "zed" in out.err
    assert "alan" in out.out


def test_an_nbgrader_id_column_overrides_the_login(course):
    (course / "roster.csv").write_text("Student,ID,SIS User ID,SIS Login ID,Section,nbgrader_id\n"
                                       "Zed,104,S104,z.z@uni,C,zed\n")
    assert cli.main(["export", "--format", "canvas", "--roster", str(course / "roster.csv"),
                     str(course / "canvas.csv"), "--root", str(course)]) == 1  # ada and grace are not in it
    rows = _read(course / "canvas.csv")[2:]
    assert rows[0] == ["Zed", "104", "S104", "z.z@uni", "C", "5", ""]
    assert sorted(r[0] for r in rows[1:]) == ["ada", "grace"]


def test_a_roster_without_canvas_columns_is_a_clear_error(course, capsys):
    (course / "roster.csv").write_text("name,login\nAda,ada\n")
    assert cli.main(["export", "--format", "canvas", "--roster", str(course / "roster.csv"),
                     str(course / "canvas.csv"), "--root", str(course)]) == 2
    assert "lacks the columns Student, ID" in capsys.readouterr().err


def test_csv_stays_the_default(course):
    assert cli.main(["export", str(course / "grades.csv"), "--root", str(course)]) == 0
    rows = {(r["student"], r["assignment"]): r for r in csv.DictReader(open(course / "grades.csv"))}
    assert len(rows) == 4
    assert (rows["grace", "hw1"]["raw_score"], rows["grace", "hw1"]["late_penalty"],
            rows["grace", "hw1"]["score"]) == ("10", "2", "8")
