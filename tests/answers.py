"""Released homework notebooks with answers pasted in, as a student would hand them in
(test_semester_exchange, test_browser)."""

from pathlib import Path

import nbformat

SOLUTION_MARKERS = ("### BEGIN SOLUTION", "### END SOLUTION")


def _answers(notebook) -> dict[str, str]:
    """grade_id -> source of each answer cell, nbgrader's solution markers removed."""
    out = {}
    for cell in notebook.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution"):
            lines = [ln for ln in cell.source.splitlines() if ln.strip() not in SOLUTION_MARKERS]
            out[meta["grade_id"]] = "\n".join(lines)
    return out


def answered(released: Path, donor: Path):
    """The released notebook with the donor's answer cells pasted into its answer cells
    (matched by nbgrader grade_id; a donor may be a solution or a student's notebook)."""
    notebook = nbformat.read(released, as_version=4)
    answers = _answers(nbformat.read(donor, as_version=4))
    for cell in notebook.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution") and meta.get("grade_id") in answers:
            cell.source = answers[meta["grade_id"]]
    return notebook


def graded_test_cells(notebook) -> list[int]:
    """Indices of the autograded test cells (graded, not an answer)."""
    return [i for i, cell in enumerate(notebook.cells)
            if cell.metadata.get("nbgrader", {}).get("grade") and not cell.metadata.get("nbgrader", {}).get("solution")]


def hidden_test_lines(solution: Path) -> list[str]:
    """The lines between BEGIN and END HIDDEN TESTS in the instructor's source notebook."""
    lines, inside = [], False
    for cell in nbformat.read(solution, as_version=4).cells:
        for line in cell.source.splitlines():
            if "BEGIN HIDDEN TESTS" in line:
                inside = True
            elif "END HIDDEN TESTS" in line:
                inside = False
            elif inside and line.strip():
                lines.append(line.strip())
    return lines
