"""The student edition ships no answer outside the marked regions either (issue #12).

The checker modules ship in the student wheel (the notebooks import them), and so does the
library code that the lectures use. Some of it once computed answers inline: hw2's dropout
scale 1 / (1 - p) and its Xavier and He scales, hw3's zero-fill shift, hw4's ink share,
hw1's VGG count, and library helpers kept because unmarked code used them (occlusion's window
positions, LoRAConv2d's dense update, freeze_bn's hook). Three library functions showed an
answer whole until they were marked too: `visualize.tsne` (hw4 Q3's TSNE settings),
`augment.tta_views`' mirror image (hw3 Q2's axis) and `top_activating_patches`' ranking (hw4 Q5).
Each answer below is written as the full edition writes it: the pattern must occur in the
full edition's module (so a stale pattern fails here instead of passing for ever) and nowhere
in the student edition's, code, docstrings and comments alike.
"""

import re
from pathlib import Path

import pytest

from course_lib.autograde.edition import write_student_package
from course_lib.autograde.release import assignment_notebooks

ROOT = Path(__file__).resolve().parents[1]

# (module under course_lib/, the question it answers, a regular expression for the answer)
LEAKS = [
    ("grading/checks/hw1_arithmetic.py", "hw1.Q3", r"224\s*//\s*2\s*\*\*"),  # the map the first FC layer reads
    ("grading/checks/hw1_arithmetic.py", "hw1.Q3", r"4096,\s*4096"),
    ("grading/checks/hw2_layers.py", "hw2.Q3", r"/\s*\(\s*1(\.0)?\s*-\s*p\s*\)"),  # code, or a message's 1/(1-p)
    ("grading/checks/hw2_layers.py", "hw2.Q4", r"mask\)?\s*/"),  # the backward pass's cached, scaled mask
    ("grading/checks/hw2_layers.py", "hw2.Q5", r"2(\.0)?\s*/\s*\(?\s*fan_in\s*\+\s*fan_out"),  # Xavier
    ("grading/checks/hw2_layers.py", "hw2.Q5", r"gain\(\s*['\"]relu['\"]\s*\)\s*/\s*math\.sqrt"),  # He
    ("grading/checks/hw3_transfer.py", "hw3.Q1",  # which input row each row shows (as an index, or as a slice)
     r"arange\(\s*height\s*\)|max\(\s*-?d[yx]\s*,\s*0\s*\)"),
    ("grading/checks/hw3_transfer.py", "hw3.Q1", r"\(\s*rows\s*>=\s*0\s*\)"),  # zeros move in at the border
    ("grading/checks/hw4_visualize.py", "hw4.Q6", r"clamp\(\s*min\s*=\s*0\s*\)"),  # the positive mass
    ("grading/checks/hw4_visualize.py", "hw4.Q6", r"/\s*heat\.sum\(\)"),  # its share on the ink
    ("transfer.py", "hw3.Q5", r"module\.training\s*=\s*False"),  # freeze_bn's forward pre-hook
    ("transfer.py", "hw3.Q6", r"block_diag"),  # LoRAConv2d's update: B's groups as a dense matrix
    ("transfer.py", "hw3.Q6", r"in_per_group"),  # merging into a grouped conv
    ("visualize/occlusion.py", "hw4.Q1", r"ceil\(\s*\(\s*size\s*-\s*window\s*\)\s*/\s*stride\s*\)"),  # positions
    ("visualize/occlusion.py", "hw4.Q1", r"ceil\(\s*\(\s*[nH]\s*-\s*[wh]\s*\)\s*/\s*s[h]?\s*\)"),  # ... as text
    ("visualize/occlusion.py", "hw4.Q1", r"torch\.where\(\s*mask\s*,\s*fill"),  # the occluded batches
    ("visualize/occlusion.py", "hw4.Q1", r"softmax"),  # occlusion_probability
    ("augment.py", "hw3.Q2", r"flip\(\s*(dims\s*=\s*)?[\[(]?\s*-1"),  # tta_views' mirror image: the axis
    ("visualize/embeddings.py", "hw4.Q3", r"init\s*=\s*['\"]pca['\"]"),  # tsne's settings, in code or docstring
    ("visualize/embeddings.py", "hw4.Q3", r"learning_rate\s*=\s*['\"]auto['\"]"),
    ("visualize/embeddings.py", "hw4.Q3", r"initialization is\s+PCA"),
    ("visualize/patches.py", "hw4.Q5", r"argsort\(\s*descending\s*=\s*True"),  # the ranking, strongest first
]


@pytest.fixture(scope="module")
def student_package(tmp_path_factory) -> Path:
    """The student edition's course_lib/, every homework left out."""
    package = tmp_path_factory.mktemp("student") / "course_lib"
    write_student_package(ROOT / "course_lib", package, assignment_notebooks(ROOT))
    return package


@pytest.mark.parametrize(("module", "question", "pattern"), LEAKS, ids=[f"{q}-{p}" for _, q, p in LEAKS])
def test_an_answer_is_in_the_full_edition_only(student_package, module, question, pattern):
    full = (ROOT / "course_lib" / module).read_text(encoding="utf-8")
    student = (student_package / module).read_text(encoding="utf-8")
    assert re.search(pattern, full), f"{module} no longer holds /{pattern}/: update LEAKS to the answer's new form"
    shown = [line.strip() for line in student.splitlines() if re.search(pattern, line)]
    assert not shown, f"the student edition's {module} still shows {question}'s answer: {shown}"


def test_the_checkers_reference_computations_are_left_out(student_package):
    """Each checker module's own reference computations raise the homework error in the student edition."""
    expected = {
        "hw1_arithmetic.py": ["def vgg_reference("],
        "hw2_layers.py": ["def _reference_kept_scale(", "def _reference_dropout_backward(",
                          "def _reference_xavier_std(", "def _reference_he_std("],
        "hw3_transfer.py": ["def _shift_sources("],
        "hw4_visualize.py": ["def reference_ink_share("],
    }
    for name, functions in expected.items():
        text = (student_package / "grading" / "checks" / name).read_text(encoding="utf-8")
        for function in functions:
            body = text.split(function, 1)[1].split("\ndef ", 1)[0]
            assert "_replay.homework_error(" in body, f"{name}: {function[4:-1]} is not left out"
