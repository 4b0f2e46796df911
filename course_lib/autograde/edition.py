"""The student edition of course_lib: the same package with the homework answers left out.

Every answer region (`# BEGIN ANSWER hwN.Qk` ... `# END ANSWER`) of a homework that is not
yet due becomes `raise homework_error(...)` ("conv2d_forward is homework hw1 Q4: write it
in hw1_cnn_arithmetic.ipynb"). A private helper that only answer code calls (`_windows`
for im2col) loses its body the same way. Every function holding a stripped region first
asks `course_lib.replay` for a stored result: the inputs of the visible tests get the
reference's result recorded at release time, any other input the homework error.

The source tree is the single source of truth: nothing here is edited by hand, and the
full edition (`pip install -e .`) is the tree itself.
"""

from __future__ import annotations

import ast
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from course_lib.autograde.answer_regions import AnswerRegion, answer_regions

_IMPORT = "from course_lib import replay as _replay\n"


@dataclass(frozen=True)
class Stripped:
    """A function the student edition leaves out: `key` is its module and qualified name
    ("course_lib.layers.conv2d_forward"), `qid` the question it answers; `replayed`: whether
    it looks the store up first (not a constructor, nor a helper only answers call)."""

    key: str
    qid: str
    replayed: bool = True


def homework_number(qid: str) -> str:
    """"hw2.Q1" -> "hw2"."""
    return qid.split(".")[0]


def write_student_package(package: Path, destination: Path, notebooks: dict[str, str],
                          due: tuple[str, ...] = ()) -> list[Stripped]:
    """Copy the package directory `package` (course_lib/) to `destination` with the answers
    of every homework not in `due` left out.

    notebooks: homework number -> the notebook students write it in ("hw1" ->
    "hw1_cnn_arithmetic.ipynb"). Returns the functions left out, in source order.
    """
    if destination.exists():
        shutil.rmtree(destination)
    shutil.copytree(package, destination, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "expected"))
    regions = [r for r in answer_regions(destination) if homework_number(r.qid) not in due]
    missing = sorted({homework_number(r.qid) for r in regions} - set(notebooks))
    if missing:
        raise ValueError(f"no assignment notebook for {missing}: add assignments/<hw>_<name>/ or pass them as due")
    by_file: dict[str, list[AnswerRegion]] = {}
    for region in regions:
        by_file.setdefault(region.path, []).append(region)
    used = _names_used_by_module(destination, by_file)
    stripped = []
    for name, file_regions in by_file.items():
        path = destination.parent / name
        others = set().union(*(names for other, names in used.items() if other != name))
        text, left_out = strip_module(path.read_text(encoding="utf-8"), _module_name(name), file_regions, notebooks,
                                      others)
        path.write_text(text, encoding="utf-8")
        stripped += left_out
    return stripped


def _names_used_by_module(package: Path, by_file: dict[str, list[AnswerRegion]]) -> dict[str, set[str]]:
    """Module path ("course_lib/layers.py") -> the names its code uses outside its answer regions."""
    used = {}
    for path in package.rglob("*.py"):
        name = path.relative_to(package.parent).as_posix()
        used[name] = names_used(_outside(path.read_text(encoding="utf-8"), by_file.get(name, [])))
    return used


def _outside(text: str, regions: list[AnswerRegion]) -> str:
    """`text` with each line of `regions` replaced by `pass` (still valid Python, line numbers kept)."""
    lines = text.splitlines()
    for region in regions:
        indent = re.match(r"\s*", lines[region.first_line - 1]).group(0)
        for index in range(region.first_line - 1, region.last_line):
            lines[index] = f"{indent}pass"
    return "\n".join(lines)


def names_used(text: str) -> set[str]:
    """Every name a module's code uses: names, attributes and imported names (not its text)."""
    used = set()
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Name):
            used.add(node.id)
        elif isinstance(node, ast.Attribute):
            used.add(node.attr)
        elif isinstance(node, ast.ImportFrom):
            used.update(alias.name for alias in node.names)
    return used


def _module_name(relative: str) -> str:
    """course_lib/visualize/occlusion.py -> course_lib.visualize.occlusion."""
    return relative.removesuffix(".py").removesuffix("/__init__").replace("/", ".")


def strip_module(text: str, module: str, regions: list[AnswerRegion], notebooks: dict[str, str],
                 elsewhere: frozenset[str] | set[str] = frozenset()) -> tuple[str, list[Stripped]]:
    """`text` of one module with `regions` left out; returns it and the functions left out.
    elsewhere: the names the package's other modules use (a helper used there is kept)."""
    tree = ast.parse(text)
    lines = text.splitlines(keepends=True)
    edits: list[tuple[int, int, list[str]]] = []  # (first line index, end index, replacement lines)
    stripped: dict[str, Stripped] = {}
    classes: set[str] = set()
    for region in regions:
        path = _enclosing(tree, region.first_line)
        if not path:
            raise ValueError(f"{region.path}:{region.first_line}: answer region {region.qid} is not inside a function")
        function = path[-1]
        name = ".".join(node.name for node in path)
        error = _raise_line(name, region.qid, notebooks)
        begin = region.first_line - 2  # the BEGIN ANSWER line, 0-based
        indent = re.match(r"\s*", lines[begin]).group(0)
        edits.append((begin, region.last_line + 1, [indent + error]))
        if name not in stripped:
            stripped[name] = Stripped(f"{module}.{name}", region.qid, replayed=function.name != "__init__")
            edits += _docstring_edit(function, lines, region.qid, notebooks)
            for owner in path[:-1]:  # a class docstring describes its methods' answers too
                if isinstance(owner, ast.ClassDef) and owner.name not in classes:
                    classes.add(owner.name)
                    edits += _docstring_edit(owner, lines, region.qid, notebooks)
            if function.name != "__init__":
                edits.append(_replay_prefix(function, lines, f"{module}.{name}", region.qid, begin))
    for helper, qid in _answer_only_helpers(tree, regions, elsewhere):
        edits.append(_body_edit(helper, lines, _raise_line(helper.name, qid, notebooks)))
        edits += _docstring_edit(helper, lines, qid, notebooks)
        stripped[helper.name] = Stripped(f"{module}.{helper.name}", qid, replayed=False)
    edits.append(_import_edit(tree))
    edits += _module_docstring_edit(tree, lines)
    for first, end, replacement in sorted(edits, key=lambda edit: (edit[0], edit[1]), reverse=True):
        lines[first:end] = replacement
    result = "".join(lines)
    try:
        ast.parse(result)
    except SyntaxError as error:
        raise ValueError(f"{module}: leaving out the answers left invalid Python at line {error.lineno} "
                         f"({error.msg}): check the answer markers there") from None
    return result, sorted(stripped.values(), key=lambda s: s.key)


def _enclosing(tree: ast.AST, line: int) -> list:
    """The chain of classes and functions around `line`, outermost first."""
    chain, node = [], tree
    while True:
        inner = [child for child in ast.iter_child_nodes(node)
                 if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                 and child.lineno <= line <= child.end_lineno]
        if not inner:
            return chain if chain and not isinstance(chain[-1], ast.ClassDef) else []
        node = inner[0]
        chain.append(node)


def _raise_line(name: str, qid: str, notebooks: dict[str, str]) -> str:
    return f"raise _replay.homework_error({name!r}, {qid!r}, {notebooks[homework_number(qid)]!r})\n"


def _body_start(function: ast.FunctionDef) -> int:
    """0-based index of the line after the docstring (of the first body line without one)."""
    first = function.body[0]
    if _is_docstring(first):
        return first.end_lineno
    return first.lineno - 1


def _docstring_edit(function, lines: list[str], qid: str, notebooks: dict[str, str]
                    ) -> list[tuple[int, int, list[str]]]:
    """Replace the docstring, which often states the answer (a formula, the approach), with
    a pointer to the homework."""
    first = function.body[0]
    if not _is_docstring(first):
        return []
    number, question = qid.split(".")
    text = f"Homework {number} {question} ({notebooks[number]}); the full edition documents and implements it."
    return [(first.lineno - 1, first.end_lineno, [f'{_body_indent(function, lines)}"""{text}"""\n'])]


def _module_docstring_edit(tree: ast.Module, lines: list[str]) -> list[tuple[int, int, list[str]]]:
    """Keep the module docstring's first line: the rest may state an answer (a formula)."""
    if not tree.body or not _is_docstring(tree.body[0]):
        return []
    first = tree.body[0]
    summary = first.value.value.strip().splitlines()[0].replace("\\", "/").replace('"', "'")
    text = f"{summary} (Parts of this module are homework: the full edition documents it.)"
    return [(first.lineno - 1, first.end_lineno, [f'"""{text}"""\n'])]


def _is_docstring(statement: ast.stmt) -> bool:
    return isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant) \
        and isinstance(statement.value.value, str)


def _body_indent(function: ast.FunctionDef, lines: list[str]) -> str:
    return re.match(r"\s*", lines[function.body[0].lineno - 1]).group(0)


def _replay_prefix(function, lines: list[str], key: str, qid: str, begin: int) -> tuple[int, int, list[str]]:
    """Insert, before the body (and before the region opening at `begin`): return the
    stored result for these arguments, if any."""
    indent = _body_indent(function, lines)
    start = min(_body_start(function), begin)
    return (start, start, [
        f"{indent}_stored = _replay.stored_result({qid!r}, {key!r}, locals())\n",
        f"{indent}if _stored is not _replay.MISSING:\n",
        f"{indent}    return _stored\n",
    ])


def _body_edit(function, lines: list[str], error: str) -> tuple[int, int, list[str]]:
    """Replace the body after the docstring with `error`."""
    indent = _body_indent(function, lines)
    start = _body_start(function)
    return (start, function.end_lineno, [indent + error])


def _answer_only_helpers(tree: ast.Module, regions: list[AnswerRegion], elsewhere: set[str]
                         ) -> list[tuple[ast.FunctionDef, str]]:
    """Private module-level functions that only answer code uses (the regions, and helpers
    that are themselves answer-only), each with the question of the first region that needs
    it. `elsewhere`: the names the package's other modules use; those are kept."""
    spans = [(r.first_line, r.last_line, r.qid) for r in regions]
    helpers = {node.name: node for node in tree.body
               if isinstance(node, ast.FunctionDef) and node.name.startswith("_")
               and not any(node.lineno <= first <= node.end_lineno for first, _, _ in spans)
               and node.name not in elsewhere}
    found: dict[str, str] = {}
    while True:
        new = _used_only_inside(tree, helpers, spans, found)
        if not new:
            return [(helpers[name], qid) for name, qid in found.items()]
        found.update(new)
        spans += [(helpers[name].lineno, helpers[name].end_lineno, qid) for name, qid in new.items()]


def _used_only_inside(tree, helpers: dict, spans: list, found: dict) -> dict[str, str]:
    """Helpers not yet `found` whose every use by name lies inside `spans`."""
    used_by: dict[str, str] = {}
    used_elsewhere: set[str] = set()
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Name) and node.id in helpers) or node.id in found:
            continue
        own = helpers[node.id]
        if own.lineno <= node.lineno <= own.end_lineno:
            continue
        qid = next((q for first, last, q in spans if first <= node.lineno <= last), None)
        if qid is None:
            used_elsewhere.add(node.id)
        else:
            used_by.setdefault(node.id, qid)
    return {name: qid for name, qid in used_by.items() if name not in used_elsewhere}


def _import_edit(tree: ast.Module) -> tuple[int, int, list[str]]:
    """Import course_lib.replay before the module's first ordinary import."""
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)) and getattr(node, "module", None) != "__future__":
            return (node.lineno - 1, node.lineno - 1, [_IMPORT])
    raise ValueError("a module with answer regions and no import statement; import something first")
