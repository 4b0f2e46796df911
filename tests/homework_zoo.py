"""Run a homework's answers through its own graded test cells, without nbgrader.

The zoo in `tests/homework_zoo/<assignment>/` holds answers written as a student would: a
file replaces one or more answer cells of the solution notebook and says which graded test
cells it should lose:

    # expect: loses test_vgg_params        (a realistic wrong answer)
    # expect: full marks                   (a correct answer written differently)
    # %% vgg_params                        (the answer cell it replaces, by nbgrader grade_id)
    def vgg_params(config, in_channels=3, num_classes=1000):
        ...

`grade_answers` starts from the state the solution notebook's cells leave (computed once per
assignment), reruns in order each replaced answer cell and every cell that reads a name a
rerun cell binds in the notebook's namespace (`downstream`; `_names`: a function's locals are
its own), then every graded test cell (visible and hidden tests alike) that reads such a
name, and returns which test cells passed. The other test cells would run exactly as for the
solution, which `test_the_solution_passes_every_test_cell` grades. `record_calls` wraps
every function an answer cell defines so a test can see which arguments the checkers tried.
"""

from __future__ import annotations

import ast
import contextlib
import copy
import functools
import inspect
import io
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
ZOO = Path(__file__).resolve().parent / "homework_zoo"
ASSIGNMENTS = ["hw1_cnn_arithmetic", "hw2_bn_dropout_init", "hw3_augment_transfer", "hw4_visualize"]


@dataclass
class ZooEntry:
    """One zoo file: the answer cells it replaces and the test cells it should lose."""

    path: Path
    cells: dict[str, str]  # grade_id of an answer cell -> its replacement source
    loses: set[str]  # grade_ids of the test cells it should fail; empty for a correct answer


@dataclass
class Graded:
    """What a run of the test cells gave: grade_id -> passed, and the failure messages."""

    passed: dict[str, bool] = field(default_factory=dict)
    messages: dict[str, str] = field(default_factory=dict)
    unaffected: set[str] = field(default_factory=set)  # test cells no replaced name can reach

    @property
    def lost(self) -> set[str]:
        return {cell for cell, ok in self.passed.items() if not ok}


def notebook_cells(assignment: str) -> list[nbformat.NotebookNode]:
    """The code cells of the solution notebook, in order."""
    notebook = nbformat.read(ROOT / "solutions" / assignment / f"{assignment}.ipynb", as_version=4)
    return [cell for cell in notebook.cells if cell.cell_type == "code"]


def _nbgrader(cell) -> dict:
    return cell.metadata.get("nbgrader", {})


def graded_cell_ids(assignment: str) -> list[str]:
    """grade_ids of the autograded test cells."""
    return [_nbgrader(c)["grade_id"] for c in notebook_cells(assignment) if _nbgrader(c).get("grade")
            and not _nbgrader(c).get("solution")]


def answer_cell_ids(assignment: str) -> list[str]:
    """grade_ids of the code answer cells."""
    return [_nbgrader(c)["grade_id"] for c in notebook_cells(assignment) if _nbgrader(c).get("solution")]


def load_entry(path: Path) -> ZooEntry:
    """Parse a zoo file (format in the module docstring)."""
    text = path.read_text()
    expect = re.search(r"^# expect: (full marks|loses (.+))$", text, re.M)
    if not expect:
        raise ValueError(f"{path}: needs a line '# expect: full marks' or '# expect: loses <test grade_id> ...'")
    loses = set(expect.group(2).split()) if expect.group(2) else set()
    sections = re.split(r"^# %% (\S+)\s*$", text, flags=re.M)
    cells = {sections[i]: sections[i + 1] for i in range(1, len(sections), 2)}
    if not cells:
        raise ValueError(f"{path}: no '# %% <answer grade_id>' section")
    return ZooEntry(path, cells, loses)


def zoo_entries(assignment: str) -> list[ZooEntry]:
    return [load_entry(path) for path in sorted((ZOO / assignment).glob("*.py"))]


def _root_name(node: ast.expr) -> str:
    """"model" for model.fc.weight[0]; "" where the object is not a name (f().x)."""
    while isinstance(node, (ast.Attribute, ast.Subscript)):
        node = node.value
    return node.id if isinstance(node, ast.Name) else ""


_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)


def _binds(statement: ast.stmt, mutated: bool = True) -> set[str]:
    """The names one top-level statement binds in the notebook's namespace. A name assigned
    inside a function, class or lambda body is that body's own (a local); everything else errs
    on the side of binding: a deleted name, a loop or comprehension variable, an `except ... as`
    name, and (`mutated`) an object whose attribute or item is assigned, which changes but
    stays where it was (inside a function: a global)."""
    bound, pending = set(), [statement]
    while pending:
        node = pending.pop()
        if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            bound.add(node.id)
        elif mutated and isinstance(node, (ast.Attribute, ast.Subscript)) and not isinstance(node.ctx, ast.Load):
            bound.add(_root_name(node))  # x.weight = ..., x[i] = ...: x changes
        elif isinstance(node, ast.alias):
            bound.add((node.asname or node.name).split(".")[0])
        elif isinstance(node, ast.ExceptHandler) and node.name:
            bound.add(node.name)
        if isinstance(node, _SCOPES):  # its decorators, defaults and bases only read
            bound |= {node.name} if not isinstance(node, ast.Lambda) else set()
        else:
            pending += ast.iter_child_nodes(node)
    return bound - {""}


def _loads(node: ast.AST, local: frozenset = frozenset()) -> set[str]:
    """The names `node` loads, less the locals of the functions and lambdas they sit in: their
    parameters and the names their bodies bind (not those they declare `global`)."""
    if isinstance(node, ast.Name):
        return {node.id} - local if isinstance(node.ctx, ast.Load) else set()
    if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
        return set().union(*(_loads(child, local) for child in ast.iter_child_nodes(node)))
    arguments = node.args
    outside = [*arguments.defaults, *filter(None, arguments.kw_defaults), *getattr(node, "decorator_list", [])]
    body = node.body if isinstance(node.body, list) else [node.body]
    declared = {name for statement in body for n in ast.walk(statement) if isinstance(n, ast.Global)
                for name in n.names}
    parameters = [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs, arguments.vararg, arguments.kwarg]
    assigned = set().union(*(_binds(statement, mutated=False) for statement in body))
    inner = local | {a.arg for a in parameters if a} | (assigned - declared)
    return set().union(*(_loads(n, local) for n in outside), *(_loads(statement, inner) for statement in body))


def _names(source: str) -> tuple[set[str], set[str]]:
    """(names a cell binds in the notebook's namespace, names whose value before the cell it
    may read), from its syntax tree. A statement reads every name it loads, anywhere in it,
    except a function's own locals (`_loads`) and the names an earlier statement of the cell
    bound (`model = f()` then `model(x)` does not read the notebook's `model`); a function may
    bind a name it declares `global`."""
    tree = ast.parse(source)
    bound, read = set(), set()
    for statement in tree.body:
        read |= _loads(statement) - bound
        bound |= _binds(statement)
    return bound | {name for node in ast.walk(tree) if isinstance(node, ast.Global) for name in node.names}, read


def _run(source: str, namespace: dict) -> str | None:
    """Execute a cell; None if it ran, else the error as one line."""
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            exec(compile(source, "<cell>", "exec"), namespace)  # noqa: S102 - the homework's own cells
    except Exception as error:  # noqa: BLE001 - a failed cell is an outcome, whatever it raised
        return f"{type(error).__name__}: {error}"
    return None


def _is_test(cell) -> bool:
    return bool(_nbgrader(cell).get("grade")) and not _nbgrader(cell).get("solution")


@functools.cache
def _solution_state(assignment: str) -> dict:
    """The namespace after the solution notebook's setup and answer cells (no test cell)."""
    namespace: dict = {"__name__": "__main__"}
    for cell in notebook_cells(assignment):
        if not _is_test(cell) and (error := _run(cell.source, namespace)):
            raise RuntimeError(f"{assignment}: the solution's cell {_nbgrader(cell).get('grade_id')} failed: {error}")
    return namespace


def private_copy(namespace: dict) -> dict:
    """A deep copy where one can be made (tensors, models), so no run changes the next one's state."""
    copied = {}
    for name, value in namespace.items():
        try:
            copied[name] = copy.deepcopy(value)
        except Exception:  # noqa: BLE001 - modules, generators and the like are shared as they are
            copied[name] = value
    return copied


def _run_tests(tests, namespace: dict, graded: Graded, reached=None) -> Graded:
    """Run the test cells (those whose names `reached` says could change, if given)."""
    for cell in tests:
        grade_id = _nbgrader(cell)["grade_id"]
        if reached is not None and not _names(cell.source)[1] & reached:
            graded.unaffected.add(grade_id)
            continue
        error = _run(cell.source, namespace)
        graded.passed[grade_id] = error is None
        if error:
            graded.messages[grade_id] = error
    return graded


def grade_answers(assignment: str, replacements: dict[str, str] | None = None, wrap=None) -> Graded:
    """Run the solution notebook with `replacements` swapped in, then grade the test cells.

    Without replacements every cell runs in order, and `wrap(namespace, defined)` is called
    after each answer cell with the names it defined. With replacements the run starts from
    the solution's state and reruns, in order, the replaced cells and every cell that reads a
    name they (or a cell rerun before it) bind.
    """
    replacements = replacements or {}
    unknown = set(replacements) - set(answer_cell_ids(assignment))
    if unknown:
        raise ValueError(f"{assignment} has no answer cells {sorted(unknown)}; they are {answer_cell_ids(assignment)}")
    cells = notebook_cells(assignment)
    tests = [cell for cell in cells if _is_test(cell)]
    if not replacements:
        namespace: dict = {"__name__": "__main__"}
        for cell in cells:
            if _is_test(cell):
                continue
            before = set(namespace)
            if (error := _run(cell.source, namespace)) and not _nbgrader(cell).get("solution"):
                raise RuntimeError(f"{assignment}: a setup cell failed: {error}")
            if wrap and _nbgrader(cell).get("solution"):
                wrap(namespace, set(namespace) - before)
        return _run_tests(tests, namespace, Graded())
    namespace = private_copy(_solution_state(assignment))
    answers_and_setup = [(_nbgrader(c).get("grade_id"), c.source) for c in cells if not _is_test(c)]
    rerun, reached = downstream(answers_and_setup, replacements)
    for _, source in rerun:
        _run(source, namespace)
    return _run_tests(tests, namespace, Graded(), reached)


def downstream(cells: list[tuple[str, str]], replacements: dict[str, str]) -> tuple[list[tuple[str, str]], set[str]]:
    """The (name, source) cells, in order, that `replacements` (name -> new source) can change:
    each replaced cell, as replaced, and every cell that reads a name a cell before it in this
    list binds; and the names they bind. Names are read from the syntax (`_names`), so the
    list errs on the side of rerunning."""
    rerun, reached = [], set()
    for name, source in cells:
        source = replacements.get(name, source)
        bound, read = _names(source)
        if name in replacements or read & reached:
            reached |= bound
            rerun.append((name, source))
    return rerun, reached


def _summary(value):
    """A hashable summary of an argument: tensors by shape and dtype, the rest by repr."""
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        return ("tensor", tuple(value.shape), str(value.dtype))
    return repr(value)


def record_calls(calls: dict):
    """A `wrap` for `grade_answers` that records every call of the answers' functions and
    classes: calls[(name, parameter)] is the set of argument summaries seen."""

    def recorded(name, fn, signature):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            for parameter, value in bound.arguments.items():
                if parameter != "self":
                    calls[(name, parameter)].add(_summary(value))
            return fn(*args, **kwargs)
        return wrapper

    def wrap(namespace, defined):
        for name in defined:
            value = namespace[name]
            if inspect.isclass(value) and value.__module__ == "__main__":
                init = value.__init__
                value.__init__ = recorded(name, init, inspect.signature(init))
            elif inspect.isfunction(value) and value.__module__ == "__main__":
                namespace[name] = recorded(name, value, inspect.signature(value))
    return wrap


def new_calls() -> dict:
    return defaultdict(set)
