"""`course release`: the student edition of the package, as a wheel, with the released
assignment notebooks.

release/
  student/               the project the wheel is built from (course_lib without answers,
                         course_lib/expected/<hw>.pt: the reference's results for the visible tests)
  dl_course_student-<version>-py3-none-any.whl
  assignments/<hw>/      the released notebooks (a copy of assignments/)
  lectures/              the lectures for the student edition: a cell that needs a left-out
                         function is shown, not run (course_lib.autograde.student_lectures)

The full edition (`pip install -e .`) is the source tree, unchanged.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

from course_lib.autograde.edition import Stripped, homework_number, write_student_package
from course_lib.autograde.student_lectures import release_lectures

STUDENT_PROJECT = "dl-course-student"


def assignment_notebooks(course_root: Path) -> dict[str, str]:
    """"hw1" -> "hw1_cnn_arithmetic.ipynb", from assignments/."""
    return {folder.name.split("_")[0]: f"{folder.name}.ipynb"
            for folder in sorted((course_root / "assignments").iterdir()) if folder.is_dir()}


def release(course_root: Path, out: Path, due: tuple[str, ...] = (), say=print, lectures: bool = True) -> Path:
    """Write the student edition under `out`; returns the wheel. `due`: homework numbers
    ("hw1") whose answers the student edition keeps (their deadline has passed).
    lectures: also run the lectures on it (COURSE_FAST=1, a few minutes) into `out`/lectures/."""
    notebooks = assignment_notebooks(course_root)
    project = out / "student"
    package = project / "course_lib"
    stripped = write_student_package(course_root / "course_lib", package, notebooks, due)
    say(f"release: {len(stripped)} functions left out of {package}")
    for homework, notebook in notebooks.items():
        if homework not in due:
            record_visible_results(course_root, notebook.removesuffix(".ipynb"), stripped, package / "expected", say)
    _write_pyproject(course_root, project)
    wheel = _build_wheel(project, out)
    shutil.rmtree(out / "assignments", ignore_errors=True)
    shutil.copytree(course_root / "assignments", out / "assignments")
    if lectures:
        shutil.rmtree(out / "lectures", ignore_errors=True)
        release_lectures(course_root / "notebooks", project, out / "lectures", fast=True, say=say)
    say(f"release: {wheel}, {out / 'assignments'}" + (f", {out / 'lectures'}" if lectures else ""))
    return wheel


def record_visible_results(course_root: Path, assignment: str, stripped: list[Stripped], store: Path,
                           say=print) -> dict:
    """Run the solution's visible tests with the full edition (a subprocess) and store the
    reference's results in `store`/<assignment>.pt. Raises RuntimeError if a visible cell fails."""
    import course_lib.grading  # noqa: F401 - registers the checkers' replayable reference computations
    from course_lib.replay import REPLAYABLE

    number = assignment.split("_")[0]
    keys = [s.key for s in stripped if s.replayed and homework_number(s.qid) == number] + REPLAYABLE.get(number, [])
    store.mkdir(parents=True, exist_ok=True)
    notebook = course_root / "solutions" / assignment / f"{assignment}.ipynb"
    done = subprocess.run([sys.executable, "-m", "course_lib.autograde.expected", str(notebook),
                           str(store / f"{assignment}.pt"), *keys], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"recording {assignment}'s visible tests failed:\n{done.stderr[-2000:]}")
    report = json.loads(done.stdout.strip().splitlines()[-1])
    _check_loadable(store / f"{assignment}.pt")
    if report["failed"]:
        raise RuntimeError(f"{assignment}: the solution's visible tests failed while recording: {report['failed']}")
    say(f"release: {assignment}: {report['entries']} reference results stored"
        + (f"; not stored: {report['skipped']}" if report["skipped"] else ""))
    return report


def _check_loadable(path: Path) -> None:
    """The student edition loads its store with torch.load(weights_only=True): make sure it can."""
    import torch

    try:
        torch.load(path, weights_only=True)
    except Exception as error:  # noqa: BLE001 - any failure here would reach every student
        raise RuntimeError(f"{path} cannot be loaded with weights_only=True ({error}); a stored result "
                           "holds a type the store cannot keep") from None


def _write_pyproject(course_root: Path, project: Path) -> None:
    """The full edition's pyproject.toml, renamed, without the dev extras and scripts."""
    config = tomllib.loads((course_root / "pyproject.toml").read_text())["project"]
    dependencies = ",\n".join(f"    {json.dumps(d)}" for d in config["dependencies"])
    (project / "pyproject.toml").write_text(f'''[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "{STUDENT_PROJECT}"
version = "{config["version"]}"
description = "dl-course, student edition: the homework answers are left out"
requires-python = "{config["requires-python"]}"
dependencies = [
{dependencies},
]

[project.scripts]
course = "course_lib.cli:main"

[tool.setuptools.packages.find]
include = ["course_lib*"]

[tool.setuptools.package-data]
course_lib = ["assets/**/*", "evidence/results/*.json", "expected/*.pt"]
''')


def _build_wheel(project: Path, out: Path) -> Path:
    for old in out.glob("*.whl"):
        old.unlink()
    shutil.rmtree(project / "build", ignore_errors=True)
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                           "-w", str(out), str(project)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"building the student wheel failed:\n{done.stderr[-2000:]}")
    [wheel] = [path for path in out.glob("*.whl") if re.match(r"dl_course_student-", path.name)]
    return wheel
