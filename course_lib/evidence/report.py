"""docs/evidence.md from evidence tables: one section per claim.

Each section gives the lecture's words, the one-line verdict, the setup (the claim module's
docstring), the comparisons the claim makes with both 95% intervals, the summary table
(mean, 95% t interval, n seeds), the figure, and when, where and how long the run took.
"""

from __future__ import annotations

import inspect

from course_lib.evidence.table import EvidenceTable
from course_lib.evidence.verdicts import judge, overall

INTRO = """# The lecture's claims, measured

Each section below is one empirical claim of the CNN lecture, measured on the data bundled with
the course (the MNIST test set, scikit-learn's 8x8 digits, scikit-image textures) by a function in
`course_lib.evidence`, over independent seeds (the seed sets the drawn training images, the
initialization and the batch order; the test set is fixed). Numbers are means with a 95% Student-t
interval over seeds. A comparison **holds** when the interval of the side the claim expects to be
higher lies wholly above the other's, **does not hold on this data** when it lies wholly below,
and is **inconclusive** when they overlap. Nothing was tuned to make a claim agree.

Written by `scripts/run_evidence.py` (rerun one claim with `--only NAME`); the raw tables are
`course_lib/evidence/results/<claim>.json` (`course_lib.evidence.table.load_result(name)`).
The lecture notebooks show the same sections: each runs the claim's fast experiment live, reads the
committed table, and prints the verdict computed from it and whether the live run agrees
(`course_lib.evidence.lecture`).
"""


def setup_text(module) -> str:
    """The module docstring without its first paragraph (the claim), for the setup paragraph."""
    doc = inspect.getdoc(module) or ""
    parts = doc.split("\n\n", 1)
    return parts[1].strip() if len(parts) > 1 else ""


def comparisons_markdown(table: EvidenceTable, module) -> tuple[str, str]:
    """(overall verdict, markdown table of every comparison with both intervals and its verdict)."""
    judged = judge(table, module.comparisons(table))
    lines = ["| the claim expects | metric | expected higher | expected lower | verdict |", "|---|---|---|---|---|"]
    lines += [f"| {j.comparison.text} | {_metric(j.comparison)} | {j.higher_text} | {j.lower_text} | {j.verdict} |"
              for j in judged]
    return overall(judged), "\n".join(lines)


def summary_markdown(table: EvidenceTable, metrics) -> str:
    """Markdown table: condition, metric, mean, 95% interval, n."""
    lines = ["| condition | metric | mean | 95% interval | n seeds |", "|---|---|---|---|---|"]
    for row in table.summary(metrics):
        lines.append(f"| {row['condition']} | {row['metric']} | {_number(row['mean'])} | "
                     f"[{_number(row['low'])}, {_number(row['high'])}] | {row['n']} |")
    return "\n".join(lines)


def run_line(table: EvidenceTable) -> str:
    s = table.setup
    load = s.get("load_average")
    load_text = f", load average {load[0]:.1f} -> {load[1]:.1f}" if load else ""
    return (f"Run: {s.get('date', '?')}, {s.get('machine_description', s.get('machine', '?'))}, "
            f"{s.get('torch_threads', '?')} torch thread(s){load_text}; {table.seconds:.0f} s wall time, "
            f"{len(table.seeds())} seeds, {'fast' if s.get('fast') else 'full'} settings.")


def section(number: int, module, table: EvidenceTable, image: str) -> str:
    verdict, comparisons = comparisons_markdown(table, module)
    settings = ", ".join(f"{k}={v}" for k, v in table.setup.items()
                         if k not in ("seeds", "python", "machine", "date", "machine_description", "torch_threads",
                                      "load_average", "fast"))
    return "\n\n".join([
        f"## {number}. {module.TITLE}",
        f"> {module.CLAIM}",
        f"**Verdict: {verdict}.**",
        setup_text(module),
        f"Settings: {settings}.",
        comparisons,
        summary_markdown(table, module.table_metrics(table)),
        f"![{module.TITLE}]({image})",
        run_line(table),
    ])


def document(sections: list[str], tables: list[EvidenceTable]) -> str:
    """The whole page: the introduction, the total run time of `tables`, then the sections."""
    minutes = sum(t.seconds for t in tables) / 60
    total = (f"\nThe {len(tables)} claims' runs took {minutes:.1f} minutes of wall time in all "
             "(each section says when and where).\n")
    return INTRO + total + "\n" + "\n\n".join(sections) + "\n"


def _metric(comparison) -> str:
    side = comparison.higher if isinstance(comparison.higher, tuple) else comparison.lower
    return side[1]


def _number(value: float) -> str:
    if abs(value) >= 1000 and float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:.3g}" if abs(value) < 0.01 and value != 0 else f"{value:.3f}"
