"""`course similarity HW [SUBMISSIONS]` and `course grade --similarity`: the instructor's entry
points to the similarity report (the report itself: tests/test_similarity.py)."""

import shutil
from pathlib import Path

import pytest

from course_lib.cli import main

ROOT = Path(__file__).resolve().parents[1]
HW = "hw2_bn_dropout_init"


@pytest.fixture
def course(tmp_path):
    """A course root with the repo's notebooks and library, and a class of three: two sample
    submissions and a student who handed in the solution notebook."""
    root = tmp_path / "course"
    for folder in ("solutions", "assignments"):
        shutil.copytree(ROOT / folder / HW, root / folder / HW)
    (root / "course_lib").symlink_to(ROOT / "course_lib")
    shutil.copy(ROOT / "nbgrader_config.py", root)
    submitted = root / "submitted"
    for student in ("alt_correct", "blank"):
        shutil.copytree(ROOT / "examples" / "submissions" / student / HW, submitted / student / HW)
    (submitted / "copycat" / HW).mkdir(parents=True)
    shutil.copy(ROOT / "solutions" / HW / f"{HW}.ipynb", submitted / "copycat" / HW)
    return root


def test_similarity_lists_the_copy_and_writes_the_page(course, capsys):
    assert main(["similarity", HW, "--root", str(course)]) == 0
    out = capsys.readouterr().out
    assert "copycat  reference" in out
    assert "blank" not in out
    page = (course / "reports" / "similarity" / f"{HW}.html").read_text()
    assert "copycat" in page


def test_a_missing_submissions_folder_is_named(course, capsys):
    assert main(["similarity", HW, str(course / "nowhere"), "--root", str(course)]) == 2
    assert "no submissions folder" in capsys.readouterr().err
