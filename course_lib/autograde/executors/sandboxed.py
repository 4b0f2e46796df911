"""The sandboxed executor behind `course grade` (see pipeline.grade and docs/grading.md).

grading process (trusted)                     warm worker (bwrap)      child (per submission)
  sanitize against the gradebook  --job-->      fork, watch, retry  -->  uid drop, rlimits,
  score outputs (nbgrader rules)  <--outputs--                      <--  run cells, stream outputs
  write gradebook, autograded/, logs/

Only the grading process touches the gradebook, the course root and the submissions. The
warm workers run on this machine (`run_locally`, `--jobs N`) or on a Dask cluster
(`dask_executor.py`, `--executor dask`); both receive the same plain-data job (`payload`).
"""

from __future__ import annotations

import os
import queue
import shutil
import sys
import tempfile
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import nbformat
from nbgrader import utils
from nbgrader.api import Gradebook, MissingEntry
from nbgrader.preprocessors import IgnorePattern, SaveAutoGrades

from course_lib.autograde.course import COURSE_ID, db_url, zero_unscored
from course_lib.autograde.sandbox import Limits, Worker, WorkerError, describe
from course_lib.autograde.sanitize import Sanitized, cell_kind, load_config, sanitize


MAX_FILE_BYTES = 50 * 1024 * 1024    # larger files of a submission are not copied into its working copy
MAX_FILES_BYTES = 200 * 1024 * 1024  # nor files past this total (they travel in memory, maybe to a cluster)


@dataclass
class Prepared:
    task: object
    notebooks: list[Sanitized] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    timestamp: object = None


def _expected_notebooks(url: str, assignments) -> dict:
    with Gradebook(url, COURSE_ID) as gradebook:
        return {hw: sorted(nb.name for nb in gradebook.find_assignment(hw).notebooks) for hw in assignments}


def prepare(task, root: Path, url: str, expected: list[str], config) -> Prepared:
    prepared = Prepared(task)
    stamp = task.folder / "timestamp.txt"
    if stamp.is_file():
        try:
            prepared.timestamp = utils.parse_utc(stamp.read_text().strip())
        except Exception:  # noqa: BLE001 - a bad timestamp is not a reason to fail grading
            prepared.problems.append("timestamp.txt could not be read; graded without a timestamp")
    present = sorted(p.name for p in task.folder.glob("*.ipynb"))
    for name in expected:
        path = task.folder / f"{name}.ipynb"
        if not path.is_file() or path.is_symlink():
            others = [p for p in present if p != f"{name}.ipynb"]
            hint = f"; found {', '.join(others)} (rename it to {name}.ipynb)" if others else ""
            prepared.problems.append(f"no notebook named {name}.ipynb was submitted (scored 0){hint}")
            prepared.notebooks.append(Sanitized(name))
            continue
        result = sanitize(path, name, root, task.assignment, task.student, url, config)
        prepared.problems += result.problems
        prepared.notebooks.append(result)
    return prepared


def payload(prepared: Prepared) -> dict:
    """What a worker needs to run one submission, as plain data (it may travel to a Dask
    worker): each sanitized notebook's code cells and the submission's other files."""
    notebooks = {s.name: [{"index": i, "source": cell.source, "kind": cell_kind(cell)}
                          for i, cell in enumerate(s.notebook.cells) if cell.cell_type == "code"]
                 for s in prepared.notebooks if s.notebook is not None}
    task = prepared.task
    return {"id": f"{task.student}/{task.assignment}", "folder": f"{task.student}__{task.assignment}",
            "notebooks": notebooks, "files": _read_files(task.folder, prepared.problems)}


def _read_files(source: Path, problems: list[str]) -> dict[str, bytes]:
    """The submission's other files (data, helper modules), never notebooks or links; a file
    that cannot be read, or is past the size limits, is left out and reported in `problems`."""
    files, total = {}, 0
    for path in sorted(source.rglob("*")):
        relative = path.relative_to(source)
        if path.is_symlink() or path.suffix == ".ipynb" or relative.parts[0] == ".ipynb_checkpoints":
            continue
        try:
            if not path.is_file():
                continue
            size = path.stat().st_size
            if size >= MAX_FILE_BYTES or total + size > MAX_FILES_BYTES:
                problems.append(f"{relative} ({size / 2**20:.0f} MiB) is past the size limits (a file under "
                                f"{MAX_FILE_BYTES >> 20} MiB, {MAX_FILES_BYTES >> 20} MiB in all); graded without it")
                continue
            files[relative.as_posix()] = path.read_bytes()
            total += size
        except OSError as error:
            problems.append(f"{relative} could not be read ({error.strerror}); graded without it")
    return files


def _write_files(files: dict[str, bytes], target: Path) -> None:
    for relative, data in files.items():
        (target / relative).parent.mkdir(parents=True, exist_ok=True)
        (target / relative).write_bytes(data)


def run_payload(worker: Worker, job: dict) -> tuple[dict, float]:
    """Run one submission's notebooks on a warm worker, each in a fresh working copy.
    Returns ({notebook name: the worker's result}, seconds)."""
    start = time.perf_counter()
    results = {}
    for name, cells in job["notebooks"].items():
        workdir = worker.workdir(f"{job['folder']}__{name}")
        _write_files(job["files"], workdir)
        try:
            results[name] = worker.run({"id": f"{job['id']}/{name}", "cells": cells, "workdir": str(workdir)})
        except WorkerError as error:
            results[name] = {"error": str(error), "outputs": {}, "notes": [], "skipped": {}}
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
    return results, time.perf_counter() - start


@dataclass
class NotGraded:
    """The grading machinery (a lost machine, a cluster that went away), not the student's
    code, failed to run a submission: it is reported, and its gradebook entry is left as it was."""

    reason: str


def windowed(items: Iterator[Prepared], submit, first_done, window) -> Iterator[tuple[Prepared, object]]:
    """Keep `window()` submissions in flight: `submit(item)` starts one and returns its future,
    `first_done(futures)` blocks until some finish and returns them. Items are drawn (and so
    sanitized) only as they are sent; yields (item, finished future), each finished item
    before the next one is drawn."""
    running = {}
    while True:
        while len(running) < window():
            item = next(items, None)
            if item is None:
                break
            running[submit(item)] = item
        if not running:
            return
        for future in first_done(list(running)):
            yield running.pop(future), future


def _stopped(reason: str) -> list:
    return [nbformat.v4.new_output("error", ename="GraderStopped", evalue=reason,
                                   traceback=[f"GraderStopped: {reason}"])]


def _fill(notebook, result: dict) -> list[str]:
    """Put the child's outputs into the sanitized notebook; cells it never finished get an
    error output with the reason. Returns the problems to report."""
    problems = [n for n in result.get("notes", [])]
    if result.get("error"):
        problems.append(result["error"].splitlines()[0])
    stop = next((n[len("stopped: "):] for n in result.get("notes", []) if n.startswith("stopped: ")),
                result.get("error", "not run").splitlines()[0] if result.get("error") else "not run")
    count = 0
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != "code":
            continue
        outputs = result.get("outputs", {}).get(str(index))
        if outputs is None:
            cell.outputs = _stopped(f"this cell was not run: {stop}")
            cell.execution_count = None
            continue
        count += 1
        cell.outputs = [nbformat.from_dict(output) for output in outputs]
        cell.execution_count = count
    return problems


def _failures(notebook) -> list[str]:
    failed = []
    for cell in notebook.cells:
        if cell.cell_type == "code" and utils.is_grade(cell) and not utils.is_solution(cell):
            for output in cell.outputs:
                if output.output_type == "error":
                    failed.append(f"{cell.metadata.nbgrader['grade_id']}: {output.ename}: {output.evalue[:300]}")
                    break
                if output.output_type == "stream" and output.name == "stderr":
                    failed.append(f"{cell.metadata.nbgrader['grade_id']}: wrote to stderr: {output.text[:200]!r}")
                    break
    return failed


def record(root: Path, url: str, config, prepared: Prepared, results: dict, seconds: float):
    """Score one submission's outputs with nbgrader's rules into the course gradebook."""
    from course_lib.autograde.pipeline import Outcome

    task = prepared.task
    outcome = Outcome(task.student, task.assignment, seconds=seconds, problems=list(prepared.problems))
    destination = root / "autograded" / task.student / task.assignment
    if destination.exists():
        shutil.rmtree(destination)
    with Gradebook(url, COURSE_ID) as gradebook:
        gradebook.update_or_create_student(task.student)
        try:
            gradebook.remove_submission(task.assignment, task.student)
        except MissingEntry:
            pass
        gradebook.add_submission(task.assignment, task.student,
                                 **({"timestamp": prepared.timestamp} if prepared.timestamp else {}))
    for sanitized in prepared.notebooks:
        outcome.notes += sanitized.notes
        if sanitized.notebook is None:
            continue
        notebook = sanitized.notebook
        outcome.problems += _fill(notebook, results.get(sanitized.name, {"error": "not run"}))
        resources = {"nbgrader": {"db_url": url, "assignment": task.assignment, "notebook": sanitized.name,
                                  "student": task.student}}
        notebook, resources = IgnorePattern(config=config).preprocess(notebook, resources)
        notebook, resources = SaveAutoGrades(config=config).preprocess(notebook, resources)
        outcome.failed += _failures(notebook)
        destination.mkdir(parents=True, exist_ok=True)
        nbformat.write(notebook, destination / f"{sanitized.name}.ipynb")
    with Gradebook(url, COURSE_ID) as gradebook:
        outcome.score, outcome.max_score = zero_unscored(gradebook, task.assignment, task.student)
    return outcome


def not_graded(prepared: Prepared, reason: str):
    from course_lib.autograde.pipeline import Outcome

    task = prepared.task
    return Outcome(task.student, task.assignment, graded=False,
                   problems=[f"NOT GRADED: {reason}; its gradebook entry is unchanged; run course grade again"])


def write_log(root: Path, outcome, mode: str, results: dict) -> None:
    logs = root / "logs" / outcome.assignment
    logs.mkdir(parents=True, exist_ok=True)
    score = f"score {outcome.score:g} / {outcome.max_score:g}" if outcome.graded else "NOT GRADED"
    lines = [f"student {outcome.student}, assignment {outcome.assignment}", mode,
             f"{score} in {outcome.seconds:.2f} s"]
    for name, result in results.items():
        lines.append(f"{name}: {result.get('attempts', 0)} run(s), {result.get('seconds', 0):.2f} s in the sandbox")
    lines += [f"repaired: {n}" for n in outcome.notes]
    lines += [f"problem: {p}" for p in outcome.problems]
    lines += [f"failed: {f}" for f in outcome.failed]
    (logs / f"{outcome.student}.log").write_text("\n".join(lines) + "\n")


def _show_bar(bar) -> bool:
    if bar is not None:
        return bar
    return sys.stderr.isatty() and not os.environ.get("COURSE_QUIET")


def threads_per_submission(limits: Limits, slots: int) -> Limits:
    """Limits with `threads` set: the CPUs over the slots, at least 2 (as an nbgrader kernel
    on a laptop would have), unless the caller chose a number."""
    if limits.threads:
        return limits
    cpus = os.cpu_count() or 1
    return Limits(**{**vars(limits), "threads": min(cpus, max(2, cpus // slots))})


def scratch_folder() -> Path:
    """A private folder for the workers' working copies (traversable by the slots' uids)."""
    scratch = Path(tempfile.mkdtemp(prefix="course-grade-"))
    os.chmod(scratch, 0o711)
    return scratch


def run_locally(prepared: Iterator[Prepared], count: int, jobs: int,
                limits: Limits) -> Iterator[tuple[Prepared, dict, float]]:
    """Run `count` submissions on `jobs` warm workers on this machine; yields (submission,
    results, seconds) as each one finishes."""
    scratch = scratch_folder()
    slots = max(1, min(jobs, count))
    limits = threads_per_submission(limits, slots)
    workers = [Worker(slot, scratch, limits) for slot in range(slots)]
    free: queue.Queue[Worker] = queue.Queue()
    for worker in workers:
        free.put(worker)

    def execute(item: Prepared) -> tuple[dict, float]:
        worker = free.get()
        try:
            return run_payload(worker, payload(item))
        finally:
            free.put(worker)

    def first_done(futures):
        return wait(futures, return_when=FIRST_COMPLETED).done

    pool = ThreadPoolExecutor(max_workers=slots)
    finished = False
    try:
        for item, future in windowed(prepared, lambda item: pool.submit(execute, item), first_done, lambda: 2 * slots):
            try:
                yield (item, *future.result())
            except Exception as error:  # noqa: BLE001 - one submission's failure is not the batch's
                yield item, NotGraded(f"the grader failed on this submission: {error!r}"), 0.0
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


def default_limits(config) -> Limits:
    timeout = config.Execute.get("timeout", 120) if "Execute" in config else 120
    return Limits(cell_timeout=float(timeout or 120))


def grade_sandboxed(root: Path, tasks: list, jobs: int, progress=None, limits: Limits | None = None,
                    bar: bool | None = None, scheduler: str | None = None) -> list:
    """Sanitize, run (on local warm workers, or on the Dask cluster at `scheduler`) and score
    every submission; returns the outcomes in the order they finished."""
    url, config = db_url(root), load_config(root)
    limits = limits or default_limits(config)
    cluster = _connect(scheduler) if scheduler else None
    try:
        mode = cluster.describe() if cluster else describe()
        print(f"course grade: {mode}", file=sys.stderr)
        expected = _expected_notebooks(url, sorted({t.assignment for t in tasks}))
        prepared = (prepare(task, root, url, expected[task.assignment], config) for task in tasks)
        runs = cluster.run(prepared, limits) if cluster else run_locally(prepared, len(tasks), jobs, limits)
        try:
            return _score_all(root, url, config, runs, mode, len(tasks), progress, bar)
        finally:
            runs.close()
    finally:
        if cluster:
            cluster.close()


def _connect(scheduler: str):
    from course_lib.autograde.executors.dask_cluster import connect  # imports distributed only when asked for

    return connect(scheduler)


def _score_all(root: Path, url: str, config, runs, mode: str, count: int, progress, bar) -> list:
    """Score and record each submission as its run finishes, with a progress bar."""
    outcomes = []
    ticker = None
    if _show_bar(bar):
        from tqdm.auto import tqdm
        ticker = tqdm(total=count, unit="notebook", desc="grading")
    try:
        for item, results, seconds in runs:
            if isinstance(results, NotGraded):
                outcome, results = not_graded(item, results.reason), {}
            else:
                outcome = record(root, url, config, item, results, seconds)
            write_log(root, outcome, mode, results)
            outcomes.append(outcome)
            if ticker is not None:
                ticker.update(1)
            if progress:
                progress(outcome)
    finally:
        if ticker is not None:
            ticker.close()
    return outcomes
