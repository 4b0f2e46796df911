"""The core of every checker: run the student's function, compare with the reference,
and fail with a message that teaches.

A failure is an `AssertionError` that says which case failed (its inputs), by how much,
and what to look at. The student's function runs with warnings silenced and its stderr
sent to stdout, because nbgrader counts any text on stderr in a test cell as a failure.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import os
import sys
import warnings

import torch

from course_lib import replay
from course_lib.device import DEVICE_ENV, get_device, strict_numerics


class CheckFailure(AssertionError):
    """A checker's verdict: the student's answer differs from the reference."""


def grading_device() -> torch.device:
    """The device checks run on: `COURSE_DEVICE`, else cuda, mps or cpu. The student
    edition checks on the CPU unless `COURSE_DEVICE` is set: its stored reference results
    (`course_lib.replay`) were recorded there."""
    if replay.STORE.is_dir() and not os.environ.get(DEVICE_ENV):
        return torch.device("cpu")
    return get_device()


def grading_dtype(device: torch.device) -> torch.dtype:
    """float64 wherever it exists (MPS has no float64)."""
    return torch.float32 if device.type == "mps" else torch.float64


@contextlib.contextmanager
def quiet_and_strict():
    """No warnings, no stderr, no TF32: what every checker wraps around the student's code."""
    with warnings.catch_warnings(), contextlib.redirect_stderr(sys.stdout), strict_numerics():
        warnings.simplefilter("ignore")
        yield


@contextlib.contextmanager
def one_thread():
    """Run tiny models on one intra-op thread (restored afterwards): on a busy 2-core grader two
    threads made small convolutions many times slower (hw4's synthesis: 2.3 s of CPU instead of 0.16 s)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def reproducible(check):
    """`check` with the global CPU RNG (only: CUDA's is left alone) seeded from its `seed`
    argument, and restored after.

    Modules a checker builds (`nn.Linear(...)`) draw their initial weights from the global
    RNG; seeding it makes every check depend on its seed alone, not on what the notebook ran
    before, and the student's own draws after the check are unchanged. The student edition
    needs this: it looks the reference's results up by the exact inputs (`course_lib.replay`).
    """
    signature = inspect.signature(check)

    @functools.wraps(check)
    def seeded(*args, **kwargs):
        seed = int(replay.bound_arguments(signature, args, kwargs).get("seed", 0))
        missed = len(replay.MISSED)
        with torch.random.fork_rng(devices=[]):
            torch.default_generator.manual_seed(GLOBAL_SEED_OFFSET + seed)
            try:
                return check(*args, **kwargs)
            except (AssertionError, NotImplementedError) as error:  # a failed case, or a reference not stored
                if len(replay.MISSED) == missed or not _caused_by_homework_answer(error):
                    raise
        print(deferred_message(check.__name__, replay.MISSED[-1]))
        return None

    return seeded


def _caused_by_homework_answer(error: BaseException | None) -> bool:
    """Whether `error` is, or was raised while handling, a left-out function's homework error
    (call_student re-raises a student's exception `from None`, which keeps its context)."""
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, replay.HomeworkAnswer):
            return True
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return False


def deferred_message(check: str, key: str) -> str:
    """What a visible check says in the student edition when it needed the reference's result
    for inputs that only the student's own results produced (a stored result is keyed by the
    visible tests' inputs)."""
    return (f"{check}: the cases before this point passed. The rest compares your results with the "
            f"reference's ({key.rsplit('.', 1)[-1]}) on inputs your own code produced, which only the "
            "grader's full edition can compute: it runs when your notebook is graded.")


GLOBAL_SEED_OFFSET = 1_000_003


def call_student(fn, args, case: str, name: str):
    """Call the student's function; an exception becomes a failure naming the case."""
    if not callable(fn):
        raise CheckFailure(f"{name} is not a function (got {type(fn).__name__}); run the cell that defines it")
    try:
        return fn(*args)
    except AssertionError:
        raise
    except NotImplementedError as error:
        detail = str(error) or "its cell still raises NotImplementedError"
        raise CheckFailure(f"{name} is not implemented yet ({detail})") from None
    except Exception as error:  # noqa: BLE001 - the student's bug, reported as a failed case
        raise CheckFailure(f"case {case}: {name} raised {type(error).__name__}: {error}") from None


def random_tensor(generator: torch.Generator, *shape, device=None, dtype=None):
    """Standard-normal values drawn on the CPU (the same on every device), then moved."""
    device = device or grading_device()
    values = torch.randn(*shape, generator=generator, dtype=torch.float64)
    return values.to(device=device, dtype=dtype or grading_dtype(device))


def expect_equal(actual, expected, case: str, what: str, hint: str = ""):
    """Exact equality for ints, tuples and other plain values."""
    if actual != expected:
        raise CheckFailure(f"case {case}: {what} should be {expected!r}, got {actual!r}. {hint}".rstrip())


def expect_close(actual, expected: torch.Tensor, case: str, what: str, hint: str = "", atol=1e-6, rtol=1e-5):
    """Tensors equal within tolerance, with the shape, dtype and worst error reported."""
    if not isinstance(actual, torch.Tensor):
        raise CheckFailure(f"case {case}: {what} should be a torch.Tensor, got {type(actual).__name__}")
    if tuple(actual.shape) != tuple(expected.shape):
        raise CheckFailure(
            f"case {case}: {what} should have shape {tuple(expected.shape)}, got {tuple(actual.shape)}. {hint}".rstrip()
        )
    actual = actual.detach().to(device=expected.device, dtype=expected.dtype)
    difference = (actual - expected).abs()
    allowed = atol + rtol * expected.abs()
    if not bool(torch.all(difference <= allowed)) or bool(torch.isnan(actual).any()):
        worst = int(torch.nan_to_num(difference - allowed, nan=float("inf")).argmax())
        index = tuple(int(i) for i in torch.unravel_index(torch.tensor(worst), expected.shape))
        largest = float(torch.nan_to_num(difference, nan=float("inf")).max())
        raise CheckFailure(
            f"case {case}: {what} differs from the reference by up to {largest:.3g} "
            f"(allowed {atol:g} + {rtol:g} x |value|); first bad entry at index {index}: "
            f"yours {float(actual[index]):.6g}, expected {float(expected[index]):.6g}. {hint}".rstrip()
        )
