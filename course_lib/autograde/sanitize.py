"""Read and sanitize one submitted notebook in the grading (trusted) process, with
nbgrader's own preprocessors against the gradebook, before any of it runs.

ClearOutput drops what the student's outputs claim; DeduplicateIds removes duplicated
cells; OverwriteKernelspec sets the course kernel; OverwriteCells (add_missing_cells)
restores every locked and test cell, hidden tests included, from the source recorded in
the gradebook, whether the student deleted, edited, retyped or duplicated it;
CheckCellMetadata refuses broken nbgrader metadata. A notebook that is not valid JSON,
is not a notebook, or is missing (a wrongly named one) is a zero with a reason; an old
nbformat version is converted (nbformat.convert) and graded.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbgrader import utils
from nbgrader.preprocessors import (
    CheckCellMetadata,
    ClearOutput,
    DeduplicateIds,
    OverwriteCells,
    OverwriteKernelspec,
)
from traitlets.config import Config
from traitlets.config.loader import PyFileConfigLoader

from course_lib.autograde.course import CONFIG

SANITIZERS = (ClearOutput, DeduplicateIds, OverwriteKernelspec, OverwriteCells, CheckCellMetadata)


@dataclass
class Sanitized:
    name: str
    notebook: nbformat.NotebookNode | None = None
    problems: list[str] = field(default_factory=list)  # why it scores zero
    notes: list[str] = field(default_factory=list)      # what was repaired


def load_config(root: Path) -> Config:
    return PyFileConfigLoader(CONFIG, path=str(root)).load_config()


def read_notebook(path: Path, name: str) -> Sanitized:
    out = Sanitized(name)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
        raw = json.loads(text)
    except json.JSONDecodeError as error:
        out.problems.append(f"{path.name} is not valid JSON ({error.msg} at line {error.lineno}); "
                            "it cannot be read as a notebook (scored 0)")
        return out
    except OSError as error:
        out.problems.append(f"{path.name} could not be read ({error.strerror}) (scored 0)")
        return out
    if not isinstance(raw, dict) or "nbformat" not in raw:
        out.problems.append(f"{path.name} is JSON but not a notebook (no nbformat field) (scored 0)")
        return out
    version = raw.get("nbformat")
    try:
        notebook = nbformat.reads(text, as_version=4)  # nbformat.convert for older versions
    except Exception as error:  # noqa: BLE001 - any unreadable notebook is a zero with the reason
        out.problems.append(f"{path.name} is not a readable notebook ({type(error).__name__}: {error}) (scored 0)")
        return out
    if version != 4:
        out.notes.append(f"{path.name} was nbformat {version}; converted to nbformat 4 before grading")
    out.notebook = notebook
    return out


def sanitize(path: Path, name: str, root: Path, assignment: str, student: str, db_url: str,
             config: Config) -> Sanitized:
    out = read_notebook(path, name)
    if out.notebook is None:
        return out
    before = _grade_ids(out.notebook)
    resources = {"nbgrader": {"db_url": db_url, "assignment": assignment, "notebook": name, "student": student}}
    notebook = out.notebook
    try:
        for preprocessor in SANITIZERS:
            notebook, resources = preprocessor(config=config).preprocess(notebook, resources)
            if preprocessor is DeduplicateIds:  # it empties the copies' metadata; drop the copies
                notebook.cells = [c for c in notebook.cells if c.metadata.get("nbgrader", None) != {}]
    except Exception as error:  # noqa: BLE001
        out.notebook = None
        out.problems.append(f"{path.name} could not be checked against the source ({type(error).__name__}: "
                            f"{error}) (scored 0)")
        return out
    notebook = nbformat.from_dict(notebook)  # cells added back by OverwriteCells are plain dicts
    after = _grade_ids(notebook)
    restored = sorted(set(after) - set(before))
    if restored:
        out.notes.append(f"restored deleted or retyped cells from the source: {', '.join(restored)}")
    duplicated = sorted({g for g in before if before.count(g) > 1})
    if duplicated:
        out.notes.append(f"removed duplicated cells: {', '.join(duplicated)}")
    out.notebook = notebook
    return out


def _grade_ids(notebook) -> list[str]:
    return [c.metadata.nbgrader.get("grade_id") for c in notebook.cells
            if "nbgrader" in c.metadata and (utils.is_grade(c) or utils.is_locked(c))
            and c.metadata.nbgrader.get("grade_id")]


def cell_kind(cell) -> str:
    """How the executor treats a code cell: 'test' (autograder test), 'locked' (instructor
    code), or 'student' (a solution cell or any cell the student added)."""
    if utils.is_grade(cell) and not utils.is_solution(cell):
        return "test"
    if utils.is_locked(cell) and not utils.is_solution(cell):
        return "locked"
    return "student"
