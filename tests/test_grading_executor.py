"""The executor's plumbing, without running any student code: submissions are sanitized
only as they are sent (a bounded window in flight), and a file that cannot be read is
reported rather than stopping the batch."""

import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from pathlib import Path

from course_lib.autograde import pipeline
from course_lib.autograde.executors import warm
from course_lib.autograde.executors.base import windowed
from course_lib.autograde.submission import Prepared, Task


def test_windowed_keeps_a_bounded_number_in_flight_and_draws_lazily():
    drawn, submitted, most = [], [], [0]

    def items():
        for i in range(10):
            drawn.append(i)
            yield i

    def run(i):
        time.sleep(0.02)
        return i * i

    with ThreadPoolExecutor(max_workers=2) as pool:
        def submit(i):
            submitted.append(pool.submit(run, i))
            most[0] = max(most[0], sum(not f.done() for f in submitted))
            return submitted[-1]

        def first_done(futures):
            return wait(futures, return_when=FIRST_COMPLETED).done

        finished = []
        for item, future in windowed(items(), submit, first_done, window=lambda: 3):
            assert len(drawn) <= len(finished) + 1 + 3  # nothing drawn far ahead of what finished
            finished.append((item, future.result()))
    assert sorted(finished) == [(i, i * i) for i in range(10)]
    assert most[0] == 3


def test_unreadable_files_are_reported_and_left_out(tmp_path, monkeypatch):
    (tmp_path / "data.csv").write_text("1,2\n")
    (tmp_path / "secret.bin").write_bytes(b"x")
    (tmp_path / "hw.ipynb").write_text("{}")
    real = Path.read_bytes

    def read_bytes(path):
        if path.name == "secret.bin":
            raise PermissionError(13, "Permission denied")
        return real(path)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    problems = []
    files = warm._read_files(tmp_path, problems)
    assert files == {"data.csv": b"1,2\n"}
    assert problems == ["secret.bin could not be read (Permission denied); graded without it"]


def test_files_past_the_size_limits_are_reported_and_left_out(tmp_path, monkeypatch):
    monkeypatch.setattr(warm, "MAX_FILE_BYTES", 100)
    monkeypatch.setattr(warm, "MAX_FILES_BYTES", 150)
    (tmp_path / "a.bin").write_bytes(b"a" * 80)
    (tmp_path / "b.bin").write_bytes(b"b" * 80)   # 160 in all: past the total
    (tmp_path / "c.bin").write_bytes(b"c" * 120)  # past the per-file limit
    (tmp_path / "d.txt").write_bytes(b"d" * 10)
    problems = []
    assert warm._read_files(tmp_path, problems) == {"a.bin": b"a" * 80, "d.txt": b"d" * 10}
    assert [p.split(" ")[0] for p in problems] == ["b.bin", "c.bin"]
    assert all("past the size limits" in p for p in problems)


def test_summary_table_lists_submissions_that_were_not_graded():
    prepared = Prepared(task=Task("ann", "hw1_cnn_arithmetic", Path(".")))
    outcome = pipeline.not_graded(prepared, "the Dask cluster could not run this submission: OSError()")
    table = pipeline.summary_table([outcome])
    assert not outcome.graded
    assert "NOT GRADED" in table.splitlines()[1] and "10/10" not in table
    assert "NOT GRADED: the Dask cluster could not run this submission" in table
    assert "gradebook entry is unchanged" in table


def test_course_grade_dask_without_a_scheduler_is_a_clear_error(tmp_path, capsys):
    from course_lib import cli

    root = Path(__file__).resolve().parents[1]
    assert cli.main(["grade", str(tmp_path), "--executor", "dask", "--root", str(root)]) == 2
    assert "--executor dask needs --scheduler ADDRESS" in capsys.readouterr().err


def _manual_outcomes():
    from course_lib.autograde.submission import Outcome

    waiting = Outcome("ann", "hw2_bn_dropout_init", score=16, max_score=20, manual_max_score=4, needs_manual_grading=4)
    graded = Outcome("bob", "hw2_bn_dropout_init", score=18, max_score=20, manual_max_score=4)
    return waiting, graded


def test_written_answers_waiting_for_a_grader_are_shown_as_such_not_as_zero():
    waiting, graded = _manual_outcomes()
    assert waiting.score_text() == "16/16 + 4 need manual grading" and waiting.auto_max_score == 16
    assert graded.score_text() == "18/20"
    table = pipeline.summary_table([waiting, graded])
    ann, bob = table.splitlines()[1:3]
    assert "16/16" in ann and "4 points need manual grading" in ann
    assert "18/20" in bob and "manual" not in bob
    assert "formgrader" in table


def test_the_build_summary_shows_the_manual_part_apart():
    from course_lib.build import BuildReport, summary_table

    waiting, graded = _manual_outcomes()
    text = summary_table(BuildReport([], [waiting, graded], Path("grades.csv"), Path("feedback")))
    rows = {line.split()[0]: line.split()[1] for line in text.splitlines() if line.split()[:1] in (["ann"], ["bob"])}
    assert rows == {"ann": "16/16+4?", "bob": "18/20"}
    assert "need manual grading" in text


def test_a_failed_test_cell_is_named_with_its_error_and_an_empty_message_leaves_no_dangling_colon():
    import nbformat

    def test_cell(grade_id, errors):
        outputs = [nbformat.v4.new_output("error", ename=name, evalue=value, traceback=[]) for name, value in errors]
        cell = nbformat.v4.new_code_cell("check()", outputs=outputs)
        cell.metadata.nbgrader = {"grade": True, "solution": False, "grade_id": grade_id, "points": 1}
        return cell

    notebook = nbformat.v4.new_notebook(cells=[
        test_cell("test_blank", [("NotImplementedError", "")]),
        test_cell("test_wrong", [("CheckFailure", "case 1: off")]),
        test_cell("test_right", []),
    ])
    assert pipeline._failures(notebook) == ["test_blank: NotImplementedError", "test_wrong: CheckFailure: case 1: off"]
