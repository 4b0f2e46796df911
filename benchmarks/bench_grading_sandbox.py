"""Grading throughput, in one run on the same submissions (hw1, the fastest assignment):

  stock `nbgrader autograde` (serial)  vs  `course grade --jobs 1`  vs  `course grade --jobs 2`

prints seconds per notebook for each and checks that all three give identical cell scores;
then the marginal cost of one more notebook with warm starts: grade N and 2N copies of a
notebook whose checks fail fast (the blank submission) with `--jobs 1` and report
(t(2N) - t(N)) / N.

    python benchmarks/bench_grading_sandbox.py [--copies N]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from course_lib.grading.course import db_url, generate, read_scores, run_nbgrader
from course_lib.grading.runner import grade

HW = "hw1_cnn_arithmetic"
STUDENTS = ("alt_correct", "typical_mistakes", "blank")


def make_course(base: Path) -> Path:
    course = base / "course"
    shutil.copytree(ROOT / "solutions" / HW, course / "solutions" / HW)
    shutil.copy(ROOT / "nbgrader_config.py", course / "nbgrader_config.py")
    generate(course, [HW])
    return course


def make_submissions(folder: Path, copies: int, students=STUDENTS) -> Path:
    for i in range(copies):
        student = students[i % len(students)]
        shutil.copytree(ROOT / "examples" / "submissions" / student / HW, folder / f"{student}{i:03d}" / HW)
    return folder


def scores(course: Path) -> dict:
    return {s.student: s.cell_scores() for s in read_scores(db_url(course), HW)}


def timed(label: str, fn, n: int) -> float:
    start = time.perf_counter()
    fn()
    seconds = time.perf_counter() - start
    print(f"{label:<34} {n:>3} notebooks {seconds:7.1f} s   {seconds / n:6.2f} s/notebook", flush=True)
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=6, help="submissions per run (default 6)")
    args = parser.parse_args()
    n = args.copies
    with tempfile.TemporaryDirectory(prefix="bench-grading-") as tmp:
        tmp = Path(tmp)
        stock = make_course(tmp / "stock")
        make_submissions(stock / "submitted", n)
        timed("stock nbgrader autograde (serial)", lambda: run_nbgrader(
            stock, "autograde", HW, "--force", "--CourseDirectory.db_url=" + db_url(stock)), n)
        results = {"stock": scores(stock)}
        for jobs in (1, 2):
            course = make_course(tmp / f"jobs{jobs}")
            subs = make_submissions(tmp / f"subs{jobs}", n)
            timed(f"course grade --jobs {jobs}", lambda c=course, s=subs, j=jobs: grade(c, s, jobs=j, bar=False), n)
            results[f"jobs{jobs}"] = scores(course)
        same = results["stock"] == results["jobs1"] == results["jobs2"]
        print(f"identical cell scores across the three: {same}")
        course = make_course(tmp / "marginal")
        # the released notebook as submitted: every check fails fast (well under a second)
        small = make_submissions(tmp / "small", n, students=("blank",))
        large = make_submissions(tmp / "large", 2 * n, students=("blank",))
        t1 = timed("course grade --jobs 1, N", lambda: grade(course, small, jobs=1, bar=False), n)
        t2 = timed("course grade --jobs 1, 2N", lambda: grade(course, large, jobs=1, bar=False), 2 * n)
        print(f"marginal cost of one more notebook whose checks take well under a second (warm worker): "
              f"{(t2 - t1) / n:.2f} s")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
