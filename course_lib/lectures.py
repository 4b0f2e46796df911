"""Build the lecture notebooks into HTML, and check that notebooks follow the conventions.

* `execute_notebook(path, fast)` runs a copy of one notebook top to bottom with nbclient
  (the file on disk is never changed) and returns the executed copy and its run time.
  `fast=True` sets `COURSE_FAST=1` in the kernel's environment: notebooks read it to
  shrink epochs and data, never to take another code path.
* `build_lectures(notebooks_dir, out_dir)` executes every `*.ipynb` in a folder, writes
  `out_dir/<name>.html` (nbconvert's `HTMLExporter`, without the scripts its template
  loads from a CDN, so that pages work offline) and `out_dir/index.html`, which
  links each page with the notebook's first heading, its first line of description and
  its run time. A failing notebook still gets its page (with the traceback where it
  stopped); `LectureBuildError` then names every notebook that failed and the cell.
* `notebook_problems(path)` lists what breaks the conventions: outputs committed, invalid
  nbformat, a kernelspec that is not Python 3, a function longer than
  `MAX_FUNCTION_LINES` lines defined in a notebook (code belongs in `course_lib`).
  `strip_outputs(path)` removes outputs and execution counts in place.
"""

from __future__ import annotations

import ast
import html
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import jinja2
import nbformat

from course_lib.kernels import DEFAULT_CELL_TIMEOUT, KERNEL_NAME, kernel_config, kernel_env

#: Functions defined in a notebook may be at most this long (lines of the `def`, decorators excluded).
MAX_FUNCTION_LINES = 10
_ANSI = re.compile(r"\x1b\[[0-9;]*m")  # colour codes in IPython tracebacks
# Lecture pages work offline: nbconvert's lab template without the scripts it loads from a
# CDN (RequireJS, for widgets; MathJax; Mermaid). The lectures have neither widgets nor
# LaTeX nor Mermaid diagrams; figures are embedded as data.
_OFFLINE_TEMPLATE = "offline.html.j2"
_OFFLINE = jinja2.DictLoader({_OFFLINE_TEMPLATE: (
    "{%- extends 'lab/index.html.j2' -%}\n"
    "{%- block html_head_js_requirejs -%}{%- endblock -%}\n"
    "{%- block html_head_js_mathjax -%}{%- endblock -%}\n"
    "{%- block html_head_js_mermaidjs -%}{%- endblock -%}\n")})


class LectureBuildError(RuntimeError):
    """One or more notebooks failed to execute; `results` holds every notebook's outcome."""

    def __init__(self, message: str, results: list["LectureResult"]):
        super().__init__(message)
        self.results = results


@dataclass
class LectureResult:
    """The outcome of executing one notebook.

    name: the file stem (e.g. "01_cnn_anatomy"); seconds: wall time of the execution;
    html: the page written (None if none was written); title and description: the
    notebook's first heading and the first line of text after it; errors: what went wrong
    (empty when the notebook ran cleanly); failed_cell: the index in `nb.cells` of the
    cell that failed, or None; figures: how many images its outputs show.
    """

    name: str
    seconds: float
    html: Path | None
    title: str = ""
    description: str = ""
    errors: list[str] = field(default_factory=list)
    failed_cell: int | None = None
    figures: int = 0  # image outputs in the executed notebook

    @property
    def ok(self) -> bool:
        return not self.errors


# ---------------------------------------------------------------------------------------
# Executing
# ---------------------------------------------------------------------------------------


def execute_notebook(path, fast: bool = False, timeout: int = DEFAULT_CELL_TIMEOUT):
    """Run a copy of the notebook at `path` in a fresh Python 3 kernel, in its own folder.

    fast: set COURSE_FAST=1 for the kernel. timeout: seconds allowed per cell.
    Returns (executed notebook, seconds, error message or None, index of the failed cell
    or None). The notebook on disk is not modified.
    """
    from nbclient import NotebookClient

    path = Path(path)
    nb = nbformat.read(path, as_version=4)  # an in-memory copy: the file stays as it is
    client = NotebookClient(nb, timeout=timeout, kernel_name=KERNEL_NAME, config=kernel_config(),
                            resources={"metadata": {"path": str(path.parent.resolve())}})
    start = time.perf_counter()
    error = None
    try:
        client.execute(env=kernel_env(fast))
    except Exception as exc:  # noqa: BLE001 - CellExecutionError, CellTimeoutError, DeadKernelError, ...
        error = _ANSI.sub("", f"{type(exc).__name__}: {exc}")
    seconds = time.perf_counter() - start
    failed = _failed_cell(nb) if error else None
    return nb, seconds, error, failed



def _failed_cell(nb) -> int | None:
    """Index of the first cell with an error output, else of the last cell that started."""
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and any(o.get("output_type") == "error" for o in cell.get("outputs", [])):
            return index
    started = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and c.get("execution_count")]
    return started[-1] if started else None


def _cell_excerpt(nb, index: int | None) -> str:
    if index is None:
        return "before any cell ran (the kernel did not start?)"
    first_line = next((line for line in nb.cells[index].source.splitlines() if line.strip()), "")
    return f"cell {index} ({first_line.strip()[:60]!r})"


def _error_summary(nb, index: int | None, message: str) -> str:
    """'ZeroDivisionError: division by zero' from the failed cell, else the message's last line."""
    if index is not None:
        for output in nb.cells[index].get("outputs", []):
            if output.get("output_type") == "error":
                return f"{output.get('ename', 'Error')}: {output.get('evalue', '')}"
    lines = [line for line in message.strip().splitlines() if line.strip()]
    return lines[-1] if lines else message


# ---------------------------------------------------------------------------------------
# Building HTML
# ---------------------------------------------------------------------------------------


def describe(nb) -> tuple[str, str]:
    """(first heading, the paragraph of text after it) of the notebook's first markdown cell
    with a heading; the paragraph's lines are joined into one."""
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        lines = [line.strip() for line in cell.source.splitlines()]
        headings = [i for i, line in enumerate(lines) if line.startswith("#")]
        if not headings:
            continue
        title = lines[headings[0]].lstrip("#").strip()
        return title, _without_list_lead_in(" ".join(_first_paragraph(lines[headings[0] + 1:])))
    return "", ""


def _without_list_lead_in(text: str) -> str:
    """The paragraph without a last sentence that introduces a list ("It teaches:"), which the
    index does not show."""
    head, _, last = text.rpartition(". ")
    return f"{head}." if head and last.endswith(":") else text


_NOT_PROSE = re.compile(r"#|[-*+] |\d+\. ")  # a heading or a list item ends a paragraph


def _first_paragraph(lines: list[str]) -> list[str]:
    """The first run of non-blank lines of prose (no heading, no list item)."""
    paragraph: list[str] = []
    for line in lines:
        if line and not _NOT_PROSE.match(line):
            paragraph.append(line)
        elif paragraph:
            break
    return paragraph


def count_figures(nb) -> int:
    """Image outputs (PNG, JPEG, SVG) in an executed notebook."""
    images = ("image/png", "image/jpeg", "image/svg+xml")
    return sum(any(m in output.get("data", {}) for m in images)
               for cell in nb.cells if cell.cell_type == "code" for output in cell.get("outputs", []))


def build_lectures(notebooks_dir, out_dir, fast: bool = False, timeout: int = DEFAULT_CELL_TIMEOUT,
                   check: bool = True, progress=None) -> list[LectureResult]:
    """Execute every notebook in `notebooks_dir` (sorted by name) and write HTML to `out_dir`.

    Writes `out_dir/<name>.html` for each notebook (also for one that fails: the page
    shows the cells up to the error), the executed notebook beside it (`out_dir/<name>.ipynb`,
    to open in Jupyter with every output), and `out_dir/index.html` with one line per
    notebook: a link, its first heading and description, and its run time (or where it failed).
    fast: run with COURSE_FAST=1. timeout: seconds per cell. progress: optional callable
    given each `LectureResult` as it finishes.
    Returns the results in order. With `check` (the default) raises `LectureBuildError`
    naming each failed notebook and cell after everything was built.
    """
    from nbconvert import HTMLExporter

    notebooks_dir, out_dir = Path(notebooks_dir), Path(out_dir)
    paths = sorted(notebooks_dir.glob("*.ipynb"))
    if not paths:
        raise FileNotFoundError(f"no notebooks (*.ipynb) in {notebooks_dir}; check the folder")
    out_dir.mkdir(parents=True, exist_ok=True)
    exporter = HTMLExporter(extra_loaders=[_OFFLINE], template_file=_OFFLINE_TEMPLATE)
    results = []
    for path in paths:
        nb, seconds, error, failed = execute_notebook(path, fast=fast, timeout=timeout)
        title, description = describe(nb)
        page = out_dir / f"{path.stem}.html"
        body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": title or path.stem}})
        page.write_text(body, encoding="utf-8")
        nbformat.write(nb, page.with_suffix(".ipynb"))
        where = f"{path.name} failed at {_cell_excerpt(nb, failed)}"
        errors = [f"{where}: {_error_summary(nb, failed, error)}"] if error else []
        result = LectureResult(path.stem, seconds, page, title, description, errors, failed, count_figures(nb))
        results.append(result)
        if progress is not None:
            progress(result)
    (out_dir / "index.html").write_text(index_html(results, fast), encoding="utf-8")
    failures = [r for r in results if not r.ok]
    if check and failures:
        lines = "\n".join(f"  - {message}" for r in failures for message in r.errors)
        raise LectureBuildError(f"{len(failures)} of {len(results)} notebooks failed "
                                f"(pages and index written to {out_dir}):\n{lines}", results)
    return results


def index_html(results: list[LectureResult], fast: bool = False) -> str:
    """The index page: one list item per notebook with a link, description and run time."""
    items = []
    for r in results:
        label = html.escape(r.title or r.name)
        link = f'<a href="{html.escape(r.html.name)}">{label}</a>' if r.html else label
        status = f"{r.seconds:.0f} s" if r.ok else f"FAILED at cell {r.failed_cell} after {r.seconds:.0f} s"
        text = f" &mdash; {html.escape(r.description)}" if r.description else ""
        notebook = f' <a href="{html.escape(r.html.stem)}.ipynb">notebook</a>' if r.html else ""
        items.append(f"  <li>{link}{text} <small>({status}){notebook}</small></li>")
    mode = " (fast mode: COURSE_FAST=1, reduced epochs and data)" if fast else ""
    return ("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Lectures</title></head>\n"
            f"<body>\n<h1>Lectures</h1>\n<p>Each notebook executed top to bottom{mode}.</p>\n<ul>\n"
            + "\n".join(items) + "\n</ul>\n</body></html>\n")


# ---------------------------------------------------------------------------------------
# Conventions
# ---------------------------------------------------------------------------------------


def strip_outputs(path) -> bool:
    """Remove every output and execution count of the notebook at `path`, in place.

    Returns True if the file changed. Cell metadata of the execution (timings) goes too.
    """
    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    changed = False
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        if cell.get("outputs") or cell.get("execution_count") is not None or "execution" in cell.metadata:
            changed = True
        cell.outputs, cell.execution_count = [], None
        cell.metadata.pop("execution", None)
    if changed:
        nbformat.write(nb, path)
    return changed


def notebook_problems(path) -> list[str]:
    """What in the notebook at `path` breaks the conventions; an empty list when nothing does.

    Checks: valid nbformat (v4 schema); a Python 3 kernelspec (`metadata.kernelspec.name`
    "python3", language python); no outputs or execution counts committed; every function
    defined in a code cell at most `MAX_FUNCTION_LINES` lines long; every code cell parses.
    """
    path = Path(path)
    try:
        nb = nbformat.read(path, as_version=nbformat.NO_CONVERT)
    except Exception as exc:  # noqa: BLE001 - unreadable JSON, unknown version: nbformat raises many types
        return [f"{path.name}: not a readable notebook ({type(exc).__name__}: {exc})"]
    problems = []
    try:
        nbformat.validate(nb)
    except nbformat.ValidationError as exc:
        problems.append(f"{path.name}: invalid nbformat: {str(exc).splitlines()[0]}")
    spec = nb.get("metadata", {}).get("kernelspec", {})
    if spec.get("name") != KERNEL_NAME or spec.get("language", "python") != "python":
        problems.append(f"{path.name}: kernelspec is {dict(spec) or 'missing'}, expected name 'python3', "
                        "language 'python' (select the Python 3 kernel and save)")
    for index, cell in enumerate(nb.get("cells", [])):
        if cell.get("cell_type") != "code":
            continue
        if cell.get("outputs") or cell.get("execution_count") is not None:
            problems.append(f"{path.name}: cell {index} has outputs; commit without them "
                            "(course_lib.lectures.strip_outputs or 'Clear All Outputs')")
        problems += [f"{path.name}: cell {index}: {p}" for p in _function_problems(_source(cell))]
    return problems


def _source(cell) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def _python_of(source: str) -> str:
    """The cell as plain Python: IPython's magics (%, %%, !) become function calls."""
    try:
        from IPython.core.inputtransformer2 import TransformerManager
    except ImportError:  # no IPython: drop magic lines, keep the line numbers
        return "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines())
    return TransformerManager().transform_cell(source)


def _function_problems(source: str) -> list[str]:
    try:
        tree = ast.parse(_python_of(source))
    except SyntaxError as exc:
        return [f"does not parse as Python ({exc.msg}, line {exc.lineno})"]
    problems = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            length = node.end_lineno - node.lineno + 1
            if length > MAX_FUNCTION_LINES:
                problems.append(f"function {node.name!r} is {length} lines long (at most {MAX_FUNCTION_LINES}); "
                                "move it into course_lib and import it")
    return problems
