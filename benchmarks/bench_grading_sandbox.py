"""Grading throughput, in one run on the same submissions (hw1, the fastest assignment):

  stock `nbgrader autograde` (serial)  vs  `course grade --jobs 1`  vs  `course grade --jobs 2`
  vs  `course grade --executor dask` on a LocalCluster of 2 single-thread workers

prints seconds per notebook for each and checks that all four give identical cell scores;
then the marginal cost of one more notebook with warm starts: grade N and 2N copies of a
notebook whose checks fail fast (the blank submission) and report (t(2N) - t(N)) / N, locally
with `--jobs 1` and on the cluster, and the grading process's serial part per notebook
(sanitizing against the gradebook, scoring and writing the gradebook, and for Dask packing
and sending each submission), which bounds how many cores one grading process can keep busy.

    python benchmarks/bench_grading_sandbox.py [--copies N]
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from distributed import LocalCluster

from course_lib.autograde import pipeline
from course_lib.autograde.course import db_url, generate, run_nbgrader
from course_lib.autograde.executors.dask_cluster import DaskExecutor
from course_lib.autograde.gradebook import read_scores
from course_lib.autograde.pipeline import grade

ROOT = Path(__file__).resolve().parents[1]
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


def timed(name: str, fn, n: int) -> float:
    start = time.perf_counter()
    fn()
    seconds = time.perf_counter() - start
    print(f"{name}_s_per_notebook: {seconds / n:.2f}   # {n} notebooks in {seconds:.1f} s", flush=True)
    return seconds


class SerialPart:
    """Totals the grading process's own time per notebook: sanitize (pipeline.prepare), score
    and write the gradebook (pipeline.score and pipeline.record) and, for the Dask executor,
    pack and send each submission (DaskExecutor._submit)."""

    PARTS = {"sanitize": [(pipeline, "prepare")], "score_and_write": [(pipeline, "score"), (pipeline, "record")],
             "dask_send": [(DaskExecutor, "_submit")]}

    def __init__(self):
        self.seconds = {name: 0.0 for name in self.PARTS}
        self.calls = {name: 0 for name in self.PARTS}
        for name, parts in self.PARTS.items():
            for i, (owner, attribute) in enumerate(parts):
                setattr(owner, attribute, self._timed(name, getattr(owner, attribute), count=i == 0))

    def _timed(self, name, fn, count):
        def run(*args, **kwargs):
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds[name] += time.perf_counter() - start
                self.calls[name] += count
        return run

    def report(self):
        for name in self.PARTS:
            print(f"serial_{name}_s_per_notebook: {self.seconds[name] / max(1, self.calls[name]):.3f}")


def marginal(name: str, tmp: Path, n: int, **options) -> None:
    """(t(2N) - t(N)) / N for notebooks whose checks fail fast (the released notebook as submitted)."""
    course = make_course(tmp / f"marginal-{name}")
    small = make_submissions(tmp / f"small-{name}", n, students=("blank",))
    large = make_submissions(tmp / f"large-{name}", 2 * n, students=("blank",))
    t1 = timed(f"{name}_blank_N", lambda: grade(course, small, bar=False, **options), n)
    t2 = timed(f"{name}_blank_2N", lambda: grade(course, large, bar=False, **options), 2 * n)
    print(f"{name}_marginal_s_per_notebook: {(t2 - t1) / n:.2f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=6, help="submissions per run (default 6)")
    args = parser.parse_args()
    n = args.copies
    with tempfile.TemporaryDirectory(prefix="bench-grading-") as tmp, \
            LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                         silence_logs=logging.CRITICAL) as cluster:
        tmp = Path(tmp)
        stock = make_course(tmp / "stock")
        make_submissions(stock / "submitted", n)
        timed("stock_nbgrader_serial", lambda: run_nbgrader(
            stock, "autograde", HW, "--force", "--CourseDirectory.db_url=" + db_url(stock)), n)
        results = {"stock": scores(stock)}
        runs = {"sandbox_jobs1": {"jobs": 1}, "sandbox_jobs2": {"jobs": 2},
                "dask_2x1": {"executor": "dask", "scheduler": cluster.scheduler_address}}
        for name, options in runs.items():
            course = make_course(tmp / name)
            subs = make_submissions(tmp / f"subs-{name}", n)
            timed(name, lambda c=course, s=subs, o=options: grade(c, s, bar=False, **o), n)
            results[name] = scores(course)
        same = all(r == results["stock"] for r in results.values())
        print(f"identical_cell_scores: {same}")
        serial = SerialPart()
        marginal("sandbox_jobs1", tmp, n, jobs=1)
        marginal("dask_2x1", tmp, n, executor="dask", scheduler=cluster.scheduler_address)
        serial.report()
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
