"""What the two executors on warm sandboxed workers share (`sandboxed`, `dask_cluster`):
the job one submission becomes (plain data: it may travel to a Dask worker), running it on
a warm worker, and putting the outputs that come back into the sanitized notebooks."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import nbformat

from course_lib.autograde.protocol import Cell, Limits, Result, SubmissionJob
from course_lib.autograde.sandbox import Worker, WorkerError
from course_lib.autograde.sanitize import cell_kind
from course_lib.autograde.submission import Prepared, Ran

MAX_FILE_BYTES = 50 * 1024 * 1024    # larger files of a submission are not copied into its working copy
MAX_FILES_BYTES = 200 * 1024 * 1024  # nor files past this total (they travel in memory, maybe to a cluster)


def job_for(prepared: Prepared) -> SubmissionJob:
    """What a worker needs to run one submission: each sanitized notebook's code cells and
    the submission's other files."""
    notebooks = {s.name: [Cell(i, cell.source, cell_kind(cell)) for i, cell in enumerate(s.notebook.cells)
                          if cell.cell_type == "code"]
                 for s in prepared.notebooks if s.notebook is not None}
    task = prepared.task
    return SubmissionJob(task.name, f"{task.student}__{task.assignment}", notebooks,
                         _read_files(task.folder, prepared.problems))


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


def run_job(worker: Worker, job: SubmissionJob) -> tuple[dict[str, Result], float]:
    """Run one submission's notebooks on a warm worker, each in a fresh working copy.
    Returns ({notebook name: the worker's result}, seconds)."""
    start = time.perf_counter()
    results = {}
    for name, cells in job.notebooks.items():
        workdir = worker.workdir(f"{job.folder}__{name}")
        _write_files(job.files, workdir)
        try:
            results[name] = worker.run(f"{job.id}/{name}", cells, workdir)
        except WorkerError as error:
            results[name] = Result(f"{job.id}/{name}", error=str(error))
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
    return results, time.perf_counter() - start


def ran_from(prepared: Prepared, results: dict[str, Result], seconds: float) -> Ran:
    """The sanitized notebooks with the outputs the worker sent back; cells it never
    finished get an error output with the reason."""
    ran = Ran(prepared, seconds=seconds)
    for sanitized in prepared.notebooks:
        if sanitized.notebook is not None:
            result = results.get(sanitized.name, Result(sanitized.name, error="not run"))
            ran.problems += _fill(sanitized.notebook, result)
            ran.notebooks[sanitized.name] = sanitized.notebook
    ran.log = [f"{name}: {result.attempts} run(s), {result.seconds:.2f} s in the sandbox"
               for name, result in results.items()]
    return ran


def _stopped(reason: str) -> list:
    return [nbformat.v4.new_output("error", ename="GraderStopped", evalue=reason,
                                   traceback=[f"GraderStopped: {reason}"])]


def _fill(notebook: nbformat.NotebookNode, result: Result) -> list[str]:
    """Put the child's outputs into the sanitized notebook. Returns the problems to report."""
    problems = list(result.notes)
    if result.error:
        problems.append(result.error.splitlines()[0])
    stop = next((n[len("stopped: "):] for n in result.notes if n.startswith("stopped: ")),
                result.error.splitlines()[0] if result.error else "not run")
    count = 0
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != "code":
            continue
        outputs = result.outputs.get(index)
        if outputs is None:
            cell.outputs = _stopped(f"this cell was not run: {stop}")
            cell.execution_count = None
            continue
        count += 1
        cell.outputs = [nbformat.from_dict(output) for output in outputs]
        cell.execution_count = count
    return problems


def threads_per_submission(limits: Limits, slots: int) -> Limits:
    """Limits with `threads` set: the CPUs over the slots, at least 2 (as an nbgrader kernel
    on a laptop would have), unless the caller chose a number."""
    if limits.threads:
        return limits
    cpus = os.cpu_count() or 1
    return replace(limits, threads=min(cpus, max(2, cpus // slots)))


def scratch_folder() -> Path:
    """A private folder for the workers' working copies (traversable by the slots' uids)."""
    scratch = Path(tempfile.mkdtemp(prefix="course-grade-"))
    os.chmod(scratch, 0o711)
    return scratch
