"""End to end, in a temporary course directory: generate, validate, grade (in parallel and
like stock nbgrader), mutation tests of every assignment, feedback and export."""

import csv
import json
import shutil
from pathlib import Path

import nbformat
import pytest

from course_lib.autograde.course import (
    CourseError, assignment_ids, db_url, export_csv, generate, generate_feedback, run_nbgrader,
)
from course_lib.autograde.gradebook import read_scores
from course_lib.autograde.pipeline import grade
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
        ("augment", "def augment(images, labels, generator):\n    order = torch.randperm(len(labels), generator=generator)\n"
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
def course(tmp_path_factory):
    """A fresh course root with the repository's config and solutions; cells time out after 20 s."""
    root = tmp_path_factory.mktemp("course")
    shutil.copytree(ROOT / "solutions", root / "solutions")
    config = (ROOT / "nbgrader_config.py").read_text() + "\nc.Execute.timeout = 20\n"
    (root / "nbgrader_config.py").write_text(config)
    generate(root)
    return root


@pytest.fixture(scope="module")
def batch(course, tmp_path_factory):
    """One batch: the shipped examples, every mutant, and notebooks that hang, raise or print to stderr."""
    submissions = tmp_path_factory.mktemp("submissions")
    shutil.copytree(EXAMPLES, submissions, dirs_exist_ok=True)
    for hw, mutants in MUTANTS.items():
        for index, (cell_id, code, _) in enumerate(mutants):
            _write_submission(submissions / f"mutant{index}" / hw, hw, {cell_id: _mutant_source(hw, cell_id, code)})
    hw = "hw1_cnn_arithmetic"
    _write_submission(submissions / "hangs" / hw, hw, {"conv_params": "while True:\n    pass"})
    _write_submission(submissions / "raises" / hw, hw, {"conv_params": "raise RuntimeError('student bug')"})
    _write_submission(submissions / "stderr" / hw, hw, {
        "conv_params": "import sys\nprint('debug output', file=sys.stderr)\n"
                       "def conv_params(i, o, k, bias=True):\n    print('inside', file=sys.stderr)\n    return o * i * k * k + (o if bias else 0)"})
    (submissions / "not_json" / hw).mkdir(parents=True)
    (submissions / "not_json" / hw / f"{hw}.ipynb").write_text("{ this is not json")
    outcomes, skipped = grade(course, submissions, jobs=2)
    return submissions, {(o.student, o.assignment): o for o in outcomes}, skipped


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


def test_shipped_examples_grade_as_intended(batch):
    _, outcomes, skipped = batch
    assert skipped == []
    for hw in assignment_ids(ROOT):
        assert outcomes[("alt_correct", hw)].score == outcomes[("alt_correct", hw)].max_score > 0
        assert outcomes[("blank", hw)].score == 0
        assert 0 < outcomes[("typical_mistakes", hw)].score < outcomes[("typical_mistakes", hw)].max_score


@pytest.mark.parametrize("hw", sorted(MUTANTS))
def test_each_mutant_loses_exactly_its_own_cell(course, batch, hw):
    _, outcomes, _ = batch
    scores = {(s.student, s.assignment): s for s in read_scores(db_url(course))}
    full = {c.cell: c.max_score for c in scores[("alt_correct", hw)].cells}
    assert len(MUTANTS[hw]) >= 3
    for index, (_, _, lost) in enumerate(MUTANTS[hw]):
        cells = {c.cell: c.score for c in scores[(f"mutant{index}", hw)].cells}
        expected = {name: (0.0 if name == lost else points) for name, points in full.items()}
        assert cells == expected, f"mutant {index} of {hw}"


def test_broken_notebooks_still_get_a_grade_and_the_batch_goes_on(course, batch):
    _, outcomes, _ = batch
    hw = "hw1_cnn_arithmetic"
    scores = {s.student: s for s in read_scores(db_url(course), hw)}
    for student in ("hangs", "raises", "stderr"):
        cells = scores[student].cell_scores()
        assert cells[f"{hw}/test_conv_params"] == 0, student
        assert scores[student].score == scores[student].max_score - 1, student  # every other cell still passes
    assert outcomes[("not_json", hw)].score == 0
    assert any("not" in p.lower() for p in outcomes[("not_json", hw)].problems)


def test_feedback_and_export(course, batch, tmp_path):
    generate_feedback(course)
    page = course / "feedback" / "typical_mistakes" / "hw1_cnn_arithmetic" / "hw1_cnn_arithmetic.html"
    text = page.read_text()
    assert "should stay 90x90" in text      # the failed test's message reaches the student
    assert "HIDDEN TESTS" not in text and "seed=3141" not in text
    rows = export_csv(course, tmp_path / "grades.csv")
    table = list(csv.DictReader(open(tmp_path / "grades.csv")))
    assert rows == len(table) and {r["student"] for r in table} >= {"alt_correct", "blank", "typical_mistakes"}


def test_parallel_grades_equal_serial_stock_nbgrader(course, batch, tmp_path):
    """Stock `nbgrader autograde`, serially, on the shipped examples gives the same cell scores."""
    root = tmp_path / "stock"
    shutil.copytree(ROOT / "solutions", root / "solutions")
    shutil.copy(ROOT / "nbgrader_config.py", root / "nbgrader_config.py")
    generate(root)
    shutil.copytree(EXAMPLES, root / "submitted")
    for hw in assignment_ids(root):
        result = run_nbgrader(root, "autograde", hw, "--force", "--CourseDirectory.db_url=" + db_url(root))
        assert result.returncode == 0, result.stderr[-2000:]
    stock = {(s.student, s.assignment): s.cell_scores() for s in read_scores(db_url(root))}
    ours = {(s.student, s.assignment): s.cell_scores() for s in read_scores(db_url(course)) if (ROOT / "examples" / "submissions" / s.student).is_dir()}
    assert ours == stock


def test_stock_nbgrader_executor_gives_the_same_cell_scores(course, batch, tmp_path):
    """`--executor nbgrader` (stock autograde per submission, recorded by the same pipeline)
    agrees with the sandboxed executor on the shipped hw1 examples."""
    hw = "hw1_cnn_arithmetic"
    root, submissions = tmp_path / "stock", tmp_path / "submissions"
    shutil.copytree(course / "solutions" / hw, root / "solutions" / hw)
    shutil.copy(course / "nbgrader_config.py", root / "nbgrader_config.py")
    generate(root, [hw])
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
    assert set(results) == {"test_conv_output_size", "test_conv_params", "test_vgg_params", "test_conv_forward", "test_maxpool_backward"}
    assert not results["test_conv_output_size"].passed and "should stay 90x90" in results["test_conv_output_size"].message
    assert results["test_conv_forward"].passed
    report = format_report(list(results.values()))
    assert "FAIL  test_conv_params" in report and "PASS  test_conv_forward" in report
