"""`course grade --executor dask --scheduler ADDRESS`: the sandboxed executor with its warm
workers on an existing Dask distributed cluster (see docs/grading.md).

grading process (this machine, trusted)          each Dask worker                      warm worker (bwrap)
  sanitize against the gradebook  --job-->         GradingPlugin: a warm sandboxed -->  fork a child per
  score with nbgrader's rules     <--outputs--     worker per Dask thread          <--  submission, as locally
  write gradebook, autograded/, logs/

Only plain data travels: each notebook's code cells (instructor cells already restored from
the gradebook) and the submission's other files. The course root, the gradebook and
solutions/ stay on this machine, and the scores are computed here, so a submission gets the
same grade as with the local executor. Submissions go only to Dask workers that run the
same course_lib (checked against a fingerprint of its source, also for workers that join
during the run); each worker's log line says which sandbox it has.
"""

from __future__ import annotations

import hashlib
import queue
import shutil
import sys
import threading
import time
import uuid
from concurrent.futures import CancelledError
from pathlib import Path
from typing import Iterator

import course_lib
from course_lib.autograde.course import CourseError
from course_lib.autograde.executors.base import windowed
from course_lib.autograde.executors.warm import job_for, ran_from, run_job, scratch_folder, threads_per_submission
from course_lib.autograde.protocol import Limits, Result, SubmissionJob
from course_lib.autograde.sandbox import Worker
from course_lib.autograde.sandbox import describe as sandbox_mode
from course_lib.autograde.submission import Prepared, Ran

try:
    from distributed import Client, WorkerPlugin, get_worker, wait
    from distributed import TimeoutError as DaskTimeout
except ImportError:  # `course grade` without --executor dask works without it
    Client = None
    WorkerPlugin = object

CONNECT_TIMEOUT = 30     # seconds to reach the scheduler and see a worker
NO_WORKERS_TIMEOUT = 120  # seconds without a usable worker before the rest is reported not graded
POLL = 5                 # seconds between checks for workers that joined or left


def fingerprint() -> str:
    """A digest of course_lib's source: the checks that grade must be the same everywhere."""
    package = Path(course_lib.__file__).parent
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        digest.update(path.relative_to(package).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


class GradingPlugin(WorkerPlugin):
    """Installed on every Dask worker for one `course grade` run: a pool of warm sandboxed
    workers, started as the Dask threads first need them and killed when the run ends."""

    def __init__(self, limits: Limits, expected_fingerprint: str):
        self.limits, self.expected = limits, expected_fingerprint
        self.workers: list[Worker] = []
        self.scratch, self.refused = None, None

    def setup(self, worker) -> None:
        self.lock = threading.Lock()
        self.free: queue.LifoQueue[Worker] = queue.LifoQueue()  # the most recently used is the warmest
        if fingerprint() != self.expected:  # the grading process sends it no submissions
            self.refused = f"Dask worker {worker.address} runs a different course_lib"
            return
        self.scratch = scratch_folder()
        self.limits = threads_per_submission(self.limits, worker.state.nthreads)

    def acquire(self) -> Worker:
        try:
            return self.free.get_nowait()
        except queue.Empty:
            with self.lock:
                if self.scratch is None:
                    raise RuntimeError(self.refused or "the grading run on this Dask worker has ended") from None
                self.workers.append(Worker(len(self.workers), self.scratch, self.limits))
                return self.workers[-1]

    def release(self, worker: Worker) -> None:
        self.free.put(worker)

    def teardown(self, worker) -> None:
        with self.lock:
            scratch, self.scratch = self.scratch, None
        for sandboxed in self.workers:  # a submission still running (the run stopped early) ends now
            sandboxed.kill()
        for sandboxed in self.workers:
            sandboxed.close()
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


def run_on_dask_worker(job: SubmissionJob, plugin_name: str) -> tuple[dict[str, Result], float]:
    """The Dask task: one submission on one of this Dask worker's warm sandboxed workers."""
    plugin = get_worker().plugins[plugin_name]
    worker = plugin.acquire()
    try:
        return run_job(worker, job)
    finally:
        plugin.release(worker)


class ClusterLost(RuntimeError):
    pass


class DaskExecutor:
    """A connection to the cluster for one `course grade` run (see `executors.base.Executor`)."""

    def __init__(self, client, address: str, limits: Limits):
        self.client, self.address, self.limits = client, address, limits
        self.plugin_name = f"course-grade-{uuid.uuid4().hex[:12]}"
        self.expected = fingerprint()
        self.usable: dict[str, int] = {}   # worker address -> threads, for present workers with our course_lib
        self.verified: set[str] = set()     # every worker that had our course_lib: where tasks may run
        self.refused: set[str] = set()
        self.lonely_since = None            # when the last usable worker left

    def refresh(self) -> None:
        """Check workers that joined (same course_lib?) and forget those that left."""
        present = {a: w["nthreads"] for a, w in self.client.scheduler_info(n_workers=-1)["workers"].items()}
        new = [a for a in present if a not in self.usable and a not in self.refused]
        if new:
            for address, theirs in self.client.run(fingerprint, workers=new, on_error="return").items():
                if isinstance(theirs, BaseException):  # it left again, or is still starting: ask next time
                    continue
                if theirs == self.expected:
                    self.usable[address] = present[address]
                    self.verified.add(address)
                else:
                    self.refused.add(address)
                    self.verified.discard(address)
                    print(f"course grade: not using Dask worker {address}: it runs a different course_lib (source "
                          f"{theirs}, here {self.expected}); install the same dl-course version there", file=sys.stderr)
        self.usable = {a: n for a, n in self.usable.items() if a in present}

    def threads(self) -> int:
        return sum(self.usable.values())

    def describe(self) -> str:
        self.refresh()
        if not self.usable:
            raise CourseError(f"no Dask worker at {self.address} runs this course_lib (source {self.expected}); "
                              f"install the same dl-course version on the grading machines")
        modes = self.client.run(sandbox_mode, workers=list(self.usable))
        head = f"Dask cluster at {self.address}: {len(modes)} workers, {self.threads()} threads; "
        if len(set(modes.values())) == 1:
            return head + next(iter(modes.values()))
        return head + "; ".join(f"{address}: {mode}" for address, mode in sorted(modes.items()))

    def run(self, prepared: Iterator[Prepared], count: int) -> Iterator[Ran]:
        """Send the submissions to the usable workers, keeping every thread busy and one more
        submission queued per thread; yields each as it finishes. If the cluster goes away,
        the rest are reported not graded."""
        try:
            self.client.register_plugin(GradingPlugin(self.limits, self.expected), name=self.plugin_name)
        except Exception as error:  # noqa: BLE001 - whatever the workers raised, say it plainly
            raise CourseError(f"the grading plugin could not start on the Dask workers: {error}") from None
        unfinished: dict[int, list] = {}  # id(item) -> [item, its future once sent]
        try:
            for item, future in windowed(prepared, lambda item: self._submit(item, unfinished), self._first_done,
                                         lambda: max(1, 2 * self.threads())):
                try:
                    ran = ran_from(item, *future.result())
                except Exception as error:  # noqa: BLE001 - a lost worker costs this run of it, not the batch
                    ran = Ran(item, not_graded=f"the Dask cluster could not run this submission: {error!r}")
                del unfinished[id(item)]
                future.release()
                yield ran
        except Exception as error:  # noqa: BLE001 - ClusterLost, a lost scheduler, a closed client
            reason = f"the Dask cluster went away before this submission was graded ({error!r})"
            for item in [*(item for item, _ in unfinished.values()), *prepared]:
                yield Ran(item, not_graded=reason)
        finally:  # stopped early, or the cluster went away: nothing of this run keeps running
            self._cancel([future for _, future in unfinished.values() if future is not None])

    def _cancel(self, futures: list) -> None:
        try:
            self.client.cancel(futures)
        except Exception:  # noqa: BLE001 - the scheduler is gone, and the futures with it
            pass

    def _submit(self, item: Prepared, unfinished: dict):
        unfinished[id(item)] = [item, None]
        task = item.task
        future = self.client.submit(run_on_dask_worker, job_for(item), self.plugin_name, pure=False,
                                    workers=sorted(self.verified), allow_other_workers=False,
                                    key=f"course-grade-{task.student}-{task.assignment}-{uuid.uuid4().hex[:8]}")
        unfinished[id(item)][1] = future
        return future

    def _first_done(self, futures) -> set:
        """Wait for some futures to finish (cancelled ones count), watching for workers that
        join or leave; raise ClusterLost after NO_WORKERS_TIMEOUT without a usable worker."""
        while True:
            try:
                return wait(futures, timeout=POLL, return_when="FIRST_COMPLETED").done
            except CancelledError:
                return {f for f in futures if f.cancelled()}
            except DaskTimeout:
                self._watch_workers()

    def _watch_workers(self) -> None:
        self.refresh()
        if self.usable:
            self.lonely_since = None
        elif self.lonely_since is None:
            self.lonely_since = time.monotonic()
        elif time.monotonic() - self.lonely_since > NO_WORKERS_TIMEOUT:
            raise ClusterLost(f"no Dask worker with this course_lib for {NO_WORKERS_TIMEOUT} s")

    def __enter__(self) -> DaskExecutor:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        try:
            self.client.unregister_worker_plugin(self.plugin_name)
        except Exception:  # noqa: BLE001 - never registered, or the cluster is gone
            pass
        self.client.close()


def connect(address: str, limits: Limits, timeout: float = CONNECT_TIMEOUT) -> DaskExecutor:
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
    return DaskExecutor(client, address, limits)
