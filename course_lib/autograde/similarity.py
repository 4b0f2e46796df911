"""Similarity report: answer cells that share code with another student's or with the reference.

For one assignment, every student's answer to each question (the nbgrader solution cells of
that question, matched by grade_id) is fingerprinted with copydetect (winnowing over a token
stream in which names, strings and comments are normalized away, as in MOSS) and compared:

* with every other student's answer to the same question;
* with the references: the solution notebook's cells and the library's marked answer
  regions (`# BEGIN ANSWER hwN.Qk` ... `# END ANSWER` in course_lib), each on its own.

The released starter code of the question's cells and the code quoted in the question's
text are boilerplate: their fingerprints are removed from every answer before comparing.
An answer with fewer than `MIN_TOKENS` fingerprinted characters left after that is too
short to tell copying from the one natural way to write it, and is not compared.

similarity(A, B) is the share of A's fingerprinted code that also occurs in B. A pair of
students is flagged when the larger of their two shares reaches `THRESHOLD`; a student is
flagged against `reference` when their own share found in a reference reaches it.

Measured on the class of tests/test_similarity.py (k = copydetect's default 25): disguised
copies (renamed variables, helpers split out and reordered, comments rewritten) scored
0.64-1.00 against their source and a shared pair 1.00; independently written correct answers
scored at most 0.57 against a reference (examples/submissions/alt_correct's hw3 Q7) and 0.38
against each other. A pad-then-crop augmentation written apart from the solution, in the
solution's idiom, scored 0.61 against it: a flag is a reason to read the two side by side. THRESHOLD = 0.6 lies in
that gap; k = 20 or 30 narrowed it (0.57/0.65, 0.53/0.55). Answers under MIN_TOKENS (one or
two lines: output size, parameter count, init scales, flip TTA) scored up to 0.58 against
the reference when written independently, so they are not judged at all.
"""

from __future__ import annotations

import ast
import html
import io
import json
import re
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

import numpy as np

from course_lib.autograde.answer_regions import AnswerRegion, answer_regions

NOISE = 25          # k: length of a fingerprinted k-gram of normalized code (copydetect's default)
WINDOW = 1          # winnowing window: 1 keeps every k-gram (answers are a few hundred characters)
MIN_TOKENS = 60     # fewer fingerprinted characters (after boilerplate) than this: not compared
THRESHOLD = 0.6     # flag at or above this share of shared code
REFERENCE = "reference"

_HEADING = re.compile(r"^#{1,6}\s*Q(\d+)\.", re.MULTILINE)
_ASSIGNMENT_NUMBER = re.compile(r"^hw(\d+)_")
_SOLUTION_DELIMITERS = re.compile(r"^\s*### (BEGIN|END) SOLUTION\s*\n", re.MULTILINE)
_CODE_SPAN = re.compile(r"`([^`\n]+)`")


# ---------------------------------------------------------------------------------------
# Questions and answer cells in the notebooks
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Question:
    """A graded question of an assignment: `qid` ("hw2.Q1"), the grade_ids of its solution
    cells and of its graded test cells, and the text of its markdown cells."""

    qid: str
    solution_cells: tuple[str, ...]
    test_cells: tuple[str, ...]
    text: str


def assignment_number(assignment: str) -> int:
    """hw2_bn_dropout_init -> 2."""
    match = _ASSIGNMENT_NUMBER.match(assignment)
    if not match:
        raise ValueError(f"assignment name {assignment!r} does not start with hwN_ (e.g. hw2_bn_dropout_init)")
    return int(match.group(1))


def assignment_questions(notebook: Path) -> list[Question]:
    """The questions of an nbgrader source notebook: a markdown heading "## Qk. ..." opens
    question k; the solution and graded cells after it, up to the next heading, are its own."""
    number = assignment_number(Path(notebook).stem)
    found: dict[int, dict] = {}
    current = None
    for cell in _cells(Path(notebook)):
        source = _source(cell)
        if cell["cell_type"] == "markdown":
            heading = _HEADING.search(source)
            if heading:
                current = found.setdefault(int(heading.group(1)), {"solutions": [], "tests": [], "text": []})
            if current is not None:
                current["text"].append(source)
            continue
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if current is None or "grade_id" not in meta:
            continue
        if meta.get("solution"):
            current["solutions"].append(meta["grade_id"])
        elif meta.get("grade") and meta.get("points", 0) > 0:
            current["tests"].append(meta["grade_id"])
    return [Question(f"hw{number}.Q{k}", tuple(q["solutions"]), tuple(q["tests"]), "\n".join(q["text"]))
            for k, q in sorted(found.items()) if q["tests"]]


def solution_sources(notebook: Path) -> dict[str, str]:
    """{grade_id: source} of the nbgrader solution cells of a notebook."""
    sources = {}
    for cell in _cells(Path(notebook)):
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if cell["cell_type"] == "code" and meta.get("solution") and "grade_id" in meta:
            sources[meta["grade_id"]] = _source(cell)
    return sources


def _cells(notebook: Path) -> list[dict]:
    try:
        return json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ValueError(f"{notebook}: not a readable notebook ({error})") from error


def _source(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


# ---------------------------------------------------------------------------------------
# Fingerprints and comparisons (copydetect)
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FlaggedPair:
    """question, student, other (a student or "reference"), similarity (the larger share);
    for the report: both answers' code and their shared spans [(start, end), ...]; for a
    reference, `source` names where it lives."""

    question: str
    student: str
    other: str
    similarity: float
    student_code: str
    other_code: str
    student_spans: tuple[tuple[int, int], ...]
    other_spans: tuple[tuple[int, int], ...]
    source: str = ""


def _fingerprint(code: str, name: str, boilerplate: np.ndarray):
    from copydetect import CodeFingerprint

    return CodeFingerprint(name, NOISE, WINDOW, boilerplate=boilerplate, fp=io.StringIO(code), language="python")


def boilerplate_hashes(texts: list[str]) -> np.ndarray:
    """Every k-gram hash of the given code (window 1, so none is skipped by winnowing)."""
    from copydetect import CodeFingerprint

    hashes = [
        CodeFingerprint("boilerplate", NOISE, 1, fp=io.StringIO(text), language="python").hashes for text in texts
    ]
    return np.unique(np.array([h for group in hashes for h in group], dtype=np.int64))


def compare(a, b) -> tuple[float, float, tuple, tuple]:
    """(share of a found in b, share of b found in a, a's spans, b's spans) of two fingerprints."""
    from copydetect import compare_files

    _, (share_a, share_b), (slices_a, slices_b) = compare_files(a, b)
    return float(share_a), float(share_b), _spans(slices_a), _spans(slices_b)


def _spans(slices) -> tuple[tuple[int, int], ...]:
    slices = np.asarray(slices)
    if slices.size == 0:
        return ()
    return tuple((int(start), int(end)) for start, end in zip(slices[0], slices[1]))


# ---------------------------------------------------------------------------------------
# One assignment
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Material:
    """What one question is compared with: its boilerplate hashes and reference answers."""

    question: Question
    boilerplate: np.ndarray
    references: tuple[tuple[str, str], ...]   # (source, code)


def _materials(assignment: str, course_root: Path) -> list[_Material]:
    source_nb = course_root / "solutions" / assignment / f"{assignment}.ipynb"
    release_nb = course_root / "assignments" / assignment / f"{assignment}.ipynb"
    for notebook in (source_nb, release_nb):
        if not notebook.is_file():
            raise ValueError(f"{notebook} not found: give an assignment of {course_root / 'solutions'} "
                             "and run `course generate` for its released version")
    solutions, starters = solution_sources(source_nb), solution_sources(release_nb)
    regions = answer_regions(course_root / "course_lib")
    materials = []
    for question in assignment_questions(source_nb):
        quoted = _CODE_SPAN.findall(question.text)
        starter = [starters.get(cell, "") for cell in question.solution_cells]
        solution = "\n".join(_SOLUTION_DELIMITERS.sub("", solutions[cell]) for cell in question.solution_cells)
        references = [(source_nb.relative_to(course_root).as_posix(), solution)]
        marked = [r for r in regions if r.qid == question.qid]
        if marked:  # one reference: a student who copies the library copies all of its parts
            where = ", ".join(f"{r.path}:{r.first_line}" for r in marked)
            references.append((where, _library_answer(marked, course_root)))
        materials.append(_Material(question, boilerplate_hashes(starter + quoted), tuple(references)))
    return materials


def _library_answer(marked: list[AnswerRegion], course_root: Path) -> str:
    """The marked regions, then the module-level functions of their modules that they call
    (`_windows`, `_pair`, ...): a student who copies a region copies its helpers too."""
    parts, seen = [r.code for r in marked], set()
    for region in marked:
        helpers = _top_level_functions(course_root / region.path)
        for name in re.findall(r"\b(\w+)\(", region.code):
            if name in helpers and name not in seen and "BEGIN ANSWER" not in helpers[name]:
                seen.add(name)
                parts.append(helpers[name])
    return "\n".join(parts)


def _top_level_functions(path: Path) -> dict[str, str]:
    source = path.read_text(encoding="utf-8")
    return {node.name: ast.get_source_segment(source, node) for node in ast.parse(source).body
            if isinstance(node, ast.FunctionDef)}


def _student_answers(assignment: str, submissions: Path) -> dict[str, dict[str, str]]:
    """{student: {grade_id: source}} for every readable SUBMISSIONS/<student>/<hw>/<hw>.ipynb."""
    answers = {}
    for notebook in sorted(Path(submissions).glob(f"*/{assignment}/{assignment}.ipynb")):
        try:
            answers[notebook.parent.parent.name] = solution_sources(notebook)
        except ValueError:
            continue  # an unreadable notebook has no answers to compare; grading reports it
    return answers


def find_similar(
    assignment: str, submissions: Path, course_root: Path, threshold: float = THRESHOLD
) -> list[FlaggedPair]:
    """Flagged pairs of one assignment, by question, then highest similarity first."""
    answers = _student_answers(assignment, Path(submissions))
    flagged = []
    for material in _materials(assignment, Path(course_root)):
        flagged += _flag_question(material, answers, threshold)
    return flagged


def _flag_question(material: _Material, answers: dict[str, dict[str, str]], threshold: float) -> list[FlaggedPair]:
    qid = material.question.qid
    codes = {student: "\n".join(cells.get(cell, "") for cell in material.question.solution_cells)
             for student, cells in answers.items()}
    prints = {student: _fingerprint(code, student, material.boilerplate) for student, code in codes.items()}
    prints = {student: fp for student, fp in prints.items() if fp.token_coverage >= MIN_TOKENS}
    flagged = []
    for student, fp in prints.items():
        best = None
        for source, code in material.references:
            share, _, spans, ref_spans = compare(fp, _fingerprint(code, source, material.boilerplate))
            if share >= threshold and (best is None or share > best.similarity):
                best = FlaggedPair(qid, student, REFERENCE, share, codes[student], code, spans, ref_spans, source)
        flagged += [best] if best else []
    for first, second in combinations(sorted(prints), 2):
        share_1, share_2, spans_1, spans_2 = compare(prints[first], prints[second])
        if max(share_1, share_2) >= threshold:
            flagged.append(FlaggedPair(qid, first, second, max(share_1, share_2), codes[first], codes[second],
                                       spans_1, spans_2))
    return sorted(flagged, key=lambda pair: -pair.similarity)


# ---------------------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------------------


def format_lines(pairs: list[FlaggedPair]) -> list[str]:
    """One line per flagged pair: question, student, other student or `reference`, similarity."""
    return [f"{p.question}  {p.student}  {p.other}  {p.similarity:.0%}" + (f"  ({p.source})" if p.source else "")
            for p in pairs]


def _highlighted(code: str, spans: tuple[tuple[int, int], ...]) -> str:
    from copydetect.utils import highlight_overlap

    if not spans:
        return html.escape(code)
    slices = np.array([[s for s, _ in spans], [e for _, e in spans]])
    marked, _ = highlight_overlap(code, slices, "<mark>", "</mark>", escape_html=True)
    return marked


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Similarity: {title}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; }}
table {{ border-collapse: collapse; width: 100%; margin-bottom: 2em; table-layout: fixed; }}
th, td {{ border: 1px solid #ccc; padding: 0.4em; vertical-align: top; text-align: left; }}
pre {{ margin: 0; white-space: pre-wrap; font-size: 0.85em; }}
mark {{ background: #ffd54f; }}
</style></head><body>
<h1>Similarity report: {title}</h1>
<p>{summary}</p>
{body}
</body></html>
"""

_PAIR = """<h2>{question}: {student} &ndash; {other} ({similarity:.0%})</h2>
<table><tr><th>{student}</th><th>{other_heading}</th></tr>
<tr><td><pre>{left}</pre></td><td><pre>{right}</pre></td></tr></table>
"""


def write_html(pairs: list[FlaggedPair], path: Path, assignment: str, threshold: float = THRESHOLD) -> Path:
    """A self-contained page with each flagged pair side by side, shared spans highlighted."""
    summary = (f"{len(pairs)} flagged pair(s) at a similarity of {threshold:.0%} or more (the share of one answer's "
               "fingerprinted code found in the other; starter code and code quoted in the question do not count). "
               "Highlighted: the shared spans. A flag is a reason to look, not a verdict.")
    body = "".join(_PAIR.format(
        question=html.escape(p.question), student=html.escape(p.student), other=html.escape(p.other),
        similarity=p.similarity,
        other_heading=html.escape(f"{p.other} ({p.source})" if p.source else p.other),
        left=_highlighted(p.student_code, p.student_spans), right=_highlighted(p.other_code, p.other_spans),
    ) for p in pairs)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(_PAGE.format(title=html.escape(assignment), summary=summary, body=body), encoding="utf-8")
    return path


def similarity_report(
    assignment: str, submissions: Path, course_root: Path, out_dir: Path | None = None
) -> list[FlaggedPair]:
    """Compare, then write out_dir/<assignment>.html (default: course_root/reports/similarity).
    Returns the flagged pairs; print them with `format_lines`."""
    pairs = find_similar(assignment, submissions, course_root)
    out_dir = Path(out_dir) if out_dir is not None else Path(course_root) / "reports" / "similarity"
    write_html(pairs, out_dir / f"{assignment}.html", assignment)
    return pairs
