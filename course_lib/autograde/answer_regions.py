"""The answer regions marked in the library source: `# BEGIN ANSWER hwN.Qk` ... `# END ANSWER`
around the code that answers a graded question. The student edition leaves them out
(`edition`), the similarity report compares students' answers with them (`similarity`)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

_BEGIN = re.compile(r"^(\s*)# BEGIN ANSWER(.*)$")
_END = re.compile(r"^\s*# END ANSWER\s*$")
_ID = re.compile(r"^hw(\d+)\.Q(\d+)$")



@dataclass(frozen=True)
class AnswerRegion:
    """One marked region: `qid` like "hw2.Q1", the file relative to the package's parent,
    the 1-based line numbers of its first and last code line, and that code."""

    qid: str
    path: str
    first_line: int
    last_line: int
    code: str


def answer_regions(package: Path) -> list[AnswerRegion]:
    """Every `# BEGIN ANSWER hwN.Qk` ... `# END ANSWER` region in the .py files under `package`.

    Raises ValueError, naming the file and line, for a malformed id, a BEGIN inside an open
    region, an END without a BEGIN, a region left open at the end of a file, or an empty region.
    """
    package = Path(package)
    regions = []
    for path in sorted(package.rglob("*.py")):
        name = path.relative_to(package.parent).as_posix()
        regions += _regions_in(path.read_text(encoding="utf-8").splitlines(), name)
    return regions


def _regions_in(lines: list[str], name: str) -> list[AnswerRegion]:
    regions, open_at, qid = [], None, None
    for number, line in enumerate(lines, start=1):
        begin = _BEGIN.match(line)
        if begin:
            if open_at is not None:
                raise ValueError(f"{name}:{number}: BEGIN ANSWER inside the region opened at line {open_at}; "
                                 "close it with '# END ANSWER' first (regions do not nest)")
            qid, open_at = begin.group(2).strip(), number
            if not _ID.match(qid):
                raise ValueError(f"{name}:{number}: answer id {qid!r} is not of the form hwN.Qk (e.g. hw2.Q1)")
        elif _END.match(line):
            if open_at is None:
                raise ValueError(f"{name}:{number}: END ANSWER without a BEGIN ANSWER before it")
            if number == open_at + 1:
                raise ValueError(f"{name}:{open_at}: the answer region {qid} is empty")
            code = _dedent(lines[open_at:number - 1])
            regions.append(AnswerRegion(qid, name, open_at + 1, number - 1, code))
            open_at = None
    if open_at is not None:
        raise ValueError(f"{name}:{open_at}: answer region {qid} is never closed; add '# END ANSWER'")
    return regions


def _dedent(lines: list[str]) -> str:
    indent = min((len(line) - len(line.lstrip()) for line in lines if line.strip()), default=0)
    return "\n".join(line[indent:] for line in lines) + "\n"
