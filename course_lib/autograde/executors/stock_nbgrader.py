"""`course grade --executor nbgrader`: stock `nbgrader autograde`, one subprocess per
submission, `jobs` at a time; the reference the sandboxed executors are checked against.

Each submission is autograded in its own scratch course (a copy of the config, of the
gradebook as it was when the run started, and of that one submission), so the subprocesses
never share a database. nbgrader's autograded notebooks come back as the `Ran`; the
pipeline records them in the course gradebook like any other executor's. A submission
nbgrader cannot grade (a notebook that is not JSON, a run past SUBMISSION_TIMEOUT) comes
back without notebooks, with nbgrader's first error, and scores zero.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Iterator

import nbformat

from course_lib.autograde.course import CONFIG, db_url, output_tail, run_nbgrader
from course_lib.autograde.executors.base import windowed
from course_lib.autograde.submission import Prepared, Ran

SUBMISSION_TIMEOUT = 900  # seconds for one whole submission; cells have nbgrader's own limit


class StockExecutor:
    """`nbgrader autograde` per submission, `jobs` at a time, in scratch copies of the course at `root`."""

    def __init__(self, root: Path, jobs: int):
        self.root, self.jobs = Path(root), jobs
        self.scratch: Path | None = None

    def __enter__(self) -> StockExecutor:
        self.scratch = Path(tempfile.mkdtemp(prefix="course-grade-"))
        shutil.copy(self.root / "gradebook.db", self.scratch / "gradebook-snapshot.db")
        return self

    def __exit__(self, *exc) -> None:
        shutil.rmtree(self.scratch, ignore_errors=True)

    def describe(self) -> str:
        return "stock nbgrader autograde, one subprocess per submission (no sandbox)"

    def run(self, submissions: Iterator[Prepared], count: int) -> Iterator[Ran]:
        with ThreadPoolExecutor(max_workers=self.jobs) as pool:
            for _, future in windowed(submissions, lambda item: pool.submit(self._autograde, item),
                                      lambda futures: wait(futures, return_when=FIRST_COMPLETED).done,
                                      lambda: 2 * self.jobs):
                yield future.result()

    def _autograde(self, prepared: Prepared) -> Ran:
        start = time.perf_counter()
        task = prepared.task
        course = self._scratch_course(prepared)
        ran = Ran(prepared)
        try:
            result = run_nbgrader(course, "autograde", task.assignment, "--student", task.student, "--force",
                                  "--CourseDirectory.db_url=" + db_url(course), timeout=SUBMISSION_TIMEOUT)
            ran.log = (result.stdout + result.stderr).splitlines()
            if result.returncode != 0:
                ran.problems.append(_first_error(ran.log) or f"nbgrader autograde failed:\n{output_tail(result, 10)}")
        except subprocess.TimeoutExpired:
            ran.problems.append(f"grading took longer than {SUBMISSION_TIMEOUT} s and was stopped")
        graded = course / "autograded" / task.student / task.assignment
        ran.notebooks = {path.stem: nbformat.read(path, as_version=4) for path in sorted(graded.glob("*.ipynb"))}
        shutil.rmtree(course, ignore_errors=True)
        ran.seconds = time.perf_counter() - start
        return ran

    def _scratch_course(self, prepared: Prepared) -> Path:
        task = prepared.task
        course = self.scratch / f"{task.student}__{task.assignment}"
        (course / "submitted" / task.student).mkdir(parents=True)
        shutil.copy(self.root / CONFIG, course / CONFIG)
        shutil.copy(self.scratch / "gradebook-snapshot.db", course / "gradebook.db")
        shutil.copytree(task.folder, course / "submitted" / task.student / task.assignment, symlinks=False)
        return course


def _first_error(log: list[str]) -> str | None:
    for line in log:
        if "| ERROR]" in line and "Traceback" not in line and "see the the above" not in line:
            return line.split("| ERROR]", 1)[1].strip()
    return None
