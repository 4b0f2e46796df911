"""The set-up files agree with one another and the command line works."""

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from course_lib import cli

ROOT = Path(__file__).resolve().parents[1]
CONDA_NAMES = {"pytorch": "torch"}  # conda's name -> PyPI's name


def _requirement(text: str) -> tuple[str, str]:
    name, spec = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*(.*)$", text).groups()
    return name.lower(), spec.replace(" ", "")


def _pyproject_requirements():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    every = project["dependencies"] + project["optional-dependencies"]["dev"]
    return dict(_requirement(r) for r in every)


def _conda_requirements():
    entries = []
    text = (ROOT / "environment.yml").read_text()
    for line in text.split("dependencies:", 1)[1].splitlines():
        match = re.match(r"^\s+-\s+([^:#]+?)\s*$", line)
        if match:
            entries.append(match.group(1))
    found = dict(_requirement(e) for e in entries)
    found = {CONDA_NAMES.get(name, name): spec for name, spec in found.items()}
    found.pop("python"), found.pop("pip")
    return found


def test_environment_yml_has_the_same_dependencies_as_pyproject():
    assert _conda_requirements() == _pyproject_requirements()


def test_environment_name():
    assert re.search(r"^name: dl-course$", (ROOT / "environment.yml").read_text(), re.M)


def test_pytest_markers_are_declared():
    markers = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]["markers"]
    assert {m.split(":")[0] for m in markers} >= {"gpu", "slow"}


def test_ci_runs_the_readme_test_command():
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    readme = (ROOT / "README.md").read_text()
    assert "make course" in readme and "make test" in readme


def test_course_example_prints_the_worked_example(capsys):
    assert cli.main(["example"]) == 0
    out = capsys.readouterr().out
    assert "90x90x5" in out and "455" in out and "3,280,540,500" in out


def test_course_summary_of_a_torchvision_model(capsys):
    assert cli.main(["summary", "alexnet"]) == 0
    assert "61,100,840" in capsys.readouterr().out  # AlexNet's published parameter count


def test_console_script_is_installed():
    result = subprocess.run(
        [sys.executable, "-m", "course_lib.cli", "example"], capture_output=True, text=True, check=True
    )
    assert "455" in result.stdout


def test_unknown_model_is_a_clear_error():
    with pytest.raises(SystemExit, match="unknown torchvision model 'vgg99'"):
        cli.main(["summary", "vgg99"])


def test_importing_nbformat_does_not_build_the_iri_parsers():
    """jsonschema 4.25+ imports rfc3987-syntax, which builds its Earley parsers at import: about
    2.5 s of CPU in every nbgrader command and grading subprocess (docs/benchmarks.md)."""
    probe = "import sys, nbformat; print('rfc3987_syntax' in sys.modules)"
    imported = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert imported.strip() == "False", "pyproject.toml's jsonschema pin is not installed: run `make setup`"
