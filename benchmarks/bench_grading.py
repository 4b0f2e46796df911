"""`course grade --jobs 1` and `--jobs 2` against stock, serial `nbgrader autograde`, on the
same submissions (the shipped examples, all four assignments), in one run.

Prints `name: value` lines: seconds per submission for each, and whether the per-cell
grades are identical. Takes a few minutes on a 2-core CPU.
"""

import shutil
import tempfile
import time
from pathlib import Path

from course_lib.autograde.course import CONFIG, assignment_ids, db_url, generate, run_nbgrader
from course_lib.autograde.gradebook import read_scores
from course_lib.autograde.pipeline import grade

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "submissions"


def fresh_course(parent: Path, name: str) -> Path:
    course = parent / name
    shutil.copytree(ROOT / "solutions", course / "solutions")
    shutil.copy(ROOT / CONFIG, course / CONFIG)
    generate(course)
    return course


def stock_nbgrader(course: Path) -> float:
    shutil.copytree(EXAMPLES, course / "submitted")
    start = time.perf_counter()
    for hw in assignment_ids(course):
        result = run_nbgrader(course, "autograde", hw, "--force", "--CourseDirectory.db_url=" + db_url(course))
        assert result.returncode == 0, result.stderr[-2000:]
    return time.perf_counter() - start


def ours(course: Path, jobs: int) -> float:
    start = time.perf_counter()
    grade(course, EXAMPLES, jobs=jobs)
    return time.perf_counter() - start


def cell_scores(course: Path) -> dict:
    return {(s.student, s.assignment): s.cell_scores() for s in read_scores(db_url(course))}


def main():
    count = sum(1 for _ in EXAMPLES.glob("*/*/*.ipynb"))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        courses = {name: fresh_course(tmp, name) for name in ("stock", "jobs1", "jobs2")}
        seconds = {"stock": stock_nbgrader(courses["stock"]),
                   "jobs1": ours(courses["jobs1"], 1), "jobs2": ours(courses["jobs2"], 2)}
        reference = cell_scores(courses["stock"])
        print(f"notebooks: {count}")
        for name, value in seconds.items():
            print(f"grading_seconds_per_notebook_{name}: {value / count:.2f}")
        print(f"grading_speedup_jobs2_vs_stock: {seconds['stock'] / seconds['jobs2']:.2f}")
        for name in ("jobs1", "jobs2"):
            print(f"grades_identical_{name}_vs_stock: {cell_scores(courses[name]) == reference}")


if __name__ == "__main__":
    main()
