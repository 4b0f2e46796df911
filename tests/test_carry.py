"""carry_files (course_lib/autograde/carry.py): autograded/ keeps what stock `nbgrader
autograde` keeps; checked against stock autograde's own copy step (BaseConverter.init_assignment
and Autograde's source overwrite) run on the same folders."""

import os

from nbgrader.coursedir import CourseDirectory
from nbgrader.utils import find_all_files
from traitlets.config import Config

from course_lib.autograde.carry import carry_files


def _tree(folder):
    return {os.path.relpath(p, folder): open(p).read() for p in find_all_files(str(folder))}


def _folders(tmp_path):
    submitted, source = tmp_path / "submitted", tmp_path / "source"
    (submitted / "data").mkdir(parents=True)
    source.mkdir()
    for path, text in {"timestamp.txt": "2026-11-30 10:00:00 UTC", "submission_secret.txt": "s3cret",
                       "hw.ipynb": "{}", "data/mine.csv": "1,2", "shared.csv": "student's",
                       "kept.csv": "student's", "x.pyc": "", "feedback/old.html": "old"}.items():
        (submitted / path).parent.mkdir(parents=True, exist_ok=True)
        (submitted / path).write_text(text)
    for path, text in {"hw.ipynb": "{}", "shared.csv": "instructor's", "kept.csv": "instructor's"}.items():
        (source / path).write_text(text)
    return submitted, source


def test_the_submissions_files_then_the_sources_over_them(tmp_path):
    submitted, source = _folders(tmp_path)
    config = Config()
    config.Autograde.exclude_overwriting = {"hw": ["kept.csv"]}
    carry_files(submitted, source, tmp_path / "out", "hw", config)
    assert _tree(tmp_path / "out") == {
        "timestamp.txt": "2026-11-30 10:00:00 UTC", "submission_secret.txt": "s3cret", "data/mine.csv": "1,2",
        "shared.csv": "instructor's", "kept.csv": "student's"}
    # the same set of files stock autograde's copy step selects (nbgrader's default ignore list)
    stock = {os.path.relpath(p, submitted)
             for p in find_all_files(str(submitted), CourseDirectory().ignore + ["*.ipynb"])}
    assert stock == set(_tree(tmp_path / "out"))


def test_a_symbolic_link_is_not_followed(tmp_path):
    submitted, source = _folders(tmp_path)
    (tmp_path / "secret").write_text("the instructor's")
    (submitted / "link.txt").symlink_to(tmp_path / "secret")
    notes = carry_files(submitted, source, tmp_path / "out", "hw", Config())
    assert not (tmp_path / "out" / "link.txt").exists()
    assert notes == ["link.txt not copied to autograded/: it is a symbolic link"]
