"""Run in a subprocess whose PYTHONPATH puts an installed student edition first (tests/test_release.py).

    python student_edition_runner.py NOTEBOOK solved|blank   -> JSON {cell name: error or null}
    python student_edition_runner.py NOTEBOOK ZOO_FILE ...  -> JSON {zoo file: {cell name: error or null}}
    python student_edition_runner.py --call-stripped KEY ...   -> JSON {key: the error each raised}

Each prints one JSON line: {"course_lib": the package imported, "result": ..., "missed": the
stored-result lookups that found nothing (course_lib.replay.MISSED)}.

solved: the solution notebook's code with the hidden tests taken out (the released notebook
with the reference answers pasted in); blank: the released notebook's code as it is; a zoo
file (tests/homework_zoo/): the solved notebook with that file's answer cells instead.
"""

import importlib
import inspect
import json
import os
import sys
from pathlib import Path

import torch

import course_lib
from course_lib.autograde.expected import visible_code


def run_cells(notebook: Path, answers: dict[str, str] | None = None) -> dict:
    """Run the visible code of `notebook` in order, with `answers` (grade_id -> source) in place
    of those cells; the error each cell raised, or None."""
    cells = [(name, (answers or {}).get(name, code)) for name, code in visible_code(notebook)]
    os.chdir(notebook.parent)
    namespace = {"__name__": "__main__"}
    errors = {}
    for name, code in cells:
        try:
            exec(compile(code, name, "exec"), namespace)  # noqa: S102 - the course's own notebooks
            errors[name] = None
        except BaseException as error:  # noqa: BLE001 - every outcome is reported
            errors[name] = f"{type(error).__name__}: {error}"[:500]
    return errors


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
    if sys.argv[1] == "--call-stripped":
        result = call_stripped(sys.argv[2:])
    elif sys.argv[2] in ("solved", "blank"):
        result = run_cells(Path(sys.argv[1]))
    else:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from homework_zoo import load_entry

        result = {zoo: run_cells(Path(sys.argv[1]), load_entry(Path(zoo)).cells) for zoo in sys.argv[2:]}
    from course_lib import replay

    print(json.dumps({"course_lib": course_lib.__file__, "result": result, "missed": replay.MISSED}))
