"""`course check NOTEBOOK`: a student runs their notebook's visible tests and gets a
per-question report, with no nbgrader set-up. The hidden tests are not in the student's
notebook, so a pass here is necessary, not sufficient, for the points."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from course_lib.autograde.course import nbgrader_env
from course_lib.kernels import kernel_config


@dataclass(frozen=True)
class QuestionResult:
    name: str
    points: float
    passed: bool
    message: str


def _failure(cell) -> str | None:
    for output in cell.get("outputs", []):
        if output.output_type == "error":
            return f"{output.ename}: {output.evalue}"
        if output.output_type == "stream" and output.name == "stderr":
            return "the cell wrote to stderr: " + output.text.strip().splitlines()[-1][:200]
    return None


def check_notebook(path: Path, timeout: int = 300) -> list[QuestionResult]:
    """Execute a copy of the notebook (the file is not changed) and report each test cell."""
    path = Path(path)
    try:
        notebook = nbformat.read(path, as_version=4)
    except Exception as error:  # noqa: BLE001 - not JSON, not a notebook, not readable: whatever it is, say so
        raise ValueError(f"{path} is not a readable notebook ({error}); re-download it from the course") from None
    saved = dict(os.environ)
    os.environ.update(nbgrader_env())
    try:
        NotebookClient(notebook, timeout=timeout, allow_errors=True, kernel_name="python3", config=kernel_config(),
                       resources={"metadata": {"path": str(path.parent.resolve())}}).execute()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    results = []
    for cell in notebook.cells:
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "code" and meta.get("grade") and not meta.get("solution"):
            message = _failure(cell)
            points = float(meta.get("points", 0))
            results.append(QuestionResult(meta.get("grade_id", "?"), points, message is None, message or "passed"))
    return results


def format_report(results: list[QuestionResult]) -> str:
    lines = []
    for r in results:
        lines.append(f"{'PASS' if r.passed else 'FAIL'}  {r.name}  ({r.points:g} point{'s' if r.points != 1 else ''})")
        if not r.passed:
            lines.append(f"      {r.message}")
    earned = sum(r.points for r in results if r.passed)
    lines.append(f"visible tests: {sum(r.passed for r in results)}/{len(results)} passed, "
                 f"{earned:g}/{sum(r.points for r in results):g} points if the hidden tests agree")
    return "\n".join(lines)
