"""The forbidden-API guard: a student's function may not call the reference or the torch
routine that would make the exercise trivial.

`forbid(targets)` is a context manager that watches every Python and C function call made
while it is active (`sys.setprofile`), so it catches a forbidden function however it was
imported or renamed (`from torch.nn.functional import batch_norm as bn`). A call is
recorded even if the student's code catches the exception it raises, and the checker
fails afterwards with a message naming the function.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from dataclasses import dataclass, field

import torch

AUTOGRAD = [torch.autograd.backward, torch.autograd.grad, torch.Tensor.backward]


class ForbiddenCallError(AssertionError):
    """The student's function called a function the exercise forbids."""


@dataclass
class _Watch:
    python_codes: dict = field(default_factory=dict)   # code object -> display name
    builtins: dict = field(default_factory=dict)       # id(builtin) -> display name
    seen: list = field(default_factory=list)


def _display_name(target) -> str:
    name = getattr(target, "__name__", repr(target))
    module = getattr(target, "__module__", None)
    if module is None or "_VariableFunctions" in getattr(target, "__qualname__", ""):
        return f"torch.{name}"  # a torch builtin such as torch.conv2d
    return f"{module}.{name}"


def _watch_for(targets) -> _Watch:
    watch = _Watch()
    for target in targets:
        code = getattr(target, "__code__", None)
        if code is None:
            code = getattr(getattr(target, "__wrapped__", None), "__code__", None)
        if code is not None:
            watch.python_codes[code] = _display_name(target)
        else:
            watch.builtins[id(target)] = _display_name(target)
    return watch


@contextlib.contextmanager
def forbid(targets, exercise: str):
    """While active, a call to any of `targets` (Python functions or torch builtins) is
    refused: it raises ForbiddenCallError at the call, and again on exit even if the
    student's code swallowed the first one."""
    watch = _watch_for(targets)
    previous = sys.getprofile()
    owner = threading.get_ident()

    def profile(frame, event, arg):
        if threading.get_ident() != owner:
            return
        if event == "call" and frame.f_code in watch.python_codes:
            name = watch.python_codes[frame.f_code]
        elif event == "c_call" and id(arg) in watch.builtins:
            name = watch.builtins[id(arg)]
        else:
            return
        watch.seen.append(name)
        sys.setprofile(None)  # raise from outside the profiler
        try:
            raise ForbiddenCallError(_message(name, exercise))
        finally:
            sys.setprofile(profile)

    sys.setprofile(profile)
    try:
        yield watch
    finally:
        sys.setprofile(previous)
    if watch.seen:
        raise ForbiddenCallError(_message(watch.seen[0], exercise))


def _message(name: str, exercise: str) -> str:
    return (
        f"your {exercise} calls {name}, which this exercise asks you to write yourself; "
        "implement it with basic tensor operations (indexing, sums, products) instead"
    )
