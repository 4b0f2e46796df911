"""The sandboxed executor behind `course grade` (see runner.grade and docs/grading.md).

grading process (trusted)                     warm worker (bwrap)      child (per submission)
  sanitize against the gradebook  --job-->      fork, watch, retry  -->  uid drop, rlimits,
  score outputs (nbgrader rules)  <--outputs--                      <--  run cells, stream outputs
  write gradebook, autograded/, logs/

Only the grading process touches the gradebook, the course root and the submissions.
"""

from __future__ import annotations

import os
import queue
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbgrader import utils
from nbgrader.api import Gradebook, MissingEntry
from nbgrader.preprocessors import IgnorePattern, SaveAutoGrades

from course_lib.grading.course import COURSE_ID, db_url, zero_unscored
from course_lib.grading.sandbox import Limits, Worker, WorkerError, describe
from course_lib.grading.sanitize import Sanitized, cell_kind, load_config, sanitize


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


def _job(prepared: Prepared, sanitized: Sanitized, workdir: Path) -> dict:
    cells = [{"index": i, "source": cell.source, "kind": cell_kind(cell)}
             for i, cell in enumerate(sanitized.notebook.cells) if cell.cell_type == "code"]
    return {"id": f"{prepared.task.student}/{prepared.task.assignment}/{sanitized.name}", "cells": cells,
            "workdir": str(workdir)}


def _copy_files(source: Path, target: Path) -> None:
    """The submission's other files (data, helper modules), never notebooks or links."""
    for path in source.rglob("*"):
        relative = path.relative_to(source)
        if path.is_symlink() or path.suffix == ".ipynb" or relative.parts[0] == ".ipynb_checkpoints":
            continue
        if path.is_dir():
            (target / relative).mkdir(parents=True, exist_ok=True)
        elif path.is_file() and path.stat().st_size < 50 * 1024 * 1024:
            (target / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target / relative)


def execute(prepared: Prepared, free: queue.Queue[Worker]) -> tuple[Prepared, dict, float]:
    """Run each sanitized notebook of one submission on a free warm worker."""
    start = time.perf_counter()
    results = {}
    worker = free.get()
    try:
        for sanitized in prepared.notebooks:
            if sanitized.notebook is None:
                continue
            workdir = worker.workdir(f"{prepared.task.student}__{prepared.task.assignment}__{sanitized.name}")
            _copy_files(prepared.task.folder, workdir)
            try:
                results[sanitized.name] = worker.run(_job(prepared, sanitized, workdir))
            except WorkerError as error:
                results[sanitized.name] = {"error": str(error), "outputs": {}, "notes": [], "skipped": {}}
            finally:
                shutil.rmtree(workdir, ignore_errors=True)
    finally:
        free.put(worker)
    return prepared, results, time.perf_counter() - start


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
    from course_lib.grading.runner import Outcome

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


def write_log(root: Path, outcome, mode: str, results: dict) -> None:
    logs = root / "logs" / outcome.assignment
    logs.mkdir(parents=True, exist_ok=True)
    lines = [f"student {outcome.student}, assignment {outcome.assignment}", mode,
             f"score {outcome.score:g} / {outcome.max_score:g} in {outcome.seconds:.2f} s"]
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


def grade_sandboxed(root: Path, tasks: list, jobs: int, progress=None, limits: Limits | None = None,
                    bar: bool | None = None) -> list:
    url = db_url(root)
    config = load_config(root)
    if limits is None:
        timeout = config.Execute.get("timeout", 120) if "Execute" in config else 120
        limits = Limits(cell_timeout=float(timeout or 120))
    mode = describe()
    print(f"course grade: {mode}", file=sys.stderr)
    expected = _expected_notebooks(url, sorted({t.assignment for t in tasks}))
    prepared = [prepare(task, root, url, expected[task.assignment], config) for task in tasks]
    outcomes = []
    scratch = Path(tempfile.mkdtemp(prefix="course-grade-"))
    os.chmod(scratch, 0o711)
    slots = max(1, min(jobs, len(tasks)))
    if not limits.threads:
        cpus = os.cpu_count() or 1  # at least 2 threads, as an nbgrader kernel on a laptop would have
        limits = Limits(**{**vars(limits), "threads": min(cpus, max(2, cpus // slots))})
    workers = [Worker(slot, scratch, limits) for slot in range(slots)]
    free: queue.Queue[Worker] = queue.Queue()
    for worker in workers:
        free.put(worker)
    ticker = None
    if _show_bar(bar):
        from tqdm.auto import tqdm
        ticker = tqdm(total=len(tasks), unit="notebook", desc="grading")
    try:
        with ThreadPoolExecutor(max_workers=len(workers)) as pool:
            futures = [pool.submit(execute, item, free) for item in prepared]
            for future in as_completed(futures):
                item, results, seconds = future.result()
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
        for worker in workers:
            worker.close()
        shutil.rmtree(scratch, ignore_errors=True)
    return outcomes
