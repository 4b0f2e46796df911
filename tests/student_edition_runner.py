"""Run in a subprocess whose PYTHONPATH puts an installed student edition first (tests/test_release.py).

    python student_edition_runner.py NOTEBOOK blank            -> JSON {cell name: error or null}
    python student_edition_runner.py NOTEBOOK solved ZOO ...   -> JSON {"solved": {cell name: error or null},
                                                                        "answers": {zoo file: {cell name: ...}}}
    python student_edition_runner.py --call-stripped KEY ...   -> JSON {key: the error each raised}

Each prints one JSON line: {"course_lib": the package imported, "result": ..., "missed": the
stored-result lookups that found nothing (course_lib.replay.MISSED; for `solved`, those of the
solved run alone)}.

solved: the solution notebook's code with the hidden tests taken out (the released notebook
with the reference answers pasted in); blank: the released notebook's code as it is; a zoo
file (tests/homework_zoo/): the solved notebook with that file's answer cells instead. A zoo
file's run starts from the state the solved run left and reruns, in order, its cells and every
cell that reads a name they bind (tests/homework_zoo.py's `downstream`); every other cell's
outcome is the solved run's.
"""

import importlib
import inspect
import json
import os
import sys
from pathlib import Path

import torch

import course_lib
from course_lib import replay
from course_lib.autograde.expected import visible_code


def run_cells(cells: list[tuple[str, str]], namespace: dict) -> dict:
    """Run the (name, code) cells in order in `namespace`; the error each cell raised, or None."""
    errors = {}
    for name, code in cells:
        try:
            exec(compile(code, name, "exec"), namespace)  # noqa: S102 - the course's own notebooks
            errors[name] = None
        except BaseException as error:  # noqa: BLE001 - every outcome is reported
            errors[name] = f"{type(error).__name__}: {error}"[:500]
    return errors


def run_answers(cells: list[tuple[str, str]], zoo_files: list[str]) -> tuple[dict, list[str]]:
    """The solved run's errors and each zoo file's, as the module docstring says; and the
    stored-result lookups the solved run missed."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from homework_zoo import downstream, load_entry, private_copy

    namespace = {"__name__": "__main__"}
    solved = run_cells(cells, namespace)
    missed = list(replay.MISSED)
    answers = {}
    for zoo in zoo_files:
        rerun, _ = downstream(cells, load_entry(Path(zoo)).cells)
        answers[zoo] = {**solved, **run_cells(rerun, private_copy(namespace))}
    return {"solved": solved, "answers": answers}, missed


def call_stripped(calls: list[str]) -> dict:
    """Call each "KEY::ARGUMENTS" (a Python argument list, or empty: None for every
    parameter) and report what it raised: the homework error, for a left-out function."""
    raised = {}
    for call in calls:
        key, _, given = call.partition("::")
        parts = key.split(".")
        for split in range(len(parts) - 1, 0, -1):
            try:
                owner = importlib.import_module(".".join(parts[:split]))
                break
            except ImportError:
                continue
        for name in parts[split:]:
            owner = getattr(owner, name)
        parameters = inspect.signature(owner).parameters.values()
        arguments = {p.name: None for p in parameters if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
        try:
            if given:
                eval(f"owner({given})", {"owner": owner, "torch": torch})  # noqa: S307 - the test's own arguments
            else:
                owner(**arguments)
            raised[key] = None
        except BaseException as error:  # noqa: BLE001 - every outcome is reported
            raised[key] = f"{type(error).__name__}: {error}"
    return raised


if __name__ == "__main__":
    print("course_lib:", course_lib.__file__, file=sys.stderr)
    missed = replay.MISSED
    if sys.argv[1] == "--call-stripped":
        result = call_stripped(sys.argv[2:])
    else:
        notebook = Path(sys.argv[1])
        os.chdir(notebook.parent)
        if sys.argv[2] == "blank":
            result = run_cells(visible_code(notebook), {"__name__": "__main__"})
        else:
            result, missed = run_answers(visible_code(notebook), sys.argv[3:])
    print(json.dumps({"course_lib": course_lib.__file__, "result": result, "missed": missed}))
