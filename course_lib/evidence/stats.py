"""Mean and 95% interval over seeds, and the verdict of an interval comparison.

The interval is Student's t interval for the mean of n independent runs (one per seed):
mean +- t_{(1 + confidence) / 2, n - 1} * s / sqrt(n), with s the sample standard deviation
(ddof = 1). The t quantile is computed here (bisection on the t CDF, itself a Simpson
integral of the density), so the library needs no SciPy; tests check it against
`scipy.stats.t.interval`.

Two conditions differ significantly when their intervals do not overlap: a conservative
test (two non-overlapping 95% intervals mean p < 0.006 for equal spreads), chosen because
it can be read off the table without arithmetic.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

HOLDS, FAILS, INCONCLUSIVE = "holds", "does not hold on this data", "inconclusive (intervals overlap)"


@dataclass(frozen=True)
class Interval:
    """Mean of `n` values with a `confidence` t interval [low, high] (low = high = mean for n = 1)."""

    mean: float
    low: float
    high: float
    n: int
    confidence: float = 0.95

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2

    def above(self, other: Interval) -> bool:
        """Whether this whole interval lies above `other`'s (a significant difference upward)."""
        return self.low > other.high

    def text(self, digits: int = 3) -> str:
        """'mean [low, high]'; whole numbers of 1,000 or more (counts) with thousands separators."""
        values = (self.mean, self.low, self.high)
        if all(float(v).is_integer() and abs(v) >= 1000 for v in values):
            return "{:,.0f} [{:,.0f}, {:,.0f}]".format(*values)
        return f"{self.mean:.{digits}f} [{self.low:.{digits}f}, {self.high:.{digits}f}]"


def t_density(x: float, dof: int) -> float:
    """Student's t probability density with `dof` degrees of freedom at x."""
    log_norm = math.lgamma((dof + 1) / 2) - math.lgamma(dof / 2) - 0.5 * math.log(dof * math.pi)
    return math.exp(log_norm - (dof + 1) / 2 * math.log1p(x * x / dof))


def t_cdf(x: float, dof: int, intervals: int = 2000) -> float:
    """P(T <= x) for Student's t: 1/2 plus the Simpson integral of the density over [0, x]."""
    if x == 0:
        return 0.5
    h = x / intervals
    inner = sum((4 if i % 2 else 2) * t_density(i * h, dof) for i in range(1, intervals))
    return 0.5 + h / 3 * (t_density(0.0, dof) + inner + t_density(x, dof))


@cache
def t_quantile(q: float, dof: int, tol: float = 1e-10) -> float:
    """The q quantile of Student's t with `dof` degrees of freedom (q in (0.5, 1)), by bisection."""
    if not 0.5 < q < 1:
        raise ValueError(f"q must be in (0.5, 1) (an upper quantile), got {q}")
    if dof < 1:
        raise ValueError(f"dof must be at least 1 (two or more values), got {dof}")
    low, high = 0.0, 1.0
    while t_cdf(high, dof) < q:
        low, high = high, 2 * high
    while high - low > tol:
        middle = (low + high) / 2
        low, high = (middle, high) if t_cdf(middle, dof) < q else (low, middle)
    return (low + high) / 2


def mean_interval(values: Sequence[float], confidence: float = 0.95) -> Interval:
    """Mean and t interval of `values` (one per seed); with one value the interval is the point."""
    values = [float(v) for v in values]
    n = len(values)
    if n == 0:
        raise ValueError("mean_interval needs at least one value; the table has no row for this condition")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    mean = sum(values) / n
    if n == 1:
        return Interval(mean, mean, mean, 1, confidence)
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = t_quantile((1 + confidence) / 2, n - 1) * sd / math.sqrt(n)
    return Interval(mean, mean - half, mean + half, n, confidence)


def verdict(expected_higher: Interval, expected_lower: Interval) -> str:
    """HOLDS if `expected_higher` lies wholly above `expected_lower`, FAILS if wholly below,
    else INCONCLUSIVE."""
    if expected_higher.above(expected_lower):
        return HOLDS
    if expected_lower.above(expected_higher):
        return FAILS
    return INCONCLUSIVE
