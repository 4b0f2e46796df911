"""Hostile submissions, graded in one batch with honest ones by the sandboxed executor.

For every hostile submission: the batch completes, it gets a grade and a reason, every
honest submission's grade is unchanged, the gradebook is intact and nothing outside the
sandbox changed. Assertions that need bubblewrap (no read access to solutions/ and the
gradebook) are skipped where `bwrap` is not installed.
"""

import hashlib
import shutil
import sqlite3
from pathlib import Path

import nbformat
import pytest
from hostile import CONFINED, EXAMPLES, HW, ROOT, hostile_submissions, write_submissions

from course_lib.autograde.course import db_url, generate
from course_lib.autograde.gradebook import read_scores
from course_lib.autograde.pipeline import grade, summary_table
from course_lib.autograde.protocol import Limits
from course_lib.autograde.sandbox import bwrap_path

pytestmark = pytest.mark.slow

SANDBOXED = bwrap_path() is not None

def _stdout(path: Path) -> str:
    notebook = nbformat.read(path, as_version=4)
    return "".join(o.get("text", "") for c in notebook.cells if c.cell_type == "code" for o in c.outputs
                   if o.output_type == "stream")


def _digest(folder: Path, skip=()) -> dict:
    files = [p for p in sorted(folder.rglob("*")) if p.is_file()]
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in files if not any(str(p.relative_to(folder)).startswith(s) for s in skip)}


# Seconds per cell: hw1's honest cells take a few, and tests/hostile.py's infinite_loop burns all
# of it (test_grading_dask grades the same hw1 answers at 15 s).
CELL_TIMEOUT = 20


@pytest.fixture(scope="module")
def battery(tmp_path_factory):
    course = tmp_path_factory.mktemp("course")
    shutil.copytree(ROOT / "solutions" / HW, course / "solutions" / HW)
    (course / "nbgrader_config.py").write_text(
        (ROOT / "nbgrader_config.py").read_text() + f"\nc.Execute.timeout = {CELL_TIMEOUT}\n")
    generate(course, [HW])
    submissions = tmp_path_factory.mktemp("submissions")
    for student in ("alt_correct", "typical_mistakes", "blank"):
        shutil.copytree(EXAMPLES / student / HW, submissions / student / HW)
    hostile = hostile_submissions(course, submissions)
    write_submissions(submissions, hostile)
    before_subs = _digest(submissions)
    before_course = _digest(course, skip=("gradebook.db", "autograded", "logs"))
    before_repo = _digest(ROOT / "solutions")
    limits = Limits(cell_timeout=CELL_TIMEOUT, wall_timeout=300, memory_mb=2048, nproc=48, output_cap=200_000)
    outcomes, skipped = grade(course, submissions, jobs=2, limits=limits)
    print(summary_table(outcomes, skipped))
    return {
        "course": course, "submissions": submissions, "hostile": hostile, "skipped": skipped,
        "outcomes": {o.student: o for o in outcomes},
        "changed_subs": before_subs != _digest(submissions),
        "changed_course": before_course != _digest(course, skip=("gradebook.db", "autograded", "logs")),
        "changed_repo": before_repo != _digest(ROOT / "solutions") or (ROOT / "planted.txt").exists(),
    }


# tests/hostile.py states expected scores out of hw1's former 10 automatic points: what they mean is
# the points lost (10: none, 9: one, 0: everything); the written answers wait for a grader.
HOSTILE_FULL = 10


def _expected_automatic(expected, outcome):
    return 0 if expected == 0 else outcome.auto_max_score - (HOSTILE_FULL - expected)


def test_batch_completes_and_honest_grades_are_unchanged(battery):
    outcomes = battery["outcomes"]
    assert battery["skipped"] == []
    assert set(outcomes) == {"alt_correct", "typical_mistakes", "blank", *battery["hostile"]}
    alt = outcomes["alt_correct"]
    assert alt.score == alt.auto_max_score > 0 and alt.needs_manual_grading == alt.manual_max_score > 0
    assert outcomes["typical_mistakes"].score == 6
    assert outcomes["blank"].score == 0
    cells = {s.student: {c.cell: c.score for c in s.cells if not c.manual}
             for s in read_scores(db_url(battery["course"]), HW)}
    assert cells["typical_mistakes"] == {"test_conv_output_size": 0, "test_conv_params": 0, "test_vgg_params": 0,
                                         "test_conv_forward": 3, "test_conv_backward": 0, "test_maxpool_forward": 0,
                                         "test_maxpool_backward": 0, "test_input_gradient": 3}


@pytest.mark.parametrize("student", [
    "infinite_loop", "memory_bomb", "fork_bomb", "segfault", "sys_exit", "os_exit", "deleted_test",
    "duplicated_test", "retyped_test", "edited_test", "monkeypatch", "fake_pass", "reads_secrets",
    "writes_outside", "huge_output", "invalid_json", "wrong_name", "old_nbformat"])
def test_each_hostile_submission_gets_its_grade_and_a_reason(battery, student):
    if student in ("fork_bomb", "writes_outside") and not CONFINED:
        pytest.skip("submissions cannot run as an unprivileged uid here (not root, or no bubblewrap and a "
                    "private interpreter): a fork bomb or a write attack would not be contained")
    outcome = battery["outcomes"][student]
    expected = battery["hostile"][student][1]
    assert outcome.auto_max_score == battery["outcomes"]["alt_correct"].auto_max_score
    if expected is None:  # what else fails depends on how much memory the bomb kept
        assert 0 <= outcome.score <= outcome.auto_max_score - 1, outcome
        assert any("test_conv_params" in f for f in outcome.failed), outcome
    else:
        assert outcome.score == _expected_automatic(expected, outcome), (student, outcome)
    if outcome.score < outcome.auto_max_score:
        assert outcome.problems or outcome.failed, outcome  # the reason is recorded
    log = battery["course"] / "logs" / HW / f"{student}.log"
    assert log.is_file() and f"score {outcome.score_text()}" in log.read_text()


def test_reasons_name_the_problem(battery):
    o = battery["outcomes"]
    assert any("not valid JSON" in p for p in o["invalid_json"].problems)
    assert any("homework1.ipynb" in p and "rename" in p for p in o["wrong_name"].problems)
    assert any("nbformat 3" in n for n in o["old_nbformat"].notes)
    assert any("SIGSEGV" in p for p in o["segfault"].problems)
    assert any("test_conv_params" in n for n in o["deleted_test"].notes)
    assert any("test_conv_params" in f for f in o["monkeypatch"].failed)
    assert any("test_conv_params" in f for f in o["infinite_loop"].failed)


def test_huge_output_is_capped(battery):
    graded = battery["course"] / "autograded" / "huge_output" / HW / f"{HW}.ipynb"
    assert graded.stat().st_size < 2_000_000
    assert "output truncated" in graded.read_text()


def test_gradebook_intact_and_nothing_outside_the_sandbox_changed(battery):
    course = battery["course"]
    with sqlite3.connect(course / "gradebook.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    scores = {s.student for s in read_scores(db_url(course), HW)}
    assert scores == set(battery["outcomes"])
    assert not battery["changed_subs"], "a submission folder changed"
    assert not battery["changed_course"], "the course root changed"
    assert not battery["changed_repo"], "the repository changed"
    if CONFINED:
        text = _stdout(course / "autograded" / "writes_outside" / HW / f"{HW}.ipynb")
        assert "REFUSED []" in text and "WROTE" not in text


@pytest.mark.skipif(not SANDBOXED, reason="bubblewrap is not installed: the filesystem sandbox is off")
def test_solutions_and_gradebook_cannot_be_read(battery):
    text = _stdout(battery["course"] / "autograded" / "reads_secrets" / HW / f"{HW}.ipynb")
    assert "DENIED []" in text and "LEAKED" not in text
