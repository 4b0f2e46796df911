"""`course grade --executor dask --scheduler ADDRESS`: the sandboxed executor with its warm
workers on an existing Dask distributed cluster (see docs/grading.md).

grading process (this machine, trusted)          each Dask worker                      warm worker (bwrap)
  sanitize against the gradebook  --job-->         GradingPlugin: a warm sandboxed -->  fork a child per
  score with nbgrader's rules     <--outputs--     worker per Dask thread          <--  submission, as locally
  write gradebook, autograded/, logs/

Only plain data travels: each notebook's code cells (instructor cells already restored from
the gradebook) and the submission's other files. The course root, the gradebook and
solutions/ stay on this machine, and the scores are computed here, so a submission gets the
same grade as with the local executor. Every Dask worker must run the same course_lib
(checked against a fingerprint of its source) and, for the filesystem sandbox, have
bubblewrap installed; each worker's log line says which sandbox it has.
"""

from __future__ import annotations

import hashlib
import os
import queue
import shutil
import threading
import uuid
from pathlib import Path
from typing import Iterator

import course_lib
from course_lib.grading.course import CourseError
from course_lib.grading.executor import (Prepared, not_run, payload, run_payload, scratch_folder,
                                         threads_per_submission, windowed)
from course_lib.grading.sandbox import Limits, Worker, describe

try:
    from distributed import Client, WorkerPlugin, get_worker, wait
except ImportError:  # `course grade` without --executor dask works without it
    Client = None
    WorkerPlugin = object

SLOTS_PER_PROCESS = 64  # uids 61000 + 64 * (pid % 1000) + thread: distinct for Dask workers sharing a host
CONNECT_TIMEOUT = 30    # seconds to reach the scheduler and see a worker


def fingerprint() -> str:
    """A digest of course_lib's source: the checks that grade must be the same everywhere."""
    package = Path(course_lib.__file__).parent
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        digest.update(path.relative_to(package).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


class GradingPlugin(WorkerPlugin):
    """Installed on every Dask worker for one `course grade` run: a pool of warm sandboxed
    workers, started as the Dask threads first need them and closed when the run ends."""

    def __init__(self, limits: Limits, expected_fingerprint: str):
        self.limits, self.expected = limits, expected_fingerprint
        self.workers: list[Worker] = []

    def setup(self, worker) -> None:
        mine = fingerprint()
        if mine != self.expected:
            raise RuntimeError(f"Dask worker {worker.address} runs a different course_lib (source {mine}) from the "
                               f"grading machine ({self.expected}); install the same dl-course version on every worker")
        self.scratch = scratch_folder()
        self.limits = threads_per_submission(self.limits, worker.state.nthreads)
        self.free: queue.LifoQueue[Worker] = queue.LifoQueue()  # the most recently used is the warmest
        self.lock = threading.Lock()

    def acquire(self) -> Worker:
        try:
            return self.free.get_nowait()
        except queue.Empty:
            with self.lock:
                slot = SLOTS_PER_PROCESS * (os.getpid() % 1000) + len(self.workers)
                self.workers.append(Worker(slot, self.scratch, self.limits))
                return self.workers[-1]

    def release(self, worker: Worker) -> None:
        self.free.put(worker)

    def teardown(self, worker) -> None:
        for sandboxed in self.workers:
            sandboxed.close()
        shutil.rmtree(self.scratch, ignore_errors=True)


def run_on_dask_worker(job: dict, plugin_name: str) -> tuple[dict, float]:
    """The Dask task: one submission on one of this Dask worker's warm sandboxed workers."""
    plugin = get_worker().plugins[plugin_name]
    worker = plugin.acquire()
    try:
        return run_payload(worker, job)
    finally:
        plugin.release(worker)


class DaskCluster:
    """A connection to the cluster for one `course grade` run."""

    def __init__(self, client, address: str):
        self.client, self.address = client, address
        self.plugin_name = f"course-grade-{uuid.uuid4().hex[:12]}"

    def threads(self) -> int:
        return sum(w["nthreads"] for w in self.client.scheduler_info(n_workers=-1)["workers"].values())

    def describe(self) -> str:
        modes = self.client.run(describe)
        head = f"Dask cluster at {self.address}: {len(modes)} workers, {self.threads()} threads; "
        if len(set(modes.values())) == 1:
            return head + next(iter(modes.values()))
        return head + "; ".join(f"{address}: {mode}" for address, mode in sorted(modes.items()))

    def run(self, prepared: Iterator[Prepared], limits: Limits) -> Iterator[tuple[Prepared, dict, float]]:
        """Send the submissions to the cluster, keeping every thread busy and one more
        submission queued per thread; yields (submission, results, seconds) as each finishes."""
        try:
            self.client.register_plugin(GradingPlugin(limits, fingerprint()), name=self.plugin_name)
        except RuntimeError as error:
            raise CourseError(str(error)) from None
        sent = set()  # submitted and not yet yielded: cancelled if the run stops early
        try:
            for item, future in windowed(prepared, lambda item: self._submit(item, sent), self._first_done,
                                         2 * self.threads()):
                try:
                    results, seconds = future.result()
                except Exception as error:  # noqa: BLE001 - a lost worker costs this submission, not the batch
                    results, seconds = not_run(item, f"the Dask cluster could not run this submission: {error!r}"), 0.0
                sent.discard(future)
                future.release()
                yield item, results, seconds
        finally:
            self.client.cancel(list(sent))

    def _submit(self, item: Prepared, sent: set):
        task = item.task
        future = self.client.submit(run_on_dask_worker, payload(item), self.plugin_name, pure=False,
                                    key=f"course-grade-{task.student}-{task.assignment}-{uuid.uuid4().hex[:8]}")
        sent.add(future)
        return future

    @staticmethod
    def _first_done(futures):
        return wait(futures, return_when="FIRST_COMPLETED").done

    def close(self) -> None:
        try:
            self.client.unregister_worker_plugin(self.plugin_name)
        except Exception:  # noqa: BLE001 - never registered, or the cluster is gone
            pass
        self.client.close()


def connect(address: str, timeout: float = CONNECT_TIMEOUT) -> DaskCluster:
    """Connect to the Dask scheduler at `address` and wait for at least one worker."""
    if Client is None:
        raise CourseError("--executor dask needs the 'distributed' package: pip install distributed")
    try:
        client = Client(address, timeout=timeout)
    except (OSError, TimeoutError, ValueError) as error:
        raise CourseError(f"could not reach the Dask scheduler at {address!r} ({error}); start one with "
                          f"`dask scheduler` and a `dask worker ADDRESS` on each grading machine") from None
    try:
        client.wait_for_workers(1, timeout=timeout)
    except TimeoutError:
        client.close()
        raise CourseError(f"the Dask scheduler at {address} has no workers after {timeout:g} s; start "
                          f"`dask worker {address}` on each grading machine (with dl-course and bubblewrap "
                          f"installed)") from None
    return DaskCluster(client, address)
