"""The interface every executor implements, and the bounded window they share.

An executor is used as a context manager for one `course grade` run:

    with executor:
        executor.describe()                      # one line for the log: where and how code runs
        for ran in executor.run(prepared, count):  # `prepared` is drawn lazily (sanitized as sent)
            ...                                  # a `Ran` as each submission finishes, in any order

It never touches the gradebook: scoring and recording stay in the pipeline.
"""

from __future__ import annotations

from typing import Callable, Iterable, Iterator, Protocol, TypeVar

from course_lib.autograde.submission import Prepared, Ran

Item = TypeVar("Item")
Future = TypeVar("Future")


class Executor(Protocol):
    def describe(self) -> str:
        """Where and how submissions run (the sandbox, the cluster), for the log."""

    def run(self, submissions: Iterator[Prepared], count: int) -> Iterator[Ran]:
        """Run `count` submissions; yield each as it finishes. Closing the iterator early
        ends the submissions still running."""

    def __enter__(self) -> Executor: ...

    def __exit__(self, *exc) -> None: ...


def windowed(items: Iterator[Item], submit: Callable[[Item], Future],
             first_done: Callable[[list[Future]], Iterable[Future]],
             window: Callable[[], int]) -> Iterator[tuple[Item, Future]]:
    """Keep `window()` items in flight: `submit(item)` starts one and returns its future,
    `first_done(futures)` blocks until some finish and returns them. Items are drawn (and so
    sanitized) only as they are sent; yields (item, finished future), each finished item
    before the next one is drawn."""
    running = {}
    while True:
        while len(running) < window():
            item = next(items, None)
            if item is None:
                break
            running[submit(item)] = item
        if not running:
            return
        for future in first_done(list(running)):
            yield running.pop(future), future
