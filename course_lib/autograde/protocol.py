"""The messages that pass between the grading process, the warm workers and the children
they fork, and how each is framed. Nothing else crosses these boundaries.

    grading process --SubmissionJob--> (Dask, pickled: only for --executor dask)
    grading process --Job------------> warm worker     one JSON line on its stdin, per notebook
    grading process <-Ready / Result-- warm worker     one JSON line each on its stdout
    warm worker     <-CellStart, CellOutput, Done, Crash-- forked child
                                                       length-prefixed JSON frames on a pipe

A line or frame holds {"type": <class name>, <fields>}; `decode` checks the type.
"""

from __future__ import annotations

import json
import os
import struct
from dataclasses import asdict, dataclass, field, fields
from typing import IO, Union


@dataclass(frozen=True)
class Limits:
    """Per-submission limits. Times in seconds, sizes in MiB (output_cap in characters)."""

    cell_timeout: float = 120.0
    wall_timeout: float = 900.0
    memory_mb: int = 4096
    nproc: int = 64   # RLIMIT_NPROC for the child's uid; 0: none (the child keeps the grader's uid)
    fsize_mb: int = 64
    output_cap: int = 1_000_000
    threads: int = 0  # torch/OpenMP threads per submission; 0: the CPUs over the workers, at least 2


@dataclass(frozen=True)
class Cell:
    """One code cell to run: its index in the notebook, its source and how it is treated:
    'test' (autograder test), 'locked' (instructor code) or 'student'."""

    index: int
    source: str
    kind: str


@dataclass
class SubmissionJob:
    """One submission as plain data: each sanitized notebook's code cells and the
    submission's other files (never the course root, the gradebook or solutions/)."""

    id: str                          # "<student>/<assignment>"
    folder: str                      # a file-name-safe version of the id
    notebooks: dict[str, list[Cell]]
    files: dict[str, bytes]


@dataclass
class Job:
    """One notebook for a warm worker, in the working copy `workdir`, run as `uid` (None:
    the worker's own) within `limits`."""

    id: str
    cells: list[Cell]
    workdir: str
    limits: Limits
    uid: int | None = None

    @classmethod
    def from_fields(cls, values: dict) -> Job:
        return cls(values["id"], [Cell(**c) for c in values["cells"]], values["workdir"],
                   Limits(**values["limits"]), values["uid"])


@dataclass
class Ready:
    """The warm worker's first line: it has imported everything and can take jobs."""

    pid: int
    warm_seconds: float
    sandbox: str


@dataclass
class Result:
    """The warm worker's answer to one Job: each finished cell's nbformat outputs by index,
    the cells skipped after a crash with the reason, and what happened (`notes`, `error`)."""

    id: str
    outputs: dict[int, list[dict]] = field(default_factory=dict)
    skipped: dict[int, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    attempts: int = 0
    error: str | None = None  # the grader, not the student's code, failed

    @classmethod
    def from_fields(cls, values: dict) -> Result:
        return cls(**{**values, "outputs": {int(k): v for k, v in values["outputs"].items()},
                      "skipped": {int(k): v for k, v in values["skipped"].items()}})


@dataclass
class CellStart:
    """The child starts the cell at `index`."""

    index: int


@dataclass
class CellOutput:
    """The cell at `index` finished (the `count`-th run); its nbformat output dicts."""

    index: int
    count: int
    outputs: list[dict]


@dataclass
class Done:
    """The child ran every cell."""


@dataclass
class Crash:
    """The child failed outside student code (while setting up); the traceback."""

    text: str


Message = Union[Job, Ready, Result, CellStart, CellOutput, Done, Crash]
Event = Union[CellStart, CellOutput, Done, Crash]
MESSAGES = {cls.__name__: cls for cls in (Job, Ready, Result, CellStart, CellOutput, Done, Crash)}


class ProtocolError(ValueError):
    """A line or frame that is not one of the messages above."""


def encode(message: Message) -> bytes:
    return json.dumps({"type": type(message).__name__, **asdict(message)}).encode()


def decode(data: bytes | str) -> Message:
    try:
        values = json.loads(data)
        cls = MESSAGES[values.pop("type")]
        if hasattr(cls, "from_fields"):
            return cls.from_fields(values)
        return cls(**{f.name: values[f.name] for f in fields(cls)})
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise ProtocolError(f"not a grading message ({error!r}): {str(data)[:200]!r}") from None


def write_line(stream: IO[str], message: Message) -> None:
    """One message as one JSON line (grading process <-> warm worker)."""
    stream.write(encode(message).decode() + "\n")
    stream.flush()


def send_frame(fd: int, event: Event) -> None:
    """One event as a 4-byte big-endian length and its JSON (child -> warm worker)."""
    data = encode(event)
    payload = struct.pack("!I", len(data)) + data
    while payload:
        written = os.write(fd, payload)
        payload = payload[written:]


class FrameTooLarge(ProtocolError):
    """A frame longer than the reader's cap: the child wrote something it should not have."""


class FrameReader:
    """Collects bytes from the child's pipe and returns the complete events in them."""

    def __init__(self, cap: int):
        self.cap, self.buffer = cap, b""

    def feed(self, data: bytes) -> list[Event]:
        self.buffer += data
        events = []
        while len(self.buffer) >= 4:
            (size,) = struct.unpack("!I", self.buffer[:4])
            if size > self.cap:
                raise FrameTooLarge(f"a frame of {size} bytes, past the cap of {self.cap}")
            if len(self.buffer) < 4 + size:
                break
            events.append(decode(self.buffer[4:4 + size]))
            self.buffer = self.buffer[4 + size:]
        return events
