"""Run one notebook's cells in this (forked, sandboxed) process and stream each cell's
outputs, as nbformat output dicts, to the worker that forked it.

This module runs student code. It never scores anything: the grading process reads the
outputs and scores them with nbgrader's own rules. Before every test cell the state the
checks rely on is put back as it was when the worker started (`Pristine`): the module
dicts of `course_lib`, `torch`, `numpy` and the standard modules the checks use, the
builtins, `sys.exit`/`os._exit`, the display and exception hooks, the code of every
`course_lib` function, and the names that the instructor's own cells bound (the imported
checkers). A student cell that calls `sys.exit()` or `os._exit()` only ends that cell.
"""

from __future__ import annotations

import ast
import builtins
import linecache
import os
import signal
import sys
import traceback
import types

from course_lib.autograde.protocol import Cell, CellOutput, CellStart, Done, send_frame

# Modules whose dicts are restored before each test cell (exact names or prefixes + ".").
PROTECTED = ("course_lib", "torch", "numpy", "math", "random", "builtins", "sys", "os", "posix", "signal",
             "io", "warnings", "traceback", "types", "functools", "operator", "itertools", "collections")
PROTECTED_DEEP = ("course_lib", "torch.testing", "torch.nn", "torch.autograd", "torch.linalg", "torch.random",
                  "numpy.testing", "numpy.random", "numpy.linalg")


class CellTimeout(BaseException):
    """Raised in a cell that ran longer than the per-cell limit."""


class _Exit(BaseException):
    """What `os._exit` raises inside a student cell: the cell ends, the grading goes on."""


def _protected(name: str) -> bool:
    return name in PROTECTED or any(name == p or name.startswith(p + ".") for p in PROTECTED_DEEP)


class Pristine:
    """A snapshot of the state the checks rely on, taken once in the warm worker."""

    def __init__(self):
        self.modules = {}
        self.classes = []
        self.functions = []
        for name, module in list(sys.modules.items()):
            if module is None or not _protected(name):
                continue
            self.modules[name] = (module, dict(module.__dict__))
            for value in list(module.__dict__.values()):
                if isinstance(value, type) and getattr(value, "__module__", "").startswith(("course_lib", "torch")):
                    self.classes.append((value, dict(vars(value))))
                if name.startswith("course_lib") and isinstance(value, types.FunctionType):
                    self.functions.append((value, value.__code__, value.__defaults__, value.__kwdefaults__))
        try:
            import torch
            for cls in (torch.Tensor, torch._C.TensorBase, torch.nn.Module):
                self.classes.append((cls, dict(vars(cls))))
        except Exception:  # noqa: BLE001 - torch is optional here; a broken torch must not stop the worker
            pass

    def restore(self) -> None:
        for name, (module, snapshot) in self.modules.items():
            sys.modules[name] = module
            current = module.__dict__
            for key in [k for k, v in current.items() if k not in snapshot and not isinstance(v, types.ModuleType)]:
                del current[key]  # added by student code (a submodule imported since is kept)
            for key, value in snapshot.items():
                if current.get(key, _MISSING) is not value:
                    current[key] = value
        for cls, snapshot in self.classes:
            current = vars(cls)
            for key in [k for k in current if k not in snapshot]:
                try:
                    delattr(cls, key)
                except (AttributeError, TypeError):
                    pass
            for key, value in snapshot.items():
                if current.get(key, _MISSING) is not value:
                    try:
                        setattr(cls, key, value)
                    except (AttributeError, TypeError):
                        pass
        for function, code, defaults, kwdefaults in self.functions:
            if function.__code__ is not code:
                function.__code__ = code
            function.__defaults__, function.__kwdefaults__ = defaults, kwdefaults


_MISSING = object()


class _Capture:
    """A text stream that turns writes into nbformat stream outputs, up to a byte budget."""

    def __init__(self, name: str, cell: _CellOutputs):
        self.name, self.cell = name, cell
        self.encoding, self.errors = "utf-8", "replace"

    def write(self, text) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        self.cell.stream(self.name, text)
        return len(text)

    def writelines(self, lines) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        raise OSError("output is captured by the grader; there is no file descriptor")

    @property
    def closed(self) -> bool:
        return False


class _CellOutputs:
    def __init__(self, budget: list):
        self.outputs, self.budget, self.truncated = [], budget, False

    def stream(self, name: str, text: str) -> None:
        if self.budget[0] <= 0:
            self.truncated = True
            return
        if len(text) > self.budget[0]:
            text, self.truncated = text[: self.budget[0]], True
        self.budget[0] -= len(text)
        if self.outputs and self.outputs[-1]["output_type"] == "stream" and self.outputs[-1]["name"] == name:
            self.outputs[-1]["text"] += text
        else:
            self.outputs.append({"output_type": "stream", "name": name, "text": text})

    def finish(self) -> list:
        if self.truncated:
            self.outputs.append({"output_type": "stream", "name": "stdout",
                                 "text": "\n[output truncated by the grader: the output limit was reached]\n"})
        return self.outputs


def _error_output(error: BaseException, filename_prefix: str) -> dict:
    tb = error.__traceback__
    while tb is not None and not tb.tb_frame.f_code.co_filename.startswith(filename_prefix):
        tb = tb.tb_next  # drop the grader's own frames
    lines = traceback.format_exception(type(error), error, tb)
    return {"output_type": "error", "ename": type(error).__name__, "evalue": str(error),
            "traceback": [line.rstrip("\n") for line in lines]}


def _on_alarm(signum, frame):
    raise CellTimeout("this cell ran longer than the grader's time limit and was interrupted")


def _raise_exit(status=0):
    raise _Exit(f"os._exit({status}) called")


def _clean_up_processes(own_uid: bool) -> None:
    """After a cell: kill what it left running (as the sandbox's own uid, kill(-1) reaches
    exactly this uid's other processes) and reap them, so a fork bomb's zombies do not keep
    the process limit exhausted for the cells after it."""
    if own_uid and os.getuid() != 0:
        try:
            os.kill(-1, signal.SIGKILL)
        except OSError:
            pass
    reap_exited_children()


def reap_exited_children() -> None:
    """Collect every child that has exited, without waiting for the others."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def run_cells(cells: list[Cell], fd: int, pristine: Pristine, skip: dict[int, str], cell_timeout: float,
              output_cap: int, own_uid: bool = False) -> None:
    """Execute `cells` in one namespace and send, for each, a `CellStart` and a `CellOutput`
    with its outputs, then `Done`. Cells in `skip` are not run (an earlier run of this
    submission died in them) and get an error output with the reason."""
    namespace = {"__name__": "__main__", "__builtins__": builtins}
    instructor = {}
    budget = [output_cap]
    real_exit = os._exit
    me = os.getpid()
    count = 0
    for cell in cells:
        index, kind, source = cell.index, cell.kind, cell.source
        count += 1
        send_frame(fd, CellStart(index))
        if index in skip:
            send_frame(fd, CellOutput(index, count, [
                {"output_type": "error", "ename": "GraderStopped", "evalue": skip[index],
                 "traceback": [f"GraderStopped: {skip[index]}"]}]))
            continue
        if kind == "test":
            pristine.restore()
            namespace.update(instructor)
        outputs = _CellOutputs(budget)
        sys.stdout, sys.stderr = _Capture("stdout", outputs), _Capture("stderr", outputs)
        os._exit = real_exit if kind == "test" else _raise_exit
        filename = f"<cell-{index}>"
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
        signal.signal(signal.SIGALRM, _on_alarm)
        signal.setitimer(signal.ITIMER_REAL, cell_timeout)
        try:
            _run_source(source, filename, namespace, outputs)
        except BaseException as error:  # noqa: BLE001 - every failure of student code is an output
            signal.setitimer(signal.ITIMER_REAL, 0)
            outputs.outputs.append(_error_output(error, "<cell-"))
        finally:
            if os.getpid() != me:  # a process the student's code forked: it never reports
                real_exit(0)
            signal.setitimer(signal.ITIMER_REAL, 0)
            os._exit = real_exit
            sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__
        _clean_up_processes(own_uid)
        if kind in ("locked", "test"):
            instructor.update({k: v for k, v in namespace.items() if _is_instructor_binding(v)})
        send_frame(fd, CellOutput(index, count, outputs.finish()))
    send_frame(fd, Done())


def _is_instructor_binding(value) -> bool:
    if isinstance(value, types.ModuleType):
        return True
    module = getattr(value, "__module__", None)
    return isinstance(module, str) and (_protected(module) or module.split(".")[0] in ("course_lib", "torch", "numpy"))


def _run_source(source: str, filename: str, namespace: dict, outputs: _CellOutputs) -> None:
    tree = ast.parse(source, filename)
    last = None
    if tree.body and isinstance(tree.body[-1], ast.Expr):
        last = ast.Expression(tree.body.pop().value)
    exec(compile(tree, filename, "exec"), namespace)  # noqa: S102 - this is the notebook's own code
    if last is not None:
        value = eval(compile(last, filename, "eval"), namespace)
        if value is not None:
            outputs.outputs.append({"output_type": "execute_result", "execution_count": None, "metadata": {},
                                    "data": {"text/plain": repr(value)[:10000]}})
