"""Drawing evidence tables: means with 95% intervals. Only draws; returns matplotlib Figures."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from course_lib.evidence.table import EvidenceTable


def figure(ncols: int = 1, width: float = 5.0, height: float = 3.6):
    """A new Figure with `ncols` axes side by side (no pyplot state: works headless)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width * ncols, height), layout="constrained")
    axes = fig.subplots(1, ncols, squeeze=False)[0]
    return fig, list(axes)


def interval_points(ax, table: EvidenceTable, conditions: Sequence[str], metric: str,
                    labels: Sequence[str] | None = None, color=None, offset: float = 0.0, label: str | None = None):
    """Mean and 95% interval of `metric` for each condition, at x = 0, 1, ... (+ offset), and the
    per-seed values as small dots."""
    positions = np.arange(len(conditions)) + offset
    intervals = [table.interval(c, metric) for c in conditions]
    means = [ci.mean for ci in intervals]
    errors = [[ci.mean - ci.low for ci in intervals], [ci.high - ci.mean for ci in intervals]]
    container = ax.errorbar(positions, means, yerr=errors, fmt="o", capsize=4, color=color, label=label)
    for x, condition in zip(positions, conditions):
        values = table.values(condition, metric)
        ax.plot([x + 0.08] * len(values), values, ".", color=container[0].get_color(), alpha=0.35, markersize=4)
    ax.set_xticks(np.arange(len(conditions)), labels if labels is not None else conditions)
    ax.grid(alpha=0.3, axis="y")
    return container


def interval_lines(ax, table: EvidenceTable, cells: Sequence[tuple[str, str]], xs: Sequence[float],
                   label: str | None = None, **style):
    """A line through the means of the (condition, metric) `cells` (one per x), with a shaded 95% band."""
    intervals = [table.interval(condition, metric) for condition, metric in cells]
    (line,) = ax.plot(xs, [ci.mean for ci in intervals], label=label, **style)
    ax.fill_between(xs, [ci.low for ci in intervals], [ci.high for ci in intervals], color=line.get_color(),
                    alpha=0.15, linewidth=0)
    return line


def caption(table: EvidenceTable) -> str:
    """'n seeds, 95% t interval' for titles."""
    return f"{len(table.seeds())} seeds, mean and 95% interval"
