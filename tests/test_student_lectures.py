"""The student edition's lectures (`course_lib.autograde.student_lectures`).

* fast: a synthetic lecture on a toy student package built by `write_student_package`
  (so its stub raises the real `HomeworkAnswer`): the cell that calls the left-out
  function, the cells that need its names and the cell that prints its source are shown,
  not run; an independent cell runs and sees the names as they were before the converted
  cell failed halfway; a NameError for any other name stops the release.
* slow: the four lectures on the real student edition (COURSE_FAST=1): each converted
  cell names a left-out function and its question, and the released notebook runs top to
  bottom on the student edition.
"""

import os
import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from course_lib.autograde.edition import write_student_package
from course_lib.autograde.release import assignment_notebooks
from course_lib.autograde.student_lectures import (
    Converted,
    LectureReleaseError,
    assigned_names,
    release_lecture,
    release_lectures,
    shown_cell,
    student_kernel_env,
)
from course_lib.kernels import KERNEL_NAME, kernel_config, kernel_env
from course_lib.lectures import notebook_problems

ROOT = Path(__file__).resolve().parents[1]
TOY = '''"""A toy library with one homework answer."""
import math


def double(values):
    """Twice each value."""
    # BEGIN ANSWER hw1.Q4
    return [2 * value for value in values]
    # END ANSWER


def total(values):
    return math.fsum(values)
'''


@pytest.fixture
def toy_project(tmp_path) -> Path:
    """A student project holding `toy`, whose `double` is left out (hw1 Q4)."""
    full = tmp_path / "full" / "toy"
    full.mkdir(parents=True)
    (full / "__init__.py").write_text(TOY)
    project = tmp_path / "student"
    stripped = write_student_package(full, project / "toy", {"hw1": "hw1_toy.ipynb"})
    assert [s.key for s in stripped] == ["toy.double"]
    return project


def _lecture(folder: Path, *cells: str) -> Path:
    """A notebook of code cells (a cell starting with '#' is markdown) in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                           "language": "python"}})
    nb.cells = [nbformat.v4.new_markdown_cell(c) if c.startswith("#") else nbformat.v4.new_code_cell(c) for c in cells]
    path = folder / "toy_lecture.ipynb"
    nbformat.write(nb, path)
    return path


def test_cells_that_need_a_left_out_function_are_shown_not_run(toy_project, tmp_path):
    source = _lecture(tmp_path / "lectures",
                      "import inspect\n\nfrom toy import double, total\nkept = 0",
                      "kept = 1\nfresh = 2\ndoubled = double([1, 2])",   # fails halfway: HomeworkAnswer
                      "print(sum(doubled))",                              # needs its result
                      "print(fresh)",                                     # needs a name it assigned before failing
                      "assert kept == 0, kept\nprint(total([1, 2]))",     # independent: sees kept as it was
                      "print(inspect.getsource(double))",                 # would print the stub
                      "# The end")
    lines = []
    [released] = release_lectures(source.parent, toy_project, tmp_path / "out", say=lines.append)

    assert [(c.index, c.function, c.homework, c.question, c.through) for c in released.converted] == [
        (1, "double", "hw1", "Q4", ""), (2, "double", "hw1", "Q4", "doubled"),
        (3, "double", "hw1", "Q4", "fresh"), (5, "double", "hw1", "Q4", "")]
    assert lines == [f"lectures: toy_lecture: 4 cells shown, not run: 1 (hw1 Q4), 2 (hw1 Q4), 3 (hw1 Q4), "
                     f"5 (hw1 Q4) ({released.seconds:.0f} s)"]
    original = nbformat.read(source, as_version=4)
    nb = nbformat.read(released.path, as_version=4)
    assert released.path == tmp_path / "out" / "toy_lecture.ipynb"
    assert [c.cell_type for c in nb.cells] == ["code", "markdown", "markdown", "markdown", "code", "markdown",
                                               "markdown"]
    assert nb.cells[1].source == ("**Shown after hw1 is due:** this cell uses `double`, your homework hw1 Q4.\n\n"
                                  f"```python\n{original.cells[1].source}\n```")
    assert nb.cells[2].source.startswith("**Shown after hw1 is due:** this cell uses `double`, your homework hw1 Q4 "
                                         "(it needs `doubled` from a cell above that is shown, not run).\n\n")
    assert [c.id for c in nb.cells] == [c.id for c in original.cells]
    assert notebook_problems(released.path) == []    # valid, no outputs or execution counts


def test_another_error_stops_the_release_naming_notebook_and_cell(toy_project, tmp_path):
    source = _lecture(tmp_path / "lectures", "from toy import double", "doubled = double([1])",
                      "print(undefined_name)")
    with pytest.raises(LectureReleaseError, match=r"toy_lecture.ipynb, cell 2 \('print\(undefined_name\)'\) fails "
                                                  r"on the student edition with NameError"):
        release_lectures(source.parent, toy_project, tmp_path / "out")


@pytest.mark.parametrize("fast", [True, False])
def test_the_kernel_environment_is_the_lecture_pages_with_the_student_project_first(fast, monkeypatch, tmp_path):
    monkeypatch.setenv("PYTHONPATH", "/elsewhere")
    env = student_kernel_env(tmp_path / "student", fast)
    assert env.pop("PYTHONPATH") == os.pathsep.join([str((tmp_path / "student").resolve()), "/elsewhere"])
    pages = kernel_env(fast)
    assert pages.pop("PYTHONPATH") == "/elsewhere"
    assert env == pages


def test_shown_cell_fences_code_that_contains_a_fence():
    cell = nbformat.v4.new_code_cell('print("""```python\nx\n```""")')
    shown = shown_cell(cell, Converted(0, "im2col", "hw1", "Q4"))
    assert shown.source.endswith(f"\n\n````python\n{cell.source}\n````")


def test_assigned_names():
    source = ("%matplotlib inline\nimport numpy.linalg as la\nimport os.path\nfrom math import pi\n"
              "for i in range(3):\n    total = i\ndef f(a):\n    return a\nclass C:\n    pass\n"
              "x, (y, z) = 1, (2, 3)\nx += 1\nprint(undefined)")
    assert assigned_names(source) == {"la", "os", "pi", "i", "total", "f", "C", "x", "y", "z"}


# ---------------------------------------------------------------------------------------
# The four lectures on the real student edition
# ---------------------------------------------------------------------------------------

LECTURES = [pytest.param(path, id=path.stem) for path in sorted((ROOT / "notebooks").glob("*.ipynb"))]


@pytest.fixture(scope="module")
def student_edition(tmp_path_factory):
    """The student project as `course release` writes it, without the stored results
    (lectures do not use them): (project folder, functions left out)."""
    project = tmp_path_factory.mktemp("student")
    stripped = write_student_package(ROOT / "course_lib", project / "course_lib", assignment_notebooks(ROOT))
    return project, stripped


@pytest.mark.slow
@pytest.mark.parametrize("lecture", LECTURES)
def test_released_lecture_runs_on_the_student_edition(lecture, student_edition, tmp_path):
    project, stripped = student_edition
    start = time.perf_counter()
    released = release_lecture(lecture, project, tmp_path, fast=True)
    left_out = {(s.key, s.qid) for s in stripped}
    assert released.converted, "every lecture uses a homework answer: expected some cells shown, not run"
    for cell in released.converted:
        qid = f"{cell.homework}.{cell.question}"
        assert any(key.endswith(f".{cell.function}") and q == qid for key, q in left_out), (cell, "not left out")
    nb = nbformat.read(released.path, as_version=4)
    shown = [i for i, cell in enumerate(nb.cells) if cell.cell_type == "markdown"
             and cell.source.startswith("**Shown after hw")]
    assert shown == [cell.index for cell in released.converted]
    assert notebook_problems(released.path) == []
    rerun = time.perf_counter()
    NotebookClient(nb, timeout=600, kernel_name=KERNEL_NAME, config=kernel_config(),
                   resources={"metadata": {"path": str(lecture.parent)}}
                   ).execute(env=student_kernel_env(project, fast=True))   # raises CellExecutionError on any error
    print(f"{lecture.stem}: {len(released.converted)} cells shown, not run; release {released.seconds:.0f} s, "
          f"released notebook {time.perf_counter() - rerun:.0f} s, in all {time.perf_counter() - start:.0f} s")
