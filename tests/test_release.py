"""The student edition (`course release`): a wheel without the homework answers whose
visible tests still run, and a full edition left as it is.

The slow tests build one release (about a minute: the solutions' visible tests run once to
store the reference's results), install the wheel with `pip install --no-deps --target`
into a folder of its own, and run the student's side in subprocesses whose PYTHONPATH puts
that folder first (tests/student_edition_runner.py).
"""

import ast
import functools
import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import course_lib
from course_lib.autograde.answer_regions import answer_regions
from course_lib.autograde.edition import homework_number, write_student_package
from course_lib.autograde.release import assignment_notebooks, release

ROOT = Path(__file__).resolve().parents[1]
RUNNER = Path(__file__).resolve().parent / "student_edition_runner.py"
ASSIGNMENTS = ("hw1_cnn_arithmetic", "hw2_bn_dropout_init", "hw3_augment_transfer", "hw4_visualize")
REGIONS = answer_regions(ROOT / "course_lib")
# arguments that reach the left-out part of a function whose first lines stay (None everywhere otherwise)
CALLS = {
    "course_lib.initialization.init_weight_": "torch.empty(3, 4), 'kaiming_normal'",
    "course_lib.initialization.weight_gradient_norms":
        "torch.nn.Linear(3, 2), torch.randn(4, 3), torch.tensor([0, 1, 0, 1])",
    "course_lib.visualize.synthesis.maximize_activation":
        "torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3)), '0', 0, image_size=(1, 8, 8), steps=1",
    "course_lib.visualize.embeddings.tsne": "torch.randn(10, 4), perplexity=3.0",
}


@pytest.fixture(scope="module")
def student_tree(tmp_path_factory):
    """The student edition's source, every homework stripped: (package folder, functions left out)."""
    package = tmp_path_factory.mktemp("student") / "course_lib"
    return package, write_student_package(ROOT / "course_lib", package, assignment_notebooks(ROOT))


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """`course release` into a temporary folder, its wheel installed alone: (release folder, site folder)."""
    out = tmp_path_factory.mktemp("release")
    wheel = release(ROOT, out, say=lambda *_: None, lectures=False)  # lectures: test_student_lectures.py
    site = out / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site), str(wheel)],
                   check=True)
    return out, site


def _as_student(site: Path, *arguments: str, misses: list | None = None) -> dict:
    """Run student_edition_runner.py on the installed wheel; its result (and, into `misses`,
    the stored-result lookups that found nothing)."""
    environment = {**os.environ, "PYTHONPATH": str(site), "COURSE_FAST": "1"}
    environment.pop("COURSE_DEVICE", None)
    done = subprocess.run([sys.executable, str(RUNNER), *arguments], capture_output=True, text=True,
                          env=environment, cwd=site, timeout=1200, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["course_lib"].startswith(str(site)), f"the full edition was imported: {report['course_lib']}"
    if misses is not None:
        misses += report["missed"]
    return report["result"]


def _function_source(path: Path, qualname: str) -> str:
    text = path.read_text()
    node = ast.parse(text)
    for name in qualname.split("."):
        node = next(child for child in ast.iter_child_nodes(node)
                    if isinstance(child, (ast.FunctionDef, ast.ClassDef)) and child.name == name)
    return ast.get_source_segment(text, node)


def _file_of(package: Path, key: str) -> tuple[Path, str]:
    """("course_lib.layers.im2col") -> (package/layers.py, "im2col")."""
    parts = key.split(".")[1:]
    for split in range(len(parts), 0, -1):
        path = package.joinpath(*parts[:split - 1], f"{parts[split - 1]}.py")
        if path.is_file():
            return path, ".".join(parts[split:])
    raise AssertionError(f"no module for {key}")


def test_every_answer_region_is_left_out_and_no_answer_line_stays(student_tree):
    package, stripped = student_tree
    left_out = {s.key.rsplit(".", 1)[-1] for s in stripped}
    assert {"conv2d_forward", "batchnorm_backward", "maxpool2d_backward", "dropout_forward", "occlusion_map",
            "knn_accuracy", "extract_features", "__init__", "_windows",
            # checker references and library helpers that carry an answer (issue #12)
            "vgg_reference", "_reference_dropout_backward", "_reference_xavier_std", "_shift_sources",
            "reference_ink_share", "occlusion_probability", "window_starts", "_keep_bn_eval", "_grouped_to_dense",
            "delta_weight", "_fold", "tsne", "_mirrored", "_strongest_first"} <= left_out
    assert {homework_number(s.qid) for s in stripped} == {"hw1", "hw2", "hw3", "hw4"}
    for item in stripped:
        path, qualname = _file_of(package, item.key)
        student = _function_source(path, qualname)
        regions = [r for r in REGIONS if r.path == f"course_lib/{path.relative_to(package).as_posix()}"]
        answer_lines = {line.strip() for region in regions for line in region.code.splitlines()}
        inside = {n for region in regions for n in range(region.first_line, region.last_line + 1)}
        full = (ROOT / "course_lib" / path.relative_to(package)).read_text().splitlines()
        kept = {line.strip() for n, line in enumerate(full, start=1) if n not in inside}  # the same text outside
        left = [line for line in student.splitlines()
                if line.strip() in answer_lines and line.strip() not in kept and not line.strip().startswith("#")]
        assert not left, f"{item.key} keeps answer lines: {left}"
        assert "_replay.homework_error" in student, item.key


def test_a_homework_past_its_deadline_keeps_its_answers(tmp_path):
    package = tmp_path / "course_lib"
    stripped = write_student_package(ROOT / "course_lib", package, assignment_notebooks(ROOT), due=("hw1",))
    assert {homework_number(s.qid) for s in stripped} == {"hw2", "hw3", "hw4"}
    layers = (package / "layers.py").read_text()
    conv = next(r for r in REGIONS if r.qid == "hw1.Q4" and "windows" in r.code)
    assert conv.code.splitlines()[-1].strip() in layers
    assert "homework_error('batchnorm_forward', 'hw2.Q1'" in layers


def test_the_full_edition_is_the_source_tree_untouched(student_tree):
    assert Path(course_lib.__file__).resolve().parent == ROOT / "course_lib"
    assert not (ROOT / "course_lib" / "expected").exists()
    for region in REGIONS[:5]:
        assert region.code.strip().splitlines()[0] in (ROOT / region.path).read_text()


@pytest.mark.slow
def test_every_left_out_function_raises_the_homework_error_in_the_installed_wheel(installed, student_tree):
    _, site = installed
    _, stripped = student_tree
    calls = [f"{s.key}::{CALLS.get(s.key, '')}" for s in stripped]
    raised = _as_student(site, "--call-stripped", *calls)
    notebooks = assignment_notebooks(ROOT)
    for item in stripped:
        number, question = item.qid.split(".")
        message = raised[item.key]
        assert message and message.startswith("HomeworkAnswer:"), f"{item.key}: {message}"
        assert f"is homework {number} {question}: write it in {notebooks[number]}" in message, message


@pytest.fixture(scope="module")
def solved_runs(installed):
    """assignment -> ({"solved": errors, "answers": {zoo file: errors}}, the solved run's misses):
    the solution notebook and each correct answer of the zoo written differently, one
    student_edition_runner.py process per assignment, run when a test first asks."""
    _, site = installed

    @functools.cache
    def run(assignment):
        zoo = sorted((ROOT / "tests" / "homework_zoo" / assignment).glob("right_*.py"))
        misses = []
        result = _as_student(site, str(ROOT / "solutions" / assignment / f"{assignment}.ipynb"), "solved",
                             *map(str, zoo), misses=misses)
        return result, misses
    return run


@pytest.mark.slow
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_visible_tests_pass_with_the_reference_answers_on_the_student_edition(solved_runs, assignment):
    result, misses = solved_runs(assignment)
    failed = {cell: error for cell, error in result["solved"].items() if error}
    assert not failed, failed
    assert not misses, f"the reference answers passed by deferring, not on stored results: {misses[:5]}"


@pytest.mark.slow
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_visible_tests_fail_on_the_blank_released_notebook(installed, assignment):
    out, site = installed
    released = out / "assignments" / assignment / f"{assignment}.ipynb"
    errors = _as_student(site, str(released), "blank")
    graded = _graded_test_cells(released)
    assert graded and all(errors[cell] for cell in graded), {cell: errors[cell] for cell in graded}
    assert not any("HomeworkAnswer" in (errors[cell] or "") for cell in graded), \
        "a blank answer should fail on the student's own function, not on the left-out reference"


def _graded_test_cells(notebook: Path) -> list[str]:
    cells = json.loads(notebook.read_text())["cells"]
    return [c["metadata"]["nbgrader"]["grade_id"] for c in cells
            if c["cell_type"] == "code" and c.get("metadata", {}).get("nbgrader", {}).get("grade")]


@pytest.mark.slow
def test_the_wheel_holds_no_solutions_hidden_tests_or_answers(installed):
    out, _ = installed
    [wheel] = out.glob("*.whl")
    hidden_calls = _hidden_test_lines()
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        assert not [n for n in names if "solutions/" in n or n.endswith(".ipynb")]
        assert {f"course_lib/expected/{a}.pt" for a in ASSIGNMENTS} <= set(names)
        assert "course_lib/assets/transfer/transfer_results.json" in names  # lecture 03 reads it
        texts = {n: archive.read(n).decode() for n in names if n.endswith(".py")}
    assert set(texts["course_lib/layers.py"].splitlines()) == set((out / "student/course_lib/layers.py")
                                                                   .read_text().splitlines())
    for name, text in texts.items():
        assert not re.search(r"^\s*# BEGIN ANSWER hw", text, re.M), name
        leaked = [line for line in hidden_calls if line in text]
        assert not leaked, f"{name} holds hidden test lines: {leaked}"


def _hidden_test_lines() -> list[str]:
    lines = []
    for assignment in ASSIGNMENTS:
        cells = json.loads((ROOT / "solutions" / assignment / f"{assignment}.ipynb").read_text())["cells"]
        for cell in cells:
            source = "".join(cell["source"])
            if "### BEGIN HIDDEN TESTS" in source:
                hidden = source.split("### BEGIN HIDDEN TESTS")[1].split("### END HIDDEN TESTS")[0]
                lines += [line.strip() for line in hidden.splitlines() if len(line.strip()) > 20]
    assert lines
    return lines


def _python_on(package: Path, code: str) -> str:
    """What `code` prints, run by Python with the student edition's source `package` first on its path."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=package.parent,
                          env={**os.environ, "PYTHONPATH": str(package.parent)}).stdout


def test_summarize_keeps_its_counts_where_receptive_fields_are_homework(student_tree):
    package, _ = student_tree
    code = ("import torch.nn as nn\n"
            "from course_lib.arithmetic import summarize, receptive_field\n"
            "summary = summarize(nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU()), (1, 8, 8))\n"
            "print(summary.total_params, summary.rows[0].field, summary.uncounted)\n"
            "try:\n"
            "    receptive_field(nn.Sequential(nn.Conv2d(1, 2, 3)), (1, 8, 8))\n"
            "except NotImplementedError as error:\n"
            "    print('raised', error)\n")
    counts, raised = _python_on(package, code).strip().splitlines()
    assert counts.startswith("20 None ") and "receptive fields: _grow is homework hw4 Q2" in counts, counts
    assert raised.startswith("raised _grow is homework hw4 Q2, needed by receptive_field: write it in "), raised


def test_a_left_out_helper_names_the_function_the_student_called(student_tree):
    package, _ = student_tree
    code = ("import torch\nfrom course_lib import augment\n"
            "calls = [lambda: augment.tta_views(torch.rand(2, 1, 4, 4), 'flip'),\n"
            "         lambda: augment._mirrored(torch.rand(2, 1, 4, 4))]\n"
            "for call in calls:\n"
            "    try:\n        call()\n"
            "    except NotImplementedError as error:\n        print(str(error).split(': write it')[0])\n")
    assert _python_on(package, code).splitlines() == ["_mirrored is homework hw3 Q2, needed by tta_views",
                                                      "_mirrored is homework hw3 Q2"]


@pytest.mark.slow
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_correct_answers_written_differently_pass_the_visible_tests_on_the_student_edition(solved_runs, assignment):
    """Each answer reruns only the cells it can reach (the runner's docstring); the others ran
    with the reference answers, in test_visible_tests_pass_with_the_reference_answers_on_the_student_edition."""
    runs = solved_runs(assignment)[0]["answers"]
    failed = {Path(name).name: {cell: error for cell, error in cells.items() if error} for name, cells in runs.items()}
    assert runs and not any(failed.values()), failed


def test_a_function_with_bound_arguments_is_keyed_by_the_function_and_the_arguments():
    """hw4's experiment hands the reference `functools.partial(occlusion_map, batch_size=...)`."""
    from functools import partial

    from course_lib.replay import digest
    from course_lib.visualize import occlusion_map, occlusion_probability

    def key(function):
        return digest({"occlusion": function, "window": (2, 2)})

    assert key(partial(occlusion_map, batch_size=16)) == key(partial(occlusion_map, batch_size=16))
    assert len({key(partial(occlusion_map, batch_size=16)), key(partial(occlusion_map, batch_size=64)),
                key(partial(occlusion_probability, batch_size=16)), key(partial(occlusion_map, 16)),
                key(occlusion_map)}) == 5


def test_a_check_that_needs_the_reference_on_the_students_own_results_is_deferred(monkeypatch, capsys):
    from course_lib import replay
    from course_lib.grading.checks.compare import CheckFailure, reproducible

    monkeypatch.setattr(replay, "MISSED", [])
    key = "course_lib.visualize.embeddings.knn_accuracy"

    def a_left_out_reference():
        replay.MISSED.append(key)  # what a stripped function does before raising
        raise replay.homework_error("knn_accuracy", "hw4.Q3", "hw4_visualize.ipynb")

    def check_needing_the_reference(fn, seed=0):
        try:
            a_left_out_reference()
        except NotImplementedError:
            raise CheckFailure("the student's function raised") from None  # as call_student re-raises

    def check_that_swallows_the_miss_then_fails(fn, seed=0):
        try:
            a_left_out_reference()
        except NotImplementedError:
            pass
        raise CheckFailure("case 2: wrong")

    def check_that_fails(fn, seed=0):
        raise CheckFailure("case 1: wrong")

    assert reproducible(check_needing_the_reference)(None) is None
    assert "knn_accuracy) on inputs your own code produced" in capsys.readouterr().out
    with pytest.raises(CheckFailure, match="case 2: wrong"):
        reproducible(check_that_swallows_the_miss_then_fails)(None)
    with pytest.raises(CheckFailure, match="case 1: wrong"):
        reproducible(check_that_fails)(None)
