"""The answer markers in course_lib (`# BEGIN ANSWER hwN.Qk` ... `# END ANSWER`): well formed,
naming real questions, each around whole statements of one function body, and covering every
graded question that the library answers. The student edition replaces each region with a
`raise NotImplementedError(...)`, so a region must be a run of sibling statements."""

import ast
import json
import re
from pathlib import Path

import pytest

from course_lib.autograde.answer_regions import answer_regions
from course_lib.autograde.similarity import assignment_questions

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "course_lib"

# Graded questions with nothing in the library (checkers included) that reproduces the answer.
NO_LIBRARY_COUNTERPART = {
    "hw3.Q7": "train_with_augmentation: the experiment's training loop (a fresh augmentation of every drawn batch); "
              "the library's loops (train.fit, experiment.run_once) train without one, and the checker reruns the "
              "student's loop with and without `hw3_transfer.reference_shift` (whose shift is hw3.Q1's region, "
              "`_shift_sources`) and grades the measured gain",
}


NOTEBOOKS = sorted(ROOT.glob("solutions/*/*.ipynb"))
HEADING = re.compile(r"^##\s*Q(\d+)\.", re.MULTILINE)


def _questions():
    return {q.qid: q for notebook in NOTEBOOKS for q in assignment_questions(notebook)}


def _autograded_headings(notebook: Path) -> set[str]:
    """"hwN.Qk" of every "## Qk." heading of a solution notebook followed, before the next heading, by a code
    cell that nbgrader grades with points (a test cell). Written answers graded by hand (markdown cells with
    solution and grade) are not counted: they have no test cell, and the library answers none of them."""
    number = int(notebook.stem.split("_")[0][2:])
    found, current = set(), None
    for cell in json.loads(notebook.read_text())["cells"]:
        source = "".join(cell["source"])
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if cell["cell_type"] == "markdown" and HEADING.search(source):
            current = f"hw{number}.Q{HEADING.search(source).group(1)}"
        elif cell["cell_type"] == "code" and meta.get("grade") and not meta.get("solution") and meta.get("points"):
            assert current, f"{notebook.name}: a graded test cell ({meta.get('grade_id')}) before any '## Qk.' heading"
            found.add(current)
    return found


REGIONS = answer_regions(PACKAGE)


def test_every_marker_names_a_graded_question():
    questions = _questions()
    unknown = sorted({f"{r.qid} ({r.path}:{r.first_line})" for r in REGIONS if r.qid not in questions})
    assert not unknown, f"markers name questions the solution notebooks do not have: {unknown}"


def test_every_graded_question_the_library_answers_is_marked():
    questions = _questions()
    # hw1 Q1-8, hw2 Q1-7, hw3 Q1-7, hw4 Q1-6 (the written answers, hw1 Q3's fc_share and Q9, hw2 Q8-9,
    # hw3 Q7's two, hw4 Q7-8, are graded by hand and have no test cell)
    expected = set().union(*map(_autograded_headings, NOTEBOOKS))
    assert set(questions) == expected and len(NOTEBOOKS) == 4, sorted(set(questions) ^ expected)
    marked = {r.qid for r in REGIONS}
    assert not marked & NO_LIBRARY_COUNTERPART.keys(), "marked questions listed as having no library counterpart"
    unmarked = sorted(set(questions) - marked - NO_LIBRARY_COUNTERPART.keys())
    assert not unmarked, f"graded questions without an answer marker in course_lib: {unmarked}"


def _statement_blocks(node):
    for child in ast.walk(node):
        for field in ("body", "orelse", "finalbody", "handlers"):
            block = getattr(child, field, None)
            if isinstance(block, list) and block and isinstance(block[0], ast.stmt):
                yield block


def _code_lines(lines, first, last):
    numbers = [n for n in range(first, last + 1) if lines[n - 1].strip() and not lines[n - 1].lstrip().startswith("#")]
    return numbers[0], numbers[-1]


@pytest.mark.parametrize("region", REGIONS, ids=[f"{r.qid}-{r.path}:{r.first_line}" for r in REGIONS])
def test_a_region_is_whole_statements_of_one_function_body(region):
    source = (ROOT / region.path).read_text()
    first, last = _code_lines(source.splitlines(), region.first_line, region.last_line)
    functions = [node for node in ast.walk(ast.parse(source))
                 if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
                 and node.body[0].lineno <= first and last <= node.end_lineno]
    assert functions, f"{region.path}:{region.first_line}: the {region.qid} region is not inside a function body"
    innermost = max(functions, key=lambda node: node.lineno)
    runs = [(block[i], block[j]) for block in _statement_blocks(innermost)
            for i in range(len(block)) for j in range(i, len(block))]
    assert any(start.lineno == first and end.end_lineno == last for start, end in runs), (
        f"{region.path}:{region.first_line}: the {region.qid} region must hold whole sibling statements "
        f"of {innermost.name} (it becomes one `raise` in the student edition)")


@pytest.mark.parametrize("text,problem", [
    ("def f():\n    # BEGIN ANSWER hw2.Q1\n    return 1\n", "never closed"),
    ("def f():\n    return 1\n    # END ANSWER\n", "without a BEGIN"),
    ("def f():\n    # BEGIN ANSWER hw2.Q1\n    # BEGIN ANSWER hw2.Q2\n    return 1\n    # END ANSWER\n", "do not nest"),
    ("def f():\n    # BEGIN ANSWER hw2-Q1\n    return 1\n    # END ANSWER\n", "not of the form"),
    ("def f():\n    # BEGIN ANSWER hw2.Q1\n    # END ANSWER\n    return 1\n", "empty"),
])
def test_malformed_markers_are_refused_with_the_place(tmp_path, text, problem):
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "mod.py").write_text(text)
    with pytest.raises(ValueError, match=problem) as error:
        answer_regions(package)
    assert "pkg/mod.py:" in str(error.value)
