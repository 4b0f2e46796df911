"""The course home page (course_lib/home.py, build.write_home) on a small fake build: every
link resolves inside build/, the released notebook is there to download, points and due
date come from the gradebook, the page is plain HTML (no script, nothing remote) with a
phone viewport. tests/test_browser.py opens the real one in chromium."""

import datetime
import os
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from nbgrader.api import Gradebook

from course_lib.autograde.gradebook import COURSE_ID
from course_lib.autograde.submission import Outcome
from course_lib.build import BuildReport, write_home
from course_lib.lectures import LectureResult

ROOT = Path(__file__).resolve().parents[1]


class _Refs(HTMLParser):
    def __init__(self):
        super().__init__()
        self.refs, self.tags = [], set()

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        self.refs += [value for name, value in attrs if name in ("href", "src")]


@pytest.fixture
def built(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}")  # alembic
    out, course = tmp_path / "build", tmp_path / "build" / "course"
    (out / "lectures").mkdir(parents=True)
    (out / "lectures" / "01_x.html").write_text("<html></html>")
    (out / "lectures" / "index.html").write_text("<html></html>")
    (out / "feedback" / "ada" / "hw9").mkdir(parents=True)
    (out / "feedback" / "ada" / "hw9" / "hw9.html").write_text("<html></html>")
    (out / "grades.csv").write_text("student\n")
    (course / "assignments" / "hw9").mkdir(parents=True)
    (course / "assignments" / "hw9" / "hw9.ipynb").write_text("{}")
    (course / "nbgrader_config.py").write_text("c = get_config()\n")
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", COURSE_ID) as book:
        book.add_assignment("hw9", duedate=datetime.datetime(2026, 12, 1, 23, 59))
        book.add_notebook("hw9", "hw9")
        book.add_grade_cell("t", "hw9", "hw9", max_score=7, cell_type="code")
    lecture = LectureResult("01_x", 12.4, out / "lectures" / "01_x.html", "CNN anatomy", "what a conv does",
                            figures=5)
    report = BuildReport([lecture], [Outcome("ada", "hw9", score=6, max_score=7)], out / "grades.csv",
                         out / "feedback")
    return write_home(ROOT, out, course, report)


def test_every_link_resolves_and_nothing_is_remote(built):
    parser = _Refs()
    text = built.read_text()
    parser.feed(text)
    assert parser.refs
    missing = [ref for ref in parser.refs if not (built.parent / ref).exists()]
    assert not missing, missing
    assert not [ref for ref in parser.refs if "://" in ref or ref.startswith("//")]
    assert "script" not in parser.tags and 'name="viewport"' in text


def test_lectures_homework_data_and_grades_are_on_it(built):
    text = built.read_text()
    assert "CNN anatomy" in text and "ran in 12 s, 5 figures" in text
    assert "7 points, due 2026-12-01 23:59 UTC" in text and 'href="homework/hw9.ipynb"' in text
    assert "LeCun" in text and 'href="data/mnist-README.md"' in text
    assert "<td>ada</td><td>6/7</td>" in text and 'href="feedback/ada/hw9/hw9.html"' in text
