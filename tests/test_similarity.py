"""The similarity report flags disguised copies of the reference and answers shared between
students, and leaves independently written answers and blank notebooks alone.

The class: the sample submissions (examples/submissions), the correct alternatives of
tests/test_grading_checkers.py as one student, and the students of tests/similarity_zoo
(<student>/<hw>/<grade_id>.py, each file one answer cell; every answer passes its checker):
- ana copied the solution notebook's hw4 answers: variables renamed, a helper split out and
  placed after its caller, the two functions of the last cell swapped, comments rewritten;
- ben copied course_lib.layers' im2col and conv2d_forward (and its `_windows` helper) into hw1
  with the same kind of edits;
- chloe and dan hand in one hw3 solution of their own, dan's renamed, reordered and recommented;
- eve wrote hw2, hw3 and hw4 herself.
"""

import ast
import json
import shutil
from pathlib import Path

import pytest

from course_lib.autograde.similarity import (
    REFERENCE,
    THRESHOLD,
    find_similar,
    format_lines,
    similarity_report,
)

ROOT = Path(__file__).resolve().parents[1]
ZOO = Path(__file__).resolve().parent / "similarity_zoo"
ASSIGNMENTS = ("hw1_cnn_arithmetic", "hw2_bn_dropout_init", "hw3_augment_transfer", "hw4_visualize")
INDEPENDENT = {"alt_correct", "tests_alternatives", "eve", "blank"}
# grade_id -> the correct alternatives in tests/test_grading_checkers.py that answer it
CHECKER_ALTERNATIVES = {
    "hw1_cnn_arithmetic": {"conv_output_size": ["conv_output_size"], "conv_params": ["conv_params"],
                           "vgg_params": ["vgg_params"], "conv_forward": ["conv_forward"],
                           "maxpool_backward": ["maxpool_backward"]},
    "hw2_bn_dropout_init": {"batchnorm_forward": ["batchnorm_forward"], "batchnorm_backward": ["batchnorm_backward"],
                            "dropout_forward": ["dropout_forward"]},
    "hw3_augment_transfer": {"augment": ["_augment"], "features_and_classifier": ["_features", "_classifier"],
                             "lora_linear": ["_LoRA"]},
    "hw4_visualize": {"occlusion_map": ["_occlusion"], "receptive_box": ["_box"], "knn_and_tsne": ["_knn", "_tsne"]},
}


def _hand_in(submissions: Path, student: str, assignment: str, answers: dict[str, str]) -> None:
    """The released notebook with the answer cells (by grade_id) replaced, as a student hands it in."""
    notebook = json.loads((ROOT / "assignments" / assignment / f"{assignment}.ipynb").read_text())
    for cell in notebook["cells"]:
        grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if grade_id in answers:
            cell["source"] = answers[grade_id]
    path = submissions / student / assignment / f"{assignment}.ipynb"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(notebook, indent=1))


def _checker_alternatives() -> dict[str, dict[str, str]]:
    source = (ROOT / "tests" / "test_grading_checkers.py").read_text()
    defined = {node.name: ast.get_source_segment(source, node) for node in ast.parse(source).body
               if isinstance(node, (ast.FunctionDef, ast.ClassDef))}
    named = {name for cells in CHECKER_ALTERNATIVES.values() for names in cells.values() for name in names}
    missing = named - set(defined)
    assert not missing, (
        f"tests/test_grading_checkers.py no longer defines {sorted(missing)}: update CHECKER_ALTERNATIVES"
    )
    return {hw: {grade_id: "\n\n\n".join(defined[name] for name in names) for grade_id, names in cells.items()}
            for hw, cells in CHECKER_ALTERNATIVES.items()}


@pytest.fixture(scope="module")
def submissions(tmp_path_factory):
    folder = tmp_path_factory.mktemp("submissions")
    for kind in ("alt_correct", "typical_mistakes", "blank"):
        shutil.copytree(ROOT / "examples" / "submissions" / kind, folder / kind)
    for assignment, answers in _checker_alternatives().items():
        _hand_in(folder, "tests_alternatives", assignment, answers)
    for work in sorted(ZOO.glob("*/*")):
        _hand_in(folder, work.parent.name, work.name, {cell.stem: cell.read_text() for cell in work.glob("*.py")})
    return folder


@pytest.fixture(scope="module")
def flagged(submissions):
    return {assignment: find_similar(assignment, submissions, ROOT) for assignment in ASSIGNMENTS}


def _pairs(flagged, assignment):
    return {(p.question, p.student, p.other) for p in flagged[assignment]}


@pytest.mark.parametrize("question", ["hw4.Q1", "hw4.Q2", "hw4.Q3"])
def test_a_disguised_copy_of_the_solution_is_flagged_against_the_reference(flagged, question):
    assert (question, "ana", REFERENCE) in _pairs(flagged, "hw4_visualize")


def test_a_disguised_copy_of_the_library_answer_is_flagged_against_it(flagged):
    [pair] = [p for p in flagged["hw1_cnn_arithmetic"] if p.student == "ben"]
    assert (pair.question, pair.other) == ("hw1.Q4", REFERENCE)
    assert pair.source.startswith("course_lib/layers.py:"), pair.source
    assert pair.similarity >= THRESHOLD


@pytest.mark.parametrize("question", ["hw3.Q1", "hw3.Q4"])
def test_two_students_sharing_one_solution_are_flagged_as_a_pair(flagged, question):
    pairs = _pairs(flagged, "hw3_augment_transfer")
    assert (question, "chloe", "dan") in pairs
    assert (question, "chloe", REFERENCE) not in pairs and (question, "dan", REFERENCE) not in pairs


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_independent_correct_answers_and_blank_notebooks_are_not_flagged(flagged, assignment):
    wrongly = [p for p in flagged[assignment]
               if p.student in INDEPENDENT and (p.other == REFERENCE or p.other in INDEPENDENT)]
    assert not wrongly, format_lines(wrongly)


def test_a_buggy_edit_of_ones_own_answer_shares_its_code(flagged):
    # typical_mistakes is alt_correct with a bug put in: same author, same code
    assert ("hw2.Q1", "alt_correct", "typical_mistakes") in _pairs(flagged, "hw2_bn_dropout_init")


def test_the_report_prints_one_line_per_pair_and_writes_the_page(submissions, tmp_path):
    pairs = similarity_report("hw3_augment_transfer", submissions, ROOT, tmp_path)
    lines = format_lines(pairs)
    assert len(lines) == len(pairs) and any(line.split()[:3] == ["hw3.Q4", "chloe", "dan"] for line in lines)
    page = (tmp_path / "hw3_augment_transfer.html").read_text()
    assert "chloe" in page and "dan" in page
    shared = [span.split("</mark>")[0] for span in page.split("<mark>")[1:]]
    assert len(shared) >= 2 and any("torch.matmul" in span for span in shared)  # chloe's and dan's common code


def test_an_unknown_assignment_names_what_to_give(submissions):
    with pytest.raises(ValueError, match="not found"):
        find_similar("hw9_nothing", submissions, ROOT)
