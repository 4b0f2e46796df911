"""The lecture notebooks: committed clean, runnable top to bottom, and built into HTML.

* Every notebook in notebooks/ (also those added later) is committed without outputs, is
  valid nbformat with a Python 3 kernelspec, and defines no function longer than
  `MAX_FUNCTION_LINES` lines (code belongs in course_lib).
* Running them: tests/test_make_course.py (the real `make course`, in fast mode).
* `build_lectures`, `strip_outputs` and `notebook_problems` on tiny notebooks in tmp_path.
"""

import json
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from course_lib.lectures import (
    MAX_FUNCTION_LINES,
    LectureBuildError,
    build_lectures,
    describe,
    notebook_problems,
    strip_outputs,
)

NOTEBOOKS_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("*.ipynb"))



def make_notebook(*cells, kernel="python3"):
    nb = new_notebook()
    nb.metadata["kernelspec"] = {"name": kernel, "display_name": "Python 3", "language": "python"}
    nb.cells = list(cells)
    return nb


def write(nb, path):
    nbformat.write(nb, path)
    return path


def text_of(nb) -> str:
    """Everything the notebook printed or displayed as text."""
    parts = []
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            parts.append(output.get("text", ""))
            parts.append(output.get("data", {}).get("text/plain", ""))
    return "\n".join(parts)


def count_figures(nb) -> int:
    return sum("image/png" in o.get("data", {}) for c in nb.cells for o in c.get("outputs", []))


# --------------------------------------------------------------------------- conventions


def test_the_lecture_notebooks_exist():
    names = {path.stem for path in NOTEBOOKS}
    assert {"01_cnn_anatomy", "04_training_tricks"} <= names, f"notebooks/ holds {sorted(names)}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_committed_clean(path):
    problems = notebook_problems(path)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_opens_with_a_heading_and_reads_course_fast_only_from_the_environment(path):
    nb = nbformat.read(path, as_version=4)
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.lstrip().startswith("# "), (
        f"{path.name} should open with a markdown cell '# Title' saying what it teaches")
    source = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    if "COURSE_FAST" in source:
        assert "os.environ" in source, f"{path.name} mentions COURSE_FAST but does not read it from os.environ"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_every_predict_then_run_question_has_a_collapsed_answer_after_it(path):
    cells = nbformat.read(path, as_version=4).cells
    questions = [i for i, c in enumerate(cells) if c.cell_type == "markdown" and "**Predict, then run.**" in c.source]
    assert questions, f"{path.name} asks the class no 'predict, then run' question"
    for i in questions:
        answer = cells[i + 1] if i + 1 < len(cells) else None
        hidden = answer is not None and (answer.metadata.get("jupyter", {}).get("source_hidden")
                                         or answer.metadata.get("jupyter", {}).get("outputs_hidden"))
        assert hidden, f"{path.name}: the question in cell {i} needs a collapsed answer cell right after it"
        assert answer.source.strip(), f"{path.name}: the answer after cell {i} is empty"


def test_notebook_problems_finds_outputs_kernels_and_long_functions(tmp_path):
    long_body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES))  # def line + 10 = 11 lines
    executed = new_code_cell("print(1)", execution_count=1, outputs=[new_output("stream", name="stdout", text="1\n")])
    nb = make_notebook(new_markdown_cell("# T"), executed, new_code_cell(f"def long():\n{long_body}\n"),
                       new_code_cell("%matplotlib inline\ndef short():\n    return 1\n"), kernel="julia-1.9")
    problems = notebook_problems(write(nb, tmp_path / "bad.ipynb"))
    text = "\n".join(problems)
    assert "cell 1 has outputs" in text
    assert "'long' is 11 lines" in text
    assert "kernelspec" in text
    assert "short" not in text  # magics are understood; a short function is fine
    assert len(problems) == 3, problems


def test_a_function_of_exactly_the_limit_passes(tmp_path):
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES - 1))
    nb = make_notebook(new_code_cell(f"def ok():\n{body}\n"))
    assert notebook_problems(write(nb, tmp_path / "ok.ipynb")) == []


def test_notebook_problems_reports_invalid_files(tmp_path):
    broken = tmp_path / "broken.ipynb"
    broken.write_text("{not json")
    assert "not a readable notebook" in notebook_problems(broken)[0]
    nb = make_notebook(new_code_cell("x = 1"))
    nb.cells[0]["cell_type"] = "codex"  # not in the schema
    path = tmp_path / "invalid.ipynb"
    path.write_text(json.dumps(nb))
    assert any("invalid nbformat" in p for p in notebook_problems(path))


def test_strip_outputs_removes_outputs_and_counts_in_place(tmp_path):
    cell = new_code_cell("print(1)", execution_count=3, outputs=[new_output("stream", name="stdout", text="1\n")])
    cell.metadata["execution"] = {"iopub.execute_input": "2024-01-01T00:00:00Z"}
    path = write(make_notebook(new_markdown_cell("# T"), cell), tmp_path / "nb.ipynb")
    assert notebook_problems(path)
    assert strip_outputs(path) is True
    assert notebook_problems(path) == []
    stripped = nbformat.read(path, as_version=4).cells[1]
    assert stripped.outputs == [] and stripped.execution_count is None and "execution" not in stripped.metadata
    assert stripped.source == "print(1)"
    assert strip_outputs(path) is False  # nothing left to strip


# --------------------------------------------------------------------------- building


def test_build_lectures_writes_pages_and_an_index(tmp_path):
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    nb = make_notebook(
        new_markdown_cell("# Tiny lecture\n\nAdds two numbers and draws a line."),
        new_code_cell("import os\nprint('fast' if os.environ.get('COURSE_FAST') == '1' else 'full', 40 + 2)"),
        new_code_cell("import matplotlib.pyplot as plt\nplt.plot([0, 1], [0, 1])\nplt.show()"),
    )
    source = write(nb, notebooks / "00_tiny.ipynb")
    before = source.read_text()

    results = build_lectures(notebooks, tmp_path / "site", fast=True, timeout=120)

    assert source.read_text() == before, "the source notebook must stay without outputs"
    (result,) = results
    assert result.ok and result.name == "00_tiny" and result.seconds > 0
    assert result.title == "Tiny lecture" and result.description == "Adds two numbers and draws a line."
    page = result.html.read_text()
    assert result.html == tmp_path / "site" / "00_tiny.html"
    assert "fast 42" in page and "data:image/png;base64" in page
    executed = nbformat.read(tmp_path / "site" / "00_tiny.ipynb", as_version=4)
    assert "fast 42" in text_of(executed) and count_figures(executed) == 1
    index = (tmp_path / "site" / "index.html").read_text()
    assert 'href="00_tiny.html"' in index and "Tiny lecture" in index and "Adds two numbers" in index
    assert 'href="00_tiny.ipynb"' in index
    assert f"{result.seconds:.0f} s" in index


def test_build_lectures_names_the_failing_notebook_and_cell(tmp_path):
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    write(make_notebook(new_markdown_cell("# Good"), new_code_cell("x = 1")), notebooks / "a_good.ipynb")
    write(make_notebook(new_markdown_cell("# Bad"), new_code_cell("y = 2"), new_code_cell("1 / 0"),
                        new_code_cell("print('never')")), notebooks / "b_bad.ipynb")

    with pytest.raises(LectureBuildError) as caught:
        build_lectures(notebooks, tmp_path / "site", fast=True, timeout=120)

    message = str(caught.value)
    assert "1 of 2 notebooks failed" in message
    assert "b_bad.ipynb failed at cell 2 ('1 / 0')" in message and "ZeroDivisionError" in message
    good, bad = caught.value.results
    assert good.ok and not bad.ok and bad.failed_cell == 2
    assert bad.html.exists() and "ZeroDivisionError" in bad.html.read_text()
    assert "FAILED at cell 2" in (tmp_path / "site" / "index.html").read_text()


def test_build_lectures_without_check_returns_the_failures(tmp_path):
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    write(make_notebook(new_code_cell("raise ValueError('no data')")), notebooks / "c.ipynb")
    (result,) = build_lectures(notebooks, tmp_path / "site", fast=True, timeout=120, check=False)
    assert not result.ok and result.failed_cell == 0 and "ValueError: no data" in result.errors[0]


def test_build_lectures_on_an_empty_folder_says_so(tmp_path):
    with pytest.raises(FileNotFoundError, match="no notebooks"):
        build_lectures(tmp_path, tmp_path / "site")


def test_describe_takes_the_whole_first_paragraph_without_its_list_lead_in():
    nb = make_notebook(new_code_cell("x = 1"), new_markdown_cell(
        "# Transfer learning\n\nFew people train from scratch: a trained network\nalready computes useful features. "
        "It teaches:\n\n- probes\n\nMore text."))
    assert describe(nb) == ("Transfer learning", "Few people train from scratch: a trained network already computes "
                                                 "useful features.")
    assert describe(make_notebook(new_markdown_cell("# Title\n\nOne line:\n- a"))) == ("Title", "One line:")
