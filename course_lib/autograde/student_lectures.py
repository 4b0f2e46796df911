"""The lecture notebooks of the student edition: a cell that needs a left-out function is shown, not run.

In the student edition a lecture cell that needs a left-out function (one that answers a
graded homework question) becomes a markdown cell that says "Shown after hwN is due: this
cell uses <function>, your homework hwN Qk", followed by the cell's code in a fenced
python block. So does every later cell that needs what such a cell defined. The released
lecture runs top to bottom on the student edition.

`release_lectures` finds those cells by running each lecture, cell by cell, in a kernel
that imports the student edition (PYTHONPATH=<student project> first):

* a cell that raises `course_lib.replay.HomeworkAnswer` ("im2col is homework hw1 Q4: ...")
  is converted, naming that function;
* a cell whose output shows the student edition's stub of a left-out function (lecture 01
  prints `inspect.getsource(im2col)`) is converted, naming that function;
* a cell that raises NameError for a name that an already converted cell assigns (by
  reading the converted cells' code) is converted, naming the converted cell's function
  and the missing name. A NameError for any other name is a real failure: the precise rule
  keeps a typo in a lecture from being hidden behind a conversion;
* any other error stops the release (`LectureReleaseError`, naming the notebook and cell).

After a cell is converted the kernel's names are put back as they were before it ran: a
cell that failed halfway (it assigned `x` and `w`, then called `conv2d_forward`) leaves
neither its new names nor its rebindings behind. What the cell changed in place (a
tensor's values, a model's weights, the random generators' state) is not undone: a later
cell that depends on such a change rather than on a name could run differently in the
released notebook, so the tests run each released notebook again, top to bottom.
"""

from __future__ import annotations

import ast
import copy
import os
import re
import time
from dataclasses import dataclass, replace
from pathlib import Path

import nbformat

from course_lib.kernels import DEFAULT_CELL_TIMEOUT, kernel_config, kernel_env

#: "conv2d_forward is homework hw1 Q4: write it in ..." (course_lib.replay.homework_error).
HOMEWORK_ERROR = re.compile(r"(?P<function>[\w.]+) is homework (?P<homework>hw\d+) (?P<question>Q\d+)")
#: A left-out function's source in the student edition: "raise _replay.homework_error('im2col', 'hw1.Q4', ...".
STUB_SOURCE = re.compile(r"homework_error\(['\"](?P<function>[\w.]+)['\"],\s*['\"](?P<homework>hw\d+)\."
                         r"(?P<question>Q\d+)['\"]")
MISSING_NAME = re.compile(r"name '(?P<name>\w+)' is not defined")
# Run in the kernel before each cell, and after a cell that is converted (not stored in its history).
_SNAPSHOT = "get_ipython().course_names_before = dict(get_ipython().user_ns)"
_RESTORE = "(lambda shell: [shell.user_ns.clear(), shell.user_ns.update(shell.course_names_before)])(get_ipython());"


class LectureReleaseError(RuntimeError):
    """A lecture cell failed on the student edition for another reason than a left-out function."""


@dataclass(frozen=True)
class Converted:
    """A lecture cell shown, not run: `index` in the notebook's cells, the left-out
    `function` it needs and the question that function answers (`homework` "hw1",
    `question` "Q4"); `through`: the name it needs from a converted cell above, "" when it
    calls (or prints) the function itself."""

    index: int
    function: str
    homework: str
    question: str
    through: str = ""

    def note(self) -> str:
        """The sentence that replaces the cell's output."""
        needs = f" (it needs `{self.through}` from a cell above that is shown, not run)" if self.through else ""
        return (f"**Shown after {self.homework} is due:** this cell uses `{self.function}`, "
                f"your homework {self.homework} {self.question}{needs}.")


@dataclass
class ReleasedLecture:
    """One released lecture: its `name` (file stem), the notebook written (`path`), the
    `seconds` its release run took and the cells it shows instead of running."""

    name: str
    path: Path
    seconds: float
    converted: list[Converted]


def release_lectures(notebooks_dir: Path, student_project: Path, out_dir: Path, fast: bool = True,
                     say=print) -> list[ReleasedLecture]:
    """Write every lecture of `notebooks_dir` (sorted by name) to `out_dir`/<name>.ipynb,
    without outputs, with the cells that need a left-out function shown, not run.

    student_project: the folder holding the student edition's `course_lib/`. fast: run
    with COURSE_FAST=1. say: called with one line per lecture. Raises
    `LectureReleaseError` naming the notebook and cell of the first real failure.
    """
    paths = sorted(Path(notebooks_dir).glob("*.ipynb"))
    if not paths:
        raise FileNotFoundError(f"no lecture notebooks (*.ipynb) in {notebooks_dir}; check the folder")
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    released = []
    for path in paths:
        lecture = release_lecture(path, Path(student_project), Path(out_dir), fast)
        cells = ", ".join(f"{c.index} ({c.homework} {c.question})" for c in lecture.converted) or "none"
        say(f"lectures: {lecture.name}: {len(lecture.converted)} cells shown, not run: {cells} "
            f"({lecture.seconds:.0f} s)")
        released.append(lecture)
    return released


def release_lecture(path: Path, student_project: Path, out_dir: Path, fast: bool = True,
                    timeout: int = DEFAULT_CELL_TIMEOUT) -> ReleasedLecture:
    """Run the lecture at `path` on the student edition, convert its cells, and write it
    to `out_dir`/<name>.ipynb: the lecture as committed (without outputs) with the
    converted cells shown. timeout: seconds allowed per cell."""
    from nbclient import NotebookClient

    lecture = nbformat.read(path, as_version=4)
    run = copy.deepcopy(lecture)  # the kernel's outputs go here, not into the released notebook
    client = NotebookClient(run, timeout=timeout, config=kernel_config(),  # the notebook's kernelspec (python3)
                            allow_errors=True,  # errors come back as outputs; the kernel keeps its queue
                            resources={"metadata": {"path": str(path.parent.resolve())}})
    start = time.perf_counter()
    with client.setup_kernel(env=student_kernel_env(student_project, fast)):
        converted = _run_and_convert(client, run, path.name)
    seconds = time.perf_counter() - start
    for conversion in converted:
        lecture.cells[conversion.index] = shown_cell(lecture.cells[conversion.index], conversion)
    out = out_dir / path.name
    nbformat.write(lecture, out)
    return ReleasedLecture(path.stem, out, seconds, converted)


def student_kernel_env(student_project: Path, fast: bool) -> dict[str, str]:
    """The lecture pages' kernel environment (`kernel_env`) with the student project first on
    PYTHONPATH, so that `import course_lib` finds the student edition."""
    env = kernel_env(fast)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(student_project).resolve()), env.get("PYTHONPATH")]))
    return env


def _run_and_convert(client, nb, notebook: str) -> list[Converted]:
    """Run the code cells of `nb` in order; returns the cells to show, not run."""
    converted: list[Converted] = []
    needs: dict[str, Converted] = {}  # a name a converted cell assigns -> that cell
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        _run_quietly(client, _SNAPSHOT, index)
        error = _attempt(client, cell, index, notebook)
        conversion = _conversion(index, cell, error, needs)
        if conversion is None:
            if error is not None:
                raise LectureReleaseError(_failure(notebook, index, cell, error.ename, error.evalue))
            continue
        _run_quietly(client, _RESTORE, index)
        needs.update(dict.fromkeys(assigned_names(cell.source), conversion))
        converted.append(conversion)
    return converted


def _attempt(client, cell, index: int, notebook: str):
    """Run one cell; its error output (a dict with "ename" and "evalue"), else None.
    A timeout or a dead kernel stops the release."""
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    try:
        client.execute_cell(cell, index)
    except (CellTimeoutError, DeadKernelError) as error:
        raise LectureReleaseError(_failure(notebook, index, cell, type(error).__name__, str(error))) from error
    return next((output for output in cell.outputs if output.output_type == "error"), None)


def _run_quietly(client, code: str, index: int) -> None:
    """Run bookkeeping `code` in the kernel, outside its history."""
    client.execute_cell(nbformat.v4.new_code_cell(code), index, store_history=False)


def _conversion(index: int, cell, error, needs: dict[str, Converted]) -> Converted | None:
    """Why the cell at `index` is shown, not run; None when it is not (it ran, or failed for another reason)."""
    if error is None:
        shown = STUB_SOURCE.search(_output_text(cell))
        return Converted(index, **shown.groupdict()) if shown else None
    answer = HOMEWORK_ERROR.search(error.evalue)
    if answer:
        return Converted(index, **answer.groupdict())
    missing = MISSING_NAME.search(error.evalue) if error.ename == "NameError" else None
    if missing and missing["name"] in needs:
        return replace(needs[missing["name"]], index=index, through=missing["name"])
    return None


def _output_text(cell) -> str:
    """Everything the cell printed or displayed as text."""
    parts = [output.get("text", "") for output in cell.outputs]
    parts += [output.get("data", {}).get("text/plain", "") for output in cell.outputs]
    return "".join("".join(part) if isinstance(part, list) else part for part in parts)


def _failure(notebook: str, index: int, cell, ename: str, evalue: str) -> str:
    first_line = next((line.strip() for line in cell.source.splitlines() if line.strip()), "")
    return (f"{notebook}, cell {index} ({first_line[:60]!r}) fails on the student edition with "
            f"{ename}: {evalue}. That is not a left-out homework function: fix the lecture "
            "(or the student edition) so that the cell runs on it")


def shown_cell(cell, converted: Converted):
    """The markdown cell that shows a code cell: the note, then its code in a fenced python block."""
    fence = "`" * max(3, 1 + max((len(run) for run in re.findall(r"`+", cell.source)), default=0))
    source = f"{converted.note()}\n\n{fence}python\n{cell.source.rstrip()}\n{fence}"
    shown = nbformat.v4.new_markdown_cell(source)
    if "id" in cell:
        shown["id"] = cell["id"]
    return shown


def assigned_names(source: str) -> set[str]:
    """Names a cell's code assigns, imports, or defines (anywhere in it, IPython magics allowed)."""
    from IPython.core.inputtransformer2 import TransformerManager

    try:
        tree = ast.parse(TransformerManager().transform_cell(source))  # magics (%, !) become calls
    except SyntaxError:
        return set()
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            names.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.alias):
            names.add((node.asname or node.name).split(".")[0])
    return names
