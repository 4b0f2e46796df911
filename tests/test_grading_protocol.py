"""The grading protocol: every message survives its framing unchanged, frames split
anywhere are reassembled, and what is not a message is refused with a clear error."""

import io
import os

import pytest

from course_lib.autograde.protocol import (
    Cell,
    CellOutput,
    CellStart,
    Crash,
    Done,
    FrameReader,
    FrameTooLarge,
    Job,
    Limits,
    ProtocolError,
    Ready,
    Result,
    decode,
    encode,
    send_frame,
    write_line,
)

MESSAGES = [
    Job("ann/hw1/hw1", [Cell(0, "x = 1", "student"), Cell(2, "assert x == 1", "test")], "/scratch/ann",
        Limits(cell_timeout=5, nproc=0), uid=61000),
    Ready(123, 2.5, "bubblewrap"),
    Result("ann/hw1/hw1", {0: [], 2: [{"output_type": "stream", "name": "stdout", "text": "ok\n"}]}, {3: "segfault"},
           ["cell 3: died; graded again without it"], 1.25, 2),
    Result("ann/hw1/hw1", error="Traceback ..."),
    CellStart(4),
    CellOutput(4, 2, [{"output_type": "error", "ename": "ValueError", "evalue": "bad", "traceback": []}]),
    Done(),
    Crash("Traceback (most recent call last): ..."),
]


@pytest.mark.parametrize("message", MESSAGES, ids=lambda m: type(m).__name__)
def test_every_message_round_trips_through_a_line(message):
    stream = io.StringIO()
    write_line(stream, message)
    assert stream.getvalue().count("\n") == 1
    assert decode(stream.getvalue()) == message


def test_frames_split_anywhere_are_reassembled():
    events = [CellStart(0), CellOutput(0, 1, [{"output_type": "stream", "name": "stdout", "text": "é" * 1000}]),
              Done()]
    read_end, write_end = os.pipe()
    for event in events:
        send_frame(write_end, event)
    os.close(write_end)
    data = os.read(read_end, 1 << 20)
    os.close(read_end)
    reader, received = FrameReader(cap=1 << 16), []
    for start in range(0, len(data), 7):  # 7-byte pieces: lengths and bodies split mid-way
        received += reader.feed(data[start:start + 7])
    assert received == events and reader.buffer == b""


def test_a_frame_past_the_cap_is_refused():
    reader = FrameReader(cap=10)
    with pytest.raises(FrameTooLarge, match="past the cap of 10"):
        reader.feed(len(encode(CellStart(1))).to_bytes(4, "big") + encode(CellStart(1)))


@pytest.mark.parametrize("data", ['{"type": "Nope"}', '{"type": "CellStart"}', "not json", "[1, 2]"])
def test_what_is_not_a_message_is_a_protocol_error(data):
    with pytest.raises(ProtocolError, match="not a grading message"):
        decode(data)
