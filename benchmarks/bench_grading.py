"""`course grade --jobs 1` and `--jobs 2` against stock, serial `nbgrader autograde`, on the
same submissions (the shipped examples, all four assignments), in one run.

Prints `name: value` lines: seconds per submission for each, and whether the per-cell
grades are identical; then, per assignment, the wall seconds per submission of stock
`nbgrader autograde` and of `course grade --jobs 1`, with the CPU seconds of stock (its
finished child processes; course grade's warm workers are never waited for, so their CPU is
not counted there), and how long the reference solution notebook takes to run top to bottom.
Takes about twenty minutes on a 2-core CPU.
"""

import resource
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


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(run) -> tuple[float, float]:
    """(wall seconds, CPU seconds of finished child processes) of run()."""
    wall, cpu = time.perf_counter(), children_cpu()
    run()
    return time.perf_counter() - wall, children_cpu() - cpu


def per_assignment(tmp: Path, hw: str) -> dict[str, tuple[float, float]]:
    """Wall and CPU seconds per submission of `hw`, stock and ours (--jobs 1), each in a fresh
    course, and of running the solution notebook once with nbclient."""
    from course_lib.lectures import execute_notebook

    submissions = tmp / f"only_{hw}"
    for folder in EXAMPLES.glob(f"*/{hw}"):
        shutil.copytree(folder, submissions / folder.parent.name / hw)
    count = len(list(submissions.glob("*")))
    stock, mine = fresh_course(tmp, f"stock_{hw}"), fresh_course(tmp, f"ours_{hw}")
    shutil.copytree(submissions, stock / "submitted")
    database = "--CourseDirectory.db_url=" + db_url(stock)
    stock_run = timed(lambda: run_nbgrader(stock, "autograde", hw, "--force", database))
    ours_run = timed(lambda: grade(mine, submissions, jobs=1))
    solution = timed(lambda: execute_notebook(ROOT / "solutions" / hw / f"{hw}.ipynb"))
    return {"stock": tuple(x / count for x in stock_run), "jobs1": tuple(x / count for x in ours_run),
            "solution": solution}


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
        for hw in assignment_ids(courses["stock"]):
            for name, (wall, cpu) in per_assignment(tmp, hw).items():
                # course grade's warm workers are not waited for, so their CPU never reaches RUSAGE_CHILDREN
                print(f"{hw}_{name}_seconds: wall {wall:.2f} cpu {'n/a' if name == 'jobs1' else f'{cpu:.2f}'}")


if __name__ == "__main__":
    main()
