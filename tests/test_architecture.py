"""The import graph of course_lib, read from the source (imports at module level and inside
functions): it has no cycle, and imports point down only (docs/DESIGN: the library never
imports grading or autograding, the checkers never import the autograding machinery,
nothing imports the CLI). The light `course` commands do not import torch."""

import ast
import shutil
import subprocess
import sys
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "course_lib"
TOOLING = ("course_lib.cli", "course_lib.build", "course_lib.lectures")  # the top of the graph


def _module(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _resolve(name: str) -> str | None:
    """The course_lib module `name` refers to: itself, or its longest prefix that is a module."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imported(module: str) -> set[str]:
    """Every course_lib module `module` imports, anywhere in its source."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}".rstrip(".")
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)  # `from pkg import module`
    found = {_resolve(name) for name in names if name.split(".")[0] == "course_lib"}
    return found - {None, module}


GRAPH = {module: _imported(module) for module in MODULES}


def _importers(target_prefixes, of_modules) -> list[tuple[str, str]]:
    return sorted((module, imported) for module in of_modules for imported in GRAPH[module]
                  if imported.startswith(target_prefixes))


def _in(prefixes) -> list[str]:
    return [m for m in MODULES if m in prefixes or m.startswith(tuple(p + "." for p in prefixes))]


def test_the_graph_is_read_from_the_source():
    assert "course_lib.autograde.pipeline" in GRAPH["course_lib.cli"]  # inside a function
    assert "course_lib.grading.checks.compare" in GRAPH["course_lib.grading.checks.hw1_arithmetic"]
    assert "course_lib.autograde.execute" in GRAPH["course_lib.autograde.worker"]  # `from package import module`


def test_no_import_cycle():
    try:
        TopologicalSorter(GRAPH).prepare()
    except CycleError as error:
        pytest.fail(f"import cycle in course_lib: {' -> '.join(error.args[1])}; move the shared part down "
                    f"into a module both can import")


def test_the_library_imports_neither_grading_nor_autograding_nor_tooling():
    library = [m for m in MODULES if m not in _in(("course_lib.grading", "course_lib.autograde", *TOOLING))]
    assert "course_lib.arithmetic" in library
    assert _importers(("course_lib.grading", "course_lib.autograde", *TOOLING), library) == []


def test_the_checkers_do_not_import_the_autograding_machinery():
    checkers = _in(("course_lib.grading",))
    assert "course_lib.grading.checks.hw1_arithmetic" in checkers
    assert _importers(("course_lib.autograde", *TOOLING), checkers) == []


def test_autograding_does_not_import_the_tooling_and_nothing_imports_the_cli():
    assert _importers(TOOLING, _in(("course_lib.autograde",))) == []
    assert [m for m in MODULES if "course_lib.cli" in GRAPH[m]] == []


LIGHT = """
import sys
from course_lib import cli

for argv in {commands!r}:
    try:
        cli.main(argv)
    except SystemExit:  # --help
        pass
    print(argv[0], "torch" in sys.modules)
"""


@pytest.mark.slow
def test_light_commands_do_not_import_torch(tmp_path):
    """`course --help`, `course generate`, `course export` and `course feedback` on a fresh course."""
    course = tmp_path / "course"
    hw = "hw1_cnn_arithmetic"
    (course / "solutions").mkdir(parents=True)
    (course / "nbgrader_config.py").write_text((ROOT / "nbgrader_config.py").read_text())
    shutil.copytree(ROOT / "solutions" / hw, course / "solutions" / hw)
    (course / "autograded").mkdir()
    root = ["--root", str(course)]
    commands = [["--help"], ["generate", hw, *root], ["export", str(tmp_path / "grades.csv"), *root],
                ["feedback", hw, *root]]
    result = subprocess.run([sys.executable, "-c", LIGHT.format(commands=commands)], capture_output=True, text=True,
                            cwd=tmp_path, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    verdicts = dict(line.split() for line in result.stdout.splitlines() if line.endswith((" True", " False")))
    assert verdicts == {"--help": "False", "generate": "False", "export": "False", "feedback": "False"}, result.stdout
    assert (course / "assignments" / hw / f"{hw}.ipynb").is_file() and (tmp_path / "grades.csv").is_file()
