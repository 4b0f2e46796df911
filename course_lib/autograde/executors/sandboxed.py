"""`course grade --jobs N` (the default executor): N warm sandboxed workers on this machine.

grading process (trusted)                     warm worker (bwrap)      child (per submission)
  sanitize against the gradebook  --job-->      fork, watch, retry  -->  uid drop, rlimits,
  score outputs (nbgrader rules)  <--outputs--                      <--  run cells, stream outputs
  write gradebook, autograded/, logs/

The workers (`sandbox.Worker`) start as the first submissions need them; a submission that
makes the grader itself fail is reported NOT GRADED and the batch goes on.
"""

from __future__ import annotations

import queue
import shutil
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from typing import Iterator

from course_lib.autograde.executors.base import windowed
from course_lib.autograde.executors.warm import job_for, ran_from, run_job, scratch_folder, threads_per_submission
from course_lib.autograde.protocol import Limits
from course_lib.autograde.sandbox import Worker, describe
from course_lib.autograde.submission import Prepared, Ran


class LocalExecutor:
    """Up to `jobs` warm sandboxed workers on this machine."""

    def __init__(self, jobs: int, limits: Limits):
        self.jobs, self.limits = jobs, limits

    def __enter__(self) -> LocalExecutor:
        return self

    def __exit__(self, *exc) -> None:
        pass

    def describe(self) -> str:
        return describe()

    def run(self, submissions: Iterator[Prepared], count: int) -> Iterator[Ran]:
        scratch = scratch_folder()
        slots = max(1, min(self.jobs, count))
        limits = threads_per_submission(self.limits, slots)
        workers = [Worker(slot, scratch, limits) for slot in range(slots)]
        free: queue.Queue[Worker] = queue.Queue()
        for worker in workers:
            free.put(worker)

        def execute(item: Prepared) -> Ran:
            worker = free.get()
            try:
                return ran_from(item, *run_job(worker, job_for(item)))
            finally:
                free.put(worker)

        pool = ThreadPoolExecutor(max_workers=slots)
        finished = False
        try:
            for item, future in windowed(submissions, lambda item: pool.submit(execute, item), _first_done,
                                         lambda: 2 * slots):
                try:
                    yield future.result()
                except Exception as error:  # noqa: BLE001 - one submission's failure is not the batch's
                    yield Ran(item, not_graded=f"the grader failed on this submission: {error!r}")
            finished = True
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
            if not finished:  # stopped early: end the running submissions now rather than wait for them
                for worker in workers:
                    worker.kill()
            pool.shutdown(wait=True)
            for worker in workers:
                worker.close()
            shutil.rmtree(scratch, ignore_errors=True)


def _first_done(futures):
    return wait(futures, return_when=FIRST_COMPLETED).done
