"""OwnedCollect (course_lib/autograde/collect.py): a folder in the inbound that names a
student but is owned by someone else is not collected; the student's own newest is.
Needs root to give a folder to another account (tests/test_semester_exchange.py runs the
same case through `nbgrader collect` with real students)."""

import os
import pwd
import sys

import pytest
from nbgrader.coursedir import CourseDirectory
from traitlets.config import Config

from course_lib.autograde.collect import OwnedCollect

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to chown a folder to another account")
COURSE, HW = "dl-course", "hw9"


def _submission(inbound, student, stamp, uid, text):
    folder = inbound / f"{student}+{HW}+{stamp}+{text}"
    folder.mkdir()
    (folder / "timestamp.txt").write_text(stamp)
    os.chown(folder, uid, -1)


def _collect(tmp_path, check_owner=True):
    config = Config()
    config.CourseDirectory.root = str(tmp_path / "course")
    config.CourseDirectory.course_id = COURSE
    config.CourseDirectory.assignment_id = HW
    config.Exchange.root = str(tmp_path / "exchange")
    config.ExchangeCollect.check_owner = check_owner
    coursedir = CourseDirectory(config=config)
    OwnedCollect(coursedir=coursedir, config=config).start()
    return (tmp_path / "course" / "submitted" / "nobody" / HW / "timestamp.txt").read_text()


@pytest.fixture
def inbound(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}")  # alembic for the gradebook
    folder = tmp_path / "exchange" / COURSE / "inbound"
    folder.mkdir(parents=True)
    (tmp_path / "course").mkdir()
    nobody = pwd.getpwnam("nobody").pw_uid
    _submission(folder, "nobody", "2026-11-01 10:00:00.000000 UTC", nobody, "own")
    _submission(folder, "nobody", "2026-11-02 10:00:00.000000 UTC", 0, "forged")  # root's, newer
    return folder


def test_a_folder_owned_by_someone_else_is_not_collected(tmp_path, inbound, caplog):
    assert _collect(tmp_path) == "2026-11-01 10:00:00.000000 UTC"
    assert "forged submission" in caplog.text


def test_without_the_owner_check_the_newest_is_collected(tmp_path, inbound):
    assert _collect(tmp_path, check_owner=False) == "2026-11-02 10:00:00.000000 UTC"
