"""The executor's plumbing, without running any student code: submissions are sanitized
only as they are sent (a bounded window in flight), and a file that cannot be read is
reported rather than stopping the batch."""

import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from pathlib import Path

from course_lib.grading import executor


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
        for item, future in executor.windowed(items(), submit, first_done, window=3):
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
    files = executor._read_files(tmp_path, problems)
    assert files == {"data.csv": b"1,2\n"}
    assert problems == ["secret.bin could not be read (Permission denied); graded without it"]


def test_not_run_stops_every_notebook_with_the_reason():
    prepared = executor.Prepared(task=None, notebooks=[executor.Sanitized("a", notebook=object()),
                                                       executor.Sanitized("missing")])
    assert executor.not_run(prepared, "lost") == {"a": {"error": "lost", "outputs": {}, "notes": [], "skipped": {}}}


def test_course_grade_dask_without_a_scheduler_is_a_clear_error(tmp_path, capsys):
    from course_lib import cli

    root = Path(__file__).resolve().parents[1]
    assert cli.main(["grade", str(tmp_path), "--executor", "dask", "--root", str(root)]) == 2
    assert "--executor dask needs --scheduler ADDRESS" in capsys.readouterr().err
