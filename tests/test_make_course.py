"""`make course`, the README's main job, as a fresh clone runs it (course_lib.build.build_course),
in fast mode (COURSE_FAST=1), built once per test run (the `made_course` fixture, shared with
the browser test of the built pages in tests/test_browser.py):

* every lecture runs without an error, draws a figure, prints its key numbers and stays
  within a generous fast-mode budget; its page and executed notebook are written;
* the homework is generated and the shipped example submissions grade as intended;
* the grades, the feedback pages and the home page are written, and every link on the home
  page resolves inside the build.
"""

import nbformat
import pytest
from test_home_page import _Refs
from test_notebooks import NOTEBOOKS, text_of

from course_lib.autograde.course import assignment_ids
from course_lib.lectures import count_figures

pytestmark = pytest.mark.slow

# Strings each notebook must print when run with COURSE_FAST=1. A notebook without an
# entry is only checked to run without error and to draw a figure.
KEY_OUTPUTS = {
    "01_cnn_anatomy": ["455", "3,280,540,500", "138,357,544", "rel_error", "reach the last map",
                       "filter_stack: full-run verdict", "first_filters: full-run verdict", "The live run",
                       "detection: full-run verdict", "true digits:"],
    "02_visualizing_cnns": ["trustworthiness", "dead channels", "p(true class)", "pixels: trustworthiness",
                            "tsne_codes: full-run verdict", "The live run"],
    "03_transfer_learning": ["linear probe on digits 5-9", "r (in + out)", "max |logits unmerged - merged|",
                             "scratch", "linear_probe", "finetune_last", "finetune_all", "lora",
                             "razavian: full-run verdict", "The live run"],
    "04_training_tricks": ["classic", "inverted", "He init keeps", "max |logits in batch A - logits in batch B|",
                           "The live run"] + [f"{name}: full-run verdict" for name in (
                               "augmentation", "tta", "init_gradients", "batchnorm", "dropout", "label_noise",
                               "optimizers")],
}
FAST_BUDGET_S = 60 * 3  # generous: fast mode targets 60 s on a 2-core CPU shared with other work


def _lecture(made_course, name):
    report, _, _ = made_course
    return next(r for r in report.lectures if r.name == name)


@pytest.mark.parametrize("name", [p.stem for p in NOTEBOOKS])
def test_lecture_runs_in_fast_mode(made_course, name):
    result = _lecture(made_course, name)
    assert result.ok, "\n".join(result.errors)
    executed = nbformat.read(result.html.with_suffix(".ipynb"), as_version=4)
    assert count_figures(executed) >= 1 and result.figures == count_figures(executed), f"{name} drew no figure"
    missing = [key for key in KEY_OUTPUTS.get(name, []) if key not in text_of(executed)]
    assert not missing, f"{name} did not print {missing}"
    assert result.seconds < FAST_BUDGET_S, f"{name} took {result.seconds:.0f} s with COURSE_FAST=1"


def test_shipped_examples_grade_as_intended(made_course):
    report, out, _ = made_course
    outcomes = {(o.student, o.assignment): o for o in report.outcomes}
    hws = assignment_ids(out / "course")
    assert len(hws) == 4 and set(outcomes) == {(s, hw) for s in ("alt_correct", "blank", "typical_mistakes")
                                               for hw in hws}
    for hw in hws:
        alt, blank, typical = (outcomes[(s, hw)] for s in ("alt_correct", "blank", "typical_mistakes"))
        assert alt.score == alt.auto_max_score > 0, alt
        assert blank.score == 0, blank
        assert 0 < typical.score < typical.auto_max_score, typical
        assert (report.feedback / "typical_mistakes" / hw / f"{hw}.html").is_file()
    grades = report.grades_csv.read_text()
    assert all(student in grades for student in ("alt_correct", "blank", "typical_mistakes"))


def test_home_page_links_every_lecture_homework_and_grade(made_course):
    report, out, lines = made_course
    home = out / "index.html"
    assert f"home page: {home}" in lines
    parser = _Refs()
    parser.feed(home.read_text())
    missing = [ref for ref in parser.refs if not (out / ref).exists()]
    assert not missing, f"the home page links files the build did not write: {missing}"
    for result in report.lectures:
        assert f"lectures/{result.html.name}" in parser.refs
    assert sum(ref.startswith("homework/") and ref.endswith(".ipynb") for ref in parser.refs) == 4
    assert any(ref.startswith("feedback/") for ref in parser.refs)
