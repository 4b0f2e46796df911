"""End to end, in a temporary course directory: generate, validate, grade (in parallel and
like stock nbgrader), mutation tests of every assignment, written answers left for manual
grading, feedback (with a grader's comment) and export.

Scores are compared on the automatic part: the written answers (nbgrader's manually graded
answer cells) have no automatic score; an answered one waits for a grader, an untouched one
scores 0."""

import csv
import json
import shutil
from pathlib import Path

import nbformat
import pytest
from nbgrader.api import Gradebook

from course_lib.autograde import gradebook
from course_lib.autograde.course import (
    CourseError,
    assignment_ids,
    db_url,
    export_csv,
    generate,
    generate_feedback,
    run_nbgrader,
)
from course_lib.autograde.gradebook import read_scores
from course_lib.autograde.pipeline import grade
from course_lib.autograde.sanitize import load_config
from course_lib.autograde.validate import validate

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "submissions"
pytestmark = pytest.mark.slow

# For each assignment, plausible mistakes in one solution cell, and the one test cell
# whose points they must lose (and no other).
MUTANTS = {
    "hw1_cnn_arithmetic": [
        ("conv_output_size", "def conv_output_size(size, kernel_size, stride=1, padding=0):\n    return (size - kernel_size) // stride + 1",
         "test_conv_output_size"),  # padding ignored in the output size
        ("conv_params", "def conv_params(in_channels, out_channels, kernel_size, bias=True):\n    return out_channels * in_channels * kernel_size * kernel_size",
         "test_conv_params"),  # biases forgotten
        ("conv_forward", "def conv_forward(x, w, b, stride=1, padding=0):\n    import torch.nn.functional as F\n    k = w.shape[-1]\n"
         "    cols = F.pad(x, [padding] * 4).unfold(2, k, 1).unfold(3, k, 1)\n    out = torch.einsum('nchwij,fcij->nfhw', cols, w) + b.reshape(1, -1, 1, 1)\n"
         "    return out", "test_conv_forward"),  # stride ignored
        ("maxpool_backward", "def maxpool_backward(dout, x, kernel_size, stride):\n    dx = torch.zeros_like(x)\n"
         "    for i in range(dout.shape[2]):\n        for j in range(dout.shape[3]):\n"
         "            dx[:, :, i*stride:i*stride+kernel_size, j*stride:j*stride+kernel_size] = dout[:, :, i:i+1, j:j+1]\n    return dx",
         "test_maxpool_backward"),  # gradient to every position, and overwritten not summed
    ],
    "hw2_bn_dropout_init": [
        ("batchnorm_forward", None, "test_batchnorm_forward"),  # biased variance stored in running_var (built below)
        ("dropout_forward", "def dropout_forward(x, p, train, generator=None):\n    if not train:\n        return x\n"
         "    return x * (torch.rand(x.shape, generator=generator, device=x.device) >= p)", "test_dropout_forward"),  # no 1/(1-p)
        ("batchnorm_backward", "def batchnorm_backward(dout, x, gamma, eps=1e-5):\n    dims = (0,) if x.dim() == 2 else (0, 2, 3)\n"
         "    shape = (1, -1) if x.dim() == 2 else (1, -1, 1, 1)\n    std = torch.sqrt(x.var(dim=dims, unbiased=False, keepdim=True) + eps)\n"
         "    xhat = (x - x.mean(dim=dims, keepdim=True)) / std\n    return dout * gamma.reshape(shape) / std, (dout * xhat).sum(dims), dout.sum(dims)",
         "test_batchnorm_backward"),  # statistics treated as constants
        ("init_std", "def xavier_std(fan_in, fan_out):\n    return math.sqrt(2.0 / (fan_in + fan_out))\n\ndef he_std(fan_in):\n    return math.sqrt(1.0 / fan_in)",
         "test_init_std"),  # He without the factor 2
    ],
    "hw3_augment_transfer": [
        ("augment", "def augment(images, labels, generator, max_shift=2):\n    order = torch.randperm(len(labels), generator=generator)\n"
         "    return images[order].flip(-1), labels", "test_augment"),  # images shuffled away from their labels
        ("tta_flip", "def tta_flip(model, images):\n    with torch.no_grad():\n        return (model(images) + model(images.flip(-2))) / 2",
         "test_tta_flip"),  # flipped upside down
        ("features_and_classifier", None, "test_extract_features"),  # the logits instead of the features (built below)
        ("lora_linear", None, "test_lora_linear"),  # merge() forgets that the update is now in the weight
    ],
    "hw4_visualize": [
        ("occlusion_map", None, "test_occlusion_map"),  # summed over windows, not averaged
        ("receptive_box", None, "test_receptive_box"),  # off by one: the jump after the layer
        ("knn_and_tsne", None, "test_knn_accuracy"),  # each point votes for itself
    ],
}

# Mutants written as one replacement in our solution's cell: (hw, cell) -> (old, new).
REPLACEMENTS = {
    ("hw2_bn_dropout_init", "batchnorm_forward"): ("momentum * var * m / (m - 1)", "momentum * var"),
    ("hw3_augment_transfer", "features_and_classifier"): ("backbone.head[:-1](backbone.features(images))", "backbone(images)"),
    ("hw3_augment_transfer", "lora_linear"): ("        self.merged = True\n", "\n"),
    ("hw4_visualize", "occlusion_map"): ("return total / count", "return total"),
    ("hw4_visualize", "receptive_box"): ("        start += ((kernel - 1) / 2 - padding) * jump\n        jump *= stride\n",
                                         "        jump *= stride\n        start += ((kernel - 1) / 2 - padding) * jump\n"),
    ("hw4_visualize", "knn_and_tsne"): ("    distances.fill_diagonal_(float(\"inf\"))                       # leave each point out\n", ""),
}


def _solution_cell(notebook, grade_id):
    return next(c for c in notebook.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


def _mutant_source(hw, cell_id, code):
    if code is not None:
        return code
    source = _solution_cell(nbformat.read(ROOT / "solutions" / hw / f"{hw}.ipynb", as_version=4), cell_id).source
    old, new = REPLACEMENTS[(hw, cell_id)]
    assert old in source, f"the mutant of {hw}/{cell_id} no longer applies to the solution"
    return source.replace(old, new)


def _write_submission(folder, hw, replacements):
    notebook = nbformat.read(ROOT / "solutions" / hw / f"{hw}.ipynb", as_version=4)
    for cell_id, code in replacements.items():
        _solution_cell(notebook, cell_id).source = code
    folder.mkdir(parents=True)
    nbformat.write(notebook, folder / f"{hw}.ipynb")


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """A course root as `course generate` leaves it, before any grading: the repository's config
    and solutions; cells time out after 120 s, as shipped: hw3's experiment cell trains 6 times
    (about 13 s of CPU on one thread) and timed out at 60 s on the 2-core machine under a load of
    11. Tests copy it (`_copy_of`) rather than generate again."""
    root = tmp_path_factory.mktemp("generated")
    shutil.copytree(ROOT / "solutions", root / "solutions")
    config = (ROOT / "nbgrader_config.py").read_text() + "\nc.Execute.timeout = 120\n"
    (root / "nbgrader_config.py").write_text(config)
    generate(root)
    return root


def _copy_of(generated: Path, root: Path) -> Path:
    shutil.copytree(generated, root)
    return root


@pytest.fixture(scope="module")
def course(made_course, tmp_path_factory):
    """The course `make course` generated and graded the shipped examples into (the test run's
    one graded course, tests/conftest.py's `made_course`), copied: the batch below adds to it."""
    _, out, _ = made_course
    return _copy_of(out / "course", tmp_path_factory.mktemp("course") / "root")


@pytest.fixture(scope="module")
def batch(made_course, course, tmp_path_factory):
    """One batch graded into `course`, after the shipped examples `make course` graded there: every
    mutant, and notebooks that raise, print to stderr or are not JSON. A notebook that hangs is
    tests/hostile.py's `infinite_loop` (test_grading_sandbox, at a 20 s cell timeout): here it
    burned this batch's 120 s timeout of CPU for the same check. Returns ((student, assignment)
    -> Outcome for the examples and the batch, the skipped)."""
    submissions = tmp_path_factory.mktemp("submissions")
    for hw, mutants in MUTANTS.items():
        for index, (cell_id, code, _) in enumerate(mutants):
            _write_submission(submissions / f"mutant{index}" / hw, hw, {cell_id: _mutant_source(hw, cell_id, code)})
    hw = "hw1_cnn_arithmetic"
    _write_submission(submissions / "raises" / hw, hw, {"conv_params": "raise RuntimeError('student bug')"})
    _write_submission(submissions / "stderr" / hw, hw, {
        "conv_params": "import sys\nprint('debug output', file=sys.stderr)\n"
                       "def conv_params(i, o, k, bias=True):\n    print('inside', file=sys.stderr)\n    return o * i * k * k + (o if bias else 0)"})
    (submissions / "not_json" / hw).mkdir(parents=True)
    (submissions / "not_json" / hw / f"{hw}.ipynb").write_text("{ this is not json")
    outcomes, skipped = grade(course, submissions, jobs=2)
    examples = made_course[0].outcomes
    return {(o.student, o.assignment): o for o in [*examples, *outcomes]}, skipped


def test_committed_assignments_equal_a_fresh_generation(course):
    for hw in assignment_ids(ROOT):
        for committed in (ROOT / "assignments" / hw).glob("*.ipynb"):
            fresh = course / "assignments" / hw / committed.name
            assert json.loads(committed.read_text()) == json.loads(fresh.read_text()), (
                f"assignments/{hw}/{committed.name} is stale: run `course generate` and commit the result")


def test_solutions_get_full_marks_and_released_notebooks_zero():
    verdicts = validate(ROOT, jobs=2)
    assert {v.assignment for v in verdicts} == set(assignment_ids(ROOT))
    assert all(v.ok for v in verdicts), [v for v in verdicts if not v.ok]
    for v in verdicts:  # the written answers are not expected of the solution, and every assignment has some
        automatic = v.max_score - v.manual_max_score
        assert v.manual_max_score >= 4 and v.expected == (0 if v.version == "released" else automatic), v


def _manual(scores):
    """{cell: max_score} of the written answers (graded by hand) of one submission."""
    return {c.cell: c.max_score for c in scores.cells if c.manual}


def test_shipped_examples_grade_as_intended(batch):
    outcomes, skipped = batch
    assert skipped == []
    for hw in assignment_ids(ROOT):
        alt, blank, typical = (outcomes[(student, hw)] for student in ("alt_correct", "blank", "typical_mistakes"))
        assert alt.score == alt.auto_max_score > 0 and alt.manual_max_score >= 4
        assert alt.needs_manual_grading == alt.manual_max_score  # answered: left to the grader, not 0
        assert "need manual grading" in alt.score_text()
        assert blank.score == 0 and blank.needs_manual_grading == 0  # untouched answers: 0 without a grader
        assert 0 < typical.score < typical.auto_max_score


def test_written_answers_wait_for_a_grader_in_the_gradebook(course, batch):
    """What formgrader lists as "needs manual grade": nbgrader's own flags in the gradebook."""
    with Gradebook(db_url(course), "dl-course") as gradebook:
        for hw in assignment_ids(ROOT):
            answered = gradebook.find_submission(hw, "alt_correct")
            untouched = gradebook.find_submission(hw, "blank")
            assert answered.needs_manual_grade and not untouched.needs_manual_grade, hw
            pending = [g for nb in answered.notebooks for g in nb.grades if g.needs_manual_grade]
            assert pending and all(g.cell_type == "markdown" and g.auto_score is None for g in pending), hw


@pytest.mark.parametrize("hw", sorted(MUTANTS))
def test_each_mutant_loses_exactly_its_own_cell(course, batch, hw):
    scores = {(s.student, s.assignment): s for s in read_scores(db_url(course))}
    full = {c.cell: c.max_score for c in scores[("alt_correct", hw)].cells if not c.manual}
    assert len(MUTANTS[hw]) >= 3
    for index, (_, _, lost) in enumerate(MUTANTS[hw]):
        cells = {c.cell: c.score for c in scores[(f"mutant{index}", hw)].cells if not c.manual}
        expected = {name: (0.0 if name == lost else points) for name, points in full.items()}
        assert cells == expected, f"mutant {index} of {hw}"


def test_broken_notebooks_still_get_a_grade_and_the_batch_goes_on(course, batch):
    outcomes, _ = batch
    hw = "hw1_cnn_arithmetic"
    scores = {s.student: s for s in read_scores(db_url(course), hw)}
    for student in ("raises", "stderr"):
        cells = scores[student].cell_scores()
        assert cells[f"{hw}/test_conv_params"] == 0, student
        assert scores[student].auto_score == scores[student].auto_max_score - 1, student  # every other cell passes
    assert outcomes[("not_json", hw)].score == 0
    assert any("not" in p.lower() for p in outcomes[("not_json", hw)].problems)


def _grade_by_hand(course, hw, student, cell, points, comment):
    """What a grader does in formgrader, through nbgrader's API: a manual score and a comment."""
    with Gradebook(db_url(course), "dl-course") as gradebook:
        [notebook] = gradebook.find_submission(hw, student).notebooks
        grade = gradebook.find_grade(cell, notebook.name, hw, student)
        grade.manual_score, grade.needs_manual_grade = points, False
        gradebook.find_comment(cell, notebook.name, hw, student).manual_comment = comment
        gradebook.db.commit()


def test_feedback_and_export(course, batch, tmp_path):
    hw, student = "hw1_cnn_arithmetic", "mutant0"  # not a shipped example: the stock comparison stays exact
    graded = sorted(_manual(next(s for s in read_scores(db_url(course), hw) if s.student == student)))
    comment = "Right idea: the first FC layer holds most weights; name the count. (grader)"
    _grade_by_hand(course, hw, student, graded[0], 1.5, comment)
    waiting = {(s.student, s.assignment) for s in generate_feedback(course)}
    assert (student, hw) in waiting and ("typical_mistakes", hw) in waiting  # written answers no grader has scored
    assert ("blank", hw) not in waiting  # an untouched written answer scores 0 and waits for nobody
    text = (course / "feedback" / "typical_mistakes" / hw / f"{hw}.html").read_text()
    assert "should stay 90x90" in text      # the failed test's message reaches the student
    assert "HIDDEN TESTS" not in text and "seed=3141" not in text
    page = (course / "feedback" / student / hw / f"{hw}.html").read_text()
    assert "Right idea: the first FC layer holds most weights" in page  # the grader's comment reaches the student
    rows = export_csv(course, tmp_path / "grades.csv")
    table = list(csv.DictReader(open(tmp_path / "grades.csv")))
    assert rows == len(table) and {r["student"] for r in table} >= {"alt_correct", "blank", "typical_mistakes"}
    row = next(r for r in table if (r["student"], r["assignment"]) == (student, hw))
    scores = next(s for s in read_scores(db_url(course), hw) if s.student == student)
    manual = _manual(scores)
    assert float(row["manual_score"]) == 1.5 and float(row["manual_max_score"]) == sum(manual.values())
    assert float(row["needs_manual_grading"]) == sum(manual.values()) - manual[graded[0]]  # the other answer
    assert float(row["auto_score"]) + float(row["manual_score"]) == scores.score
    assert float(row["auto_max_score"]) + float(row["manual_max_score"]) == float(row["max_score"])
    assert row[f"{hw}:{hw}/{graded[0]}"] == "1.5" and row[f"{hw}:{hw}/{graded[1]}"] == ""  # waiting: not 0
    blank = next(r for r in table if (r["student"], r["assignment"]) == ("blank", hw))
    assert blank[f"{hw}:{hw}/{graded[1]}"] == "0" and blank["needs_manual_grading"] == "0"


def test_parallel_grades_equal_serial_stock_nbgrader(generated, course, batch, tmp_path):
    """Stock `nbgrader autograde`, serially, on the shipped examples gives the same cell scores."""
    root = _copy_of(generated, tmp_path / "stock")
    shutil.copytree(EXAMPLES, root / "submitted")
    for hw in assignment_ids(root):
        result = run_nbgrader(root, "autograde", hw, "--force", "--CourseDirectory.db_url=" + db_url(root))
        assert result.returncode == 0, result.stderr[-2000:]
    stock = {(s.student, s.assignment): s.cell_scores() for s in read_scores(db_url(root))}
    ours = {(s.student, s.assignment): s.cell_scores() for s in read_scores(db_url(course)) if (ROOT / "examples" / "submissions" / s.student).is_dir()}
    assert ours == stock


def test_stock_nbgrader_executor_gives_the_same_cell_scores(generated, course, batch, tmp_path):
    """`--executor nbgrader` (stock autograde per submission, recorded by the same pipeline)
    agrees with the sandboxed executor on the shipped hw1 examples."""
    hw = "hw1_cnn_arithmetic"
    root, submissions = _copy_of(generated, tmp_path / "stock"), tmp_path / "submissions"
    for student in ("alt_correct", "blank", "typical_mistakes"):
        shutil.copytree(EXAMPLES / student / hw, submissions / student / hw)
    outcomes, _ = grade(root, submissions, jobs=2, executor="nbgrader")
    assert [(o.student, o.graded) for o in outcomes] == [(s, True) for s in ("alt_correct", "blank", "typical_mistakes")]
    stock = {s.student: s.cell_scores() for s in read_scores(db_url(root), hw)}
    ours = {s.student: s.cell_scores() for s in read_scores(db_url(course), hw) if s.student in stock}
    assert stock == ours
    assert (root / "autograded" / "typical_mistakes" / hw / f"{hw}.ipynb").is_file()


def test_unknown_assignment_is_a_clear_error(course):
    with pytest.raises(CourseError, match="unknown assignment"):
        generate(course, ["hw9"])


def test_student_self_check_reports_each_question(tmp_path):
    from course_lib.autograde.selfcheck import check_notebook, format_report

    hw = "hw1_cnn_arithmetic"
    shutil.copy(EXAMPLES / "typical_mistakes" / hw / f"{hw}.ipynb", tmp_path / "mine.ipynb")
    before = (tmp_path / "mine.ipynb").read_bytes()
    results = {r.name: r for r in check_notebook(tmp_path / "mine.ipynb")}
    assert (tmp_path / "mine.ipynb").read_bytes() == before  # the student's file is not touched
    source = nbformat.read(ROOT / "solutions" / hw / f"{hw}.ipynb", as_version=4)
    tests = {c.metadata.nbgrader["grade_id"] for c in source.cells
             if c.metadata.get("nbgrader", {}).get("grade") and not c.metadata.nbgrader.get("solution")}
    assert set(results) == tests and len(tests) >= 8  # the written answers are not checked here
    assert not results["test_conv_output_size"].passed and "should stay 90x90" in results["test_conv_output_size"].message
    assert results["test_conv_forward"].passed
    report = format_report(list(results.values()))
    assert "FAIL  test_conv_params" in report and "PASS  test_conv_forward" in report


def test_regrading_keeps_what_a_grader_gave(course):
    """`course grade` again (a fixed checker, a late file) keeps the manual scores and comments,
    and flags those cells for review, as `nbgrader autograde` does."""
    hw, student = "hw1_cnn_arithmetic", "regraded"
    url, config = db_url(course), load_config(course)

    def hand_in():  # the solution as handed in: its written answers (the rubric) wait for a grader
        return {hw: nbformat.read(ROOT / "solutions" / hw / f"{hw}.ipynb", as_version=4)}

    first = gradebook.record(url, config, student, hw, None, hand_in())
    cell, other = sorted(c.cell for c in first.cells if c.manual)
    assert first.needs_manual_grading == first.manual_max_score > 0
    _grade_by_hand(course, hw, student, cell, 2, "kept across a regrade")
    again = {c.cell: c for c in gradebook.record(url, config, student, hw, None, hand_in()).cells}
    assert (again[cell].score, again[cell].pending, again[other].pending) == (2, False, True)
    with Gradebook(url, "dl-course") as book:
        assert book.find_comment(cell, hw, hw, student).manual_comment == "kept across a regrade"
        assert book.find_grade(cell, hw, hw, student).needs_manual_grade  # to review: the answer may have changed
