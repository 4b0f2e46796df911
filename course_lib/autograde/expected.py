"""Record what the visible tests ask of the reference, for the student edition's store.

`course release` runs each solution notebook with its hidden tests removed, on the CPU,
with every function the student edition leaves out wrapped: each outermost call is stored
under its function and a digest of its arguments (`course_lib.replay.digest`, taken
before the call), with its result, the tensors it wrote in place, and the global RNG state
it left behind. The student edition's stripped functions look their arguments up in that
store (`course_lib.replay.stored_result`).

Run as `python -m course_lib.autograde.expected SOLUTION.ipynb STORE.pt KEY ...` so that the
wrapping never touches the instructor's own process.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import json
import os
import re
import sys
import threading
from pathlib import Path

_HIDDEN = re.compile(r"### BEGIN HIDDEN TESTS.*?### END HIDDEN TESTS\n?", re.DOTALL)
_SOLUTION_DELIMITERS = re.compile(r"^\s*### (BEGIN|END) SOLUTION\s*\n", re.MULTILINE)


def visible_code(notebook: Path) -> list[tuple[str, str]]:
    """(cell name, code) of every code cell, with the hidden tests taken out and the
    solution delimiters dropped: what a student runs once they have the right answers."""
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    code = []
    for index, cell in enumerate(cells):
        if cell["cell_type"] != "code":
            continue
        source = "".join(cell["source"])
        name = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id", f"cell {index}")
        code.append((name, _SOLUTION_DELIMITERS.sub("", _HIDDEN.sub("", source))))
    return code


class Recorder:
    """Wraps the functions named by `keys` ("course_lib.layers.conv2d_forward",
    "course_lib.arithmetic.ReceptiveField.box") and stores their outermost calls."""

    def __init__(self, keys: list[str]):
        self.entries: dict[str, dict] = {}
        self.skipped: dict[str, str] = {}
        self._depth = threading.local()
        import course_lib.grading  # noqa: F401 - every module that may hold a second name for a function
        import course_lib.visualize  # noqa: F401

        for key in keys:
            owner, name = _owner(key)
            original = getattr(owner, name)
            wrapped = self._wrap(key, original)
            setattr(owner, name, wrapped)
            _rebind(original, wrapped)

    def _wrap(self, key: str, function):
        signature = inspect.signature(function)

        @functools.wraps(function)
        def recorded(*args, **kwargs):
            depth = getattr(self._depth, "value", 0)
            if depth:
                return function(*args, **kwargs)
            self._depth.value = 1
            try:
                return self._call(key, function, signature, args, kwargs)
            finally:
                self._depth.value = 0

        return recorded

    def _call(self, key, function, signature, args, kwargs):
        import torch

        from course_lib import replay

        arguments = replay.bound_arguments(signature, args, kwargs)
        try:
            entry_key = f"{key}:{replay.digest(arguments)}"
        except Exception as error:  # noqa: BLE001 - a call the store cannot key is reported, not fatal
            self.skipped[key] = f"{type(error).__name__}: {error}"
            return function(*args, **kwargs)
        before = {name: _digest_or_none(value) for name, value in arguments.items()}
        rng_before = torch.get_rng_state()
        result = function(*args, **kwargs)
        entry = {"result": _storable(result)}
        written = {name: _state(arguments[name]) for name, digest in before.items()
                   if digest is not None and _digest_or_none(arguments[name]) != digest}
        if written:
            entry["written"] = written
            if _storable(written) is _UNSTORABLE:
                entry["result"] = _UNSTORABLE  # an in-place change the store cannot hold: not replayable
        rng_after = torch.get_rng_state()
        if not torch.equal(rng_before, rng_after):
            entry["rng"] = rng_after
        if entry["result"] is _UNSTORABLE:
            self.skipped[key] = f"returns a {type(result).__qualname__}, which the store cannot hold"
        else:
            self.entries[entry_key] = entry
        return result


_UNSTORABLE = object()


def _digest_or_none(value):
    """A digest of a tensor, dict, module or generator argument (what a call may change in place)."""
    import torch
    from torch import nn

    from course_lib import replay

    if isinstance(value, (torch.Tensor, dict, nn.Module, torch.Generator)):
        try:
            return replay.digest({"value": value})
        except Exception:  # noqa: BLE001 - what cannot be keyed is not replayed
            return None
    return None


def _state(value):
    """What replay.write_back needs to redo a call's in-place change of `value`."""
    import torch

    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu").clone()
    if isinstance(value, torch.Generator):
        return {"generator_state": value.get_state()}
    if isinstance(value, dict):
        return {"items": _storable(dict(value))}
    return {"state_dict": _storable(dict(value.state_dict())),
            "requires_grad": {name: p.requires_grad for name, p in value.named_parameters()},
            "training": {name: m.training for name, m in value.named_modules()}}


def _storable(value):
    """`value` with tensors detached on the CPU, or _UNSTORABLE if torch.load(weights_only=True)
    could not read it back."""
    import numpy as np
    import torch

    from course_lib.replay import RECORD, record_fields

    if isinstance(value, np.generic):
        value = value.item()  # a numpy scalar: weights_only loading refuses it
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu").clone()
    record = record_fields(value)
    if record is not None:
        fields = _storable(record)
        cls = type(value)
        return _UNSTORABLE if fields is _UNSTORABLE else {RECORD: f"{cls.__module__}:{cls.__qualname__}",
                                                          "fields": fields}
    if isinstance(value, np.ndarray):
        return _UNSTORABLE
    if isinstance(value, (list, tuple)):
        items = [_storable(item) for item in value]
        return _UNSTORABLE if any(item is _UNSTORABLE for item in items) else type(value)(items)
    if isinstance(value, dict) and all(isinstance(key, (str, int)) for key in value):
        items = {key: _storable(item) for key, item in value.items()}
        return _UNSTORABLE if any(item is _UNSTORABLE for item in items.values()) else items
    return _UNSTORABLE


def _rebind(original, wrapped) -> None:
    """Point every other name of `original` in course_lib's modules (a package's re-export:
    `course_lib.visualize.occlusion_map`) at `wrapped` too."""
    for module_name, module in list(sys.modules.items()):
        if module_name.startswith("course_lib") and module is not None:
            for attribute, value in list(vars(module).items()):
                if value is original:
                    setattr(module, attribute, wrapped)


def _owner(key: str):
    """("course_lib.arithmetic.ReceptiveField.box") -> (the ReceptiveField class, "box")."""
    parts = key.split(".")
    for split in range(len(parts) - 1, 0, -1):
        try:
            owner = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        for name in parts[split:-1]:
            owner = getattr(owner, name)
        return owner, parts[-1]
    raise ValueError(f"cannot find {key}")


def record(notebook: Path, keys: list[str]) -> tuple[dict, dict, list[str]]:
    """Run the visible code of `notebook` (in its folder, on the CPU) with `keys` recorded.
    Returns (entries, skipped functions -> why, cells that raised)."""
    os.environ["COURSE_DEVICE"] = "cpu"
    recorder = Recorder(keys)
    os.chdir(notebook.parent)
    namespace: dict = {"__name__": "__main__"}
    failed = []
    for name, code in visible_code(notebook):
        try:
            exec(compile(code, f"{notebook.name}:{name}", "exec"), namespace)  # noqa: S102 - the instructor's solution
        except Exception as error:  # noqa: BLE001 - reported, the release stops on it
            failed.append(f"{name}: {type(error).__name__}: {error}")
    return recorder.entries, recorder.skipped, failed


def main(argv: list[str]) -> int:
    import torch

    notebook, store, *keys = argv
    entries, skipped, failed = record(Path(notebook).resolve(), keys)
    torch.save(entries, store)
    print(json.dumps({"entries": len(entries), "skipped": skipped, "failed": failed}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
