"""A claim's comparisons and their verdicts.

A `Comparison` says which (condition, metric) the claim expects to be higher than which
(or than a margin fixed before the run);
`judge` reads both 95% intervals from a table and gives `stats.verdict`: holds (the
expected-higher interval lies wholly above), does not hold (wholly below) or inconclusive
(they overlap). Tests use the same comparisons on fast runs.
"""

from __future__ import annotations

from dataclasses import dataclass

from course_lib.evidence.stats import FAILS, HOLDS, INCONCLUSIVE, Interval, verdict
from course_lib.evidence.table import EvidenceTable

Side = tuple[str, str] | float


@dataclass(frozen=True)
class Comparison:
    """The claim expects `higher` above `lower`; each side is a (condition, metric) of the table
    or a fixed number (a margin stated before the run, e.g. "a drop below 0.05")."""

    text: str
    higher: Side
    lower: Side

    def intervals(self, table: EvidenceTable) -> tuple[Interval, Interval]:
        """The (higher, lower) intervals; a fixed number is a zero-width interval."""
        return _interval(table, self.higher), _interval(table, self.lower)

    def difference(self, table: EvidenceTable) -> float:
        """Mean of higher minus mean of lower in `table`."""
        high, low = self.intervals(table)
        return high.mean - low.mean

    def spread(self, table: EvidenceTable) -> float:
        """The larger sample standard deviation over seeds of the two sides (0 for one seed)."""
        return max(_std(_values(table, self.higher)), _std(_values(table, self.lower)))


@dataclass(frozen=True)
class Judged:
    comparison: Comparison
    verdict: str
    higher_text: str
    lower_text: str


def judge(table: EvidenceTable, comparisons: list[Comparison]) -> list[Judged]:
    """The verdict of every comparison on `table`, with both intervals as text."""
    judged = []
    for c in comparisons:
        high, low = c.intervals(table)
        judged.append(Judged(c, verdict(high, low), high.text(), low.text()))
    return judged


def overall(judged: list[Judged]) -> str:
    """One line: holds / does not hold / inconclusive when every comparison agrees, else
    "partly: n of m hold, ..." with the count of each verdict."""
    verdicts = [j.verdict for j in judged]
    if not verdicts:
        raise ValueError("no comparisons to judge; a claim must make at least one")
    if len(set(verdicts)) == 1:
        return verdicts[0]
    counts = {HOLDS: "hold", INCONCLUSIVE: "inconclusive (intervals overlap)", FAILS: "do not hold on this data"}
    parts = [f"{verdicts.count(v)} {text}" for v, text in counts.items() if v in verdicts]
    return f"partly: of {len(verdicts)} comparisons, " + ", ".join(parts)


def _interval(table: EvidenceTable, side: Side) -> Interval:
    if isinstance(side, tuple):
        return table.interval(*side)
    return Interval(float(side), float(side), float(side), 0)


def _values(table: EvidenceTable, side: Side) -> list[float]:
    return table.values(*side) if isinstance(side, tuple) else [float(side)]


def _std(values: list[float]) -> float:
    n = len(values)
    if n < 2:
        return 0.0
    mean = sum(values) / n
    return (sum((v - mean) ** 2 for v in values) / (n - 1)) ** 0.5
